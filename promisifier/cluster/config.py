"""The ``[cluster]`` settings: which Redis the relays share, and how a node is named and
kept alive there.

A relay without them is a lone relay. With them, relays that share one Redis act as one
router (see :mod:`promisifier.cluster`). ``redis://[:password@]host[:port][/db]`` names the
server; ``password`` in the table wins over one in the URL.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

DEFAULT_REDIS_PORT = 6379
#: seconds between two heartbeats of a node
DEFAULT_HEARTBEAT_INTERVAL = 1.0
#: seconds without a heartbeat after which a node counts as gone
DEFAULT_TTL = 4.0


def default_node_name() -> str:
    """``host:pid``: unique among the relays on one machine and, with distinct host
    names, across machines."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class RedisAddress:
    """Where the Redis server is: host, port, database number and password."""

    host: str
    port: int = DEFAULT_REDIS_PORT
    db: int = 0
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        """``redis://[:password@]host[:port][/db]``; raises ``ValueError`` saying what is wrong."""
        parts = urlsplit(url)
        if parts.scheme != "redis":
            raise ValueError("expected a redis:// URL")
        if parts.query or parts.fragment:
            raise ValueError("a redis:// URL takes no query or fragment")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("the port is not a number from 0 to 65535") from None
        if not parts.hostname:
            raise ValueError("the URL names no host")
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ValueError("the path must be a database number, e.g. /0")
        password = unquote(parts.password) if parts.password else None
        return cls(parts.hostname, port or DEFAULT_REDIS_PORT, int(path or 0), password)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{host}:{self.port}/{self.db}"


@dataclass(frozen=True)
class ClusterConfig:
    """How this relay joins the others: the shared Redis, its own node name, and the
    heartbeat that tells the others it is alive."""

    redis: RedisAddress
    #: this node's name in the cluster (unique among the live nodes)
    node: str = field(default_factory=default_node_name)
    #: seconds between heartbeats
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    #: seconds without a heartbeat before the others count this node as gone
    ttl: float = DEFAULT_TTL

    def __post_init__(self) -> None:
        if not self.node:
            raise ValueError("the node name must not be empty")
        if self.heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be > 0")
        if self.ttl <= self.heartbeat_interval:
            raise ValueError("ttl must be longer than heartbeat_interval")

    @classmethod
    def from_url(cls, url: str, **settings: object) -> ClusterConfig:
        """The settings for ``--cluster redis://...`` (raises ``ValueError``)."""
        return cls(RedisAddress.parse(url), **settings)  # type: ignore[arg-type]
