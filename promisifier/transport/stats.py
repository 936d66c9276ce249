"""Per-connection traffic counters."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class ConnectionStats:
    """Bytes and WAMP messages that went through one connection, in each direction.

    Bytes are counted as message payloads (before WebSocket framing).
    """

    bytes_in: int = 0
    bytes_out: int = 0
    messages_in: int = 0
    messages_out: int = 0
    #: events not sent because the peer was a slow consumer
    dropped_events: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for status pages and logs)."""
        return asdict(self)
