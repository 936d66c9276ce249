"""Frames written during one reactor turn, handed to the kernel with one ``send`` at its end.

Twisted's ``transport.write`` buffers the data and registers the socket for writing with
the reactor; the reactor's next poll reports it writable and calls the transport's
``doWrite``, which sends and unregisters it. Per connection and turn that is two
``epoll_ctl`` calls and a dispatch through Twisted's logging context, about as much CPU
as the rest of delivering an event (``benchmarks/RESULTS.md``: fan-out).

A :class:`TurnWriter` keeps what one connection writes during a turn in a list and a
reactor-wide :class:`TurnEnd` sends each connection's list with one ``socket.send`` right
after the turn (a ``callLater(0)``, which runs before the reactor polls again). Whatever
the socket does not take at once (a partial write, ``EAGAIN``), and everything written
while Twisted's own buffer holds data, goes to ``transport.write``: Twisted's buffer then
keeps the order, the flow control (the slow-consumer check reads that buffer) and the
error handling (a send that fails is handed to Twisted, whose ``doWrite`` meets the same
error and closes the connection as it always does).

Only a plain TCP or UNIX stream connection of Twisted's (``tcp.Connection`` without TLS)
is written this way: :func:`turn_writer` says None for any other transport.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp
from twisted.logger import Logger

log = Logger(namespace="promisifier.transport")

__all__ = ["TurnEnd", "TurnWriter", "turn_writer"]


class TurnEnd:
    """The writers of one reactor with data pending this turn, flushed once at its end."""

    __slots__ = ("_call", "_reactor", "_writers")

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._writers: list[TurnWriter] = []
        self._call: Any = None

    def add(self, writer: TurnWriter) -> None:
        """Flush ``writer`` at the end of this turn."""
        self._writers.append(writer)
        if self._call is None:
            self._call = self._reactor.callLater(0, self.flush)

    def flush(self) -> None:
        """Send what every writer gathered (also called by the turn's ``callLater``)."""
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()
        writers, self._writers = self._writers, []
        for writer in writers:
            try:
                writer.flush()
            except Exception:  # noqa: BLE001 - one connection's trouble must not stall the others
                log.failure("flushing a connection's writes failed")


#: one TurnEnd per reactor
_turn_ends: dict[int, TurnEnd] = {}


def turn_end(reactor: Any) -> TurnEnd:
    """The :class:`TurnEnd` of ``reactor``."""
    end = _turn_ends.get(id(reactor))
    if end is None or end._reactor is not reactor:
        end = _turn_ends[id(reactor)] = TurnEnd(reactor)
    return end


def turn_writer(transport: Any) -> TurnWriter | None:
    """A :class:`TurnWriter` for ``transport``, or None when it is not a plain (non-TLS)
    stream socket connection of Twisted's."""
    if not isinstance(transport, tcp.Connection) or getattr(transport, "TLS", True):
        return None
    if not all(hasattr(transport, name) for name in ("socket", "dataBuffer", "offset", "_tempDataLen", "reactor")):
        return None
    return TurnWriter(transport, turn_end(transport.reactor))


class TurnWriter:
    """The writes of one connection: gathered during a turn, sent at its end.

    Everything the connection writes must go through :meth:`write` (or :meth:`flush`
    first, before anything is written to the transport another way, and before the
    connection is closed), so that the octets keep their order.
    """

    __slots__ = ("_end", "_pending", "_socket", "_transport")

    def __init__(self, transport: tcp.Connection, end: TurnEnd) -> None:
        self._transport = transport
        self._socket = transport.socket
        self._end = end
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        """Write ``data`` after everything written before."""
        pending = self._pending
        if pending is not None:
            pending.append(data)
            return
        transport = self._transport
        if transport._tempDataLen or transport.offset != len(transport.dataBuffer) or not transport.connected:
            # Twisted's buffer holds data (or the connection is gone): after it, in order.
            transport.write(data)
            return
        self._pending = [data]
        self._end.add(self)

    def flush(self) -> None:
        """Send what was written this turn now (what the socket does not take goes to the
        transport's buffer)."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        transport = self._transport
        if (
            transport._tempDataLen
            or transport.offset != len(transport.dataBuffer)
            or not transport.connected
            or transport.disconnecting
        ):
            transport.write(data)
            return
        try:
            sent = self._socket.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            # Twisted's doWrite meets the same error and closes the connection its way.
            sent = 0
        if sent < len(data):
            transport.write(data[sent:])
