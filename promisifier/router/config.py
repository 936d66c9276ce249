"""The router's settings: realms and limits. The TOML file of the relay maps onto this."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024


@dataclass(frozen=True)
class RouterConfig:
    """Settings of one :class:`~promisifier.router.Router`; every field has a default."""

    #: names of the realms clients may join; HELLO for any other gets ABORT no_such_realm
    realms: tuple[str, ...] = ("realm1",)
    #: largest WAMP message accepted, in bytes of WebSocket payload (over it: close 1009)
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: seconds a new connection has to complete the WebSocket upgrade
    open_handshake_timeout: float = 10.0
    #: seconds an open connection has to send HELLO before it is closed
    hello_timeout: float = 10.0
    #: check procedure and topic URIs with the strict rules ([0-9a-z_] components)
    strict_uris: bool = False
    #: serializers offered to clients (the client's preference picks among them)
    serializers: tuple[str, ...] = ("json", "msgpack")
    #: text sent as WELCOME.Details.agent
    agent: str = field(default="promisifier")

    def __post_init__(self) -> None:
        if isinstance(self.realms, str):
            object.__setattr__(self, "realms", (self.realms,))
        else:
            object.__setattr__(self, "realms", tuple(self.realms))
        object.__setattr__(self, "serializers", tuple(self.serializers))
        if not self.realms:
            raise ValueError("RouterConfig.realms: at least one realm is needed")
        if self.max_message_size <= 0:
            raise ValueError(f"RouterConfig.max_message_size: must be > 0, got {self.max_message_size}")
        if self.hello_timeout <= 0:
            raise ValueError(f"RouterConfig.hello_timeout: must be > 0, got {self.hello_timeout}")
