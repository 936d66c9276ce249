"""Remote procedure calls across the nodes of a cluster: relays as separate processes on the
test's own Redis, callers and callees on different nodes (autobahn-python and our client,
json and msgpack): results, errors, progressive results, timeouts, cancels reaching the
callee's node, caller disclosure, cluster-wide ``single`` and shared registrations, and a
callee's node killed with calls in flight."""

from __future__ import annotations

import signal
import warnings

import orjson
import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions
from twisted.internet import defer, reactor, task
from twisted.web.client import Agent, readBody

import promisifier
from promisifier.client.errors import ApplicationError as OurApplicationError
from promisifier.wire.messages import CALL
from tests.advanced_support import WireSession
from tests.cluster_support import HEARTBEAT_INTERVAL, TTL
from tests.support import SERIALIZER_NAMES, connect_autobahn, leave_and_wait, until, within

pytestmark = pytest.mark.slow


@defer.inlineCallbacks
def registered_on(node, uri: str, seconds: float = 10.0):
    """Wait until ``node``'s dealer has a registration of ``uri`` (its own or mirrored)."""
    deadline = reactor.seconds() + seconds
    while True:
        response = yield within(Agent(reactor).request(b"GET", f"{node.http}/status.json".encode()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # readBody over Agent's transport
            status = orjson.loads((yield within(readBody(response))))
        uris = {r["uri"] for realm in status["realms"] for r in realm["registrations"]}
        if uri in uris:
            return
        if reactor.seconds() > deadline:
            pytest.fail(f"{uri} not registered on {node.name}: {sorted(uris)}")
        yield task.deferLater(reactor, 0.05, lambda: None)


@pytest.fixture
def two_nodes(cluster):
    return cluster("n1"), cluster("n2")


@pytest.mark.process
@pytest.mark.parametrize("serializer", SERIALIZER_NAMES)
@pytest_twisted.inlineCallbacks
def test_results_errors_progress_and_disclosure_across_nodes(two_nodes, serializer):
    n1, n2 = two_nodes
    callee = yield within(promisifier.connect(n2.url, "realm1", serializers=[serializer]))
    seen = []

    def add(a, b, details=None):
        seen.append(details)
        return a + b

    def fail(*args, **kwargs):
        raise OurApplicationError("com.example.oops", *args, **kwargs)

    def count(n, progress=None):
        for i in range(n):
            progress(i)
        return "done"

    yield within(callee.register("com.add", add, details=True))
    yield within(callee.register("com.fail", fail))
    yield within(callee.register("com.count", count))
    yield within(callee.register("com.pattern", lambda *args, **kwargs: [args, kwargs], match="prefix"))
    for uri in ("com.add", "com.fail", "com.count", "com.pattern"):
        yield registered_on(n1, uri)

    caller = yield connect_autobahn(n1.url, serializer=serializer, session_class=WireSession)
    assert (yield within(caller.call("com.add", 2, 3))) == 5
    assert seen[-1].caller is None
    caller.patch_next(CALL, disclose_me=True)  # autobahn-python has no option for it
    assert (yield within(caller.call("com.add", 1, 1))) == 2
    assert (seen[-1].caller, seen[-1].caller_authrole) == (caller.session_id, "anonymous")

    with pytest.raises(ApplicationError) as info:
        yield within(caller.call("com.fail", 1, "two", key={"k": [1]}))
    assert (info.value.error, info.value.args, info.value.kwargs) == (
        "com.example.oops",
        (1, "two"),
        {"key": {"k": [1]}},
    )

    progress: list = []
    result = yield within(caller.call("com.count", 4, options=CallOptions(on_progress=progress.append)))
    assert (result, progress) == ("done", [0, 1, 2, 3])

    result = yield within(caller.call("com.pattern.x", 7, b"\x00bin", k="v"))
    assert result == [[7, b"\x00bin"], {"k": "v"}]

    with pytest.raises(ApplicationError) as info:
        yield within(caller.call("com.nothing"))
    assert info.value.error == "wamp.error.no_such_procedure"
    assert caller.judge.failures == []
    yield leave_and_wait(caller)
    yield within(callee.leave())


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_a_single_registration_is_single_cluster_wide(two_nodes):
    n1, n2 = two_nodes
    a = yield within(promisifier.connect(n1.url, "realm1"))
    b = yield within(promisifier.connect(n2.url, "realm1"))
    yield within(a.register("com.one", lambda: "a"))
    with pytest.raises(OurApplicationError) as info:
        yield within(b.register("com.one", lambda: "b"))
    assert info.value.error == "wamp.error.procedure_already_exists"
    # at the same moment from both nodes: exactly one wins
    results = yield within(
        defer.DeferredList(
            [a.register("com.race", lambda: "a"), b.register("com.race", lambda: "b")], consumeErrors=True
        )
    )
    assert sorted(ok for ok, _ in results) == [False, True]
    [(_, failure)] = [(ok, value) for ok, value in results if not ok]
    assert failure.value.error == "wamp.error.procedure_already_exists"
    # once unregistered, the other node may register it
    registration = yield within(a.register("com.two", lambda: "a"))
    yield registered_on(n2, "com.two")
    yield within(registration.unregister())
    # the table in Redis hears of it a moment after UNREGISTERED
    deadline = reactor.seconds() + 5
    while True:
        try:
            yield within(b.register("com.two", lambda: "b"))
            break
        except OurApplicationError as error:
            assert error.error == "wamp.error.procedure_already_exists"
            assert reactor.seconds() < deadline, "com.two stayed registered in Redis"
            yield task.deferLater(reactor, 0.05, lambda: None)
    yield registered_on(n1, "com.two")
    assert (yield within(a.call("com.two"))) == "b"
    yield within(a.leave())
    yield within(b.leave())


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_a_shared_registration_spans_nodes(cluster):
    n1, n2, n3 = cluster("n1"), cluster("n2"), cluster("n3")
    a = yield within(promisifier.connect(n1.url, "realm1"))
    b = yield within(promisifier.connect(n2.url, "realm1"))
    yield within(a.register("com.shared", lambda: "n1", invoke="roundrobin"))
    yield within(b.register("com.shared", lambda: "n2", invoke="roundrobin"))
    with pytest.raises(OurApplicationError) as info:
        yield within(b.register("com.shared", lambda: "x", invoke="random"))
    assert info.value.error == "wamp.error.procedure_already_exists"
    caller = yield within(promisifier.connect(n3.url, "realm1"))
    yield registered_on(n3, "com.shared")
    answers = []
    deadline = reactor.seconds() + 5  # until both nodes' callees reached n3's table
    while set(answers) != {"n1", "n2"} and reactor.seconds() < deadline:
        answers.append((yield within(caller.call("com.shared"))))
    assert set(answers) == {"n1", "n2"}
    for session in (a, b, caller):
        yield within(session.leave())


class SlowCallee:
    """An autobahn callee whose calls never end by themselves: it records which ones were
    interrupted (autobahn cancels the Deferred on INTERRUPT)."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.cancelled: list[int] = []

    def __call__(self, n):
        self.started.append(n)
        d = defer.Deferred(lambda _: self.cancelled.append(n))
        return d


@pytest.mark.process
@pytest.mark.parametrize("mode", ["killnowait", "kill"])
@pytest_twisted.inlineCallbacks
def test_timeout_and_cancel_interrupt_the_callee_on_its_node(two_nodes, mode):
    n1, n2 = two_nodes
    slow = SlowCallee()
    callee = yield connect_autobahn(n2.url, serializer="msgpack")
    yield within(callee.register(slow, "com.slow"))
    yield registered_on(n1, "com.slow")
    caller = yield within(promisifier.connect(n1.url, "realm1", serializers=["json"]))

    with pytest.raises(Exception) as info:
        yield within(caller.call("com.slow", 1, timeout=0.5))
    assert "timeout" in str(info.value).lower()
    assert (yield until(lambda: slow.cancelled == [1]))

    caller.cancel_mode = mode
    call = caller.call("com.slow", 2)
    assert (yield until(lambda: slow.started == [1, 2]))
    call.cancel()
    with pytest.raises(defer.CancelledError):
        yield within(call)
    assert (yield until(lambda: slow.cancelled == [1, 2]))

    # the caller leaves with a call in flight: the callee is interrupted
    yield within(callee.register(slow, "com.slow2"))
    yield registered_on(n1, "com.slow2")
    caller.call("com.slow2", 3).addErrback(lambda _: None)
    assert (yield until(lambda: slow.started[-1:] == [3]))
    yield within(caller.leave())
    assert (yield until(lambda: slow.cancelled == [1, 2, 3]))
    yield leave_and_wait(callee)


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_calls_in_flight_to_a_killed_node_fail_at_once_and_its_registrations_go(two_nodes):
    n1, n2 = two_nodes
    callee = yield connect_autobahn(n2.url)
    slow = SlowCallee()
    yield within(callee.register(slow, "com.doomed"))
    yield registered_on(n1, "com.doomed")
    caller = yield connect_autobahn(n1.url)
    calls = [caller.call("com.doomed", n) for n in range(3)]
    assert (yield until(lambda: len(slow.started) == 3))
    killed_at = reactor.seconds()
    n2.process.popen.send_signal(signal.SIGKILL)
    for call in calls:
        with pytest.raises(ApplicationError) as info:
            yield within(call, seconds=TTL + 4 * HEARTBEAT_INTERVAL + 2)
        assert info.value.error == "wamp.error.canceled"
        assert "n2" in info.value.args[0]
    assert reactor.seconds() - killed_at <= TTL + 4 * HEARTBEAT_INTERVAL + 1
    with pytest.raises(ApplicationError) as info:
        yield within(caller.call("com.doomed", 9))
    assert info.value.error in ("wamp.error.no_such_procedure", "wamp.error.canceled")
    yield leave_and_wait(caller)


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_calls_to_a_shared_registration_move_to_a_live_callee_when_a_node_is_found_gone(cluster):
    n1, n2, n3 = cluster("n1"), cluster("n2"), cluster("n3")
    b = yield within(promisifier.connect(n2.url, "realm1"))
    c = yield within(promisifier.connect(n3.url, "realm1"))
    yield within(b.register("com.both", lambda: "n2", invoke="roundrobin"))
    yield within(c.register("com.both", lambda: "n3", invoke="roundrobin"))
    caller = yield within(promisifier.connect(n1.url, "realm1"))
    answers = []
    deadline = reactor.seconds() + 5
    while set(answers) != {"n2", "n3"} and reactor.seconds() < deadline:
        answers.append((yield within(caller.call("com.both"))))
    assert set(answers) == {"n2", "n3"}

    n3.process.popen.send_signal(signal.SIGKILL)
    n3.process.popen.wait()
    # n1 has not counted n3 lost yet: the calls it routes there find nobody listening, and
    # go to n2 instead, without an error
    after = yield within(defer.gatherResults([caller.call("com.both") for _ in range(10)]))
    assert after == ["n2"] * 10
    yield within(caller.leave())
    yield within(b.leave())


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_a_killed_callers_node_interrupts_its_calls_on_other_nodes(two_nodes):
    n1, n2 = two_nodes
    slow = SlowCallee()
    callee = yield connect_autobahn(n2.url)
    yield within(callee.register(slow, "com.orphan"))
    yield registered_on(n1, "com.orphan")
    caller = yield within(promisifier.connect(n1.url, "realm1"))
    for n in range(2):
        caller.call("com.orphan", n).addErrback(lambda _: None)
    assert (yield until(lambda: len(slow.started) == 2))
    n1.process.popen.send_signal(signal.SIGKILL)
    # n2 counts n1 lost after its TTL: the callee gets INTERRUPT for both calls
    assert (yield until(lambda: sorted(slow.cancelled) == [0, 1], seconds=TTL + 4 * HEARTBEAT_INTERVAL + 1))
    yield leave_and_wait(callee)


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_a_late_result_for_a_killed_callers_call_is_dropped(two_nodes):
    n1, n2 = two_nodes
    callee = yield connect_autobahn(n2.url, session_class=WireSession)
    callee.hold_interrupts = True  # the callee goes on as if it had not heard
    pending: list[defer.Deferred] = []

    def late(n):
        pending.append(defer.Deferred())
        return pending[-1]

    yield within(callee.register(late, "com.late"))
    yield within(callee.register(lambda: "alive", "com.alive"))
    yield registered_on(n1, "com.late")
    caller = yield within(promisifier.connect(n1.url, "realm1"))
    caller.call("com.late", 1).addErrback(lambda _: None)
    assert (yield until(lambda: len(pending) == 1))
    n1.process.popen.send_signal(signal.SIGKILL)
    assert (yield until(lambda: len(callee.held) == 1, seconds=TTL + 4 * HEARTBEAT_INTERVAL + 1))
    assert callee.held[0].mode == "killnowait"

    # the result comes after all: n2 drops it, and goes on serving
    sent = len(callee.wire_sent)
    pending[0].callback("too late")
    assert (yield until(lambda: any(frame[0] == 70 for frame in callee.wire_sent[sent:])))
    neighbour = yield within(promisifier.connect(n2.url, "realm1"))
    assert (yield within(neighbour.call("com.alive"))) == "alive"
    response = yield within(Agent(reactor).request(b"GET", f"{n2.http}/metrics".encode()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # readBody over Agent's transport
        metrics = yield within(readBody(response))
    assert b'promisifier_pending_calls{realm="realm1"} 0.0' in metrics
    yield within(neighbour.leave())
    yield leave_and_wait(callee)
