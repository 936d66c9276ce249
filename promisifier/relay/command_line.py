"""Command-line options of the relay, shared by ``twistd promisifier-relay`` and
``python -m promisifier relay``."""

from __future__ import annotations

import sys

from twisted.python import usage

from promisifier.relay.relay_config import (
    DEFAULT_ENDPOINT,
    DEFAULT_PATH,
    DEFAULT_REALM,
    ClusterConfig,
    ConfigError,
    RelayConfig,
    load_config,
)
from promisifier.relay.worker_count import parse_workers
from promisifier.router import RouterConfig
from promisifier.transport.limits import DEFAULT_MAX_MESSAGE_SIZE

DEFAULT_SHUTDOWN_GRACE = RouterConfig().shutdown_grace

__all__ = ["DEFAULT_ENDPOINT", "DEFAULT_MAX_MESSAGE_SIZE", "DEFAULT_PATH", "DEFAULT_REALM", "RelayOptions"]

#: options the config file replaces
_FILE_DECIDES = {
    "endpoint": DEFAULT_ENDPOINT,
    "path": DEFAULT_PATH,
    "max-message-size": DEFAULT_MAX_MESSAGE_SIZE,
    "shutdown-grace": DEFAULT_SHUTDOWN_GRACE,
}


def _bytes_option(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise usage.UsageError(f"--max-message-size takes a number of bytes, got {text!r}") from None


def _workers_option(text: str) -> int:
    try:
        return parse_workers(text)
    except ValueError as error:
        raise usage.UsageError(f"--workers: {error}") from None


def _grace_option(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise usage.UsageError(f"--shutdown-grace takes a number of seconds >= 0, got {text!r}")
    return seconds


class RelayOptions(usage.Options):
    """``--config FILE``, or ``--endpoint``, ``--path``, ``--realm`` (repeatable),
    ``--rawsocket`` (repeatable) and ``--max-message-size``; ``--check-config FILE``
    checks a file and exits.

    After parsing, ``self["realms"]`` is the tuple of realms (``("realm1",)`` when no
    ``--realm`` was given), ``self["rawsockets"]`` the tuple of RawSocket endpoints, :attr:`relay_config` the loaded config file (None without
    ``--config``) and :meth:`router_config` gives the router's settings.
    """

    synopsis = (
        "[--config FILE | --endpoint ENDPOINT --path PATH --realm REALM ... --rawsocket ENDPOINT ..."
        " --max-message-size BYTES --shutdown-grace SECONDS --cluster redis://HOST:PORT/DB]"
        " | --check-config FILE"
    )
    longdesc = (
        "Runs a WAMP v2 relay (router) serving WebSocket clients at ws://HOST:PORT/PATH "
        "(and RawSocket clients at rs://HOST:PORT with --rawsocket). "
        "ENDPOINT is a Twisted server endpoint string, e.g. tcp:8080:interface=0.0.0.0, "
        "ssl:8443:privateKey=key.pem:certKey=cert.pem, or unix:/run/relay.sock. "
        "With --config, a TOML file sets listeners, realms, roles, authentication, limits, "
        "trusted proxies and plain WebSocket endpoints (see examples/relay.toml); SIGHUP "
        "reads it again."
    )

    optParameters = [
        [
            "config",
            "c",
            None,
            "TOML configuration file (replaces --endpoint, --path, --realm, --rawsocket, --max-message-size, --shutdown-grace, --cluster).",
        ],
        ["check-config", None, None, "Check a TOML configuration file, print 'ok' or the errors, and exit."],
        ["endpoint", None, DEFAULT_ENDPOINT, "Twisted server endpoint string to listen on."],
        ["path", None, DEFAULT_PATH, "URL path of the WebSocket resource."],
        [
            "max-message-size",
            None,
            DEFAULT_MAX_MESSAGE_SIZE,
            "Largest WAMP message accepted, in bytes (over it: close 1009).",
            _bytes_option,
        ],
        [
            "shutdown-grace",
            None,
            DEFAULT_SHUTDOWN_GRACE,
            "Seconds calls in flight get to finish at SIGTERM or Ctrl-C (a second signal stops at once).",
            _grace_option,
        ],
        [
            "cluster",
            None,
            None,
            "Join the relays sharing this Redis (redis://[:password@]host[:port][/db], or unix:///path/redis.sock[?db=N]) as one router.",
        ],
        [
            "workers",
            None,
            None,
            "Run N relay processes sharing the listeners, joined as one router (auto: one per CPU; "
            "wins over the config file's workers).",
            _workers_option,
        ],
        ["log-format", None, None, "Log lines as 'text' (default) or 'json' (one object per line, with fields)."],
        ["log-level", None, None, "Least level logged: debug, info (default), warn, error, critical."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["realms"] = []
        self["rawsockets"] = []
        #: the loaded --config file
        self.relay_config: RelayConfig | None = None
        #: the settings of --cluster
        self.cluster_config: ClusterConfig | None = None

    def opt_version(self) -> None:
        """Print promisifier's version and exit."""
        from promisifier import __version__

        print(f"promisifier {__version__}")
        raise SystemExit(0)

    def opt_realm(self, realm: str) -> None:
        """Realm clients may join; repeat for several [default: realm1]."""
        from promisifier.relay.relay_config import REALM_NAME
        from promisifier.wire import is_valid_uri

        if not is_valid_uri(realm):
            raise usage.UsageError(f"--realm {realm!r}: expected {REALM_NAME}")
        if realm not in self["realms"]:
            self["realms"].append(realm)

    def opt_rawsocket(self, endpoint: str) -> None:
        """Also serve WAMP over RawSocket (rs://) on this Twisted server endpoint string; repeat for several."""
        if not endpoint:
            raise usage.UsageError("--rawsocket must not be empty")
        if endpoint not in self["rawsockets"]:
            self["rawsockets"].append(endpoint)

    def postOptions(self) -> None:
        if self["check-config"] is not None:
            raise SystemExit(check_config(self["check-config"]))
        self._log_options()
        if self["config"] is not None:
            given = [f"--{name}" for name, default in _FILE_DECIDES.items() if self[name] != default]
            given += ["--realm"] if self["realms"] else []
            given += ["--rawsocket"] if self["rawsockets"] else []
            given += ["--cluster"] if self["cluster"] is not None else []
            if given:
                raise usage.UsageError(f"{', '.join(given)} cannot be combined with --config: the file decides")
            try:
                self.relay_config = load_config(self["config"])
            except ConfigError as error:
                print(f"{error}\nThe relay was not started.", file=sys.stderr)
                raise SystemExit(1) from None
        self["realms"] = tuple(self["realms"]) or (DEFAULT_REALM,)
        self["rawsockets"] = tuple(self["rawsockets"])
        if not self["endpoint"]:
            raise usage.UsageError("--endpoint must not be empty")
        _check_endpoint("--endpoint", self["endpoint"])
        for endpoint in self["rawsockets"]:
            _check_endpoint("--rawsocket", endpoint)
        if self["endpoint"] in self["rawsockets"]:
            raise usage.UsageError(f"--rawsocket {self['endpoint']} is already the WebSocket --endpoint")
        if not self["path"].startswith("/"):
            raise usage.UsageError(f"--path must start with '/', got {self['path']!r}")
        if self["cluster"] is not None:
            try:
                self.cluster_config = ClusterConfig.from_url(self["cluster"])
            except ValueError as error:
                raise usage.UsageError(f"--cluster {self['cluster']!r}: {error}") from None
        if self["max-message-size"] <= 0:
            raise usage.UsageError(
                f"--max-message-size must be a positive number of bytes, got {self['max-message-size']}"
            )

    def _log_options(self) -> None:
        from promisifier.relay import logging as relay_logging

        log_format, level = self["log-format"], self["log-level"]
        if log_format is not None and log_format not in relay_logging.LOG_FORMATS:
            raise usage.UsageError(
                f"--log-format must be one of {', '.join(relay_logging.LOG_FORMATS)}, got {log_format!r}"
            )
        if level is not None:
            try:
                relay_logging.parse_level(level)
            except ValueError as error:
                raise usage.UsageError(f"--log-level: {error}") from None
        # Under twistd (the parent command's options have "logger"), twistd starts logging
        # itself: the two options become its --logger.
        parent = getattr(self, "parent", None)
        if parent is not None and "logger" in parent and (log_format is not None or level is not None):
            try:
                relay_logging.use_under_twistd(parent, log_format or "text", level or "info")
            except ValueError as error:
                raise usage.UsageError(str(error)) from None

    @property
    def workers(self) -> int:
        """How many relay processes to run: ``--workers``, else the config file's, else 1."""
        if self["workers"] is not None:
            return int(self["workers"])
        return self.relay_config.workers if self.relay_config is not None else 1

    def router_config(self) -> RouterConfig:
        """The :class:`~promisifier.router.RouterConfig` these options describe."""
        if self.relay_config is not None:
            return self.relay_config.router
        return RouterConfig(
            realms=self["realms"], max_message_size=self["max-message-size"], shutdown_grace=self["shutdown-grace"]
        )


def _check_endpoint(option: str, value: str) -> None:
    """A usage error unless Twisted can listen on the endpoint string ``value``."""
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    from promisifier.relay import endpoints

    if endpoints.parse_endpoint(value).kind not in endpoints.LISTENER_TYPES:
        hint = endpoints.type_hint(value)
        types = ", ".join(f"{kind}:" for kind in endpoints.LISTENER_TYPES)
        raise usage.UsageError(f"{option} {value}: {hint or f'an endpoint string starts with {types}'}")
    try:
        serverFromString(reactor, value)
    except Exception as error:  # noqa: BLE001 - Twisted raises ValueError, TypeError, ImportError, ...
        raise usage.UsageError(f"{option} {value}: not a usable endpoint string: {error}") from None


def check_config(filename: str) -> int:
    """``--check-config``: print ``ok`` (and any warnings) or the errors; the exit code."""
    try:
        config = load_config(filename)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    print("ok")
    for warning in config.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    return 0
