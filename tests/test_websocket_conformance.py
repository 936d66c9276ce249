"""The Autobahn WebSocket test suite's server cases, ported, against the relay over 127.0.0.1.

The Autobahn test suite (``autobahntestsuite``, the ``wstest`` fuzzing client) is written
for Python 2 and does not install on Python 3.11, so its server cases are ported here: each
test names its case number, sends the same frames (our own octets, from ``tests/ws_frames``)
and checks what the case checks. Sections: 1 framing (lengths), 2 pings and pongs,
3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 closing, 9 limits (the small
sizes), 10.1.1 (a message in many frames).

The suite expects an echo server; the relay is a WAMP router, so a message is a WAMP
PUBLISH that comes back as an EVENT to the same session (``tests/ws_peer.EchoSession``),
and the octets a case varies are the PUBLISH's argument, with the framing of the case.
Where that cannot carry a case exactly, the test says what it checks instead:

* an empty message (1.1.1, 1.2.1, 6.1.1, 6.1.2) is not WAMP: the relay closes with 1007
  (text) / 1007 (binary it cannot decode) where an echo server would echo it;
* "fail fast" is checked without waiting a second: the rest of the message is not sent
  at all, so a relay that only failed at the end of the message would time out;
* where the suite accepts "failed with the code, or TCP dropped", the relay must send
  the close code.

Octet-wise chops are written one octet per write, each in its own reactor turn, with
TCP_NODELAY; how the kernel hands them over is its own business, which is the point of
those cases (the in-memory tests in ``test_websocket_reader.py`` feed every split).
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer

from promisifier.router import RouterConfig
from tests.support import start_router, until
from tests.ws_frames import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    client_frame,
    close_payload,
)
from tests.ws_peer import EchoSession, text_argument

pytestmark = pytest.mark.slow

KOSME = "κόσμε".encode()
MAX_MESSAGE = 512 * 1024


@pytest.fixture
def relay():
    """A relay on 127.0.0.1 with a 512 KiB message limit (for the 9.x limit cases)."""
    config = RouterConfig(realms=("realm1",), max_message_size=MAX_MESSAGE)
    running = pytest_twisted.blockon(start_router(config))
    yield running
    pytest_twisted.blockon(running.stop())


@defer.inlineCallbacks
def _join(relay, serializer: str = "json"):
    session = yield EchoSession.join(relay.port.getHost().port, serializer)
    return session


def _close_codes(frames) -> list[int | None]:
    return [frame.close_code for frame in frames if frame.opcode == CLOSE]


@defer.inlineCallbacks
def _expect_failure(session: EchoSession, code: int, inside_frame: bool = False):
    """The relay fails the connection with ``code``: a close frame with it and nothing
    else (no echo, no pong), then it ends the TCP connection.

    ``inside_frame``: the relay failed before the frame's payload was all sent, so our
    close frame would be read as the rest of that payload (RFC 6455 has no way out of a
    frame) and the relay ends the connection only after its closing handshake timeout;
    we hang up instead of waiting for that.
    """
    frames = yield session.peer.until_close(hang_up=inside_frame)
    assert [(frame.opcode, frame.close_code) for frame in frames] == [(CLOSE, code)], frames


@defer.inlineCallbacks
def _expect_echo_then_normal_close(session: EchoSession, *expected_echoes):
    echoes = []
    for _ in expected_echoes:
        echoes.append(session.echoed((yield session.peer.next_frame())))
    assert echoes == list(expected_echoes)
    rest = yield session.peer.finish()
    assert [(frame.opcode, frame.close_code) for frame in rest] == [(CLOSE, 1000)], rest


# -- 1. framing: text and binary messages of every length form ----------------------------

LENGTHS = {1: 0, 2: 125, 3: 126, 4: 127, 5: 128, 6: 65535, 7: 65536}


@pytest.mark.parametrize(("case", "length"), [(f"1.1.{n}", length) for n, length in LENGTHS.items()] + [("1.1.8", -1)])
@pytest_twisted.inlineCallbacks
def test_1_1_text_messages(relay, case, length):
    session = yield _join(relay)
    if length == 0:  # 1.1.1: an empty text message is not WAMP
        session.peer.send(client_frame(TEXT, b""))
        yield _expect_failure(session, 1007)
        return
    message, argument = session.publish_of_length(65536 if length < 0 else length)
    if length < 0:  # 1.1.8: 65536 octets written in chops of 997
        yield session.peer.send_chopped(client_frame(TEXT, message), 997)
    else:
        session.peer.send(client_frame(TEXT, message))
    yield _expect_echo_then_normal_close(session, argument.decode())


@pytest.mark.parametrize(("case", "length"), [(f"1.2.{n}", length) for n, length in LENGTHS.items()] + [("1.2.8", -1)])
@pytest_twisted.inlineCallbacks
def test_1_2_binary_messages(relay, case, length):
    session = yield _join(relay, "msgpack")
    if length == 0:  # 1.2.1: an empty binary message is not WAMP
        session.peer.send(client_frame(BINARY, b""))
        yield _expect_failure(session, 1007)
        return
    message, argument = session.publish_of_length(65536 if length < 0 else length)
    if length < 0:  # 1.2.8: 65536 octets written in chops of 997
        yield session.peer.send_chopped(client_frame(BINARY, message), 997)
    else:
        session.peer.send(client_frame(BINARY, message))
    yield _expect_echo_then_normal_close(session, argument)


# -- 2. pings and pongs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "payload", "chop"),
    [
        ("2.1", b"", None),
        ("2.2", b"Hello, world!", None),
        ("2.3", b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", None),
        ("2.4", b"\xfe" * 125, None),
        ("2.6", b"\xfe" * 125, 1),
    ],
)
@pytest_twisted.inlineCallbacks
def test_2_ping_is_answered_with_its_payload(relay, case, payload, chop):
    session = yield _join(relay)
    ping = client_frame(PING, payload)
    if chop:
        yield session.peer.send_chopped(ping, chop)
    else:
        session.peer.send(ping)
    pong = yield session.peer.next_frame()
    assert (pong.opcode, pong.payload) == (PONG, payload)
    assert _close_codes((yield session.peer.finish())) == [1000]


@pytest_twisted.inlineCallbacks
def test_2_5_ping_of_126_octets_fails_the_connection(relay):
    session = yield _join(relay)
    session.peer.send(client_frame(PING, b"\xfe" * 126))
    yield _expect_failure(session, 1002)


@pytest.mark.parametrize(("case", "payload"), [("2.7", b""), ("2.8", b"unsolicited pong payload")])
@pytest_twisted.inlineCallbacks
def test_2_unsolicited_pong_is_not_answered(relay, case, payload):
    session = yield _join(relay)
    session.peer.send(client_frame(PONG, payload))
    rest = yield session.peer.finish()
    assert [(frame.opcode, frame.close_code) for frame in rest] == [(CLOSE, 1000)]


@pytest_twisted.inlineCallbacks
def test_2_9_unsolicited_pong_then_ping(relay):
    session = yield _join(relay)
    session.peer.send(client_frame(PONG, b"unsolicited pong payload") + client_frame(PING, b"ping payload"))
    pong = yield session.peer.next_frame()
    assert (pong.opcode, pong.payload) == (PONG, b"ping payload")
    assert _close_codes((yield session.peer.finish())) == [1000]


@pytest.mark.parametrize(("case", "chop"), [("2.10", None), ("2.11", 1)])
@pytest_twisted.inlineCallbacks
def test_2_ten_pings_ten_pongs(relay, case, chop):
    session = yield _join(relay)
    pings = b"".join(client_frame(PING, f"payload-{i}".encode()) for i in range(10))
    if chop:
        yield session.peer.send_chopped(pings, chop)
    else:
        session.peer.send(pings)
    pongs = []
    for _ in range(10):
        pongs.append((yield session.peer.next_frame()))
    assert [(frame.opcode, frame.payload) for frame in pongs] == [(PONG, f"payload-{i}".encode()) for i in range(10)]
    assert _close_codes((yield session.peer.finish())) == [1000]


# -- 3. reserved bits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "frame"),
    [
        ("3.1", client_frame(TEXT, b"Hello, world!", rsv=1)),
        ("3.5", client_frame(BINARY, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=5)),
        ("3.6", client_frame(PING, b"Hello, world!", rsv=6)),
        ("3.7", client_frame(CLOSE, close_payload(1000), rsv=7)),
    ],
)
@pytest_twisted.inlineCallbacks
def test_3_reserved_bits_fail_the_connection(relay, case, frame):
    session = yield _join(relay)
    session.peer.send(frame)
    yield _expect_failure(session, 1002)


@pytest.mark.parametrize(("case", "rsv", "chop"), [("3.2", 2, None), ("3.3", 3, "frames"), ("3.4", 4, 1)])
@pytest_twisted.inlineCallbacks
def test_3_echo_then_reserved_bits_then_ping(relay, case, rsv, chop):
    session = yield _join(relay)
    argument = b"Hello, world!"
    frames = [
        client_frame(TEXT, session.publish_octets(argument)),
        client_frame(TEXT, session.publish_octets(argument), rsv=rsv),
        client_frame(PING, b"ping"),
    ]
    yield _send(session, frames, chop)
    echo = yield session.peer.next_frame()
    assert session.echoed(echo) == "Hello, world!"
    yield _expect_failure(session, 1002)  # and no pong


@defer.inlineCallbacks
def _send(session: EchoSession, frames: list[bytes], chop):
    """Write ``frames`` at once (chop None), one write per frame ("frames"), or in chops
    of ``chop`` octets."""
    if chop is None:
        session.peer.send(b"".join(frames))
    elif chop == "frames":
        for frame in frames:
            yield session.peer.send_chopped(frame, len(frame))
    else:
        yield session.peer.send_chopped(b"".join(frames), chop)


# -- 4. opcodes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "opcode", "payload"),
    [
        ("4.1.1", 3, b""),
        ("4.1.2", 4, b"reserved opcode payload"),
        ("4.2.1", 11, b""),
        ("4.2.2", 12, b"reserved opcode payload"),
    ],
)
@pytest_twisted.inlineCallbacks
def test_4_reserved_opcode_fails_the_connection(relay, case, opcode, payload):
    session = yield _join(relay)
    session.peer.send(client_frame(opcode, payload))
    yield _expect_failure(session, 1002)


@pytest.mark.parametrize(
    ("case", "opcode", "payload"),
    [
        ("4.1.3", 5, b""),
        ("4.1.4", 6, b"reserved opcode payload"),
        ("4.1.5", 7, b"reserved opcode payload"),
        ("4.2.3", 13, b""),
        ("4.2.4", 14, b"reserved opcode payload"),
        ("4.2.5", 15, b"reserved opcode payload"),
    ],
)
@pytest_twisted.inlineCallbacks
def test_4_echo_then_reserved_opcode_then_ping(relay, case, opcode, payload):
    session = yield _join(relay)
    session.peer.send(
        client_frame(TEXT, session.publish_octets(b"Hello, world!"))
        + client_frame(opcode, payload)
        + client_frame(PING, b"ping")
    )
    assert session.echoed((yield session.peer.next_frame())) == "Hello, world!"
    yield _expect_failure(session, 1002)  # and no pong


# -- 5. fragmentation ---------------------------------------------------------------------


@pytest.mark.parametrize(("case", "opcode"), [("5.1", PING), ("5.2", PONG)])
@pytest_twisted.inlineCallbacks
def test_5_fragmented_control_frame_fails_the_connection(relay, case, opcode):
    session = yield _join(relay)
    session.peer.send(client_frame(opcode, b"fragment1", fin=False) + client_frame(CONTINUATION, b"fragment2"))
    yield _expect_failure(session, 1002)


def _fragments(message: bytes, count: int) -> list[bytes]:
    step = -(-len(message) // count)
    return [message[i : i + step] for i in range(0, len(message), step)]


def _fragmented(message: bytes, count: int, opcode: int = TEXT) -> list[bytes]:
    pieces = _fragments(message, count)
    return [
        client_frame(opcode if i == 0 else CONTINUATION, piece, fin=i == len(pieces) - 1)
        for i, piece in enumerate(pieces)
    ]


@pytest.mark.parametrize(("case", "chop"), [("5.3", None), ("5.4", "frames"), ("5.5", 1)])
@pytest_twisted.inlineCallbacks
def test_5_text_message_in_two_fragments(relay, case, chop):
    session = yield _join(relay)
    yield _send(session, _fragmented(session.publish_octets(b"fragment1fragment2"), 2), chop)
    yield _expect_echo_then_normal_close(session, "fragment1fragment2")


@pytest.mark.parametrize(("case", "chop"), [("5.6", None), ("5.7", "frames"), ("5.8", 1)])
@pytest_twisted.inlineCallbacks
def test_5_ping_between_two_fragments(relay, case, chop):
    session = yield _join(relay)
    first, second = _fragmented(session.publish_octets(b"fragment1fragment2"), 2)
    yield _send(session, [first, client_frame(PING, b"ping payload"), second], chop)
    pong = yield session.peer.next_frame()
    assert (pong.opcode, pong.payload) == (PONG, b"ping payload")
    yield _expect_echo_then_normal_close(session, "fragment1fragment2")


@pytest.mark.parametrize(
    ("case", "fin", "chop"),
    [
        ("5.9", True, None),
        ("5.10", True, "frames"),
        ("5.11", True, 1),
        ("5.12", False, None),
        ("5.13", False, "frames"),
        ("5.14", False, 1),
    ],
)
@pytest_twisted.inlineCallbacks
def test_5_continuation_with_nothing_to_continue(relay, case, fin, chop):
    session = yield _join(relay)
    frames = [client_frame(CONTINUATION, b"non-continuation payload", fin=fin)]
    frames.append(client_frame(TEXT, session.publish_octets(b"Hello, world!")))
    yield _send(session, frames, chop)
    yield _expect_failure(session, 1002)  # and no echo


@pytest_twisted.inlineCallbacks
def test_5_15_message_then_continuation_with_nothing_to_continue(relay):
    session = yield _join(relay)
    session.peer.send(
        b"".join(_fragmented(session.publish_octets(b"fragment1fragment2"), 2))
        + client_frame(CONTINUATION, b"fragment3", fin=False)
        + client_frame(TEXT, b"fragment4")
    )
    assert session.echoed((yield session.peer.next_frame())) == "fragment1fragment2"
    yield _expect_failure(session, 1002)


@pytest.mark.parametrize(("case", "fin"), [("5.16", False), ("5.17", True)])
@pytest_twisted.inlineCallbacks
def test_5_continuation_first_then_a_fragmented_message_twice(relay, case, fin):
    session = yield _join(relay)
    once = [client_frame(CONTINUATION, b"fragment1", fin=fin)] + _fragmented(session.publish_octets(b"x"), 2)
    session.peer.send(b"".join(once + once))
    yield _expect_failure(session, 1002)  # at the first frame: no echo


@pytest_twisted.inlineCallbacks
def test_5_18_second_fragment_with_a_text_opcode(relay):
    session = yield _join(relay)
    message = session.publish_octets(b"fragment1fragment2")
    session.peer.send(client_frame(TEXT, message[:10], fin=False) + client_frame(TEXT, message[10:]))
    yield _expect_failure(session, 1002)


@pytest.mark.parametrize(("case", "chop"), [("5.19", None), ("5.20", "frames")])
@pytest_twisted.inlineCallbacks
def test_5_pings_answered_while_a_message_is_in_fragments(relay, case, chop):
    # 5.19/5.20: the first ping is answered before the rest of the message is sent
    session = yield _join(relay)
    pieces = _fragmented(session.publish_octets(b"fragment1fragment2fragment3fragment4fragment5"), 5)
    yield _send(session, [pieces[0], pieces[1], client_frame(PING, b"pongme 1!")], chop)
    pong = yield session.peer.next_frame()
    assert (pong.opcode, pong.payload) == (PONG, b"pongme 1!")
    yield _send(session, [pieces[2], pieces[3], client_frame(PING, b"pongme 2!"), pieces[4]], chop)
    pong = yield session.peer.next_frame()
    assert (pong.opcode, pong.payload) == (PONG, b"pongme 2!")
    yield _expect_echo_then_normal_close(session, "fragment1fragment2fragment3fragment4fragment5")


# -- 6. UTF-8 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "fragments"), [("6.1.1", 1), ("6.1.2", 3)])
@pytest_twisted.inlineCallbacks
def test_6_1_empty_text_message_is_not_wamp(relay, case, fragments):
    session = yield _join(relay)
    frames = [client_frame(TEXT if i == 0 else CONTINUATION, b"", fin=i == fragments - 1) for i in range(fragments)]
    session.peer.send(b"".join(frames))
    yield _expect_failure(session, 1007)


@pytest_twisted.inlineCallbacks
def test_6_1_3_empty_first_and_last_fragments(relay):
    session = yield _join(relay)
    session.peer.send(
        client_frame(TEXT, b"", fin=False)
        + client_frame(CONTINUATION, session.publish_octets(b"middle frame payload"), fin=False)
        + client_frame(CONTINUATION, b"")
    )
    yield _expect_echo_then_normal_close(session, "middle frame payload")


HELLO_UTF8 = "Hello-µ@ßöäüàá-UTF-8!!"


@pytest.mark.parametrize(
    ("case", "text", "split"),
    [
        ("6.2.1", HELLO_UTF8, None),
        ("6.2.2", HELLO_UTF8, "code points"),
        ("6.2.3", HELLO_UTF8, 1),
        ("6.2.4", KOSME.decode(), 1),
    ],
)
@pytest_twisted.inlineCallbacks
def test_6_2_valid_utf8_in_fragments(relay, case, text, split):
    session = yield _join(relay)
    message = session.publish_octets(text_argument(text))
    if split is None:
        frames = [client_frame(TEXT, message)]
    elif split == "code points":  # two fragments, split between code points of the text
        cut = message.index(text_argument(text)) + len(HELLO_UTF8[:7].encode())
        frames = [client_frame(TEXT, message[:cut], fin=False), client_frame(CONTINUATION, message[cut:])]
    else:  # one octet per fragment: fragments end inside code points
        frames = [
            client_frame(TEXT if i == 0 else CONTINUATION, message[i : i + 1], fin=i == len(message) - 1)
            for i in range(len(message))
        ]
    session.peer.send(b"".join(frames))
    yield _expect_echo_then_normal_close(session, text)


INVALID_KOSME = KOSME + b"\xed\xa0\x80" + b"edited"


@pytest.mark.parametrize(("case", "per_octet"), [("6.3.1", False), ("6.3.2", True)])
@pytest_twisted.inlineCallbacks
def test_6_3_invalid_utf8(relay, case, per_octet):
    session = yield _join(relay)
    message = session.publish_octets(INVALID_KOSME)
    if per_octet:
        frames = _fragmented(message, len(message))
    else:
        frames = [client_frame(TEXT, message)]
    session.peer.send(b"".join(frames))
    yield _expect_failure(session, 1007)


@pytest.mark.parametrize(
    ("case", "parts", "frames"),
    [
        ("6.4.1", (KOSME, b"\xf4\x90\x80\x80", b"edited"), True),
        ("6.4.2", (KOSME + b"\xf4", b"\x90", b"\x80\x80edited"), True),
        ("6.4.3", (KOSME, b"\xf4\x90\x80\x80", b"edited"), False),
        ("6.4.4", (KOSME + b"\xf4", b"\x90", b"\x80\x80edited"), False),
    ],
)
@pytest_twisted.inlineCallbacks
def test_6_4_invalid_utf8_fails_fast(relay, case, parts, frames):
    """The relay fails the connection on the octet that makes the text invalid: the third
    part is never sent, so a relay that waited for the whole message would time out."""
    session = yield _join(relay)
    message = session.publish_octets(b"".join(parts))
    prefix = len(message) - len(b"".join(parts)) - len(b'"]]')
    first, second = message[: prefix + len(parts[0])], parts[1]
    if frames:  # 6.4.1/6.4.2: three fragments, the third never sent
        session.peer.send(client_frame(TEXT, first, fin=False))
        # the first part is valid: the connection is open and answers a ping
        session.peer.send(client_frame(PING, b"still open"))
        assert (yield session.peer.next_frame()).payload == b"still open"
        session.peer.send(client_frame(CONTINUATION, second, fin=False))
    else:  # 6.4.3/6.4.4: one frame whose payload is written in parts, the third never
        frame = client_frame(TEXT, message)
        header = len(frame) - len(message)
        yield session.peer.send_chopped(frame[: header + len(first)], header + len(first))
        session.peer.send(frame[header + len(first) : header + len(first) + len(second)])
    yield _expect_failure(session, 1007, inside_frame=not frames)


def _utf8_sequences() -> list[tuple[str, bool, bytes]]:
    """Cases 6.5-6.23: the groups of sequences the suite takes from Markus Kuhn's UTF-8
    decoder test, in its order, as (case number, valid, octets)."""
    kosme = KOSME
    groups: list[list[tuple[bool, bytes]]] = []
    groups.append(
        [
            (True, b"hello$world"),
            (True, b"hello\xc2\xa2world"),
            (True, b"hello\xe2\x82\xacworld"),
            (True, b"hello\xf0\xa4\xad\xa2world"),
            (True, kosme),
        ]
    )
    groups.append([(_is_utf8(kosme[:n]), kosme[:n]) for n in range(1, len(kosme) + 1)])
    groups.append([(True, b"\x00"), (True, b"\xc2\x80"), (True, b"\xe0\xa0\x80"), (True, b"\xf0\x90\x80\x80")])
    groups.append([(False, b"\xf8\x88\x80\x80\x80"), (False, b"\xfc\x84\x80\x80\x80\x80")])
    groups.append([(True, b"\x7f"), (True, b"\xdf\xbf"), (True, b"\xef\xbf\xbf"), (True, b"\xf4\x8f\xbf\xbf")])
    groups.append(
        [(False, b"\xf7\xbf\xbf\xbf"), (False, b"\xfb\xbf\xbf\xbf\xbf"), (False, b"\xfd\xbf\xbf\xbf\xbf\xbf")]
    )
    groups.append(
        [
            (True, b"\xed\x9f\xbf"),
            (True, b"\xee\x80\x80"),
            (True, b"\xef\xbf\xbd"),
            (True, b"\xf4\x8f\xbf\xbf"),
            (False, b"\xf4\x90\x80\x80"),
        ]
    )
    continuation = [b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80", b"\x80\xbf\x80\xbf"]
    continuation += [b"\x80\xbf\x80\xbf\x80", b"\x80\xbf\x80\xbf\x80\xbf", bytes(range(0x80, 0xBF))]
    groups.append([(False, octets) for octets in continuation])
    lonely = [(0xC0, 0xDF), (0xE0, 0xEF), (0xF0, 0xF7), (0xF8, 0xFB), (0xFC, 0xFD)]
    groups.append([(False, b"".join(bytes((i, 0x20)) for i in range(a, b))) for a, b in lonely])
    missing = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80", b"\xfc\x80\x80\x80\x80"]
    missing += [b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf", b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]
    groups.append([(False, octets) for octets in missing])
    groups.append([(False, b"".join(missing))])
    groups.append([(False, b"\xfe"), (False, b"\xff"), (False, b"\xfe\xfe\xff\xff")])
    overlong_slash = [
        b"\xc0\xaf",
        b"\xe0\x80\xaf",
        b"\xf0\x80\x80\xaf",
        b"\xf8\x80\x80\x80\xaf",
        b"\xfc\x80\x80\x80\x80\xaf",
    ]
    groups.append([(False, octets) for octets in overlong_slash])
    maximum = [b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf", b"\xf8\x87\xbf\xbf\xbf", b"\xfc\x83\xbf\xbf\xbf\xbf"]
    groups.append([(False, octets) for octets in maximum])
    nul = [b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"\xf8\x80\x80\x80\x80", b"\xfc\x80\x80\x80\x80\x80"]
    groups.append([(False, octets) for octets in nul])
    single = [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf", b"\xed\xb0\x80", b"\xed\xbe\x80"]
    single.append(b"\xed\xbf\xbf")
    groups.append([(False, octets) for octets in single])
    high, low = [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf"], [b"\xed\xb0\x80", b"\xed\xbf\xbf"]
    groups.append([(False, h + lo) for h in high for lo in low])
    noncharacters = [b"\xef\xbf\xbe", b"\xef\xbf\xbf"]
    for z1 in (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4"):
        for z2 in (b"\x8f", b"\x9f", b"\xaf", b"\xbf"):
            if z1 == b"\xf4" and z2 != b"\x8f":
                continue  # above U+10FFFF
            for z3 in (b"\xbe", b"\xbf"):
                sequence = z1 + z2 + b"\xbf" + z3
                if sequence not in (b"\xf0\x8f\xbf\xbe", b"\xf0\x8f\xbf\xbf"):  # overlong
                    noncharacters.append(sequence)
    groups.append([(True, octets) for octets in noncharacters])
    groups.append([(True, b"\xef\xbf" + bytes((last,))) for last in range(0xB9, 0xC0)])
    return [
        (f"6.{group_number}.{n}", valid, octets)
        for group_number, group in enumerate(groups, start=5)
        for n, (valid, octets) in enumerate(group, start=1)
    ]


def _is_utf8(octets: bytes) -> bool:
    try:
        octets.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


UTF8_SEQUENCES = _utf8_sequences()


@pytest.mark.parametrize(("case", "valid", "octets"), UTF8_SEQUENCES, ids=[case for case, _, _ in UTF8_SEQUENCES])
@pytest_twisted.inlineCallbacks
def test_6_5_to_6_23_utf8_sequences(relay, case, valid, octets):
    # the suite's own classification agrees with Python's UTF-8 codec on every sequence
    assert valid == _is_utf8(octets)
    session = yield _join(relay)
    if valid:
        text = octets.decode("utf-8")
        session.peer.send(client_frame(TEXT, session.publish_octets(text_argument(text))))
        yield _expect_echo_then_normal_close(session, text)
    else:
        session.peer.send(client_frame(TEXT, session.publish_octets(octets)))
        yield _expect_failure(session, 1007)


# -- 7. closing -------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_7_1_1_echo_then_close(relay):
    session = yield _join(relay)
    session.peer.send(client_frame(TEXT, session.publish_octets(b"Hello World!")))
    yield _expect_echo_then_normal_close(session, "Hello World!")


@pytest.mark.parametrize(
    ("case", "after_close"),
    [
        ("7.1.2", client_frame(CLOSE, close_payload(1000))),
        ("7.1.3", client_frame(PING, b"ping after close")),
        ("7.1.4", "text"),
    ],
)
@pytest_twisted.inlineCallbacks
def test_7_1_frames_after_close_are_ignored(relay, case, after_close):
    session = yield _join(relay)
    if after_close == "text":
        after_close = client_frame(TEXT, session.publish_octets(b"Hello World!"))
    session.peer.close_sent = True
    session.peer.send(client_frame(CLOSE, close_payload(1000)) + after_close)
    frames = yield session.peer.until_close()
    assert [(frame.opcode, frame.close_code) for frame in frames] == [(CLOSE, 1000)]  # no pong, no echo


@pytest_twisted.inlineCallbacks
def test_7_1_5_close_between_fragments(relay):
    session = yield _join(relay)
    first, second = _fragmented(session.publish_octets(b"fragment1fragment2"), 2)
    session.peer.close_sent = True
    session.peer.send(first + client_frame(CLOSE, close_payload(1000)) + second)
    frames = yield session.peer.until_close()
    assert [(frame.opcode, frame.close_code) for frame in frames] == [(CLOSE, 1000)]


@pytest_twisted.inlineCallbacks
def test_7_1_6_large_message_then_close_then_ping(relay):
    session = yield _join(relay)
    argument = b"BAsd7&jh23" * 26 * 1024  # 266,240 octets, within the relay's limit
    session.peer.close_sent = True
    session.peer.send(
        client_frame(TEXT, session.publish_octets(argument))
        + client_frame(CLOSE, close_payload(1000))
        + client_frame(PING, b"ping after close")
    )
    frames = yield session.peer.until_close()
    # the message was read before the close: its echo, then the close (no pong)
    assert session.echoed(frames[0]) == argument.decode()
    assert [(frame.opcode, frame.close_code) for frame in frames[1:]] == [(CLOSE, 1000)]


@pytest.mark.parametrize(
    ("case", "payload", "code"),
    [
        ("7.3.1", b"", 1000),
        ("7.3.3", close_payload(1000), 1000),
        ("7.3.4", close_payload(1000, b"Hello World!"), 1000),
        ("7.3.5", close_payload(1000, b"*" * 123), 1000),
    ],
)
@pytest_twisted.inlineCallbacks
def test_7_3_valid_close_payloads(relay, case, payload, code):
    session = yield _join(relay)
    session.peer.close_sent = True
    session.peer.send(client_frame(CLOSE, payload))
    frames = yield session.peer.until_close()
    assert [(frame.opcode, frame.close_code) for frame in frames] == [(CLOSE, code)]


@pytest.mark.parametrize(
    ("case", "payload", "code"),
    [
        ("7.3.2", b"\x03", 1002),
        ("7.3.6", close_payload(1000, b"*" * 124), 1002),
        ("7.5.1", close_payload(1000, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"), 1007),
    ],
)
@pytest_twisted.inlineCallbacks
def test_7_3_and_7_5_invalid_close_payloads(relay, case, payload, code):
    session = yield _join(relay)
    session.peer.close_sent = True
    session.peer.send(client_frame(CLOSE, payload))
    yield _expect_close_code_or_drop(session, code)


@defer.inlineCallbacks
def _expect_close_code_or_drop(session: EchoSession, code: int):
    """What the suite accepts for an invalid close frame: a close frame with ``code``, or
    the TCP connection dropped. Since the peer has closed already, the relay (autobahn's
    closing handshake, for our reader too) drops the connection at once when it also
    could read the close, which discards its own close frame written in the same turn."""
    peer = session.peer
    yield until(lambda: peer.lost.called or any(frame.opcode == CLOSE for frame in peer.frames))
    if not peer.lost.called:  # we sent our close already: nothing more to wait for
        peer.transport.loseConnection()
    frames = yield peer.until_lost()
    assert [(frame.opcode, frame.close_code) for frame in frames] in ([], [(CLOSE, code)]), frames


VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999]


@pytest.mark.parametrize(("case", "code"), [(f"7.7.{i}", code) for i, code in enumerate(VALID_CODES, start=1)])
@pytest_twisted.inlineCallbacks
def test_7_7_valid_close_codes(relay, case, code):
    session = yield _join(relay)
    session.peer.close_sent = True
    session.peer.send(client_frame(CLOSE, close_payload(code)))
    frames = yield session.peer.until_close()
    assert len(frames) == 1 and frames[0].close_code in (1000, code)


@pytest.mark.parametrize(
    ("case", "code"),
    [(f"7.9.{i}", code) for i, code in enumerate(INVALID_CODES, start=1)] + [("7.13.1", 5000), ("7.13.2", 65535)],
)
@pytest_twisted.inlineCallbacks
def test_7_9_and_7_13_invalid_close_codes(relay, case, code):
    # 7.13.x (5000, 65535) are "undefined by the spec" in the suite: the relay treats
    # them as the other codes no endpoint may send
    session = yield _join(relay)
    session.peer.close_sent = True
    session.peer.send(client_frame(CLOSE, close_payload(code)))
    yield _expect_close_code_or_drop(session, 1002)


# -- 9. limits (the suite's smaller sizes) ----------------------------------------------------


@pytest.mark.parametrize(
    ("case", "serializer", "size"),
    [("9.1.1", "json", 64 * 1024), ("9.1.2", "json", 256 * 1024), ("9.2.1", "msgpack", 64 * 1024)]
    + [("9.2.2", "msgpack", 256 * 1024)],
)
@pytest_twisted.inlineCallbacks
def test_9_1_and_9_2_large_messages(relay, case, serializer, size):
    session = yield _join(relay, serializer)
    message, argument = session.publish_of_length(size)
    session.peer.send(client_frame(BINARY if serializer == "msgpack" else TEXT, message))
    yield _expect_echo_then_normal_close(session, argument if serializer == "msgpack" else argument.decode())


FRAGMENT_SIZES = [64, 256, 1024, 4096, 16384, 65536, 262144]


@pytest.mark.parametrize(
    ("case", "serializer", "fragment"),
    [(f"9.3.{i}", "json", size) for i, size in enumerate(FRAGMENT_SIZES, start=1)]
    + [(f"9.4.{i}", "msgpack", size) for i, size in enumerate(FRAGMENT_SIZES, start=1)],
)
@pytest_twisted.inlineCallbacks
def test_9_3_and_9_4_message_in_fragments(relay, case, serializer, fragment):
    # the suite sends 4 MiB; here 256 KiB, below the relay's limit
    session = yield _join(relay, serializer)
    message, argument = session.publish_of_length(256 * 1024)
    opcode = BINARY if serializer == "msgpack" else TEXT
    session.peer.send(b"".join(_fragmented(message, -(-len(message) // fragment), opcode)))
    yield _expect_echo_then_normal_close(session, argument if serializer == "msgpack" else argument.decode())


@pytest.mark.parametrize(
    ("case", "serializer", "chop"),
    [(f"9.5.{i}", "json", size) for i, size in enumerate([64, 128, 256, 512, 1024, 2048], start=1)]
    + [(f"9.6.{i}", "msgpack", size) for i, size in enumerate([64, 128, 256, 512, 1024, 2048], start=1)],
)
@pytest_twisted.inlineCallbacks
def test_9_5_and_9_6_message_in_chops(relay, case, serializer, chop):
    # the suite sends 1 MiB; here 64 KiB, written in chops of the case's size
    session = yield _join(relay, serializer)
    message, argument = session.publish_of_length(64 * 1024)
    yield session.peer.send_chopped(client_frame(BINARY if serializer == "msgpack" else TEXT, message), chop)
    yield _expect_echo_then_normal_close(session, argument if serializer == "msgpack" else argument.decode())


@pytest.mark.parametrize(
    ("case", "serializer", "size"),
    [(f"9.7.{i}", "json", size) for i, size in enumerate([0, 16, 64, 256, 1024, 4096], start=1)]
    + [(f"9.8.{i}", "msgpack", size) for i, size in enumerate([0, 16, 64, 256, 1024, 4096], start=1)],
)
@pytest_twisted.inlineCallbacks
def test_9_7_and_9_8_many_messages_one_after_another(relay, case, serializer, size):
    # the suite sends 1000 messages, each after the previous echo; here 100
    session = yield _join(relay, serializer)
    opcode = BINARY if serializer == "msgpack" else TEXT
    for _ in range(100):
        argument = b"*" * size
        session.peer.send(client_frame(opcode, session.publish_octets(argument)))
        echoed = session.echoed((yield session.peer.next_frame()))
        assert echoed == (argument if serializer == "msgpack" else argument.decode())
    assert _close_codes((yield session.peer.finish())) == [1000]


@pytest.mark.parametrize("fragmented", [False, True], ids=["one frame", "fragments"])
@pytest_twisted.inlineCallbacks
def test_9_a_message_over_the_relay_limit_is_refused_with_1009(relay, fragmented):
    """Not a suite case (its limits are the implementation's): a message over the relay's
    max_message_size is refused with 1009 as soon as the frame header that passes the limit
    arrives, before its payload."""
    session = yield _join(relay)
    if fragmented:
        session.peer.send(client_frame(TEXT, b"[" * (MAX_MESSAGE // 2), fin=False))
        frame = client_frame(CONTINUATION, b"]" * (MAX_MESSAGE // 2 + 1))
    else:
        frame = client_frame(TEXT, b"*" * (MAX_MESSAGE + 1))
    session.peer.send(frame[:14])  # the header (and a little payload); the rest never
    yield _expect_failure(session, 1009, inside_frame=True)


# -- 10. a message in many frames -----------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_10_1_1_message_in_frames_of_1300_octets(relay):
    session = yield _join(relay)
    message, argument = session.publish_of_length(65536)
    session.peer.send(b"".join(_fragmented(message, -(-len(message) // 1300))))
    yield _expect_echo_then_normal_close(session, argument.decode())
