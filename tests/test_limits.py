"""The limits of the relay reached over a real socket, and what autobahn makes of the answers.

Each limit has a default and a config key (:class:`RouterConfig` and its :class:`Limits`);
the tests set small values. Reaching a limit gives the protocol's answer and never harms the
relay:

* a message over ``max_message_size`` -> close 1009 (exactly at the limit is fine);
* a call, REGISTER or HELLO beyond its limit -> ERROR or ABORT
  ``promisifier.error.limit_exceeded`` naming the limit, as autobahn-python receives it (the
  router's rules for every limit, and the HELLO deadline, are tested in memory in
  tests/test_limits_memory.py);
* a TCP connection that does not complete the WebSocket upgrade within
  ``open_handshake_timeout`` (sending nothing, or its request a byte at a time) is closed,
  also under ``twisted.web`` (:class:`promisifier.transport.handshake.HandshakeDeadlineSite`);
* a message nested deeper than the decoders allow (about 1024 levels, fixed by orjson and
  msgpack; there is no config key) -> close 1007; a nested message the relay can decode
  but cannot encode for the receiving peer -> ERROR for the caller.

After every case the relay still works for an autobahn callee and caller and its state
drains to zero (``run_case`` of ``tests/raw_support.py``), and no exception
escaped into the log (``no_unhandled_errors``).
"""

from __future__ import annotations

import time

import msgpack
import pytest
import pytest_twisted
from autobahn.wamp import message as wamp
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol

from promisifier.router import RouterConfig
from promisifier.router.router_config import Limits
from promisifier.wire import LIMIT_EXCEEDED
from tests.raw_support import (  # noqa: F401 - no_unhandled_errors is an autouse fixture
    CALL,
    REGISTER,
    YIELD,
    expect_close,
    host_port,
    no_unhandled_errors,
    raw_join,
    run_case,
)
from tests.support import WAIT, connect_autobahn, leave_and_wait, within

pytestmark = pytest.mark.slow

serializers = pytest.mark.parametrize("serializer", ["json", "msgpack"])
NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"


def sleep(seconds: float) -> defer.Deferred:
    return task.deferLater(reactor, seconds, lambda: None)


@defer.inlineCallbacks
def round_trip(client, request: int):
    """CALL a procedure nobody has and wait for its ERROR: every frame the router sent this
    client before has arrived by then (one connection is one ordered stream)."""
    client.send([CALL, request, {}, "com.limits.nobody", []])
    answer = yield client.next_message()
    assert isinstance(answer, wamp.Error) and answer.request == request and answer.error == NO_SUCH_PROCEDURE, answer


def test_every_limit_has_a_default_and_a_config_key():
    config = RouterConfig()
    assert config.max_message_size == 16 * 1024 * 1024
    assert config.open_handshake_timeout > 0 and config.hello_timeout > 0
    limits = config.limits
    for name in (
        "max_pending_calls_per_caller",
        "max_pending_invocations_per_callee",
        "max_registrations_per_session",
        "max_subscriptions_per_session",
        "max_sessions",
        "max_sessions_per_realm",
    ):
        assert getattr(limits, name) >= 1000, name
    with pytest.raises(ValueError):
        Limits(max_sessions=0)
    with pytest.raises(ValueError):
        RouterConfig(max_message_size=0)


# -- message size: close 1009 ------------------------------------------------------------------


def sized_call(client, request: int, size: int) -> tuple[bytes, bool]:
    """A CALL to nobody whose payload is exactly ``size`` bytes in the client's serializer."""
    filler = 0
    while True:
        payload, is_binary = client.encode([CALL, request, {}, "com.limits.nobody", ["x" * filler]])
        if len(payload) >= size:
            break
        filler += max(1, size - len(payload))
    while len(payload) > size:  # msgpack string headers grow in steps: walk back
        filler -= 1
        payload, is_binary = client.encode([CALL, request, {}, "com.limits.nobody", ["x" * filler]])
    assert len(payload) == size, (len(payload), size)
    return payload, is_binary


@serializers
@pytest.mark.parametrize("limit", [1024, 70_000])
@pytest_twisted.inlineCallbacks
def test_max_message_size_closes_1009(serializer, limit):
    @defer.inlineCallbacks
    def body(running):
        client = yield raw_join(running.url, serializer)
        client.send_raw(*sized_call(client, 1, limit))  # exactly the limit: fine
        answer = yield client.next_message()
        assert isinstance(answer, wamp.Error) and answer.request == 1 and answer.error == NO_SUCH_PROCEDURE, answer
        client.send_raw(*sized_call(client, 2, limit + 1))
        reason = yield expect_close(client, 1009)
        assert str(limit) in reason or "too big" in reason.lower() or "exceeds" in reason.lower(), reason
        return [client]

    yield run_case(body, serializer, RouterConfig(max_message_size=limit))


@pytest_twisted.inlineCallbacks
def test_max_message_size_closes_an_autobahn_session():
    @defer.inlineCallbacks
    def body(running):
        session = yield connect_autobahn(running.url, serializer="json")
        session.call("com.limits.nobody", "x" * 5000).addErrback(lambda _: None)
        yield within(session.disconnected)
        assert not session.is_attached()
        return []

    yield run_case(body, "json", RouterConfig(max_message_size=4096))


# -- pending calls, registrations, sessions: the answers autobahn gets --------------------------


@defer.inlineCallbacks
def slow_callee(running, serializer: str, procedure: str = "com.limits.slow"):
    """A raw callee that registered ``procedure`` and answers only when told to."""
    callee = yield raw_join(running.url, serializer)
    callee.send([REGISTER, 1, {}, procedure])
    registered = yield callee.next_message()
    assert isinstance(registered, wamp.Registered), registered
    return callee


@pytest_twisted.inlineCallbacks
def test_max_pending_calls_per_caller_with_autobahn():
    @defer.inlineCallbacks
    def body(running):
        callee = yield slow_callee(running, "msgpack")
        caller = yield connect_autobahn(running.url, serializer="json")
        pending = [caller.call("com.limits.slow", n) for n in range(2)]
        for _ in pending:
            invocation = yield callee.next_message()
            assert isinstance(invocation, wamp.Invocation), invocation
        with pytest.raises(ApplicationError) as refused:
            yield within(caller.call("com.limits.slow", "one too many"))
        assert refused.value.error == LIMIT_EXCEEDED
        assert "max_pending_calls_per_caller" in str(refused.value.args[0])
        yield leave_and_wait(caller)  # the pending calls end with the caller
        for d in pending:
            d.addErrback(lambda _: None)
        return [callee]

    yield run_case(body, "json", RouterConfig(limits=Limits(max_pending_calls_per_caller=2)))


@pytest_twisted.inlineCallbacks
def test_max_registrations_per_session_with_autobahn():
    @defer.inlineCallbacks
    def body(running):
        session = yield connect_autobahn(running.url, serializer="msgpack")
        yield within(session.register(lambda: 1, "com.limits.a"))
        yield within(session.register(lambda: 2, "com.limits.b"))
        with pytest.raises(ApplicationError) as refused:
            yield within(session.register(lambda: 3, "com.limits.c"))
        assert refused.value.error == LIMIT_EXCEEDED
        assert "max_registrations_per_session" in str(refused.value.args[0])
        assert (yield within(session.call("com.limits.b"))) == 2
        yield leave_and_wait(session)
        return []

    yield run_case(body, "msgpack", RouterConfig(limits=Limits(max_registrations_per_session=2)))


@pytest_twisted.inlineCallbacks
def test_max_sessions_with_autobahn():
    @defer.inlineCallbacks
    def body(running):
        sessions = []
        for name in ("json", "msgpack"):
            sessions.append((yield connect_autobahn(running.url, serializer=name)))
        with pytest.raises(RuntimeError, match=LIMIT_EXCEEDED):
            yield connect_autobahn(running.url, serializer="json")
        for session in sessions:
            yield leave_and_wait(session)
        return []

    yield run_case(body, "json", RouterConfig(limits=Limits(max_sessions=2)))


class SilentTcp(Protocol):
    """A TCP client that sends ``chunks`` one every ``interval`` seconds (maybe none)."""

    def __init__(self, chunks: list[bytes], interval: float) -> None:
        self.chunks = list(chunks)
        self.interval = interval
        self.received = b""
        self.lost: defer.Deferred = defer.Deferred()
        self.connected_at = 0.0
        self._call = None

    def connectionMade(self):  # noqa: N802
        self.connected_at = time.monotonic()
        self._send_next()

    def _send_next(self):
        self._call = None
        if self.chunks:
            self.transport.write(self.chunks.pop(0))
            self._call = reactor.callLater(self.interval, self._send_next)

    def dataReceived(self, data):  # noqa: N802
        self.received += data

    def connectionLost(self, reason):  # noqa: N802
        if self._call is not None and self._call.active():
            self._call.cancel()
        self.lost.callback(time.monotonic() - self.connected_at)


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param("silent", id="sends-nothing"),
        pytest.param("partial", id="partial-request"),
        pytest.param("trickle", id="request-a-byte-at-a-time"),
    ],
)
@pytest_twisted.inlineCallbacks
def test_connection_without_websocket_upgrade_is_closed_at_the_handshake_deadline(behaviour):
    deadline = 0.5

    @defer.inlineCallbacks
    def body(running):
        host, port = host_port(running.url)
        request = (
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n"
        ).encode("ascii")
        if behaviour == "silent":
            chunks, interval = [], 0.0
        elif behaviour == "partial":
            chunks, interval = [request[:40]], 0.0
        else:  # never idle for long, but never done within the deadline
            chunks, interval = [bytes([b]) for b in request], 0.05
        client = SilentTcp(chunks, interval)
        yield within(connectProtocol(TCP4ClientEndpoint(reactor, host, port, timeout=WAIT), client))
        elapsed = yield within(client.lost, 5 * deadline + 2)
        assert deadline * 0.8 <= elapsed <= deadline + 1.5, f"closed after {elapsed:.2f} s; deadline {deadline} s"
        assert b"101" not in client.received
        assert running.router.state_counts()["connections"] == 0
        return []

    yield run_case(body, "json", RouterConfig(open_handshake_timeout=deadline))


@pytest_twisted.inlineCallbacks
def test_the_handshake_deadline_leaves_open_websockets_alone():
    deadline = 0.3

    @defer.inlineCallbacks
    def body(running):
        client = yield raw_join(running.url, "json")
        session = yield connect_autobahn(running.url, serializer="msgpack")
        yield sleep(deadline * 3)
        assert not client.is_closed and session.is_attached()
        yield round_trip(client, 1)
        yield leave_and_wait(session)
        return [client]

    yield run_case(body, "json", RouterConfig(open_handshake_timeout=deadline))


def nested_call(serializer: str, request: int, procedure: str, depth: int) -> tuple[bytes, bool]:
    """CALL ``procedure`` with one argument: ``depth`` nested lists around an int."""
    if serializer == "json":
        return b'[48,%d,{},"%s",[' % (request, procedure.encode()) + b"[" * depth + b"1" + b"]" * depth + b"]]", False
    head = b"\x95\x30" + msgpack.packb(request) + b"\x80" + msgpack.packb(procedure) + b"\x91"
    return head + b"\x91" * depth + b"\x01", True


@serializers
@pytest.mark.parametrize("depth", [1100, 2000, 100_000])
@pytest_twisted.inlineCallbacks
def test_nesting_beyond_the_decoder_limit_closes_1007(serializer, depth):
    @defer.inlineCallbacks
    def body(running):
        client = yield raw_join(running.url, serializer)
        client.send_raw(*nested_call(serializer, 1, "com.limits.nobody", depth))
        yield expect_close(client, 1007)
        return [client]

    yield run_case(body, serializer)


@serializers
@pytest.mark.parametrize("depth", [10, 200, 1000])
@pytest_twisted.inlineCallbacks
def test_nesting_the_decoder_accepts_gets_the_normal_answer(serializer, depth):
    @defer.inlineCallbacks
    def body(running):
        client = yield raw_join(running.url, serializer)
        client.send_raw(*nested_call(serializer, 1, "com.limits.nobody", depth))
        answer = yield client.next_message()
        assert isinstance(answer, wamp.Error) and answer.request == 1 and answer.error == NO_SUCH_PROCEDURE, answer
        return [client]

    yield run_case(body, serializer)


@pytest.mark.parametrize("caller_ser, callee_ser", [("msgpack", "json"), ("json", "msgpack"), ("msgpack", "msgpack")])
@pytest.mark.parametrize("depth", [100, 600, 1000])
@pytest_twisted.inlineCallbacks
def test_nested_arguments_reach_the_callee_or_fail_the_call(caller_ser, callee_ser, depth):
    """The router forwards what it could decode; when the callee's serializer cannot hold
    the depth (orjson writes at most 254 levels: 252 inside an INVOCATION's arguments;
    msgpack writes whatever it can read), the caller gets ERROR at once."""

    @defer.inlineCallbacks
    def body(running):
        callee = yield slow_callee(running, callee_ser, "com.limits.deep")
        caller = yield raw_join(running.url, caller_ser)
        caller.send_raw(*nested_call(caller_ser, 1, "com.limits.deep", depth))
        answer = yield caller.next_message()
        assert isinstance(answer, wamp.Error), answer
        assert answer.request == 1 and answer.error == "wamp.error.invalid_argument", answer
        yield round_trip(callee, 500)
        assert callee.unread() == [], "the callee got the call anyway"
        return [caller, callee]

    @defer.inlineCallbacks
    def body_forwarded(running):
        callee = yield slow_callee(running, callee_ser, "com.limits.deep")
        caller = yield raw_join(running.url, caller_ser)
        caller.send_raw(*nested_call(caller_ser, 1, "com.limits.deep", depth))
        invocation = yield callee.next_message()
        assert isinstance(invocation, wamp.Invocation), invocation
        callee.send([YIELD, invocation.request, {}, ["deep ok"]])
        result = yield caller.next_message()
        assert isinstance(result, wamp.Result) and result.args == ["deep ok"], result
        return [caller, callee]

    encodable = callee_ser == "msgpack" or depth <= 250
    yield run_case(body_forwarded if encodable else body, caller_ser)
