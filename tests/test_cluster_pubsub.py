"""Publish/subscribe across the nodes of a cluster: relays as separate processes on the
test's own Redis, autobahn-python and our client connected to different nodes, json and
msgpack.

To show that an event did *not* reach a subscriber, the same publisher then publishes a
marker every subscriber receives: order from one publisher is kept, so an event sent
before the marker would have arrived first.
"""

from __future__ import annotations

import re

import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions, SubscribeOptions
from twisted.internet import defer

import promisifier
from promisifier.cluster.bus import SLOTS
from tests.advanced_support import PUBLISH, WireSession
from tests.support import SERIALIZER_NAMES, connect_autobahn, leave_and_wait, until, within

pytestmark = pytest.mark.slow


class Inbox:
    """Events one handler received: (args, kwargs, details)."""

    def __init__(self) -> None:
        self.events: list[tuple[tuple, dict, object]] = []

    def __call__(self, *args, details=None, **kwargs) -> None:
        self.events.append((args, kwargs, details))

    @property
    def args(self) -> list[tuple]:
        return [args for args, _, _ in self.events]


def subscribe(session, topic: str, match: str | None = None) -> defer.Deferred:
    inbox = Inbox()
    d = session.subscribe(inbox, topic, options=SubscribeOptions(match=match, details=True))
    return d.addCallback(lambda _: inbox)


@pytest.fixture
def three_nodes(cluster):
    return cluster("n1"), cluster("n2"), cluster("n3")


@pytest.mark.process
@pytest.mark.parametrize("serializer", SERIALIZER_NAMES)
@pytest_twisted.inlineCallbacks
def test_exact_prefix_and_wildcard_subscriptions_on_other_nodes_get_each_event_once_in_order(three_nodes, serializer):
    n1, n2, n3 = three_nodes
    publisher = yield within(promisifier.connect(n1.url, "realm1", serializers=[serializer]))
    on_n2 = yield connect_autobahn(n2.url, serializer=serializer)
    on_n3 = yield connect_autobahn(n3.url, serializer=serializer)
    on_n1 = yield connect_autobahn(n1.url, serializer=serializer)
    exact = yield within(subscribe(on_n2, "com.x.y"))
    prefix = yield within(subscribe(on_n2, "com.x", "prefix"))
    wildcard = yield within(subscribe(on_n3, "com..y", "wildcard"))
    local = yield within(subscribe(on_n1, "com.x.y"))
    # a wildcard pattern's glob matches across dots: the node checks the topic itself
    deep = yield within(subscribe(on_n3, "com..z", "wildcard"))

    for n in range(30):
        yield within(publisher.publish("com.x.y", n, {"binary": b"\x00\xff"}, key=f"v{n}", acknowledge=True))
    yield within(publisher.publish("com.x.q.z", "deep", acknowledge=True))
    yield within(publisher.publish("com.x.z", "end", acknowledge=True))
    assert (yield until(lambda: prefix.args[-1:] == [("end",)]))
    assert (yield until(lambda: deep.args[-1:] == [("end",)]))

    expected = [(n, {"binary": b"\x00\xff"}) for n in range(30)]
    assert exact.args == expected
    assert prefix.args == [*expected, ("deep",), ("end",)]
    assert wildcard.args == expected
    assert local.args == expected
    assert deep.args == [("end",)]
    assert [kwargs for _, kwargs, _ in exact.events] == [{"key": f"v{n}"} for n in range(30)]
    assert {details.topic for _, _, details in prefix.events} == {"com.x.y", "com.x.q.z", "com.x.z"}
    assert {details.topic for _, _, details in wildcard.events} == {"com.x.y"}
    assert exact.events[0][2].publisher is None
    for session in (on_n1, on_n2, on_n3):
        assert session.judge.failures == []
        yield leave_and_wait(session)
    yield within(publisher.leave())


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_publisher_exclusion_black_and_white_lists_and_disclosure_across_nodes(three_nodes):
    n1, n2, n3 = three_nodes
    publisher = yield connect_autobahn(n1.url, session_class=WireSession)
    b1 = yield connect_autobahn(n2.url)
    b2 = yield connect_autobahn(n2.url)
    c1 = yield connect_autobahn(n3.url, serializer="msgpack")
    inboxes = {}
    for name, session in (("pub", publisher), ("b1", b1), ("b2", b2), ("c1", c1)):
        inboxes[name] = yield within(subscribe(session, "com.t"))
    ids = {name: s.session_id for name, s in (("pub", publisher), ("b1", b1), ("b2", b2), ("c1", c1))}
    authid_b2 = b2.join_details.authid

    def publish(label: str, **options) -> defer.Deferred:
        return within(publisher.publish("com.t", label, options=PublishOptions(acknowledge=True, **options)))

    yield publish("all")
    yield publish("exclude b1", exclude=[ids["b1"]])
    yield publish("eligible b2 c1", eligible=[ids["b2"], ids["c1"]])
    yield publish("eligible b2 by authid", eligible_authid=[authid_b2])
    yield publish("exclude b2 by authid", exclude_authid=[authid_b2])
    yield publish("nobody anonymous", exclude_authrole=["anonymous"])
    yield publish("every anonymous", eligible_authrole=["anonymous"])
    yield publish("me too", exclude_me=False)
    publisher.patch_next(PUBLISH, disclose_me=True)  # autobahn-python has no option for it
    yield publish("disclosed")
    yield publish("marker", exclude_me=False)
    assert (yield until(lambda: all(inbox.args[-1:] == [("marker",)] for inbox in inboxes.values())))

    def labels(name: str) -> list[str]:
        return [args[0] for args in inboxes[name].args]

    everyone = ["all", "every anonymous"]
    assert labels("b1") == [*everyone[:1], "exclude b2 by authid", "every anonymous", "me too", "disclosed", "marker"]
    assert labels("b2") == [
        "all",
        "exclude b1",
        "eligible b2 c1",
        "eligible b2 by authid",
        "every anonymous",
        "me too",
        "disclosed",
        "marker",
    ]
    assert labels("c1") == [
        "all",
        "exclude b1",
        "eligible b2 c1",
        "exclude b2 by authid",
        "every anonymous",
        "me too",
        "disclosed",
        "marker",
    ]
    assert labels("pub") == ["me too", "marker"]
    [details] = [d for args, _, d in inboxes["c1"].events if args == ("disclosed",)]
    assert (details.publisher, details.publisher_authrole) == (ids["pub"], "anonymous")
    assert details.publisher_authid == publisher.join_details.authid
    for session in (publisher, b1, b2, c1):
        yield leave_and_wait(session)


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_unsubscribing_stops_the_events_and_the_node_stops_listening(cluster, redis_server):
    n1, n2 = cluster("n1"), cluster("n2")
    publisher = yield within(promisifier.connect(n1.url, "realm1"))
    subscriber = yield within(promisifier.connect(n2.url, "realm1", serializers=["json"]))
    got: list = []
    subscription = yield within(subscriber.subscribe("com.u", got.append))
    marker: list = []
    yield within(subscriber.subscribe("com.marker", marker.append))
    assert b"promisifier:t:realm1:com.u" in redis_server.command("PUBSUB", "CHANNELS")
    yield within(publisher.publish("com.u", 1, acknowledge=True))
    assert (yield until(lambda: got == [1]))
    yield within(subscription.unsubscribe())
    # the node stops listening after UNSUBSCRIBED, without waiting for Redis
    assert (yield until(lambda: b"promisifier:t:realm1:com.u" not in redis_server.command("PUBSUB", "CHANNELS")))
    yield within(publisher.publish("com.u", 2, acknowledge=True))
    yield within(publisher.publish("com.marker", "m", acknowledge=True))
    assert (yield until(lambda: marker == ["m"]))
    assert got == [1]
    yield within(subscriber.leave())
    yield within(publisher.leave())


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_one_redis_publish_per_publication_whatever_the_subscribers(three_nodes, redis_server):
    n1, n2, n3 = three_nodes
    publisher = yield within(promisifier.connect(n1.url, "realm1"))
    inboxes = []
    for node in (n2, n2, n3, n3):
        session = yield within(promisifier.connect(node.url, "realm1"))
        got: list = []
        inboxes.append(got)
        yield within(session.subscribe("com.count", got.append))
        yield within(session.subscribe("com", got.append, match="prefix"))

    def counts() -> tuple[int, int]:
        stats = redis_server.command("INFO", "commandstats").decode()
        publish = re.search(r"cmdstat_publish:calls=(\d+)", stats)
        evals = re.search(r"cmdstat_eval(?:sha)?:calls=(\d+)", stats)
        return int(publish.group(1)) if publish else 0, int(evals.group(1)) if evals else 0

    publishes_before, evals_before = counts()
    for n in range(100):
        yield within(publisher.publish("com.count", n, acknowledge=True))
    assert (yield until(lambda: all(len(got) == 200 for got in inboxes)))
    publishes_after, evals_after = counts()
    # each heartbeat script also publishes one probe; a meta event of the subscriptions
    # above may still be on its way: one PUBLISH per publication, not one per node or subscriber
    assert 100 <= publishes_after - publishes_before - (evals_after - evals_before) <= 110


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_session_ids_are_unique_across_nodes_by_their_slot(cluster):
    n1, n2 = cluster("n1"), cluster("n2")
    sessions = []
    for node in (n1, n2, n1, n2):
        sessions.append((yield within(promisifier.connect(node.url, "realm1"))))
    slots = [session.session_id % SLOTS for session in sessions]
    assert slots[0] == slots[2] and slots[1] == slots[3] and slots[0] != slots[1]
    for session in sessions:
        yield within(session.leave())


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_retained_events_reach_late_subscribers_on_any_node(three_nodes):
    n1, n2, n3 = three_nodes
    publisher = yield connect_autobahn(n1.url)
    for topic, value in (("com.r.a", 1), ("com.r.a", 2), ("com.r.b", 3)):
        yield within(publisher.publish(topic, value, options=PublishOptions(acknowledge=True, retain=True)))
    yield within(publisher.publish("com.r.c", "not retained", options=PublishOptions(acknowledge=True)))
    # no node but n1 listened to these topics when they were published
    late = yield connect_autobahn(n2.url, serializer="msgpack")
    exact = Inbox()
    yield within(late.subscribe(exact, "com.r.a", options=SubscribeOptions(get_retained=True, details=True)))
    assert (yield until(lambda: exact.args == [(2,)]))
    assert exact.events[0][2].retained is True
    pattern = Inbox()
    other = yield connect_autobahn(n3.url)
    options = SubscribeOptions(match="prefix", get_retained=True, details=True)
    yield within(other.subscribe(pattern, "com.r", options=options))
    assert (yield until(lambda: sorted(pattern.args) == [(2,), (3,)]))
    for session in (publisher, late, other):
        yield leave_and_wait(session)
