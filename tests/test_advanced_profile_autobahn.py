"""The rest of the advanced profile with autobahn-python over real WebSockets: revocation,
prefix URIs ending in a dot, progressive results under a timeout, rerouting."""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.role import DEFAULT_CLIENT_ROLES, RoleSubscriberFeatures
from autobahn.wamp.types import CallOptions, RegisterOptions, SubscribeOptions

from tests.advanced_support import Collector, WireSession, by_serializer, expect_application_error, sync
from tests.support import within

pytestmark = pytest.mark.slow


UNREGISTERED, UNSUBSCRIBED = 67, 35


class NoSubscriptionRevocationSession(WireSession):
    """autobahn-python announces subscription_revocation but treats UNSUBSCRIBED with request 0
    as a protocol error (26.11): this one does not announce it."""

    client_roles = {
        **DEFAULT_CLIENT_ROLES,
        "subscriber": RoleSubscriberFeatures(publisher_identification=True, pattern_based_subscription=True),
    }


@by_serializer
@pytest_twisted.inlineCallbacks
def test_autobahn_callee_is_told_of_its_revoked_registration(harness, ser):
    callee = yield harness.connect(ser)
    admin = yield harness.connect(ser)
    registration = yield within(callee.register(lambda: "hi", "com.example.revoked"))
    yield within(
        admin.call("wamp.registration.remove_callee", registration.id, callee.session_id, reason="maintenance")
    )
    frame = yield callee.wait_wire(lambda frame: frame[0] == UNREGISTERED)
    assert frame == [UNREGISTERED, 0, {"registration": registration.id, "reason": "maintenance"}]
    error = yield expect_application_error(admin.call("com.example.revoked"))
    assert error.error == "wamp.error.no_such_procedure"
    assert callee.is_attached()
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_autobahn_subscriber_without_revocation_feature_just_stops_receiving(harness, ser):
    subscriber = yield harness.connect(ser, NoSubscriptionRevocationSession)
    admin = yield harness.connect(ser)
    events = Collector()
    subscription = yield within(subscriber.subscribe(events, "com.example.topic"))
    yield within(admin.call("wamp.subscription.remove_subscriber", subscription.id, subscriber.session_id))
    yield admin.publish("com.example.topic", 1)
    yield sync(admin)
    yield sync(subscriber)
    assert events.args == []
    assert subscriber.received(UNSUBSCRIBED) == []
    assert subscriber.is_attached()
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_autobahn_prefix_registration_and_subscription_ending_in_a_dot(harness, ser):
    session = yield harness.connect(ser)
    other = yield harness.connect(ser)
    events = Collector()
    yield within(session.register(lambda: "served", "com.example.", options=RegisterOptions(match="prefix")))
    yield within(session.subscribe(events, "com.example.", options=SubscribeOptions(match="prefix")))
    result = yield within(other.call("com.example.anything"))
    assert result == "served"
    yield other.publish("com.example.news", "hello")
    yield events.wait_for(1)
    assert events.args == [("hello",)]
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_autobahn_progressive_results_outlast_the_call_timeout(harness, ser):
    callee = yield harness.connect(ser)
    caller = yield harness.connect(ser)

    async def stream(details=None):
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        for n in range(4):  # 4 x 150 ms under a 400 ms timeout
            await deferLater(reactor, 0.15, lambda: None)
            details.progress(n)
        return "done"

    yield within(callee.register(stream, "com.example.stream", options=RegisterOptions(details=True)))
    progress = Collector()
    result = yield within(caller.call("com.example.stream", options=CallOptions(on_progress=progress, timeout=400)), 10)
    assert result == "done"
    assert progress.args == [(0,), (1,), (2,), (3,)]
    yield harness.finish()


@by_serializer
@pytest_twisted.inlineCallbacks
def test_autobahn_callee_answering_unavailable_reroutes_the_call(harness, ser):
    busy = yield harness.connect(ser)
    free = yield harness.connect(ser)
    caller = yield harness.connect(ser)

    def unavailable(x):
        raise ApplicationError("wamp.error.unavailable", "busy")

    shared = RegisterOptions(invoke="first")
    yield within(busy.register(unavailable, "com.example.shared", options=shared))
    registration = yield within(free.register(lambda x: x * 2, "com.example.shared", options=shared))
    result = yield within(caller.call("com.example.shared", 21))
    assert result == 42
    yield within(caller.call("wamp.registration.remove_callee", registration.id, free.session_id))
    error = yield expect_application_error(caller.call("com.example.shared", 1))
    assert error.error == "wamp.error.no_available_callee"
    yield harness.finish()
