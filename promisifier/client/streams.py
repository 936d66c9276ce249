"""Progressive call invocations, the caller's side: a call's input as a stream of chunks.

:class:`CallStream` (behind :meth:`Session.call_stream`) sends every chunk as one CALL with
``progress`` under the call's request id, and a last CALL without arguments to end the input.
The callee's side is :class:`promisifier.client.callee.InvocationChunks`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from promisifier.client.callee import payload
from promisifier.client.types import CallResult
from promisifier.wire.messages import CALL

if TYPE_CHECKING:
    from promisifier.client.correlation import Request


def chunk_payload(item: Any) -> list[Any]:
    """The Arguments / ArgumentsKw tail of a CALL for one chunk: a :class:`CallResult` as
    its values, anything else as one positional argument."""
    if isinstance(item, CallResult):
        return payload(item.args, item.kwargs)
    return [[item]]


class CallStream:
    """The CALLs of one call whose input is a stream.

    What it needs of its session are callables: ``start_call(request_id, request,
    message)`` (the first CALL, entered in the table; a failed Deferred if it could not
    be sent), ``send(message)``, ``cancel_call(request_id)`` and ``pending(request_id)``
    (the table's entry, or None once the call ended).
    """

    def __init__(
        self,
        start_call: Callable[[int, Request, list[Any]], defer.Deferred[Any] | None],
        send: Callable[[list[Any]], None],
        cancel_call: Callable[[int], None],
        pending: Callable[[int], Request | None],
        request_id: int,
        request: Request,
        procedure: str,
        options: dict[str, Any],
    ) -> None:
        self._start_call = start_call
        self._send = send
        self._cancel_call = cancel_call
        self._pending = pending
        self.request_id = request_id
        self.request = request
        self.procedure = procedure
        self.options = options
        self.started = False

    @property
    def deferred(self) -> defer.Deferred[Any]:
        return self.request.deferred

    def in_flight(self) -> bool:
        return self._pending(self.request_id) is self.request

    def send(self, item: Any, last: bool = False) -> None:
        """Send one chunk (``last``: the CALL that ends the input, ``item`` ignored)."""
        tail = [] if last else chunk_payload(item)
        if not self.started:
            self.started = True
            options = dict(self.options)
            if last:
                options.pop("progress")  # no chunk at all: one plain CALL
            failed = self._start_call(
                self.request_id, self.request, [CALL, self.request_id, options, self.procedure, *tail]
            )
            if failed is not None:
                failed.chainDeferred(self.deferred)
        elif self.in_flight():
            options = {} if last else {"progress": True}
            self._send([CALL, self.request_id, options, self.procedure, *tail])

    async def pump(self, chunks: Iterable[Any] | AsyncIterable[Any]) -> None:
        """Send every chunk as it comes, then the end; stop when the call ended early."""
        d = self.deferred
        try:
            if isinstance(chunks, AsyncIterable):
                async for item in chunks:
                    if d.called:
                        return
                    self.send(item)
            else:
                for item in chunks:
                    if d.called:
                        return
                    self.send(item)
        except Exception as error:  # the source of the chunks failed: the call ends with it
            if self.in_flight():
                self._cancel_call(self.request_id)
            if not d.called:
                d.errback(error)
            return
        if not d.called:
            self.send(None, last=True)
