"""A WAMP session a bridge holds in the router for a client that doesn't speak WAMP.

:class:`BridgeSession` is the router's peer for that session: the bridge builds the
client's WAMP messages (HELLO, CALL, SUBSCRIBE, ...) and the session hands the router's
answers back, so each bridged client is a real session of its realm (meta API, metrics,
status page, authorization) without a WAMP serializer in between.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet import defer

from promisifier.transport.closing import CloseCode
from promisifier.transport.stats import ConnectionStats
from promisifier.wire import ErrorURI, IdSequence
from promisifier.wire.messages import (
    ABORT,
    AUTHENTICATE,
    CHALLENGE,
    ERROR,
    EVENT,
    GOODBYE,
    HELLO,
    PUBLISHED,
    REGISTERED,
    RESULT,
    SUBSCRIBED,
    UNREGISTERED,
    UNSUBSCRIBED,
    WELCOME,
)

__all__ = ["BridgeSession", "SessionOwner"]

_REPLIES = frozenset((RESULT, SUBSCRIBED, UNSUBSCRIBED, PUBLISHED, REGISTERED, UNREGISTERED))
_ROLES = {
    "caller": {"features": {"call_timeout": True}},
    "publisher": {"features": {}},
    "subscriber": {"features": {}},
}


class SessionOwner(Protocol):
    """The bridge connection a :class:`BridgeSession` belongs to."""

    #: True while the client reads too slowly (events for it are dropped)
    congested: bool

    def on_event(self, session: BridgeSession, message: list) -> None:
        """An EVENT for one of the session's subscriptions."""

    def on_session_closed(self, session: BridgeSession, code: int, reason: str) -> None:
        """The router ended the session (GOODBYE, ABORT, kill, shutdown, protocol error)."""


class BridgeSession:
    """One WAMP session of a bridged client, as the router's peer."""

    def __init__(
        self,
        owner: SessionOwner,
        handler_factory: Any,
        reactor: Any,
        *,
        transport: str,
        connection_id: int,
        peer: str,
        stats: ConnectionStats,
    ) -> None:
        self.owner = owner
        self.reactor = reactor
        #: how the meta API, metrics and status page name the transport
        self.serializer_name = transport
        self.transport_type = transport
        self.connection_id = connection_id
        self.peer = peer
        #: the client connection's counters (shared by its sessions)
        self.stats = stats
        self.established = False
        self.closed = False
        self.session_id: int | None = None
        self.authid: str | None = None
        self.authrole: str | None = None
        #: fires True once WELCOME came, False when the session was refused or ended first
        self.joined: defer.Deferred[bool] = defer.Deferred()
        self._ticket = ""
        self._requests = IdSequence()
        self._pending: dict[int, defer.Deferred[list]] = {}
        self._handler = handler_factory(self)

    @property
    def congested(self) -> bool:
        return self.owner.congested

    # -- from the bridge -----------------------------------------------------------------

    def join(self, realm: str | None, authid: str | None = None, ticket: str | None = None) -> defer.Deferred[bool]:
        """Send HELLO: anonymous, or ticket authentication when ``ticket`` is given."""
        details: dict[str, Any] = {"roles": _ROLES, "agent": "promisifier bridge"}
        if ticket is not None:
            self._ticket = ticket
            details["authmethods"] = ["ticket"]
            if authid:
                details["authid"] = authid
        else:
            details["authmethods"] = ["anonymous"]
        self._to_router([HELLO, realm, details])
        return self.joined

    def request(self, message: list) -> defer.Deferred[list]:
        """Send a request (its request id is put at index 1); fires with the router's
        reply, an ERROR included (a synthetic ``wamp.error.canceled`` if the session ends)."""
        request_id = self._requests.next()
        message[1] = request_id
        if self.closed:
            return defer.succeed([ERROR, message[0], request_id, {}, ErrorURI.CANCELED, ["the session is gone"]])
        reply: defer.Deferred[list] = defer.Deferred()
        self._pending[request_id] = reply
        self._to_router(message)
        return reply

    def send_only(self, message: list) -> None:
        """Send a message that gets no reply."""
        self._to_router(message)

    def leave(self) -> None:
        """End the session with GOODBYE (the router's reply ends it)."""
        if self.established:
            self.established = False
            self._to_router([GOODBYE, {}, ErrorURI.CLOSE_NORMAL])
        elif not self.closed:
            self.end(CloseCode.NORMAL, "left")

    def _to_router(self, message: list) -> None:
        if self._handler is not None and not self.closed:
            self._handler.on_message(message)

    # -- the router's Peer interface -------------------------------------------------------

    def send(self, message: list) -> None:
        kind = message[0]
        if kind == EVENT:
            if self.established:
                self.owner.on_event(self, message)
        elif kind in _REPLIES or kind == ERROR:
            reply = self._pending.pop(message[2] if kind == ERROR else message[1], None)
            if reply is not None:
                reply.callback(message)
        elif kind == WELCOME:
            self.established = True
            self.session_id = message[1]
            self.authid = message[2].get("authid")
            self.authrole = message[2].get("authrole")
            self.joined.callback(True)
        elif kind == CHALLENGE:
            # answered on the next turn, as over a network: the router is still sending
            self.reactor.callLater(0, self._to_router, [AUTHENTICATE, self._ticket, {}])
        elif kind == ABORT:
            if not self.joined.called:
                self.joined.callback(False)
        elif kind == GOODBYE:
            if self.established:
                # the router ends the session (realm closed, killed, shutdown)
                self.established = False
                self.owner.on_session_closed(self, CloseCode.GOING_AWAY, message[2])
                self.reactor.callLater(0, self._say_goodbye)
            else:
                self.reactor.callLater(0, self.end, CloseCode.NORMAL, "goodbye")

    def send_shared(self, message: list, encoded: dict[str, bytes]) -> bool:
        if self.closed or self.owner.congested:
            return False
        self.send(message)
        return True

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """The router closes this session's transport: the session ends on the next turn."""
        self.established = False
        self.owner.on_session_closed(self, code, reason)
        self.reactor.callLater(0, self.end, code, reason)

    def drop(self) -> None:
        self.close(CloseCode.GOING_AWAY, "dropped")

    # -- ending ----------------------------------------------------------------------------

    def _say_goodbye(self) -> None:
        self._to_router([GOODBYE, {}, ErrorURI.CLOSE_GOODBYE_AND_OUT])
        self.end(CloseCode.NORMAL, "goodbye")

    def end(self, code: int, reason: str) -> None:
        """The session is over: fail what waits, tell the router its transport is gone."""
        if self.closed:
            return
        self.closed = True
        self.established = False
        if not self.joined.called:
            self.joined.callback(False)
        pending, self._pending = self._pending, {}
        for request_id, reply in pending.items():
            reply.callback([ERROR, 0, request_id, {}, ErrorURI.CANCELED, ["the session is gone"]])
        handler, self._handler = self._handler, None
        if handler is not None:
            handler.on_close(code, reason)
