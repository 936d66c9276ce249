"""The callee half of a client session: running procedures for INVOCATIONs.

An :class:`Invocations` object belongs to one :class:`~promisifier.client.session.Session`.
It runs the registered function for each INVOCATION, sends progressive YIELDs through the
``progress`` callable, the final YIELD or ERROR when the function is done, and handles
INTERRUPT (call canceling). Invocations still running when the session ends are dropped:
their answers are never sent.
"""

from __future__ import annotations

import inspect
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from promisifier.client.errors import CANCELED_URI, FEATURE_NOT_SUPPORTED_URI, RUNTIME_ERROR_URI, ApplicationError
from promisifier.client.types import CallResult, InvocationDetails, Passthru, Registration
from promisifier.client.user_errors import UserErrorHook, log_user_error
from promisifier.wire import EncodeError, ErrorURI
from promisifier.wire.messages import ERROR, INVOCATION, YIELD, Message

log = Logger(namespace="promisifier.client")


def as_deferred(result: Any) -> defer.Deferred[Any]:
    """A Deferred for what a user function returned: a Deferred, a coroutine or a value."""
    if isinstance(result, defer.Deferred):
        return result
    if inspect.iscoroutine(result):
        return defer.Deferred.fromCoroutine(result)
    return defer.succeed(result)


def payload(args: Any, kwargs: Any, options: dict[str, Any] | None = None) -> list[Any]:
    """The Arguments / ArgumentsKw tail of a message (omitted when empty). A lone
    :class:`Passthru` argument is the payload itself, its attributes go into ``options``."""
    if options is not None and len(args) == 1 and not kwargs and isinstance(args[0], Passthru):
        options.update(args[0].attributes())
        return [args[0].payload]
    if kwargs:
        return [list(args), kwargs]
    if args:
        return [list(args)]
    return []


def result_payload(result: Any, options: dict[str, Any]) -> list[Any]:
    """The payload tail for a procedure's return value (None: nothing; CallResult: as is;
    a :class:`Passthru`: its payload, its attributes into ``options``)."""
    if isinstance(result, CallResult):
        return payload(result.args, result.kwargs)
    if result is None:
        return []
    return payload([result], None, options)


def received_payload(message: Message, index: int, details: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """(args, kwargs) of a received message whose Arguments are at ``index``: a passthru
    payload (bytes there) is one :class:`Passthru` argument."""
    args = message[index] if len(message) > index else []
    if type(args) is bytes:
        return [Passthru.received(args, details)], {}
    return args, (message[index + 1] if len(message) > index + 1 else {})


def invocation_details(details: dict[str, Any], registration: Registration) -> InvocationDetails:
    """The :class:`InvocationDetails` of an INVOCATION for ``registration``."""
    return InvocationDetails(
        procedure=details.get("procedure", registration.procedure),
        registration=registration.id,
        caller=details.get("caller"),
        caller_authid=details.get("caller_authid"),
        caller_authrole=details.get("caller_authrole"),
    )


def chunk_of(args: list[Any], kwargs: dict[str, Any]) -> Any:
    """One received chunk: a single positional value as itself, others as a :class:`CallResult`."""
    if len(args) == 1 and not kwargs:
        return args[0]
    return CallResult(list(args), dict(kwargs))


class InvocationChunks:
    """The input of one progressive invocation: ``async for chunk in chunks`` reads each
    chunk as it arrives (one positional value as itself, others as a :class:`CallResult`)
    and ends after the last one. Ending early (the call was cancelled) ends the loop."""

    def __init__(self) -> None:
        self._queue: deque[Any] = deque()
        self._waiting: defer.Deferred[None] | None = None
        self.ended = False

    def put(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        """A chunk arrived (an empty last chunk adds nothing: see :meth:`end`)."""
        self._queue.append(chunk_of(args, kwargs))
        self._wake()

    def end(self) -> None:
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.callback(None)

    def __aiter__(self) -> InvocationChunks:
        return self

    async def __anext__(self) -> Any:
        if not self._queue and not self.ended:
            self._waiting = defer.Deferred()
            await self._waiting
        if self._queue:
            return self._queue.popleft()
        raise StopAsyncIteration


#: ids of progressive invocations that ended before their last chunk, remembered so that the
#: chunks still on their way are discarded (the oldest is forgotten first)
MAX_ENDED_STREAMS = 256


class _Running:
    __slots__ = ("deferred", "registration", "chunks")

    def __init__(self, registration: Registration) -> None:
        self.registration = registration
        self.deferred: defer.Deferred[Any] | None = None
        #: the input of a progressive invocation still arriving
        self.chunks: InvocationChunks | None = None


class Invocations:
    """The invocations in progress of one session, by the router's invocation id."""

    def __init__(
        self,
        send: Callable[[Message], None],
        *,
        debug: bool = False,
        on_user_error: UserErrorHook = log_user_error,
    ) -> None:
        self._send = send
        self._on_user_error = on_user_error
        self.debug = debug
        self._running: dict[int, _Running] = {}
        self._ended_streams: dict[int, None] = {}
        #: INVOCATIONs received for a known registration
        self.served = 0

    def __len__(self) -> int:
        return len(self._running)

    def on_invocation(self, message: Message, registration: Registration | None) -> None:
        """INVOCATION: [68, Request|id, REGISTERED.Registration|id, Details|dict, Arguments, ArgumentsKw]."""
        invocation_id, details = message[1], message[3]
        streaming = details.get("progress") is True
        running = self._running.get(invocation_id)
        if running is not None or invocation_id in self._ended_streams:
            self._next_chunk(running, message, streaming)
            return
        if registration is None:
            self._send_error(invocation_id, ErrorURI.NO_SUCH_REGISTRATION, [f"no registration {message[2]} here"], {})
            return
        self.served += 1
        args, kwargs = received_payload(message, 4, details)
        running = _Running(registration)
        if registration.stream_input:
            chunks = running.chunks = InvocationChunks()
            if args or kwargs:
                chunks.put(args, kwargs)
            if not streaming:
                chunks.end()
            args, kwargs = [], {"chunks": chunks}
        elif streaming:
            self._stream_ended(invocation_id)
            self._send_error(
                invocation_id,
                FEATURE_NOT_SUPPORTED_URI,
                [f"{registration.procedure} does not take its input as a stream (register with stream_input=True)"],
                {},
            )
            return
        wants_progress = details.get("receive_progress") is True
        if wants_progress or registration.details:
            kwargs = dict(kwargs)
            if wants_progress:
                kwargs["progress"] = self._progress_sender(invocation_id)
            if registration.details:
                kwargs["details"] = invocation_details(details, registration)
        self._running[invocation_id] = running
        try:
            result = registration.fn(*args, **kwargs)
        except Exception:  # the failure is sent to the caller, not raised here
            d: defer.Deferred[Any] = defer.fail(Failure())
        else:
            d = as_deferred(result)
        running.deferred = d
        d.addCallbacks(
            self._done, self._failed, callbackArgs=(invocation_id, running), errbackArgs=(invocation_id, running)
        )

    def _next_chunk(self, running: _Running | None, message: Message, streaming: bool) -> None:
        """An INVOCATION continuing a progressive invocation: its next chunk, or its last."""
        chunks = running.chunks if running is not None else None
        if chunks is None or chunks.ended:
            log.debug("chunk of ended invocation {id} discarded", id=message[1])
            return
        args, kwargs = received_payload(message, 4, message[3])
        if args or kwargs:
            chunks.put(args, kwargs)
        if not streaming:
            chunks.end()

    def _stream_ended(self, invocation_id: int) -> None:
        ended = self._ended_streams
        ended[invocation_id] = None
        if len(ended) > MAX_ENDED_STREAMS:
            del ended[next(iter(ended))]

    def _forget(self, invocation_id: int, running: _Running) -> None:
        """The invocation ended (answered or interrupted)."""
        del self._running[invocation_id]
        chunks = running.chunks
        if chunks is not None and not chunks.ended:
            chunks.end()
            self._stream_ended(invocation_id)

    def on_interrupt(self, message: Message) -> None:
        """INTERRUPT: [69, INVOCATION.Request|id, Options|dict] -- cancel the running function."""
        invocation_id, options = message[1], message[2]
        running = self._running.get(invocation_id)
        if running is None:
            log.debug("INTERRUPT for unknown invocation {id} ignored", id=invocation_id)
            return
        self._forget(invocation_id, running)
        if options.get("mode") != "killnowait":
            reason = options.get("reason")
            error_uri = reason if isinstance(reason, str) and reason else CANCELED_URI
            self._send_error(invocation_id, error_uri, ["the call was canceled"], {})
        if running.deferred is not None and not running.deferred.called:
            running.deferred.cancel()

    def drop_all(self) -> int:
        """Forget every invocation in progress (the session ended); returns how many."""
        count = len(self._running)
        self._running.clear()
        return count

    # -- answers --------------------------------------------------------------------

    def _progress_sender(self, invocation_id: int) -> Callable[..., None]:
        def progress(*args: Any, **kwargs: Any) -> None:
            """Send a progressive result to the caller (no-op once the invocation ended)."""
            if invocation_id not in self._running:
                return
            options: dict[str, Any] = {"progress": True}
            self._send([YIELD, invocation_id, options, *payload(args, kwargs, options)])

        return progress

    def _done(self, result: Any, invocation_id: int, running: _Running) -> None:
        if self._running.get(invocation_id) is not running:
            log.debug("result of dropped invocation {id} discarded", id=invocation_id)
            return
        self._forget(invocation_id, running)
        try:
            options: dict[str, Any] = {}
            self._send([YIELD, invocation_id, options, *result_payload(result, options)])
        except EncodeError as error:
            self._send_error(
                invocation_id,
                ErrorURI.INVALID_ARGUMENT,
                [f"{running.registration.procedure}: result cannot be serialized: {error}"],
                {},
            )

    def _failed(self, failure: Failure, invocation_id: int, running: _Running) -> None:
        if self._running.get(invocation_id) is not running:
            if not failure.check(defer.CancelledError):
                log.debug("error of dropped invocation {id} discarded: {error}", id=invocation_id, error=failure.value)
            return
        self._forget(invocation_id, running)
        error = failure.value
        assert error is not None  # a Failure always holds its exception
        if isinstance(error, ApplicationError):
            try:
                self._send_error(invocation_id, error.error, list(error.args), error.kwargs)
                return
            except EncodeError as encode_error:
                text = f"application error {error.error} cannot be serialized: {encode_error}"
                self._send_error(invocation_id, RUNTIME_ERROR_URI, [text], {})
                return
        text = str(error) or type(error).__name__
        self._on_user_error(failure, f"procedure {running.registration.procedure}")
        args: list[Any] = [text]
        if self.debug:
            args.append("".join(traceback.format_exception(type(error), error, failure.getTracebackObject())))
        self._send_error(invocation_id, RUNTIME_ERROR_URI, args, {})

    def _send_error(self, invocation_id: int, error_uri: str, args: list[Any], kwargs: dict[str, Any]) -> None:
        self._send([ERROR, INVOCATION, invocation_id, {}, error_uri, *payload(args, kwargs)])


__all__ = [
    "InvocationChunks",
    "Invocations",
    "as_deferred",
    "invocation_details",
    "payload",
    "received_payload",
    "result_payload",
]
