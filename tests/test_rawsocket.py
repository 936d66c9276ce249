"""WAMP over RawSocket (promisifier.transport.rawsocket) against the router.

autobahn-python's own RawSocket client (``autobahn.twisted.rawsocket``) drives calls,
publish/subscribe and the handshake with json and msgpack; raw TCP sockets (Twisted
client protocols writing chosen octets) drive the bad handshakes and bad frames, and
our client protocol checks PING/PONG and the 16 MiB framing. Everything runs over real
sockets on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
import pytest_twisted
from autobahn.twisted.rawsocket import WampRawSocketClientFactory
from autobahn.wamp.types import ComponentConfig, PublishOptions
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString
from twisted.internet.protocol import Factory, Protocol

import promisifier
from promisifier.embed import Router
from promisifier.router import RouterConfig
from promisifier.transport.rawsocket import RawSocketClientFactory, RawSocketServerFactory
from promisifier.transport.rawsocket_framing import (
    MAX_FRAME_LENGTH,
    PING,
    PONG,
    exponent_length,
    frame_header,
    handshake_octets,
    length_exponent,
)
from promisifier.wire.messages import ABORT, CALL, HELLO, RESULT, WELCOME
from tests.support import SERIALIZER_NAMES, RecordingSession, autobahn_serializer, until, within

pytestmark = pytest.mark.slow

by_serializer = pytest.mark.parametrize("ser", SERIALIZER_NAMES)
ZERO = {"connections": 0, "sessions": 0, "registrations": 0, "subscriptions": 0, "pending_calls": 0}


# -- framing helpers (no sockets) --------------------------------------------------------


def test_length_exponent_and_back():
    assert length_exponent(100) == 0
    assert length_exponent(512) == 0
    assert length_exponent(1023) == 0
    assert length_exponent(1024) == 1
    assert length_exponent(16 * 1024 * 1024) == 15
    assert length_exponent(1 << 30) == 15
    assert [exponent_length(e) for e in (0, 1, 15)] == [512, 1024, 1 << 24]


def test_frame_header_bits():
    assert frame_header(0, 5) == b"\x00\x00\x00\x05"
    assert frame_header(PING, 3) == b"\x01\x00\x00\x03"
    assert frame_header(PONG, 0) == b"\x02\x00\x00\x00"
    assert frame_header(0, MAX_FRAME_LENGTH - 1) == b"\x00\xff\xff\xff"
    # exactly 16 MiB: the X bit, with the 24 length bits cleared
    assert frame_header(0, MAX_FRAME_LENGTH) == b"\x08\x00\x00\x00"
    with pytest.raises(ValueError):
        frame_header(0, MAX_FRAME_LENGTH + 1)
    assert handshake_octets(2, 15) == b"\x7f\xf2\x00\x00"


# -- a router with a RawSocket listener --------------------------------------------------


class RawRouter:
    def __init__(self, router: Router, factory: RawSocketServerFactory, port: Any) -> None:
        self.router = router
        self.factory = factory
        self.port = port

    @property
    def port_number(self) -> int:
        return self.port.getHost().port

    @defer.inlineCallbacks
    def stop(self):
        yield within(self.router.stop())
        yield self.port.stopListening()


@defer.inlineCallbacks
def start_raw_router(config: RouterConfig | None = None):
    router = Router(config if config is not None else RouterConfig(realms=("realm1",)))
    factory = router.rawsocket_factory()
    port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    return RawRouter(router, factory, port)


@pytest.fixture
def raw_router():
    running = pytest_twisted.blockon(start_raw_router())
    yield running
    pytest_twisted.blockon(running.stop())


@defer.inlineCallbacks
def idle(router: Router, seconds: float = 5.0):
    """Fires with the router's state counts once they are all zero (or after ``seconds``)."""
    yield until(lambda: all(value == 0 for value in router.state_counts().values()), seconds)
    return router.state_counts()


@defer.inlineCallbacks
def connect_autobahn_rawsocket(port: int, serializer: str, realm: str = "realm1"):
    """An autobahn-python session over autobahn's RawSocket client, joined."""
    session = RecordingSession(ComponentConfig(realm=realm))
    factory = WampRawSocketClientFactory(lambda: session, serializer=autobahn_serializer(serializer))
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=10)
    yield within(endpoint.connect(factory))
    yield within(session.joined)
    return session


@defer.inlineCallbacks
def leave(session: RecordingSession):
    if session.is_attached():
        session.leave()
    yield within(session.disconnected)


# -- autobahn-python's RawSocket client --------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_autobahn_join_details(raw_router, ser):
    session = yield connect_autobahn_rawsocket(raw_router.port_number, ser)
    assert session.join_details.realm == "realm1"
    assert session.join_details.authrole == "anonymous"
    (router_session,) = raw_router.router._sessions
    assert router_session.peer.serializer_name == ser
    assert router_session.peer.peer.startswith("tcp4:127.0.0.1:")
    assert router_session.peer.transport_type == "rawsocket"
    yield leave(session)
    assert (yield idle(raw_router.router)) == ZERO


@by_serializer
@pytest_twisted.inlineCallbacks
def test_autobahn_call(raw_router, ser):
    callee = yield connect_autobahn_rawsocket(raw_router.port_number, ser)
    caller = yield connect_autobahn_rawsocket(raw_router.port_number, ser)
    yield within(callee.register(lambda a, b, **kw: {"sum": a + b, "kw": kw}, "com.example.add"))
    result = yield within(caller.call("com.example.add", 2, 3, unit="m"))
    assert result == {"sum": 5, "kw": {"unit": "m"}}
    # binary arguments survive both serializers
    yield within(callee.register(lambda data: data[::-1], "com.example.reverse"))
    assert (yield within(caller.call("com.example.reverse", b"\x00\x01\x02"))) == b"\x02\x01\x00"
    # pipelined calls all come back, in any order, each with its own answer
    results = yield within(defer.gatherResults([caller.call("com.example.add", i, i) for i in range(200)]))
    assert [r["sum"] for r in results] == [2 * i for i in range(200)]
    router_session = next(s for s in raw_router.router._sessions if s.session_id == caller.session_id)
    assert router_session.peer.stats.messages_in >= 203  # HELLO + CALLs
    yield leave(caller)
    yield leave(callee)
    assert (yield idle(raw_router.router)) == ZERO


@pytest_twisted.inlineCallbacks
def test_autobahn_call_mixed_serializers(raw_router):
    callee = yield connect_autobahn_rawsocket(raw_router.port_number, "json")
    caller = yield connect_autobahn_rawsocket(raw_router.port_number, "msgpack")
    yield within(callee.register(lambda text: text.upper(), "com.example.upper"))
    assert (yield within(caller.call("com.example.upper", "héllo"))) == "HÉLLO"
    yield leave(caller)
    yield leave(callee)


@by_serializer
@pytest_twisted.inlineCallbacks
def test_autobahn_publish_subscribe(raw_router, ser):
    subscriber = yield connect_autobahn_rawsocket(raw_router.port_number, ser)
    other = yield connect_autobahn_rawsocket(raw_router.port_number, "msgpack" if ser == "json" else "json")
    publisher = yield connect_autobahn_rawsocket(raw_router.port_number, ser)
    received: list = []
    received_other: list = []
    done: defer.Deferred = defer.Deferred()

    def on_event(i: int, text: str) -> None:
        received.append((i, text))
        if len(received) == 100 and not done.called:
            done.callback(None)

    yield within(subscriber.subscribe(on_event, "com.example.topic"))
    yield within(other.subscribe(lambda i, text: received_other.append(i), "com.example.topic"))
    for i in range(99):
        publisher.publish("com.example.topic", i, "event")
    yield within(publisher.publish("com.example.topic", 99, "last", options=PublishOptions(acknowledge=True)))
    yield within(done)
    assert received == [(i, "event") for i in range(99)] + [(99, "last")]
    yield leave(publisher)
    yield leave(other)
    yield leave(subscriber)
    assert received_other == list(range(100))
    assert (yield idle(raw_router.router)) == ZERO


@pytest_twisted.inlineCallbacks
def test_rawsocket_and_websocket_sessions_meet():
    """A callee over RawSocket answers a caller over WebSocket in the same router."""
    from tests.support import connect_autobahn

    router = Router(RouterConfig(realms=("realm1",)))
    raw_port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(router.rawsocket_factory())
    ws_port = yield router.listen("tcp:0:interface=127.0.0.1")
    try:
        callee = yield connect_autobahn_rawsocket(raw_port.getHost().port, "msgpack")
        yield within(callee.register(lambda x: x * 2, "com.example.double"))
        caller = yield connect_autobahn(f"ws://127.0.0.1:{ws_port.getHost().port}/ws", serializer="json")
        assert (yield within(caller.call("com.example.double", 21))) == 42
        yield leave(caller)
        yield leave(callee)
    finally:
        yield within(router.stop())
        yield raw_port.stopListening()
        yield ws_port.stopListening()


# -- raw octets ----------------------------------------------------------------------------


class OctetClient(Protocol):
    """Writes chosen octets and records everything received until the connection closes."""

    def __init__(self, to_send: bytes) -> None:
        self.to_send = to_send
        self.received = b""
        self.closed: defer.Deferred = defer.Deferred()
        self.got_data: defer.Deferred = defer.Deferred()

    def connectionMade(self) -> None:  # noqa: N802
        if self.to_send:
            self.transport.write(self.to_send)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.received += data
        if not self.got_data.called:
            self.got_data.callback(None)

    def connectionLost(self, reason: Any) -> None:  # noqa: N802
        self.closed.callback(None)


@defer.inlineCallbacks
def octets_exchange(port: int, to_send: bytes, seconds: float = 5.0):
    """Connect, send ``to_send``, wait until the router closes; fires with what it sent."""
    client = OctetClient(to_send)
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=10)
    yield within(endpoint.connect(Factory.forProtocol(lambda: client)))
    yield within(client.closed, seconds)
    return client.received


@pytest.mark.parametrize(
    ("request_octets", "reply"),
    [
        (b"\x7f\xf4\x00\x00", b"\x7f\x10\x00\x00"),  # UBJSON: serializer unsupported
        (b"\x7f\xf0\x00\x00", b"\x7f\x10\x00\x00"),  # serializer 0 is illegal
        (b"\x7f\xf5\x00\x00", b"\x7f\x10\x00\x00"),  # FlatBuffers
        (b"\x7f\xf2\x00\x01", b"\x7f\x30\x00\x00"),  # reserved octets in use
        (b"\x7f\xf2\x80\x00", b"\x7f\x30\x00\x00"),
        (b"GET / HTTP/1.1\r\n\r\n", b""),  # not RawSocket: fail the connection, no reply
    ],
    ids=["ubjson", "serializer-0", "flatbuffers", "reserved-octet-4", "reserved-octet-3", "http"],
)
@pytest_twisted.inlineCallbacks
def test_bad_handshake_refused(raw_router, request_octets, reply):
    received = yield octets_exchange(raw_router.port_number, request_octets)
    assert received == reply
    assert raw_router.router.state_counts() == ZERO
    assert raw_router.factory.open_connections == 0


@pytest_twisted.inlineCallbacks
def test_handshake_max_length_unacceptable_and_connection_count():
    router = Router(RouterConfig(realms=("realm1",)))
    factory = RawSocketServerFactory(router.new_session, min_peer_max_length=4096, max_connections=1)
    port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    number = port.getHost().port
    try:
        # the client can receive only 2**(1+9) = 1024 octets: below the 4096 required
        assert (yield octets_exchange(number, b"\x7f\x12\x00\x00")) == b"\x7f\x20\x00\x00"
        # the first connection takes the only slot; the second is refused with error 4
        first = OctetClient(b"\x7f\xf2\x00\x00")
        yield within(TCP4ClientEndpoint(reactor, "127.0.0.1", number).connect(Factory.forProtocol(lambda: first)))
        yield within(first.got_data)
        assert first.received == b"\x7f\xf2\x00\x00"  # accepted: max 16 MiB, msgpack
        assert (yield octets_exchange(number, b"\x7f\xf2\x00\x00")) == b"\x7f\x40\x00\x00"
        first.transport.loseConnection()
        yield within(first.closed)
    finally:
        yield within(router.stop())
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_handshake_in_pieces_and_the_reply_announces_max_message_size():
    running = yield start_raw_router(RouterConfig(realms=("realm1",), max_message_size=5000))
    try:
        client = OctetClient(b"\x7f")
        yield within(
            TCP4ClientEndpoint(reactor, "127.0.0.1", running.port_number).connect(Factory.forProtocol(lambda: client))
        )
        client.transport.write(b"\x21")  # 2**(2+9) octets, JSON
        client.transport.write(b"\x00")
        client.transport.write(b"\x00")
        yield within(client.got_data)
        # 4096 is the largest power of two not above 5000: exponent 3
        assert client.received == b"\x7f\x31\x00\x00"
        client.transport.loseConnection()
        yield within(client.closed)
    finally:
        yield running.stop()


def _msgpack_frame(message: list) -> bytes:
    import msgpack

    payload = msgpack.packb(message, use_bin_type=True)
    return frame_header(0, len(payload)) + payload


@pytest_twisted.inlineCallbacks
def test_oversized_frame_fails_the_connection():
    running = yield start_raw_router(RouterConfig(realms=("realm1",), max_message_size=1024))
    try:
        hello = _msgpack_frame([HELLO, "realm1", {"roles": {"caller": {}}}])
        # a header announcing 2000 octets: over the 1024 the router accepts; the router
        # closes as soon as it sees the header, before the payload arrives
        received = yield octets_exchange(running.port_number, b"\x7f\xf2\x00\x00" + hello + frame_header(0, 2000))
        assert received[:4] == b"\x7f\x12\x00\x00"  # exponent 1: 1024 octets, msgpack
        assert received[4:8] and received[8] >> 4 == 9  # a WELCOME (fixarray, then 2)
        assert (yield idle(running.router)) == ZERO
        # a header with reserved bits, and a frame of a reserved kind
        for header in (b"\x10\x00\x00\x01", b"\x03\x00\x00\x00"):
            received = yield octets_exchange(running.port_number, b"\x7f\xf2\x00\x00" + hello + header + b"\x00")
            assert received[:4] == b"\x7f\x12\x00\x00"
        # the X bit with a non-zero length
        received = yield octets_exchange(running.port_number, b"\x7f\xf2\x00\x00" + b"\x08\x00\x00\x01")
        assert received == b"\x7f\x12\x00\x00"
        assert (yield idle(running.router)) == ZERO
    finally:
        yield running.stop()


@pytest_twisted.inlineCallbacks
def test_autobahn_client_cannot_send_over_the_negotiated_length():
    """autobahn-python honours the router's announced limit on its side."""
    running = yield start_raw_router(RouterConfig(realms=("realm1",), max_message_size=1024))
    try:
        callee = yield connect_autobahn_rawsocket(running.port_number, "json")
        caller = yield connect_autobahn_rawsocket(running.port_number, "json")
        yield within(callee.register(lambda text: len(text), "com.example.len"))
        assert (yield within(caller.call("com.example.len", "x" * 100))) == 100
        with pytest.raises(Exception):
            yield within(caller.call("com.example.len", "x" * 5000))
        yield leave(callee)
    finally:
        yield running.stop()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_undecodable_frame_and_protocol_violation(raw_router, ser):
    handshake = handshake_octets({"json": 1, "msgpack": 2}[ser], 15)
    garbage = b"\xc1" if ser == "msgpack" else b"{not json"
    received = yield octets_exchange(raw_router.port_number, handshake + frame_header(0, len(garbage)) + garbage)
    assert received == handshake  # closed right after the handshake reply, nothing else
    # a message that decodes but is not WAMP: ABORT protocol_violation, then close
    import msgpack
    import orjson

    bad = [CALL, 1, {}, "com.x"]  # CALL before HELLO
    payload = msgpack.packb(bad) if ser == "msgpack" else orjson.dumps(bad)
    received = yield octets_exchange(raw_router.port_number, handshake + frame_header(0, len(payload)) + payload)
    assert received[:4] == handshake
    body = received[8:]
    decoded = msgpack.unpackb(body) if ser == "msgpack" else orjson.loads(body)
    assert decoded[0] == ABORT and decoded[2] == "wamp.error.protocol_violation"
    assert (yield idle(raw_router.router)) == ZERO


@pytest_twisted.inlineCallbacks
def test_handshake_timeout_closes():
    router = Router(RouterConfig(realms=("realm1",)))
    factory = RawSocketServerFactory(router.new_session, open_handshake_timeout=0.2)
    port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    try:
        assert (yield octets_exchange(port.getHost().port, b"\x7f")) == b""
        assert not factory.connections
    finally:
        yield port.stopListening()


# -- our client protocol: PING/PONG, framing in pieces, 16 MiB ----------------------------


class Collector:
    """A handler that keeps every message and its close."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.messages: list = []
        self.waiters: list[tuple[int, defer.Deferred]] = []
        self.closed: defer.Deferred = defer.Deferred()

    def wait(self, count: int) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.waiters.append((count, d))
        self._check()
        return d

    def _check(self) -> None:
        for count, d in list(self.waiters):
            if len(self.messages) >= count:
                self.waiters.remove((count, d))
                d.callback(self.messages)

    def on_message(self, message: list) -> None:
        self.messages.append(message)
        self._check()

    def on_protocol_error(self, error: Exception) -> None:
        self.messages.append(("protocol_error", str(error)))

    def on_close(self, code: int, reason: str) -> None:
        self.closed.callback((code, reason))


@defer.inlineCallbacks
def connect_ours(port: int, serializer: str = "msgpack"):
    opened: defer.Deferred = defer.Deferred()
    factory = RawSocketClientFactory(
        Collector,
        serializer=serializer,
        on_open=lambda connection: opened.callback(connection),
        on_open_failed=lambda connection, code, reason: opened.errback(RuntimeError(reason)),
    )
    yield within(TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory))
    connection = yield within(opened)
    return connection


@by_serializer
@pytest_twisted.inlineCallbacks
def test_our_client_ping_pong_and_call_in_pieces(raw_router, ser):
    connection = yield connect_ours(raw_router.port_number, ser)
    handler = connection.handler
    pongs: list = []
    connection._pong_received = pongs.append
    connection.ping(b"are you there")
    connection.send([HELLO, "realm1", {"roles": {"caller": {}, "callee": {}}}])
    (welcome,) = yield within(handler.wait(1))
    assert welcome[0] == WELCOME
    assert pongs == [b"are you there"]
    # a CALL split into single octets still arrives as one message
    from promisifier.wire import SERIALIZERS

    payload = SERIALIZERS[ser].encode([CALL, 1, {}, "com.nobody", [1]])
    for octet in frame_header(0, len(payload)) + payload:
        connection.transport.write(bytes([octet]))
    messages = yield within(handler.wait(2))
    assert messages[1][0] == 8 and messages[1][4] == "wamp.error.no_such_procedure"
    # the router answers a PING from the client
    connection.transport.write(frame_header(PING, 4) + b"ping")
    connection.send([CALL, 2, {}, "com.nobody", [2]])
    yield within(handler.wait(3))
    assert pongs == [b"are you there", b"ping"]
    connection.close()
    assert (yield within(handler.closed))[0] == 1000
    assert (yield idle(raw_router.router)) == ZERO


@pytest_twisted.inlineCallbacks
def test_sixteen_mib_message_uses_the_x_bit(raw_router):
    callee = yield connect_ours(raw_router.port_number, "msgpack")
    caller = yield connect_ours(raw_router.port_number, "msgpack")
    for connection in (callee, caller):
        connection.send([HELLO, "realm1", {"roles": {"caller": {}, "callee": {}}}])
        yield within(connection.handler.wait(1))
    callee.send([64, 1, {}, "com.example.echo"])
    yield within(callee.handler.wait(2))
    # a CALL whose msgpack encoding is exactly 16 MiB: the X bit frame, accepted
    overhead = len(b"\x95\x30\x01\x80\xb0com.example.echo\x91\xdb\x00\x00\x00\x00")
    caller.send([CALL, 1, {}, "com.example.echo", ["x" * (MAX_FRAME_LENGTH - overhead)]])
    invocation = (yield within(callee.handler.wait(3), 30))[2]
    assert invocation[0] == 68 and len(invocation[4][0]) == MAX_FRAME_LENGTH - overhead
    assert callee.stats.bytes_in >= MAX_FRAME_LENGTH - overhead
    # the answer: a RESULT of exactly 16 MiB (the X bit again, router to caller)
    callee.send([70, invocation[1], {}, ["y" * (MAX_FRAME_LENGTH - 10)]])
    answer = (yield within(caller.handler.wait(2), 30))[1]
    assert answer[0] == RESULT and len(answer[3][0]) == MAX_FRAME_LENGTH - 10
    assert caller.stats.bytes_in >= MAX_FRAME_LENGTH
    for connection in (callee, caller):
        connection.close()
        yield within(connection.handler.closed)
    assert (yield idle(raw_router.router)) == ZERO


@pytest_twisted.inlineCallbacks
def test_result_over_the_callers_limit_becomes_an_error(raw_router):
    callee = yield connect_ours(raw_router.port_number, "json")
    opened: defer.Deferred = defer.Deferred()
    factory = RawSocketClientFactory(Collector, serializer="msgpack", max_message_size=1024, on_open=opened.callback)
    yield within(TCP4ClientEndpoint(reactor, "127.0.0.1", raw_router.port_number).connect(factory))
    caller = yield within(opened)
    (router_caller,) = [c for c in raw_router.factory.connections if c.max_send_length == 1024]
    for connection in (callee, caller):
        connection.send([HELLO, "realm1", {"roles": {"caller": {}, "callee": {}}}])
        yield within(connection.handler.wait(1))
    callee.send([64, 1, {}, "com.example.echo"])
    yield within(callee.handler.wait(2))
    caller.send([CALL, 1, {}, "com.example.echo", ["x" * 2000]])
    invocation = (yield within(callee.handler.wait(3)))[2]
    callee.send([70, invocation[1], {}, invocation[4]])
    answer = (yield within(caller.handler.wait(2)))[1]
    assert answer[:5] == [8, CALL, 1, {}, "wamp.error.invalid_argument"]
    assert router_caller.stats.messages_out == 2  # WELCOME and the ERROR, not the RESULT
    for connection in (callee, caller):
        connection.close()
        yield within(connection.handler.closed)
    assert (yield idle(raw_router.router)) == ZERO


# -- TCP keep-alive ----------------------------------------------------------------------


def _keepalive_of(transport: Any) -> tuple[int, int, int, int, int]:
    sock = transport.getHandle()
    return (
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
    )


@pytest.mark.skipif(not hasattr(socket, "TCP_KEEPIDLE"), reason="per-socket keep-alive timings are Linux's")
@pytest_twisted.inlineCallbacks
def test_both_ends_probe_an_idle_connection_with_tcp_keepalive():
    """RawSocket has no ping autobahn's peers answer, so the relay and the client ask the
    kernel to probe an idle connection: interval, then 3 probes spread over the timeout;
    unacknowledged data closes the connection after interval + timeout (in ms)."""
    running = yield start_raw_router(RouterConfig(realms=("realm1",), keepalive_interval=7, keepalive_timeout=6))
    session = yield within(promisifier.connect(f"rs://127.0.0.1:{running.port_number}", "realm1"))
    try:
        (server_side,) = [s.peer for s in running.router.connections]
        assert _keepalive_of(server_side.transport) == (1, 7, 2, 3, 13000)
        # the client's defaults: 30 s idle, 10 s of probes
        assert _keepalive_of(session.connection.transport) == (1, 30, 4, 3, 40000)
    finally:
        yield within(session.leave())
        yield running.stop()


@pytest_twisted.inlineCallbacks
def test_keepalive_interval_zero_leaves_tcp_keepalive_off():
    running = yield start_raw_router(RouterConfig(realms=("realm1",), keepalive_interval=0))
    session = yield within(promisifier.connect(f"rs://127.0.0.1:{running.port_number}", "realm1"))
    try:
        (server_side,) = [s.peer for s in running.router.connections]
        sock = server_side.transport.getHandle()
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
        assert (yield within(session.call("wamp.session.count"))) == 1
    finally:
        yield within(session.leave())
        yield running.stop()


def test_keepalive_is_not_for_unix_sockets_or_in_memory_transports(tmp_path):
    from promisifier.transport.tcp_keepalive import enable_tcp_keepalive

    class InMemory:
        def getHandle(self):  # noqa: N802 - Twisted API
            return object()

    assert enable_tcp_keepalive(InMemory(), 30, 10) is False
    with socket.socket(socket.AF_UNIX) as unix:

        class UnixTransport:
            def getHandle(self):  # noqa: N802
                return unix

        assert enable_tcp_keepalive(UnixTransport(), 30, 10) is False
    assert enable_tcp_keepalive(None, 0, 10) is False
