"""Command-line options of the relay, shared by ``twistd promisifier-relay`` and
``python -m promisifier relay``."""

from __future__ import annotations

from twisted.python import usage

from promisifier.router import RouterConfig

DEFAULT_ENDPOINT = "tcp:8080:interface=127.0.0.1"
DEFAULT_PATH = "/ws"
DEFAULT_REALM = "realm1"
DEFAULT_MAX_MESSAGE_SIZE = RouterConfig().max_message_size


class RelayOptions(usage.Options):
    """``--endpoint``, ``--path``, ``--realm`` (repeatable) and ``--max-message-size``.

    After parsing, ``self["realms"]`` is the tuple of realms (``("realm1",)`` when no
    ``--realm`` was given) and :meth:`router_config` gives the router's settings.
    """

    synopsis = "[--endpoint ENDPOINT] [--path PATH] [--realm REALM ...] [--max-message-size BYTES]"
    longdesc = (
        "Runs a WAMP v2 relay (router) serving WebSocket clients at ws://HOST:PORT/PATH. "
        "ENDPOINT is a Twisted server endpoint string, e.g. tcp:8080:interface=0.0.0.0, "
        "ssl:8443:privateKey=key.pem:certKey=cert.pem, or unix:/run/relay.sock."
    )

    optParameters = [
        ["endpoint", None, DEFAULT_ENDPOINT, "Twisted server endpoint string to listen on."],
        ["path", None, DEFAULT_PATH, "URL path of the WebSocket resource."],
        ["max-message-size", None, DEFAULT_MAX_MESSAGE_SIZE,
         "Largest WAMP message accepted, in bytes (over it: close 1009).", int],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["realms"] = []

    def opt_realm(self, realm: str) -> None:
        """Realm clients may join; repeat for several [default: realm1]."""
        if not realm:
            raise usage.UsageError("--realm must not be empty")
        if realm not in self["realms"]:
            self["realms"].append(realm)

    def postOptions(self) -> None:
        self["realms"] = tuple(self["realms"]) or (DEFAULT_REALM,)
        if not self["endpoint"]:
            raise usage.UsageError("--endpoint must not be empty")
        if not self["path"].startswith("/"):
            raise usage.UsageError(f"--path must start with '/', got {self['path']!r}")
        if self["max-message-size"] <= 0:
            raise usage.UsageError(
                f"--max-message-size must be a positive number of bytes, got {self['max-message-size']}"
            )

    def router_config(self) -> RouterConfig:
        """The :class:`~promisifier.router.RouterConfig` these options describe."""
        return RouterConfig(realms=self["realms"], max_message_size=self["max-message-size"])
