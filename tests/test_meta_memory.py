"""The meta API, driven in memory (tests/memory_router.py): session, registration and
subscription meta procedures and events, killing sessions, and testaments (when they are
published, in which order, and when not). Every test ends with every session gone and
``router.state_counts()`` all zeros.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from promisifier.router import RouterConfig
from promisifier.router.router_config import RealmConfig
from promisifier.wire.messages import ERROR, GOODBYE, RESULT, WELCOME
from tests.memory_router import MemoryClient, MemoryRouter


@pytest.fixture
def memory() -> MemoryRouter:
    memory = MemoryRouter(RouterConfig(realms=(RealmConfig("realm1"), RealmConfig("realm2"))))
    yield memory
    memory.assert_idle()


class MetaError(Exception):
    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.uri = uri


def call(client: MemoryClient, procedure: str, *args: Any, **kwargs: Any) -> Any:
    """Call a meta procedure: its single result, or raises MetaError with the ERROR's URI."""
    request_id = client.call(procedure, list(args) if args or kwargs else None, kwargs or None)
    answers = client.finals_of(request_id)
    assert len(answers) == 1, client.answers_to(request_id)
    answer = answers[0]
    if answer[0] == ERROR:
        raise MetaError(answer[4])
    assert answer[0] == RESULT
    return answer[3][0] if len(answer) > 3 and answer[3] else None


def error_of(client: MemoryClient, procedure: str, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(MetaError) as info:
        call(client, procedure, *args, **kwargs)
    return info.value.uri


class MetaEvents:
    """One session subscribed to some topics; the events it got as (topic, args, kwargs)."""

    def __init__(self, client: MemoryClient, *topics: str) -> None:
        self.client = client
        self.topics = {client.subscribe(topic): topic for topic in topics}

    @property
    def events(self) -> list[tuple[str, tuple]]:
        return [(self.topics[m[1]], tuple(m[4]) if len(m) > 4 else ()) for m in self.client.events()]

    def about(self, *ids: int) -> list[tuple[str, tuple]]:
        """The events whose first argument is one of ``ids`` (a session id)."""
        return [(topic, args) for topic, args in self.events if args and args[0] in ids]


def assert_iso_8601(value: Any) -> None:
    assert isinstance(value, str), f"created must be an ISO 8601 string (spec), got {value!r}"
    datetime.fromisoformat(value)


def identity(client: MemoryClient, authid: str, authrole: str) -> MemoryClient:
    client.session.authid, client.session.authrole = authid, authrole
    return client


def test_welcome_announces_meta_features(memory):
    roles = memory.join().one(WELCOME)[2]["roles"]
    for feature in ("session_meta_api", "registration_meta_api", "testament_meta_api"):
        assert roles["dealer"]["features"].get(feature) is True, feature
    for feature in ("session_meta_api", "subscription_meta_api"):
        assert roles["broker"]["features"].get(feature) is True, feature


# -- sessions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
def test_session_on_join_and_on_leave_stay_in_their_realm(memory, serializer):
    meta = MetaEvents(memory.join(), "wamp.session.on_join", "wamp.session.on_leave")
    other_realm = MetaEvents(memory.join("realm2"), "wamp.session.on_join")
    joiner = memory.connect(serializer)
    joiner.join()
    ((topic, (details,)),) = meta.events
    assert topic == "wamp.session.on_join"
    assert details["session"] == joiner.session_id
    assert (details["authrole"], details["authmethod"]) == ("anonymous", "anonymous")
    assert isinstance(details["authid"], str) and isinstance(details["authprovider"], str)
    assert details["transport"]["serializer"] == serializer
    identity(joiner, "joiner", "member")
    joiner.leave()
    assert meta.events[1] == ("wamp.session.on_leave", (joiner.session_id, "joiner", "member"))
    assert other_realm.events == []


def test_session_count_list_get(memory):
    me, a, b = memory.join(), memory.join(), memory.join()
    memory.join("realm2")  # another realm: not counted
    identity(b, "bee", "worker")
    assert call(me, "wamp.session.count") == 3
    assert sorted(call(me, "wamp.session.list")) == sorted([me.session_id, a.session_id, b.session_id])
    assert call(me, "wamp.session.count", ["worker"]) == 1
    assert call(me, "wamp.session.list", ["worker"]) == [b.session_id]
    assert call(me, "wamp.session.count", ["nobody"]) == 0
    details = call(me, "wamp.session.get", b.session_id)
    assert details["session"] == b.session_id
    assert (details["authid"], details["authrole"], details["authmethod"]) == ("bee", "worker", "anonymous")
    assert details["transport"]["serializer"] == "json"
    for missing in (1, "not an id"):
        assert error_of(me, "wamp.session.get", missing) == "wamp.error.no_such_session"


def test_session_kill(memory):
    killer, victim, quiet_victim, spare = memory.join(), memory.join(), memory.join(), memory.join()
    meta = MetaEvents(killer, "wamp.session.on_leave")
    assert (
        call(killer, "wamp.session.kill", victim.session_id, reason="com.example.reason.cleanup", message="bye") is None
    )
    assert victim.of_type(GOODBYE) == [[GOODBYE, {"message": "bye"}, "com.example.reason.cleanup"]]
    # defaults: wamp.close.killed, no message
    call(killer, "wamp.session.kill", quiet_victim.session_id)
    assert quiet_victim.of_type(GOODBYE) == [[GOODBYE, {}, "wamp.close.killed"]]
    assert [args[0] for _, args in meta.events] == [victim.session_id, quiet_victim.session_id]
    # not oneself, not a session that does not exist, not a reason that is no URI
    for target in (killer.session_id, victim.session_id):
        assert error_of(killer, "wamp.session.kill", target) == "wamp.error.no_such_session"
    assert error_of(killer, "wamp.session.kill", spare.session_id, reason="not a uri!") == "wamp.error.invalid_uri"
    assert spare.of_type(GOODBYE) == [] and killer.of_type(GOODBYE) == []


def test_session_kill_by_authid_and_authrole(memory):
    killer = identity(memory.join(), "bob", "user")  # never kills itself
    bobs = [identity(memory.join(), "bob", "user") for _ in range(2)]
    carol = identity(memory.join(), "carol", "user")
    admin = identity(memory.join(), "root", "admin")
    killed = call(killer, "wamp.session.kill_by_authid", "bob", message="all bobs")
    assert sorted(killed) == sorted(bob.session_id for bob in bobs)
    for bob in bobs:
        assert bob.of_type(GOODBYE) == [[GOODBYE, {"message": "all bobs"}, "wamp.close.killed"]]
    assert carol.of_type(GOODBYE) == []
    assert call(killer, "wamp.session.kill_by_authrole", "user", reason="com.example.reason.roles") == 1
    assert carol.of_type(GOODBYE)[0][2] == "com.example.reason.roles"
    assert admin.of_type(GOODBYE) == [] and killer.of_type(GOODBYE) == []
    assert call(killer, "wamp.session.kill_by_authid", "nobody") == []
    assert call(killer, "wamp.session.count") == 2


def test_kill_all_closes_every_other_session_without_meta_events_or_testaments(memory):
    killer = memory.join()
    meta = MetaEvents(killer, "wamp.session.on_leave", "com.example.testament")
    others = [memory.join() for _ in range(3)]
    call(others[0], "wamp.session.add_testament", "com.example.testament", ["gone"], {})
    assert error_of(killer, "wamp.session.kill_all", reason="not a uri!") == "wamp.error.invalid_uri"
    assert call(killer, "wamp.session.kill_all", reason="com.example.maintenance", message="back soon") == 3
    for other in others:
        assert other.of_type(GOODBYE) == [[GOODBYE, {"message": "back soon"}, "com.example.maintenance"]]
        other.send_raw([GOODBYE, {}, "wamp.close.goodbye_and_out"])  # the client's reply
        memory.advance(5)  # the router closes the connection
        assert not other.open
    assert call(killer, "wamp.session.count") == 1
    assert meta.events == []


# -- registrations ----------------------------------------------------------------------------


def test_registration_meta_events(memory):
    observer, a, b = memory.join(), memory.join(), memory.join()
    meta = MetaEvents(
        observer,
        "wamp.registration.on_create",
        "wamp.registration.on_register",
        "wamp.registration.on_unregister",
        "wamp.registration.on_delete",
    )
    rid = a.register("com.example.proc", invoke="roundrobin")
    b.register("com.example.proc", invoke="roundrobin")
    a.unregister(rid)
    b.leave()
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


def test_registration_meta_procedures(memory):
    me, a, b = memory.join(), memory.join(), memory.join()
    exact = a.register("com.example.proc", invoke="first")
    b.register("com.example.proc", invoke="first")
    prefix = a.register("com.example", match="prefix")
    wildcard = b.register("com..proc", match="wildcard")
    assert call(me, "wamp.registration.list") == {"exact": [exact], "prefix": [prefix], "wildcard": [wildcard]}
    lookup = "wamp.registration.lookup"
    assert call(me, lookup, "com.example.proc") == exact
    assert call(me, lookup, "com.example", {"match": "prefix"}) == prefix
    assert call(me, lookup, "com..proc", {"match": "wildcard"}) == wildcard
    assert call(me, lookup, "com.example") is None  # no exact one
    assert error_of(me, lookup, "com.example", {"match": "bogus"}) == "wamp.error.invalid_argument"
    match = "wamp.registration.match"
    assert call(me, match, "com.example.proc") == exact
    assert call(me, match, "com.example.other") == prefix
    assert call(me, match, "com.other.proc") == wildcard
    assert call(me, match, "org.example") is None
    details = call(me, "wamp.registration.get", exact)
    assert {key: details[key] for key in ("id", "uri", "match", "invoke")} == {
        "id": exact,
        "uri": "com.example.proc",
        "match": "exact",
        "invoke": "first",
    }
    assert_iso_8601(details["created"])
    assert call(me, "wamp.registration.list_callees", exact) == [a.session_id, b.session_id]
    assert call(me, "wamp.registration.count_callees", exact) == 2
    assert call(me, "wamp.registration.count_callees", prefix) == 1
    for procedure in ("wamp.registration.get", "wamp.registration.list_callees", "wamp.registration.count_callees"):
        assert error_of(me, procedure, 42) == "wamp.error.no_such_registration", procedure
    # clients may not register under wamp.
    request_id = a.next_request_id()
    a.send_raw([64, request_id, {}, "wamp.session.count"])
    assert a.error_of(64, request_id)[4] == "wamp.error.invalid_uri"


# -- subscriptions ----------------------------------------------------------------------------


def test_subscription_meta_events(memory):
    observer, a, b = memory.join(), memory.join(), memory.join()
    meta = MetaEvents(
        observer,
        "wamp.subscription.on_create",
        "wamp.subscription.on_subscribe",
        "wamp.subscription.on_unsubscribe",
        "wamp.subscription.on_delete",
    )
    sid = a.subscribe("com.example.topic", match="prefix")
    b.subscribe("com.example.topic", match="prefix")
    a.unsubscribe(sid)
    b.leave()
    # the observer's own meta subscriptions produce meta events too: keep those of a and b
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


def test_subscription_meta_procedures(memory):
    me, a, b = memory.join(), memory.join(), memory.join()
    exact = a.subscribe("com.example.topic")
    b.subscribe("com.example.topic")
    prefix = a.subscribe("com.example", match="prefix")
    wildcard = b.subscribe("com..topic", match="wildcard")
    assert call(me, "wamp.subscription.list") == {"exact": [exact], "prefix": [prefix], "wildcard": [wildcard]}
    lookup = "wamp.subscription.lookup"
    assert call(me, lookup, "com.example.topic") == exact
    assert call(me, lookup, "com.example", {"match": "prefix"}) == prefix
    assert call(me, lookup, "com..topic", {"match": "wildcard"}) == wildcard
    assert call(me, lookup, "com.example") is None
    match = "wamp.subscription.match"
    assert sorted(call(me, match, "com.example.topic")) == sorted([exact, prefix, wildcard])
    assert call(me, match, "com.example.other") == [prefix]
    assert call(me, match, "org.example") is None
    details = call(me, "wamp.subscription.get", exact)
    assert {key: details[key] for key in ("id", "uri", "match")} == {
        "id": exact,
        "uri": "com.example.topic",
        "match": "exact",
    }
    assert_iso_8601(details["created"])
    assert call(me, "wamp.subscription.list_subscribers", exact) == [a.session_id, b.session_id]
    assert call(me, "wamp.subscription.count_subscribers", exact) == 2
    for procedure in (
        "wamp.subscription.get",
        "wamp.subscription.list_subscribers",
        "wamp.subscription.count_subscribers",
    ):
        assert error_of(me, procedure, 42) == "wamp.error.no_such_subscription", procedure


# -- testaments -------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["leave", "drop", "killed", "protocol_violation"])
def test_testaments_order_detached_then_destroyed_then_on_leave(memory, how):
    observer, testator = memory.join(), memory.join()
    meta = MetaEvents(observer, "com.example.testament", "wamp.session.on_leave")
    add = "wamp.session.add_testament"
    assert call(testator, add, "com.example.testament", ["destroyed 1"], {"who": "t"}) is None
    call(testator, add, "com.example.testament", ["detached"], {}, scope="detached")
    call(testator, add, "com.example.testament", ["destroyed 2"], scope="destroyed")
    assert meta.events == []  # nothing while the session lives
    if how == "leave":
        testator.leave()
    elif how == "drop":
        testator.drop()
    elif how == "killed":
        call(observer, "wamp.session.kill", testator.session_id)
    else:
        testator.send_raw([1, "realm1", {"roles": {"caller": {}}}])  # HELLO while established
    # detached before destroyed, each in the order added; then the session's on_leave
    assert meta.events == [
        ("com.example.testament", ("detached",)),
        ("com.example.testament", ("destroyed 1",)),
        ("com.example.testament", ("destroyed 2",)),
        ("wamp.session.on_leave", (testator.session_id, testator.session.authid, "anonymous")),
    ]
    assert observer.events()[1][5] == {"who": "t"}


def test_flushed_testaments_are_not_published(memory):
    observer, testator = memory.join(), memory.join()
    meta = MetaEvents(observer, "com.example.testament", "wamp.session.on_leave")
    add = "wamp.session.add_testament"
    call(testator, add, "com.example.testament", ["destroyed"])
    call(testator, add, "com.example.testament", ["detached"], scope="detached")
    assert call(testator, "wamp.session.flush_testaments") == 1  # default scope: destroyed
    testator.leave()
    assert meta.events == [
        ("com.example.testament", ("detached",)),
        ("wamp.session.on_leave", (testator.session_id, testator.session.authid, "anonymous")),
    ]
    # both scopes flushed: nothing but on_leave
    second = memory.join()
    call(second, add, "com.example.testament", ["destroyed"])
    call(second, add, "com.example.testament", ["detached"], scope="detached")
    call(second, "wamp.session.flush_testaments", scope="detached")
    call(second, "wamp.session.flush_testaments", scope="destroyed")
    second.drop()
    assert meta.events[2:] == [("wamp.session.on_leave", (second.session_id, second.session.authid, "anonymous"))]


def test_bad_testaments(memory):
    session = memory.join()
    add = "wamp.session.add_testament"
    assert error_of(session, add, "not a topic!", []) == "wamp.error.invalid_uri"
    assert error_of(session, add, "com.example.t", [], {}, scope="forever") == "wamp.error.invalid_argument"
    assert error_of(session, add, "com.example.t", "not a list") == "wamp.error.invalid_argument"
    assert error_of(session, "wamp.session.flush_testaments", scope="forever") == "wamp.error.invalid_argument"
    assert session.open
