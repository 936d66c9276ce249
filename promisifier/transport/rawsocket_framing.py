"""The octets of WAMP's RawSocket transport: handshake and frame prefixes (no I/O).

A connection starts with a 4-octet handshake from the client, answered by the router:

    0x7F  LLLL SSSS  0x00  0x00

``SSSS`` is the serializer (1 JSON, 2 MessagePack) and ``LLLL`` the largest message the
sender of the octet is willing to *receive*, ``2 ** (LLLL + 9)`` octets (512 B to 16 MiB).
A router that refuses answers ``0x7F EEEE0000 0x00 0x00`` with an error code ``EEEE``
(1 serializer unsupported, 2 maximum message length unacceptable, 3 use of reserved bits,
4 maximum connection count reached) and closes. Then every transport message is a 4-octet
prefix and its payload:

    RRRR XTTT  LLLLLLLL LLLLLLLL LLLLLLLL

``TTT`` is the kind (0 a WAMP message, 1 PING, 2 PONG), the 24 ``L`` bits the payload
length, and ``X`` a 25th length bit, set only for a payload of exactly 16 MiB. A PING is
answered with a PONG carrying the same payload.
"""

from __future__ import annotations

import struct

MAGIC = 0x7F
#: handshake serializer ids of the spec (4 UBJSON, 5 FlatBuffers are not spoken here)
SERIALIZER_IDS: dict[str, int] = {"json": 1, "msgpack": 2, "cbor": 3}
#: frame kinds (TTT)
MESSAGE, PING, PONG = 0, 1, 2
#: handshake error codes (EEEE)
ERROR_SERIALIZER_UNSUPPORTED = 1
ERROR_MAX_LENGTH_UNACCEPTABLE = 2
ERROR_RESERVED_BITS = 3
ERROR_CONNECTION_COUNT = 4
HANDSHAKE_ERRORS = {
    ERROR_SERIALIZER_UNSUPPORTED: "serializer unsupported",
    ERROR_MAX_LENGTH_UNACCEPTABLE: "maximum message length unacceptable",
    ERROR_RESERVED_BITS: "use of reserved bits (unsupported feature)",
    ERROR_CONNECTION_COUNT: "maximum connection count reached",
}
#: the largest payload a frame can carry (the X bit): 16 MiB
MAX_FRAME_LENGTH = 1 << 24

_HEADER = struct.Struct(">I")
#: a frame prefix from its 32-bit value, and back (``unpack_header(data, offset)``)
pack_header = _HEADER.pack
unpack_header = _HEADER.unpack_from
#: the 25th length bit, and the reserved bits of a frame prefix
X_BIT = 0x08000000
RESERVED_BITS = 0xF0000000


def length_exponent(max_length: int) -> int:
    """The handshake's ``LLLL`` for a receive limit: the largest ``l`` in 0..15 with
    ``2 ** (l + 9) <= max_length`` (0 when ``max_length`` is below 512)."""
    exponent = 0
    while exponent < 15 and 1 << (exponent + 10) <= max_length:
        exponent += 1
    return exponent


def exponent_length(exponent: int) -> int:
    """The message length that the handshake's ``LLLL`` stands for: ``2 ** (LLLL + 9)``."""
    return 1 << (exponent + 9)


def frame_header(kind: int, length: int) -> bytes:
    """The 4-octet prefix of a frame of ``kind`` carrying ``length`` octets."""
    if length == MAX_FRAME_LENGTH:
        return pack_header((kind << 24) | X_BIT)
    if not 0 <= length < MAX_FRAME_LENGTH:
        raise ValueError(f"a RawSocket frame carries at most {MAX_FRAME_LENGTH} octets, not {length}")
    return pack_header((kind << 24) | length)


def handshake_octets(serializer_id: int, exponent: int) -> bytes:
    """A handshake request or success reply."""
    return bytes((MAGIC, (exponent << 4) | serializer_id, 0, 0))


def handshake_error_octets(code: int) -> bytes:
    """A handshake error reply."""
    return bytes((MAGIC, code << 4, 0, 0))
