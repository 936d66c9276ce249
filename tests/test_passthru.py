"""Payload passthru mode: the router forwards ppt_* (and autobahn's enc_*) attributes and
the opaque payload untouched; autobahn-python's end-to-end encryption (cryptobox) through
the relay, between json, msgpack and cbor sessions; our client sends and receives them."""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions
from twisted.internet import defer

from promisifier.client import Passthru, connect
from promisifier.wire.messages import ABORT, CALL, ERROR, EVENT, INVOCATION, PUBLISH, RESULT
from tests.advanced_memory import ROLES, Memory
from tests.support import connect_autobahn, leave_and_wait, start_router, until, within

PPT_ROLES = {
    role: {"features": {**details["features"], "payload_passthru_mode": True}} for role, details in ROLES.items()
}
PPT = {"ppt_scheme": "x_custom", "ppt_serializer": "native", "ppt_cipher": "none", "ppt_keyid": "k1"}
OPAQUE = b"\x00\x01opaque\xff"


# -- routing, in memory --------------------------------------------------------------------------


@pytest.mark.parametrize(("caller_ser", "callee_ser"), [("json", "msgpack"), ("msgpack", "cbor"), ("cbor", "json")])
def test_passthru_call_result_and_error_cross_serializers_untouched(caller_ser, callee_ser):
    memory = Memory()
    callee = memory.join(serializer=callee_ser, roles=PPT_ROLES)
    caller = memory.join(serializer=caller_ser, roles=PPT_ROLES)
    callee.register("com.example.secret")
    caller.send_raw([CALL, 1, {**PPT, "receive_progress": True}, "com.example.secret", OPAQUE])
    invocation = callee.invocations()[0]
    assert invocation[3] == {**PPT, "receive_progress": True} and invocation[4:] == [OPAQUE]
    callee.send_raw([70, invocation[1], {**PPT, "progress": True}, b"partial"])
    callee.send_raw([70, invocation[1], PPT, b"final"])
    assert caller.answers_to(1) == [
        [RESULT, 1, {**PPT, "progress": True}, b"partial"],
        [RESULT, 1, PPT, b"final"],
    ]
    caller.send_raw([CALL, 2, PPT, "com.example.secret", OPAQUE])
    callee.send_raw([ERROR, INVOCATION, callee.invocations()[-1][1], PPT, "com.example.error.sealed", b"why"])
    assert caller.answers_to(2) == [[ERROR, CALL, 2, PPT, "com.example.error.sealed", b"why"]]


def test_passthru_event_keeps_its_attributes_and_payload():
    memory = Memory()
    subscriber = memory.join(serializer="cbor", roles=PPT_ROLES)
    publisher = memory.join(serializer="json", roles=PPT_ROLES)
    subscriber.subscribe("com.example.sealed")
    publisher.send_raw([PUBLISH, 1, {**PPT, "acknowledge": True, "retain": True}, "com.example.sealed", OPAQUE])
    event = subscriber.events()[0]
    assert event[3] == PPT and event[4:] == [OPAQUE]
    late = memory.join(roles=PPT_ROLES)
    late.subscribe("com.example.sealed", get_retained=True)
    assert late.events()[0][3] == {**PPT, "retained": True} and late.events()[0][4:] == [OPAQUE]


def test_a_callee_without_passthru_gets_feature_not_supported_for_its_caller():
    memory = Memory()
    callee, caller = memory.join(), memory.join(roles=PPT_ROLES)
    callee.register("com.example.secret")
    caller.send_raw([CALL, 1, PPT, "com.example.secret", OPAQUE])
    assert callee.invocations() == []
    assert caller.answers_to(1)[0][4] == "wamp.error.feature_not_supported"


def test_a_passthru_result_for_a_caller_without_the_feature_is_an_error():
    memory = Memory()
    callee, caller = memory.join(roles=PPT_ROLES), memory.join()
    callee.register("com.example.p")
    caller.send_raw([CALL, 1, {}, "com.example.p", [1]])
    callee.send_raw([70, callee.invocations()[0][1], PPT, OPAQUE])
    assert caller.answers_to(1)[0][4] == "wamp.error.feature_not_supported"
    assert memory.router.state_counts()["pending_calls"] == 0


@pytest.mark.parametrize(
    "message", [[CALL, 1, PPT, "com.example.p", OPAQUE], [PUBLISH, 1, PPT, "com.example.t", OPAQUE]]
)
def test_passthru_from_a_session_that_did_not_announce_it_is_a_protocol_violation(message):
    memory = Memory()
    callee = memory.join(roles=PPT_ROLES)
    callee.register("com.example.p")
    session = memory.join()
    session.send_raw(message)
    assert session.of_type(ABORT)[0][2] == "wamp.error.protocol_violation"


@pytest.mark.parametrize(
    "message",
    [
        [CALL, 1, {}, "com.example.p", OPAQUE],  # bytes without ppt_scheme
        [CALL, 1, PPT, "com.example.p", OPAQUE, {}],  # ArgumentsKw after a passthru payload
        [PUBLISH, 1, {"ppt_scheme": ""}, "com.example.t", OPAQUE],
    ],
)
def test_malformed_passthru_is_a_protocol_violation(message):
    memory = Memory()
    session = memory.join(roles=PPT_ROLES)
    session.send_raw(message)
    assert session.of_type(ABORT)[0][2] == "wamp.error.protocol_violation"


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
