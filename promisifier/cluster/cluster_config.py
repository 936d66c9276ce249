"""The ``[cluster]`` settings: which Redis the relays share, and how a node is named and
kept alive there.

A relay without them is a lone relay. With them, relays that share one Redis act as one
router (see :mod:`promisifier.cluster`). ``redis://[:password@]host[:port][/db]`` names a
server on TCP, ``unix:///path/redis.sock[?db=N]`` (or ``redis+unix://``) one on a UNIX
socket; ``password`` in the table wins over one in the URL.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_REDIS_PORT = 6379
#: seconds between two heartbeats of a node
DEFAULT_HEARTBEAT_INTERVAL = 1.0
#: seconds without a heartbeat after which a node counts as gone
DEFAULT_TTL = 4.0


def default_node_name() -> str:
    """``host:pid``: unique among the relays on one machine and, with distinct host
    names, across machines."""
    return f"{socket.gethostname()}:{os.getpid()}"


#: URL schemes of a Redis server on a UNIX socket
UNIX_SCHEMES = ("unix", "redis+unix")


@dataclass(frozen=True)
class RedisAddress:
    """Where the Redis server is: host and port, or the path of its UNIX socket
    (``socket``), and the database number and password."""

    host: str
    port: int = DEFAULT_REDIS_PORT
    db: int = 0
    password: str | None = field(default=None, repr=False)
    #: the server's UNIX socket (host and port are then unused)
    socket: str | None = None

    @classmethod
    def unix(cls, path: str, db: int = 0, password: str | None = None) -> RedisAddress:
        """The server listening on the UNIX socket ``path``."""
        return cls("", 0, db, password, socket=path)

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        """``redis://[:password@]host[:port][/db]``, or ``unix:///path/redis.sock[?db=N]``
        (also ``redis+unix://``, and ``password=`` in the query); raises ``ValueError``
        saying what is wrong."""
        parts = urlsplit(url)
        if parts.scheme in UNIX_SCHEMES:
            return cls._parse_unix(parts.scheme, parts)
        if parts.scheme != "redis":
            raise ValueError("expected a redis:// or unix:// URL")
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

    @classmethod
    def _parse_unix(cls, scheme: str, parts: Any) -> RedisAddress:
        if parts.netloc:
            raise ValueError(f"a {scheme}:// URL names a socket file, e.g. {scheme}:///run/redis.sock (three slashes)")
        if not parts.path.startswith("/"):
            raise ValueError("the socket path must be absolute")
        if parts.fragment:
            raise ValueError(f"a {scheme}:// URL takes no fragment")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - {"db", "password"})
        if unknown:
            raise ValueError(f"unknown query parameter(s) {', '.join(unknown)} (db and password are known)")
        db = query.get("db", ["0"])[-1]
        if not db.isdigit():
            raise ValueError("db must be a database number, e.g. ?db=0")
        password = query.get("password", [None])[-1] or None
        return cls.unix(unquote(parts.path), int(db), password)

    def __str__(self) -> str:
        if self.socket is not None:
            return f"unix://{self.socket}?db={self.db}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{host}:{self.port}/{self.db}"


@dataclass(frozen=True)
class ClusterConfig:
    """How this relay joins the others: the shared Redis, its own node name, and the
    heartbeat that tells the others it is alive.

    ``redis`` None: the relay's workers (``--workers N``) meet on the private
    ``redis-server`` the relay starts itself; only the heartbeat settings are given. A
    cluster node itself always needs an address."""

    redis: RedisAddress | None
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

    @property
    def private(self) -> bool:
        """True when no Redis is named: the private one of ``--workers``."""
        return self.redis is None

    @classmethod
    def from_url(cls, url: str, **settings: object) -> ClusterConfig:
        """The settings for ``--cluster redis://...`` or ``unix://...`` (raises ``ValueError``)."""
        return cls(RedisAddress.parse(url), **settings)  # type: ignore[arg-type]
