"""The rest of the advanced profile over real sockets: event history asked by autobahn-python,
our reconnecting Client resuming without gaps, autobahn-python's end-to-end encryption
(cryptobox) through the relay, our client's passthru payloads."""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions
from twisted.internet import defer

from promisifier.client import Passthru, connect
from promisifier.router.history import HistoryRule
from promisifier.router.router_config import RealmConfig, RouterConfig
from promisifier.wire.messages import EVENT, INVOCATION
from tests.support import connect_autobahn, leave_and_wait, start_router, until, within

pytestmark = pytest.mark.slow

OPAQUE = b"\x00\x01opaque\xff"


def history_realm(*rules: HistoryRule, **config) -> RealmConfig:
    return RealmConfig("realm1", history=rules, **config)


# -- autobahn-python ---------------------------------------------------------------------------------


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
@pytest_twisted.inlineCallbacks
def test_autobahn_asks_for_event_history(serializer):
    running = yield start_router(RouterConfig(realms=(history_realm(HistoryRule("com.example.", "prefix")),)))
    try:
        session = yield connect_autobahn(running.url, "realm1", serializer)
        subscription = yield within(session.subscribe(lambda *a: None, "com.example.", options=_prefix()))
        for n in range(3):
            yield within(session.publish("com.example.t", n, options=_acknowledged()))
        events = yield within(session.call("wamp.subscription.get_events", subscription.id, reverse=True))
        assert [e["args"] for e in events] == [[2], [1], [0]]
        assert events[0]["details"]["topic"] == "com.example.t"
        welcome_features = session._router_roles["broker"].event_history
        assert welcome_features is True
        yield leave_and_wait(session)
    finally:
        yield running.stop()


def _prefix():
    from autobahn.wamp.types import SubscribeOptions

    return SubscribeOptions(match="prefix")


def _acknowledged():
    from autobahn.wamp.types import PublishOptions

    return PublishOptions(acknowledge=True, exclude_me=False)


# -- our reconnecting Client resumes by itself ---------------------------------------------------------


class FeedSubscriber:
    """A handler that keeps (payload, EventDetails) and fires when ``count`` arrived."""

    def __init__(self) -> None:
        self.events: list = []
        self._waits: list = []

    def __call__(self, value, details):
        self.events.append((value, details))
        for wait in list(self._waits):
            count, d = wait
            if len(self.events) >= count:
                self._waits.remove(wait)
                d.callback(None)

    def wait_for(self, count):
        d = defer.Deferred()
        if len(self.events) >= count:
            d.callback(None)
        else:
            self._waits.append((count, d))
        return within(d, 20)


@pytest.mark.parametrize(("limit", "recovered"), [(5000, True), (100, False)])
@pytest_twisted.inlineCallbacks
def test_client_cut_while_1000_events_are_published_resumes_without_gap_or_duplicate(limit, recovered):
    from promisifier.client import Backoff, Client
    from promisifier.embed import Router

    router = Router(RouterConfig(realms=(history_realm(HistoryRule("com.feed", limit=limit)),)))
    port = yield router.listen("tcp:0:interface=127.0.0.1")
    number = port.getHost().port
    url = f"ws://127.0.0.1:{number}/ws"
    client = Client(url, "realm1", backoff=Backoff(initial=0.05, floor=0.01, cap=0.1), max_reconnects=0)
    feed = FeedSubscriber()
    try:
        handle = yield within(client.subscribe("com.feed", feed, details=True))
        yield within(client.connect())
        publisher = yield within(router.session("realm1"))
        for n in range(10):
            yield within(publisher.publish("com.feed", n, acknowledge=True))
        yield feed.wait_for(10)

        # cut: nobody can connect while the 1,000 events are published
        yield port.stopListening()
        disconnected = defer.Deferred()
        client.on("disconnect", lambda *a: disconnected.called or disconnected.callback(None))
        client.session.connection.drop()
        yield within(disconnected)
        for n in range(10, 1010):
            yield within(publisher.publish("com.feed", n, acknowledge=True))
        joined = defer.Deferred()
        client.on("join", lambda *a: joined.called or joined.callback(None))
        port = yield router.listen(f"tcp:{number}:interface=127.0.0.1")
        yield within(joined, 20)
        yield within(publisher.publish("com.feed", "live", acknowledge=True))
        if recovered:
            yield feed.wait_for(1011)
            values = [value for value, _ in feed.events]
            assert values == [*range(1010), "live"]  # every event once, in order
            assert all(d.recovered is True for _, d in feed.events[10:1010])
            assert feed.events[-1][1].recovered is None and feed.events[-1][1].offset == 1011
        else:
            yield feed.wait_for(11)
            values = [value for value, _ in feed.events]
            assert values == [*range(10), "live"]  # nothing replayed: the history was trimmed
            assert feed.events[-1][1].recovered is False  # told: there is a gap before it
        # recovered: the subscription says so; not recovered: said once, with the live event
        assert handle.current.recovered is (True if recovered else None)
    finally:
        yield within(client.close())
        yield router.stop()
        yield port.stopListening()


# -- autobahn-python's end-to-end encryption through the relay -------------------------------------


@pytest.fixture
def relay():
    running = pytest_twisted.blockon(start_router())
    yield running
    pytest_twisted.blockon(running.stop())


def keyring_pair():
    cryptobox = pytest.importorskip("autobahn.wamp.cryptobox")
    if not cryptobox.HAS_CRYPTOBOX:
        pytest.skip("autobahn's cryptobox needs pynacl and pytrie")
    ring = cryptobox.KeyRing()
    originator_priv, originator_pub = ring.generate_key()
    responder_priv, responder_pub = ring.generate_key()
    originator = cryptobox.KeyRing()
    originator.set_key("com.example.", cryptobox.Key(originator_priv=originator_priv, responder_pub=responder_pub))
    responder = cryptobox.KeyRing()
    responder.set_key("com.example.", cryptobox.Key(originator_pub=originator_pub, responder_priv=responder_priv))
    return originator, responder


@pytest.mark.parametrize(("caller_ser", "callee_ser"), [("json", "msgpack"), ("cbor", "json"), ("msgpack", "cbor")])
@pytest_twisted.inlineCallbacks
def test_autobahn_cryptobox_call_and_event_through_the_relay(relay, caller_ser, callee_ser):
    originator, responder = keyring_pair()
    callee = yield connect_autobahn(relay.url, "realm1", callee_ser)
    caller = yield connect_autobahn(relay.url, "realm1", caller_ser)
    callee.set_payload_codec(responder)
    caller.set_payload_codec(originator)
    seen_by_router: list = []  # what the router sent the callee, as lists, before encoding
    peer = next(s for s in relay.router.realms["realm1"].sessions.values() if s.session_id == callee._session_id).peer
    send, send_shared = peer.send, peer.send_shared
    peer.send = lambda message: (seen_by_router.append(message), send(message))[1]
    peer.send_shared = lambda message, encoded: (seen_by_router.append(message), send_shared(message, encoded))[1]
    yield within(callee.register(lambda a, b: {"sum": a + b, "secret": "s3cret"}, "com.example.add"))
    result = yield within(caller.call("com.example.add", 2, 3))
    assert result == {"sum": 5, "secret": "s3cret"}
    invocation = next(m for m in seen_by_router if m[0] == INVOCATION)
    assert invocation[3]["enc_algo"] == "cryptobox" and type(invocation[4]) is bytes
    assert b"s3cret" not in invocation[4] and len(invocation) == 5
    received = defer.Deferred()
    yield within(callee.subscribe(lambda *a, **k: received.callback((a, k)), "com.example.news"))
    yield within(caller.publish("com.example.news", "classified", options=PublishOptions(acknowledge=True)))
    assert (yield within(received)) == (("classified",), {})
    event = next(m for m in seen_by_router if m[0] == EVENT)
    assert event[3]["enc_algo"] == "cryptobox" and b"classified" not in event[4]
    yield leave_and_wait(caller)
    yield leave_and_wait(callee)


# -- our client --------------------------------------------------------------------------------------


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
@pytest_twisted.inlineCallbacks
def test_our_client_sends_and_receives_passthru_payloads(relay, serializer):
    callee = yield within(connect(relay.url, "realm1", serializers=[serializer]))
    caller = yield within(connect(relay.url, "realm1", serializers=[serializer]))
    got = []

    def sealed(sealed_payload):
        got.append(sealed_payload)
        return Passthru(sealed_payload.payload[::-1], scheme="x_custom", keyid="k2")

    yield within(callee.register("com.example.sealed", sealed))
    result = yield within(caller.call("com.example.sealed", Passthru(OPAQUE, scheme="x_custom", keyid="k1")))
    assert got == [Passthru(OPAQUE, scheme="x_custom", keyid="k1")]
    assert result == Passthru(OPAQUE[::-1], scheme="x_custom", keyid="k2")
    events = []
    yield within(callee.subscribe("com.example.t", events.append))
    yield within(caller.publish("com.example.t", Passthru(b"raw", scheme="mqtt"), acknowledge=True))
    yield until(lambda: events == [Passthru(b"raw", scheme="mqtt")])
    yield within(caller.leave())
    yield within(callee.leave())


@pytest_twisted.inlineCallbacks
def test_our_client_receives_autobahn_cryptobox_payloads_opaque(relay):
    originator, _responder = keyring_pair()
    callee = yield within(connect(relay.url, "realm1", serializers=["cbor"]))
    caller = yield connect_autobahn(relay.url, "realm1", "json")
    caller.set_payload_codec(originator)
    got = []

    def opaque(sealed_payload):
        got.append(sealed_payload)
        return "cannot read it"

    yield within(callee.register("com.example.opaque", opaque))
    yield within(caller.call("com.example.opaque", "secret"))
    assert got[0].scheme == "cryptobox" and type(got[0].payload) is bytes and b"secret" not in got[0].payload
    yield leave_and_wait(caller)
    yield within(callee.leave())
