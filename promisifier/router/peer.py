"""How the router sees a connected client: anything with ``send`` and ``close``.

A WebSocket connection is one kind of peer; an in-process session (embedding) or a
remote relay node can be another. The router never touches sockets itself.
"""

from __future__ import annotations

from typing import Protocol

from promisifier.wire.messages import Message


class Peer(Protocol):
    """The router's view of one client connection."""

    #: id of the connection, unique in this process
    connection_id: int
    #: the remote address ("tcp:127.0.0.1:40402") or a description of an in-process peer
    peer: str
    #: "json", "msgpack", or None for a peer that takes message lists as they are
    serializer_name: str | None
    #: True while the peer is not reading fast enough (too many bytes queued for it)
    congested: bool

    def send(self, message: Message) -> None:
        """Deliver one message. Raises :class:`promisifier.wire.EncodeError`."""

    def send_shared(self, message: Message, encoded: dict[str, bytes]) -> bool:
        """Deliver a message that goes to many peers; ``encoded`` caches its encodings.

        False when it was not delivered (connection not open, or a slow consumer).
        """

    def close(self, code: int = 1000, reason: str = "") -> None:
        """End the connection (WebSocket close code and reason)."""
