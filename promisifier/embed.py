"""The router inside your own Twisted program, with in-process sessions.

:class:`Router` is the core router (:class:`promisifier.router.RouterCore`) plus its
network entry points (:mod:`promisifier.listen`) and :meth:`Router.session`: a client :class:`~promisifier.client.Session` joined to a realm
of the same router through an in-process link. Messages cross the link as lists, without
serialization (arguments are passed by reference: don't mutate what you receive).
Procedures registered in-process are called by remote clients like any other.

This module is the one place where the router and the client meet; ``router/`` and
``client/`` never import each other.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from promisifier.client.session import Session
from promisifier.listen import Listening
from promisifier.router.auth import AuthConfig, Authenticator
from promisifier.router.router import RouterCore
from promisifier.transport.closing import CloseCode
from promisifier.transport.stats import ConnectionStats

_local_ids = itertools.count(1)


class _LocalEnd:
    """One end of an in-process link: a client connection on one side, a router peer on the other.

    Delivery is asynchronous and ordered: messages are queued and handed over from the
    reactor's next turn, so a handler never runs inside the ``send`` of the other side.
    """

    serializer_name = None
    subprotocol = None
    serializer = None
    #: an in-process peer never queues bytes
    congested = False

    def __init__(self, clock: IReactorTime, description: str) -> None:
        self.clock = clock
        self.connection_id = next(_local_ids)
        self.peer = description
        self.stats = ConnectionStats()
        self.connected = True
        self.close_code = -1
        self.close_reason = ""
        self.other: _LocalEnd | None = None
        #: what receives the messages sent by the other end
        self.handler: Any = None
        self._inbox: deque[list] = deque()
        self._flush_call: IDelayedCall | None = None

    # -- sending (called by the handler of this end) -----------------------------------

    def send(self, message: list) -> None:
        """Hand ``message`` to the other end's handler (next reactor turn, in order)."""
        other = self.other
        if not self.connected or other is None:
            return
        self.stats.messages_out += 1
        other.stats.messages_in += 1
        other._inbox.append(message)
        other._schedule()

    def send_shared(self, message: list, encoded: dict[str, bytes]) -> bool:
        """Same as :meth:`send`: nothing is encoded on an in-process link."""
        if not self.connected or self.other is None:
            return False
        self.send(message)
        return True

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close both ends; each handler's ``on_close(code, reason)`` runs after pending messages."""
        if not self.connected:
            return
        for end in (self, self.other):
            if end is not None and end.connected:
                end.connected = False
                end.close_code = int(code)
                end.close_reason = reason
                end._schedule()

    def drop(self) -> None:
        """Close at once (same as :meth:`close` with 1006 on an in-process link)."""
        self.close(CloseCode.ABNORMAL, "dropped")

    # -- delivery -----------------------------------------------------------------------

    def _schedule(self) -> None:
        if self._flush_call is None:
            self._flush_call = self.clock.callLater(0, self._flush)

    def _flush(self) -> None:
        self._flush_call = None
        inbox = self._inbox
        handler = self.handler
        while inbox:
            message = inbox.popleft()
            if handler is not None:
                handler.on_message(message)
        if not self.connected and handler is not None:
            self.handler = None
            handler.on_close(self.close_code, self.close_reason)


def local_link(clock: IReactorTime, description: str = "local") -> tuple[_LocalEnd, _LocalEnd]:
    """Two connected in-process ends: (client end, router end)."""
    client_end = _LocalEnd(clock, description)
    router_end = _LocalEnd(clock, description)
    client_end.other, router_end.other = router_end, client_end
    return client_end, router_end


class Router(Listening, RouterCore):
    """A WAMP router to embed in a Twisted program: the core router, its network entry
    points (:class:`~promisifier.listen.Listening`: ``listen``, ``site``, ``resource``,
    ``websocket_factory``, ``rawsocket_factory``) and in-process sessions.

    Example::

        router = Router(RouterConfig(realms=("realm1",)))
        yield router.listen("tcp:8080")
        session = yield router.session("realm1")
        yield session.register("com.example.add", lambda a, b: a + b)
    """

    def session(
        self,
        realm: str,
        *,
        authid: str | None = None,
        authrole: str = "anonymous",
        on_join: Callable[[Session], Any] | None = None,
    ) -> defer.Deferred[Session]:
        """An in-process session joined to ``realm``; the same API as the client's Session.

        In-process sessions are the application's own code: they join without
        credentials, with role ``authrole`` (which must exist when the realm has roles),
        even where the network listeners require authentication.
        """
        client_end, router_end = local_link(self.clock, f"in-process:{realm}")
        authenticator = Authenticator(AuthConfig(methods=("anonymous",), anonymous_role=authrole))
        router_end.handler = self.new_session(router_end, authenticator)
        session = Session(client_end, realm, authid=authid, clock=self.clock)  # type: ignore[arg-type]
        client_end.handler = session
        if on_join is not None:
            session.on("join", on_join)
        return session.join()
