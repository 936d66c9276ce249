"""What a cluster does when Redis goes away and comes back empty, and when a node freezes
past its time-to-live: relays as separate processes on the test's own Redis."""

from __future__ import annotations

import signal
import warnings

import orjson
import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.web.client import Agent, readBody

import promisifier
from promisifier.client.errors import ApplicationError
from tests.cluster_support import HEARTBEAT_INTERVAL, TTL
from tests.support import until, within

pytestmark = pytest.mark.slow

#: how long Redis stays away: longer than the TTL, so that nodes could wrongly be reaped
OUTAGE = 2 * TTL


@defer.inlineCallbacks
def get(node, path: str):
    response = yield within(Agent(reactor).request(b"GET", f"{node.http}{path}".encode()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # readBody over Agent's transport
        body = yield within(readBody(response))
    return response.code, body


@defer.inlineCallbacks
def cluster_health(node):
    code, body = yield get(node, "/health")
    assert code == 200, body
    return orjson.loads(body)["cluster"]


@defer.inlineCallbacks
def eventually(attempt, seconds: float):
    """Run ``attempt()`` (a Deferred) until it succeeds; fail after ``seconds``. Fires with
    (result, seconds it took)."""
    started = reactor.seconds()
    while True:
        try:
            result = yield attempt()
        except Exception:
            if reactor.seconds() - started > seconds:
                raise
            yield task.deferLater(reactor, 0.1, lambda: None)
        else:
            return result, reactor.seconds() - started


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_redis_away_local_traffic_goes_on_remote_calls_fail_fast_and_all_comes_back(cluster, redis_server):
    n1, n2 = cluster("n1"), cluster("n2")
    here = yield within(promisifier.connect(n1.url, "realm1"))
    there = yield within(promisifier.connect(n2.url, "realm1"))
    yield within(here.register("com.local", lambda n: n + 1))
    yield within(there.register("com.remote", lambda: "n2"))
    local_events: list = []
    remote_events: list = []
    yield within(here.subscribe("com.news", local_events.append))
    yield within(there.subscribe("com.news", remote_events.append))
    caller = yield within(promisifier.connect(n1.url, "realm1"))
    yield eventually(lambda: within(caller.call("com.remote")), 5)

    redis_server.stop()
    health, _ = yield eventually(lambda: cluster_health(n1).addCallback(_link_is, "down"), 5)
    assert health["node"] == "n1"

    # a remote call fails at once, never hangs
    started = reactor.seconds()
    with pytest.raises(ApplicationError) as info:
        yield within(caller.call("com.remote"), seconds=3)
    assert info.value.error in ("wamp.error.canceled", "wamp.error.no_eligible_callee")
    assert reactor.seconds() - started < 2.0  # not a timeout: at once (bounded loosely for a busy machine)

    # local traffic goes on without an error for the whole outage
    calls = 0
    outage_ends = reactor.seconds() + OUTAGE
    while reactor.seconds() < outage_ends:
        assert (yield within(caller.call("com.local", calls))) == calls + 1
        yield within(caller.publish("com.news", calls, acknowledge=True))
        calls += 1
        yield task.deferLater(reactor, 0.02, lambda: None)
    assert (yield until(lambda: len(local_events) == calls))
    assert local_events == list(range(calls))
    _, metrics = yield get(n1, "/metrics")
    assert f"promisifier_cluster_dropped_publications_total {calls}.0".encode() in metrics
    assert b"promisifier_cluster_link_up 0.0" in metrics

    # Redis comes back empty: every node announces itself again within 5 s
    redis_server.start()
    result, took = yield eventually(lambda: within(caller.call("com.remote"), seconds=1), 5)
    assert result == "n2" and took < 5
    yield eventually(lambda: cluster_health(n1).addCallback(_link_is, "up"), 5)
    # the other node subscribes again too
    _, took = yield eventually(
        lambda: (
            within(caller.publish("com.news", "back", acknowledge=True))
            .addCallback(lambda _: until(lambda: "back" in remote_events, seconds=0.5))
            .addCallback(_true)
        ),
        5,
    )
    assert remote_events[-1] == "back" and remote_events.count("back") >= 1
    # nobody was counted lost for having been cut off
    for node in (n1, n2):
        assert "lost (no heartbeat" not in node.process.output
    for session in (here, there, caller):
        yield within(session.leave())


def _link_is(health: dict, state: str) -> dict:
    assert health["link"] == state, health
    return health


def _true(ok: bool) -> bool:
    assert ok
    return ok


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_a_node_frozen_past_its_ttl_is_lost_then_comes_back(cluster):
    n1, n2 = cluster("n1"), cluster("n2")
    there = yield within(promisifier.connect(n2.url, "realm1"))
    pending = defer.Deferred()
    yield within(there.register("com.hang", lambda: pending))
    yield within(there.register("com.ok", lambda: "ok"))
    caller = yield within(promisifier.connect(n1.url, "realm1"))
    yield eventually(lambda: within(caller.call("com.ok")), 5)
    call = caller.call("com.hang")
    yield task.deferLater(reactor, 2 * HEARTBEAT_INTERVAL, lambda: None)

    n2.process.popen.send_signal(signal.SIGSTOP)
    try:
        started = reactor.seconds()
        with pytest.raises(ApplicationError) as info:
            yield within(call, seconds=TTL + 3)
        assert info.value.error == "wamp.error.canceled" and "n2" in info.value.args[0]
        assert reactor.seconds() - started <= TTL + 4 * HEARTBEAT_INTERVAL + 1
    finally:
        n2.process.popen.send_signal(signal.SIGCONT)
    # its client connection survived; the node announces itself and its callees again
    result, _ = yield eventually(lambda: within(caller.call("com.ok"), seconds=1), 5)
    assert result == "ok"
    yield within(caller.leave())


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_registrations_changed_while_the_link_was_down_reach_redis_when_it_is_back(cluster, redis_server):
    n1, n2 = cluster("n1"), cluster("n2")
    there = yield within(promisifier.connect(n2.url, "realm1"))
    before = yield within(there.register("com.before", lambda: "before"))
    caller = yield within(promisifier.connect(n1.url, "realm1"))
    yield eventually(lambda: within(caller.call("com.before")), 5)

    # Redis answers nobody for a while but keeps its data: the nodes' links go down, and
    # come back to a server that still knows them
    assert redis_server.command("CLIENT", "PAUSE", str(int(OUTAGE * 1000)), "ALL") == b"+OK\r\n"
    yield eventually(lambda: cluster_health(n2).addCallback(_link_is, "down"), 5)
    yield within(there.register("com.during", lambda: "during"))
    yield within(before.unregister())

    result, _ = yield eventually(lambda: within(caller.call("com.during"), seconds=1), OUTAGE + 5)
    assert result == "during"
    with pytest.raises(ApplicationError) as info:
        yield within(caller.call("com.before"))
    assert info.value.error == "wamp.error.no_such_procedure"
    for session in (there, caller):
        yield within(session.leave())


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_killed_subscriber_connections_fail_the_calls_they_may_have_lost_then_recover(cluster, redis_server):
    n1, n2 = cluster("n1"), cluster("n2")
    there = yield within(promisifier.connect(n2.url, "realm1"))
    yield within(there.register("com.hang", lambda: defer.Deferred()))
    yield within(there.register("com.ok", lambda: "ok"))
    caller = yield within(promisifier.connect(n1.url, "realm1"))
    yield eventually(lambda: within(caller.call("com.ok")), 5)
    call = caller.call("com.hang")
    yield task.deferLater(reactor, 2 * HEARTBEAT_INTERVAL, lambda: None)

    assert redis_server.command("CLIENT", "KILL", "TYPE", "pubsub").startswith(b":")
    with pytest.raises(ApplicationError) as info:
        yield within(call, seconds=3)
    assert info.value.error == "wamp.error.canceled"
    result, _ = yield eventually(lambda: within(caller.call("com.ok"), seconds=1), 5)
    assert result == "ok"
    for session in (there, caller):
        yield within(session.leave())
