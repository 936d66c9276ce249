"""/metrics: Prometheus text format from the router's own registry, read at scrape time."""

from __future__ import annotations

import pytest
import pytest_twisted
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer
from twisted.internet.task import Clock

from promisifier import ApplicationError
from promisifier.relay.metrics import RouterCollector
from promisifier.relay.web import RelayWeb
from promisifier.router import Router, RouterConfig
from promisifier.router.counters import CALL_LATENCY_BUCKETS, LatencyHistogram
from promisifier.wire.messages import HELLO
from tests.raw_support import expect_abort, raw_connect, raw_join, send_garbage
from tests.relay_support import relay_config
from tests.support import within

pytestmark = pytest.mark.slow

TICKETS = """
[listeners.auth]
methods = ["anonymous", "ticket"]
[listeners.auth.ticket.principals.alice]
ticket = "right"
role = "anonymous"
"""


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@defer.inlineCallbacks
def scrape(relay):
    code, content_type, body = yield relay.get("/metrics")
    assert code == 200
    assert content_type.startswith("text/plain; version=")
    return samples(body.decode("utf-8"))


@pytest_twisted.inlineCallbacks
def test_metrics_count_sessions_messages_calls_events_and_errors(relays):
    relay = relays(relay_config(TICKETS))
    callee = yield relay.connect(serializers=["json"])
    caller = yield relay.connect(serializers=["msgpack"])
    yield within(callee.register("com.example.add", lambda a, b: a + b))

    def fail():
        raise ApplicationError("com.example.nope")

    yield within(callee.register("com.example.fail", fail))
    got: defer.Deferred = defer.Deferred()
    yield within(callee.subscribe("com.example.news", lambda *a: got.callback(a)))
    for _ in range(3):
        assert (yield within(caller.call("com.example.add", 1, 2))) == 3
    with pytest.raises(ApplicationError):
        yield within(caller.call("com.example.fail"))
    with pytest.raises(ApplicationError):
        yield within(caller.call("com.example.nobody"))
    yield within(caller.publish("com.example.news", 1, acknowledge=True))
    yield within(got)
    # an authentication failure, and a protocol violation (HELLO inside a session)
    with pytest.raises(Exception):
        yield within(relay.connect(authid="alice", credentials={"ticket": "wrong"}, authmethods=["ticket"]))
    raw = yield raw_join(relay.url)
    raw.send([HELLO, "realm1", {"roles": {"caller": {}}}])
    yield expect_abort(raw, "wamp.error.protocol_violation")
    # a frame that does not decode: closed 1007 by the transport
    garbage = yield raw_connect(relay.url)
    send_garbage(garbage, "json")
    yield within(garbage.closed)

    found = yield scrape(relay)
    realm = (("realm", "realm1"),)
    assert found[("promisifier_sessions", realm)] == 2
    assert found[("promisifier_registrations", realm)] == 2
    assert found[("promisifier_subscriptions", realm)] == 1
    assert found[("promisifier_pending_calls", realm)] == 0
    assert found[("promisifier_serving", ())] == 1
    for direction in ("in", "out"):
        for serializer in ("json", "msgpack"):
            key = (("direction", direction), ("serializer", serializer))
            assert found[("promisifier_messages_total", key)] > 0
            assert found[("promisifier_bytes_total", key)] > found[("promisifier_messages_total", key)]
    # the raw clients that are gone count too (json): at least their HELLOs
    callee_in = relay.router.realms["realm1"].sessions[callee.session_id].peer.stats.messages_in
    assert found[("promisifier_messages_total", (("direction", "in"), ("serializer", "json")))] > callee_in

    def calls(outcome: str) -> float:
        return found[("promisifier_calls_total", (("outcome", outcome), ("realm", "realm1")))]

    assert (calls("result"), calls("error"), calls("rejected"), calls("timeout")) == (3, 1, 1, 0)
    assert found[("promisifier_call_duration_seconds_count", realm)] == 4
    assert found[("promisifier_call_duration_seconds_bucket", (("le", "+Inf"), ("realm", "realm1")))] == 4
    assert 0 < found[("promisifier_call_duration_seconds_sum", realm)] < 10
    assert found[("promisifier_events_published_total", realm)] >= 1
    assert found[("promisifier_events_delivered_total", realm)] >= 1
    assert found[("promisifier_auth_failures_total", ())] == 1
    assert found[("promisifier_protocol_errors_total", (("layer", "wamp"),))] == 1
    assert found[("promisifier_protocol_errors_total", (("layer", "transport"),))] == 1
    assert found[("promisifier_dropped_events_total", (("serializer", "json"),))] == 0
    assert ("process_start_time_seconds", ()) in found or ("process_cpu_seconds_total", ()) in found


@pytest_twisted.inlineCallbacks
def test_dropped_events_and_sessions_that_left_stay_counted(relays):
    relay = relays()
    session = yield relay.connect(serializers=["json"])
    server_side = relay.router.realms["realm1"].sessions[session.session_id].peer
    server_side.stats.dropped_events += 7  # as the transport counts a slow consumer's drops
    before = yield scrape(relay)
    assert before[("promisifier_dropped_events_total", (("serializer", "json"),))] == 7
    yield within(session.leave())
    yield within(session.close())
    relay.sessions.remove(session)
    after = yield scrape(relay)
    assert after[("promisifier_sessions", (("realm", "realm1"),))] == 0
    assert after[("promisifier_dropped_events_total", (("serializer", "json"),))] == 7
    key = ("promisifier_messages_total", (("direction", "in"), ("serializer", "json")))
    assert after[key] >= before[key]


@pytest_twisted.inlineCallbacks
def test_metrics_can_be_switched_off(relays):
    relay = relays(relay_config("metrics = false"))
    assert (yield relay.get("/metrics"))[0] == 404
    assert (yield relay.get("/status"))[0] == 200


def test_each_router_has_its_own_registry_and_none_touches_the_global_one():
    before = generate_latest(REGISTRY)
    first, second = Router(RouterConfig(), reactor=Clock()), Router(RouterConfig(realms=("a", "b")), reactor=Clock())
    for _ in range(5):
        first.realms["realm1"].dealer.call_latency.observe(0.001)
    one, two = RelayWeb.of(first).registry, RelayWeb.of(second).registry
    assert one is not two and one is not REGISTRY
    assert RelayWeb.of(first).registry is one
    one_text = samples(generate_latest(one).decode())
    two_text = samples(generate_latest(two).decode())
    assert one_text[("promisifier_calls_total", (("outcome", "result"), ("realm", "realm1")))] == 5
    assert ("promisifier_sessions", (("realm", "a"),)) in two_text
    assert ("promisifier_sessions", (("realm", "a"),)) not in one_text
    assert b"promisifier_" not in generate_latest(REGISTRY) and generate_latest(REGISTRY).count(b"\n") == before.count(
        b"\n"
    )


def test_the_latency_histogram_counts_each_call_once_in_its_bucket():
    histogram = LatencyHistogram()
    for seconds in (0.0001, 0.0005, 0.003, 0.003, 20.0):
        histogram.observe(seconds)
    cumulative = dict(histogram.cumulative())
    assert cumulative[0.0005] == 2  # le: 0.0005 itself is inside
    assert cumulative[0.001] == 2 and cumulative[0.005] == 4 and cumulative[10.0] == 4
    assert cumulative[float("inf")] == histogram.count == 5
    assert histogram.sum == pytest.approx(20.0066)
    assert len(histogram.cumulative()) == len(CALL_LATENCY_BUCKETS) + 1


def test_call_latency_is_measured_on_the_router_clock():
    """CALL at t, YIELD at t + 0.2 on a test clock: one observation of 0.2 s."""
    from tests.test_logging import local_sessions

    clock = Clock()
    router = Router(RouterConfig(), reactor=clock)
    caller, callee = local_sessions(router, clock, 2)
    callee.on_message([64, 1, {}, "com.example.slow"])
    caller.on_message([48, 1, {}, "com.example.slow", [1]])
    [invocation] = [m for m in callee.peer.sent if m[0] == 68]
    clock.advance(0.2)
    callee.on_message([70, invocation[1], {}, [2]])
    dealer = router.realms["realm1"].dealer
    assert dealer.call_latency.count == 1
    assert dealer.call_latency.sum == pytest.approx(0.2)
    assert dict(dealer.call_latency.cumulative())[0.25] == 1 and dict(dealer.call_latency.cumulative())[0.1] == 0
    assert dealer.call_counts()["result"] == 1
    text = samples(generate_latest(RelayWeb.of(router).registry).decode())
    assert text[("promisifier_call_duration_seconds_bucket", (("le", "0.25"), ("realm", "realm1")))] == 1
    collector = RouterCollector(router)
    assert any(family.name == "promisifier_calls" for family in collector.collect())
