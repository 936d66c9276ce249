"""Advanced-profile publish/subscribe, driven by autobahn-python clients over real sockets.

Pattern-based subscriptions (prefix, wildcard) with ``details.topic``, publisher exclusion,
subscriber black/white listing, publisher identification, event retention and bad options.
Every test runs with ``json`` and ``msgpack`` and ends with every session gone and
``router.state_counts()`` all zeros.

To show that an event did *not* reach a subscriber, the publication is acknowledged first
(the router writes every EVENT before PUBLISHED) and then a round trip is made on the
subscriber's own connection (:func:`sync`): an EVENT sent to it would have arrived before.
``disclose_me`` has no autobahn-python API; it is added to the PUBLISH on the wire.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from tests.advanced_support import (
    EVENT,
    PUBLISH,
    SUBSCRIBE,
    SUBSCRIBED,
    WELCOME,
    Collector,
    by_serializer,
    expect_application_error,
    sync,
)
from tests.support import within

pytestmark = pytest.mark.slow

ACK = PublishOptions(acknowledge=True)


def options(match: str | None = None, get_retained: bool | None = None) -> SubscribeOptions:
    return SubscribeOptions(match=match, get_retained=get_retained, details=True)


def events_for(session: Any, subscription_id: int) -> list[list]:
    return [frame for frame in session.received(EVENT) if frame[1] == subscription_id]


# -- WELCOME ----------------------------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_welcome_announces_broker_features(harness, ser):
    session = yield harness.connect(ser)
    features = session.received(WELCOME)[0][2]["roles"]["broker"]["features"]
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
    yield harness.finish()


# -- pattern-based subscriptions ----------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_prefix_subscription_spec_examples(harness, ser):
    subscriber = yield harness.connect(ser)
    publisher = yield harness.connect(ser)
    events = Collector()
    subscription = yield within(subscriber.subscribe(events, "com.myapp.topic.emergency", options=options("prefix")))
    assert subscriber.sent(SUBSCRIBE)[-1][2] == {"match": "prefix"}

    matching = [
        "com.myapp.topic.emergency.11",
        "com.myapp.topic.emergency-low",
        "com.myapp.topic.emergency.category.severe",
        "com.myapp.topic.emergency",
    ]
    for topic in matching + ["com.myapp.topic.emerge"]:
        yield within(publisher.publish(topic, topic, options=ACK))
    yield sync(subscriber)

    assert [args for args in events.args] == [(topic,) for topic in matching]
    assert [details.topic for details in events.details] == matching
    assert [frame[3] for frame in events_for(subscriber, subscription.id)] == [{"topic": topic} for topic in matching]
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_wildcard_subscription_spec_examples(harness, ser):
    subscriber = yield harness.connect(ser)
    publisher = yield harness.connect(ser)
    events = Collector()
    yield within(subscriber.subscribe(events, "com.myapp..userevent", options=options("wildcard")))

    matching = ["com.myapp.foo.userevent", "com.myapp.bar.userevent", "com.myapp.a12.userevent"]
    others = ["com.myapp.foo.userevent.bar", "com.myapp.foo.user", "com.myapp2.foo.userevent"]
    for topic in matching + others:
        yield within(publisher.publish(topic, topic, options=ACK))
    yield sync(subscriber)
    assert events.args == [(topic,) for topic in matching]
    assert [details.topic for details in events.details] == matching
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_event_delivered_once_per_matching_subscription(harness, ser):
    subscriber = yield harness.connect(ser)
    exact_only = yield harness.connect(ser)
    publisher = yield harness.connect(ser)
    events = Collector()
    exact = yield within(subscriber.subscribe(events, "a.b.c", options=options()))
    prefix = yield within(subscriber.subscribe(events, "a.b", options=options("prefix")))
    wildcard = yield within(subscriber.subscribe(events, "a..c", options=options("wildcard")))
    other_events = Collector()
    other = yield within(exact_only.subscribe(other_events, "a.b.c"))
    assert other.id == exact.id  # one subscription per (topic, match), shared by its subscribers

    publication = yield within(publisher.publish("a.b.c", 1, options=ACK))
    yield sync(subscriber)
    yield sync(exact_only)

    frames = subscriber.received(EVENT)
    assert sorted(frame[1] for frame in frames) == sorted([exact.id, prefix.id, wildcard.id])
    assert {frame[2] for frame in frames} == {publication.id}
    by_subscription = {frame[1]: frame[3] for frame in frames}
    assert by_subscription[exact.id] == {}  # the concrete topic only for pattern subscriptions
    assert by_subscription[prefix.id] == by_subscription[wildcard.id] == {"topic": "a.b.c"}
    assert len(events.calls) == 3 and len(other_events.calls) == 1
    yield harness.finish()


# -- publisher exclusion ------------------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_exclude_me(harness, ser):
    publisher = yield harness.connect(ser)
    subscriber = yield harness.connect(ser)
    own, others = Collector(), Collector()
    yield within(publisher.subscribe(own, "com.example.topic"))
    yield within(subscriber.subscribe(others, "com.example.topic"))

    yield within(publisher.publish("com.example.topic", "default", options=ACK))
    yield within(
        publisher.publish("com.example.topic", "mine too", options=PublishOptions(acknowledge=True, exclude_me=False))
    )
    yield within(
        publisher.publish("com.example.topic", "explicit", options=PublishOptions(acknowledge=True, exclude_me=True))
    )
    yield sync(subscriber)
    assert publisher.sent(PUBLISH)[1][2] == {"acknowledge": True, "exclude_me": False}
    assert own.args == [("mine too",)]
    assert others.args == [("default",), ("mine too",), ("explicit",)]
    yield harness.finish()


# -- subscriber black- and whitelisting ---------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_subscriber_black_and_white_listing(harness, ser):
    publisher = yield harness.connect(ser)
    names = ("alice", "bob", "carol")
    roles = {"alice": "admin", "bob": "user", "carol": "user"}
    subscribers = {}
    received = {}
    for name in names:
        session = yield harness.connect(ser)
        harness.assume_identity(session, authid=name, authrole=roles[name])
        received[name] = Collector()
        yield within(session.subscribe(received[name], "com.example.news"))
        subscribers[name] = session
    ids = {name: session.session_id for name, session in subscribers.items()}

    cases = [
        ("exclude", PublishOptions(exclude=[ids["bob"]]), {"alice", "carol"}),
        ("exclude_authid", PublishOptions(exclude_authid=["alice"]), {"bob", "carol"}),
        ("exclude_authrole", PublishOptions(exclude_authrole=["user"]), {"alice"}),
        ("eligible", PublishOptions(eligible=[ids["alice"], ids["carol"]]), {"alice", "carol"}),
        ("eligible_authid", PublishOptions(eligible_authid=["bob", "carol"]), {"bob", "carol"}),
        ("eligible_authrole", PublishOptions(eligible_authrole=["admin"]), {"alice"}),
        ("eligible+exclude", PublishOptions(eligible=[ids["alice"], ids["bob"]], exclude=[ids["bob"]]), {"alice"}),
        ("role+authid", PublishOptions(eligible_authrole=["user"], exclude_authid=["carol"]), {"bob"}),
        ("nobody", PublishOptions(eligible=[]), set()),
    ]
    for label, publish_options, _ in cases:
        publish_options.acknowledge = True
        yield within(publisher.publish("com.example.news", label, options=publish_options))
    for session in subscribers.values():
        yield sync(session)

    for label, _, expected in cases:
        got = {name for name in names if (label,) in received[name].args}
        assert got == expected, label
    yield harness.finish()


# -- publisher identification ----------------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_publisher_identification(harness, ser):
    publisher = yield harness.connect(ser)
    subscriber = yield harness.connect(ser)
    harness.assume_identity(publisher, authid="sensor-7", authrole="device")
    events = Collector()
    yield within(subscriber.subscribe(events, "com.example.reading", options=options()))

    publisher.patch_next(PUBLISH, disclose_me=True)
    yield within(publisher.publish("com.example.reading", 21.5, options=ACK))
    yield within(publisher.publish("com.example.reading", 22.0, options=ACK))
    yield events.wait_for(2)

    assert publisher.sent(PUBLISH)[0][2] == {"acknowledge": True, "disclose_me": True}
    disclosed, anonymous = events.details
    assert (disclosed.publisher, disclosed.publisher_authid, disclosed.publisher_authrole) == (
        publisher.session_id,
        "sensor-7",
        "device",
    )
    assert (anonymous.publisher, anonymous.publisher_authid, anonymous.publisher_authrole) == (None, None, None)
    frames = subscriber.received(EVENT)
    assert frames[0][3] == {
        "publisher": publisher.session_id,
        "publisher_authid": "sensor-7",
        "publisher_authrole": "device",
    }
    assert frames[1][3] == {}
    yield harness.finish()


# -- event retention --------------------------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_retained_event_delivered_after_subscribed(harness, ser):
    publisher = yield harness.connect(ser)
    retain = PublishOptions(acknowledge=True, retain=True)
    # published while nobody is subscribed
    yield within(publisher.publish("com.example.state", 1, options=retain))
    retained = yield within(publisher.publish("com.example.state", 2, options=retain))
    yield within(publisher.publish("com.example.state", 3, options=ACK))  # not retained
    yield within(publisher.publish("com.example.other", "x", options=retain))

    # get_retained: the most recent retained event, right after SUBSCRIBED
    subscriber = yield harness.connect(ser)
    events = Collector()
    subscription = yield within(subscriber.subscribe(events, "com.example.state", options=options(get_retained=True)))
    yield events.wait_for(1)
    assert subscriber.sent(SUBSCRIBE)[-1][2] == {"get_retained": True}
    frames = subscriber.wire_received
    subscribed_at = next(i for i, frame in enumerate(frames) if frame[0] == SUBSCRIBED and frame[2] == subscription.id)
    assert frames[subscribed_at + 1] == [EVENT, subscription.id, retained.id, {"retained": True}, [2]]
    assert events.args == [(2,)]
    assert events.details[0].retained is True

    # without get_retained: nothing
    plain = yield harness.connect(ser)
    plain_events = Collector()
    yield within(plain.subscribe(plain_events, "com.example.state", options=options()))
    yield sync(plain)
    assert plain_events.calls == []

    # a prefix subscription gets the retained event of every topic it matches, with the topic
    wide = yield harness.connect(ser)
    wide_events = Collector()
    yield within(wide.subscribe(wide_events, "com.example", options=options("prefix", get_retained=True)))
    yield wide_events.wait_for(2)
    yield sync(wide)
    got = sorted(
        (details.topic, args, details.retained) for args, details in zip(wide_events.args, wide_events.details)
    )
    assert got == [("com.example.other", ("x",), True), ("com.example.state", (2,), True)]

    # new events after the retained one carry no retained flag
    yield within(publisher.publish("com.example.state", 4, options=ACK))
    yield events.wait_for(2)
    assert events.args[1] == (4,) and not events.details[1].retained
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_retained_event_only_for_eligible_subscribers(harness, ser):
    publisher = yield harness.connect(ser)
    alice = yield harness.connect(ser)
    bob = yield harness.connect(ser)
    yield within(
        publisher.publish(
            "com.example.secret",
            "for alice",
            options=PublishOptions(acknowledge=True, retain=True, eligible=[alice.session_id]),
        )
    )
    bob_events, alice_events = Collector(), Collector()
    yield within(bob.subscribe(bob_events, "com.example.secret", options=options(get_retained=True)))
    yield sync(bob)
    assert bob_events.calls == []
    yield within(alice.subscribe(alice_events, "com.example.secret", options=options(get_retained=True)))
    yield alice_events.wait_for(1)
    assert alice_events.args == [("for alice",)]
    yield harness.finish()


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
@by_serializer
@pytest_twisted.inlineCallbacks
def test_bad_publish_options(harness, ser, bad, named):
    publisher = yield harness.connect(ser)
    subscriber = yield harness.connect(ser)
    events = Collector()
    yield within(subscriber.subscribe(events, "com.example.topic"))

    # acknowledged: ERROR invalid_argument naming the option
    publisher.patch_next(PUBLISH, **bad)
    error = yield expect_application_error(publisher.publish("com.example.topic", "bad", options=ACK))
    assert publisher.sent(PUBLISH)[-1][2] == {"acknowledge": True, **bad}
    assert error.error == "wamp.error.invalid_argument"
    assert f"'{named}'" in error.args[0]
    # not acknowledged: dropped without an answer
    publisher.patch_next(PUBLISH, **bad)
    publisher.publish("com.example.topic", "bad, quiet")
    # the session goes on; nothing bad was delivered
    yield within(publisher.publish("com.example.topic", "good", options=ACK))
    yield sync(subscriber)
    assert events.args == [("good",)]
    assert publisher.is_attached()
    yield harness.finish()


@pytest.mark.parametrize(
    ("bad", "named"),
    [({"match": "bogus"}, "match"), ({"get_retained": "yes"}, "get_retained")],
    ids=["match", "get_retained"],
)
@by_serializer
@pytest_twisted.inlineCallbacks
def test_bad_subscribe_options(harness, ser, bad, named):
    subscriber = yield harness.connect(ser)
    publisher = yield harness.connect(ser)
    subscriber.patch_next(SUBSCRIBE, **bad)
    error = yield expect_application_error(subscriber.subscribe(Collector(), "com.example.topic"))
    assert subscriber.sent(SUBSCRIBE)[-1][2] == bad
    assert error.error == "wamp.error.invalid_argument"
    assert f"'{named}'" in error.args[0]
    assert harness.router.state_counts()["subscriptions"] == 0
    events = Collector()
    yield within(subscriber.subscribe(events, "com.example.topic"))
    yield within(publisher.publish("com.example.topic", "ok", options=ACK))
    yield events.wait_for(1)
    yield harness.finish()
