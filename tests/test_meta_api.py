"""The WAMP meta API of the router, driven by autobahn-python clients over real sockets.

Session meta API (events and procedures, kill), registration and subscription meta API
(events and procedures) and testaments. Meta procedures are answered by the router itself;
meta events are published on the realm like any event. Every test runs with ``json`` and
``msgpack`` and ends with every session gone and ``router.state_counts()`` all zeros.

Sessions get other authids/authroles with ``harness.assume_identity`` (set on the router's
side: authentication is not what these tests are about).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions, RegisterOptions, SubscribeOptions
from twisted.internet import defer

from tests.advanced_support import (
    KILL_ONLY_REALM,
    WELCOME,
    Collector,
    by_serializer,
    drop_transport,
    expect_application_error,
    sync,
)
from tests.support import leave_and_wait, within

pytestmark = pytest.mark.slow

WITH_DETAILS = SubscribeOptions(details=True)


class MetaEvents:
    """Subscribes one session to several meta topics; keeps (topic, args) in arrival order."""

    def __init__(self) -> None:
        self.collector = Collector()

    @defer.inlineCallbacks
    def subscribe(self, session: Any, *topics: str):
        for topic in topics:
            yield within(session.subscribe(self.collector, topic, options=WITH_DETAILS))

    @property
    def events(self) -> list[tuple[str, tuple]]:
        return [(kwargs["details"].topic, args) for args, kwargs in self.collector.calls]

    def about(self, *ids: int) -> list[tuple[str, tuple]]:
        """The events whose first argument is one of ``ids`` (a session id)."""
        return [(topic, args) for topic, args in self.events if args and args[0] in ids]

    def wait_for(self, count: int):
        return self.collector.wait_for(count)


def assert_iso_8601(value: Any) -> None:
    assert isinstance(value, str), f"created must be an ISO 8601 string (spec), got {value!r}"
    datetime.fromisoformat(value)


# -- WELCOME ----------------------------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_welcome_announces_meta_features(harness, ser):
    session = yield harness.connect(ser)
    roles = session.received(WELCOME)[0][2]["roles"]
    for feature in ("session_meta_api", "registration_meta_api", "testament_meta_api"):
        assert roles["dealer"]["features"].get(feature) is True, feature
    for feature in ("session_meta_api", "subscription_meta_api"):
        assert roles["broker"]["features"].get(feature) is True, feature
    yield harness.finish()


# -- sessions ---------------------------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_session_on_join_and_on_leave(harness, ser):
    observer = yield harness.connect(ser)
    elsewhere = yield harness.connect(ser, realm=KILL_ONLY_REALM)
    meta = MetaEvents()
    yield meta.subscribe(observer, "wamp.session.on_join", "wamp.session.on_leave")
    other_realm = MetaEvents()
    yield other_realm.subscribe(elsewhere, "wamp.session.on_join")

    joiner = yield harness.connect(ser)
    harness.assume_identity(joiner, authid="joiner", authrole="member")
    yield meta.wait_for(1)
    ((topic, (details,)),) = meta.events
    assert topic == "wamp.session.on_join"
    assert details["session"] == joiner.session_id
    assert details["authid"] == joiner.join_details.authid
    assert details["authrole"] == joiner.join_details.authrole == "anonymous"
    assert details["authmethod"] == "anonymous"
    assert isinstance(details["authprovider"], str)
    assert details["transport"]["serializer"] == ser

    yield leave_and_wait(joiner)
    yield meta.wait_for(2)
    assert meta.events[1] == ("wamp.session.on_leave", (joiner.session_id, "joiner", "member"))

    # meta events stay in their realm
    yield sync(elsewhere)
    assert other_realm.events == []
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_session_count_list_get(harness, ser):
    me = yield harness.connect(ser)
    a = yield harness.connect(ser)
    b = yield harness.connect(ser)
    yield harness.connect(ser, realm=KILL_ONLY_REALM)  # another realm: not counted
    harness.assume_identity(b, authid="bee", authrole="worker")

    assert (yield within(me.call("wamp.session.count"))) == 3
    assert sorted((yield within(me.call("wamp.session.list")))) == sorted([me.session_id, a.session_id, b.session_id])
    assert (yield within(me.call("wamp.session.count", ["worker"]))) == 1
    assert (yield within(me.call("wamp.session.list", ["worker"]))) == [b.session_id]
    assert (yield within(me.call("wamp.session.count", ["nobody"]))) == 0

    details = yield within(me.call("wamp.session.get", b.session_id))
    assert details["session"] == b.session_id
    assert (details["authid"], details["authrole"], details["authmethod"]) == ("bee", "worker", "anonymous")
    assert isinstance(details["authprovider"], str)
    assert details["transport"]["serializer"] == ser

    for missing in (1, "not an id"):
        error = yield expect_application_error(me.call("wamp.session.get", missing))
        assert error.error == "wamp.error.no_such_session"
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_session_kill(harness, ser):
    killer = yield harness.connect(ser)
    victim = yield harness.connect(ser)
    quiet_victim = yield harness.connect(ser)
    meta = MetaEvents()
    yield meta.subscribe(killer, "wamp.session.on_leave")

    result = yield within(
        killer.call("wamp.session.kill", victim.session_id, reason="com.example.reason.cleanup", message="bye now")
    )
    assert result is None
    close = yield within(victim.left)
    assert (close.reason, close.message) == ("com.example.reason.cleanup", "bye now")
    yield within(victim.disconnected)

    # defaults: wamp.close.killed, no message
    yield within(killer.call("wamp.session.kill", quiet_victim.session_id))
    close = yield within(quiet_victim.left)
    assert close.reason == "wamp.close.killed" and not close.message
    yield meta.wait_for(2)
    assert [args[0] for _, args in meta.events] == [victim.session_id, quiet_victim.session_id]

    # not oneself, not a session that does not exist, not a reason that is no URI
    for target in (killer.session_id, victim.session_id):
        error = yield expect_application_error(killer.call("wamp.session.kill", target))
        assert error.error == "wamp.error.no_such_session"
    spare = yield harness.connect(ser)
    error = yield expect_application_error(killer.call("wamp.session.kill", spare.session_id, reason="not a uri!"))
    assert error.error == "wamp.error.invalid_uri"
    assert spare.is_attached() and killer.is_attached()
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_session_kill_by_authid_and_authrole(harness, ser):
    killer = yield harness.connect(ser)
    bobs = []
    for _ in range(2):
        bob = yield harness.connect(ser)
        harness.assume_identity(bob, authid="bob", authrole="user")
        bobs.append(bob)
    carol = yield harness.connect(ser)
    harness.assume_identity(carol, authid="carol", authrole="user")
    admin = yield harness.connect(ser)
    harness.assume_identity(admin, authid="root", authrole="admin")
    harness.assume_identity(killer, authid="bob", authrole="user")  # never kills itself

    killed = yield within(killer.call("wamp.session.kill_by_authid", "bob", message="all bobs"))
    assert sorted(killed) == sorted(bob.session_id for bob in bobs)
    for bob in bobs:
        close = yield within(bob.left)
        assert (close.reason, close.message) == ("wamp.close.killed", "all bobs")
        yield within(bob.disconnected)
    assert killer.is_attached() and carol.is_attached()

    count = yield within(killer.call("wamp.session.kill_by_authrole", "user", reason="com.example.reason.roles"))
    assert count == 1
    close = yield within(carol.left)
    assert close.reason == "com.example.reason.roles"
    yield within(carol.disconnected)
    assert killer.is_attached() and admin.is_attached()
    assert (yield within(killer.call("wamp.session.kill_by_authid", "nobody"))) == []
    assert (yield within(killer.call("wamp.session.count"))) == 2
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_kill_all_closes_every_other_session_without_meta_events_or_testaments(harness, ser):
    killer = yield harness.connect(ser)
    meta = MetaEvents()
    yield meta.subscribe(killer, "wamp.session.on_leave", "com.example.testament")
    others = []
    for _ in range(3):
        others.append((yield harness.connect(ser)))
    yield within(others[0].call("wamp.session.add_testament", "com.example.testament", ["gone"], {}))
    with pytest.raises(Exception) as refused:
        yield within(killer.call("wamp.session.kill_all", reason="not a uri!"))
    assert "wamp.error.invalid_uri" in str(refused.value)

    count = yield within(killer.call("wamp.session.kill_all", reason="com.example.maintenance", message="back soon"))
    assert count == 3
    for other in others:
        close = yield within(other.left)
        assert (close.reason, close.message) == ("com.example.maintenance", "back soon")
        yield within(other.disconnected)
    assert killer.is_attached()
    assert (yield within(killer.call("wamp.session.count"))) == 1
    # a publication to itself is the last thing before the answer: any event of the
    # killed sessions would have come before it
    yield within(
        killer.publish("com.example.testament", "after", options=PublishOptions(acknowledge=True, exclude_me=False))
    )
    yield within(meta.wait_for(1))
    assert meta.events == [("com.example.testament", ("after",))]
    yield harness.finish()


# -- registrations ----------------------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_registration_meta_events(harness, ser):
    observer = yield harness.connect(ser)
    a = yield harness.connect(ser)
    b = yield harness.connect(ser)
    meta = MetaEvents()
    yield meta.subscribe(
        observer,
        "wamp.registration.on_create",
        "wamp.registration.on_register",
        "wamp.registration.on_unregister",
        "wamp.registration.on_delete",
    )
    shared = RegisterOptions(invoke="roundrobin")
    registration_a = yield within(a.register(lambda: "a", "com.example.proc", options=shared))
    yield within(b.register(lambda: "b", "com.example.proc", options=shared))
    yield within(registration_a.unregister())
    yield leave_and_wait(b)
    yield meta.wait_for(6)

    rid = registration_a.id
    events = meta.events
    assert [topic for topic, _ in events] == [
        "wamp.registration.on_create",
        "wamp.registration.on_register",
        "wamp.registration.on_register",
        "wamp.registration.on_unregister",
        "wamp.registration.on_unregister",
        "wamp.registration.on_delete",
    ]
    session_a, created = events[0][1]
    assert session_a == a.session_id
    assert {key: created[key] for key in ("id", "uri", "match", "invoke")} == {
        "id": rid,
        "uri": "com.example.proc",
        "match": "exact",
        "invoke": "roundrobin",
    }
    assert_iso_8601(created["created"])
    assert [args for _, args in events[1:]] == [
        (a.session_id, rid),
        (b.session_id, rid),
        (a.session_id, rid),
        (b.session_id, rid),  # b left: unregistered ...
        (b.session_id, rid),  # ... and the registration is gone
    ]
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_registration_meta_procedures(harness, ser):
    me = yield harness.connect(ser)
    a = yield harness.connect(ser)
    b = yield harness.connect(ser)
    exact = yield within(a.register(lambda: 1, "com.example.proc", options=RegisterOptions(invoke="first")))
    yield within(b.register(lambda: 2, "com.example.proc", options=RegisterOptions(invoke="first")))
    prefix = yield within(a.register(lambda: 3, "com.example", options=RegisterOptions(match="prefix")))
    wildcard = yield within(b.register(lambda: 4, "com..proc", options=RegisterOptions(match="wildcard")))

    listing = yield within(me.call("wamp.registration.list"))
    assert listing == {"exact": [exact.id], "prefix": [prefix.id], "wildcard": [wildcard.id]}

    lookup = "wamp.registration.lookup"
    assert (yield within(me.call(lookup, "com.example.proc"))) == exact.id
    assert (yield within(me.call(lookup, "com.example", {"match": "prefix"}))) == prefix.id
    assert (yield within(me.call(lookup, "com..proc", {"match": "wildcard"}))) == wildcard.id
    assert (yield within(me.call(lookup, "com.example"))) is None  # no exact one
    error = yield expect_application_error(me.call(lookup, "com.example", {"match": "bogus"}))
    assert error.error == "wamp.error.invalid_argument"

    match = "wamp.registration.match"
    assert (yield within(me.call(match, "com.example.proc"))) == exact.id
    assert (yield within(me.call(match, "com.example.other"))) == prefix.id
    assert (yield within(me.call(match, "com.other.proc"))) == wildcard.id
    assert (yield within(me.call(match, "org.example"))) is None

    details = yield within(me.call("wamp.registration.get", exact.id))
    assert {key: details[key] for key in ("id", "uri", "match", "invoke")} == {
        "id": exact.id,
        "uri": "com.example.proc",
        "match": "exact",
        "invoke": "first",
    }
    assert_iso_8601(details["created"])
    assert (yield within(me.call("wamp.registration.list_callees", exact.id))) == [a.session_id, b.session_id]
    assert (yield within(me.call("wamp.registration.count_callees", exact.id))) == 2
    assert (yield within(me.call("wamp.registration.count_callees", prefix.id))) == 1
    for procedure in ("wamp.registration.get", "wamp.registration.list_callees", "wamp.registration.count_callees"):
        error = yield expect_application_error(me.call(procedure, 42))
        assert error.error == "wamp.error.no_such_registration", procedure

    # clients may not register under wamp.
    error = yield expect_application_error(a.register(lambda: 0, "wamp.session.count"))
    assert error.error == "wamp.error.invalid_uri"
    yield harness.finish()


# -- subscriptions ----------------------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_subscription_meta_events(harness, ser):
    observer = yield harness.connect(ser)
    a = yield harness.connect(ser)
    b = yield harness.connect(ser)
    meta = MetaEvents()
    yield meta.subscribe(
        observer,
        "wamp.subscription.on_create",
        "wamp.subscription.on_subscribe",
        "wamp.subscription.on_unsubscribe",
        "wamp.subscription.on_delete",
    )
    subscription_a = yield within(
        a.subscribe(Collector(), "com.example.topic", options=SubscribeOptions(match="prefix"))
    )
    yield within(b.subscribe(Collector(), "com.example.topic", options=SubscribeOptions(match="prefix")))
    yield within(subscription_a.unsubscribe())
    yield leave_and_wait(b)
    yield within(meta.collector.wait_for(1))
    # the observer's own meta subscriptions produce meta events too: keep those of a and b
    expected = 6
    while len(meta.about(a.session_id, b.session_id)) < expected:
        yield meta.wait_for(len(meta.events) + 1)

    sid = subscription_a.id
    events = meta.about(a.session_id, b.session_id)
    assert [topic for topic, _ in events] == [
        "wamp.subscription.on_create",
        "wamp.subscription.on_subscribe",
        "wamp.subscription.on_subscribe",
        "wamp.subscription.on_unsubscribe",
        "wamp.subscription.on_unsubscribe",
        "wamp.subscription.on_delete",
    ]
    session_a, created = events[0][1]
    assert session_a == a.session_id
    assert {key: created[key] for key in ("id", "uri", "match")} == {
        "id": sid,
        "uri": "com.example.topic",
        "match": "prefix",
    }
    assert_iso_8601(created["created"])
    assert [args for _, args in events[1:]] == [
        (a.session_id, sid),
        (b.session_id, sid),
        (a.session_id, sid),
        (b.session_id, sid),
        (b.session_id, sid),
    ]
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_subscription_meta_procedures(harness, ser):
    me = yield harness.connect(ser)
    a = yield harness.connect(ser)
    b = yield harness.connect(ser)
    exact = yield within(a.subscribe(Collector(), "com.example.topic"))
    yield within(b.subscribe(Collector(), "com.example.topic"))
    prefix = yield within(a.subscribe(Collector(), "com.example", options=SubscribeOptions(match="prefix")))
    wildcard = yield within(b.subscribe(Collector(), "com..topic", options=SubscribeOptions(match="wildcard")))

    listing = yield within(me.call("wamp.subscription.list"))
    assert listing == {"exact": [exact.id], "prefix": [prefix.id], "wildcard": [wildcard.id]}

    lookup = "wamp.subscription.lookup"
    assert (yield within(me.call(lookup, "com.example.topic"))) == exact.id
    assert (yield within(me.call(lookup, "com.example", {"match": "prefix"}))) == prefix.id
    assert (yield within(me.call(lookup, "com..topic", {"match": "wildcard"}))) == wildcard.id
    assert (yield within(me.call(lookup, "com.example"))) is None

    match = "wamp.subscription.match"
    assert sorted((yield within(me.call(match, "com.example.topic")))) == sorted([exact.id, prefix.id, wildcard.id])
    assert (yield within(me.call(match, "com.example.other"))) == [prefix.id]
    assert (yield within(me.call(match, "org.example"))) is None

    details = yield within(me.call("wamp.subscription.get", exact.id))
    assert {key: details[key] for key in ("id", "uri", "match")} == {
        "id": exact.id,
        "uri": "com.example.topic",
        "match": "exact",
    }
    assert_iso_8601(details["created"])
    assert (yield within(me.call("wamp.subscription.list_subscribers", exact.id))) == [a.session_id, b.session_id]
    assert (yield within(me.call("wamp.subscription.count_subscribers", exact.id))) == 2
    for procedure in (
        "wamp.subscription.get",
        "wamp.subscription.list_subscribers",
        "wamp.subscription.count_subscribers",
    ):
        error = yield expect_application_error(me.call(procedure, 42))
        assert error.error == "wamp.error.no_such_subscription", procedure
    yield harness.finish()


# -- testaments -------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["leave", "drop", "killed"])
@by_serializer
@pytest_twisted.inlineCallbacks
def test_testaments_published_when_the_session_goes(harness, ser, how):
    observer = yield harness.connect(ser)
    testator = yield harness.connect(ser)
    meta = MetaEvents()
    yield meta.subscribe(observer, "com.example.testament", "wamp.session.on_leave")

    add = "wamp.session.add_testament"
    assert (yield within(testator.call(add, "com.example.testament", ["destroyed 1"], {"who": "t"}))) is None
    yield within(testator.call(add, "com.example.testament", ["detached"], {}, scope="detached"))
    yield within(testator.call(add, "com.example.testament", ["destroyed 2"], scope="destroyed"))
    yield sync(observer)
    assert meta.events == []  # nothing while the session lives

    if how == "leave":
        yield leave_and_wait(testator)
    elif how == "drop":
        drop_transport(testator)
        yield within(testator.disconnected)
    else:
        yield within(observer.call("wamp.session.kill", testator.session_id))
        yield within(testator.disconnected)
    yield meta.wait_for(4)
    # detached before destroyed, each in the order added; then the session's on_leave
    assert [(topic, args) for topic, args in meta.events] == [
        ("com.example.testament", ("detached",)),
        ("com.example.testament", ("destroyed 1",)),
        ("com.example.testament", ("destroyed 2",)),
        ("wamp.session.on_leave", (testator.session_id, testator.join_details.authid, "anonymous")),
    ]
    kwargs = {key: value for key, value in meta.collector.calls[1][1].items() if key != "details"}
    assert kwargs == {"who": "t"}
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_flushed_testaments_are_not_published(harness, ser):
    observer = yield harness.connect(ser)
    testator = yield harness.connect(ser)
    meta = MetaEvents()
    yield meta.subscribe(observer, "com.example.testament", "wamp.session.on_leave")

    add = "wamp.session.add_testament"
    yield within(testator.call(add, "com.example.testament", ["destroyed"]))
    yield within(testator.call(add, "com.example.testament", ["detached"], scope="detached"))
    yield within(testator.call("wamp.session.flush_testaments"))  # default scope: destroyed
    yield leave_and_wait(testator)
    yield meta.wait_for(2)
    assert [topic_args for topic_args in meta.events] == [
        ("com.example.testament", ("detached",)),
        ("wamp.session.on_leave", (testator.session_id, testator.join_details.authid, "anonymous")),
    ]

    # both scopes flushed: nothing but on_leave
    second = yield harness.connect(ser)
    yield within(second.call(add, "com.example.testament", ["destroyed"]))
    yield within(second.call(add, "com.example.testament", ["detached"], scope="detached"))
    yield within(second.call("wamp.session.flush_testaments", scope="detached"))
    yield within(second.call("wamp.session.flush_testaments", scope="destroyed"))
    drop_transport(second)
    yield within(second.disconnected)
    yield meta.wait_for(3)
    assert meta.events[2:] == [("wamp.session.on_leave", (second.session_id, second.join_details.authid, "anonymous"))]
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_bad_testaments(harness, ser):
    session = yield harness.connect(ser)
    add = "wamp.session.add_testament"
    error = yield expect_application_error(session.call(add, "not a topic!", []))
    assert error.error == "wamp.error.invalid_uri"
    error = yield expect_application_error(session.call(add, "com.example.t", [], {}, scope="forever"))
    assert error.error == "wamp.error.invalid_argument"
    error = yield expect_application_error(session.call(add, "com.example.t", "not a list"))
    assert error.error == "wamp.error.invalid_argument"
    error = yield expect_application_error(session.call("wamp.session.flush_testaments", scope="forever"))
    assert error.error == "wamp.error.invalid_argument"
    assert session.is_attached()
    yield harness.finish()
