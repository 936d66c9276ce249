"""The relay's own WebSocket frame reader (``promisifier.transport.websocket_reader``).

In memory: the reader alone (sans I/O), the masker against autobahn's, and the relay's
WebSocket protocol fed the same octets with our reader and with autobahn's, which must
answer alike (same frames written, same close code, same end of the connection). The
conformance cases of the Autobahn test suite over real sockets are in
``test_websocket_conformance.py``.
"""

from __future__ import annotations

import json
import os

import pytest
from autobahn.websocket.xormasker import create_xor_masker
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from promisifier.embed import Router
from promisifier.router import RouterConfig
from promisifier.transport import masking
from promisifier.transport.autobahn_internals import client_frame as client_frame_of
from promisifier.transport.websocket_reader import (
    Close,
    Failure,
    FrameReader,
    Message,
    Ping,
    Pong,
    Utf8Checker,
)
from tests.ws_frames import BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT, client_frame, close_payload, server_frames

HELLO = b'[1,"realm1",{"roles":{"caller":{}}}]'


def _feed_in_pieces(reader: FrameReader, data: bytes, size: int) -> list:
    events = []
    for start in range(0, len(data), size):
        events += reader.feed(data[start : start + size])
    return events


# -- masking ------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 3, 4, 5, 125, 255, 256, 257, 1000, 65536])
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 7])
def test_masking_matches_autobahn_for_every_size_and_offset(length, offset):
    key = os.urandom(4)
    frame_payload = os.urandom(length + offset)
    expected = create_xor_masker(key, len(frame_payload)).process(frame_payload)
    assert masking.mask(frame_payload[offset:], key, offset) == expected[offset:]


@pytest.mark.parametrize("length", [0, 1, 7, 60, 5000])
def test_every_masking_implementation_agrees(length):
    key = os.urandom(4)
    payload = os.urandom(length)
    assert masking.HAS_COMPILED_MASKER  # autobahn ships it built for this platform
    by_int = masking._mask_by_int(payload, key, length)
    if masking.HAS_WEBSOCKETS_MASKER:  # (a virtualenv made before websockets was a dependency lacks it)
        assert masking._apply_mask(payload, key) == by_int
    if length:
        assert masking._mask_compiled(payload, key, length) == by_int
    assert masking.mask(masking.mask(payload, key), key) == payload


# -- UTF-8 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pieces", "first_invalid"),
    [
        ([b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", b"\xf4\x90\x80\x80", b"edited"], 1),
        ([b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4", b"\x90", b"\x80\x80edited"], 1),
        # CPython's decoder keeps b"\xed\xa0" as a prefix; the checker knows it is a surrogate
        ([b"edited\xed", b"\xa0", b"\x80"], 1),
        ([b"\xf0", b"\x90", b"\x80", b"\x80"], None),
        ([b"ab\xe2\x82"], 0),  # valid so far, but a final piece must end on a character
    ],
)
def test_utf8_checker_fails_at_the_first_piece_that_cannot_be_utf8(pieces, first_invalid):
    checker = Utf8Checker()
    results = [checker.check(piece, final=i == len(pieces) - 1) for i, piece in enumerate(pieces)]
    assert (results.index(False) if False in results else None) == first_invalid


@given(st.text(), st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_utf8_checker_accepts_any_text_split_anywhere(text, cuts):
    data = text.encode("utf-8")
    points = sorted({min(cut, len(data)) for cut in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]
    checker = Utf8Checker()
    assert all(checker.check(piece, final=i == len(pieces) - 1) for i, piece in enumerate(pieces))


# -- the reader alone -------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
@pytest.mark.parametrize("piece", [1, 7, 997, 1 << 20])
def test_every_length_form_in_any_pieces(length, piece):
    payload = os.urandom(length)
    data = client_frame(BINARY, payload) + client_frame(TEXT, b"after")
    if length > 2000 and piece == 1:
        piece = 3
    events = _feed_in_pieces(FrameReader(masked=True), data, piece)
    assert events == [Message(payload, True), Message(b"after", False)]


@given(
    st.lists(st.tuples(st.binary(max_size=300), st.booleans(), st.integers(1, 4)), min_size=1, max_size=5),
    st.integers(min_value=1, max_value=64),
)
@settings(max_examples=60)
def test_fragmented_messages_with_pings_between_fragments(messages, piece):
    data = b""
    expected = []
    for payload, binary, fragments in messages:
        if not binary:
            payload = payload.decode("latin-1").encode("utf-8")
        step = max(1, len(payload) // fragments)
        chunks = [payload[i : i + step] for i in range(0, len(payload), step)] or [b""]
        for i, chunk in enumerate(chunks):
            opcode = (BINARY if binary else TEXT) if i == 0 else CONTINUATION
            data += client_frame(opcode, chunk, fin=i == len(chunks) - 1)
            if i == 0:
                data += client_frame(PING, b"p")
        message = Message(payload, binary)
        expected += [Ping(b"p"), message] if len(chunks) > 1 else [message, Ping(b"p")]
    assert _feed_in_pieces(FrameReader(masked=True), data, piece) == expected


def test_control_frames():
    reader = FrameReader(masked=True)
    data = (
        client_frame(PING)
        + client_frame(PING, b"x" * 125)
        + client_frame(PONG, b"unsolicited")
        + client_frame(CLOSE, close_payload(4000, "bye, κόσμε".encode()))
    )
    assert reader.feed(data) == [Ping(b""), Ping(b"x" * 125), Pong(b"unsolicited"), Close(4000, "bye, κόσμε")]
    assert FrameReader(masked=True).feed(client_frame(CLOSE)) == [Close(None, "")]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (client_frame(TEXT, b"x", rsv=1), 1002),
        (client_frame(TEXT, b"x", masked=False), 1002),
        (client_frame(3, b"x"), 1002),
        (client_frame(11), 1002),
        (client_frame(PING, b"x" * 126), 1002),
        (client_frame(PING, b"x", fin=False), 1002),
        (client_frame(CLOSE, b"\x03"), 1002),
        (client_frame(CLOSE, close_payload(1005)), 1002),
        (client_frame(CLOSE, close_payload(999)), 1002),
        (client_frame(CLOSE, close_payload(1000, b"\xff")), 1007),
        (client_frame(CONTINUATION, b"x"), 1002),
        (client_frame(TEXT, b"x", fin=False) + client_frame(TEXT, b"y"), 1002),
        (client_frame(TEXT, b"x", length_form=16), 1002),
        (client_frame(TEXT, b"x" * 200, length_form=64), 1002),
        (client_frame(TEXT, b"\xce\xba\xed\xa0\x80"), 1007),
        (client_frame(TEXT, b"\xce", fin=False) + client_frame(CONTINUATION, b""), 1007),
        (client_frame(BINARY, b"x" * 101), 1009),
        (client_frame(BINARY, b"x" * 60, fin=False) + client_frame(CONTINUATION, b"x" * 41), 1009),
    ],
)
def test_violations_get_their_close_code(data, code):
    reader = FrameReader(masked=True, max_message_size=100)
    events = reader.feed(data)
    assert [event for event in events if isinstance(event, Failure)][0].code == code
    assert not [event for event in events if isinstance(event, Message)]
    assert reader.failed


def test_a_client_refuses_masked_frames_and_reads_unmasked_ones():
    reader = FrameReader(masked=False)
    assert reader.feed(client_frame(TEXT, b"hi", masked=False)) == [Message(b"hi", False)]
    (failure,) = reader.feed(client_frame(TEXT, b"hi"))
    assert failure.code == 1002


def test_after_a_failure_only_the_close_frame_counts():
    reader = FrameReader(masked=True, max_message_size=10)
    events = reader.feed(
        client_frame(TEXT, b"x" * 11, fin=False)
        + client_frame(CONTINUATION, b"more", fin=True)
        + client_frame(TEXT, b"ignored")
        + client_frame(PING, b"p")
        + client_frame(CLOSE, close_payload(1000))
    )
    assert [type(event) for event in events] == [Failure, Ping, Close]
    assert events[0].code == 1009


def test_invalid_utf8_fails_before_the_rest_of_the_frame_arrives():
    reader = FrameReader(masked=True)
    frame = client_frame(TEXT, "κόσμε".encode() + b"\xf4\x90\x80\x80" + b"edited")
    header = 6
    assert reader.feed(frame[: header + 10]) == []
    (failure,) = reader.feed(frame[header + 10 : header + 12])
    assert failure.code == 1007


# -- the relay's protocol: our reader and autobahn's answer alike ---------------------------

HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: wamp.2.json\r\n"
)


class _Transport(StringTransport):
    def unregisterProducer(self):  # noqa: N802 - Twisted API
        # autobahn unregisters when it drops a connection, registered or not
        self.producer = None


def _open_connection(own_reader: bool, extra_headers: bytes = b"", max_message_size: int = 1000, **options):
    router = Router(RouterConfig(realms=("realm1",), max_message_size=max_message_size), reactor=Clock())
    factory = router.websocket_factory()
    for name in ("logFrames", "logOctets", "trackTimings"):
        if name in options:  # not settable through setProtocolOptions
            setattr(factory, name, options.pop(name))
    factory.setProtocolOptions(**options)
    transport = _Transport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
    protocol = factory.buildProtocol(transport.getPeer())
    protocol.makeConnection(transport)
    protocol.dataReceived(HANDSHAKE + extra_headers + b"\r\n")
    assert transport.value().startswith(b"HTTP/1.1 101"), transport.value()[:200]
    transport.clear()
    if not own_reader:
        protocol._frame_reader = None
    return protocol, transport


def _outcome(own_reader: bool, data: bytes, piece: int) -> tuple:
    protocol, transport = _open_connection(own_reader)
    assert (protocol._frame_reader is not None) is own_reader
    for start in range(0, len(data), piece):
        protocol.dataReceived(data[start : start + piece])
    frames, rest = server_frames(transport.value())
    assert rest == b""
    written = [(frame.opcode, _meaning(frame)) for frame in frames]
    failed = any(frame.opcode == CLOSE and frame.close_code in (1002, 1007, 1009) for frame in frames)
    if failed:
        # After failing a connection autobahn drops the TCP as soon as it meets a second
        # violation, and it meets the same one again when a frame header arrives in
        # pieces (it re-reads the header). Our reader reports a violation once and waits
        # for the peer's close frame, as RFC 6455 section 7.1.7 allows; that close ends it.
        if own_reader and not transport.disconnecting:
            protocol.dataReceived(client_frame(CLOSE, close_payload(1000)))
            assert transport.disconnecting
        return (written,)
    return written, transport.disconnecting, protocol.state, protocol.wasClean, protocol.remoteCloseCode


def _meaning(frame) -> object:
    """What a written frame says, without what differs between runs (session ids)."""
    if frame.opcode == CLOSE:
        return frame.close_code
    if frame.opcode == TEXT:
        message = json.loads(frame.payload)
        return message[0], message[2] if message[0] == 3 else None  # the ABORT reason
    return frame.payload


SCENARIOS = {
    "hello": client_frame(TEXT, HELLO),
    "hello in fragments with a ping": client_frame(TEXT, HELLO[:5], fin=False)
    + client_frame(PING, b"ping")
    + client_frame(CONTINUATION, HELLO[5:20], fin=False)
    + client_frame(CONTINUATION, HELLO[20:]),
    "pong unsolicited": client_frame(PONG, b"x") + client_frame(TEXT, HELLO),
    "empty fragments": client_frame(TEXT, b"", fin=False) + client_frame(CONTINUATION, HELLO),
    "binary on json": client_frame(BINARY, HELLO),
    "not json": client_frame(TEXT, b"hello"),
    "invalid utf-8": client_frame(TEXT, HELLO[:5] + b"\xed\xa0\x80" + HELLO[5:]),
    "invalid utf-8 in a fragment": client_frame(TEXT, HELLO[:5], fin=False)
    + client_frame(CONTINUATION, b"\xf4\x90", fin=False)
    + client_frame(CONTINUATION, HELLO[5:]),
    "utf-8 ends inside a character": client_frame(TEXT, HELLO + b"\xce"),
    "rsv": client_frame(TEXT, HELLO, rsv=4),
    "unmasked": client_frame(TEXT, HELLO, masked=False),
    "reserved data opcode": client_frame(5, HELLO),
    "reserved control opcode": client_frame(13),
    "ping too long": client_frame(PING, b"p" * 126),
    "fragmented ping": client_frame(PING, b"p", fin=False),
    "continuation first": client_frame(CONTINUATION, HELLO),
    "new message inside one": client_frame(TEXT, HELLO[:3], fin=False) + client_frame(TEXT, HELLO),
    "length not minimal": client_frame(TEXT, HELLO, length_form=16),
    "message too big": client_frame(TEXT, b"[" * 1001),
    "fragments too big": client_frame(TEXT, b"[" * 600, fin=False) + client_frame(CONTINUATION, b"]" * 600),
    "close": client_frame(TEXT, HELLO) + client_frame(CLOSE, close_payload(1000, b"done")),
    "close without code": client_frame(CLOSE),
    "close with 3000": client_frame(CLOSE, close_payload(3000)),
    "close of one octet": client_frame(CLOSE, b"\x03"),
    "close with an invalid code": client_frame(CLOSE, close_payload(1004)),
    "close reason not utf-8": client_frame(CLOSE, close_payload(1000, b"\xce")),
    "text after close": client_frame(CLOSE, close_payload(1000)) + client_frame(TEXT, HELLO),
    "violation then close": client_frame(TEXT, HELLO, rsv=1) + client_frame(CLOSE, close_payload(1002)),
    "too big then more fragments then close": client_frame(TEXT, b"[" * 1001, fin=False)
    + client_frame(CONTINUATION, b"]")
    + client_frame(CLOSE, close_payload(1000)),
}


@pytest.mark.parametrize("piece", [1, 5, 1 << 16])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_our_reader_answers_as_autobahns(scenario, piece):
    data = SCENARIOS[scenario]
    assert _outcome(True, data, piece) == _outcome(False, data, piece)


def test_the_reader_takes_the_frames_that_came_with_the_handshake():
    router = Router(RouterConfig(realms=("realm1",)), reactor=Clock())
    protocol = router.websocket_factory().buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = _Transport()
    protocol.makeConnection(transport)
    protocol.dataReceived(HANDSHAKE + b"\r\n" + client_frame(TEXT, HELLO) + client_frame(TEXT, HELLO[:9], fin=False))
    assert protocol._frame_reader is not None and protocol.data == b""
    protocol.dataReceived(client_frame(CONTINUATION, HELLO[9:]))
    frames, _ = server_frames(transport.value().split(b"\r\n\r\n", 1)[1])
    # a WELCOME, then the second HELLO breaks the WAMP protocol (ABORT) : both were read
    assert [frame.payload[:3] for frame in frames[:2]] == [b"[2,", b"[3,"]


@pytest.mark.parametrize(
    ("options", "headers"),
    [
        ({"logFrames": True}, b""),
        ({"logOctets": True}, b""),
        ({"trackTimings": True}, b""),
        ({"requireMaskedClientFrames": False}, b""),
        ({"applyMask": False}, b""),
    ],
)
def test_what_our_reader_does_not_cover_stays_autobahns(options, headers):
    protocol, transport = _open_connection(True, headers, **options)
    assert protocol._frame_reader is None
    # a zero masking key, for the connection that does not unmask (applyMask=False)
    zero = b"\0\0\0\0"
    protocol.dataReceived(
        client_frame(TEXT, HELLO[:5], fin=False, key=zero)
        + client_frame(PING, b"ping", key=zero)
        + client_frame(CONTINUATION, HELLO[5:], key=zero)
    )
    frames, _ = server_frames(transport.value())
    assert [frame.opcode for frame in frames] == [PONG, TEXT]
    assert frames[1].payload.startswith(b"[2,")  # WELCOME


def test_permessage_deflate_connections_are_read_by_autobahn():
    from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept

    def accept(offers):
        for offer in offers:
            if isinstance(offer, PerMessageDeflateOffer):
                return PerMessageDeflateOfferAccept(offer)
        return None

    protocol, transport = _open_connection(
        True, b"Sec-WebSocket-Extensions: permessage-deflate\r\n", perMessageCompressionAccept=accept
    )
    assert protocol._perMessageCompress is not None
    assert protocol._frame_reader is None
    protocol.dataReceived(client_frame(TEXT, HELLO))  # an uncompressed message is still allowed
    assert transport.value()


# -- the client side: our reader, and masked frames written directly ----------------------


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536])
@pytest.mark.parametrize("binary", [False, True])
def test_a_client_frame_is_read_back_by_a_server_reader(length, binary):
    payload = b"a" * length
    first, second = client_frame_of(payload, binary), client_frame_of(payload, binary)
    assert FrameReader(masked=True).feed(first + second) == [Message(payload, binary)] * 2
    if length:
        assert first != second  # a new masking key for every frame
