"""The client Session over real sockets against our Router, with json and msgpack."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from promisifier.client import (
    ApplicationError,
    CallResult,
    CallTimeout,
    ConnectionClosed,
    ConnectionLost,
    EventDetails,
    InvocationDetails,
    NotConnected,
    Registration,
    SessionState,
    Subscription,
    connect,
)
from tests.support import SERIALIZER_NAMES, start_router, within

pytestmark = pytest.mark.slow


@pytest.fixture
def router():
    running = pytest_twisted.blockon(start_router())
    yield running
    pytest_twisted.blockon(running.stop())


@pytest.fixture(params=SERIALIZER_NAMES)
def serializer(request):
    return request.param


def join(router, serializer, **kwargs):
    return within(connect(router.url, "realm1", serializers=(serializer,), **kwargs))


def requires(session, role: str, feature: str) -> None:
    """Skip the test when the router did not announce ``feature`` in WELCOME."""
    if not session.router_supports(role, feature):
        pytest.skip(f"router does not announce {role} feature {feature!r} in WELCOME")


def event_waiter():
    """A handler recording events, and a function giving a Deferred for the n-th event."""
    received: list[tuple[tuple, dict]] = []
    waiters: list[tuple[int, defer.Deferred]] = []

    def handler(*args, **kwargs):
        received.append((args, kwargs))
        for n, d in list(waiters):
            if len(received) >= n and not d.called:
                waiters.remove((n, d))
                d.callback(received[:n])

    def wait(n: int) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        if len(received) >= n:
            d.callback(received[:n])
        else:
            waiters.append((n, d))
        return within(d)

    return handler, wait, received


@pytest_twisted.inlineCallbacks
def test_join_facts_and_hello_features(router, serializer):
    session = yield join(router, serializer)
    assert session.state is SessionState.JOINED and session.is_joined
    assert session.realm == "realm1"
    assert isinstance(session.session_id, int) and session.session_id > 0
    assert session.authid and session.authrole
    assert session.subprotocol == f"wamp.2.{serializer}"
    assert session.connected
    assert "127.0.0.1" in session.peer
    router_session = router.router.realms["realm1"].sessions[session.session_id]
    assert router_session.has_feature("caller", "progressive_call_results")
    assert router_session.has_feature("callee", "call_canceling")
    assert router_session.has_feature("publisher", "publisher_exclusion")
    yield within(session.leave())


@pytest_twisted.inlineCallbacks
def test_call_results_and_errors(router, serializer):
    callee = yield join(router, serializer)
    caller = yield join(router, serializer)

    def fail_runtime():
        raise ValueError("bad value 7")

    def fail_app(x):
        raise ApplicationError("com.example.error.odd", "odd number", x, hint="even")

    async def coroutine(x):
        value = yield_later = defer.Deferred()
        reactor.callLater(0, yield_later.callback, x * 10)
        return await value

    procedures = {
        "com.example.add": lambda a, b: a + b,
        "com.example.nothing": lambda: None,
        "com.example.several": lambda: CallResult([1, 2], {"total": 3}),
        "com.example.kw": lambda **kw: CallResult([], kw),
        "com.example.deferred": lambda x: defer.succeed(x + 1),
        "com.example.coroutine": coroutine,
        "com.example.runtime": fail_runtime,
        "com.example.app": fail_app,
        "com.example.bytes": lambda b: b[::-1],
    }
    for name, fn in procedures.items():
        registration = yield within(callee.register(name, fn))
        assert isinstance(registration, Registration) and registration.active and registration.procedure == name

    assert (yield within(caller.call("com.example.add", 2, 3))) == 5
    assert (yield within(caller.call("com.example.nothing"))) is None
    assert (yield within(caller.call("com.example.several"))) == CallResult([1, 2], {"total": 3})
    assert (yield within(caller.call("com.example.kw", a=1))) == CallResult([], {"a": 1})
    assert (yield within(caller.call("com.example.deferred", 1))) == 2
    assert (yield within(caller.call("com.example.coroutine", 4))) == 40
    assert (yield within(caller.call("com.example.bytes", b"\x00\x01\xff"))) == b"\xff\x01\x00"

    with pytest.raises(ApplicationError) as info:
        yield within(caller.call("com.example.runtime"))
    assert info.value.error == "wamp.error.runtime_error"
    assert info.value.args == ("bad value 7",)

    with pytest.raises(ApplicationError) as info:
        yield within(caller.call("com.example.app", 3))
    assert info.value.error == "com.example.error.odd"
    assert info.value.args == ("odd number", 3)
    assert info.value.kwargs == {"hint": "even"}

    with pytest.raises(ApplicationError) as info:
        yield within(caller.call("com.example.missing"))
    assert info.value.error == "wamp.error.no_such_procedure"

    stats = caller.stats
    assert stats.calls_made == 10
    assert stats.messages_out >= 11 and stats.messages_in >= 11  # HELLO/WELCOME + 10 calls
    assert stats.bytes_out > 0 and stats.bytes_in > 0
    assert callee.stats.invocations_served == 9
    assert caller.pending_requests == 0
    yield within(caller.leave())
    yield within(callee.leave())


@pytest_twisted.inlineCallbacks
def test_register_conflict_unregister_and_invalid_policy(router, serializer):
    a = yield join(router, serializer)
    b = yield join(router, serializer)
    registration = yield within(a.register("com.example.p", lambda: "a"))
    with pytest.raises(ApplicationError) as info:
        yield within(b.register("com.example.p", lambda: "b"))
    assert info.value.error == "wamp.error.procedure_already_exists"
    with pytest.raises(ValueError):
        a.register("com.example.q", lambda: None, match="fuzzy")
    yield within(registration.unregister())
    assert not registration.active
    yield within(registration.unregister())  # a second time: nothing to do
    with pytest.raises(ApplicationError) as info:
        yield within(b.call("com.example.p"))
    assert info.value.error == "wamp.error.no_such_procedure"
    yield within(b.register("com.example.p", lambda: "b"))
    assert (yield within(a.call("com.example.p"))) == "b"
    yield within(a.close())
    yield within(b.close())


@pytest_twisted.inlineCallbacks
def test_shared_and_pattern_registrations(router, serializer):
    a = yield join(router, serializer)
    requires(a, "dealer", "pattern_based_registration")
    requires(a, "dealer", "shared_registration")
    b = yield join(router, serializer)
    yield within(a.register("com.example.shared", lambda: "a", invoke="roundrobin"))
    yield within(b.register("com.example.shared", lambda: "b", invoke="roundrobin"))
    answers = set()
    for _ in range(4):
        answers.add((yield within(a.call("com.example.shared"))))
    assert answers == {"a", "b"}
    yield within(b.register("com.example.prefix", lambda x: f"prefix {x}", match="prefix"))
    assert (yield within(a.call("com.example.prefix.deep.name", 1))) == "prefix 1"
    yield within(a.close())
    yield within(b.close())


@pytest_twisted.inlineCallbacks
def test_details_tell_a_pattern_handler_the_concrete_uri_and_who_called(router, serializer):
    callee = yield join(router, serializer)
    caller = yield join(router, serializer)
    seen = []

    def handler(x, details):
        seen.append(details)
        return f"{details.procedure}({x})"

    registration = yield within(callee.register("com.example.pattern", handler, match="prefix", details=True))
    assert (yield within(caller.call("com.example.pattern.deep.name", 1))) == "com.example.pattern.deep.name(1)"
    assert seen[0] == InvocationDetails(procedure="com.example.pattern.deep.name", registration=registration.id)
    # disclosed callers, and progressive results beside details
    progress_seen = []

    def counting(n, details, progress=None):
        progress(n - 1)
        return details.caller

    yield within(callee.register("com.example.counting", counting, details=True))
    who = yield within(caller.call("com.example.counting", 2, disclose_me=True, on_progress=progress_seen.append))
    assert who == caller.session_id and progress_seen == [1]
    # without details=True the handler gets no such keyword
    yield within(callee.register("com.example.plain", lambda **kwargs: sorted(kwargs)))
    assert (yield within(caller.call("com.example.plain", a=1))) == ["a"]
    yield within(caller.close())
    yield within(callee.close())


@pytest_twisted.inlineCallbacks
def test_event_details_and_retained_events(router, serializer):
    publisher = yield join(router, serializer)
    subscriber = yield join(router, serializer)
    handler, wait, received = event_waiter()
    subscription = yield within(subscriber.subscribe("com.example.wild..temp", handler, match="wildcard", details=True))
    publication = yield within(publisher.publish("com.example.wild.room1.temp", 21, acknowledge=True))
    ((args, kwargs),) = yield wait(1)
    assert args == (21,)
    assert kwargs == {
        "details": EventDetails(
            topic="com.example.wild.room1.temp", subscription=subscription.id, publication=publication
        )
    }
    # a retained event arrives on subscribing with get_retained, marked as such
    kept = yield within(publisher.publish("com.example.kept", "last", acknowledge=True, retain=True))
    late, late_wait, _ = event_waiter()
    yield within(subscriber.subscribe("com.example.kept", late, details=True, get_retained=True))
    ((args, kwargs),) = yield late_wait(1)
    assert args == ("last",) and kwargs["details"].retained and kwargs["details"].publication == kept
    yield within(publisher.close())
    yield within(subscriber.close())


@pytest_twisted.inlineCallbacks
def test_subscribe_publish_unsubscribe(router, serializer):
    publisher = yield join(router, serializer)
    subscriber = yield join(router, serializer)
    handler, wait, received = event_waiter()
    subscription = yield within(subscriber.subscribe("com.example.topic", handler))
    assert isinstance(subscription, Subscription) and subscription.active

    publication_id = yield within(publisher.publish("com.example.topic", 1, "two", three=3, acknowledge=True))
    assert isinstance(publication_id, int) and publication_id > 0
    unacknowledged = publisher.publish("com.example.topic", b"\x00bin")
    assert isinstance(unacknowledged, defer.Deferred) and unacknowledged.called
    assert (yield unacknowledged) is None
    events = yield wait(2)
    assert events == [((1, "two"), {"three": 3}), ((b"\x00bin",), {})]

    # the publisher is excluded by default
    own, own_wait, own_received = event_waiter()
    yield within(publisher.subscribe("com.example.topic", own))
    yield within(publisher.publish("com.example.topic", "x", acknowledge=True))
    yield wait(3)
    assert own_received == []

    yield within(subscription.unsubscribe())
    assert not subscription.active
    yield within(publisher.publish("com.example.topic", "after", acknowledge=True))
    # a round trip through the router: anything published before has been delivered
    yield within(subscriber.publish("com.example.other", acknowledge=True))
    assert len(received) == 3
    assert subscriber.stats.events_received == 3
    assert publisher.stats.publications_sent == 4
    yield within(publisher.close())
    yield within(subscriber.close())


@pytest_twisted.inlineCallbacks
def test_two_local_subscriptions_share_one_router_subscription(router, serializer):
    session = yield join(router, serializer)
    other = yield join(router, serializer)
    h1, wait1, got1 = event_waiter()
    h2, wait2, got2 = event_waiter()
    s1 = yield within(session.subscribe("com.example.t", h1))
    s2 = yield within(session.subscribe("com.example.t", h2))
    assert s1.id == s2.id
    yield within(other.publish("com.example.t", 1))
    yield wait1(1)
    yield wait2(1)
    yield within(s1.unsubscribe())
    assert router.router.state_counts()["subscriptions"] == 1
    yield within(other.publish("com.example.t", 2))
    yield wait2(2)
    assert len(got1) == 1
    yield within(s2.unsubscribe())
    assert router.router.state_counts()["subscriptions"] == 0
    yield within(session.close())
    yield within(other.close())


@pytest_twisted.inlineCallbacks
def test_publish_options_exclude_me_eligible_exclude(router, serializer):
    a = yield join(router, serializer)
    requires(a, "broker", "publisher_exclusion")
    requires(a, "broker", "subscriber_blackwhite_listing")
    b = yield join(router, serializer)
    c = yield join(router, serializer)
    handlers = {}
    for name, session in (("a", a), ("b", b), ("c", c)):
        handlers[name] = event_waiter()
        yield within(session.subscribe("com.example.opts", handlers[name][0]))
    yield within(a.publish("com.example.opts", "me too", exclude_me=False, acknowledge=True))
    yield within(a.publish("com.example.opts", "only b", eligible=[b.session_id], acknowledge=True))
    yield within(a.publish("com.example.opts", "not c", exclude=[c.session_id], acknowledge=True))
    yield handlers["a"][1](1)
    yield handlers["b"][1](3)
    yield handlers["c"][1](1)
    # a round trip on each connection: any stray event sent before would have arrived
    for session in (a, c):
        yield within(session.publish("com.example.nothing", acknowledge=True))
    assert [e[0] for e in handlers["a"][2]] == [("me too",)]
    assert [e[0] for e in handlers["b"][2]] == [("me too",), ("only b",), ("not c",)]
    assert [e[0] for e in handlers["c"][2]] == [("me too",)]
    for s in (a, b, c):
        yield within(s.close())


@pytest_twisted.inlineCallbacks
def test_progressive_results(router, serializer):
    caller = yield join(router, serializer)
    requires(caller, "dealer", "progressive_call_results")
    callee = yield join(router, serializer)
    seen_progress_kw = []

    def counting(n, progress=None):
        seen_progress_kw.append(progress is not None)
        for i in range(n):
            if progress is not None:
                progress(i, step=i)
        return "done"

    yield within(callee.register("com.example.count", counting))
    updates = []
    result = yield within(caller.call("com.example.count", 3, on_progress=lambda *a, **kw: updates.append((a, kw))))
    assert result == "done"
    assert updates == [((0,), {"step": 0}), ((1,), {"step": 1}), ((2,), {"step": 2})]
    # without on_progress the callee gets no progress callable
    assert (yield within(caller.call("com.example.count", 2))) == "done"
    assert seen_progress_kw == [True, False]
    yield within(caller.close())
    yield within(callee.close())


@pytest_twisted.inlineCallbacks
def test_cancel_interrupts_the_callee(router, serializer):
    caller = yield join(router, serializer)
    requires(caller, "dealer", "call_canceling")
    callee = yield join(router, serializer)
    started = defer.Deferred()
    interrupted = defer.Deferred()

    def slow():
        d = defer.Deferred(lambda _: interrupted.callback("interrupted"))
        started.callback(None)
        return d

    yield within(callee.register("com.example.slow", slow))
    for mode in ("kill", "killnowait", "skip"):
        caller.cancel_mode = mode
        started, interrupted = defer.Deferred(), defer.Deferred()
        call = caller.call("com.example.slow")
        yield within(started)
        call.cancel()
        with pytest.raises(defer.CancelledError):
            yield call
        if mode != "skip":
            assert (yield within(interrupted)) == "interrupted"
        assert caller.pending_requests == 0
    with pytest.raises(ValueError):
        caller.cancel_mode = "gently"
    # the session is still usable after the router's late ERRORs for the cancelled calls
    yield within(callee.register("com.example.echo", lambda x: x))
    assert (yield within(caller.call("com.example.echo", "still here"))) == "still here"
    yield within(caller.close())
    yield within(callee.close())


@pytest_twisted.inlineCallbacks
def test_call_timeout(router, serializer):
    caller = yield join(router, serializer)
    callee = yield join(router, serializer)
    never = defer.Deferred()
    yield within(callee.register("com.example.never", lambda: never))
    with pytest.raises(CallTimeout) as info:
        yield within(caller.call("com.example.never", timeout=0.2))
    assert info.value.error == "wamp.error.timeout"
    assert caller.pending_requests == 0
    yield within(caller.close())
    yield within(callee.close())


@pytest_twisted.inlineCallbacks
def test_closed_normal_close(router, serializer):
    session = yield join(router, serializer)
    closed = session.closed
    result = yield within(session.close())
    assert result[0] == 1000
    assert (yield within(closed))[0] == 1000
    assert (yield within(session.closed))[0] == 1000  # read after the end: already fired
    assert session.state is SessionState.CLOSED and not session.connected
    with pytest.raises(NotConnected):
        yield session.call("com.example.anything")


@pytest_twisted.inlineCallbacks
def test_closed_after_leave(router, serializer):
    session = yield join(router, serializer)
    closed = session.closed
    reason = yield within(session.leave())
    assert reason == "wamp.close.goodbye_and_out"
    code, _ = yield within(closed)
    assert code == 1000
    assert router.router.state_counts()["sessions"] == 0
    with pytest.raises(NotConnected):
        yield session.leave()


@pytest_twisted.inlineCallbacks
def test_closed_abnormal_drop(router, serializer):
    session = yield join(router, serializer)
    closed = session.closed
    session.connection.drop()
    with pytest.raises(ConnectionClosed) as info:
        yield within(closed)
    assert info.value.code == 1006


@pytest_twisted.inlineCallbacks
def test_closed_with_code_and_reason_from_router(router, serializer):
    session = yield join(router, serializer)
    closed = session.closed
    router_session = router.router.realms["realm1"].sessions[session.session_id]
    router_session.peer.close(4001, "go away, nicely")
    with pytest.raises(ConnectionClosed) as info:
        yield within(closed)
    assert (info.value.code, info.value.reason) == (4001, "go away, nicely")


@pytest_twisted.inlineCallbacks
def test_pending_requests_fail_at_once_on_disconnect(router, serializer):
    caller = yield join(router, serializer)
    callee = yield join(router, serializer)
    started = defer.Deferred()
    never = defer.Deferred()

    def hang():
        started.callback(None)
        return never

    yield within(callee.register("com.example.hang", hang))
    call = caller.call("com.example.hang")
    call2 = caller.call("com.example.hang")
    yield within(started)
    assert caller.pending_requests == 2
    caller.connection.drop()
    for d in (call, call2):
        with pytest.raises(ConnectionLost):
            yield within(d, 2.0)
    assert caller.pending_requests == 0
    # the callee's invocations are dropped by the router: it can answer later without harm
    never.callback("late")
    yield within(callee.close())


@pytest_twisted.inlineCallbacks
def test_pending_call_fails_when_the_callee_goes_away(router, serializer):
    caller = yield join(router, serializer)
    callee = yield join(router, serializer)
    started = defer.Deferred()
    yield within(callee.register("com.example.hang", lambda: started.callback(None) or defer.Deferred()))
    call = caller.call("com.example.hang")
    yield within(started)
    callee.connection.drop()
    with pytest.raises(ApplicationError) as info:
        yield within(call)
    assert info.value.error == "wamp.error.canceled"
    yield within(caller.close())


@pytest_twisted.inlineCallbacks
def test_router_shutdown_ends_the_session_normally(serializer):
    running = yield start_router()
    session = yield join(running, serializer)
    left = defer.Deferred()
    session.on("leave", lambda s, reason: left.callback(reason))
    closed = session.closed
    never = defer.Deferred()
    yield within(session.register("com.example.hang", lambda: never))
    call = session.call("com.example.hang")
    yield running.stop()
    assert (yield within(left)) == "wamp.close.system_shutdown"
    with pytest.raises(ConnectionLost):
        yield within(call)
    code, _ = yield within(closed)
    assert code == 1000


@pytest_twisted.inlineCallbacks
def test_unknown_and_late_answers_are_ignored(router, serializer):
    caller = yield join(router, serializer)
    callee = yield join(router, serializer)
    # answers to requests never made, for subscriptions and registrations we do not hold
    for message in (
        [50, 99999, {}, ["stray"]],
        [50, 99999, {"progress": True}, ["stray"]],
        [8, 48, 99998, {}, "wamp.error.canceled"],
        [8, 64, 99998, {}, "wamp.error.canceled"],
        [65, 99997, 1234],
        [67, 99996],
        [67, 0, {"registration": 4321}],
        [33, 99995, 1234],
        [35, 99994],
        [17, 99993, 5678],
        [36, 424242, 1, {}, ["nobody listens"]],
        [69, 313131, {}],
    ):
        caller.on_message(message)
    # an INVOCATION for a registration we do not hold is answered with an ERROR, not fatal
    callee.on_message([68, 777, 888, {}, []])
    assert caller.is_joined and callee.is_joined

    # a late answer: the caller gave up (cancel), the callee answers afterwards
    release = defer.Deferred()
    started = defer.Deferred()

    def late():
        started.callback(None)
        return release

    yield within(callee.register("com.example.late", late))
    yield within(callee.register("com.example.echo", lambda x: x))
    caller.cancel_mode = "skip"
    call = caller.call("com.example.late")
    yield within(started)
    call.cancel()
    with pytest.raises(defer.CancelledError):
        yield call
    release.callback("too late")
    assert (yield within(caller.call("com.example.echo", "fine"))) == "fine"
    assert caller.is_joined and callee.is_joined
    yield within(caller.close())
    yield within(callee.close())


@pytest_twisted.inlineCallbacks
def test_unencodable_arguments_fail_the_request_not_the_session(router):
    session = yield join(router, "json")
    with pytest.raises(Exception) as info:
        yield session.call("com.example.x", {b"bytes key": 1})
    assert "JSON" in str(info.value)
    with pytest.raises(Exception):
        yield session.publish("com.example.t", object())
    assert session.pending_requests == 0 and session.is_joined
    yield within(session.close())
