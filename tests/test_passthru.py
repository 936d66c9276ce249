"""Payload passthru mode, routed in memory: the router forwards ppt_* (and autobahn's enc_*)
attributes and the opaque payload untouched, between json, msgpack and cbor sessions
(autobahn-python's cryptobox and our client's Passthru: test_advanced_profile_sockets)."""

from __future__ import annotations

import pytest

from promisifier.wire.messages import ABORT, CALL, ERROR, INVOCATION, PUBLISH, RESULT
from tests.advanced_memory import ROLES, Memory

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
