"""The router's limits and session deadlines, driven in memory (tests/memory_router.py):
pending calls per caller and invocations per callee, registrations and subscriptions per
session, sessions per router and per realm, the HELLO deadline, a slow-consuming callee.
What goes over a socket (message size, nesting, the handshake deadline) is in
tests/test_limits.py.
"""

from __future__ import annotations

import pytest

from promisifier.router import RouterConfig
from promisifier.router.router_config import Limits
from promisifier.wire import LIMIT_EXCEEDED
from promisifier.wire.messages import (
    ABORT,
    CALL,
    GOODBYE,
    HELLO,
    REGISTER,
    SUBSCRIBE,
    SUBSCRIBED,
    UNREGISTERED,
    UNSUBSCRIBED,
)
from tests.memory_router import ALL_ROLES, MemoryClient, MemoryRouter


def router(**limits) -> MemoryRouter:
    return MemoryRouter(RouterConfig(realms=("realm1", "realm2"), limits=Limits(**limits)))


def assert_limit_error(message: list | None, limit: str) -> None:
    assert message is not None, "no ERROR"
    assert message[4] == LIMIT_EXCEEDED and limit in message[5][0], message


def test_max_pending_calls_per_caller():
    memory = router(max_pending_calls_per_caller=3)
    callee, caller = memory.join(), memory.join()
    callee.register("com.limits.slow")
    for n in range(3):
        caller.call("com.limits.slow", [n])
    invocations = callee.take(68)
    assert len(invocations) == 3 and memory.state_counts()["pending_calls"] == 3
    refused = caller.call("com.limits.slow", [99])
    assert_limit_error(caller.error_of(CALL, refused), "max_pending_calls_per_caller")
    # not queued: the callee never sees the refused call, now or after answering
    assert callee.invocations() == [] and memory.state_counts()["pending_calls"] == 3
    # another caller is not limited by the first one's calls
    other = memory.join()
    request_id = other.call("com.limits.slow", ["other"])
    [invocation] = callee.take(68)
    assert invocation[4] == ["other"]
    callee.yield_(invocation[1], ["done"])
    assert other.finals_of(request_id)[0][3] == ["done"]
    # one answered: room for one more call, which goes through
    callee.yield_(invocations[0][1], ["first"])
    assert caller.finals_of(1)[0][3] == ["first"]
    caller.call("com.limits.slow", [100])
    assert [m[4] for m in callee.take(68)] == [[100]]  # the refused call 99 never turns up
    memory.assert_idle()


def test_max_pending_invocations_per_callee():
    memory = router(max_pending_invocations_per_callee=2)
    callee = memory.join()
    callee.register("com.limits.slow")
    callers = [memory.join() for _ in range(2)]
    for n, caller in enumerate(callers):
        caller.call("com.limits.slow", [n])
    late = memory.join()
    assert_limit_error(
        late.error_of(CALL, late.call("com.limits.slow", ["late"])), "max_pending_invocations_per_callee"
    )
    # a second call of an earlier caller is refused the same way
    again = callers[0].call("com.limits.slow", ["again"])
    assert_limit_error(callers[0].error_of(CALL, again), "max_pending_invocations_per_callee")
    invocations = callee.take(68)
    assert [m[4] for m in invocations] == [[0], [1]]  # no refused call reached the callee
    # the callee answers one: the next call is delivered
    callee.yield_(invocations[0][1], ["ok"])
    late.call("com.limits.slow", ["now"])
    assert [m[4] for m in callee.take(68)] == [["now"]]
    memory.assert_idle()


def test_a_callee_that_is_a_slow_consumer_gets_no_more_calls():
    memory = router()
    callee, caller = memory.join(), memory.join()
    callee.register("com.limits.slow")
    callee.congested = True
    error = caller.error_of(CALL, caller.call("com.limits.slow"))
    assert_limit_error(error, "slow consumer")
    assert callee.invocations() == []
    callee.congested = False
    caller.call("com.limits.slow")
    callee.yield_(callee.invocations()[-1][1])
    memory.assert_idle()


def test_max_registrations_per_session():
    memory = router(max_registrations_per_session=3)
    client = memory.join()
    registrations = [client.register(f"com.limits.proc{n}") for n in range(3)]
    request_id = client.next_request_id()
    client.send_raw([REGISTER, request_id, {"match": "prefix"}, "com.limits.more"])
    assert_limit_error(client.error_of(REGISTER, request_id), "max_registrations_per_session")
    assert memory.state_counts()["registrations"] == 3
    # per session: another session may register
    memory.join().register("com.limits.more")
    # one unregistered: room for one more
    assert client.unregister(registrations[0])[0] == UNREGISTERED
    client.register("com.limits.again")
    memory.assert_idle()


def test_max_subscriptions_per_session():
    memory = router(max_subscriptions_per_session=3)
    client = memory.join()
    subscriptions = [client.subscribe(f"com.limits.topic{n}") for n in range(3)]
    request_id = client.next_request_id()
    client.send_raw([SUBSCRIBE, request_id, {"match": "wildcard"}, "com..topic"])
    assert_limit_error(client.error_of(SUBSCRIBE, request_id), "max_subscriptions_per_session")
    # subscribing again to a topic already held takes no more room
    assert client.subscribe("com.limits.topic1") == subscriptions[1]
    assert memory.state_counts()["subscriptions"] == 3
    memory.join().subscribe("com.limits.other")
    assert client.unsubscribe(subscriptions[0])[0] == UNSUBSCRIBED
    assert client.last()[0] == UNSUBSCRIBED
    client.subscribe("com.limits.new")
    assert client.last()[0] == SUBSCRIBED
    memory.assert_idle()


def hello(client: MemoryClient, realm: str) -> list:
    client.send_raw([HELLO, realm, {"roles": ALL_ROLES}])
    return client.last()


def test_max_sessions():
    memory = router(max_sessions=2)
    first, _ = memory.join("realm1"), memory.join("realm2")
    for realm in ("realm1", "realm2"):
        refused = memory.connect()
        abort = hello(refused, realm)
        assert abort[0] == ABORT and abort[2] == LIMIT_EXCEEDED
        assert "max_sessions" in abort[1]["message"] and "per_realm" not in abort[1]["message"]
        assert not refused.open
    assert memory.state_counts()["sessions"] == 2
    # a session that left makes room; one back in ESTABLISHING does not count
    first.leave()
    memory.join("realm1")
    abort = hello(first, "realm2")
    assert abort[0] == ABORT and "max_sessions" in abort[1]["message"]
    memory.assert_idle()


def test_max_sessions_per_realm():
    memory = router(max_sessions=10, max_sessions_per_realm=2)
    for _ in range(2):
        memory.join("realm1")
    refused = memory.connect()
    abort = hello(refused, "realm1")
    assert abort[0] == ABORT and abort[2] == LIMIT_EXCEEDED and "max_sessions_per_realm" in abort[1]["message"]
    memory.join("realm2")  # another realm still has room
    memory.assert_idle()


@pytest.mark.parametrize("after_goodbye", [False, True], ids=["fresh", "after-goodbye"])
def test_no_hello_within_hello_timeout_closes_1008(after_goodbye):
    memory = MemoryRouter(RouterConfig(realms=("realm1",), hello_timeout=0.3))
    client = memory.connect()
    if after_goodbye:
        client.join()
        memory.advance(1.0)  # an established session has no HELLO deadline
        assert client.open
        assert client.leave()[0] == GOODBYE
    memory.advance(0.29)
    assert client.open
    memory.advance(0.02)
    assert not client.open
    code, reason = client.closed_with
    assert code == 1008 and "HELLO" in reason
    memory.assert_idle()


def test_hello_in_time_is_not_closed_by_the_hello_timeout():
    memory = MemoryRouter(RouterConfig(realms=("realm1",), hello_timeout=0.3))
    client = memory.connect()
    memory.advance(0.2)
    client.join()
    memory.advance(10)
    assert client.open and memory.state_counts()["sessions"] == 1
    memory.assert_idle()
