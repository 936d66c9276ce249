"""The relay's configuration file: TOML (stdlib ``tomllib``) -> :class:`RelayConfig`.

:func:`load_config` reads and checks a file; every problem is reported at once in a
:class:`ConfigError`, each naming the key path, the value and what was expected, e.g.
``listeners[0].auth.ticket.principals.alice.role: expected a non-empty string, got 5 (an
integer)``. Unknown keys are errors too. ``examples/relay.toml`` shows every key.

A :class:`RelayConfig` is the router's :class:`~promisifier.router.RouterConfig` (realms,
roles, limits, trusted proxies) plus the listeners (endpoint, WebSocket path, serializers,
authentication, limits) and the plain WebSocket endpoints mounted beside WAMP. An empty
file is the built-in default: realm ``realm1`` open to anonymous clients on
``tcp:8080:interface=127.0.0.1``, path ``/ws``.

Relative file names (TLS key and certificates, UNIX socket) are relative to the folder of
the config file.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promisifier.bridge.http import HttpBridgeConfig
from promisifier.bridge.mount import RpcWebSocketsConfig
from promisifier.cluster.cluster_config import ClusterConfig, RedisAddress
from promisifier.relay import bridge_config
from promisifier.relay import endpoints as ep
from promisifier.relay.auth_config import read_auth
from promisifier.relay.bridge_config import BRIDGE_KEYS, StaticConfig
from promisifier.relay.checks import MISSING, Checker, describe, key_path
from promisifier.relay.worker_count import parse_workers
from promisifier.router.auth import AuthConfig
from promisifier.router.authz import Permission, RoleConfig
from promisifier.router.history import HistoryRule
from promisifier.router.router_config import CANCEL_REPLIES, Limits, RealmConfig, RouterConfig
from promisifier.transport.limits import DEFAULT_MAX_MESSAGE_SIZE
from promisifier.transport.proxies import parse_trusted_proxy
from promisifier.wire import SERIALIZERS, is_valid_uri
from promisifier.wire.policies import MATCH_POLICIES

DEFAULT_ENDPOINT = "tcp:8080:interface=127.0.0.1"
DEFAULT_PATH = "/ws"
DEFAULT_REALM = "realm1"
DEFAULT_STATUS_PATH = "/status"
#: what a listener speaks: WAMP over WebSocket (with its web pages) or over RawSocket
TRANSPORTS = ("websocket", "rawsocket")
#: listener keys that only a WebSocket listener has
WEBSOCKET_ONLY_KEYS = ("path", "status", "status_path", "health", "metrics", *BRIDGE_KEYS)
#: fixed paths of the health check and the metrics
HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"

_ROUTER_DEFAULTS = RouterConfig()
_PERMISSION_FLAGS = ("call", "register", "publish", "subscribe", "disclose_caller", "disclose_publisher")


class ConfigError(Exception):
    """The configuration cannot be used; ``errors`` lists every problem found."""

    def __init__(self, source: str, errors: list[str]) -> None:
        super().__init__(source, errors)
        self.source = source
        self.errors = list(errors)

    def __str__(self) -> str:
        count = len(self.errors)
        lines = [f"{self.source}: {count} error{'s' if count != 1 else ''} in the configuration:"]
        lines += [f"  {error}" for error in self.errors]
        return "\n".join(lines)


@dataclass(frozen=True)
class ListenerConfig:
    """Where the relay listens, and what it offers there."""

    #: a Twisted server endpoint string (tcp:, tcp6:, ssl:, unix:), file names absolute
    endpoint: str = DEFAULT_ENDPOINT
    #: URL path of the WAMP WebSocket
    path: str = DEFAULT_PATH
    #: serializers offered; None: the router's
    serializers: tuple[str, ...] | None = None
    #: authentication methods and principals; None: the router's (anonymous)
    auth: AuthConfig | None = None
    #: largest message accepted on this listener; None: the router's
    max_message_size: int | None = None
    #: the status page at ``status_path`` (and its data at ``status_path + ".json"``);
    #: None: on for a loopback listener only (see :attr:`serves_status`)
    status: bool | None = None
    status_path: str = DEFAULT_STATUS_PATH
    #: ``/health`` (200 while serving, 503 while shutting down); None: loopback only
    health: bool | None = None
    #: ``/metrics`` in Prometheus text format; None: loopback only
    metrics: bool | None = None
    #: "websocket" (``ws://``/``wss://`` at ``path``) or "rawsocket" (``rs://``/``rss://``;
    #: no path, status page, health check or metrics)
    transport: str = "websocket"
    #: PEM file of the CA(s) whose client certificates an ``ssl:`` listener requires
    #: (None: no client certificate asked for)
    client_ca: str | None = None
    #: rpc-websockets (JSON-RPC) paths beside the WAMP WebSocket
    rpc_websockets: tuple[RpcWebSocketsConfig, ...] = ()
    #: HTTP publish and call
    http: HttpBridgeConfig | None = None
    #: folders served as static files
    static: tuple[StaticConfig, ...] = ()

    @property
    def rawsocket(self) -> bool:
        return self.transport == "rawsocket"

    @property
    def loopback(self) -> bool:
        """Only this machine can connect (a loopback interface or a UNIX socket)."""
        return ep.is_loopback(self.description)

    def _serves(self, flag: bool | None) -> bool:
        if self.rawsocket:
            return False
        if flag is not None:
            return flag
        # the WAMP WebSocket at "/" leaves no room for other resources
        return self.loopback and bool(_segments(self.path))

    @property
    def serves_status(self) -> bool:
        return self._serves(self.status)

    @property
    def serves_health(self) -> bool:
        return self._serves(self.health)

    @property
    def serves_metrics(self) -> bool:
        return self._serves(self.metrics)

    def web_paths(self) -> dict[str, str]:
        """What this listener serves over plain HTTP beside its WebSocket: name -> path."""
        paths = {}
        if self.serves_status:
            paths["status"] = self.status_path
            paths["status.json"] = self.status_path + ".json"
        if self.serves_health:
            paths["health"] = HEALTH_PATH
        if self.serves_metrics:
            paths["metrics"] = METRICS_PATH
        return paths

    @property
    def description(self) -> ep.EndpointDescription:
        return ep.parse_endpoint(self.endpoint)

    @property
    def secure(self) -> bool:
        """Clients connect with ``wss://`` (``rss://`` for RawSocket)."""
        return ep.is_secure(self.endpoint)

    @property
    def files(self) -> tuple[str, ...]:
        """The files the endpoint reads when it starts listening (TLS key, certificates)."""
        names = {name for _, name in ep.tls_files(self.description)}
        if self.client_ca is not None:
            names.add(self.client_ca)
        return tuple(sorted(names))


@dataclass(frozen=True)
class EndpointConfig:
    """A plain (non-WAMP) WebSocket endpoint: connections on ``path`` go to ``handler``
    (see :mod:`promisifier.transport.plain_websocket`)."""

    path: str
    #: dotted path to a module or object with on_open/on_message/on_error/on_close
    handler: str


@dataclass(frozen=True)
class RelayConfig:
    """Everything the relay runs with."""

    router: RouterConfig = field(default_factory=RouterConfig)
    listeners: tuple[ListenerConfig, ...] = (ListenerConfig(),)
    endpoints: tuple[EndpointConfig, ...] = ()
    #: the ``[cluster]`` table: relays sharing one Redis act as one router (None: alone)
    cluster: ClusterConfig | None = None
    #: ``workers``: relay processes sharing the listeners (``"auto"``: one per CPU), see
    #: :mod:`promisifier.relay.workers`
    workers: int = 1
    #: the file this came from (None for the built-in default)
    source: str | None = field(default=None, compare=False)

    def warnings(self) -> list[str]:
        """Things that work but are probably not meant (logged at start and on reload)."""
        found = []
        open_realms = [realm.name for realm in self.router.realms if realm.roles is None]
        for index, listener in enumerate(self.listeners):
            auth = listener.auth if listener.auth is not None else self.router.auth
            if "anonymous" in auth.methods and open_realms and not ep.is_loopback(listener.description):
                realms = ", ".join(repr(name) for name in open_realms)
                found.append(
                    f"listeners[{index}] ({listener.endpoint}) accepts anonymous clients on a non-loopback "
                    f"address, and realm(s) {realms} have no roles: anyone who reaches it may do everything"
                )
            if not listener.loopback:
                for flag, what in (("status", "the status page"), ("metrics", "the metrics")):
                    if getattr(listener, flag):
                        found.append(
                            f"listeners[{index}].{flag}: {what} on a non-loopback address show(s) sessions, "
                            "authids and peer addresses to anyone who reaches it"
                        )
        guarded = [realm for realm in self.router.realms if realm.roles is not None]
        open_names = ", ".join(repr(realm.name) for realm in self.router.realms if realm.roles is None)
        defined = {role.name for realm in guarded for role in realm.roles or ()}
        for index, listener in enumerate(self.listeners):
            auth = listener.auth if listener.auth is not None else self.router.auth
            for where, role in _roles_used(auth):
                if not guarded or role in defined:
                    continue
                where = f"listeners[{index}].auth.{where}" if listener.auth is not None else f"auth.{where}"
                if open_names:
                    found.append(
                        f"{where}: role {role!r} is defined in no realm with roles"
                        f" ({', '.join(repr(realm.name) for realm in guarded)}); its sessions can join only {open_names}"
                    )
                else:
                    found.append(f"{where}: role {role!r} is defined in no realm; its sessions cannot join")
        return found


def _roles_used(auth: AuthConfig | None) -> list[tuple[str, str]]:
    """(key path under the listener's auth, role) of every role an AuthConfig gives out."""
    if auth is None:
        return []
    used = [("anonymous_role", auth.anonymous_role)] if "anonymous" in auth.methods else []
    used += [(key_path("ticket.principals", authid) + ".role", p.role) for authid, p in auth.tickets.items()]
    used += [(key_path("wampcra.users", authid) + ".role", p.role) for authid, p in auth.wampcra.items()]
    used += [(key_path("cryptosign.principals", a) + ".role", p.role) for a, p in auth.cryptosign.items()]
    used += [(key_path("scram.principals", a) + ".role", p.role) for a, p in auth.scram.items()]
    used += [(key_path("tls.principals", a) + ".role", p.role) for a, p in auth.tls.items()]
    return used


def default_config(
    endpoint: str = DEFAULT_ENDPOINT,
    path: str = DEFAULT_PATH,
    realms: tuple[str, ...] = (DEFAULT_REALM,),
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    rawsockets: tuple[str, ...] = (),
    cluster: ClusterConfig | None = None,
    shutdown_grace: float = RouterConfig.shutdown_grace,
) -> RelayConfig:
    """The relay without a config file: one WebSocket listener (and a RawSocket listener
    on each of ``rawsockets``), open realms, anonymous clients."""
    router = RouterConfig(realms=realms, max_message_size=max_message_size, shutdown_grace=shutdown_grace)
    listeners = (ListenerConfig(endpoint=endpoint, path=path),)
    listeners += tuple(ListenerConfig(endpoint=rs, transport="rawsocket") for rs in rawsockets)
    return RelayConfig(router=router, listeners=listeners, cluster=cluster)


# -- loading --------------------------------------------------------------------------------


def load_config(filename: str | os.PathLike[str]) -> RelayConfig:
    """Read and check a TOML config file. Raises :class:`ConfigError`."""
    path = Path(filename)
    source = str(filename)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(source, [f"cannot read the file: {error.strerror or error}"]) from None
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(source, [f"not UTF-8 text: {error}"]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(source, [f"not valid TOML: {error}"]) from None
    return parse_config(document, base_dir=str(path.resolve().parent), source=source)


def parse_config(document: dict[str, Any], *, base_dir: str | None = None, source: str = "<config>") -> RelayConfig:
    """Check a parsed TOML document and build the :class:`RelayConfig`. Raises
    :class:`ConfigError`. Relative file names are resolved against ``base_dir``
    (default: the current directory)."""
    check = Checker()
    base_dir = base_dir or os.getcwd()
    top = check.table(
        document, "", ("listeners", "realms", "limits", "trusted_proxies", "endpoints", "cluster", "workers")
    )

    limits = _limits(check, top)
    proxies = check.strings(top, "trusted_proxies", "", (), nonempty=False)
    for index, entry in enumerate(proxies):
        try:
            parse_trusted_proxy(entry)
        except ValueError:
            check.expected(key_path("trusted_proxies", index), 'an IP address, a CIDR network or "unix"', entry)

    realms = _named(
        check, "realm", [(path, _realm(check, path, table)) for path, table in check.tables(top, "realms", "")]
    )

    listeners = [(path, _listener(check, path, table, base_dir)) for path, table in check.tables(top, "listeners", "")]
    endpoints = [_endpoint(check, path, table) for path, table in check.tables(top, "endpoints", "")]
    _check_paths(check, listeners or [("the default listener", ListenerConfig())], endpoints)
    cluster = _cluster(check, top["cluster"]) if "cluster" in top else None
    workers = 1
    if "workers" in top:
        try:
            workers = parse_workers(top["workers"])
        except ValueError as error:
            check.error("workers", str(error))

    if check.errors:
        raise ConfigError(source, check.errors)
    try:
        router = RouterConfig(
            realms=tuple(realms) or (DEFAULT_REALM,),
            trusted_proxies=proxies,
            **limits,
        )
    except ValueError as error:  # the checks above should have caught it
        raise ConfigError(source, [str(error)]) from None
    return RelayConfig(
        router=router,
        listeners=tuple(listener for _, listener in listeners) or (ListenerConfig(),),
        endpoints=tuple(endpoints),
        cluster=cluster,
        workers=workers,
        source=source,
    )


def _cluster(check: Checker, value: Any) -> ClusterConfig | None:
    path = "cluster"
    table = check.table(value, path, ("redis", "password", "node", "heartbeat_interval", "ttl"))
    if not isinstance(value, dict):
        return None
    # no redis: the private Redis of `workers = N`; the table only sets the heartbeat
    url = check.string(table, "redis", path, None, what="a redis:// or unix:// URL, e.g. redis://127.0.0.1:6379/0")
    redis: RedisAddress | None = None
    valid = True
    try:
        redis = RedisAddress.parse(url) if url else None
    except ValueError as error:
        check.error(key_path(path, "redis"), f"{error}, got {describe(url)}")
        valid = False
    password = check.string(table, "password", path, None)
    if password is not None and url is None:
        check.error(key_path(path, "password"), "a password needs a redis URL beside it")
        valid = False
    node = check.string(table, "node", path, None)
    defaults = ClusterConfig(RedisAddress("localhost"))
    interval = check.seconds(table, "heartbeat_interval", path, defaults.heartbeat_interval)
    ttl = check.seconds(table, "ttl", path, defaults.ttl)
    if ttl <= interval:
        check.error(key_path(path, "ttl"), f"must be longer than heartbeat_interval ({interval}), got {ttl}")
    if not valid or ttl <= interval:
        return None
    if password is not None and redis is not None:
        redis = dataclasses.replace(redis, password=password)
    settings: dict[str, Any] = {"heartbeat_interval": interval, "ttl": ttl}
    if node is not None:
        settings["node"] = node
    return ClusterConfig(redis, **settings)


def _limit_fields() -> dict[str, int]:
    """The per-session and per-router limits (``RouterConfig.limits``): name -> default."""
    return {f.name: getattr(_ROUTER_DEFAULTS.limits, f.name) for f in dataclasses.fields(Limits)}


def _limits(check: Checker, top: dict) -> dict[str, Any]:
    session_limits = _limit_fields()
    table = check.table(
        top.get("limits", {}),
        "limits",
        ("max_message_size", "open_handshake_timeout", "hello_timeout", "shutdown_grace", *session_limits),
    )
    found: dict[str, Any] = {
        "max_message_size": check.integer(table, "max_message_size", "limits", DEFAULT_MAX_MESSAGE_SIZE, minimum=1),
        "open_handshake_timeout": check.seconds(
            table, "open_handshake_timeout", "limits", _ROUTER_DEFAULTS.open_handshake_timeout
        ),
        "hello_timeout": check.seconds(table, "hello_timeout", "limits", _ROUTER_DEFAULTS.hello_timeout),
        "shutdown_grace": check.seconds(table, "shutdown_grace", "limits", _ROUTER_DEFAULTS.shutdown_grace, zero=True),
    }
    values = {
        name: check.integer(table, name, "limits", default, minimum=1) for name, default in session_limits.items()
    }
    found["limits"] = Limits(**values)
    return found


#: what a realm name must be (a WAMP URI)
REALM_NAME = "a realm name: a URI such as realm1 or com.example.app (no spaces, no '#', no empty parts)"


def _realm(check: Checker, path: str, value: dict) -> RealmConfig:
    table = check.table(
        value,
        path,
        ("name", "strict_uris", "cancel_reply", "max_retained_events", "roles", "history", "max_history_bytes"),
    )
    name = check.string(table, "name", path) or "?"
    if isinstance(table.get("name"), str) and table["name"] and not is_valid_uri(name):
        check.expected(key_path(path, "name"), REALM_NAME, name)
    roles: tuple[RoleConfig, ...] | None = None
    if "roles" in table:
        found = [(role_path, _role(check, role_path, role)) for role_path, role in check.tables(table, "roles", path)]
        roles = tuple(_named(check, "role", found))
    return RealmConfig(
        name=name,
        strict_uris=check.boolean(table, "strict_uris", path, False),
        cancel_reply=check.string(table, "cancel_reply", path, "always", choices=CANCEL_REPLIES),
        max_retained_events=check.integer(table, "max_retained_events", path, RealmConfig.max_retained_events),
        roles=roles,
        history=tuple(_history_rule(check, p, t) for p, t in check.tables(table, "history", path)),
        max_history_bytes=check.integer(table, "max_history_bytes", path, RealmConfig.max_history_bytes, minimum=1),
    )


def _history_rule(check: Checker, path: str, value: dict) -> HistoryRule:
    """``[[realms.history]]``: uri, match, limit (events), max_age (seconds, 0: none)."""
    table = check.table(value, path, ("uri", "match", "limit", "max_age"))
    match = check.string(table, "match", path, "exact", choices=MATCH_POLICIES)
    uri = check.string(table, "uri", path) or "?"
    if isinstance(table.get("uri"), str) and not is_valid_uri(uri, allow_empty=match != "exact"):
        check.expected(key_path(path, "uri"), f"a URI or URI pattern for match {match!r}", uri)
    limit = check.integer(table, "limit", path, HistoryRule.limit, minimum=1)
    max_age = check.seconds(table, "max_age", path, 0.0) if "max_age" in table else 0.0
    return HistoryRule(uri=uri, match=match, limit=limit, max_age=max_age)


def _named(check: Checker, kind: str, items: list[tuple[str, Any]]) -> list[Any]:
    """The items (realms or roles, each with its path); a name used twice is an error."""
    seen: dict[str, str] = {}
    for path, item in items:
        if item.name in seen:
            check.error(f"{path}.name", f"{kind} {item.name!r} is already defined at {seen[item.name]}")
        seen.setdefault(item.name, path)
    return [item for _, item in items]


def _role(check: Checker, path: str, value: dict) -> RoleConfig:
    table = check.table(value, path, ("name", "permissions", "authorizer"))
    name = check.string(table, "name", path) or "?"
    permissions = tuple(_permission(check, p, t) for p, t in check.tables(table, "permissions", path))
    authorizer = check.dotted(table, "authorizer", path, callable_=True)
    return RoleConfig(name=name, permissions=permissions, authorizer=authorizer)


def _permission(check: Checker, path: str, value: dict) -> Permission:
    table = check.table(value, path, ("uri", "match", *_PERMISSION_FLAGS))
    match = check.string(table, "match", path, "prefix", choices=MATCH_POLICIES)
    uri = check.string(table, "uri", path, "", empty=True)
    if "uri" in table and isinstance(table["uri"], str) and not _valid_permission_uri(uri, match):
        check.expected(key_path(path, "uri"), f"a URI or URI pattern for match {match!r}", uri)
    flags = {flag: check.boolean(table, flag, path, False) for flag in _PERMISSION_FLAGS}
    return Permission(uri=uri, match=match, **flags)


def _valid_permission_uri(uri: str, match: str) -> bool:
    if match == "exact":
        return is_valid_uri(uri)
    if match == "wildcard":
        return is_valid_uri(uri, allow_empty=True)
    # prefix: "" (everything), "com.example" or "com.example."
    return uri == "" or is_valid_uri(uri[:-1] if uri.endswith(".") else uri)


def _listener(check: Checker, path: str, value: dict, base_dir: str) -> ListenerConfig:
    table = check.table(
        value,
        path,
        (
            "endpoint",
            "transport",
            "path",
            "serializers",
            "auth",
            "limits",
            "status",
            "status_path",
            "health",
            "metrics",
            "client_ca",
            *BRIDGE_KEYS,
        ),
    )
    transport = check.string(table, "transport", path, "websocket", choices=TRANSPORTS)
    if transport == "rawsocket":
        for key in WEBSOCKET_ONLY_KEYS:
            if key in table:
                check.error(
                    key_path(path, key),
                    f"{describe(table[key])} given, but {key!r} applies to WebSocket listeners only "
                    '(this one has transport = "rawsocket")',
                )
        table = {key: value for key, value in table.items() if key not in WEBSOCKET_ONLY_KEYS}
    endpoint = _endpoint_string(check, table, path, base_dir)
    web_path = _url_path(check, table, "path", path, DEFAULT_PATH)
    serializers = check.strings(table, "serializers", path, tuple(SERIALIZERS), choices=tuple(SERIALIZERS))
    limits = check.table(table.get("limits", {}), key_path(path, "limits"), ("max_message_size",))
    max_message_size = check.integer(limits, "max_message_size", key_path(path, "limits"), None, minimum=1)
    return ListenerConfig(
        endpoint=endpoint,
        path=web_path,
        serializers=serializers,
        auth=read_auth(check, key_path(path, "auth"), table.get("auth", {}), base_dir),
        max_message_size=max_message_size,
        status=check.boolean(table, "status", path, None),  # type: ignore[arg-type]
        status_path=_url_path(check, table, "status_path", path, DEFAULT_STATUS_PATH),
        health=check.boolean(table, "health", path, None),  # type: ignore[arg-type]
        metrics=check.boolean(table, "metrics", path, None),  # type: ignore[arg-type]
        transport=transport,
        rpc_websockets=bridge_config.rpc_websockets(check, table, path),
        http=bridge_config.http_bridge(check, table, path),
        static=bridge_config.static_roots(check, table, path, base_dir),
        client_ca=_client_ca(check, table, path, endpoint, base_dir),
    )


def _client_ca(check: Checker, table: dict, path: str, endpoint: str, base_dir: str) -> str | None:
    """``client_ca``: the CA file (absolute) whose client certificates a TLS listener requires."""
    from promisifier.relay.tls_listener import ca_certificates

    name = check.string(table, "client_ca", path, None, what="a PEM file of CA certificates")
    if name is None:
        return None
    here = key_path(path, "client_ca")
    if not ep.is_secure(endpoint):
        check.error(here, f"{name!r} given, but client certificates need an ssl: endpoint, not {endpoint!r}")
        return None
    full = os.path.normpath(os.path.join(base_dir, name))
    if not os.path.isfile(full):
        check.error(here, f"file {full!r} does not exist")
        return None
    try:
        ca_certificates(full)
    except (OSError, ValueError) as error:
        check.error(here, str(error))
        return None
    return full


def _endpoint_string(check: Checker, table: dict, path: str, base_dir: str) -> str:
    here = key_path(path, "endpoint")
    value = check.string(
        table, "endpoint", path, DEFAULT_ENDPOINT, what="a Twisted endpoint string (tcp:, ssl:, unix:)"
    )
    description = ep.parse_endpoint(value)
    if description.kind not in ep.LISTENER_TYPES:
        hint = ep.type_hint(value)
        check.expected(
            here, f"an endpoint string of type {', '.join(ep.LISTENER_TYPES)}" + (f" ({hint})" if hint else ""), value
        )
        return value
    description = ep.resolve_files(description, base_dir)
    if description.kind == "ssl" and not description.options.get("privateKey"):
        check.error(
            here, f"{value!r}: an ssl: endpoint needs privateKey=FILE (and certKey=FILE unless the key file holds both)"
        )
        return value
    missing = False
    for argument, name in ep.tls_files(description):
        if not os.path.isfile(name):
            check.error(here, f"{value!r}: {argument} file {name!r} does not exist")
            missing = True
    if missing:
        return value
    resolved = str(description)
    try:
        _server_endpoint(resolved)
    except Exception as error:  # noqa: BLE001 - whatever Twisted's parser raises
        check.error(here, f"{value!r} is not a usable endpoint: {_explain(error)}")
    return resolved


def _server_endpoint(description: str) -> Any:
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    return serverFromString(reactor, description)


def _explain(error: Exception) -> str:
    if isinstance(error, (ImportError, NotImplementedError)) or "OpenSSL" in str(error):
        return f"{error} (TLS listeners need pyOpenSSL: pip install 'twisted[tls]')"
    return f"{type(error).__name__}: {error}"


def _url_path(check: Checker, table: dict, key: str, path: str, default: Any = MISSING) -> str:
    what = "a URL path starting with '/'"
    value = check.string(table, key, path, default, what=what)
    if isinstance(table.get(key), str) and (not value.startswith("/") or any(c.isspace() or c in "?#" for c in value)):
        check.expected(key_path(path, key), what, value)
    return value


def _endpoint(check: Checker, path: str, value: dict) -> EndpointConfig:
    from promisifier.transport.plain_websocket import resolve_handler

    table = check.table(value, path, ("path", "handler"))
    handler = check.dotted(table, "handler", path, callable_=False) or ""
    if handler:
        try:
            resolve_handler(handler)
        except Exception as error:  # noqa: BLE001 - a handler class whose constructor fails, too
            check.error(key_path(path, "handler"), f"{handler!r} cannot serve as a handler: {error}")
    return EndpointConfig(path=_url_path(check, table, "path", path), handler=handler)


def _segments(path: str) -> tuple[str, ...]:
    return tuple(segment for segment in path.split("/") if segment)


def _check_web_paths(check: Checker, path: str, listener: ListenerConfig, endpoints: list[EndpointConfig]) -> None:
    """The status page, health check and metrics of a listener keep clear of its WebSocket
    and of the plain endpoints."""
    here = f"{path}.status_path" if path.startswith("listeners") else path
    if listener.status_path == "/" or listener.status_path.endswith("/"):
        check.expected(here, "a URL path that does not end with '/' (e.g. '/status')", listener.status_path)
        return
    web = listener.web_paths()
    if web and not _segments(listener.path):
        flags = ", ".join(sorted({name.split(".")[0] for name in web}))
        check.error(
            f"{path}.path", f"the WAMP WebSocket at '/' leaves no room for {flags}: give it a path such as '/ws'"
        )
        return
    sockets = [(f"{path}.path" if path.startswith("listeners") else path, listener.path)]
    sockets += list(bridge_config.bridge_paths(path, listener).items())
    sockets += [(f"endpoints[{i}].path", e.path) for i, e in enumerate(endpoints)]
    for name, web_path in web.items():
        mine = _segments(web_path)
        for where, other in sockets:
            theirs = _segments(other)
            shorter = min(len(mine), len(theirs))
            if mine[:shorter] == theirs[:shorter]:
                key = f"{path}.status_path" if name.startswith("status") else f"{path}.{name}"
                check.error(key, f"{name} at {web_path!r} overlaps {other!r} ({where})")


def _check_paths(check: Checker, listeners: list[tuple[str, ListenerConfig]], endpoints: list[EndpointConfig]) -> None:
    """Listener endpoints are distinct; plain endpoints and the WAMP path do not overlap
    (no path may be the same as, or lie under, another one: a WebSocket has no children)."""
    first_at: dict[str, str] = {}
    for path, listener in listeners:
        where = first_at.setdefault(listener.endpoint, path)
        if where != path:
            check.error(f"{path}.endpoint", f"{listener.endpoint!r} is already used by {where}")
        if not listener.rawsocket:
            _check_web_paths(check, path, listener, endpoints)
            bridge_config.check_paths(check, path, listener)
    for index, endpoint in enumerate(endpoints):
        here = f"endpoints[{index}].path"
        mine = _segments(endpoint.path)
        others = [(f"endpoints[{i}].path", e.path) for i, e in enumerate(endpoints) if i < index]
        others += [
            (f"{p}.path" if p.startswith("listeners") else p, listener.path)
            for p, listener in listeners
            if not listener.rawsocket
        ]
        for where, other in others:
            theirs = _segments(other)
            shorter = min(len(mine), len(theirs))
            if mine[:shorter] == theirs[:shorter]:
                check.error(
                    here, f"{endpoint.path!r} overlaps {other!r} ({where}); each WebSocket needs a path of its own"
                )
                break
