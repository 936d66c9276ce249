"""Reading an open WebSocket connection (RFC 6455 section 5), sans I/O.

:class:`FrameReader` is fed the octets a peer sends once the opening handshake is done and
returns what they mean, in order: whole messages (fragments joined, text checked to be
UTF-8), control frames (:class:`Ping`, :class:`Pong`, :class:`Close`) and, when the peer
breaks the protocol, a :class:`Failure` with the close code to answer with (1002 protocol
error, 1007 invalid UTF-8, 1009 message too big). It writes nothing and keeps no timers:
answering a ping, the closing handshake and dropping the connection are the caller's.

After a failure the reader keeps parsing frames so that the peer's close frame can still
complete the closing handshake, but it returns no more messages: what a peer sends after
breaking the protocol is not trusted. Its checks and their order follow autobahn's frame
parser, whose results :mod:`promisifier.transport.websocket` must keep.
"""

from __future__ import annotations

from codecs import utf_8_decode
from typing import NamedTuple

from promisifier.transport.masking import mask as apply_mask

PROTOCOL_ERROR = 1002
INVALID_PAYLOAD = 1007
MESSAGE_TOO_BIG = 1009

#: close codes a peer may send (RFC 6455 section 7.4 and the IANA registry, as autobahn
#: accepts them); 3000-4999 are for libraries and applications
VALID_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013))

_TEXT, _BINARY, _CLOSE, _PING, _PONG = 1, 2, 8, 9, 10
_CONTINUATION = 0
_MAX_LENGTH = 0x7FFFFFFFFFFFFFFF


class Message(NamedTuple):
    """A whole data message: ``payload`` of a binary message, or UTF-8 text."""

    payload: bytes
    binary: bool


class Ping(NamedTuple):
    """A ping; RFC 6455 wants a pong with the same ``payload`` in answer."""

    payload: bytes


class Pong(NamedTuple):
    """A pong (the answer to a ping, or unsolicited)."""

    payload: bytes


class Close(NamedTuple):
    """The peer's close frame: ``code`` is None when the frame had no (valid) code.

    An invalid close frame (one octet, a code no endpoint may send, a reason that is not
    UTF-8) comes as a :class:`Failure` followed by its :class:`Close`.
    """

    code: int | None
    reason: str


class Failure(NamedTuple):
    """The peer broke the protocol: close the connection with ``code`` and ``reason``."""

    code: int
    reason: str


Event = Message | Ping | Pong | Close | Failure


class Utf8Checker:
    """Checks a UTF-8 text that arrives in pieces, failing at the first invalid octet.

    CPython's UTF-8 decoder does the work (it is faster than autobahn's compiled DFA on
    every size measured). Between pieces it keeps an incomplete trailing sequence; the
    decoder accepts a few prefixes no continuation can complete (``ED A0``: a surrogate),
    so a kept prefix of two or three octets is also tried with the smallest continuation.
    """

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail = b""

    def reset(self) -> None:
        """Start a new text."""
        self._tail = b""

    def check(self, piece: bytes, final: bool) -> bool:
        """False as soon as the text so far cannot be UTF-8 (or, when ``final``, is not)."""
        if self._tail:
            piece = self._tail + piece
        try:
            consumed = utf_8_decode(piece, "strict", final)[1]
        except UnicodeDecodeError:
            return False
        tail = piece[consumed:]
        self._tail = tail
        if len(tail) > 1:
            lead = tail[0]
            expected = 4 if lead >= 0xF0 else 3 if lead >= 0xE0 else 2
            try:
                utf_8_decode(tail + b"\x80" * (expected - len(tail)), "strict", True)
            except UnicodeDecodeError:
                return False
        return True


class FrameReader:
    """Turns the octets of an open WebSocket connection into :data:`Event` values.

    ``masked`` says how the peer's frames come: masked (a server reading a client, which
    must mask) or unmasked (a client reading a server, which must not). ``max_message_size``
    and ``max_frame_size`` are payload limits in octets (0: none); a frame header that
    would pass either is answered with 1009 before its payload is read. ``validate_utf8``
    checks text messages as they arrive (1007 at the first invalid octet).
    """

    __slots__ = (
        "_masked",
        "_max_message",
        "_max_frame",
        "_validate_utf8",
        "_utf8",
        "_pending",
        "_failed",
        "_in_frame",
        "_frame_remaining",
        "_frame_opcode",
        "_frame_fin",
        "_frame_key",
        "_frame_offset",
        "_frame_skip",
        "_control_parts",
        "_inside_message",
        "_message_parts",
        "_message_binary",
        "_message_size",
    )

    def __init__(
        self,
        *,
        masked: bool,
        max_message_size: int = 0,
        max_frame_size: int = 0,
        validate_utf8: bool = True,
    ) -> None:
        self._masked = masked
        self._max_message = max_message_size
        self._max_frame = max_frame_size
        self._validate_utf8 = validate_utf8
        self._utf8 = Utf8Checker()
        #: octets of a frame header that is not complete yet
        self._pending = b""
        self._failed = False
        # the frame whose payload is being read
        self._in_frame = False
        self._frame_remaining = 0
        self._frame_opcode = 0
        self._frame_fin = True
        self._frame_key = b""
        self._frame_offset = 0
        self._frame_skip = False
        self._control_parts: list[bytes] = []
        # between the first and the final frame of a data message
        self._inside_message = False
        # the pieces of that message (None: not kept, after a failure)
        self._message_parts: list[bytes] | None = None
        self._message_binary = False
        self._message_size = 0

    @property
    def failed(self) -> bool:
        """True once a :class:`Failure` was returned."""
        return self._failed

    def feed(self, data: bytes) -> list[Event]:
        """The events that ``data`` completes, in order."""
        events: list[Event] = []
        if self._pending:
            data = self._pending + data
            self._pending = b""
        position = 0
        end = len(data)
        while True:
            if self._in_frame:
                take = min(self._frame_remaining, end - position)
                if take == 0 and self._frame_remaining:
                    break
                self._frame_piece(data[position : position + take], events)
                position += take
                continue
            if position == end:
                break
            position = self._frame_header(data, position, end, events)
            if position < 0:
                self._pending = data[-position - 1 :]
                break
        return events

    # -- frame headers ------------------------------------------------------------

    def _frame_header(self, data: bytes, position: int, end: int, events: list[Event]) -> int:
        """Parse the frame header at ``position``: the position after the header (after
        the whole frame when it was read at once), or ``-1 - position`` when the header
        is not all there yet."""
        if end - position < 2:
            return -1 - position
        first = data[position]
        second = data[position + 1]
        short_length = second & 0x7F
        is_masked = second & 0x80
        header_length = 2 + (4 if is_masked else 0) + (2 if short_length == 126 else 8 if short_length == 127 else 0)
        if end - position < header_length:
            return -1 - position
        fin = bool(first & 0x80)
        opcode = first & 0x0F
        problem = self._header_problem(first & 0x70, bool(is_masked), fin, opcode, short_length)
        offset = position + 2
        if short_length == 126:
            length = int.from_bytes(data[offset : offset + 2], "big")
            offset += 2
            if length < 126 and problem is None:
                problem = "invalid data frame length (not using minimal length encoding)"
        elif short_length == 127:
            length = int.from_bytes(data[offset : offset + 8], "big")
            offset += 8
            if problem is None:
                if length > _MAX_LENGTH:
                    problem = "invalid data frame length (>2^63)"
                elif length < 0x10000:
                    problem = "invalid data frame length (not using minimal length encoding)"
        else:
            length = short_length
        key = data[offset : offset + 4] if is_masked else b""
        offset += 4 if is_masked else 0

        if problem is not None:
            self._fail(events, PROTOCOL_ERROR, problem)
            skip = True
        elif opcode < 8:
            skip = self._data_frame_begins(opcode, fin, length, events)
        else:
            skip = False  # control frames still count after a failure: a close completes it

        if not skip and fin and opcode in (_TEXT, _BINARY) and end - offset >= length:
            # The common case: a whole message in one frame, all of it here.
            payload = data[offset : offset + length]
            if key and length:
                payload = apply_mask(payload, key)
            self._message_parts = None
            # (ASCII, most WAMP text, is UTF-8: a C check that allocates nothing decides it)
            if opcode == _TEXT and self._validate_utf8 and not (payload.isascii() or self._utf8.check(payload, True)):
                self._fail(events, INVALID_PAYLOAD, "invalid UTF-8 in a text message")
            else:
                events.append(Message(payload, opcode == _BINARY))
            return offset + length

        self._in_frame = True
        self._frame_opcode = opcode
        self._frame_fin = fin
        self._frame_key = key
        self._frame_remaining = length
        self._frame_offset = 0
        self._frame_skip = skip
        return offset

    def _header_problem(self, rsv: int, is_masked: bool, fin: bool, opcode: int, short_length: int) -> str | None:
        if rsv:
            return f"RSV = {rsv >> 4} and no extension negotiated"
        if is_masked != self._masked:
            return "unmasked client-to-server frame" if self._masked else "masked server-to-client frame"
        if opcode > 7:
            if not fin:
                return "fragmented control frame"
            if short_length > 125:
                return "control frame with payload length > 125 octets"
            if opcode not in (_CLOSE, _PING, _PONG):
                return f"control frame using reserved opcode {opcode}"
            return None
        if opcode > _BINARY:
            return f"data frame using reserved opcode {opcode}"
        if opcode == _CONTINUATION and not self._inside_message:
            return "received continuation data frame outside fragmented message"
        if opcode != _CONTINUATION and self._inside_message:
            return "received non-continuation data frame while inside fragmented message"
        return None

    def _data_frame_begins(self, opcode: int, fin: bool, length: int, events: list[Event]) -> bool:
        """Account a data frame of ``length`` octets to its message; True to skip it."""
        if opcode != _CONTINUATION:
            self._message_parts = None if self._failed else []
            self._message_binary = opcode == _BINARY
            self._message_size = 0
            if not self._message_binary and self._validate_utf8:
                self._utf8.reset()
        self._inside_message = not fin
        self._message_size += length
        if self._message_parts is None:
            return True
        if 0 < self._max_message < self._message_size:
            self._fail(
                events,
                MESSAGE_TOO_BIG,
                f"received WebSocket message size {self._message_size} exceeds payload limit"
                f" of {self._max_message} octets",
            )
            return True
        if 0 < self._max_frame < length:
            self._fail(
                events,
                MESSAGE_TOO_BIG,
                f"received WebSocket frame size {length} exceeds payload limit of {self._max_frame} octets",
            )
            return True
        return False

    # -- frame payloads -----------------------------------------------------------

    def _frame_piece(self, piece: bytes, events: list[Event]) -> None:
        """The next ``piece`` of the current frame's payload (empty for an empty frame)."""
        offset = self._frame_offset
        self._frame_remaining -= len(piece)
        self._frame_offset = offset + len(piece)
        done = self._frame_remaining == 0
        if done:
            self._in_frame = False
        if self._frame_skip:
            return
        if self._frame_key and piece:
            piece = apply_mask(piece, self._frame_key, offset)
        if self._frame_opcode > 7:
            self._control_parts.append(piece)
            if done:
                payload = b"".join(self._control_parts)
                self._control_parts = []
                self._control_frame(self._frame_opcode, payload, events)
        else:
            self._message_piece(piece, done and self._frame_fin, events)

    def _message_piece(self, piece: bytes, final: bool, events: list[Event]) -> None:
        parts = self._message_parts
        if parts is None:  # the message failed earlier
            return
        if not self._message_binary and self._validate_utf8 and not self._utf8.check(piece, final):
            self._fail(events, INVALID_PAYLOAD, "invalid UTF-8 in a text message")
            return
        if piece:
            parts.append(piece)
        if final:
            self._message_parts = None
            events.append(Message(b"".join(parts), self._message_binary))

    def _control_frame(self, opcode: int, payload: bytes, events: list[Event]) -> None:
        if opcode == _PING:
            events.append(Ping(payload))
        elif opcode == _PONG:
            events.append(Pong(payload))
        else:
            events.append(self._close_frame(payload, events))

    def _close_frame(self, payload: bytes, events: list[Event]) -> Close:
        # An invalid close frame is a failure, and still the peer's close: the Close
        # after the Failure carries what was valid in it.
        if not payload:
            return Close(None, "")
        if len(payload) == 1:
            self._fail(events, PROTOCOL_ERROR, "received close control frame with payload len 1")
            return Close(None, "")
        code = int.from_bytes(payload[:2], "big")
        if not (code in VALID_CLOSE_CODES or 3000 <= code <= 4999):
            self._fail(events, PROTOCOL_ERROR, f"invalid close code {code}")
            return Close(None, "")
        try:
            return Close(code, payload[2:].decode("utf-8"))
        except UnicodeDecodeError:
            self._fail(events, INVALID_PAYLOAD, "invalid close reason (non-UTF8 payload)")
            return Close(code, "")

    def _fail(self, events: list[Event], code: int, reason: str) -> None:
        self._failed = True
        self._message_parts = None
        events.append(Failure(code, reason))
