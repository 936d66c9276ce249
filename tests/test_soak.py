"""Connection churn: nothing leaks (memory, sessions, registrations, subscriptions, calls).

In each of ``ROUNDS`` rounds, ``CLIENTS`` raw WebSocket clients (half JSON, half
msgpack; 127.0.0.1 only) join, register a procedure of their own (the same names every
round: last round's registrations must be gone) and a shared round-robin one, subscribe
(exact, prefix and wildcard), leave a testament, call each other, publish (some events
retained), and then go away: by GOODBYE, by a WebSocket close without GOODBYE, or by
dropping the TCP connection. In every round some callers drop while their calls wait at a
callee that never answers, and then that callee drops too (its other callers get ERROR
canceled). 8 rounds of 200: 1,600 sessions.

After every round the router holds nothing: ``router.state_counts()`` is all zeros and the
tables behind it (session ids, per-session registrations, invocations, calls and
subscriptions, testaments, the URI indexes and their tries) are empty; the retained
events are one per topic. The relay runs in this process, so its memory is this
process' RSS (``VmRSS`` of ``/proc/self/status``, after ``gc.collect()``). Between the end
of round 2 (allocator pools and caches warm) and the end of the last round:

* RSS may grow by at most ``RSS_GROWTH_LIMIT`` (4 MiB). Measured on the development
  machine, in several runs: 0.0 to 0.7 MiB (e.g. 81.8 -> 82.4 MiB), with +-0.4 MiB of
  noise from round to round; a leak of 3.5 KiB per session would pass the limit;
* the number of objects the garbage collector tracks may grow by at most
  ``OBJECT_GROWTH_LIMIT`` (2,000). Measured: flat (75,165 +- 500); two leaked containers
  per session would add 2,400.

Marked ``soak``: it runs by default (8 to 15 s); ``-m "not soak"`` skips it.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import pytest
import pytest_twisted
from autobahn.twisted.websocket import WebSocketClientFactory
from autobahn.wamp import message as wamp
from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.logger import formatEvent, globalLogBeginner, globalLogPublisher

from promisifier.router import RouterConfig
from tests.raw_support import (
    CALL,
    GOODBYE,
    PUBLISH,
    REGISTER,
    SUBPROTOCOLS,
    SUBSCRIBE,
    YIELD,
    ConnectionClosed,
    RawClient,
    RawWampProtocol,
    hello,
    host_port,
    logged_failure,
)
from tests.support import WAIT, start_router, within

pytestmark = [pytest.mark.slow, pytest.mark.soak]

ROUNDS = 8
CLIENTS = 200
#: clients joining at once (the listen backlog is Twisted's default, 50)
BATCH = 40
GROUPS = 10
#: growth allowed between the end of round 2 and the end of the last round
RSS_GROWTH_LIMIT = 4 * 1024 * 1024
OBJECT_GROWTH_LIMIT = 2000
#: bound on the whole test's run (seconds)
TIME_LIMIT = 60.0


@pytest.fixture(scope="module", autouse=True)
def logging_begun():
    """Begin logging (to no observer), as the relay does at start-up (twistd, or
    ``python -m promisifier relay``). Until logging begins, Twisted keeps the last 65,536
    log events, and every object they name (factories, protocols), in memory: in a test
    process that would be measured as the relay's growth."""
    if getattr(globalLogBeginner, "_temporaryObserver", None) is not None:
        globalLogBeginner.beginLoggingTo([], discardBuffer=True, redirectStandardIO=False)
    yield


@pytest.fixture(autouse=True)
def no_unhandled_errors():
    """As ``no_unhandled_errors`` of ``tests/raw_support.py``, but keeping only the events that carry
    a failure: keeping every event of a thousand connections would hold all their objects
    and be measured as growth."""
    failures: list[dict] = []

    def observer(event: dict) -> None:
        if logged_failure(event) is not None:
            failures.append(event)

    globalLogPublisher.addObserver(observer)
    try:
        yield failures
    finally:
        globalLogPublisher.removeObserver(observer)
    if failures:
        lines = [f"{formatEvent(e)}\n{logged_failure(e).getTraceback()}" for e in failures]
        pytest.fail("an exception escaped into the log:\n" + "\n".join(lines), pytrace=False)


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class SoakClient(RawClient):
    """A raw client that answers invocations itself (YIELD with the call's arguments,
    unless ``answer_invocations`` is off) and sorts answers by request id."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index
        self.answer_invocations = True
        self.held_invocations: list[Any] = []
        self.events = 0
        self._answers: dict[int, Any] = {}
        self._answer_waiters: dict[int, defer.Deferred] = {}

    def _deliver(self, item: Any) -> None:
        if isinstance(item, wamp.Event):
            self.events += 1
            return
        if isinstance(item, wamp.Invocation):
            if self.answer_invocations:
                self.send([YIELD, item.request, {}, item.args or []])
            else:
                self.held_invocations.append(item)
            return
        request = getattr(item, "request", None)
        if request is not None and not isinstance(item, (wamp.Welcome, wamp.Goodbye, wamp.Abort)):
            waiter = self._answer_waiters.pop(request, None)
            if waiter is not None:
                waiter.callback(item)
            else:
                self._answers[request] = item
            return
        super()._deliver(item)

    def _on_close(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        super()._on_close(was_clean, code, reason)
        waiters, self._answer_waiters = self._answer_waiters, {}
        for waiter in waiters.values():
            waiter.errback(ConnectionClosed(code, reason))

    def answer(self, request: int) -> defer.Deferred:
        """The answer to this client's request ``request`` (ERROR, RESULT, REGISTERED, ...)."""
        if request in self._answers:
            return defer.succeed(self._answers.pop(request))
        waiter: defer.Deferred = defer.Deferred()
        self._answer_waiters[request] = waiter
        return within(waiter)

    def drop(self) -> None:
        self.protocol.transport.abortConnection()


@defer.inlineCallbacks
def soak_join(url: str, index: int):
    client = SoakClient(index)
    factory = WebSocketClientFactory(url, protocols=[SUBPROTOCOLS["json" if index % 2 else "msgpack"]])
    factory.protocol = RawWampProtocol
    factory.client = client
    host, port = host_port(url)
    yield within(TCP4ClientEndpoint(reactor, host, port, timeout=WAIT).connect(factory))
    opened = yield within(client.opened)
    assert opened, (client.close_code, client.close_reason)
    client.send(hello())
    welcome = yield client.next_message()
    assert isinstance(welcome, wamp.Welcome), welcome
    return client


def gather(deferreds: list) -> defer.Deferred:
    return defer.gatherResults(deferreds, consumeErrors=True)


@defer.inlineCallbacks
def wait_until(condition, seconds: float, what):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what()}")
        yield task.deferLater(reactor, 0.005, lambda: None)


def leftovers(router) -> dict[str, int]:
    """Sizes of the router's tables that must be empty when nobody is connected."""
    sizes = {"router.sessions": len(router._sessions), "router.session_ids": len(router._session_ids)}
    for name, realm in router.realms.items():
        dealer, broker = realm.dealer, realm.broker
        tables = {
            "sessions": realm.sessions,
            "dealer.registrations": dealer._by_id,
            "dealer.registrations_of": dealer._registrations_of,
            "dealer.invocations_of": dealer._invocations_of,
            "dealer.calls_of": dealer._calls_of,
            "broker.subscriptions": broker._by_id,
            "broker.subscriptions_of": broker._subscriptions_of,
            "meta.testaments": realm.meta._testaments,
        }
        for table, value in tables.items():
            sizes[f"{name}.{table}"] = len(value)
        for index_name, index in (("dealer.index", dealer._index), ("broker.index", broker._index)):
            sizes[f"{name}.{index_name}"] = len(index)
            sizes[f"{name}.{index_name}.prefix_lengths"] = len(index._prefix_length_counts)
            sizes[f"{name}.{index_name}.wildcard_trie"] = len(index._wildcard_root.children)
    return {key: value for key, value in sizes.items() if value}


@defer.inlineCallbacks
def churn_round(running, round_number: int):
    url = running.url
    clients: list[SoakClient] = []
    for start in range(0, CLIENTS, BATCH):
        joined = yield gather([soak_join(url, i) for i in range(start, min(start + BATCH, CLIENTS))])
        clients.extend(joined)

    # registrations, subscriptions, testaments
    requests = []
    for client in clients:
        i = client.index
        client.send([REGISTER, 1, {}, f"com.soak.c{i}"])
        client.send([REGISTER, 2, {"invoke": "roundrobin"}, "com.soak.shared"])
        client.send([SUBSCRIBE, 3, {}, f"com.soak.group{i % GROUPS}"])
        ids = [1, 2, 3]
        if i % 4 == 0:
            client.send([SUBSCRIBE, 4, {"match": "prefix"}, f"com.soak.group{i % GROUPS}"])
            ids.append(4)
        if i % 4 == 1:
            client.send([SUBSCRIBE, 5, {"match": "wildcard"}, f"com.soak.c{i}.."])
            ids.append(5)
        if i % 5 == 0:
            client.send([CALL, 6, {}, "wamp.session.add_testament", ["com.soak.testament", [i], {}]])
            ids.append(6)
        requests.extend(client.answer(request) for request in ids)
    answers = yield gather(requests)
    bad = [a for a in answers if not isinstance(a, (wamp.Registered, wamp.Subscribed, wamp.Result))]
    assert not bad, bad[:5]

    # calls (to a neighbour and round robin) and publications
    requests = []
    for client in clients:
        i = client.index
        client.send([CALL, 10, {}, f"com.soak.c{(i + 1) % CLIENTS}", [i]])
        client.send([CALL, 11, {}, "com.soak.shared", [i, "shared"]])
        client.send([PUBLISH, 12, {"acknowledge": True, "exclude_me": False}, f"com.soak.group{i % GROUPS}", [i]])
        ids = [10, 11, 12]
        if i % 20 == 0:
            client.send([PUBLISH, 13, {"acknowledge": True, "retain": True}, "com.soak.retained", [round_number, i]])
            ids.append(13)
        requests.append(gather([client.answer(request) for request in ids]))
    answers = yield gather(requests)
    for client, (neighbour, shared, published, *_retained) in zip(clients, answers):
        assert isinstance(neighbour, wamp.Result) and neighbour.args == [client.index], neighbour
        assert isinstance(shared, wamp.Result) and shared.args == [client.index, "shared"], shared
        assert isinstance(published, wamp.Published), published
    yield wait_until(
        lambda: sum(c.events for c in clients) >= CLIENTS * (CLIENTS // GROUPS),
        WAIT,
        lambda: f"events: {sum(c.events for c in clients)}",
    )

    # calls left waiting at a callee that never answers; then callers and callee drop
    slow, callers = clients[0], clients[1:21]
    slow.answer_invocations = False
    slow.send([REGISTER, 20, {}, "com.soak.slow"])
    registered = yield slow.answer(20)
    assert isinstance(registered, wamp.Registered), registered
    for caller in callers:
        caller.send([CALL, 21, {}, "com.soak.slow", [caller.index]])
    yield wait_until(lambda: len(slow.held_invocations) == len(callers), WAIT, lambda: len(slow.held_invocations))
    assert running.router.state_counts()["pending_calls"] == len(callers)
    for caller in callers[:10]:
        caller.drop()
    yield gather([within(caller.closed) for caller in callers[:10]])
    slow.drop()
    canceled = yield gather([caller.answer(21) for caller in callers[10:]])
    for answer in canceled:
        assert isinstance(answer, wamp.Error) and answer.error == "wamp.error.canceled", answer

    # everybody else goes away, three ways
    leaving = []
    for client in clients[21:] + callers[10:]:
        way = client.index % 3
        if way == 0:
            client.send([GOODBYE, {}, "wamp.close.normal"])
            leaving.append(client.next_message().addCallback(lambda _, c=client: c.close()))
        elif way == 1:
            leaving.append(client.close())
        else:
            client.drop()
            leaving.append(within(client.closed))
    yield gather(leaving)
    router = running.router
    yield wait_until(
        lambda: all(value == 0 for value in router.state_counts().values()),
        WAIT,
        lambda: f"router state to drain: {router.state_counts()}",
    )
    for client in clients:
        assert client.parse_failures == [], client.parse_failures[:3]


@pytest_twisted.inlineCallbacks
def test_churn_leaves_nothing_behind_and_memory_flat():
    started = time.monotonic()
    running = yield start_router(RouterConfig())
    figures = []
    try:
        for round_number in range(1, ROUNDS + 1):
            yield churn_round(running, round_number)
            router = running.router
            assert router.state_counts() == {
                "connections": 0,
                "sessions": 0,
                "registrations": 0,
                "subscriptions": 0,
                "pending_calls": 0,
            }
            assert leftovers(router) == {}, leftovers(router)
            retained = len(router.realms["realm1"].broker._retained)
            assert retained <= 2, f"{retained} retained events for 2 topics"  # com.soak.retained, testament
            gc.collect()
            figures.append((round_number, rss_bytes(), len(gc.get_objects()), time.monotonic() - started))
            assert time.monotonic() - started < TIME_LIMIT, figures
    finally:
        yield running.stop()
    lines = [f"round {n}: RSS {rss / 2**20:.2f} MiB, {objects} objects, {at:.1f} s" for n, rss, objects, at in figures]
    print(f"\nsoak: {CLIENTS} clients x {ROUNDS} rounds\n" + "\n".join(lines))
    growth = figures[-1][1] - figures[1][1]
    assert growth <= RSS_GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.2f} MiB from round 2 on:\n" + "\n".join(lines)
    objects = figures[-1][2] - figures[1][2]
    assert objects <= OBJECT_GROWTH_LIMIT, f"{objects} more objects from round 2 on:\n" + "\n".join(lines)
