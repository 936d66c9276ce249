"""Graceful shutdown: calls in flight finish within the grace period, then GOODBYE."""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor

from tests.support import connect_autobahn, start_router, within

pytestmark = pytest.mark.slow


def _slow_answer(delay: float, value: object) -> defer.Deferred:
    answer: defer.Deferred = defer.Deferred()
    reactor.callLater(delay, answer.callback, value)
    return answer


@pytest_twisted.inlineCallbacks
def test_call_in_flight_finishes_before_the_goodbye():
    running = yield start_router()
    callee = yield connect_autobahn(running.url)
    caller = yield connect_autobahn(running.url, serializer="msgpack")
    invoked: defer.Deferred = defer.Deferred()

    def slow():
        invoked.callback(None)  # the router has the call in flight now
        return _slow_answer(0.3, "done")

    yield callee.register(slow, "com.example.slow")
    call = caller.call("com.example.slow")
    yield within(invoked)

    yield running.port.stopListening()
    stopped = running.router.stop(grace=5.0)
    assert (yield within(call)) == "done"
    for session in (caller, callee):
        details = yield within(session.left)
        assert details.reason == "wamp.close.system_shutdown"
    yield within(stopped)
    assert running.router.state_counts()["connections"] == 0


@pytest_twisted.inlineCallbacks
def test_call_still_in_flight_after_the_grace_period_is_canceled():
    running = yield start_router()
    callee = yield connect_autobahn(running.url)
    caller = yield connect_autobahn(running.url)
    never: defer.Deferred = defer.Deferred()
    invoked: defer.Deferred = defer.Deferred()

    def stuck():
        invoked.callback(None)
        return never

    yield callee.register(stuck, "com.example.stuck")
    call = caller.call("com.example.stuck")
    yield within(invoked)

    yield running.port.stopListening()
    stopped = running.router.stop(grace=0.2)
    with pytest.raises(ApplicationError) as info:
        yield within(call)
    assert info.value.error == "wamp.error.canceled"
    yield within(stopped)
    assert running.router.state_counts()["connections"] == 0
