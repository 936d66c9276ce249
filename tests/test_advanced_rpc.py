"""Advanced-profile RPC, driven by autobahn-python clients over real sockets on 127.0.0.1.

Progressive call results, call timeout, call canceling (skip, kill, killnowait; realm option
``cancel_reply``), caller identification, shared registrations, pattern-based registrations,
bad options, and the races where a call could end twice. Every test runs with ``json`` and
``msgpack`` and ends with every session gone and ``router.state_counts()`` all zeros.

What autobahn-python (26.x) puts on the wire, as these tests record it:

* ``CallOptions(timeout=N)``: ``CALL.Options.timeout = N``, the number unchanged. autobahn
  documents the option as seconds but neither converts it nor runs a timer of its own; the
  router reads the spec's milliseconds, so ``timeout=150`` is a 150 ms timeout. A float
  (``timeout=0.5``) is refused by autobahn itself (an assertion in ``message.Call``).
* ``d.cancel()`` on a call's Deferred: ``[CANCEL, request, {}]`` - no ``mode``, so the router
  applies its default, ``killnowait``. autobahn fails the Deferred locally at once and ignores
  the ERROR that follows. A CANCEL with a mode is sent here as a raw frame (the caller's
  Deferred then stays pending until the router answers).
* ``disclose_me`` and ``disclose_caller`` have no autobahn-python API: they are added to the
  outgoing CALL / REGISTER by :meth:`WireSession.patch_next`.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, CallResult, RegisterOptions
from twisted.internet import defer, reactor, task

try:
    from tests.advanced_support import (
        CALL,
        CANCEL,
        ERROR,
        HELLO,
        INTERRUPT,
        INVOCATION,
        KILL_ONLY_REALM,
        REALM,
        REGISTER,
        RESULT,
        WELCOME,
        YIELD,
        Collector,
        NoCancelSession,
        by_serializer,
        drop_transport,
        expect_application_error,
        harness,
        sync,
    )
    from tests.support import leave_and_wait, within
except ImportError:  # pragma: no cover - tests/ itself on sys.path
    from advanced_support import (  # type: ignore[no-redef]
        CALL,
        CANCEL,
        ERROR,
        HELLO,
        INTERRUPT,
        INVOCATION,
        KILL_ONLY_REALM,
        REALM,
        REGISTER,
        RESULT,
        WELCOME,
        YIELD,
        Collector,
        NoCancelSession,
        by_serializer,
        drop_transport,
        expect_application_error,
        harness,
        sync,
    )
    from support import leave_and_wait, within  # type: ignore[no-redef]

__all__ = ["harness"]  # the fixture, imported for pytest

DETAILS = RegisterOptions(details=True)

#: error URI a PendingCalls invocation fails with when autobahn cancels it (on INTERRUPT)
INTERRUPTED = "com.example.error.interrupted"


class PendingCalls:
    """A procedure whose invocations stay pending until the test answers them.

    When autobahn cancels an invocation (it does so on INTERRUPT), the invocation fails with
    ApplicationError ``INTERRUPTED``, so the callee answers the INTERRUPT with that ERROR.
    """

    def __init__(self) -> None:
        self.pending: list[defer.Deferred] = []
        self.details: list[Any] = []
        self.cancelled = 0
        self.invoked = Collector()

    def _cancel(self, d: defer.Deferred) -> None:
        self.cancelled += 1
        d.errback(ApplicationError(INTERRUPTED, "interrupted"))

    def __call__(self, *args: Any, **kwargs: Any) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred(self._cancel)
        self.pending.append(d)
        self.details.append(kwargs.pop("details", None))
        self.invoked(*args, **kwargs)  # may resume the test at once: keep it last
        return d


def is_interrupt(frame: list) -> bool:
    return frame[0] == INTERRUPT


def is_call_error(request_id: int):
    return lambda frame: frame[0] == ERROR and frame[1] == CALL and frame[2] == request_id


@defer.inlineCallbacks
def sync_all(*sessions):
    """Round trips in order: what each session sent before has been handled by the router,
    and what the router sent each of them before has arrived."""
    for session in sessions:
        yield sync(session)


def timeout_calls_scheduled() -> list:
    return [call for call in reactor.getDelayedCalls() if getattr(call.func, "__name__", "") == "_on_timeout"]


# -- WELCOME ----------------------------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_welcome_announces_dealer_features(harness, ser):
    session = yield harness.connect(ser)
    welcome = session.received(WELCOME)
    assert len(welcome) == 1
    features = welcome[0][2]["roles"]["dealer"]["features"]
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
    yield harness.finish()


# -- progressive call results ------------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_progressive_results(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)

    def stream(count: int, details: Any) -> CallResult:
        assert details.progress is not None
        for i in range(count):
            details.progress(i, tenth=i / 10)
        return CallResult("done", total=count)

    yield within(callee.register(stream, "com.example.stream", options=DETAILS))
    progress = Collector()
    d = caller.call("com.example.stream", 3, options=CallOptions(on_progress=progress))
    request_id = caller.request_id_of(d)
    result = yield within(d)

    assert list(result.results) == ["done"] and result.kwresults == {"total": 3}
    assert progress.calls == [((0,), {"tenth": 0.0}), ((1,), {"tenth": 0.1}), ((2,), {"tenth": 0.2})]
    # on the wire: the callee was asked for progress, the caller got 3 progressive RESULTs
    # and one final one, in order
    assert callee.received(INVOCATION)[-1][3].get("receive_progress") is True
    assert caller.sent(CALL)[-1][2] == {"receive_progress": True}
    answers = caller.call_answers(request_id)
    assert [answer[0] for answer in answers] == [RESULT] * 4
    assert [answer[2] for answer in answers] == [{"progress": True}] * 3 + [{}]
    assert [answer[3] for answer in answers] == [[0], [1], [2], ["done"]]

    # a call without on_progress: the callee is not asked for progress
    def check_no_progress(details: Any) -> str:
        return "progress offered" if details.progress is not None else "plain"

    yield within(callee.register(check_no_progress, "com.example.plain", options=DETAILS))
    assert (yield within(caller.call("com.example.plain"))) == "plain"
    assert "receive_progress" not in callee.received(INVOCATION)[-1][3]
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_nothing_reaches_the_caller_after_the_final_result(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    progress_of: list[Any] = []

    def stream(details: Any) -> str:
        progress_of.append(details.progress)
        details.progress("early")
        return "final"

    yield within(callee.register(stream, "com.example.stream", options=DETAILS))
    progress = Collector()
    d = caller.call("com.example.stream", options=CallOptions(on_progress=progress))
    request_id = caller.request_id_of(d)
    assert (yield within(d)) == "final"

    # a late progressive YIELD for the finished invocation: the router drops it (autobahn
    # would drop its connection on a RESULT for a request it no longer knows)
    progress_of[0]("late")
    yield sync_all(callee, caller)
    assert progress.args == [("early",)]
    assert [answer[2] for answer in caller.call_answers(request_id)] == [{"progress": True}, {}]
    assert caller.is_attached() and callee.is_attached()
    assert harness.router.state_counts()["pending_calls"] == 0
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_progress_is_dropped_when_the_caller_did_not_ask(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    pending = PendingCalls()
    yield within(callee.register(pending, "com.example.slow"))

    d = caller.call("com.example.slow")
    request_id = caller.request_id_of(d)
    yield pending.invoked.wait_for(1)
    invocation_id = callee.received(INVOCATION)[-1][1]
    callee.send_raw([YIELD, invocation_id, {"progress": True}, ["unasked"]])
    pending.pending[0].callback("final")
    assert (yield within(d)) == "final"
    yield sync_all(callee, caller)
    assert caller.call_answers(request_id) == [[RESULT, request_id, {}, ["final"]]]
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_progressive_results_with_a_callee_without_call_canceling(harness, ser):
    # autobahn-js callees never announce call_canceling; receive_progress still reaches them
    callee = yield harness.connect(ser, NoCancelSession)
    caller = yield harness.connect(ser)
    hello_callee = callee.sent(HELLO)[0][2]["roles"]["callee"]["features"]
    assert "call_canceling" not in hello_callee and hello_callee["progressive_call_results"] is True

    def stream(details: Any) -> str:
        details.progress(1)
        details.progress(2)
        return "three"

    yield within(callee.register(stream, "com.example.stream", options=DETAILS))
    progress = Collector()
    assert (yield within(caller.call("com.example.stream", options=CallOptions(on_progress=progress)))) == "three"
    assert progress.args == [(1,), (2,)]
    assert callee.received(INVOCATION)[-1][3].get("receive_progress") is True
    yield harness.finish()


# -- call timeout -----------------------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_call_timeout_units_on_the_wire_and_errors(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    pending = PendingCalls()
    yield within(callee.register(pending, "com.example.slow"))

    # what the router received, as decoded from the wire
    received_calls: list[list] = []
    realm = harness.realm()
    original = realm.dispatch[CALL]

    def recording(session: Any, message: list) -> None:
        received_calls.append(list(message))
        original(session, message)

    realm.dispatch[CALL] = recording

    # autobahn refuses a float timeout before anything is sent
    with pytest.raises(AssertionError):
        caller.call("com.example.slow", options=CallOptions(timeout=0.5))

    start = reactor.seconds()
    d = caller.call("com.example.slow", options=CallOptions(timeout=150))
    request_id = caller.request_id_of(d)
    error = yield expect_application_error(d)
    elapsed = reactor.seconds() - start

    assert error.error == "wamp.error.timeout"
    # autobahn sent the number unchanged; the router took it as 150 ms (not 150 s)
    assert caller.sent(CALL)[-1] == [CALL, request_id, {"timeout": 150}, "com.example.slow"]
    assert received_calls[-1][2] == {"timeout": 150}
    assert 0.14 <= elapsed < 5.0
    # the callee announced call_canceling: it gets INTERRUPT (killnowait, reason timeout)
    interrupt = yield callee.wait_wire(is_interrupt)
    assert interrupt == [
        INTERRUPT,
        callee.received(INVOCATION)[-1][1],
        {"mode": "killnowait", "reason": "wamp.error.timeout"},
    ]
    assert pending.cancelled == 1  # autobahn cancelled the invocation; its ERROR is dropped
    yield sync_all(callee, caller)
    assert len(caller.call_finals(request_id)) == 1
    assert harness.router.state_counts()["pending_calls"] == 0
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_call_timeout_without_interrupt_for_a_callee_without_call_canceling(harness, ser):
    callee = yield harness.connect(ser, NoCancelSession)
    caller = yield harness.connect(ser)
    pending = PendingCalls()
    yield within(callee.register(pending, "com.example.slow"))

    d = caller.call("com.example.slow", options=CallOptions(timeout=100))
    request_id = caller.request_id_of(d)
    error = yield expect_application_error(d)
    assert error.error == "wamp.error.timeout"
    yield sync(callee)
    assert callee.received(INTERRUPT) == []
    assert pending.cancelled == 0

    # the callee answers late: the router drops the YIELD
    pending.pending[0].callback("late")
    yield sync_all(callee, caller)
    assert len(caller.call_finals(request_id)) == 1
    assert caller.is_attached() and callee.is_attached()
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_call_timeout_ends_a_streaming_call(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    pending = PendingCalls()
    yield within(callee.register(pending, "com.example.stream", options=DETAILS))

    progress = Collector()
    d = caller.call("com.example.stream", options=CallOptions(on_progress=progress, timeout=100))
    request_id = caller.request_id_of(d)
    yield pending.invoked.wait_for(1)
    send_progress = pending.details[0].progress
    send_progress("first")
    yield progress.wait_for(1)
    error = yield expect_application_error(d)
    assert error.error == "wamp.error.timeout"
    yield callee.wait_wire(is_interrupt)
    # autobahn cancelled the invocation; a progress the callee still sends is dropped
    send_progress("after the timeout")
    yield sync_all(callee, caller)
    answers = caller.call_answers(request_id)
    assert [answer[0] for answer in answers] == [RESULT, ERROR]
    assert progress.args == [("first",)]
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_call_answered_in_time_and_timeout_zero(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    pending = PendingCalls()
    yield within(callee.register(pending, "com.example.slow"))

    d = caller.call("com.example.slow", options=CallOptions(timeout=10000))
    yield pending.invoked.wait_for(1)
    assert len(timeout_calls_scheduled()) == 1
    pending.pending[0].callback("in time")
    assert (yield within(d)) == "in time"
    assert timeout_calls_scheduled() == []  # the router's timer went with the call

    # timeout 0 is no timeout (autobahn cannot send 0: added on the wire)
    caller.patch_next(CALL, timeout=0)
    d = caller.call("com.example.slow")
    yield pending.invoked.wait_for(2)
    assert caller.sent(CALL)[-1][2] == {"timeout": 0}
    assert timeout_calls_scheduled() == []
    pending.pending[1].callback("no timeout")
    assert (yield within(d)) == "no timeout"
    yield harness.finish()


# -- call canceling ---------------------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_autobahn_cancel_sends_no_mode_and_gets_killnowait(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    pending = PendingCalls()
    yield within(callee.register(pending, "com.example.slow"))

    d = caller.call("com.example.slow", 1)
    request_id = caller.request_id_of(d)
    yield pending.invoked.wait_for(1)
    invocation_id = callee.received(INVOCATION)[-1][1]
    before = len(caller.wire_received)
    d.cancel()
    assert caller.sent(CANCEL)[-1] == [CANCEL, request_id, {}]
    with pytest.raises(defer.CancelledError):
        yield d  # failed locally, at once

    # the router applies its default mode, killnowait: ERROR to the caller at once ...
    error = yield caller.wait_wire(is_call_error(request_id), since=before)
    assert error[4] == "wamp.error.canceled"
    # ... and INTERRUPT to the callee, whose answer is dropped
    interrupt = yield callee.wait_wire(is_interrupt)
    assert interrupt == [INTERRUPT, invocation_id, {"mode": "killnowait", "reason": "wamp.error.canceled"}]
    assert pending.cancelled == 1
    yield sync_all(callee, caller)
    assert caller.call_finals(request_id) == [error]
    assert caller.is_attached() and callee.is_attached()
    yield harness.finish()


@pytest.mark.parametrize("realm", [REALM, KILL_ONLY_REALM], ids=["always", "kill_only"])
@pytest.mark.parametrize("mode", ["skip", "kill", "killnowait"])
@by_serializer
@pytest_twisted.inlineCallbacks
def test_cancel_modes(harness, ser, mode, realm):
    callee = yield harness.connect(ser, realm=realm)
    caller = yield harness.connect(ser, realm=realm)
    callee.hold_interrupts = True  # the callee answers an INTERRUPT when the test says so
    pending = PendingCalls()
    yield within(callee.register(pending, "com.example.slow"))

    d = caller.call("com.example.slow")
    request_id = caller.request_id_of(d)
    yield pending.invoked.wait_for(1)
    invocation_id = callee.received(INVOCATION)[-1][1]
    caller.send_raw([CANCEL, request_id, {"mode": mode}])

    if mode == "kill":
        # INTERRUPT to the callee; no ERROR for the caller until the callee has answered
        interrupt = yield callee.wait_wire(is_interrupt)
        assert interrupt == [INTERRUPT, invocation_id, {"mode": "kill", "reason": "wamp.error.canceled"}]
        yield sync(caller)
        assert caller.call_answers(request_id) == [] and not d.called
        assert harness.router.state_counts()["pending_calls"] == 1
        callee.release_interrupts()  # autobahn cancels the invocation: ERROR INTERRUPTED
        error = yield expect_application_error(d)
        assert error.error == INTERRUPTED
        assert pending.cancelled == 1
    else:
        if realm == REALM:
            error = yield expect_application_error(d)  # at once, before the callee answers
            assert error.error == "wamp.error.canceled"
            assert mode in error.args[0]
        else:
            yield sync(caller)  # kill_only: no ERROR for skip / killnowait
            assert caller.call_answers(request_id) == [] and not d.called
        assert harness.router.state_counts()["pending_calls"] == 0
        if mode == "killnowait":
            interrupt = yield callee.wait_wire(is_interrupt)
            assert interrupt == [INTERRUPT, invocation_id, {"mode": "killnowait", "reason": "wamp.error.canceled"}]
            callee.release_interrupts()  # the callee's ERROR is dropped by the router
            assert pending.cancelled == 1
        else:
            yield sync(callee)
            assert callee.received(INTERRUPT) == []
            pending.pending[0].callback("skipped")  # the late YIELD is dropped by the router
    yield sync_all(callee, caller)
    assert len(caller.call_finals(request_id)) == (0 if realm == KILL_ONLY_REALM and mode != "kill" else 1)
    assert caller.is_attached() and callee.is_attached()
    if not d.called:
        d.addErrback(lambda failure: failure.trap(defer.CancelledError))
        d.cancel()  # autobahn sends one more CANCEL: the router has nothing left to cancel
        yield sync(caller)
        assert caller.call_answers(request_id) == []
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_cancel_kill_the_callee_may_still_answer_with_a_result(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    callee.hold_interrupts = True
    pending = PendingCalls()
    yield within(callee.register(pending, "com.example.slow"))

    d = caller.call("com.example.slow")
    request_id = caller.request_id_of(d)
    yield pending.invoked.wait_for(1)
    caller.send_raw([CANCEL, request_id, {"mode": "kill"}])
    yield callee.wait_wire(is_interrupt)
    pending.pending[0].callback("finished first")  # the answer beats the INTERRUPT
    assert (yield within(d)) == "finished first"
    callee.release_interrupts()  # autobahn: INTERRUPT for a finished invocation, ignored
    assert pending.cancelled == 0
    yield sync_all(callee, caller)
    assert len(caller.call_finals(request_id)) == 1
    yield harness.finish()


@pytest.mark.parametrize(
    ("mode", "realm"),
    [("kill", REALM), ("killnowait", REALM), ("kill", KILL_ONLY_REALM)],
    ids=["kill", "killnowait", "kill-kill_only"],
)
@by_serializer
@pytest_twisted.inlineCallbacks
def test_cancel_with_a_callee_without_call_canceling_is_skip(harness, ser, mode, realm):
    callee = yield harness.connect(ser, NoCancelSession, realm=realm)
    caller = yield harness.connect(ser, realm=realm)
    pending = PendingCalls()
    yield within(callee.register(pending, "com.example.slow"))

    d = caller.call("com.example.slow")
    request_id = caller.request_id_of(d)
    yield pending.invoked.wait_for(1)
    caller.send_raw([CANCEL, request_id, {"mode": mode}])
    error = yield expect_application_error(d)  # at once: nobody to wait for
    assert error.error == "wamp.error.canceled"
    yield sync(callee)
    assert callee.received(INTERRUPT) == []  # never INTERRUPT to such a callee
    pending.pending[0].callback("late")
    yield sync_all(callee, caller)
    assert len(caller.call_finals(request_id)) == 1
    assert callee.is_attached()
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_cancel_with_a_bad_mode_ends_the_call_with_invalid_argument(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    pending = PendingCalls()
    yield within(callee.register(pending, "com.example.slow"))

    d = caller.call("com.example.slow")
    request_id = caller.request_id_of(d)
    yield pending.invoked.wait_for(1)
    caller.send_raw([CANCEL, request_id, {"mode": "bogus"}])
    error = yield expect_application_error(d)
    assert error.error == "wamp.error.invalid_argument"
    assert "'mode'" in error.args[0]
    interrupt = yield callee.wait_wire(is_interrupt)
    assert interrupt[2]["mode"] == "killnowait"
    yield sync_all(callee, caller)
    assert len(caller.call_finals(request_id)) == 1
    assert caller.is_attached() and callee.is_attached()
    # a CANCEL with a bad mode for a call that is no longer running: nothing to answer
    caller.send_raw([CANCEL, request_id, {"mode": "bogus"}])
    yield sync(caller)
    assert len(caller.call_finals(request_id)) == 1 and caller.is_attached()
    yield harness.finish()


# -- caller identification ----------------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_caller_identification_with_disclose_me(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    other = yield harness.connect(ser)
    harness.assume_identity(caller, authid="alice", authrole="frontend")
    invoked = Collector(result="ok")
    yield within(callee.register(invoked, "com.example.who", options=DETAILS))

    caller.patch_next(CALL, disclose_me=True)
    yield within(caller.call("com.example.who"))
    yield within(other.call("com.example.who"))

    assert caller.sent(CALL)[-1][2] == {"disclose_me": True}
    disclosed, anonymous = invoked.details
    assert disclosed.caller == caller.session_id
    assert disclosed.caller_authid == "alice"
    assert disclosed.caller_authrole == "frontend"
    assert (anonymous.caller, anonymous.caller_authid, anonymous.caller_authrole) == (None, None, None)
    details = [frame[3] for frame in callee.received(INVOCATION)]
    assert details[0] == {"caller": caller.session_id, "caller_authid": "alice", "caller_authrole": "frontend"}
    assert details[1] == {}
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_caller_identification_with_disclose_caller_on_register(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    invoked = Collector(result="ok")
    callee.patch_next(REGISTER, disclose_caller=True)
    yield within(callee.register(invoked, "com.example.who", options=DETAILS))
    assert callee.sent(REGISTER)[-1][2] == {"disclose_caller": True}

    yield within(caller.call("com.example.who"))
    details = invoked.details[0]
    assert details.caller == caller.session_id
    assert details.caller_authid == caller.join_details.authid
    assert details.caller_authrole == caller.join_details.authrole == "anonymous"
    yield harness.finish()


# -- shared registrations -----------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["roundrobin", "random", "first", "last"])
@by_serializer
@pytest_twisted.inlineCallbacks
def test_shared_registration_invoke_policies(harness, ser, policy):
    callees = []
    registrations = []
    for name in "abc":
        callee = yield harness.connect(ser)
        callees.append(callee)
        registration = yield within(
            callee.register(lambda name=name: name, "com.example.shared", options=RegisterOptions(invoke=policy))
        )
        registrations.append(registration)
    assert len({registration.id for registration in registrations}) == 1  # one shared registration
    caller = yield harness.connect(ser)

    count = 60 if policy == "random" else 9
    answers = []
    for _ in range(count):
        answers.append((yield within(caller.call("com.example.shared"))))

    if policy == "roundrobin":
        assert answers == list("abc" * 3)
    elif policy == "random":
        # each callee misses all 60 calls with probability (2/3)^60, about 3e-11
        assert set(answers) == {"a", "b", "c"}
    elif policy == "first":
        assert answers == ["a"] * count
        # hot stand-by: the first callee goes, the next one takes over
        yield leave_and_wait(callees[0])
        assert (yield within(caller.call("com.example.shared"))) == "b"
    else:
        assert answers == ["c"] * count
        yield within(registrations[2].unregister())
        assert (yield within(caller.call("com.example.shared"))) == "b"
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_shared_registration_refusals(harness, ser):
    a = yield harness.connect(ser)
    b = yield harness.connect(ser)
    caller = yield harness.connect(ser)

    # single (the default): nobody else may join
    yield within(a.register(lambda: "a", "com.example.single"))
    for options in (None, RegisterOptions(invoke="roundrobin")):
        error = yield expect_application_error(b.register(lambda: "b", "com.example.single", options=options))
        assert error.error == "wamp.error.procedure_already_exists"

    # shared: another policy is refused, the same policy accepted
    yield within(a.register(lambda: "a", "com.example.shared", options=RegisterOptions(invoke="roundrobin")))
    for policy in ("random", "first", "last", "single"):
        error = yield expect_application_error(
            b.register(lambda: "b", "com.example.shared", options=RegisterOptions(invoke=policy))
        )
        assert error.error == "wamp.error.procedure_already_exists"
    yield within(b.register(lambda: "b", "com.example.shared", options=RegisterOptions(invoke="roundrobin")))

    # the same session registering the same URI and match twice
    error = yield expect_application_error(
        a.register(lambda: "a2", "com.example.shared", options=RegisterOptions(invoke="roundrobin"))
    )
    assert error.error == "wamp.error.procedure_already_exists"

    # nobody was dropped, everything still routes
    assert a.is_attached() and b.is_attached()
    assert (yield within(caller.call("com.example.single"))) == "a"
    answers = []
    for _ in range(4):
        answers.append((yield within(caller.call("com.example.shared"))))
    assert answers == ["a", "b", "a", "b"]
    assert harness.realm().dealer.lookup("com.example.shared").callees == [
        harness.router_session(a),
        harness.router_session(b),
    ]
    yield harness.finish()


# -- pattern-based registrations --------------------------------------------------------------------


def numbered(number: int, procedures: list):
    def handler(details: Any) -> int:
        procedures.append((number, details.procedure))
        return number

    return handler


@by_serializer
@pytest_twisted.inlineCallbacks
def test_pattern_registration_spec_examples(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    procedures: list[tuple[int, str]] = []
    registered = {}
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
        registered[number] = yield within(
            callee.register(numbered(number, procedures), uri, options=RegisterOptions(match=match, details=True))
        )

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
    ]:
        assert (yield within(caller.call(uri))) == expected, uri
    error = yield expect_application_error(caller.call("a2.b2.c2.d2.e2"))
    assert error.error == "wamp.error.no_such_procedure"

    yield within(registered[2].unregister())
    assert (yield within(caller.call("a1.b2.c33.d4.e5"))) == 5

    # INVOCATION.Details.procedure: the concrete URI for pattern registrations only
    invocation_details = [frame[3] for frame in callee.received(INVOCATION)]
    assert "procedure" not in invocation_details[0]
    assert [d["procedure"] for d in invocation_details[1:]] == [
        "a1.b2.c3.d98.e74",
        "a1.b2.c3.d4.e325",
        "a1.b2.c55.d4.e5",
        "a1.b2.c88.d4.e5.f6.g7",
        "a1.b2.c33.d4.e5",
    ]
    assert procedures[1:] == [
        (2, "a1.b2.c3.d98.e74"),
        (3, "a1.b2.c3.d4.e325"),
        (4, "a1.b2.c55.d4.e5"),
        (6, "a1.b2.c88.d4.e5.f6.g7"),
        (5, "a1.b2.c33.d4.e5"),
    ]
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_prefix_registration_is_a_string_prefix(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    yield within(
        callee.register(
            lambda details: details.procedure,
            "com.myapp.myobject1",
            options=RegisterOptions(match="prefix", details=True),
        )
    )
    for uri in (
        "com.myapp.myobject1.myprocedure1",
        "com.myapp.myobject1-mysubobject1",
        "com.myapp.myobject1.mysubobject1.myprocedure1",
        "com.myapp.myobject1",
    ):
        assert (yield within(caller.call(uri))) == uri
    for uri in ("com.myapp.myobject2", "com.myapp.myobject"):
        error = yield expect_application_error(caller.call(uri))
        assert error.error == "wamp.error.no_such_procedure"

    # the same URI registered exact and prefix: two registrations, exact wins for itself
    yield within(callee.register(lambda: "exact", "com.myapp.myobject1"))
    assert (yield within(caller.call("com.myapp.myobject1"))) == "exact"
    assert (yield within(caller.call("com.myapp.myobject1.x"))) == "com.myapp.myobject1.x"
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_wildcard_registration_spec_examples(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    yield within(
        callee.register(
            lambda details: details.procedure,
            "com.myapp..myprocedure1",
            options=RegisterOptions(match="wildcard", details=True),
        )
    )
    for uri in ("com.myapp.myobject1.myprocedure1", "com.myapp.myobject2.myprocedure1"):
        assert (yield within(caller.call(uri))) == uri
    for uri in (
        "com.myapp.myobject1.myprocedure1.mysubprocedure1",
        "com.myapp.myobject1.myprocedure2",
        "com.myapp2.myobject1.myprocedure1",
    ):
        error = yield expect_application_error(caller.call(uri))
        assert error.error == "wamp.error.no_such_procedure"
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_wildcard_registration_longest_portions_before_each_wildcard(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    for uri in ("a1.b2..d4.e5.f6.g7", "a1.b2..d4.e5..g7", "a1..c3.d4", "a1.b2..d4"):
        yield within(callee.register(lambda uri=uri: uri, uri, options=RegisterOptions(match="wildcard")))
    # same first portion (a1.b2); the second portion runs to the end (d4.e5.f6.g7) for the
    # first pattern, only d4.e5 for the second: the first has the longer portions
    assert (yield within(caller.call("a1.b2.c3.d4.e5.f6.g7"))) == "a1.b2..d4.e5.f6.g7"
    assert (yield within(caller.call("a1.b2.c3.d4.e5.x6.g7"))) == "a1.b2..d4.e5..g7"
    # first portion a1.b2 beats a1
    assert (yield within(caller.call("a1.b2.c3.d4"))) == "a1.b2..d4"
    assert (yield within(caller.call("a1.x2.c3.d4"))) == "a1..c3.d4"
    yield harness.finish()


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
@by_serializer
@pytest_twisted.inlineCallbacks
def test_bad_call_options(harness, ser, options, named):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    invoked = Collector(result="ok")
    yield within(callee.register(invoked, "com.example.echo"))

    caller.patch_next(CALL, **options)
    error = yield expect_application_error(caller.call("com.example.echo"))
    assert caller.sent(CALL)[-1][2] == options
    assert error.error == "wamp.error.invalid_argument"
    assert f"'{named}'" in error.args[0]
    assert invoked.calls == []
    # the session goes on
    assert caller.is_attached()
    assert (yield within(caller.call("com.example.echo"))) == "ok"
    yield harness.finish()


@pytest.mark.parametrize(
    ("options", "named"),
    [({"invoke": "bogus"}, "invoke"), ({"match": "bogus"}, "match"), ({"disclose_caller": "yes"}, "disclose_caller")],
    ids=["invoke", "match", "disclose_caller"],
)
@by_serializer
@pytest_twisted.inlineCallbacks
def test_bad_register_options(harness, ser, options, named):
    callee = yield harness.connect(ser)
    callee.patch_next(REGISTER, **options)
    error = yield expect_application_error(callee.register(lambda: "ok", "com.example.proc"))
    assert callee.sent(REGISTER)[-1][2] == options
    assert error.error == "wamp.error.invalid_argument"
    assert f"'{named}'" in error.args[0]
    assert harness.router.state_counts()["registrations"] == 0
    # the session goes on
    yield within(callee.register(lambda: "ok", "com.example.proc"))
    assert (yield within(callee.call("com.example.proc"))) == "ok"
    yield harness.finish()


# -- races: every call ends exactly once ------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_race_callee_answers_as_the_timeout_fires(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    timeout_ms = 50
    dealer = harness.realm().dealer
    calls_of_caller = dealer._calls_of[harness.router_session(caller)]
    request_ids: list[int] = []
    answers: dict[int, defer.Deferred] = {}

    def answer(index: int) -> None:
        d = answers[index]
        if not d.called:  # autobahn cancels d when the INTERRUPT came first
            d.callback(index)

    def answer_at_the_deadline(index: int, offset_ms: float | None) -> defer.Deferred:
        answers[index] = defer.Deferred()
        if offset_ms is not None:
            # The router's timer and this answer run on the same reactor: the answer is
            # scheduled for the router's own deadline, give or take a fraction of a ms.
            deadline = calls_of_caller[request_ids[index]].timer.getTime()
            reactor.callLater(max(0.0, deadline - reactor.seconds() + offset_ms / 1000.0), answer, index)
        return answers[index]

    # One call is answered from inside the router's timeout handling: its YIELD is on
    # the way while the caller's ERROR is; the router must drop the YIELD.
    original_on_timeout = dealer._on_timeout

    def on_timeout(invocation: Any) -> None:
        original_on_timeout(invocation)
        if invocation.call_request_id == request_ids[0]:
            answer(0)

    dealer._on_timeout = on_timeout  # the instance attribute is what callLater gets

    yield within(callee.register(answer_at_the_deadline, "com.example.race"))
    offsets_ms = [None, -3, -2, -1.5, -1, -0.5, -0.2, 0, 0, 0, 0.5]
    calls = [
        caller.call("com.example.race", index, offset, options=CallOptions(timeout=timeout_ms))
        for index, offset in enumerate(offsets_ms)
    ]
    request_ids.extend(caller.request_id_of(d) for d in calls)
    outcomes = []
    for index, d in enumerate(calls):
        try:
            assert (yield within(d)) == index
            outcomes.append("result")
        except ApplicationError as error:
            assert error.error == "wamp.error.timeout"
            outcomes.append("timeout")
    yield sync_all(callee, caller)
    assert outcomes[0] == "timeout"
    for request_id in request_ids:
        assert len(caller.call_finals(request_id)) == 1, outcomes
    # an INTERRUPT went out exactly for the calls that timed out
    assert len(callee.received(INTERRUPT)) == outcomes.count("timeout")
    assert harness.router.state_counts()["pending_calls"] == 0
    assert caller.is_attached() and callee.is_attached()
    yield harness.finish()


@pytest.mark.parametrize("mode", ["skip", "kill", "killnowait"])
@by_serializer
@pytest_twisted.inlineCallbacks
def test_race_cancel_while_the_result_is_in_flight(harness, ser, mode):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    pending = PendingCalls()
    yield within(callee.register(pending, "com.example.slow"))

    def cancel(request_id: int) -> None:
        caller.send_raw([CANCEL, request_id, {"mode": mode}])

    # Hooks in the (in-process) router to make the two interleavings certain:
    # - the caller's CANCEL leaves the moment the router has sent it the RESULT
    #   (the result is in flight when the router gets the CANCEL);
    # - the callee's YIELD leaves the moment the router has handled the CANCEL
    #   (the answer is in flight when the call is cancelled).
    after_result: dict[int, Any] = {}
    after_cancel: dict[int, Any] = {}
    caller_router_session = harness.router_session(caller)
    original_send = caller_router_session.send

    def send(message: list) -> bool:
        sent = original_send(message)
        hook = after_result.pop(message[1], None) if message[0] == RESULT else None
        if hook is not None:
            hook()
        return sent

    caller_router_session.send = send
    realm = harness.realm()
    original_cancel = realm.dispatch[CANCEL]

    def on_cancel(session: Any, message: list) -> None:
        original_cancel(session, message)
        hook = after_cancel.pop(message[1], None)
        if hook is not None:
            hook()

    realm.dispatch[CANCEL] = on_cancel

    outcomes = []
    for i in range(8):
        d = caller.call("com.example.slow", i)
        request_id = caller.request_id_of(d)
        yield pending.invoked.wait_for(i + 1)
        answer = pending.pending[i].callback
        order = i % 4
        if order == 0:  # both in flight, sent in the same reactor turn
            answer(i)
            cancel(request_id)
        elif order == 1:
            cancel(request_id)
            answer(i)
        elif order == 2:  # the RESULT is in flight when the CANCEL arrives
            after_result[request_id] = lambda request_id=request_id: cancel(request_id)
            answer(i)
        else:  # the YIELD is in flight when the call is cancelled
            after_cancel[request_id] = lambda i=i, answer=answer: answer(i)
            cancel(request_id)
        try:
            assert (yield within(d)) == i
            outcomes.append("result")
        except ApplicationError as error:
            assert error.error == "wamp.error.canceled"
            outcomes.append("canceled")
        yield sync_all(callee, caller)
        assert len(caller.call_finals(request_id)) == 1, outcomes
    assert outcomes[2] == outcomes[6] == "result"
    # kill waits for the callee, whose answer is the RESULT; the other modes end at once
    assert outcomes[3] == outcomes[7] == ("result" if mode == "kill" else "canceled")
    assert harness.router.state_counts()["pending_calls"] == 0
    assert caller.is_attached() and callee.is_attached()
    yield harness.finish()


@pytest.mark.parametrize("how", ["leave", "drop"])
@by_serializer
@pytest_twisted.inlineCallbacks
def test_race_callee_leaves_while_a_progressive_call_streams(harness, ser, how):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    loops: list[task.LoopingCall] = []

    def stream(details: Any) -> defer.Deferred:
        counter = iter(range(10**6))
        loop = task.LoopingCall(lambda: details.progress(next(counter)))
        loops.append(loop)
        loop.start(0.001)
        return defer.Deferred()  # never finishes by itself

    yield within(callee.register(stream, "com.example.stream", options=DETAILS))
    progress = Collector()
    d = caller.call("com.example.stream", options=CallOptions(on_progress=progress))
    request_id = caller.request_id_of(d)
    yield progress.wait_for(3)
    # progressive YIELDs are in flight while the callee goes
    loops[0].stop()
    if how == "leave":
        callee.leave()
    else:
        drop_transport(callee)
    error = yield expect_application_error(d)
    assert error.error == "wamp.error.canceled"
    yield within(callee.disconnected)
    yield sync(caller)

    answers = caller.call_answers(request_id)
    finals = caller.call_finals(request_id)
    assert len(finals) == 1 and finals[0][4] == "wamp.error.canceled"
    assert answers[-1] is finals[0]  # nothing after the ERROR
    values = [answer[3][0] for answer in answers[:-1]]
    assert values == list(range(len(values))) and len(values) >= 3
    assert harness.router.state_counts()["pending_calls"] == 0
    yield harness.finish()
