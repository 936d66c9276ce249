"""A deadline for the HTTP half of the WebSocket opening handshake under ``twisted.web``.

When the WebSocket is a :class:`~autobahn.twisted.resource.WebSocketResource` in a
``twisted.web`` site, the HTTP upgrade request is read by ``twisted.web`` and autobahn
only gets the connection once the request is complete: autobahn's
``openHandshakeTimeout`` never sees a client that connects and sends nothing (or sends
its request one byte at a time), and ``twisted.web``'s own idle timeout is 12 hours and
restarts with every byte. :class:`HandshakeDeadlineSite` closes every connection that
has not been handed over to a WebSocket protocol within ``handshake_timeout`` seconds of
its TCP connection, however much it sends meanwhile.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger
from twisted.web.http import HTTPChannel
from twisted.web.server import Site

log = Logger(namespace="promisifier.transport")


class HandshakeDeadlineChannel(HTTPChannel):
    """An HTTP channel that must hand its connection over (WebSocket upgrade) in time.

    ``WebSocketResource`` takes the transport over by setting the channel's ``transport``
    to None: a channel that still has its transport at the deadline never upgraded.
    """

    _handshake_deadline: Any = None
    _transport: Any = None

    @property  # type: ignore[override]
    def transport(self) -> Any:
        return self._transport

    @transport.setter
    def transport(self, value: Any) -> None:
        # WebSocketResource hands the connection over by setting the channel's transport to
        # None: the deadline has done its job, and nothing may keep the channel alive.
        previous, self._transport = self._transport, value
        if value is None and previous is not None:
            self._cancel_deadline()
            self._detach(previous)

    def _detach(self, transport: Any) -> None:
        """Let go of everything that would keep this channel and its request in memory
        for as long as the WebSocket connection lasts (a few KiB per connection): the
        transport's producer registration, the idle timeout and the upgrade request."""
        # The channel registered itself as the transport's producer (TCP, or TLS over
        # TCP); the WebSocket protocol that takes over registers none.
        unregister = getattr(transport, "unregisterProducer", None)
        if unregister is not None:
            unregister()
        self._networkProducer = None
        self.setTimeout(None)
        self._savedTimeOut = None
        self.requests = []

    def _cancel_deadline(self) -> None:
        deadline, self._handshake_deadline = self._handshake_deadline, None
        if deadline is not None and deadline.active():
            deadline.cancel()

    def connectionMade(self) -> None:  # noqa: N802 - Twisted API
        super().connectionMade()
        timeout = getattr(self.site, "handshake_timeout", 0)
        if timeout and timeout > 0:
            self._handshake_deadline = self.callLater(timeout, self._handshake_expired, timeout)

    def _handshake_expired(self, timeout: float) -> None:
        self._handshake_deadline = None
        transport = self.transport
        if transport is None:  # upgraded: the WebSocket protocol owns the connection
            return
        log.info(
            "closing connection from {peer}: no WebSocket upgrade within {timeout} s",
            peer=str(transport.getPeer()),
            timeout=timeout,
        )
        transport.abortConnection()

    def connectionLost(self, reason: Any) -> None:  # noqa: N802 - Twisted API
        self._cancel_deadline()
        super().connectionLost(reason)


class HandshakeDeadlineSite(Site):
    """A :class:`~twisted.web.server.Site` whose connections must complete the WebSocket
    upgrade within ``handshake_timeout`` seconds (0: no deadline)."""

    protocol = HandshakeDeadlineChannel  # type: ignore[assignment]
    #: no "Starting factory <... object at 0x...>" line per listener
    noisy = False
    #: request paths logged at debug, not in the access log (pages that poll)
    quiet_paths: frozenset[bytes] = frozenset()

    def log(self, request: Any) -> None:
        if request.path in self.quiet_paths:
            log.debug("{line}", line=self._logFormatter(self._logDateTime, request))
            return
        super().log(request)

    def __init__(self, resource: Any, handshake_timeout: float, *args: Any, **kwargs: Any) -> None:
        super().__init__(resource, *args, **kwargs)
        self.handshake_timeout = handshake_timeout
