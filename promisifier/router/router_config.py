"""The router's settings: realms and limits. The TOML file of the relay maps onto this."""

from __future__ import annotations

from dataclasses import dataclass, field

from promisifier.router.auth import AuthConfig
from promisifier.router.authz import RoleConfig
from promisifier.router.history import DEFAULT_MAX_HISTORY_BYTES, HistoryRule
from promisifier.transport.limits import (
    DEFAULT_KEEPALIVE_INTERVAL,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_OUTGOING_BUFFER,
    DEFAULT_OPEN_HANDSHAKE_TIMEOUT,
    check_slow_consumer,
)

#: How the dealer answers a caller's CANCEL in modes "skip" and "killnowait".
#: "always": ERROR wamp.error.canceled at once, as the specification says.
#: "kill_only": no ERROR for those modes (only "kill" gets its ERROR, after the callee's
#: answer). autobahn-js rejects a cancelled call locally and drops its connection when an
#: ERROR for that call arrives later unless the mode was "kill": use "kill_only" on realms
#: whose callers are autobahn-js.
CANCEL_REPLIES = ("always", "kill_only")


@dataclass(frozen=True)
class Limits:
    """Per-session and per-router limits. Reaching one gets ERROR (or ABORT for sessions)
    ``promisifier.error.limit_exceeded`` with a message naming the limit."""

    #: calls one session may have in flight as a caller
    max_pending_calls_per_caller: int = 10_000
    #: invocations one session may have in flight as a callee (more: the caller gets the ERROR)
    max_pending_invocations_per_callee: int = 10_000
    max_registrations_per_session: int = 10_000
    max_subscriptions_per_session: int = 10_000
    #: joined sessions in the whole router, and in one realm
    max_sessions: int = 100_000
    max_sessions_per_realm: int = 100_000

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if type(value) is not int or value < 1:
                raise ValueError(f"Limits.{name}: a positive int is needed, got {value!r}")


@dataclass(frozen=True)
class RealmConfig:
    """Settings of one realm."""

    name: str
    #: check procedure and topic URIs with the strict rules ([0-9a-z_] components)
    strict_uris: bool = False
    #: see :data:`CANCEL_REPLIES`
    cancel_reply: str = "always"
    #: largest number of retained events kept (one per topic); the oldest is dropped
    max_retained_events: int = 10000
    #: roles and their permissions; None: every session may do everything
    roles: tuple[RoleConfig, ...] | None = None
    #: topics whose events are kept (event history, gap-free resume); the first rule that
    #: covers a topic applies
    history: tuple[HistoryRule, ...] = ()
    #: bytes all the realm's history may hold (estimated); beyond, its oldest events go
    max_history_bytes: int = DEFAULT_MAX_HISTORY_BYTES

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"RealmConfig.name: a non-empty string is needed, got {self.name!r}")
        if self.roles is not None:
            object.__setattr__(self, "roles", tuple(self.roles))
        object.__setattr__(self, "history", tuple(self.history))
        if type(self.max_history_bytes) is not int or self.max_history_bytes < 1:
            raise ValueError(f"RealmConfig.max_history_bytes: a positive int is needed, got {self.max_history_bytes!r}")
        if self.cancel_reply not in CANCEL_REPLIES:
            raise ValueError(f"RealmConfig.cancel_reply: one of {CANCEL_REPLIES} is needed, got {self.cancel_reply!r}")


@dataclass(frozen=True)
class RouterConfig:
    """Settings of one :class:`~promisifier.router.RouterCore`; every field has a default."""

    #: the realms clients may join (names or RealmConfig); HELLO for any other gets ABORT
    #: no_such_realm. Names are turned into RealmConfig(name, strict_uris=strict_uris).
    realms: tuple[RealmConfig, ...] = ("realm1",)  # type: ignore[assignment]
    #: largest WAMP message accepted, in bytes of WebSocket payload (over it: close 1009)
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: seconds a new connection has to complete the WebSocket upgrade
    open_handshake_timeout: float = DEFAULT_OPEN_HANDSHAKE_TIMEOUT
    #: seconds an open connection has to send HELLO before it is closed
    hello_timeout: float = 10.0
    #: check procedure and topic URIs with the strict rules ([0-9a-z_] components)
    strict_uris: bool = False
    #: serializers offered to clients (the client's preference picks among them)
    serializers: tuple[str, ...] = ("json", "msgpack", "cbor")
    #: text sent as WELCOME.Details.agent
    agent: str = field(default="promisifier")
    #: seconds between keep-alive pings to an idle client, and to wait for its pong; a
    #: client that does not answer is dropped (0 turns keep-alive off)
    keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    #: bytes queued for one client beyond which it is a slow consumer: its events are
    #: dropped (slow_consumer="drop", counted) or it is disconnected with 1008
    #: ("disconnect"); calls to it fail with promisifier.error.limit_exceeded
    max_outgoing_buffer: int = DEFAULT_MAX_OUTGOING_BUFFER
    slow_consumer: str = "drop"
    #: seconds calls in flight get to finish when the router stops, before GOODBYE
    shutdown_grace: float = 5.0
    #: limits on sessions and what they hold
    limits: Limits = field(default_factory=Limits)
    #: authentication methods accepted where a listener sets none of its own
    auth: AuthConfig = field(default_factory=AuthConfig)
    #: reverse proxies (IP addresses, CIDR networks, or "unix") whose X-Forwarded-For
    #: header names the client's address; from any other peer the header is ignored
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        realms = (self.realms,) if isinstance(self.realms, (str, RealmConfig)) else tuple(self.realms)
        object.__setattr__(
            self,
            "realms",
            tuple(r if isinstance(r, RealmConfig) else RealmConfig(r, strict_uris=self.strict_uris) for r in realms),
        )
        object.__setattr__(self, "serializers", tuple(self.serializers))
        proxies = self.trusted_proxies
        object.__setattr__(self, "trusted_proxies", (proxies,) if isinstance(proxies, str) else tuple(proxies))
        if not self.realms:
            raise ValueError("RouterConfig.realms: at least one realm is needed")
        for name in ("keepalive_interval", "keepalive_timeout"):
            value = getattr(self, name)
            # autobahn runs these timers with whole-second granularity: below 1 s they fire at once
            if value != 0 and value < 1:
                raise ValueError(f"RouterConfig.{name}: 0 (off) or at least 1 second is needed, got {value!r}")
        check_slow_consumer(self.slow_consumer, "RouterConfig.slow_consumer")
        if self.max_message_size <= 0:
            raise ValueError(f"RouterConfig.max_message_size: must be > 0, got {self.max_message_size}")
        if self.hello_timeout <= 0:
            raise ValueError(f"RouterConfig.hello_timeout: must be > 0, got {self.hello_timeout}")
