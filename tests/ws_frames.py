"""WebSocket frames built and parsed octet by octet, for tests that speak to the relay's
WebSocket endpoint below any WebSocket library (our own frame reader included)."""

from __future__ import annotations

from typing import NamedTuple

TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10
KEY = b"\x37\xfa\x21\x3d"


def _xor(payload: bytes, key: bytes) -> bytes:
    return bytes(octet ^ key[i & 3] for i, octet in enumerate(payload))


def client_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    key: bytes = KEY,
    length_form: int | None = None,
) -> bytes:
    """One frame as a client sends it: masked with ``key`` unless ``masked`` is False.

    ``rsv`` is the three reserved bits (0-7); ``length_form`` forces the 7-, 16- or 64-bit
    length encoding (7, 16, 64), minimal or not, for the frame tests that need that.
    """
    length = len(payload)
    form = length_form or (7 if length < 126 else 16 if length < 0x10000 else 64)
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if masked else 0
    if form == 7:
        header = bytes((first, mask_bit | length))
    elif form == 16:
        header = bytes((first, mask_bit | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((first, mask_bit | 127)) + length.to_bytes(8, "big")
    if not masked:
        return header + payload
    return header + key + _xor(payload, key)


def close_payload(code: int | None = None, reason: bytes = b"") -> bytes:
    return b"" if code is None else code.to_bytes(2, "big") + reason


class ServerFrame(NamedTuple):
    opcode: int
    fin: bool
    payload: bytes

    @property
    def close_code(self) -> int | None:
        """The code of a close frame (None when it has no payload)."""
        return int.from_bytes(self.payload[:2], "big") if len(self.payload) >= 2 else None


def server_frames(data: bytes) -> tuple[list[ServerFrame], bytes]:
    """The whole unmasked frames at the start of ``data``, and the octets after them."""
    frames = []
    position = 0
    while len(data) - position >= 2:
        first, second = data[position], data[position + 1]
        assert not second & 0x80, "a server frame is never masked"
        length = second & 0x7F
        offset = position + 2
        if length == 126:
            if len(data) - offset < 2:
                break
            length = int.from_bytes(data[offset : offset + 2], "big")
            offset += 2
        elif length == 127:
            if len(data) - offset < 8:
                break
            length = int.from_bytes(data[offset : offset + 8], "big")
            offset += 8
        if len(data) - offset < length:
            break
        frames.append(ServerFrame(first & 0x0F, bool(first & 0x80), data[offset : offset + length]))
        position = offset + length
    return frames, data[position:]
