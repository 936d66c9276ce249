"""wamp.2.cbor with autobahn-python over WebSocket and RawSocket, between json, msgpack and
cbor peers in every direction: calls, results, errors, events, binary values, big integers."""

from __future__ import annotations

import itertools

import pytest
import pytest_twisted
from autobahn.twisted.rawsocket import WampRawSocketClientFactory
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import ComponentConfig, PublishOptions
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString

from promisifier.embed import Router
from promisifier.router import RouterConfig
from tests.support import RecordingSession, autobahn_serializer, connect_autobahn, leave_and_wait, within

pytestmark = pytest.mark.slow

SERIALIZERS = ("json", "msgpack", "cbor")
#: values every serializer carries the same way
PAYLOAD = [1, -1, 2**53, 1.5, "h\u00e9", b"\x00\xffbytes", None, True, [], {"nested": [{"k": b"\x01"}]}]


class Relay:
    def __init__(self) -> None:
        self.router = Router(RouterConfig(realms=("realm1",)))

    @defer.inlineCallbacks
    def start(self):
        self.ws = yield self.router.listen("tcp:0:interface=127.0.0.1")
        self.rs = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(self.router.rawsocket_factory())
        return self

    @defer.inlineCallbacks
    def connect(self, serializer: str, transport: str):
        if transport == "websocket":
            session = yield connect_autobahn(f"ws://127.0.0.1:{self.ws.getHost().port}/ws", "realm1", serializer)
            return session
        session = RecordingSession(ComponentConfig(realm="realm1"))
        factory = WampRawSocketClientFactory(lambda: session, serializer=autobahn_serializer(serializer))
        yield within(TCP4ClientEndpoint(reactor, "127.0.0.1", self.rs.getHost().port).connect(factory))
        yield within(session.joined)
        return session

    @defer.inlineCallbacks
    def stop(self):
        yield within(self.router.stop())
        yield self.ws.stopListening()
        yield self.rs.stopListening()


@pytest.fixture
def relay():
    running = pytest_twisted.blockon(Relay().start())
    yield running
    pytest_twisted.blockon(running.stop())


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest.mark.parametrize(
    ("callee_ser", "caller_ser"), [pair for pair in itertools.permutations(SERIALIZERS, 2) if "cbor" in pair]
)
@pytest_twisted.inlineCallbacks
def test_calls_and_errors_cross_serializers(relay, transport, callee_ser, caller_ser):
    callee = yield relay.connect(callee_ser, transport)
    caller = yield relay.connect(caller_ser, transport)
    assert relay.router.realms["realm1"].sessions  # both joined
    serializers = {s.peer.serializer_name for s in relay.router.realms["realm1"].sessions.values()}
    assert serializers == {callee_ser, caller_ser}

    def echo(*args, **kwargs):
        return [list(args), kwargs]

    def fail():
        raise ApplicationError("com.example.error.nope", b"\x00binary", count=2)

    yield within(callee.register(echo, "com.example.echo"))
    yield within(callee.register(fail, "com.example.fail"))
    result = yield within(caller.call("com.example.echo", *PAYLOAD, key=PAYLOAD))
    assert result == [PAYLOAD, {"key": PAYLOAD}]
    with pytest.raises(ApplicationError) as error:
        yield within(caller.call("com.example.fail"))
    assert error.value.error == "com.example.error.nope"
    assert error.value.args == (b"\x00binary",) and error.value.kwargs == {"count": 2}
    yield leave_and_wait(caller)
    yield leave_and_wait(callee)


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.inlineCallbacks
def test_one_event_reaches_json_msgpack_and_cbor_subscribers(relay, transport):
    subscribers = []
    received = {name: defer.Deferred() for name in SERIALIZERS}
    for name in SERIALIZERS:
        session = yield relay.connect(name, transport)
        yield within(session.subscribe(lambda *a, _n=name, **k: received[_n].callback((a, k)), "com.example.t"))
        subscribers.append(session)
    publisher = yield relay.connect("cbor", transport)
    yield within(publisher.publish("com.example.t", *PAYLOAD, key=b"\x02", options=PublishOptions(acknowledge=True)))
    for name in SERIALIZERS:
        args, kwargs = yield within(received[name])
        assert list(args) == PAYLOAD and kwargs == {"key": b"\x02"}, name
    for session in [publisher, *subscribers]:
        yield leave_and_wait(session)


@pytest_twisted.inlineCallbacks
def test_big_integers_cross_between_json_and_cbor_but_not_msgpack(relay):
    big = [2**64, -(2**63) - 1, 2**200]
    callee = yield relay.connect("cbor", "websocket")
    json_caller = yield relay.connect("json", "websocket")
    msgpack_callee = yield relay.connect("msgpack", "websocket")
    yield within(callee.register(lambda *args: list(args), "com.example.echo"))
    yield within(msgpack_callee.register(lambda *args: list(args), "com.example.echo64"))
    assert (yield within(json_caller.call("com.example.echo", *big))) == big
    with pytest.raises(ApplicationError) as error:
        yield within(json_caller.call("com.example.echo64", *big))
    assert error.value.error == "wamp.error.invalid_argument" and "64-bit" in error.value.args[0]
    for session in (callee, json_caller, msgpack_callee):
        yield leave_and_wait(session)
