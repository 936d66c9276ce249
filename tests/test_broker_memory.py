"""The broker, driven in memory (tests/memory_router.py): pattern-based subscriptions,
publisher exclusion, subscriber black- and whitelisting, publisher identification, event
retention and bad options. Every test ends with every session gone and
``router.state_counts()`` all zeros.
"""

from __future__ import annotations

import pytest

from promisifier.wire.messages import EVENT, PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, WELCOME
from tests.memory_router import MemoryClient, MemoryRouter


@pytest.fixture
def memory() -> MemoryRouter:
    memory = MemoryRouter()
    yield memory
    memory.assert_idle()


def events_of(client: MemoryClient, subscription_id: int | None = None) -> list[list]:
    return [m for m in client.events() if subscription_id is None or m[1] == subscription_id]


def publish_ack(publisher: MemoryClient, topic: str, args: list | None = None, **options) -> int:
    """An acknowledged PUBLISH; returns the publication id (fails the test on an ERROR)."""
    request_id = publisher.publish(topic, args, acknowledge=True, **options)
    reply = publisher.last()
    assert reply[:2] == [PUBLISHED, request_id], reply
    return reply[2]


def test_welcome_announces_broker_features(memory):
    client = memory.join()
    features = client.one(WELCOME)[2]["roles"]["broker"]["features"]
    for feature in (
        "pattern_based_subscription",
        "publisher_exclusion",
        "subscriber_blackwhite_listing",
        "publisher_identification",
        "event_retention",
        "session_meta_api",
        "subscription_meta_api",
    ):
        assert features.get(feature) is True, feature


# -- pattern-based subscriptions ----------------------------------------------------------------


def test_prefix_subscription_spec_examples(memory):
    subscriber, publisher = memory.join(), memory.join()
    subscription_id = subscriber.subscribe("com.myapp.topic.emergency", match="prefix")
    matching = [
        "com.myapp.topic.emergency.11",
        "com.myapp.topic.emergency-low",
        "com.myapp.topic.emergency.category.severe",
        "com.myapp.topic.emergency",
    ]
    for topic in matching + ["com.myapp.topic.emerge"]:
        publish_ack(publisher, topic, [topic])
    events = events_of(subscriber, subscription_id)
    assert [event[4] for event in events] == [[topic] for topic in matching]
    assert [event[3] for event in events] == [{"topic": topic} for topic in matching]


def test_wildcard_subscription_spec_examples(memory):
    subscriber, publisher = memory.join(), memory.join()
    subscriber.subscribe("com.myapp..userevent", match="wildcard")
    matching = ["com.myapp.foo.userevent", "com.myapp.bar.userevent", "com.myapp.a12.userevent"]
    others = ["com.myapp.foo.userevent.bar", "com.myapp.foo.user", "com.myapp2.foo.userevent"]
    for topic in matching + others:
        publish_ack(publisher, topic, [topic])
    assert [event[4] for event in events_of(subscriber)] == [[topic] for topic in matching]
    assert [event[3]["topic"] for event in events_of(subscriber)] == matching


def test_event_delivered_once_per_matching_subscription(memory):
    subscriber, exact_only, publisher = memory.join(), memory.join(), memory.join()
    exact = subscriber.subscribe("a.b.c")
    prefix = subscriber.subscribe("a.b", match="prefix")
    wildcard = subscriber.subscribe("a..c", match="wildcard")
    assert exact_only.subscribe("a.b.c") == exact  # one subscription per (topic, match), shared
    publication_id = publish_ack(publisher, "a.b.c", [1])
    events = events_of(subscriber)
    assert sorted(event[1] for event in events) == sorted([exact, prefix, wildcard])
    assert {event[2] for event in events} == {publication_id}
    by_subscription = {event[1]: event[3] for event in events}
    assert by_subscription[exact] == {}  # the concrete topic only for pattern subscriptions
    assert by_subscription[prefix] == by_subscription[wildcard] == {"topic": "a.b.c"}
    assert len(events_of(exact_only)) == 1


# -- publisher exclusion ------------------------------------------------------------------------


def test_exclude_me(memory):
    publisher, subscriber = memory.join(), memory.join()
    publisher.subscribe("com.example.topic")
    subscriber.subscribe("com.example.topic")
    publish_ack(publisher, "com.example.topic", ["default"])
    publish_ack(publisher, "com.example.topic", ["mine too"], exclude_me=False)
    publish_ack(publisher, "com.example.topic", ["explicit"], exclude_me=True)
    assert [event[4] for event in events_of(publisher)] == [["mine too"]]
    assert [event[4] for event in events_of(subscriber)] == [["default"], ["mine too"], ["explicit"]]


# -- subscriber black- and whitelisting ---------------------------------------------------------------


def test_subscriber_black_and_white_listing(memory):
    publisher = memory.join()
    roles = {"alice": "admin", "bob": "user", "carol": "user"}
    subscribers = {}
    for name, role in roles.items():
        client = memory.join()
        client.session.authid, client.session.authrole = name, role
        client.subscribe("com.example.news")
        subscribers[name] = client
    ids = {name: client.session_id for name, client in subscribers.items()}
    cases = [
        ("exclude", {"exclude": [ids["bob"]]}, {"alice", "carol"}),
        ("exclude_authid", {"exclude_authid": ["alice"]}, {"bob", "carol"}),
        ("exclude_authrole", {"exclude_authrole": ["user"]}, {"alice"}),
        ("eligible", {"eligible": [ids["alice"], ids["carol"]]}, {"alice", "carol"}),
        ("eligible_authid", {"eligible_authid": ["bob", "carol"]}, {"bob", "carol"}),
        ("eligible_authrole", {"eligible_authrole": ["admin"]}, {"alice"}),
        ("eligible+exclude", {"eligible": [ids["alice"], ids["bob"]], "exclude": [ids["bob"]]}, {"alice"}),
        ("role+authid", {"eligible_authrole": ["user"], "exclude_authid": ["carol"]}, {"bob"}),
        ("nobody", {"eligible": []}, set()),
    ]
    for label, options, _ in cases:
        publish_ack(publisher, "com.example.news", [label], **options)
    for label, _, expected in cases:
        got = {name for name, client in subscribers.items() if [label] in [e[4] for e in events_of(client)]}
        assert got == expected, label


# -- publisher identification ----------------------------------------------------------------------


def test_publisher_identification(memory):
    publisher, subscriber = memory.join(), memory.join()
    publisher.session.authid, publisher.session.authrole = "sensor-7", "device"
    subscriber.subscribe("com.example.reading")
    publish_ack(publisher, "com.example.reading", [21.5], disclose_me=True)
    publish_ack(publisher, "com.example.reading", [22.0])
    disclosed, anonymous = events_of(subscriber)
    assert disclosed[3] == {
        "publisher": publisher.session_id,
        "publisher_authid": "sensor-7",
        "publisher_authrole": "device",
    }
    assert anonymous[3] == {}


# -- event retention --------------------------------------------------------------------------------


def test_retained_event_delivered_right_after_subscribed(memory):
    publisher = memory.join()
    # published while nobody is subscribed
    publish_ack(publisher, "com.example.state", [1], retain=True)
    retained = publish_ack(publisher, "com.example.state", [2], retain=True)
    publish_ack(publisher, "com.example.state", [3])  # not retained
    publish_ack(publisher, "com.example.other", ["x"], retain=True)

    # get_retained: the most recent retained event, right after SUBSCRIBED
    subscriber = memory.join()
    subscription_id = subscriber.subscribe("com.example.state", get_retained=True)
    subscribed_at = next(i for i, m in enumerate(subscriber.received) if m[0] == SUBSCRIBED)
    assert subscriber.received[subscribed_at + 1 :] == [[EVENT, subscription_id, retained, {"retained": True}, [2]]]

    # without get_retained: nothing
    plain = memory.join()
    plain.subscribe("com.example.state")
    assert events_of(plain) == []

    # a prefix subscription gets the retained event of every topic it matches, with the topic
    wide = memory.join()
    wide.subscribe("com.example", match="prefix", get_retained=True)
    got = sorted((event[3]["topic"], event[4], event[3]["retained"]) for event in events_of(wide))
    assert got == [("com.example.other", ["x"], True), ("com.example.state", [2], True)]

    # new events after the retained one carry no retained flag
    publish_ack(publisher, "com.example.state", [4])
    assert events_of(subscriber)[-1][3:] == [{}, [4]]


def test_retained_event_only_for_eligible_subscribers(memory):
    publisher, alice, bob = memory.join(), memory.join(), memory.join()
    publish_ack(publisher, "com.example.secret", ["for alice"], retain=True, eligible=[alice.session_id])
    bob.subscribe("com.example.secret", get_retained=True)
    assert events_of(bob) == []
    alice.subscribe("com.example.secret", get_retained=True)
    assert [event[4] for event in events_of(alice)] == [["for alice"]]


# -- bad options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"exclude_me": "no"}, "exclude_me"),
        ({"retain": 1}, "retain"),
        ({"disclose_me": "yes"}, "disclose_me"),
        ({"exclude": "everybody"}, "exclude"),
        ({"eligible": [1.5]}, "eligible"),
        ({"eligible_authid": [7]}, "eligible_authid"),
        ({"exclude_authrole": "user"}, "exclude_authrole"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_publish_options(memory, bad, named):
    publisher, subscriber = memory.join(), memory.join()
    subscriber.subscribe("com.example.topic")
    # acknowledged: ERROR invalid_argument naming the option
    request_id = publisher.publish("com.example.topic", ["bad"], acknowledge=True, **bad)
    error = publisher.error_of(PUBLISH, request_id)
    assert error[4] == "wamp.error.invalid_argument" and f"'{named}'" in error[5][0]
    # not acknowledged: dropped without an answer
    received = len(publisher.received)
    publisher.publish("com.example.topic", ["bad, quiet"], **bad)
    assert len(publisher.received) == received
    # the session goes on; nothing bad was delivered
    publish_ack(publisher, "com.example.topic", ["good"])
    assert [event[4] for event in events_of(subscriber)] == [["good"]]
    assert publisher.open


@pytest.mark.parametrize(
    ("bad", "named"),
    [({"match": "bogus"}, "match"), ({"get_retained": "yes"}, "get_retained")],
    ids=["match", "get_retained"],
)
def test_bad_subscribe_options(memory, bad, named):
    subscriber, publisher = memory.join(), memory.join()
    request_id = subscriber.next_request_id()
    subscriber.send_raw([SUBSCRIBE, request_id, bad, "com.example.topic"])
    error = subscriber.error_of(SUBSCRIBE, request_id)
    assert error[4] == "wamp.error.invalid_argument" and f"'{named}'" in error[5][0]
    assert memory.state_counts()["subscriptions"] == 0
    subscriber.subscribe("com.example.topic")
    publish_ack(publisher, "com.example.topic", ["ok"])
    assert len(events_of(subscriber)) == 1


# -- basics -------------------------------------------------------------------------------------------


def test_unsubscribe_stops_delivery_and_the_last_one_out_removes_the_subscription(memory):
    a, b, publisher = memory.join(), memory.join(), memory.join()
    subscription_id = a.subscribe("com.example.topic")
    assert b.subscribe("com.example.topic") == subscription_id
    assert a.subscribe("com.example.topic") == subscription_id  # subscribing again: same id
    publish_ack(publisher, "com.example.topic", [1])
    assert a.unsubscribe(subscription_id)[0] == 35  # UNSUBSCRIBED
    publish_ack(publisher, "com.example.topic", [2])
    assert [event[4] for event in events_of(a)] == [[1]]
    assert [event[4] for event in events_of(b)] == [[1], [2]]
    assert memory.state_counts()["subscriptions"] == 1
    b.unsubscribe(subscription_id)
    assert memory.state_counts()["subscriptions"] == 0
    # unsubscribing again: ERROR no_such_subscription
    assert b.unsubscribe(subscription_id)[4] == "wamp.error.no_such_subscription"


def test_a_slow_consumer_misses_events_others_get(memory):
    slow, fast, publisher = memory.join(), memory.join(), memory.join()
    slow.subscribe("com.example.topic")
    fast.subscribe("com.example.topic")
    slow.congested = True
    publish_ack(publisher, "com.example.topic", [1])
    slow.congested = False
    publish_ack(publisher, "com.example.topic", [2])
    assert [event[4] for event in events_of(slow)] == [[2]]
    assert [event[4] for event in events_of(fast)] == [[1], [2]]
