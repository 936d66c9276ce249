"""A session as the dealer, the broker and the meta API see it: :class:`RoutedSession`.

Routing needs little of a session: who it is (id, authid, authrole), what it announced
(features), a way to send it messages (and to know whether its connection keeps up), the
ids of the invocations sent to it, and its description for the meta API. The state
machine of a client's session (HELLO, authentication, GOODBYE, ABORT) is
:class:`~promisifier.router.session.RouterSession`, one implementation; the cluster's
stand-ins for sessions of other nodes (:mod:`promisifier.cluster.proxies`, ``remote``
True) are the others.

Of the router, this module imports only the :class:`~promisifier.router.peer.Peer` protocol
(for type checking).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from promisifier.router.peer import Peer
    from promisifier.wire.messages import Message


class RoutedSession(Protocol):
    """A session joined to a realm, as routing sees it.

    Sessions are hashable and compared by identity (routing tables are keyed by them).
    """

    # Routing only reads these: an implementation may hold them as plain attributes (of
    # these types or narrower ones).

    @property
    def session_id(self) -> int | None:
        """The session id (WELCOME.Session), unique in the router while the session lives;
        never None once routing sees the session (a connection's session has none before
        it joins)."""
        ...

    @property
    def authid(self) -> str | None: ...

    @property
    def authrole(self) -> str | None: ...

    @property
    def remote(self) -> bool:
        """True for a stand-in for sessions of another node of a cluster: the dealer never
        forwards a call from a remote caller to a remote callee, and cluster-wide
        registrations count only the callees of this router."""
        ...

    @property
    def connection(self) -> Peer:
        """The connection the session's messages go through. Routing uses only
        ``connection.congested`` (no calls to a slow consumer), ``connection.send_shared``
        (an event encoded once for all its subscribers) and ``connection.peer`` (the
        address, for logs)."""
        ...

    @property
    def last_send_error(self) -> str:
        """Why the last :meth:`send` that returned False could not encode its message."""
        ...

    def send(self, message: Message) -> bool:
        """Send ``message``; False when it cannot be encoded for this session (logged)."""
        ...

    def send_error(
        self,
        request_type: int,
        request_id: int,
        error_uri: str,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Send ERROR for the session's request ``request_id`` of type ``request_type``."""
        ...

    def has_feature(self, role: str, feature: str) -> bool:
        """True when the session announced ``feature`` for ``role`` (HELLO.Details.roles)."""
        ...

    def next_invocation_id(self) -> int:
        """The request id of the next INVOCATION sent to this session as a callee."""
        ...

    def details(self) -> dict[str, Any]:
        """The session as the meta API describes it (``wamp.session.get``, ``on_join``,
        the details a dynamic authorizer gets)."""
        ...

    def protocol_violation(self, text: str) -> None:
        """End the session: it broke the protocol (ABORT ``wamp.error.protocol_violation``)."""
        ...

    def goodbye(self, reason: str, message: str = "") -> None:
        """Close the session from the router's side (GOODBYE ``reason``)."""
        ...

    def log_fields(self) -> dict[str, Any]:
        """The fields every log event about this session carries."""
        ...


__all__ = ["RoutedSession"]
