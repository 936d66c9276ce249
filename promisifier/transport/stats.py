"""Per-connection traffic counters."""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: close codes that mean "the peer broke the protocol" (counted in ``protocol_errors``)
PROTOCOL_ERROR_CODES = frozenset((1002, 1003, 1007))


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
    #: frames that closed the connection as protocol errors (1002, 1003, 1007)
    protocol_errors: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for status pages and logs)."""
        return asdict(self)


def handler_log_fields(handler: object) -> dict:
    """Log fields naming the session on a connection (``session_id``, ``realm``,
    ``authid``), when its handler offers them (``handler.log_fields()``)."""
    log_fields = getattr(handler, "log_fields", None)
    if log_fields is None:
        return {}
    fields = dict(log_fields())
    fields.pop("peer", None)  # the connection names its peer itself
    return fields
