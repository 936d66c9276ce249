"""The WAMP meta API with autobahn-python clients over real sockets: meta events as autobahn
receives them, a kill as autobahn sees its session end, testaments published when a TCP
connection is cut. The meta API's rules (procedures, events, kills, testaments and their
order) are tested in memory in tests/test_meta_memory.py. Every test runs with ``json`` and
``msgpack`` and ends with every session gone and ``router.state_counts()`` all zeros.

Sessions get other authids/authroles with ``harness.assume_identity`` (set on the router's
side: authentication is not what these tests are about).
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.types import SubscribeOptions
from twisted.internet import defer

from tests.advanced_support import (
    KILL_ONLY_REALM,
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
