"""The request-making half of a client session: call, register, subscribe, publish.

:class:`SessionRequests` is a base class of :class:`~promisifier.client.session.Session`;
it builds the request messages and enters them in the session's one correlation table
(:class:`~promisifier.client.correlation.Correlation`). The session lifecycle (join, leave,
close, dispatch of received messages) is in :mod:`promisifier.client.session`.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterable, Callable, Iterable
from typing import Any

from twisted.internet import defer

from promisifier.client.callee import payload
from promisifier.client.correlation import CallData, Correlation, RegisterData, Request, SubscribeData
from promisifier.client.errors import FEATURE_NOT_SUPPORTED_URI, ApplicationError, NotConnected
from promisifier.client.streams import CallStream
from promisifier.client.types import Registration, SessionState, Subscription
from promisifier.wire import EncodeError, IdSequence
from promisifier.wire.messages import CALL, PUBLISH, REGISTER, SUBSCRIBE, UNREGISTER, UNSUBSCRIBE, Message
from promisifier.wire.policies import CANCEL_MODES, INVOKE_POLICIES, MATCH_POLICIES


class SessionRequests:
    """call / register / subscribe / publish, and the handles' unregister / unsubscribe."""

    # set by Session.__init__
    state: SessionState
    clock: Any  # IReactorTime
    _ids: IdSequence
    _table: Correlation
    _cancel_mode: str
    _calls_made: int
    _publications_sent: int

    def router_supports(self, role: str, feature: str) -> bool:  # pragma: no cover - Session's
        raise NotImplementedError

    def _send(self, message: Message) -> None:  # pragma: no cover - Session's
        raise NotImplementedError

    # -- requests --------------------------------------------------------------------

    def call(
        self,
        procedure: str,
        /,
        *args: Any,
        timeout: float | None = None,
        on_progress: Callable[..., Any] | None = None,
        disclose_me: bool = False,
        **kwargs: Any,
    ) -> defer.Deferred[Any]:
        """Call ``procedure`` with ``args`` and ``kwargs``.

        Fires with the single positional result, None for no result, or a
        :class:`CallResult` when there are several values or keyword values. Fails with
        :class:`ApplicationError` (the callee's or router's ERROR), :class:`CallTimeout`
        after ``timeout`` seconds (enforced locally even if the router ignores the
        option; ``None`` or 0: no timeout), :class:`ConnectionLost` when the session
        ends first, :class:`NotConnected` when not joined, ``EncodeError`` when the
        arguments cannot be serialized.

        ``on_progress(*args, **kwargs)`` receives progressive results (the callee's
        ``progress(...)`` calls) when the router supports them. ``disclose_me`` asks the
        router to tell the callee who calls. ``.cancel()`` on the returned Deferred
        fails it at once with ``CancelledError`` and sends CANCEL (mode
        :attr:`cancel_mode`) when the router supports call canceling.

        ``timeout``, ``on_progress`` and ``disclose_me`` are options of the call: they
        cannot be passed to the procedure as keyword arguments. Raises ValueError for a
        negative ``timeout``.
        """
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds (0: none), got {timeout}")
        if self.state is not SessionState.JOINED:
            return defer.fail(NotConnected(f"cannot call {procedure}: session is {self.state.value}"))
        options: dict[str, Any] = {}
        request_id, request, d = self._new_call(procedure, options, timeout, on_progress, disclose_me)
        return (
            self._start_call(
                request_id, request, [CALL, request_id, options, procedure, *payload(args, kwargs, options)]
            )
            or d
        )

    def call_stream(
        self,
        procedure: str,
        chunks: Iterable[Any] | AsyncIterable[Any],
        /,
        *,
        timeout: float | None = None,
        on_progress: Callable[..., Any] | None = None,
        disclose_me: bool = False,
    ) -> defer.Deferred[Any]:
        """Call ``procedure`` with its input as a stream (progressive call invocations).

        Every item of ``chunks`` (an iterable or an async iterable; a :class:`CallResult`
        for several positional or keyword values, any other value as one positional
        argument) goes to the callee as soon as it is there, as one CALL with
        ``progress``; when ``chunks`` ends, a last CALL without arguments ends the input.
        The callee (registered with ``stream_input=True`` if it is ours) answers once, or
        with progressive results for ``on_progress``. Fires and fails like :meth:`call`;
        an exception raised by ``chunks`` cancels the call and fails the Deferred with it.
        Fails with :class:`ApplicationError` ``wamp.error.feature_not_supported`` when the
        router does not support progressive call invocations.
        """
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds (0: none), got {timeout}")
        if self.state is not SessionState.JOINED:
            return defer.fail(NotConnected(f"cannot call {procedure}: session is {self.state.value}"))
        if not self.router_supports("dealer", "progressive_call_invocations"):
            return defer.fail(
                ApplicationError(FEATURE_NOT_SUPPORTED_URI, "the router does not support progressive call invocations")
            )
        options: dict[str, Any] = {"progress": True}
        request_id, request, d = self._new_call(procedure, options, timeout, on_progress, disclose_me)
        stream = CallStream(
            self._start_call,
            self._send,
            self._cancel_call,
            lambda pending_id: self._table.requests.get(pending_id),
            request_id,
            request,
            procedure,
            options,
        )
        defer.Deferred.fromCoroutine(stream.pump(chunks))
        return d

    def _new_call(
        self,
        procedure: str,
        options: dict[str, Any],
        timeout: float | None,
        on_progress: Callable[..., Any] | None,
        disclose_me: bool,
    ) -> tuple[int, Request, defer.Deferred[Any]]:
        """A new call's request id, its entry for the table and its Deferred (whose
        ``cancel()`` cancels the call); the call's options are added to ``options``."""
        request_id = self._ids.next()
        if timeout:
            options["timeout"] = int(math.ceil(timeout * 1000))
        if on_progress is not None:
            options["receive_progress"] = True
        if disclose_me:
            options["disclose_me"] = True
        d: defer.Deferred[Any] = defer.Deferred(lambda _: self._cancel_call(request_id))
        request = Request(CALL, d, procedure, CallData(timeout))
        request.on_progress = on_progress
        return request_id, request, d

    def _start_call(self, request_id: int, request: Request, message: list[Any]) -> defer.Deferred[Any] | None:
        """Send the first CALL of a call and enter it in the table (a failed Deferred if it
        could not be sent); the local timeout starts."""
        failed = self._table.send(request_id, request, message)
        if failed is not None:
            return failed
        self._calls_made += 1
        timeout = request.data.timeout if isinstance(request.data, CallData) else None
        if timeout:
            request.timer = self.clock.callLater(timeout, self._call_timed_out, request_id)
        return None

    def register(
        self,
        procedure: str,
        fn: Callable[..., Any],
        *,
        match: str = "exact",
        invoke: str = "single",
        details: bool = False,
        stream_input: bool = False,
    ) -> defer.Deferred[Registration]:
        """Register ``fn`` as ``procedure``; fires with a :class:`Registration`.

        ``fn(*args, **kwargs)`` may return a value, a :class:`CallResult`, a Deferred, or
        be an ``async def``. When the caller asked for progressive results it also gets a
        ``progress`` keyword argument: ``progress(*args, **kwargs)`` sends one progressive
        result. Raising :class:`ApplicationError` answers with that error; any other
        exception answers ``wamp.error.runtime_error`` with the exception's text (and the
        traceback when the session has ``debug`` on). With ``details=True`` it also gets
        ``details``, an :class:`InvocationDetails` (the concrete procedure URI of a pattern
        registration, the caller when disclosed). Raises ValueError for an unknown
        ``match`` or ``invoke`` policy.

        With ``stream_input=True`` the procedure takes its input as a stream (progressive
        call invocations, see :meth:`call_stream`): ``fn`` is called once, at the first
        chunk, with no positional arguments and the keyword argument ``chunks``, an
        :class:`InvocationChunks` to read with ``async for chunk in chunks`` (a chunk of
        one positional value is that value, any other a :class:`CallResult`). A plain call
        to it is a stream of one chunk.
        """
        if match not in MATCH_POLICIES:
            raise ValueError(f"match must be one of {', '.join(MATCH_POLICIES)}, got {match!r}")
        if invoke not in INVOKE_POLICIES:
            raise ValueError(f"invoke must be one of {', '.join(INVOKE_POLICIES)}, got {invoke!r}")
        if self.state is not SessionState.JOINED:
            return defer.fail(NotConnected(f"cannot register {procedure}: session is {self.state.value}"))
        options: dict[str, Any] = {}
        if match != "exact":
            options["match"] = match
        if invoke != "single":
            options["invoke"] = invoke
        request_id = self._ids.next()
        d: defer.Deferred[Registration] = defer.Deferred()
        request = Request(REGISTER, d, procedure, RegisterData(fn, match, invoke, details, stream_input))
        return self._table.send(request_id, request, [REGISTER, request_id, options, procedure]) or d

    def subscribe(
        self,
        topic: str,
        handler: Callable[..., Any],
        *,
        match: str = "exact",
        details: bool = False,
        get_retained: bool = False,
        resume: tuple[str, int] | None = None,
    ) -> defer.Deferred[Subscription]:
        """Subscribe ``handler(*args, **kwargs)`` to ``topic``; fires with a :class:`Subscription`.

        The handler may return a Deferred or be an ``async def``; its errors go to
        ``on_user_error`` (default: logged with the traceback).
        With ``details=True`` it also gets ``details``, an :class:`EventDetails` (the
        concrete topic of a pattern subscription, the publication id, the publisher when
        disclosed). ``get_retained=True`` asks the router for the event it retained on
        the topic, delivered after subscribing. Raises ValueError for an unknown
        ``match`` policy.

        ``resume=(epoch, offset)`` (a relay with event history for the topic, exact match):
        the events after the one at that position (:attr:`Subscription.position` of an
        earlier subscription) are delivered first, each with ``EventDetails.recovered``
        True; :attr:`Subscription.recovered` tells whether all of them could be. The
        reconnecting :class:`Client` does this by itself.
        """
        if match not in MATCH_POLICIES:
            raise ValueError(f"match must be one of {', '.join(MATCH_POLICIES)}, got {match!r}")
        if self.state is not SessionState.JOINED:
            return defer.fail(NotConnected(f"cannot subscribe to {topic}: session is {self.state.value}"))
        options: dict[str, Any] = {"match": match} if match != "exact" else {}
        if get_retained:
            options["get_retained"] = True
        if resume is not None:
            options["_resume"] = {"epoch": resume[0], "offset": resume[1]}
        request_id = self._ids.next()
        d: defer.Deferred[Subscription] = defer.Deferred()
        request = Request(SUBSCRIBE, d, topic, SubscribeData(handler, match, details))
        return self._table.send(request_id, request, [SUBSCRIBE, request_id, options, topic]) or d

    def publish(
        self,
        topic: str,
        /,
        *args: Any,
        acknowledge: bool = False,
        exclude_me: bool = True,
        retain: bool = False,
        exclude: list[int] | None = None,
        eligible: list[int] | None = None,
        **kwargs: Any,
    ) -> defer.Deferred[int | None]:
        """Publish an event with ``args`` and ``kwargs`` to ``topic``.

        With ``acknowledge=True`` the Deferred fires with the publication id once the
        router confirmed (or fails with its ERROR). Without it the router sends no
        answer: the Deferred has already fired with None when returned (it fails at once
        with :class:`NotConnected` or ``EncodeError`` when the event could not be sent).
        ``exclude_me=False`` asks to receive one's own event, ``exclude``/``eligible``
        list session ids, ``retain`` asks the broker to keep the event for late subscribers.
        """
        if self.state is not SessionState.JOINED:
            return defer.fail(NotConnected(f"cannot publish to {topic}: session is {self.state.value}"))
        options: dict[str, Any] = {}
        if acknowledge:
            options["acknowledge"] = True
        if not exclude_me:
            options["exclude_me"] = False
        if retain:
            options["retain"] = True
        if exclude is not None:
            options["exclude"] = list(exclude)
        if eligible is not None:
            options["eligible"] = list(eligible)
        request_id = self._ids.next()
        message = [PUBLISH, request_id, options, topic, *payload(args, kwargs, options)]
        if not acknowledge:
            try:
                self._send(message)
            except EncodeError as error:
                return defer.fail(error)
            self._publications_sent += 1
            return defer.succeed(None)
        d: defer.Deferred[int | None] = defer.Deferred()
        failed = self._table.send(request_id, Request(PUBLISH, d, topic), message)
        if failed is None:
            self._publications_sent += 1
        return failed or d

    # -- handles, cancel and timeout ---------------------------------------------------

    def _unregister(self, registration: Registration) -> defer.Deferred[None]:
        if not registration.active or self.state is not SessionState.JOINED:
            registration.active = False
            return defer.succeed(None)
        request_id = self._ids.next()
        d: defer.Deferred[None] = defer.Deferred()
        request = Request(UNREGISTER, d, registration.procedure, registration)
        return self._table.send(request_id, request, [UNREGISTER, request_id, registration.id]) or d

    def _unsubscribe(self, subscription: Subscription) -> defer.Deferred[None]:
        if not subscription.active or self.state is not SessionState.JOINED:
            subscription.active = False
            return defer.succeed(None)
        if len(self._table.subscriptions.get(subscription.id, ())) > 1:
            subscription.active = False
            self._table.forget(subscription)
            return defer.succeed(None)
        request_id = self._ids.next()
        d: defer.Deferred[None] = defer.Deferred()
        request = Request(UNSUBSCRIBE, d, subscription.topic, subscription)
        return self._table.send(request_id, request, [UNSUBSCRIBE, request_id, subscription.id]) or d

    def _can_cancel(self) -> bool:
        return self.state is SessionState.JOINED and self.router_supports("dealer", "call_canceling")

    def _cancel_call(self, request_id: int) -> None:
        self._table.cancel_call(request_id, self._cancel_mode, self._can_cancel())

    def _call_timed_out(self, request_id: int) -> None:
        self._table.call_timed_out(request_id, self._can_cancel())


__all__ = ["CANCEL_MODES", "INVOKE_POLICIES", "MATCH_POLICIES", "SessionRequests"]
