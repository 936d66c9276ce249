"""connect(): how it fails, authentication, and interoperation with autobahn-python clients."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import ConnectionRefusedError

from promisifier.client import (
    ApplicationError,
    CallResult,
    ClientError,
    ConnectFailed,
    ConnectionClosed,
    ConnectTimeout,
    InvalidURL,
    SessionAborted,
    connect,
)
from promisifier.router import RouterConfig
from tests.support import SERIALIZER_NAMES, connect_autobahn, leave_and_wait, start_router, within

pytestmark = pytest.mark.slow


@pytest.fixture
def router():
    running = pytest_twisted.blockon(start_router())
    yield running
    pytest_twisted.blockon(running.stop())


@pytest_twisted.inlineCallbacks
def test_serializer_preference(router):
    session = yield within(connect(router.url, "realm1"))
    assert session.subprotocol == "wamp.2.msgpack"
    yield within(session.close())
    session = yield within(connect(router.url, "realm1", serializers=("json", "msgpack")))
    assert session.subprotocol == "wamp.2.json"
    yield within(session.close())


@pytest_twisted.inlineCallbacks
def test_refused_connection(free_port):
    url = f"ws://127.0.0.1:{free_port}/ws"
    with pytest.raises(ConnectFailed) as info:
        yield within(connect(url, "realm1", timeout=5))
    assert str(info.value) == f"cannot connect to {url}: connection refused (is the relay running?)"
    assert isinstance(info.value.cause, ConnectionRefusedError) and info.value.url == url


@pytest_twisted.inlineCallbacks
@pytest.mark.parametrize("url", ["http://127.0.0.1:1/ws", "127.0.0.1:8080", "rs://127.0.0.1", "ws://"])
def test_bad_url(url):
    with pytest.raises(InvalidURL) as info:  # a ClientError, and a ValueError
        yield connect(url, "realm1")
    assert isinstance(info.value, ValueError) and isinstance(info.value, ClientError)
    assert str(info.value).startswith(f"{url}: ")


@pytest_twisted.inlineCallbacks
def test_no_such_realm(router):
    with pytest.raises(SessionAborted) as info:
        yield within(connect(router.url, "nowhere"))
    assert info.value.reason == "wamp.error.no_such_realm"
    assert router.router.state_counts()["sessions"] == 0


@pytest_twisted.inlineCallbacks
def test_websocket_handshake_failure(router):
    url = router.url.replace("/ws", "/not-here")
    with pytest.raises(ConnectionClosed) as info:
        yield within(connect(url, "realm1"))
    assert "handshake" in str(info.value)


@pytest_twisted.inlineCallbacks
def test_timeout_when_the_server_never_answers():
    silent = protocol.Factory.forProtocol(protocol.Protocol)  # accepts, then says nothing
    port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(silent)
    try:
        with pytest.raises(ConnectTimeout) as info:
            yield within(connect(f"ws://127.0.0.1:{port.getHost().port}/ws", "realm1", timeout=0.3))
        assert "0.3" in str(info.value)
    finally:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_cancelling_a_connect_attempt():
    silent = protocol.Factory.forProtocol(protocol.Protocol)
    port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(silent)
    try:
        d = connect(f"ws://127.0.0.1:{port.getHost().port}/ws", "realm1", timeout=5)
        reactor.callLater(0.05, d.cancel)
        with pytest.raises(defer.CancelledError):
            yield within(d)
    finally:
        yield port.stopListening()


def auth_router_config():
    from promisifier.router.auth import AuthConfig, Principal

    return RouterConfig(
        auth=AuthConfig(
            methods=("ticket", "wampcra"),
            tickets={"joe": Principal("joe", "user", "joe-ticket")},
            wampcra={
                "peter": Principal("peter", "user", "peter-secret"),
                "salty": Principal("salty", "admin", "salty-pw", salt="salt123", iterations=100, keylen=32),
            },
        )
    )


@pytest_twisted.inlineCallbacks
def test_ticket_and_wampcra_against_the_router():
    running = yield start_router(auth_router_config())
    try:
        session = yield within(connect(running.url, "realm1", authid="joe", credentials={"ticket": "joe-ticket"}))
        assert (session.authid, session.authrole, session.authmethod) == ("joe", "user", "ticket")
        yield within(session.close())
        session = yield within(connect(running.url, "realm1", authid="peter", credentials={"secret": "peter-secret"}))
        assert (session.authid, session.authmethod) == ("peter", "wampcra")
        yield within(session.close())
        session = yield within(connect(running.url, "realm1", authid="salty", credentials={"secret": "salty-pw"}))
        assert (session.authid, session.authrole) == ("salty", "admin")
        yield within(session.close())
        with pytest.raises(SessionAborted) as info:
            yield within(connect(running.url, "realm1", authid="joe", credentials={"ticket": "wrong"}))
        assert info.value.reason in ("wamp.error.authentication_failed", "wamp.error.not_authorized")
        with pytest.raises(SessionAborted):
            yield within(connect(running.url, "realm1", authid="peter", credentials={"secret": "wrong"}))
    finally:
        yield running.stop()


@pytest_twisted.inlineCallbacks
@pytest.mark.parametrize("serializer", SERIALIZER_NAMES)
def test_interop_with_autobahn_callee_and_subscriber(router, serializer):
    ab = yield connect_autobahn(router.url, serializer=serializer)
    events = defer.Deferred()
    yield within(ab.register(lambda a, b: a * b, "com.interop.mul"))
    yield within(ab.register(lambda: (_ for _ in ()).throw(ValueError("nope")), "com.interop.fail"))
    yield within(ab.subscribe(lambda *a, **kw: events.callback((a, kw)), "com.interop.topic"))
    ours = yield within(connect(router.url, "realm1", serializers=(serializer,)))
    assert (yield within(ours.call("com.interop.mul", 6, 7))) == 42
    with pytest.raises(ApplicationError):
        yield within(ours.call("com.interop.fail"))
    yield within(ours.publish("com.interop.topic", 1, b"\x01\x02", k="v", acknowledge=True))
    assert (yield within(events)) == ((1, b"\x01\x02"), {"k": "v"})
    assert ab.judge.failures == []
    yield within(ours.close())
    yield leave_and_wait(ab)


@pytest_twisted.inlineCallbacks
@pytest.mark.parametrize("serializer", SERIALIZER_NAMES)
def test_interop_autobahn_calls_our_callee(router, serializer):
    from autobahn.wamp.exception import ApplicationError as AutobahnApplicationError

    ours = yield within(connect(router.url, "realm1", serializers=(serializer,)))

    def fail():
        raise ApplicationError("com.interop.error", "bad", code=7)

    yield within(ours.register("com.interop.add", lambda a, b: a + b))
    yield within(ours.register("com.interop.pair", lambda: CallResult([1, 2], {"sum": 3})))
    yield within(ours.register("com.interop.error", fail))
    received = defer.Deferred()
    yield within(ours.subscribe("com.interop.news", lambda *a, **kw: received.callback((a, kw))))
    ab = yield connect_autobahn(router.url, serializer=serializer)
    assert (yield within(ab.call("com.interop.add", 2, 3))) == 5
    pair = yield within(ab.call("com.interop.pair"))
    assert (list(pair.results), pair.kwresults) == ([1, 2], {"sum": 3})
    with pytest.raises(AutobahnApplicationError) as info:
        yield within(ab.call("com.interop.error"))
    assert info.value.error == "com.interop.error" and info.value.args == ("bad",) and info.value.kwargs == {"code": 7}
    ab.publish("com.interop.news", "hello", n=1)
    assert (yield within(received)) == (("hello",), {"n": 1})
    assert ab.judge.failures == []
    yield leave_and_wait(ab)
    yield within(ours.leave())
