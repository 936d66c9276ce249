"""Router scenarios driven by autobahn-python's WAMP client, over real sockets on 127.0.0.1.

Every scenario runs with the ``json`` and the ``msgpack`` serializer (and a few with one
of each). At the end of every test all sessions leave, the router's state counts are back
to zero, and autobahn parsed every frame the router sent without complaint.

Nothing here sleeps to synchronise: every wait is on a Deferred bounded by ``within``.
To show that something did *not* arrive, a second message that must arrive is sent after
it through the same router, and the frames the client parsed are counted.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp import message as ab_message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.role import RoleCalleeFeatures
from autobahn.wamp.types import CallResult, PublishOptions
from twisted.internet import defer

from tests.advanced_support import (
    Collector,
    Harness,
    by_serializer,
    drop_transport,
    expect_application_error,
)
from tests.support import SERIALIZER_NAMES, RecordingSession, leave_and_wait, within

mixed_pairs = pytest.mark.parametrize(
    ("caller_ser", "callee_ser"), [("json", "msgpack"), ("msgpack", "json")], ids=["json-to-msgpack", "msgpack-to-json"]
)

ONE_MIB = 1024 * 1024

pytestmark = pytest.mark.slow


# -- helpers ---------------------------------------------------------------------------


class WelcomeRecordingSession(RecordingSession):
    """Also keeps the WELCOME message autobahn received."""

    welcome: Any = None

    def onWelcome(self, welcome: Any) -> None:  # noqa: N802 - autobahn API
        self.welcome = welcome
        return None


class TracingSession(RecordingSession):
    """Also keeps every WAMP message autobahn received (after parsing), in order."""

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.received: list[Any] = []

    def onMessage(self, msg: Any) -> None:  # noqa: N802 - autobahn API
        self.received.append(msg)
        return super().onMessage(msg)


class NonCancelingCallee(TracingSession):
    """A session whose HELLO does not announce the callee feature ``call_canceling``."""

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        roles = dict(self._session_roles)
        callee = RoleCalleeFeatures(**{k: v for k, v in vars(roles["callee"]).items() if not k.startswith("_")})
        callee.call_canceling = None  # None: not sent in HELLO
        roles["callee"] = callee
        self._session_roles = roles


def results_of(result: Any) -> tuple[list, dict]:
    """(args, kwargs) of what autobahn's ``call`` fired with."""
    if isinstance(result, CallResult):
        return list(result.results), dict(result.kwresults)
    if result is None:
        return [], {}
    return [result], {}


def echo(*args: Any, **kwargs: Any) -> CallResult:
    """A procedure answering with exactly what it was called with."""
    return CallResult(*args, **kwargs)


# -- session lifecycle -----------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_join_welcome_details_and_leave(harness, ser):
    a = yield harness.connect(ser, WelcomeRecordingSession)
    b = yield harness.connect(ser, WelcomeRecordingSession)

    for session in (a, b):
        details = session.join_details
        assert details.realm == "realm1"
        assert type(details.session) is int and 1 <= details.session <= 2**53
        assert isinstance(details.authid, str) and details.authid
        assert details.authrole == "anonymous"
        assert details.authmethod == "anonymous"
        welcome = session.welcome
        assert welcome is not None
        assert welcome.session == details.session
        assert {"broker", "dealer"} <= set(welcome.roles)
    assert a.join_details.session != b.join_details.session

    counts = harness.router.state_counts()
    assert counts["connections"] == 2
    assert counts["sessions"] == 2

    # leave one: the router answers GOODBYE with wamp.close.goodbye_and_out
    yield leave_and_wait(a)
    close_details = yield within(a.left)
    assert close_details.reason == "wamp.close.goodbye_and_out"
    assert harness.router.state_counts()["sessions"] == 1

    yield harness.finish()


# -- calls -----------------------------------------------------------------------------


@by_serializer
@pytest_twisted.inlineCallbacks
def test_call_args_kwargs_and_binary(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    yield within(callee.register(echo, "com.example.echo"))
    yield within(callee.register(lambda a, b: a + b, "com.example.add"))

    assert (yield within(caller.call("com.example.add", 2, 3))) == 5

    result = yield within(caller.call("com.example.echo", 1, "two", [3.5, None, True], {"four": 4}))
    assert results_of(result) == ([1, "two", [3.5, None, True], {"four": 4}], {})

    result = yield within(caller.call("com.example.echo", x=1, y="ü", z={"deep": [1, {"er": None}]}))
    assert results_of(result) == ([], {"x": 1, "y": "ü", "z": {"deep": [1, {"er": None}]}})

    result = yield within(caller.call("com.example.echo", "pos", key="word"))
    assert results_of(result) == (["pos"], {"key": "word"})

    # no args at all
    result = yield within(caller.call("com.example.echo"))
    assert results_of(result) == ([], {})

    # binary at the top level and nested, in args and kwargs
    blob = bytes(range(256))
    result = yield within(
        caller.call("com.example.echo", blob, b"", [b"\x00nested"], blob=b"\x00\xff", inner={"b": [b"\x01\x02"]})
    )
    args, kwargs = results_of(result)
    assert args == [blob, b"", [b"\x00nested"]]
    assert kwargs == {"blob": b"\x00\xff", "inner": {"b": [b"\x01\x02"]}}
    assert type(args[0]) is bytes and type(kwargs["blob"]) is bytes

    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_call_one_mib_payloads(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    yield within(callee.register(echo, "com.example.echo"))

    blob = os.urandom(ONE_MIB)
    text = "wamp-ü" * (ONE_MIB // 7)
    result = yield within(caller.call("com.example.echo", blob, text=text), 20)
    args, kwargs = results_of(result)
    assert len(args) == 1 and type(args[0]) is bytes and args[0] == blob
    assert kwargs == {"text": text}

    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_application_error_reaches_caller_intact(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)

    def fail(*args: Any, **kwargs: Any) -> None:
        raise ApplicationError(
            "com.example.error.custom", 1, "two", [3, {"four": 4}], b"\x00bin", reason="ü nope", nested={"a": [1, 2]}
        )

    def fail_bare() -> None:
        raise ApplicationError("com.example.error.bare")

    yield within(callee.register(fail, "com.example.fail"))
    yield within(callee.register(fail_bare, "com.example.fail_bare"))

    error = yield expect_application_error(caller.call("com.example.fail", 42))
    assert error.error == "com.example.error.custom"
    assert list(error.args) == [1, "two", [3, {"four": 4}], b"\x00bin"]
    assert error.kwargs == {"reason": "ü nope", "nested": {"a": [1, 2]}}

    error = yield expect_application_error(caller.call("com.example.fail_bare"))
    assert error.error == "com.example.error.bare"
    assert list(error.args) == []
    assert not error.kwargs

    # the callee is still in business
    yield within(callee.register(echo, "com.example.echo"))
    assert (yield within(caller.call("com.example.echo", "still here"))) == "still here"

    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_no_such_procedure(harness, ser):
    caller = yield harness.connect(ser)
    error = yield expect_application_error(caller.call("com.example.nobody_home", 1))
    assert error.error == "wamp.error.no_such_procedure"
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_duplicate_registration(harness, ser):
    first = yield harness.connect(ser)
    second = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    yield within(first.register(lambda: "first", "com.example.proc"))

    # another session
    error = yield expect_application_error(second.register(lambda: "second", "com.example.proc"))
    assert error.error == "wamp.error.procedure_already_exists"
    # the same session again
    error = yield expect_application_error(first.register(lambda: "again", "com.example.proc"))
    assert error.error == "wamp.error.procedure_already_exists"

    assert harness.router.state_counts()["registrations"] == 1
    # the original registration still answers
    assert (yield within(caller.call("com.example.proc"))) == "first"

    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_unregister_then_call(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    registration = yield within(callee.register(lambda: "here", "com.example.proc"))
    assert (yield within(caller.call("com.example.proc"))) == "here"
    assert harness.router.state_counts()["registrations"] == 1

    yield within(registration.unregister())
    assert harness.router.state_counts()["registrations"] == 0

    error = yield expect_application_error(caller.call("com.example.proc"))
    assert error.error == "wamp.error.no_such_procedure"

    # the URI is free again, for anyone
    yield within(caller.register(lambda: "new owner", "com.example.proc"))
    assert (yield within(callee.call("com.example.proc"))) == "new owner"

    yield harness.finish()


@by_serializer
@pytest.mark.parametrize("how", ["leave", "drop"])
@pytest_twisted.inlineCallbacks
def test_callee_gone_mid_call_cancels_the_call(harness, ser, how):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    invoked = Collector()
    never: list[defer.Deferred] = []

    def hang(*args: Any, **kwargs: Any) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        never.append(d)
        invoked(*args, **kwargs)
        return d  # never fired

    yield within(callee.register(hang, "com.example.hang"))
    call = caller.call("com.example.hang", 1, 2)
    yield invoked.wait_for(1)
    assert invoked.args == [(1, 2)]
    assert harness.router.state_counts()["pending_calls"] == 1

    if how == "leave":
        yield leave_and_wait(callee)
    else:
        drop_transport(callee)
        yield within(callee.disconnected)

    error = yield expect_application_error(call)
    assert error.error == "wamp.error.canceled"
    counts = harness.router.state_counts()
    assert counts["pending_calls"] == 0
    assert counts["registrations"] == 0

    # the caller's session is fine afterwards
    error = yield expect_application_error(caller.call("com.example.hang"))
    assert error.error == "wamp.error.no_such_procedure"

    yield harness.finish()


@by_serializer
@pytest.mark.parametrize("how", ["leave", "drop"])
@pytest.mark.parametrize("callee_cancels", [False, True], ids=["plain-callee", "canceling-callee"])
@pytest_twisted.inlineCallbacks
def test_caller_gone_mid_call_late_yield_dropped(harness, ser, how, callee_cancels):
    """A caller leaves while its call is in flight; the callee answers afterwards.

    A callee that did not announce ``call_canceling`` gets no INTERRUPT: it answers late
    and the router drops that YIELD silently. A callee that announced it (autobahn's
    default) may get INTERRUPT (mode killnowait) for the invocation and nothing else.
    Either way, no ERROR or ABORT goes back to the callee and all call state is gone.
    """
    callee_class = TracingSession if callee_cancels else NonCancelingCallee
    callee = yield harness.connect(ser, callee_class)
    caller = yield harness.connect(ser)
    # the premise: what the router knows of the callee's HELLO
    router_side = harness.realm().sessions[callee.join_details.session]
    announced = router_side.roles["callee"].get("features", {}).get("call_canceling") is True
    assert announced is callee_cancels
    invoked = Collector()
    answers: list[defer.Deferred] = []

    def slow(*args: Any) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        answers.append(d)
        invoked(*args)  # may resume the test at once: keep it last
        return d

    yield within(callee.register(slow, "com.example.slow"))
    call = caller.call("com.example.slow", "first")
    call.addErrback(lambda failure: None)  # autobahn fails it when its session ends
    yield invoked.wait_for(1)
    assert harness.router.state_counts()["pending_calls"] == 1
    invocation_id = callee.received[-1].request
    seen = len(callee.received)

    if how == "leave":
        yield leave_and_wait(caller)
    else:
        drop_transport(caller)
        yield within(caller.disconnected)
    counts = yield router_idle_except_callee(harness)
    assert counts["pending_calls"] == 0
    assert counts["sessions"] == 1

    # Round trip on the callee's connection: anything the router sent the callee because
    # the caller left was sent before this PUBLISHED.
    yield within(callee.publish("com.example.sync", options=PublishOptions(acknowledge=True)))
    after_leave = callee.received[seen:]
    assert isinstance(after_leave[-1], ab_message.Published)
    extra = after_leave[:-1]
    if callee_cancels:
        assert all(isinstance(m, ab_message.Interrupt) and m.request == invocation_id for m in extra), extra
        assert len(extra) <= 1
    else:
        assert extra == []  # no INTERRUPT to a callee that cannot handle it
    seen = len(callee.received)

    # the late answer (unless an INTERRUPT already cancelled the handler): a YIELD for
    # a call whose caller is gone. The router must drop it silently.
    if not answers[0].called:
        answers[0].callback("too late")
    yield within(callee.publish("com.example.sync", options=PublishOptions(acknowledge=True)))
    late = callee.received[seen:]
    assert len(late) == 1 and isinstance(late[0], ab_message.Published), late
    assert callee.is_attached()
    assert harness.router.state_counts()["pending_calls"] == 0

    # the callee still serves new callers
    caller2 = yield harness.connect(ser)
    second = caller2.call("com.example.slow", "second")
    yield invoked.wait_for(2)
    answers[1].callback("on time")
    assert (yield within(second)) == "on time"
    assert invoked.args == [("first",), ("second",)]

    yield harness.finish()


@defer.inlineCallbacks
def router_idle_except_callee(harness: Harness):
    """Wait until the router holds exactly one connection (the callee), then return counts.

    The caller's GOODBYE (or dropped TCP connection) is handled by the router before it
    closes; wait for its connection to be gone so the counts are final.
    """
    router = harness.router
    if router.state_counts()["connections"] != 1:
        done: defer.Deferred = defer.Deferred()
        original = router.session_ended

        def session_ended(session: Any) -> None:
            original(session)
            if router.state_counts()["connections"] == 1 and not done.called:
                router.session_ended = original
                done.callback(None)

        router.session_ended = session_ended
        yield within(done, 5.0)
    return router.state_counts()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_thousand_pipelined_calls(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)
    held: list[tuple[int, defer.Deferred]] = []
    all_arrived: defer.Deferred = defer.Deferred()
    total = 1000

    def square(i: int, tag: str) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        held.append((i, d))
        if len(held) == total:
            all_arrived.callback(None)
        return d

    yield within(callee.register(square, "com.example.square"))
    calls = [caller.call("com.example.square", i, tag=f"t{i}") for i in range(total)]
    yield within(all_arrived)
    # answer in reverse order: correlation must be by request id, not by arrival order
    for i, d in reversed(held):
        d.callback(CallResult(i * i, tag=f"t{i}", i=i))
    results = yield within(defer.gatherResults(calls, consumeErrors=True), 20)
    assert len(results) == total
    for i, result in enumerate(results):
        assert results_of(result) == ([i * i], {"tag": f"t{i}", "i": i})
    assert harness.router.state_counts()["pending_calls"] == 0

    yield harness.finish()


@mixed_pairs
@pytest_twisted.inlineCallbacks
def test_mixed_serializers_call(harness, caller_ser, callee_ser):
    callee = yield harness.connect(callee_ser)
    caller = yield harness.connect(caller_ser)
    seen = Collector()

    def record_and_echo(*args: Any, **kwargs: Any) -> CallResult:
        seen(*args, **kwargs)
        return CallResult(*args, reply=b"\x00\x01\x02\xfe\xff", **kwargs)

    yield within(callee.register(record_and_echo, "com.example.echo"))
    blob = bytes(range(256)) * 4
    result = yield within(caller.call("com.example.echo", blob, "text", 7, [b"\x00x"], data={"bin": b"\xff"}))
    args, kwargs = results_of(result)
    assert args == [blob, "text", 7, [b"\x00x"]]
    assert kwargs == {"data": {"bin": b"\xff"}, "reply": b"\x00\x01\x02\xfe\xff"}
    # the callee saw real bytes too, not base64 strings
    assert seen.calls == [((blob, "text", 7, [b"\x00x"]), {"data": {"bin": b"\xff"}})]

    # an application error with binary crosses serializers intact as well
    def fail() -> None:
        raise ApplicationError("com.example.error.mixed", b"\x00\xffbin", detail=b"\x01")

    yield within(callee.register(fail, "com.example.fail"))
    error = yield expect_application_error(caller.call("com.example.fail"))
    assert error.error == "com.example.error.mixed"
    assert list(error.args) == [b"\x00\xffbin"]
    assert error.kwargs == {"detail": b"\x01"}

    yield harness.finish()


# -- publish / subscribe ---------------------------------------------------------------


@by_serializer
@pytest.mark.parametrize("acknowledge", [False, True], ids=["no-ack", "ack"])
@pytest_twisted.inlineCallbacks
def test_publish_subscribe(harness, ser, acknowledge):
    publisher = yield harness.connect(ser)
    subscriber = yield harness.connect(ser)
    events = Collector()
    subscription = yield within(subscriber.subscribe(events, "com.example.topic"))
    assert type(subscription.id) is int and 1 <= subscription.id <= 2**53
    assert harness.router.state_counts()["subscriptions"] == 1

    payload = ([1, "two", b"\x00three"], {"four": {"five": b"\xff"}})
    if acknowledge:
        publication = yield within(
            publisher.publish("com.example.topic", *payload[0], options=PublishOptions(acknowledge=True), **payload[1])
        )
        assert type(publication.id) is int and 1 <= publication.id <= 2**53
    else:
        assert publisher.publish("com.example.topic", *payload[0], **payload[1]) is None
    yield events.wait_for(1)
    assert events.calls == [((1, "two", b"\x00three"), {"four": {"five": b"\xff"}})]

    # acknowledged publish to a topic nobody subscribed to is still acknowledged
    if acknowledge:
        publication = yield within(publisher.publish("com.example.empty", options=PublishOptions(acknowledge=True)))
        assert type(publication.id) is int

    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_publisher_does_not_get_its_own_event(harness, ser):
    publisher = yield harness.connect(ser)
    other = yield harness.connect(ser)
    own = Collector()
    others = Collector()
    yield within(publisher.subscribe(own, "com.example.topic"))
    yield within(other.subscribe(others, "com.example.topic"))

    frames_before = publisher.judge.parsed
    publisher.publish("com.example.topic", "from publisher")
    yield others.wait_for(1)
    # now the other session publishes on the same topic: the publisher must get this
    # one, and nothing before it
    other.publish("com.example.topic", "from other")
    yield own.wait_for(1)
    assert own.args == [("from other",)]
    assert others.args == [("from publisher",)]
    assert publisher.judge.parsed - frames_before == 1

    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_repeated_subscribe_same_subscription_id(harness, ser):
    publisher = yield harness.connect(ser)
    subscriber = yield harness.connect(ser)
    first_handler = Collector()
    second_handler = Collector()
    first = yield within(subscriber.subscribe(first_handler, "com.example.topic"))
    frames_before = subscriber.judge.parsed
    second = yield within(subscriber.subscribe(second_handler, "com.example.topic"))
    # autobahn sent a second SUBSCRIBE (it does not dedupe) and got a SUBSCRIBED back
    assert subscriber.judge.parsed - frames_before == 1
    assert first.id == second.id

    broker = harness.realm().broker
    subscriptions = broker.subscriptions()
    assert len(subscriptions) == 1
    assert subscriptions[0].id == first.id
    assert subscriptions[0].uri == "com.example.topic"
    assert [s.session_id for s in subscriptions[0].subscribers] == [subscriber.join_details.session]
    assert harness.router.state_counts()["subscriptions"] == 1

    # one EVENT on the wire, both handlers called
    frames_before = subscriber.judge.parsed
    publisher.publish("com.example.topic", 1)
    yield first_handler.wait_for(1)
    yield second_handler.wait_for(1)
    assert subscriber.judge.parsed - frames_before == 1

    # autobahn unsubscribes at the router when its last handler goes
    yield within(first.unsubscribe())
    yield within(second.unsubscribe())
    assert broker.subscriptions() == []
    assert harness.router.state_counts()["subscriptions"] == 0

    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_unsubscribe_stops_delivery(harness, ser):
    publisher = yield harness.connect(ser)
    subscriber = yield harness.connect(ser)
    other_subscriber = yield harness.connect(ser)
    gone = Collector()
    stays = Collector()
    other_gone = Collector()
    sub_gone = yield within(subscriber.subscribe(gone, "com.example.gone"))
    yield within(subscriber.subscribe(stays, "com.example.stays"))
    # another session keeps com.example.gone alive at the router
    yield within(other_subscriber.subscribe(other_gone, "com.example.gone"))

    publisher.publish("com.example.gone", "before")
    yield gone.wait_for(1)
    yield other_gone.wait_for(1)

    yield within(sub_gone.unsubscribe())
    assert harness.router.state_counts()["subscriptions"] == 2

    frames_before = subscriber.judge.parsed
    publisher.publish("com.example.gone", "after")
    publisher.publish("com.example.stays", "marker")
    yield stays.wait_for(1)
    yield other_gone.wait_for(2)
    assert gone.args == [("before",)]
    assert other_gone.args == [("before",), ("after",)]
    assert stays.args == [("marker",)]
    # on the wire: only the marker EVENT reached the unsubscribed session
    assert subscriber.judge.parsed - frames_before == 1

    # the router's table: the topic lives on for the other session only
    subscriber_id = subscriber.join_details.session
    topics = {s.uri: [x.session_id for x in s.subscribers] for s in harness.realm().broker.subscriptions()}
    assert topics["com.example.gone"] == [other_subscriber.join_details.session]
    assert topics["com.example.stays"] == [subscriber_id]

    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_thousand_events_in_order(harness, ser):
    publisher = yield harness.connect(ser)
    subscribers = []
    for name in SERIALIZER_NAMES:
        subscribers.append((yield harness.connect(name)))
    collectors = []
    for session in subscribers:
        collector = Collector()
        yield within(session.subscribe(collector, "com.example.sequence"))
        collectors.append(collector)

    total = 1000
    for i in range(total):
        publisher.publish("com.example.sequence", i, b"\x00" + i.to_bytes(2, "big"), seq=i)
    publication = yield within(
        publisher.publish("com.example.sequence", "done", options=PublishOptions(acknowledge=True))
    )
    assert publication.id
    for collector in collectors:
        calls = yield collector.wait_for(total + 1, 20)
        assert [args for args, _ in calls[:total]] == [(i, b"\x00" + i.to_bytes(2, "big")) for i in range(total)]
        assert [kwargs for _, kwargs in calls[:total]] == [{"seq": i} for i in range(total)]
        assert calls[total] == (("done",), {})

    yield harness.finish()


@mixed_pairs
@pytest_twisted.inlineCallbacks
def test_mixed_serializers_events(harness, caller_ser, callee_ser):
    publisher = yield harness.connect(caller_ser)
    subscriber = yield harness.connect(callee_ser)
    events = Collector()
    yield within(subscriber.subscribe(events, "com.example.topic"))
    publisher.publish("com.example.topic", b"\x00\x01\xff", "text", nested=[b"\x02", {"k": b""}])
    yield events.wait_for(1)
    assert events.calls == [((b"\x00\x01\xff", "text"), {"nested": [b"\x02", {"k": b""}]})]
    yield harness.finish()
