"""The websocket-promisifier façade: two clients offering services to each other through
the relay (real sockets on 127.0.0.1, json and msgpack)."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer

from promisifier.client import ApplicationError, CallResult, ConnectionClosed, ConnectionLost, connect
from promisifier.compat.promisifier import create_websocket_promisifier, service_uri
from promisifier.embed import Router
from promisifier.router import RouterConfig
from tests.support import start_router, within

pytestmark = pytest.mark.slow

by_serializer = pytest.mark.parametrize("serializer", ["json", "msgpack"])


@pytest.fixture
def relay():
    running = pytest_twisted.blockon(start_router())
    yield running
    pytest_twisted.blockon(running.stop())


@defer.inlineCallbacks
def two_peers(url, serializer="json"):
    alice = yield within(connect(url, "realm1", serializers=(serializer,)))
    bob = yield within(connect(url, "realm1", serializers=(serializer,)))
    a = create_websocket_promisifier(alice, "bob", name="alice")
    b = create_websocket_promisifier(bob, "alice", name="bob")
    return a, b


@by_serializer
@pytest_twisted.inlineCallbacks
def test_peers_call_each_others_services(relay, serializer):
    a, b = yield two_peers(relay.url, serializer)
    try:
        a.add_service("add", lambda x, y: x + y)
        a.add_service(7, lambda: defer.succeed("seven"))
        a.add_service("pair", lambda x: CallResult([x, x], {"n": 2}))

        async def upper(text):
            return text.upper()

        b.add_service("upper", upper)
        assert (yield within(a.connect())) is a
        yield within(b.connect())

        assert (yield within(b.send("add", 2, 3))) == 5
        assert (yield within(b.send(7))) == "seven"
        assert (yield within(b.send("7"))) == "seven"  # the same service: its URI holds the text
        assert (yield within(b.send("pair", b"\x00\xff"))) == CallResult([b"\x00\xff", b"\x00\xff"], {"n": 2})
        assert (yield within(a.send("upper", "hé"))) == "HÉ"
        assert sorted(a.services()) == ["7", "add", "pair"]

        # what the relay sees: procedures under the offering peer's name
        other = yield within(connect(relay.url, "realm1"))
        assert (yield within(other.call(service_uri("alice", "add"), 1, 1))) == 2
        yield within(other.close())

        # events: bob offers an event-receiving service, alice sends to it
        received = []
        b.add_service("event", lambda kind, payload: received.append((kind, payload)))
        yield within(b.connect())
        yield within(a.send("event", "tick", {"n": 1}))
        yield within(a.send("event", "tick", {"n": 2}))
        assert received == [("tick", {"n": 1}), ("tick", {"n": 2})]

        stats_a, stats_b = a.stats, b.stats
        assert stats_a.requests_sent == 3 and stats_a.requests_received == 5
        assert stats_b.requests_sent == 4 and stats_b.requests_received == 3
        assert stats_a.bytes_sent > 0 and stats_a.bytes_received > 0 and stats_a.messages_received > 0
        assert set(stats_a.as_dict()) >= {"bytes_sent", "bytes_received", "requests_sent", "requests_received"}
        assert a.conn_id == a.session.session_id and a.conn_id != b.conn_id
    finally:
        yield within(a.close())
        yield within(b.close())


@pytest_twisted.inlineCallbacks
def test_errors_replace_remove_and_clear(relay):
    a, b = yield two_peers(relay.url)
    try:

        def fails(code):
            raise ApplicationError("com.example.refused", "no", code=code)

        def crashes():
            raise RuntimeError("boom")

        yield within(a.add_service("fails", fails))
        yield within(a.add_service("crashes", crashes))
        with pytest.raises(ApplicationError) as info:
            yield within(b.send("fails", 3))
        assert info.value.error == "com.example.refused" and info.value.kwargs == {"code": 3}
        with pytest.raises(ApplicationError) as info:
            yield within(b.send("crashes"))
        assert info.value.error == "wamp.error.runtime_error" and info.value.args == ("boom",)
        with pytest.raises(ApplicationError) as info:
            yield within(b.send("not-offered"))
        assert info.value.error == "wamp.error.no_such_procedure"

        # adding an id again replaces the function; the registration stays
        yield within(a.add_service("v", lambda: 1))
        yield within(a.add_service("v", lambda: 2))
        assert (yield within(b.send("v"))) == 2

        yield within(a.remove_service("v"))
        yield within(a.remove_service("never-added"))
        with pytest.raises(ApplicationError) as info:
            yield within(b.send("v"))
        assert info.value.error == "wamp.error.no_such_procedure"

        yield within(a.clear_services())
        assert a.services() == []
        assert relay.router.state_counts()["registrations"] == 0

        # the same service offered twice on the relay: the second is refused
        yield within(a.add_service("only", lambda: 1))
        stolen = create_websocket_promisifier(b.session, "bob", name="alice")
        with pytest.raises(ApplicationError) as info:
            yield within(stolen.add_service("only", lambda: 2))
        assert info.value.error == "wamp.error.procedure_already_exists"
        assert stolen.services() == []

        with pytest.raises(ValueError):
            create_websocket_promisifier(a.session, "two.parts", name="x")
        with pytest.raises(ValueError):
            create_websocket_promisifier(a.session, "bob", name="has space")
        with pytest.raises(TypeError):
            a.add_service(1.5, lambda: None)
        with pytest.raises(ValueError):
            yield b.send("bad#id")
    finally:
        yield within(a.close())
        yield within(b.close())


@pytest_twisted.inlineCallbacks
def test_name_defaults_to_the_authid(relay):
    alice = yield within(connect(relay.url, "realm1"))
    bob = yield within(connect(relay.url, "realm1"))
    a = create_websocket_promisifier(alice, bob.authid)  # anonymous authids: anonymous-<session id>
    b = create_websocket_promisifier(bob, alice.authid)
    assert a.name == alice.authid and b.peer == a.name
    yield within(a.add_service("hello", lambda: "hi"))
    assert (yield within(b.send("hello"))) == "hi"
    yield within(a.close())
    yield within(b.close())


@pytest_twisted.inlineCallbacks
def test_promise_on_normal_close_with_a_long_reason(relay):
    a, b = yield two_peers(relay.url)
    promise = a.promise
    # what the relay receives in alice's close frame
    router_side = relay.router.realms["realm1"].sessions[a.conn_id]
    received = defer.Deferred()
    on_close = router_side.on_close

    def record(code, reason):
        on_close(code, reason)
        received.callback((code, reason))

    router_side.on_close = record
    reason = "é" * 100  # 200 bytes of UTF-8
    closed = yield within(a.close(reason))
    assert (yield within(promise)) == closed and closed[0] == 1000  # the relay's answering frame
    code, text = yield within(received)
    assert code == 1000 and text == "é" * 61  # 122 bytes: cut at a character boundary
    # the other side learns nothing but that alice is gone
    with pytest.raises(ApplicationError) as info:
        yield within(b.send("anything"))
    assert info.value.error == "wamp.error.no_such_procedure"
    yield within(b.close())
    assert (yield within(b.promise)) == (1000, "")


@pytest_twisted.inlineCallbacks
def test_promise_fails_on_an_abnormal_drop_and_nothing_hangs(relay):
    a, b = yield two_peers(relay.url)
    yield within(a.add_service("hang", lambda: defer.Deferred()))
    yield within(b.add_service("hang", lambda: defer.Deferred()))
    promise = b.promise
    a_waiting = a.send("hang")  # bob never answers
    b_waiting = b.send("hang")  # alice never answers
    relay.router.realms["realm1"].sessions[b.conn_id].peer.drop()
    with pytest.raises(ConnectionClosed) as info:
        yield within(promise)
    assert info.value.code == 1006
    with pytest.raises(ConnectionLost):
        yield within(b_waiting)
    with pytest.raises(ApplicationError):  # the relay fails a call whose callee went away
        yield within(a_waiting)
    yield within(a.close())


@pytest_twisted.inlineCallbacks
def test_in_process_session_of_an_embedded_router():
    router = Router(RouterConfig())
    port = yield router.listen("tcp:0:interface=127.0.0.1")
    try:
        local = yield within(router.session("realm1"))
        remote = yield within(connect(f"ws://127.0.0.1:{port.getHost().port}/ws", "realm1"))
        server = create_websocket_promisifier(local, "browser", name="server")
        browser = create_websocket_promisifier(remote, "server", name="browser")
        yield within(server.add_service("time", lambda: 42))
        assert (yield within(browser.send("time"))) == 42
        yield within(browser.close())
        yield within(local.leave())
    finally:
        yield router.stop()
        yield port.stopListening()
