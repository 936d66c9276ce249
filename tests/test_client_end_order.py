"""When a joined session ends (the relay dies, or says GOODBYE), the Client changes state
and fires ``disconnect`` before the session's pending requests fail: code run from their
errbacks sees a client that is not joined."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer

from promisifier.client import Backoff, Client, ClientState, ConnectionLost, NotConnected, connect
from tests.support import start_router, within
from tests.test_client_reconnect import ScriptedClient

pytestmark = pytest.mark.slow


def watch_failure(client: Client, call: defer.Deferred, events: list) -> list:
    """What the errback of ``call`` sees: the state, the events so far, and what a new
    call made right there fails with."""
    seen: list = []

    def failed(failure):
        again = client.call("com.example.again")
        again.addErrback(lambda f: seen.append(f.value))
        seen[:0] = [client.state, list(events), failure.value]

    call.addErrback(failed)
    return seen


@pytest.mark.parametrize("how", ["connection lost", "router said goodbye"])
def test_state_and_disconnect_change_before_pending_calls_fail(how):
    client = ScriptedClient(backoff=Backoff(initial=1.0, floor=1.0, cap=1.0))
    session, connection = client.succeed()
    call = client.call("com.example.slow")
    seen = watch_failure(client, call, [name for name, *_ in client.events])
    names_before = list(client.names())
    if how == "connection lost":
        connection.gone(1006, "")
        expected = ("disconnect", 1006, "")
    else:
        session.on_message([6, {}, "wamp.close.system_shutdown"])
        expected = ("disconnect", 1000, "wamp.close.system_shutdown")
        connection.gone(1000, "session ended")
    state, _, error, again = seen
    assert isinstance(error, ConnectionLost)
    assert state is ClientState.BACKING_OFF
    assert isinstance(again, NotConnected) and "client is backing_off" in str(again)
    # leave and disconnect fired once each, before the call failed
    assert client.names() == [*names_before, "leave", "disconnect"]
    assert client.events[-1] == expected
    assert client.reactor.getDelayedCalls()  # a reconnect is scheduled


@pytest_twisted.inlineCallbacks
def test_over_a_socket_the_errback_of_a_lost_call_sees_the_client_gone():
    running = yield start_router()
    callee = yield within(connect(running.url, "realm1"))
    yield within(callee.register("com.example.slow", lambda: defer.Deferred()))
    client = Client(running.url, "realm1", backoff=Backoff(initial=5.0, floor=5.0, cap=5.0))
    events: list = []
    client.on("disconnect", lambda code, reason: events.append(("disconnect", code)))
    try:
        yield within(client.connect())
        call = client.call("com.example.slow")
        seen = watch_failure(client, call, events)
        client.session.connection.transport.abortConnection()  # as when the relay dies
        yield within(call)
        state, events_then, error, again = seen
        assert isinstance(error, ConnectionLost)
        assert state is ClientState.BACKING_OFF
        assert events_then == [("disconnect", 1006)]
        assert isinstance(again, NotConnected) and "backing_off" in str(again)
    finally:
        yield within(client.close())
        yield within(callee.close())
        yield running.stop()
