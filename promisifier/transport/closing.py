"""WebSocket close codes and close reasons."""

from __future__ import annotations

from enum import IntEnum

#: RFC 6455 limits the close reason to 123 bytes of UTF-8 (125 minus the 2-byte code).
MAX_REASON_BYTES = 123


class CloseCode(IntEnum):
    """The WebSocket close codes this package sends or reports."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    #: no close frame was received (abnormal closure); never sent on the wire
    ABNORMAL = 1006
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011


def truncate_reason(reason: str, limit: int = MAX_REASON_BYTES) -> str:
    """Shorten ``reason`` to at most ``limit`` bytes of UTF-8, at a character boundary."""
    encoded = reason.encode("utf-8")
    if len(encoded) <= limit:
        return reason
    # Dropping an incomplete trailing sequence leaves whole characters only.
    return encoded[:limit].decode("utf-8", errors="ignore")
