"""The rest of the advanced profile, routed in memory (a router on a Clock, in-memory peers):
progressive results under a call timeout, integers beyond 64 bits, prefix and wildcard URIs
with empty components, registration and subscription revocation, call rerouting, retention."""

from __future__ import annotations

import pytest

try:
    from tests.advanced_memory import Memory
except ImportError:  # pragma: no cover - tests/ itself on sys.path
    from advanced_memory import Memory  # type: ignore[no-redef]

from promisifier.wire.messages import CALL, ERROR, INTERRUPT, PUBLISH, REGISTER, RESULT, SUBSCRIBE

# -- progressive results under a call timeout -------------------------------------------------


def test_call_timeout_is_rearmed_by_each_progressive_result():
    memory = Memory()
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.stream")
    request_id = caller.call("com.example.stream", receive_progress=True, timeout=400)
    invocation_id = callee.invocations()[0][1]
    for n in range(5):  # 150 ms apart: each within 400 ms of the one before, 750 ms in all
        memory.advance(0.15)
        callee.yield_(invocation_id, [n], progress=True)
    memory.advance(0.15)
    callee.yield_(invocation_id, ["done"])
    answers = caller.answers_to(request_id)
    assert [answer[0] for answer in answers] == [RESULT] * 6
    assert [answer[3] for answer in answers] == [[0], [1], [2], [3], [4], ["done"]]
    assert not callee.of_type(INTERRUPT)
    assert memory.router.state_counts()["pending_calls"] == 0


def test_call_timeout_between_progressive_results_still_fires():
    memory = Memory()
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.stream")
    request_id = caller.call("com.example.stream", receive_progress=True, timeout=400)
    invocation_id = callee.invocations()[0][1]
    memory.advance(0.3)
    callee.yield_(invocation_id, [1], progress=True)
    memory.advance(0.39)
    assert [answer[0] for answer in caller.answers_to(request_id)] == [RESULT]
    memory.advance(0.02)  # 410 ms since the last result
    final = caller.answers_to(request_id)[-1]
    assert final[:5] == [ERROR, CALL, request_id, {}, "wamp.error.timeout"]
    assert callee.of_type(INTERRUPT)[0][2] == {"mode": "killnowait", "reason": "wamp.error.timeout"}


def test_progress_for_a_caller_without_receive_progress_does_not_rearm_the_timeout():
    memory = Memory()
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.stream")
    request_id = caller.call("com.example.stream", timeout=400)
    invocation_id = callee.invocations()[0][1]
    memory.advance(0.3)
    callee.yield_(invocation_id, [1], progress=True)  # not forwarded: the caller did not ask
    memory.advance(0.11)
    assert caller.answers_to(request_id)[-1][4] == "wamp.error.timeout"


# -- integers beyond 64 bits ------------------------------------------------------------------

BIG = [18446744073709551616, -9223372036854775809, 2**200]


def test_big_integers_pass_unchanged_from_json_to_json():
    memory = Memory()
    callee, caller = memory.join(serializer="json"), memory.join(serializer="json")
    callee.register("com.example.echo")
    request_id = caller.call("com.example.echo", BIG, {"n": BIG[0]})
    invocation = callee.invocations()[0]
    assert invocation[4] == BIG and invocation[5] == {"n": BIG[0]}
    assert all(type(value) is int for value in invocation[4])
    callee.yield_(invocation[1], invocation[4])
    assert caller.answers_to(request_id) == [[RESULT, request_id, {}, BIG]]


def test_big_integers_to_a_msgpack_callee_are_refused_with_a_clear_error():
    memory = Memory()
    callee, caller = memory.join(serializer="msgpack"), memory.join(serializer="json")
    callee.register("com.example.echo")
    request_id = caller.call("com.example.echo", BIG)
    assert callee.invocations() == []
    error = caller.answers_to(request_id)[0]
    assert error[:5] == [ERROR, CALL, request_id, {}, "wamp.error.invalid_argument"]
    assert "64-bit" in error[5][0]
    assert memory.router.state_counts()["pending_calls"] == 0


def test_big_integers_in_an_event_reach_json_subscribers_only():
    memory = Memory()
    json_subscriber = memory.join(serializer="json")
    msgpack_subscriber = memory.join(serializer="msgpack")
    publisher = memory.join(serializer="json")
    json_subscriber.subscribe("com.example.big")
    msgpack_subscriber.subscribe("com.example.big")
    publisher.publish("com.example.big", BIG, acknowledge=True)
    assert json_subscriber.events()[0][4] == BIG
    assert msgpack_subscriber.events() == []
    assert memory.realm().broker.undeliverable_events == 1


# -- empty URI components in pattern registrations and subscriptions --------------------------


@pytest.mark.parametrize("uri", ["com..example", "com.example..", ".com"])
def test_prefix_registration_and_subscription_may_have_empty_components(uri):
    memory = Memory()
    callee = memory.join()
    callee.register(uri, match="prefix")
    callee.subscribe(uri, match="prefix")


@pytest.mark.parametrize("uri", ["com.example.", "com."])
def test_prefix_ending_in_a_dot_matches_the_uris_under_it(uri):
    memory = Memory()
    callee, caller = memory.join(), memory.join()
    callee.register(uri, match="prefix")
    callee.subscribe(uri, match="prefix")
    concrete = uri + "x"
    caller.call(concrete)
    assert callee.invocations()[0][3] == {"procedure": concrete}
    caller.publish(concrete)
    assert callee.events()[0][3] == {"topic": concrete}


@pytest.mark.parametrize("uri", ["com.example.", ".example.x", "com..x."])
def test_wildcard_registration_may_end_in_an_empty_component(uri):
    memory = Memory()
    callee = memory.join()
    callee.register(uri, match="wildcard")
    callee.subscribe(uri, match="wildcard")


@pytest.mark.parametrize("uri", ["com.example.", "com..example", ".com"])
def test_exact_registration_and_subscription_still_refuse_empty_components(uri):
    memory = Memory()
    session = memory.join()
    session.send_raw([REGISTER, 1, {}, uri])
    session.send_raw([SUBSCRIBE, 2, {}, uri])
    assert session.error_of(REGISTER, 1)[4] == "wamp.error.invalid_uri"
    assert session.error_of(SUBSCRIBE, 2)[4] == "wamp.error.invalid_uri"


def test_publish_to_a_uri_with_an_empty_component_is_refused():
    memory = Memory()
    session = memory.join()
    session.send_raw([PUBLISH, 1, {"acknowledge": True}, "com.example."])
    assert session.error_of(PUBLISH, 1)[4] == "wamp.error.invalid_uri"
