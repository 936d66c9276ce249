"""Advanced-profile publish/subscribe with autobahn-python clients over real sockets: what
autobahn makes of a pattern subscription's ``details.topic``, a disclosed publisher and a
retained event. The broker's own rules (patterns, exclusion, black/white listing, retention,
bad options) are tested in memory in tests/test_broker_memory.py. Every test runs with ``json`` and ``msgpack`` and ends with every session gone and
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
    Collector,
    by_serializer,
    sync,
)
from tests.support import within

pytestmark = pytest.mark.slow

ACK = PublishOptions(acknowledge=True)


def options(match: str | None = None, get_retained: bool | None = None) -> SubscribeOptions:
    return SubscribeOptions(match=match, get_retained=get_retained, details=True)


def events_for(session: Any, subscription_id: int) -> list[list]:
    return [frame for frame in session.received(EVENT) if frame[1] == subscription_id]


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
