"""Advanced-profile RPC with autobahn-python clients over real sockets on 127.0.0.1: what
autobahn-python puts on the wire for progressive results, call timeout, call canceling and
caller identification, and how it takes the router's answers. Every test runs with ``json``
and ``msgpack`` and ends with every session gone and ``router.state_counts()`` all zeros.
The dealer's own rules (cancel modes, shared and pattern registrations, bad options, the
races where a call could end twice) are tested in memory in tests/test_dealer_memory.py.

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
from twisted.internet import defer, reactor

from tests.advanced_support import (
    CALL,
    CANCEL,
    ERROR,
    INTERRUPT,
    INVOCATION,
    RESULT,
    Collector,
    by_serializer,
    expect_application_error,
    sync,
)
from tests.support import within

pytestmark = pytest.mark.slow

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
