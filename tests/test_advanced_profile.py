"""The rest of the advanced profile, routed in memory (a router on a Clock, in-memory peers):
progressive results under a call timeout, integers beyond 64 bits, prefix and wildcard URIs
with empty components, registration and subscription revocation, call rerouting, retention."""

from __future__ import annotations

import pytest

from promisifier.router.authz import Permission, RoleConfig
from promisifier.router.router_config import RealmConfig
from promisifier.wire.messages import (
    ABORT,
    CALL,
    CANCEL,
    ERROR,
    INTERRUPT,
    PUBLISH,
    REGISTER,
    RESULT,
    SUBSCRIBE,
    UNREGISTER,
    UNREGISTERED,
    UNSUBSCRIBED,
)
from tests.advanced_memory import ROLES, Memory

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


# -- registration and subscription revocation -------------------------------------------------

REVOCATION_ROLES = {
    **ROLES,
    "callee": {"features": {**ROLES["callee"]["features"], "registration_revocation": True}},
    "subscriber": {"features": {**ROLES["subscriber"]["features"], "subscription_revocation": True}},
}


def test_remove_callee_tells_a_callee_that_announced_revocation():
    memory = Memory()
    callee = memory.join(roles=REVOCATION_ROLES)
    other = memory.join(roles=REVOCATION_ROLES)
    admin = memory.join()
    registration_id = callee.register("com.example.shared", invoke="roundrobin")
    other.register("com.example.shared", invoke="roundrobin")
    call_id = admin.call(
        "wamp.registration.remove_callee", [registration_id, callee.session_id], {"reason": "moving endpoint"}
    )
    assert admin.answers_to(call_id) == [[RESULT, call_id, {}, [None]]]
    assert callee.of_type(UNREGISTERED) == [
        [UNREGISTERED, 0, {"registration": registration_id, "reason": "moving endpoint"}]
    ]
    assert other.of_type(UNREGISTERED) == []
    for _ in range(3):  # every call now goes to the other callee
        admin.call("com.example.shared")
    assert len(callee.invocations()) == 0 and len(other.invocations()) == 3


def test_remove_callee_without_revocation_feature_sends_nothing_and_deletes_the_registration():
    memory = Memory()
    callee, admin, watcher = memory.join(), memory.join(), memory.join()
    watcher.subscribe("wamp.registration.on_delete")
    registration_id = callee.register("com.example.p")
    call_id = admin.call("wamp.registration.remove_callee", [registration_id, callee.session_id])
    assert admin.answers_to(call_id)[0][0] == RESULT
    assert callee.of_type(UNREGISTERED) == []
    assert watcher.events()[0][4] == [callee.session_id, registration_id]
    request_id = admin.call("com.example.p")
    assert admin.answers_to(request_id)[0][4] == "wamp.error.no_such_procedure"
    # the callee's own UNREGISTER of the revoked registration is an error now
    callee.send_raw([UNREGISTER, 99, registration_id])
    assert callee.error_of(UNREGISTER, 99)[4] == "wamp.error.no_such_registration"


def test_remove_callee_keeps_calls_in_flight():
    memory = Memory()
    callee, caller, admin = memory.join(roles=REVOCATION_ROLES), memory.join(), memory.join()
    registration_id = callee.register("com.example.slow")
    request_id = caller.call("com.example.slow")
    admin.call("wamp.registration.remove_callee", [registration_id, callee.session_id])
    callee.yield_(callee.invocations()[0][1], ["late but fine"])
    assert caller.answers_to(request_id) == [[RESULT, request_id, {}, ["late but fine"]]]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ([], "wamp.error.no_such_registration"),
        ([1], "wamp.error.no_such_registration"),
        ("registration,admin", "wamp.error.no_such_session"),
        ("registration,nobody", "wamp.error.no_such_session"),
        ("registration,callee,7", "wamp.error.invalid_argument"),
    ],
)
def test_remove_callee_errors(args, error):
    memory = Memory()
    callee, admin = memory.join(), memory.join()
    registration_id = callee.register("com.example.p")
    if isinstance(args, str):
        names = {"registration": registration_id, "admin": admin.session_id, "callee": callee.session_id}
        args = [names.get(name, 7 if name == "7" else 12345) for name in args.split(",")]
    call_id = admin.call("wamp.registration.remove_callee", args)
    assert admin.answers_to(call_id)[0][4] == error
    assert memory.realm().dealer.registration(registration_id) is not None


def test_remove_subscriber_tells_a_subscriber_that_announced_revocation():
    memory = Memory()
    told = memory.join(roles=REVOCATION_ROLES)
    silent = memory.join()
    stays = memory.join()
    admin = memory.join()
    subscription_id = told.subscribe("com.example.topic")
    silent.subscribe("com.example.topic")
    stays.subscribe("com.example.topic")
    for session in (told, silent):
        call_id = admin.call(
            "wamp.subscription.remove_subscriber",
            [subscription_id, session.session_id],
            {"reason": "no longer authorized"},
        )
        assert admin.answers_to(call_id)[0][0] == RESULT
    assert told.of_type(UNSUBSCRIBED) == [
        [UNSUBSCRIBED, 0, {"subscription": subscription_id, "reason": "no longer authorized"}]
    ]
    assert silent.of_type(UNSUBSCRIBED) == []
    admin.publish("com.example.topic", [1])
    assert told.events() == [] and silent.events() == [] and len(stays.events()) == 1
    call_id = admin.call("wamp.subscription.remove_subscriber", [subscription_id, told.session_id])
    assert admin.answers_to(call_id)[0][4] == "wamp.error.no_such_session"


def test_revocation_is_authorized_like_other_meta_procedures():
    memory = Memory(
        RealmConfig(
            "realm1",
            roles=(RoleConfig("anonymous", (Permission("com.example.", match="prefix", call=True, register=True),)),),
        )
    )
    callee, admin = memory.join(), memory.join()
    registration_id = callee.register("com.example.p")
    call_id = admin.call("wamp.registration.remove_callee", [registration_id, callee.session_id])
    assert admin.answers_to(call_id)[0][4] == "wamp.error.not_authorized"
    assert memory.realm().dealer.registration(registration_id).callees


# -- call rerouting ----------------------------------------------------------------------------

UNAVAILABLE = "wamp.error.unavailable"


def shared(memory, invoke, count=3):
    callees = [memory.join() for _ in range(count)]
    for callee in callees:
        callee.register("com.example.shared", invoke=invoke)
    return callees


def invoked(callees):
    return [len(callee.invocations()) for callee in callees]


@pytest.mark.parametrize(
    ("invoke", "first", "then"),
    [("first", 0, 1), ("roundrobin", 0, 1), ("last", 2, 1)],
)
def test_unavailable_callee_reroutes_the_call(invoke, first, then):
    memory = Memory()
    callees = shared(memory, invoke)
    caller = memory.join()
    request_id = caller.call("com.example.shared", [1, 2], {"k": "v"}, disclose_me=True)
    invocation = callees[first].invocations()[0]
    callees[first].error(invocation[1], UNAVAILABLE)
    rerouted = callees[then].invocations()
    assert len(rerouted) == 1
    assert rerouted[0][3]["caller"] == caller.session_id
    assert rerouted[0][4:] == [[1, 2], {"k": "v"}]
    assert caller.answers_to(request_id) == []
    callees[then].yield_(rerouted[0][1], ["from the next callee"])
    assert caller.answers_to(request_id) == [[RESULT, request_id, {}, ["from the next callee"]]]
    assert memory.router.state_counts()["pending_calls"] == 0


@pytest.mark.parametrize("invoke", ["first", "roundrobin", "last", "random"])
def test_every_callee_unavailable_is_no_available_callee(invoke):
    memory = Memory()
    callees = shared(memory, invoke)
    caller = memory.join()
    request_id = caller.call("com.example.shared")
    answered: list = []
    for _ in callees:
        (busy,) = [c for c in callees if c.invocations() and c not in answered]
        busy.error(busy.invocations()[-1][1], UNAVAILABLE)
        answered.append(busy)
    assert invoked(callees) == [1, 1, 1]
    answer = caller.answers_to(request_id)
    assert len(answer) == 1 and answer[0][4] == "wamp.error.no_available_callee"
    assert memory.router.state_counts()["pending_calls"] == 0


def test_single_registration_unavailable_is_no_available_callee():
    memory = Memory()
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.single")
    request_id = caller.call("com.example.single")
    callee.error(callee.invocations()[0][1], UNAVAILABLE)
    assert caller.answers_to(request_id)[0][4] == "wamp.error.no_available_callee"


def test_roundrobin_reroute_goes_round_the_queue():
    memory = Memory()
    callees = shared(memory, "roundrobin")
    caller = memory.join()
    caller.call("com.example.shared")  # to 0
    caller.call("com.example.shared")  # to 1
    request_id = caller.call("com.example.shared")  # to 2
    callees[2].error(callees[2].invocations()[0][1], UNAVAILABLE)
    assert invoked(callees) == [2, 1, 1]  # round to the first
    callees[0].yield_(callees[0].invocations()[-1][1], ["ok"])
    assert caller.answers_to(request_id)[-1][3] == ["ok"]


def test_rerouted_call_keeps_its_timeout_deadline():
    memory = Memory()
    callees = shared(memory, "first", 2)
    caller = memory.join()
    request_id = caller.call("com.example.shared", timeout=1000)
    memory.advance(0.6)
    callees[0].error(callees[0].invocations()[0][1], UNAVAILABLE)
    memory.advance(0.3)
    assert caller.answers_to(request_id) == []
    memory.advance(0.11)
    assert caller.answers_to(request_id)[0][4] == "wamp.error.timeout"
    assert callees[1].of_type(INTERRUPT)[0][1] == callees[1].invocations()[0][1]


def test_cancel_of_a_rerouted_call_interrupts_the_new_callee():
    memory = Memory()
    callees = shared(memory, "first", 2)
    caller = memory.join()
    request_id = caller.call("com.example.shared")
    callees[0].error(callees[0].invocations()[0][1], UNAVAILABLE)
    caller.send_raw([CANCEL, request_id, {"mode": "killnowait"}])
    assert callees[1].of_type(INTERRUPT)[0][1] == callees[1].invocations()[0][1]
    assert callees[0].of_type(INTERRUPT) == []
    assert caller.answers_to(request_id)[0][4] == "wamp.error.canceled"


# -- event retention: the last event this subscriber was eligible for --------------------------


def retained_args(session):
    return [event[4] for event in session.events() if event[3].get("retained")]


def test_retained_event_is_the_last_one_the_subscriber_was_eligible_for():
    memory = Memory()
    publisher, alice, bob = memory.join(), memory.join(), memory.join()
    publisher.publish("com.example.t", ["for everyone"], retain=True)
    publisher.publish("com.example.t", ["for alice"], retain=True, eligible=[alice.session_id])
    publisher.publish("com.example.t", ["not for bob"], retain=True, exclude=[bob.session_id])
    alice.subscribe("com.example.t", get_retained=True)
    bob.subscribe("com.example.t", get_retained=True)
    newcomer = memory.join()
    newcomer.subscribe("com.example.t", get_retained=True)
    assert retained_args(alice) == [["not for bob"]]
    assert retained_args(bob) == [["for everyone"]]
    assert retained_args(newcomer) == [["not for bob"]]


def test_a_retained_event_for_everyone_replaces_the_limited_ones():
    memory = Memory()
    publisher, alice = memory.join(), memory.join()
    publisher.publish("com.example.t", ["for alice"], retain=True, eligible=[alice.session_id])
    publisher.publish("com.example.t", ["for everyone"], retain=True)
    alice.subscribe("com.example.t", get_retained=True)
    assert retained_args(alice) == [["for everyone"]]
    realm = memory.realm()
    assert len(realm.broker._retained["com.example.t"]) == 1


def test_a_subscriber_eligible_for_no_retained_event_gets_none():
    memory = Memory()
    publisher, alice, bob = memory.join(), memory.join(), memory.join()
    publisher.publish("com.example.t", ["for alice"], retain=True, eligible=[alice.session_id])
    bob.subscribe("com.example.t", get_retained=True)
    pattern = memory.join()
    pattern.subscribe("com.example", match="prefix", get_retained=True)
    assert retained_args(bob) == [] and retained_args(pattern) == []


def test_the_publisher_that_excluded_itself_does_not_get_its_retained_event():
    memory = Memory()
    publisher = memory.join()
    publisher.publish("com.example.t", ["mine"], retain=True)
    publisher.publish("com.example.u", ["mine too"], retain=True, exclude_me=False)
    publisher.subscribe("com.example.t", get_retained=True)
    publisher.subscribe("com.example.u", get_retained=True)
    assert retained_args(publisher) == [["mine too"]]


def test_limited_retained_events_per_topic_are_bounded():
    from promisifier.router.broker import MAX_LIMITED_RETAINED

    memory = Memory()
    publisher, alice = memory.join(), memory.join()
    publisher.publish("com.example.t", ["base"], retain=True)
    for n in range(MAX_LIMITED_RETAINED + 5):
        publisher.publish("com.example.t", [n], retain=True, eligible=[alice.session_id])
    kept = memory.realm().broker._retained["com.example.t"]
    assert len(kept) == MAX_LIMITED_RETAINED + 1
    assert kept[0].payload == [["base"]]
    bob = memory.join()
    bob.subscribe("com.example.t", get_retained=True)
    assert retained_args(bob) == [["base"]]


# -- progressive call invocations ----------------------------------------------------------------

STREAMING_ROLES = {
    **ROLES,
    "caller": {"features": {**ROLES["caller"]["features"], "progressive_call_invocations": True}},
    "callee": {"features": {**ROLES["callee"]["features"], "progressive_call_invocations": True}},
}


def stream_chunks(caller, procedure, chunks, request_id=None, **options):
    """CALLs with one request id: every chunk but the last with progress."""
    request_id = request_id if request_id is not None else caller.request_id()
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        chunk_options = dict(options) if index == 0 else {}
        if not last:
            chunk_options["progress"] = True
        caller.send_raw([CALL, request_id, chunk_options, procedure, [chunk]])
    return request_id


def test_progressive_invocations_reach_one_callee_under_one_invocation_id():
    memory = Memory()
    callees = [memory.join(roles=STREAMING_ROLES) for _ in range(2)]
    for callee in callees:
        callee.register("com.example.upload", invoke="roundrobin")
    caller = memory.join(roles=STREAMING_ROLES)
    request_id = stream_chunks(caller, "com.example.upload", ["a", "b", "c"], receive_progress=True)
    invocations = callees[0].invocations()
    assert callees[1].invocations() == []
    assert [i[4] for i in invocations] == [["a"], ["b"], ["c"]]
    assert len({i[1] for i in invocations}) == 1
    assert invocations[0][3] == {"receive_progress": True, "progress": True}
    assert [i[3] for i in invocations[1:]] == [{"progress": True}, {}]
    callees[0].yield_(invocations[0][1], ["got a"], progress=True)
    callees[0].yield_(invocations[0][1], ["abc"])
    assert caller.answers_to(request_id) == [
        [RESULT, request_id, {"progress": True}, ["got a"]],
        [RESULT, request_id, {}, ["abc"]],
    ]
    assert memory.router.state_counts()["pending_calls"] == 0


def test_chunks_after_the_callee_answered_are_discarded():
    memory = Memory()
    callee, caller = memory.join(roles=STREAMING_ROLES), memory.join(roles=STREAMING_ROLES)
    callee.register("com.example.upload")
    stream_chunks(caller, "com.example.upload", ["a", "b"], request_id=1)  # "b" is the last chunk
    callee.yield_(callee.invocations()[0][1], ["done"])
    request_id = 2
    caller.send_raw([CALL, request_id, {"progress": True}, "com.example.upload", ["1"]])
    invocation_id = callee.invocations()[-1][1]
    callee.error(invocation_id, "com.example.error.full")
    caller.send_raw([CALL, request_id, {"progress": True}, "com.example.upload", ["2"]])
    caller.send_raw([CALL, request_id, {}, "com.example.upload", ["3"]])
    assert [i[4] for i in callee.invocations()] == [["a"], ["b"], ["1"]]
    assert [a[0] for a in caller.answers_to(request_id)] == [ERROR]
    assert caller.session.state.value == "established"


def test_cancel_during_an_invocation_stream_interrupts_the_callee():
    memory = Memory()
    callee, caller = memory.join(roles=STREAMING_ROLES), memory.join(roles=STREAMING_ROLES)
    callee.register("com.example.upload")
    request_id = caller.request_id()
    caller.send_raw([CALL, request_id, {"progress": True}, "com.example.upload", ["a"]])
    caller.send_raw([CANCEL, request_id, {"mode": "killnowait"}])
    assert callee.of_type(INTERRUPT)[0][1] == callee.invocations()[0][1]
    assert caller.answers_to(request_id)[0][4] == "wamp.error.canceled"
    caller.send_raw([CALL, request_id, {}, "com.example.upload", ["late"]])
    assert len(callee.invocations()) == 1


def test_timeout_during_an_invocation_stream():
    memory = Memory()
    callee, caller = memory.join(roles=STREAMING_ROLES), memory.join(roles=STREAMING_ROLES)
    callee.register("com.example.upload")
    request_id = caller.request_id()
    caller.send_raw([CALL, request_id, {"progress": True, "timeout": 500}, "com.example.upload", ["a"]])
    memory.advance(0.3)
    caller.send_raw([CALL, request_id, {"progress": True}, "com.example.upload", ["b"]])
    memory.advance(0.21)
    assert caller.answers_to(request_id)[0][4] == "wamp.error.timeout"
    assert callee.of_type(INTERRUPT)[0][2]["reason"] == "wamp.error.timeout"
    caller.send_raw([CALL, request_id, {}, "com.example.upload", ["late"]])
    assert len(callee.invocations()) == 2


def test_caller_leaving_during_an_invocation_stream_interrupts_the_callee():
    memory = Memory()
    callee, caller = memory.join(roles=STREAMING_ROLES), memory.join(roles=STREAMING_ROLES)
    callee.register("com.example.upload")
    caller.send_raw([CALL, 1, {"progress": True}, "com.example.upload", ["a"]])
    caller.drop()
    assert callee.of_type(INTERRUPT)[0][2] == {"mode": "killnowait", "reason": "wamp.error.canceled"}
    assert memory.router.state_counts()["pending_calls"] == 0


def test_callee_without_the_feature_gets_no_stream():
    memory = Memory()
    callee, caller = memory.join(), memory.join(roles=STREAMING_ROLES)
    callee.register("com.example.upload")
    caller.send_raw([CALL, 1, {"progress": True}, "com.example.upload", ["a"]])
    assert callee.invocations() == []
    assert caller.answers_to(1)[0][4] == "wamp.error.feature_not_supported"


def test_a_caller_streaming_without_announcing_the_feature_is_served_like_wampy_js():
    memory = Memory()
    callee, caller = memory.join(roles=STREAMING_ROLES), memory.join()
    callee.register("com.example.upload")
    stream_chunks(caller, "com.example.upload", ["a", "b"], request_id=1)
    assert [i[4] for i in callee.invocations()] == [["a"], ["b"]]
    assert caller.closed_with is None


def test_a_call_reusing_the_request_id_of_a_plain_call_in_flight_is_a_protocol_violation():
    memory = Memory()
    callee, caller = memory.join(roles=STREAMING_ROLES), memory.join(roles=STREAMING_ROLES)
    callee.register("com.example.p")
    caller.send_raw([CALL, 1, {}, "com.example.p"])
    caller.send_raw([CALL, 1, {}, "com.example.p"])
    assert caller.of_type(ABORT)[0][2] == "wamp.error.protocol_violation"


# -- WELCOME ---------------------------------------------------------------------------------------


def test_welcome_announces_every_feature_of_the_advanced_profile_implemented():
    memory = Memory()
    session = memory.connect()
    session.join("realm1", ROLES)
    roles = session.of_type(2)[0][2]["roles"]
    assert {name for name, on in roles["dealer"]["features"].items() if on} == {
        "progressive_call_results",
        "progressive_call_invocations",
        "call_timeout",
        "call_canceling",
        "caller_identification",
        "shared_registration",
        "pattern_based_registration",
        "registration_revocation",
        "call_reroute",
        "payload_passthru_mode",
        "session_meta_api",
        "registration_meta_api",
        "testament_meta_api",
    }
    assert {name for name, on in roles["broker"]["features"].items() if on} == {
        "publisher_identification",
        "publisher_exclusion",
        "subscriber_blackwhite_listing",
        "pattern_based_subscription",
        "event_retention",
        "event_history",
        "subscription_revocation",
        "payload_passthru_mode",
        "session_meta_api",
        "subscription_meta_api",
        "testament_meta_api",
    }


def test_readme_names_every_feature_welcome_announces():
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    memory = Memory()
    session = memory.connect()
    session.join("realm1", ROLES)
    roles = session.of_type(2)[0][2]["roles"]
    announced = {name for role in ("dealer", "broker") for name in roles[role]["features"]}
    assert sorted(name for name in announced if f"`{name}`" not in readme) == []
