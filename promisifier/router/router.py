"""The router: its realms, the sessions of every connection, reload and shutdown.

No network here: transports hand connections to :meth:`RouterCore.new_session`. The relay
(``twistd promisifier-relay``) and :mod:`promisifier.listen` build the transport factories
and listeners; :class:`promisifier.Router` (embedding) adds them as methods.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from promisifier.router.auth import Authenticator
from promisifier.router.clock import Clock
from promisifier.router.peer import Peer
from promisifier.router.realm import Realm
from promisifier.router.router_config import RouterConfig
from promisifier.router.session import RouterSession
from promisifier.transport.closing import CloseCode
from promisifier.transport.stats import ConnectionStats
from promisifier.wire import ErrorURI, random_id

log = Logger(namespace="promisifier.router")


class RouterCore:
    """A WAMP v2 router (dealer and broker) for the realms of its configuration."""

    def __init__(self, config: RouterConfig | None = None, *, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.config = config if config is not None else RouterConfig()
        self.reactor = reactor
        #: the clock every timeout of the router runs on
        self.clock: Clock = reactor
        self.realms: dict[str, Realm] = {
            realm_config.name: Realm(realm_config, self.clock, self.config.limits)
            for realm_config in self.config.realms
        }
        self.authenticator = Authenticator(self.config.auth)
        #: sessions refused at authentication, since start
        self.auth_failures = 0
        #: sessions aborted for breaking the protocol, since start (the transports count
        #: frames they could not decode in their connections' stats)
        self.protocol_errors = 0
        #: the router clock when the router was made
        self.started_at: float = self.clock.seconds()
        #: traffic of the connections that are gone, by serializer name
        self._closed_traffic: dict[str | None, ConnectionStats] = {}
        #: every session of every connection, joined or not
        self._sessions: set[RouterSession] = set()
        #: the counters of each open connection, by its serializer when its session was made
        #: (kept apart so that traffic() sums them without a Python loop per connection)
        self._open_stats: dict[str | None, dict[RouterSession, ConnectionStats]] = {}
        self._session_ids: set[int] = set()
        self._stopping: defer.Deferred[None] | None = None
        self._stopped: defer.Deferred[None] | None = None
        #: set by hurry(): the grace period and the wait for GOODBYE answers end now
        self._hurried = False
        self._drop_timer: Any = None
        #: where new session ids come from (a cluster makes them unique across its nodes)
        self.session_id_source: Callable[[], int] = random_id
        #: called with each realm a reload opens (a cluster links it to the other nodes)
        self.on_realm_opened: Callable[[Realm], None] | None = None

    # -- sessions -------------------------------------------------------------------

    def new_session(self, peer: Peer, authenticator: Authenticator | None = None) -> RouterSession:
        """The session for a newly opened connection (the transport's handler factory)."""
        session = RouterSession(self, peer, authenticator)
        self._sessions.add(session)
        stats = getattr(peer, "stats", None)
        if stats is not None:
            table = self._open_stats.get(peer.serializer_name)
            if table is None:
                table = self._open_stats[peer.serializer_name] = {}
            table[session] = stats
        if self._stopping is not None:
            session.goodbye(ErrorURI.CLOSE_SYSTEM_SHUTDOWN, "router is shutting down")
        return session

    def new_session_id(self) -> int:
        """A random session id not used by any live session of this router."""
        while True:
            session_id = self.session_id_source()
            if session_id not in self._session_ids:
                self._session_ids.add(session_id)
                return session_id

    @property
    def session_count(self) -> int:
        """Joined sessions in all realms."""
        return sum(len(realm.sessions) for realm in self.realms.values())

    def release_session_id(self, session_id: int | None) -> None:
        """Make a session id available again (its session left)."""
        if session_id is not None:
            self._session_ids.discard(session_id)

    def session_ended(self, session: RouterSession) -> None:
        """Called by a session whose connection is gone."""
        if session in self._sessions:
            self._keep_traffic(session)
        self._sessions.discard(session)
        if session.session_id is not None:
            self._session_ids.discard(session.session_id)
        if self._stopping is not None and not self._sessions:
            stopping, self._stopping = self._stopping, None
            stopping.callback(None)

    @property
    def stopping(self) -> bool:
        """True from :meth:`stop` on: the router is shutting down."""
        return self._stopped is not None

    def _keep_traffic(self, session: RouterSession) -> None:
        for name, table in self._open_stats.items():
            stats = table.pop(session, None)
            if stats is not None:
                total = self._closed_traffic.get(name)
                if total is None:
                    total = self._closed_traffic[name] = ConnectionStats()
                _add_stats(total, stats)
                return

    @property
    def connections(self) -> list[RouterSession]:
        """The session of every open connection, joined to a realm or not."""
        return list(self._sessions)

    def traffic(self) -> dict[str | None, ConnectionStats]:
        """Bytes, messages, dropped events and protocol errors since start, by serializer
        name (None: in-process peers), open and closed connections together."""
        # The status page samples this every second: with 100,000 connections a Python
        # loop over them took a tenth of a core, so each counter is summed by sum/map, in C
        # (about 0.5 µs per connection here).
        totals = {name: dataclasses.replace(kept) for name, kept in self._closed_traffic.items()}
        for name, table in self._open_stats.items():
            if not table:
                continue
            total = totals.get(name)
            if total is None:
                total = totals[name] = ConnectionStats()
            stats = table.values()
            _add_stats(total, ConnectionStats(*[sum(map(counter, stats)) for counter in _COUNTERS]))
        return totals

    def state_counts(self) -> dict[str, int]:
        """Routing state summed over realms, plus open connections (all zero when idle)."""
        totals = {
            "connections": len(self._sessions),
            "sessions": 0,
            "registrations": 0,
            "subscriptions": 0,
            "pending_calls": 0,
        }
        for realm in self.realms.values():
            for key, value in realm.state_counts().items():
                totals[key] += value
        return totals

    def reload(self, config: RouterConfig) -> None:
        """Apply a new configuration without a restart.

        New realms open; removed realms close their sessions with GOODBYE
        ``wamp.close.close_realm``; kept realms take their new roles and permissions for
        new requests (sessions whose role is gone are closed). Listener settings are the
        relay service's business (it re-binds what changed).
        """
        old_names = set(self.realms)
        self.config = config
        self.authenticator = Authenticator(config.auth)
        for realm_config in config.realms:
            realm = self.realms.get(realm_config.name)
            if realm is None:
                realm = self.realms[realm_config.name] = Realm(realm_config, self.clock, config.limits)
                if self.on_realm_opened is not None:
                    self.on_realm_opened(realm)
            else:
                realm.reconfigure(realm_config, config.limits)
        for name in old_names - {r.name for r in config.realms}:
            realm = self.realms.pop(name)
            realm.close(ErrorURI.CLOSE_CLOSE_REALM, f"realm {name!r} was removed from the configuration")
        log.info("configuration reloaded: realms {realms}", realms=", ".join(self.realms))

    def stop(self, timeout: float = 5.0, grace: float | None = None) -> defer.Deferred[None]:
        """Shut down: let calls in flight finish, then close every session; fires when all are gone.

        Calls in flight get up to ``grace`` seconds (default ``config.shutdown_grace``) to
        finish; then every session gets GOODBYE ``wamp.close.system_shutdown`` (calls still
        in flight fail with ``wamp.error.canceled``). Connections still open ``timeout``
        seconds after the GOODBYEs are dropped. Stop listening first (the relay service
        does), so no new sessions arrive meanwhile.
        """
        if self._stopped is None:
            self._stopped = defer.Deferred()
            grace = self.config.shutdown_grace if grace is None else grace
            drained = self._calls_drained(grace)
            drained.addCallback(lambda _: self._close_sessions(timeout))
            drained.chainDeferred(self._stopped)
        done: defer.Deferred[None] = defer.Deferred()

        def fire_done(result: object) -> object:
            done.callback(None)
            return result

        self._stopped.addBoth(fire_done)
        return done

    def hurry(self) -> None:
        """During :meth:`stop`: end the grace period now (calls in flight fail), and drop
        the connections that have not answered their GOODBYE yet. (The relay calls it on a
        second SIGTERM or Ctrl-C.)"""
        self._hurried = True
        timer = self._drop_timer
        if timer is not None and timer.active():
            timer.reset(0)

    def _calls_drained(self, grace: float) -> defer.Deferred[None]:
        # Polled, not signalled: shutdown is rare, and this keeps the dealer's per-call path
        # free of any bookkeeping for it.
        drained: defer.Deferred[None] = defer.Deferred()
        deadline = self.clock.seconds() + grace
        pending = sum(realm.dealer.pending_call_count for realm in self.realms.values())
        if pending and grace > 0:
            log.info(
                "shutdown: waiting up to {grace:g} s for {pending} calls in flight (a second signal stops at once)",
                grace=grace,
                pending=pending,
            )

        def check() -> None:
            pending = sum(realm.dealer.pending_call_count for realm in self.realms.values())
            if not pending or self.clock.seconds() >= deadline or self._hurried:
                if pending:
                    log.info("shutdown: {pending} calls still in flight after the grace period", pending=pending)
                drained.callback(None)
            else:
                self.clock.callLater(_DRAIN_POLL_INTERVAL, check)

        check()
        return drained

    def _close_sessions(self, timeout: float) -> defer.Deferred[None]:
        if not self._sessions:
            return defer.succeed(None)
        self._stopping = defer.Deferred()
        # Calls that outlived the grace period end with an ERROR before the GOODBYEs, so
        # every caller learns why its call failed.
        for realm in self.realms.values():
            realm.dealer.cancel_all("the router is shutting down")
        for session in list(self._sessions):
            session.goodbye(ErrorURI.CLOSE_SYSTEM_SHUTDOWN, "router is shutting down")
        stopping = self._stopping

        def drop_remaining() -> None:
            for session in list(self._sessions):
                drop = getattr(session.connection, "drop", None)
                if drop is not None:
                    drop()
                else:
                    session.connection.close(CloseCode.GOING_AWAY, "router stopped")

        timer = self._drop_timer = self.clock.callLater(0 if self._hurried else timeout, drop_remaining)

        def finished(result: object) -> None:
            if timer.active():
                timer.cancel()

        stopping.addBoth(finished)
        return stopping


#: seconds between checks for calls in flight while shutting down
_DRAIN_POLL_INTERVAL = 0.05


#: a reader of each counter of a ConnectionStats, in field order
_COUNTERS = [operator.attrgetter(name) for name in ConnectionStats.__slots__]


def _add_stats(total: ConnectionStats, stats: ConnectionStats) -> None:
    for name in ConnectionStats.__slots__:
        setattr(total, name, getattr(total, name) + getattr(stats, name, 0))


#: the former name (``promisifier.Router`` is the embeddable router, with network entry points)
Router = RouterCore

__all__ = ["Router", "RouterConfig", "RouterCore"]
