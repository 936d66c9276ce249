"""A realm: a routing namespace with its sessions, its dealer, its broker and its meta API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from promisifier.router.authz import Authorizer
from promisifier.router.broker import BROKER_FEATURES, Broker
from promisifier.router.dealer import DEALER_FEATURES, Dealer
from promisifier.router.meta import BROKER_META_FEATURES, DEALER_META_FEATURES, MetaApi
from promisifier.router.realm_view import Handler
from promisifier.router.router_config import Limits, RealmConfig
from promisifier.wire import ErrorURI
from promisifier.wire.messages import (
    CALL,
    CANCEL,
    PUBLISH,
    REGISTER,
    SUBSCRIBE,
    UNREGISTER,
    UNSUBSCRIBE,
    YIELD,
    Message,
)

log = Logger(namespace="promisifier.router.realm")

if TYPE_CHECKING:
    from promisifier.router.clock import Clock
    from promisifier.router.routed import RoutedSession

_ROUTER_ROLES = {
    "dealer": {"features": {**DEALER_FEATURES, **DEALER_META_FEATURES}},
    "broker": {"features": {**BROKER_FEATURES, **BROKER_META_FEATURES}},
}


class Realm:
    """One realm of a router. Routing tables live here, not in the sessions."""

    def __init__(self, config: RealmConfig, clock: Clock, limits: Limits | None = None) -> None:
        self.config = config
        #: the router's limits (per session; the realm's own session cap)
        self.limits = limits if limits is not None else Limits()
        self.name = config.name
        self.strict_uris = config.strict_uris
        #: the clock every timeout in the realm runs on
        self.clock = clock
        #: joined sessions by session id
        self.sessions: dict[int, RoutedSession] = {}
        self.dealer = Dealer(self)
        self.broker = Broker(self)
        self.meta = MetaApi(self)
        self.authorizer = Authorizer(config.roles)
        #: PUBLISHes without acknowledge dropped because they were not authorized
        self.denied_publications = 0
        #: message type -> handler(session, message) for an established session
        self.dispatch: dict[int, Handler] = self._make_dispatch()

    def _make_dispatch(self) -> dict[int, Handler]:
        # GOODBYE, ABORT and ERROR are the session's own business (RouterSession.on_message)
        dealer, broker = self.dealer, self.broker
        return {
            CALL: dealer.on_call,
            YIELD: dealer.on_yield,
            CANCEL: dealer.on_cancel,
            REGISTER: dealer.on_register,
            UNREGISTER: dealer.on_unregister,
            PUBLISH: broker.on_publish,
            SUBSCRIBE: broker.on_subscribe,
            UNSUBSCRIBE: broker.on_unsubscribe,
        }

    def reconfigure(self, config: RealmConfig, limits: Limits | None = None) -> None:
        """Apply a new configuration of this realm to new requests.

        Roles and permissions change at once (the decision cache goes with the old
        rules); sessions whose role no longer exists are closed with GOODBYE.
        """
        self.config = config
        if limits is not None:
            self.limits = limits
        self.strict_uris = config.strict_uris
        self.authorizer = Authorizer(config.roles)
        for session in list(self.sessions.values()):
            if session.authrole is None or not self.authorizer.has_role(session.authrole):
                session.goodbye(
                    ErrorURI.CLOSE_CLOSE_REALM, f"role {session.authrole!r} was removed from realm {self.name!r}"
                )

    def close(self, reason: str, message: str) -> None:
        """Close every session of the realm with GOODBYE ``reason``."""
        for session in list(self.sessions.values()):
            session.goodbye(reason, message)

    def authorized(
        self, session: RoutedSession, action: str, uri: str, message: Message, proceed: Handler, match: Any = "exact"
    ) -> bool:
        """Check ``action`` on ``uri`` for the request ``message``.

        True: go on now. False: the request was denied (and answered), or the decision is
        pending (a dynamic authorizer) and ``proceed(session, message)`` runs once allowed.
        """
        decision = self.authorizer.authorize(
            session, action, uri, match if match in ("prefix", "wildcard") else "exact"
        )
        if decision is True:
            return True
        if decision is False:
            self._deny(session, action, uri, message)
            return False

        def decided(allowed: bool) -> None:
            if not self.holds(session):
                return  # the session left meanwhile
            if allowed:
                proceed(session, message)
            else:
                self._deny(session, action, uri, message)

        def failed(failure: Any) -> None:
            log.failure("dynamic authorizer failed on {action} {uri}", failure, action=action, uri=uri)
            if self.holds(session):
                self._deny(session, action, uri, message)

        decision.addCallbacks(decided, failed)
        return False

    def _deny(self, session: RoutedSession, action: str, uri: str, message: Message) -> None:
        log.info(
            "session {session_id} ({authrole}) not authorized to {action} {uri}",
            session_id=session.session_id,
            authrole=session.authrole,
            action=action,
            uri=uri,
        )
        if message[0] == CALL:
            self.dealer.calls_rejected += 1
        if message[0] == PUBLISH and message[2].get("acknowledge") is not True:
            self.denied_publications += 1
            return
        session.send_error(message[0], message[1], ErrorURI.NOT_AUTHORIZED, [f"not authorized to {action} {uri!r}"])

    def holds(self, session: RoutedSession) -> bool:
        """True while routing in this realm reaches ``session``: from :meth:`attach` to
        :meth:`detach` for a session of this router; for a stand-in for sessions of another
        node (``remote``), while the cluster keeps it attached to the dealer (a callee's
        until its node is gone, a caller's while it has calls here). Those are never in
        :attr:`sessions`, which lists this router's own sessions."""
        return self.dealer.attached(session)

    def router_roles(self) -> dict[str, Any]:
        """WELCOME.Details.roles: the router's roles and the features really implemented."""
        return _ROUTER_ROLES

    def attach(self, session: RoutedSession) -> None:
        """Add a session that is being welcomed (before its WELCOME is sent)."""
        assert session.session_id is not None
        self.sessions[session.session_id] = session
        self.dealer.attach(session)
        self.broker.attach(session)

    def announce_join(self, session: RoutedSession) -> None:
        """Tell the realm a session joined (after its WELCOME was sent)."""
        self.meta.session_joined(session)

    def detach(self, session: RoutedSession) -> None:
        """Remove a session that left, and everything it held."""
        if self.sessions.pop(session.session_id, None) is None:  # type: ignore[arg-type]
            return
        self.dealer.detach(session)
        self.broker.detach(session)
        self.meta.session_left(session)

    def state_counts(self) -> dict[str, int]:
        """How much routing state the realm holds (all zero when nobody is connected)."""
        return {
            "sessions": len(self.sessions),
            "registrations": self.dealer.registration_count,
            "subscriptions": self.broker.subscription_count,
            "pending_calls": self.dealer.pending_call_count,
        }
