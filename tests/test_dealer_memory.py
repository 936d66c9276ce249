"""The dealer, driven in memory (tests/memory_router.py): progressive results, call timeout,
call canceling (skip, kill, killnowait; realm option ``cancel_reply``), caller
identification, shared and pattern-based registrations, bad options, and the races where a
call could end twice, each interleaving made certain on a fake clock.

Every test ends with every session gone and ``router.state_counts()`` all zeros.
"""

from __future__ import annotations

import pytest

from promisifier.router import RouterConfig
from promisifier.router.router_config import RealmConfig
from promisifier.wire.messages import CALL, CANCEL, ERROR, INTERRUPT, INVOCATION, REGISTER, RESULT, WELCOME
from tests.memory_router import ROLES_WITHOUT_CANCELING, MemoryClient, MemoryRouter

#: realm answering CANCEL in modes skip/killnowait with ERROR at once (the spec)
REALM = "realm1"
#: realm answering CANCEL only in mode kill (safe for autobahn-js callers)
KILL_ONLY_REALM = "killonly"


@pytest.fixture
def memory() -> MemoryRouter:
    config = RouterConfig(realms=(RealmConfig(REALM), RealmConfig(KILL_ONLY_REALM, cancel_reply="kill_only")))
    memory = MemoryRouter(config)
    yield memory
    memory.assert_idle()


def pending(memory: MemoryRouter) -> int:
    return memory.state_counts()["pending_calls"]


def invoked(callee: MemoryClient, procedure_args: list | None = None) -> int:
    """The id of the last INVOCATION the callee got."""
    invocations = callee.invocations()
    assert invocations, "no INVOCATION"
    if procedure_args is not None:
        assert invocations[-1][4] == procedure_args
    return invocations[-1][1]


def test_welcome_announces_dealer_features(memory):
    client = memory.connect()
    client.join()
    welcome = client.one(WELCOME)
    features = welcome[2]["roles"]["dealer"]["features"]
    for feature in (
        "progressive_call_results",
        "call_timeout",
        "call_canceling",
        "caller_identification",
        "shared_registration",
        "pattern_based_registration",
        "session_meta_api",
        "registration_meta_api",
        "testament_meta_api",
    ):
        assert features.get(feature) is True, feature


# -- progressive call results ------------------------------------------------------------------


def test_progressive_results_in_order_then_the_final_one(memory):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.stream")
    request_id = caller.call("com.example.stream", [3], receive_progress=True)
    invocation = callee.invocations()[-1]
    assert invocation[3] == {"receive_progress": True}
    for i in range(3):
        callee.yield_(invocation[1], [i], {"tenth": i / 10}, progress=True)
    callee.yield_(invocation[1], ["done"], {"total": 3})
    assert caller.answers_to(request_id) == [
        [RESULT, request_id, {"progress": True}, [0], {"tenth": 0.0}],
        [RESULT, request_id, {"progress": True}, [1], {"tenth": 0.1}],
        [RESULT, request_id, {"progress": True}, [2], {"tenth": 0.2}],
        [RESULT, request_id, {}, ["done"], {"total": 3}],
    ]
    # a call without receive_progress: the callee is not asked for progress
    caller.call("com.example.stream")
    assert "receive_progress" not in callee.invocations()[-1][3]
    callee.yield_(invoked(callee))


def test_nothing_reaches_the_caller_after_the_final_result(memory):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.stream")
    request_id = caller.call("com.example.stream", receive_progress=True)
    invocation_id = invoked(callee)
    callee.yield_(invocation_id, ["early"], progress=True)
    callee.yield_(invocation_id, ["final"])
    # a late progressive YIELD and a second final one for the finished invocation: dropped
    callee.yield_(invocation_id, ["late"], progress=True)
    callee.yield_(invocation_id, ["again"])
    callee.error(invocation_id, "com.example.error.late")
    assert [answer[2] for answer in caller.answers_to(request_id)] == [{"progress": True}, {}]
    assert caller.open and callee.open
    assert pending(memory) == 0


def test_progress_is_dropped_when_the_caller_did_not_ask(memory):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.slow")
    request_id = caller.call("com.example.slow")
    invocation_id = invoked(callee)
    callee.yield_(invocation_id, ["unasked"], progress=True)
    callee.yield_(invocation_id, ["final"])
    assert caller.answers_to(request_id) == [[RESULT, request_id, {}, ["final"]]]


def test_progressive_results_with_a_callee_without_call_canceling(memory):
    # autobahn-js callees never announce call_canceling; receive_progress still reaches them
    callee, caller = memory.join(roles=ROLES_WITHOUT_CANCELING), memory.join()
    callee.register("com.example.stream")
    request_id = caller.call("com.example.stream", receive_progress=True)
    invocation = callee.invocations()[-1]
    assert invocation[3].get("receive_progress") is True
    callee.yield_(invocation[1], [1], progress=True)
    callee.yield_(invocation[1], [2], progress=True)
    callee.yield_(invocation[1], ["three"])
    assert [answer[3] for answer in caller.answers_to(request_id)] == [[1], [2], ["three"]]


# -- call timeout -----------------------------------------------------------------------------


def test_call_timeout_is_in_milliseconds_and_interrupts_the_callee(memory):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.slow")
    request_id = caller.call("com.example.slow", timeout=150)
    invocation_id = invoked(callee)
    memory.advance(0.149)
    assert caller.answers_to(request_id) == [] and pending(memory) == 1
    memory.advance(0.001)
    [error] = caller.finals_of(request_id)
    assert error[:5] == [ERROR, CALL, request_id, {}, "wamp.error.timeout"]
    # the callee announced call_canceling: it gets INTERRUPT (killnowait, reason timeout)
    assert callee.of_type(INTERRUPT) == [
        [INTERRUPT, invocation_id, {"mode": "killnowait", "reason": "wamp.error.timeout"}]
    ]
    # its answer to the INTERRUPT is dropped
    callee.error(invocation_id, "wamp.error.canceled")
    assert len(caller.answers_to(request_id)) == 1
    assert pending(memory) == 0


def test_call_timeout_without_interrupt_for_a_callee_without_call_canceling(memory):
    callee, caller = memory.join(roles=ROLES_WITHOUT_CANCELING), memory.join()
    callee.register("com.example.slow")
    request_id = caller.call("com.example.slow", timeout=100)
    invocation_id = invoked(callee)
    memory.advance(0.1)
    assert caller.finals_of(request_id)[0][4] == "wamp.error.timeout"
    assert callee.of_type(INTERRUPT) == []
    # the callee answers late: the router drops the YIELD
    callee.yield_(invocation_id, ["late"])
    assert len(caller.answers_to(request_id)) == 1
    assert caller.open and callee.open


def test_call_timeout_ends_a_streaming_call(memory):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.stream")
    request_id = caller.call("com.example.stream", receive_progress=True, timeout=100)
    invocation_id = invoked(callee)
    callee.yield_(invocation_id, ["first"], progress=True)
    memory.advance(0.1)
    assert len(callee.of_type(INTERRUPT)) == 1
    callee.yield_(invocation_id, ["after the timeout"], progress=True)
    answers = caller.answers_to(request_id)
    assert [answer[0] for answer in answers] == [RESULT, ERROR]
    assert answers[0][3] == ["first"]


def test_call_answered_in_time_cancels_the_timer_and_timeout_zero_is_none(memory):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.slow")
    caller.call("com.example.slow", timeout=10000)
    assert len(memory.clock.getDelayedCalls()) == 1
    callee.yield_(invoked(callee), ["in time"])
    assert memory.clock.getDelayedCalls() == []  # the router's timer went with the call

    request_id = caller.call("com.example.slow", timeout=0)
    assert memory.clock.getDelayedCalls() == []
    memory.advance(3600)
    assert caller.answers_to(request_id) == []
    callee.yield_(invoked(callee), ["no timeout"])
    assert caller.finals_of(request_id)[0][3] == ["no timeout"]


# -- call canceling ---------------------------------------------------------------------------


def test_cancel_without_mode_is_killnowait(memory):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.slow")
    request_id = caller.call("com.example.slow", [1])
    invocation_id = invoked(callee)
    caller.send_raw([CANCEL, request_id, {}])
    # ERROR to the caller at once, INTERRUPT to the callee, whose answer is dropped
    assert caller.finals_of(request_id)[0][4] == "wamp.error.canceled"
    assert callee.of_type(INTERRUPT) == [
        [INTERRUPT, invocation_id, {"mode": "killnowait", "reason": "wamp.error.canceled"}]
    ]
    callee.error(invocation_id, "com.example.error.interrupted")
    assert len(caller.answers_to(request_id)) == 1
    assert pending(memory) == 0


@pytest.mark.parametrize("realm", [REALM, KILL_ONLY_REALM], ids=["always", "kill_only"])
@pytest.mark.parametrize("mode", ["skip", "kill", "killnowait"])
def test_cancel_modes(memory, mode, realm):
    callee, caller = memory.join(realm), memory.join(realm)
    callee.register("com.example.slow")
    request_id = caller.call("com.example.slow")
    invocation_id = invoked(callee)
    caller.send_raw([CANCEL, request_id, {"mode": mode}])

    if mode == "kill":
        # INTERRUPT to the callee; no ERROR for the caller until the callee has answered
        assert callee.of_type(INTERRUPT) == [
            [INTERRUPT, invocation_id, {"mode": "kill", "reason": "wamp.error.canceled"}]
        ]
        assert caller.answers_to(request_id) == [] and pending(memory) == 1
        callee.error(invocation_id, "com.example.error.interrupted")
        assert caller.finals_of(request_id)[0][4] == "com.example.error.interrupted"
    else:
        if realm == REALM:
            error = caller.finals_of(request_id)[0]  # at once, before the callee answers
            assert error[4] == "wamp.error.canceled" and mode in error[5][0]
        else:
            assert caller.answers_to(request_id) == []  # kill_only: no ERROR for skip / killnowait
        assert pending(memory) == 0
        if mode == "killnowait":
            assert callee.of_type(INTERRUPT) == [
                [INTERRUPT, invocation_id, {"mode": "killnowait", "reason": "wamp.error.canceled"}]
            ]
            callee.error(invocation_id, "com.example.error.interrupted")  # dropped by the router
        else:
            assert callee.of_type(INTERRUPT) == []
            callee.yield_(invocation_id, ["skipped"])  # the late YIELD is dropped by the router
    expected = 0 if realm == KILL_ONLY_REALM and mode != "kill" else 1
    assert len(caller.answers_to(request_id)) == expected
    assert caller.open and callee.open
    # one more CANCEL: the router has nothing left to cancel, and says nothing
    caller.send_raw([CANCEL, request_id, {}])
    assert len(caller.answers_to(request_id)) == expected


def test_cancel_kill_the_callee_may_still_answer_with_a_result(memory):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.slow")
    request_id = caller.call("com.example.slow")
    invocation_id = invoked(callee)
    caller.send_raw([CANCEL, request_id, {"mode": "kill"}])
    assert len(callee.of_type(INTERRUPT)) == 1
    callee.yield_(invocation_id, ["finished first"])  # the answer beats the INTERRUPT
    assert caller.answers_to(request_id) == [[RESULT, request_id, {}, ["finished first"]]]
    callee.error(invocation_id, "com.example.error.interrupted")  # its late answer to the INTERRUPT
    assert len(caller.answers_to(request_id)) == 1


@pytest.mark.parametrize(
    ("mode", "realm"),
    [("kill", REALM), ("killnowait", REALM), ("kill", KILL_ONLY_REALM)],
    ids=["kill", "killnowait", "kill-kill_only"],
)
def test_cancel_with_a_callee_without_call_canceling_is_skip(memory, mode, realm):
    callee, caller = memory.join(realm, roles=ROLES_WITHOUT_CANCELING), memory.join(realm)
    callee.register("com.example.slow")
    request_id = caller.call("com.example.slow")
    invocation_id = invoked(callee)
    caller.send_raw([CANCEL, request_id, {"mode": mode}])
    assert caller.finals_of(request_id)[0][4] == "wamp.error.canceled"  # at once: nobody to wait for
    assert callee.of_type(INTERRUPT) == []  # never INTERRUPT to such a callee
    callee.yield_(invocation_id, ["late"])
    assert len(caller.answers_to(request_id)) == 1
    assert callee.open


def test_cancel_with_a_bad_mode_ends_the_call_with_invalid_argument(memory):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.slow")
    request_id = caller.call("com.example.slow")
    caller.send_raw([CANCEL, request_id, {"mode": "bogus"}])
    error = caller.finals_of(request_id)[0]
    assert error[4] == "wamp.error.invalid_argument" and "'mode'" in error[5][0]
    assert callee.of_type(INTERRUPT)[0][2]["mode"] == "killnowait"
    # a CANCEL with a bad mode for a call that is no longer running: nothing to answer
    caller.send_raw([CANCEL, request_id, {"mode": "bogus"}])
    assert len(caller.answers_to(request_id)) == 1 and caller.open and callee.open


# -- caller identification ----------------------------------------------------------------------


def test_caller_identification_with_disclose_me(memory):
    callee, caller, other = memory.join(), memory.join(), memory.join()
    caller.session.authid, caller.session.authrole = "alice", "frontend"
    callee.register("com.example.who")
    caller.call("com.example.who", disclose_me=True)
    other.call("com.example.who")
    details = [invocation[3] for invocation in callee.invocations()]
    assert details == [{"caller": caller.session_id, "caller_authid": "alice", "caller_authrole": "frontend"}, {}]
    for invocation in callee.invocations():
        callee.yield_(invocation[1])


def test_caller_identification_with_disclose_caller_on_register(memory):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.who", disclose_caller=True)
    caller.call("com.example.who")
    assert callee.invocations()[-1][3] == {
        "caller": caller.session_id,
        "caller_authid": caller.session.authid,
        "caller_authrole": "anonymous",
    }
    callee.yield_(invoked(callee))


# -- shared registrations -----------------------------------------------------------------------


def answer_all(callees: dict[str, MemoryClient]) -> None:
    """Every callee answers each INVOCATION it has with its own name."""
    for name, callee in callees.items():
        for invocation in callee.take(INVOCATION):
            callee.yield_(invocation[1], [name])


@pytest.mark.parametrize("policy", ["roundrobin", "random", "first", "last"])
def test_shared_registration_invoke_policies(memory, policy):
    callees = {name: memory.join() for name in "abc"}
    registration_ids = {callee.register("com.example.shared", invoke=policy) for callee in callees.values()}
    assert len(registration_ids) == 1  # one shared registration
    caller = memory.join()
    count = 60 if policy == "random" else 9
    answers = []
    for _ in range(count):
        request_id = caller.call("com.example.shared")
        answer_all(callees)
        answers.append(caller.finals_of(request_id)[0][3][0])
    if policy == "roundrobin":
        assert answers == list("abc" * 3)
    elif policy == "random":
        # each callee misses all 60 calls with probability (2/3)^60, about 3e-11
        assert set(answers) == {"a", "b", "c"}
    elif policy == "first":
        assert answers == ["a"] * count
        # hot stand-by: the first callee goes, the next one takes over
        callees.pop("a").leave()
        request_id = caller.call("com.example.shared")
        answer_all(callees)
        assert caller.finals_of(request_id)[0][3] == ["b"]
    else:
        assert answers == ["c"] * count
        callees["c"].unregister(registration_ids.pop())
        request_id = caller.call("com.example.shared")
        answer_all(callees)
        assert caller.finals_of(request_id)[0][3] == ["b"]


def register_error(client: MemoryClient, procedure: str, **options) -> str:
    request_id = client.next_request_id()
    client.send_raw([REGISTER, request_id, options, procedure])
    error = client.error_of(REGISTER, request_id)
    assert error is not None, client.last()
    return error[4]


def test_shared_registration_refusals(memory):
    a, b, caller = memory.join(), memory.join(), memory.join()
    # single (the default): nobody else may join
    a.register("com.example.single")
    assert register_error(b, "com.example.single") == "wamp.error.procedure_already_exists"
    assert register_error(b, "com.example.single", invoke="roundrobin") == "wamp.error.procedure_already_exists"
    # shared: another policy is refused, the same policy accepted
    a.register("com.example.shared", invoke="roundrobin")
    for policy in ("random", "first", "last", "single"):
        assert register_error(b, "com.example.shared", invoke=policy) == "wamp.error.procedure_already_exists"
    b.register("com.example.shared", invoke="roundrobin")
    # the same session registering the same URI and match twice
    assert register_error(a, "com.example.shared", invoke="roundrobin") == "wamp.error.procedure_already_exists"
    # nobody was dropped, everything still routes
    assert a.open and b.open
    request_id = caller.call("com.example.single")
    answer_all({"a": a, "b": b})
    assert caller.finals_of(request_id)[0][3] == ["a"]
    answers = []
    for _ in range(4):
        request_id = caller.call("com.example.shared")
        answer_all({"a": a, "b": b})
        answers.append(caller.finals_of(request_id)[0][3][0])
    assert answers == ["a", "b", "a", "b"]
    assert memory.realm().dealer.lookup("com.example.shared").callees == [a.session, b.session]


# -- pattern-based registrations --------------------------------------------------------------------


def route(caller: MemoryClient, callee: MemoryClient, uri: str, numbers: dict[int, int]) -> object:
    """Call ``uri``; the number of the registration it reached, or the ERROR URI."""
    request_id = caller.call(uri)
    error = caller.error_of(CALL, request_id)
    if error is not None:
        return error[4]
    invocation = callee.take(INVOCATION)[-1]
    callee.yield_(invocation[1])
    return numbers[invocation[2]]


def test_pattern_registration_spec_examples(memory):
    callee, caller = memory.join(), memory.join()
    numbers = {}
    registration_ids = {}
    for number, (uri, match) in enumerate(
        [
            ("a1.b2.c3.d4.e55", "exact"),
            ("a1.b2.c3", "prefix"),
            ("a1.b2.c3.d4", "prefix"),
            ("a1.b2..d4.e5", "wildcard"),
            ("a1.b2.c33..e5", "wildcard"),
            ("a1.b2..d4.e5..g7", "wildcard"),
            ("a1.b2..d4..f6.g7", "wildcard"),
        ],
        start=1,
    ):
        registration_ids[number] = callee.register(uri, match=match)
        numbers[registration_ids[number]] = number
    # The spec's examples for "calls matching multiple registrations", except one: for
    # 'a1.b2.c33.d4.e5' the spec says "no prefix match, use RPC 5", but 'a1.b2.c3' is a
    # string prefix of it, and prefix matching is a plain string prefix as the spec's own
    # prose says ('com.myapp.myobject1-mysubobject1' matches the prefix
    # 'com.myapp.myobject1'). That call is made below, once RPC 2 is gone.
    for uri, expected in [
        ("a1.b2.c3.d4.e55", 1),
        ("a1.b2.c3.d98.e74", 2),
        ("a1.b2.c3.d4.e325", 3),
        ("a1.b2.c55.d4.e5", 4),
        ("a1.b2.c88.d4.e5.f6.g7", 6),
        ("a2.b2.c2.d2.e2", "wamp.error.no_such_procedure"),
    ]:
        assert route(caller, callee, uri, numbers) == expected, uri
    callee.unregister(registration_ids[2])
    request_id = caller.call("a1.b2.c33.d4.e5")
    invocation = callee.invocations()[-1]
    assert numbers[invocation[2]] == 5
    # INVOCATION.Details.procedure: the concrete URI for pattern registrations only
    assert invocation[3] == {"procedure": "a1.b2.c33.d4.e5"}
    callee.yield_(invocation[1])
    assert caller.finals_of(request_id)[0][0] == RESULT
    caller.call("a1.b2.c3.d4.e55")
    assert "procedure" not in callee.invocations()[-1][3]
    callee.yield_(invoked(callee))


def test_prefix_registration_is_a_string_prefix(memory):
    callee, caller = memory.join(), memory.join()
    prefix = callee.register("com.myapp.myobject1", match="prefix")
    numbers = {prefix: "prefix"}
    for uri in (
        "com.myapp.myobject1.myprocedure1",
        "com.myapp.myobject1-mysubobject1",
        "com.myapp.myobject1.mysubobject1.myprocedure1",
        "com.myapp.myobject1",
    ):
        assert route(caller, callee, uri, numbers) == "prefix", uri
    for uri in ("com.myapp.myobject2", "com.myapp.myobject"):
        assert route(caller, callee, uri, numbers) == "wamp.error.no_such_procedure"
    # the same URI registered exact and prefix: two registrations, exact wins for itself
    numbers[callee.register("com.myapp.myobject1")] = "exact"
    assert route(caller, callee, "com.myapp.myobject1", numbers) == "exact"
    assert route(caller, callee, "com.myapp.myobject1.x", numbers) == "prefix"


def test_wildcard_registration_spec_examples(memory):
    callee, caller = memory.join(), memory.join()
    numbers = {callee.register("com.myapp..myprocedure1", match="wildcard"): "wildcard"}
    for uri in ("com.myapp.myobject1.myprocedure1", "com.myapp.myobject2.myprocedure1"):
        assert route(caller, callee, uri, numbers) == "wildcard"
    for uri in (
        "com.myapp.myobject1.myprocedure1.mysubprocedure1",
        "com.myapp.myobject1.myprocedure2",
        "com.myapp2.myobject1.myprocedure1",
    ):
        assert route(caller, callee, uri, numbers) == "wamp.error.no_such_procedure"


def test_wildcard_registration_longest_portions_before_each_wildcard(memory):
    callee, caller = memory.join(), memory.join()
    numbers = {}
    for uri in ("a1.b2..d4.e5.f6.g7", "a1.b2..d4.e5..g7", "a1..c3.d4", "a1.b2..d4"):
        numbers[callee.register(uri, match="wildcard")] = uri
    # same first portion (a1.b2); the second portion runs to the end (d4.e5.f6.g7) for the
    # first pattern, only d4.e5 for the second: the first has the longer portions
    assert route(caller, callee, "a1.b2.c3.d4.e5.f6.g7", numbers) == "a1.b2..d4.e5.f6.g7"
    assert route(caller, callee, "a1.b2.c3.d4.e5.x6.g7", numbers) == "a1.b2..d4.e5..g7"
    # first portion a1.b2 beats a1
    assert route(caller, callee, "a1.b2.c3.d4", numbers) == "a1.b2..d4"
    assert route(caller, callee, "a1.x2.c3.d4", numbers) == "a1..c3.d4"


# -- bad options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"timeout": "100"}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"receive_progress": "yes"}, "receive_progress"),
        ({"disclose_me": 1}, "disclose_me"),
    ],
    ids=["timeout-string", "timeout-negative", "timeout-bool", "receive_progress", "disclose_me"],
)
def test_bad_call_options(memory, options, named):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.echo")
    error = caller.call_and_answer("com.example.echo", **options)
    assert error[4] == "wamp.error.invalid_argument" and f"'{named}'" in error[5][0]
    assert callee.invocations() == []
    # the session goes on
    request_id = caller.call("com.example.echo")
    callee.yield_(invoked(callee), ["ok"])
    assert caller.finals_of(request_id)[0][3] == ["ok"]


@pytest.mark.parametrize(
    ("options", "named"),
    [({"invoke": "bogus"}, "invoke"), ({"match": "bogus"}, "match"), ({"disclose_caller": "yes"}, "disclose_caller")],
    ids=["invoke", "match", "disclose_caller"],
)
def test_bad_register_options(memory, options, named):
    callee = memory.join()
    request_id = callee.next_request_id()
    callee.send_raw([REGISTER, request_id, options, "com.example.proc"])
    error = callee.error_of(REGISTER, request_id)
    assert error[4] == "wamp.error.invalid_argument" and f"'{named}'" in error[5][0]
    assert memory.state_counts()["registrations"] == 0
    # the session goes on
    callee.register("com.example.proc")
    request_id = callee.call("com.example.proc")
    callee.yield_(invoked(callee), ["ok"])
    assert callee.finals_of(request_id)[0][3] == ["ok"]


# -- races: every call ends exactly once ------------------------------------------------------------


@pytest.mark.parametrize("answer", ["yield", "error", "progress"])
def test_race_callee_answers_as_the_timeout_fires(memory, answer):
    """The answer arrives just before the deadline, on it, or just after it."""
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.race")
    outcomes = []
    for offset in (-0.001, 0.0, 0.001):
        request_id = caller.call("com.example.race", timeout=50, receive_progress=True)
        invocation_id = invoked(callee)
        memory.advance(0.05 + offset)
        if answer == "yield":
            callee.yield_(invocation_id, ["result"])
        elif answer == "error":
            callee.error(invocation_id, "com.example.error.failed")
        else:
            callee.yield_(invocation_id, ["progress"], progress=True)
            callee.yield_(invocation_id, ["result"])
        memory.advance(1.0)
        finals = caller.finals_of(request_id)
        assert len(finals) == 1, caller.answers_to(request_id)
        assert caller.answers_to(request_id)[-1] is finals[0]  # nothing after the final answer
        outcomes.append("timeout" if finals[0][0] == ERROR and finals[0][4] == "wamp.error.timeout" else "answer")
        interrupts = [m for m in callee.take(INTERRUPT) if m[1] == invocation_id]
        # an INTERRUPT went out exactly for the call that timed out
        assert len(interrupts) == (outcomes[-1] == "timeout")
    # the answer before the deadline wins; at and after the deadline the timeout has won
    assert outcomes == ["answer", "timeout", "timeout"]
    assert pending(memory) == 0
    assert caller.open and callee.open


def test_race_answer_from_inside_the_timeout_handling_is_dropped(memory):
    """The callee's YIELD arrives while the router is sending the timeout's INTERRUPT."""
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.race")
    request_id = caller.call("com.example.race", timeout=50)
    invocation_id = invoked(callee)
    original_send = callee.send

    def send(message: list) -> None:
        original_send(message)
        if message[0] == INTERRUPT:
            callee.yield_(invocation_id, ["too late"])

    callee.send = send
    memory.advance(0.05)
    assert [m[0] for m in caller.answers_to(request_id)] == [ERROR]
    assert caller.finals_of(request_id)[0][4] == "wamp.error.timeout"
    assert pending(memory) == 0


@pytest.mark.parametrize("mode", ["skip", "kill", "killnowait"])
@pytest.mark.parametrize(
    "order", ["result-then-cancel", "cancel-then-result", "cancel-during-result", "result-during-cancel"]
)
def test_race_cancel_while_the_result_is_in_flight(memory, mode, order):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.slow")
    request_id = caller.call("com.example.slow", [1])
    invocation_id = invoked(callee)

    def answer() -> None:
        callee.yield_(invocation_id, ["result"])

    def cancel() -> None:
        caller.send_raw([CANCEL, request_id, {"mode": mode}])

    if order == "result-then-cancel":
        answer()
        cancel()
    elif order == "cancel-then-result":
        cancel()
        answer()
    elif order == "cancel-during-result":
        # the caller's CANCEL leaves the moment the router has sent it the RESULT
        original_send = caller.send

        def send(message: list) -> None:
            original_send(message)
            if message[0] == RESULT:
                cancel()

        caller.send = send
        answer()
    else:
        # the callee's YIELD arrives the moment the router has handled the CANCEL
        dispatch = memory.realm().dispatch
        original_cancel = dispatch[CANCEL]

        def on_cancel(session, message: list) -> None:
            original_cancel(session, message)
            answer()

        dispatch[CANCEL] = on_cancel
        cancel()
    finals = caller.finals_of(request_id)
    assert len(finals) == 1, caller.answers_to(request_id)
    outcome = "result" if finals[0][0] == RESULT else finals[0][4]
    # kill waits for the callee, whose answer is the RESULT; the other modes end at once
    if order in ("result-then-cancel", "cancel-during-result") or mode == "kill":
        assert outcome == "result"
    else:
        assert outcome == "wamp.error.canceled"
    assert pending(memory) == 0
    assert caller.open and callee.open


@pytest.mark.parametrize("how", ["leave", "drop"])
def test_race_callee_leaves_while_a_progressive_call_streams(memory, how):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.stream")
    request_id = caller.call("com.example.stream", receive_progress=True)
    invocation_id = invoked(callee)
    for i in range(3):
        callee.yield_(invocation_id, [i], progress=True)
    # a progressive YIELD arrives in the same turn as the callee goes
    callee.yield_(invocation_id, [3], progress=True)
    if how == "leave":
        callee.leave()
    else:
        callee.drop()
    answers = caller.answers_to(request_id)
    finals = caller.finals_of(request_id)
    assert len(finals) == 1 and finals[0][4] == "wamp.error.canceled"
    assert answers[-1] is finals[0]  # nothing after the ERROR
    assert [answer[3][0] for answer in answers[:-1]] == [0, 1, 2, 3]
    assert pending(memory) == 0


@pytest.mark.parametrize("how", ["leave", "drop"])
def test_caller_gone_mid_call_late_answers_dropped(memory, how):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.slow")
    caller.call("com.example.slow", receive_progress=True)
    invocation_id = invoked(callee)
    if how == "leave":
        caller.leave()
    else:
        caller.drop()
    assert pending(memory) == 0
    # the callee, which announced call_canceling, is told; its late answers are dropped
    assert callee.of_type(INTERRUPT)[-1][1] == invocation_id
    received = len(caller.received)
    callee.yield_(invocation_id, ["late"], progress=True)
    callee.yield_(invocation_id, ["late"])
    assert len(caller.received) == received and callee.open
