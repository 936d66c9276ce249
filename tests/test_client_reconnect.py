"""The reconnecting Client: its state machine driven with a Clock, then over real sockets."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock

from promisifier.client import (
    Backoff,
    Client,
    ClientRegistration,
    ClientState,
    ClientSubscription,
    NotConnected,
    connect,
)
from promisifier.embed import Router
from tests.support import RunningRouter, start_router, within
from tests.test_client_session_unit import joined, result_of

pytestmark = pytest.mark.slow

# -- the state machine, with a Clock and scripted connection attempts ---------------------------


class ScriptedClient(Client):
    """A Client whose connection attempts are Deferreds the test fires."""

    def __init__(self, *args, **kwargs) -> None:
        self.attempts: list[defer.Deferred] = []
        self.events: list[tuple] = []
        kwargs.setdefault("reactor", Clock())
        super().__init__("ws://example.invalid/ws", "realm1", *args, **kwargs)
        for name in ("connect", "join", "leave", "disconnect", "reconnect_failed"):
            self.on(name, lambda *a, name=name: self.events.append((name, *a)))

    def _open_session(self) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.attempts.append(d)
        return d

    def succeed(self):
        """Let the pending attempt join; returns the fake session and its connection."""
        session, connection, _ = joined()
        self.attempts[-1].callback(session)
        return session, connection

    def fail(self, error: Exception | None = None) -> None:
        self.attempts[-1].errback(error or ConnectionRefusedError())

    def pending_delay(self) -> float:
        calls = self.reactor.getDelayedCalls()
        assert len(calls) == 1, calls
        return calls[0].getTime() - self.reactor.seconds()

    def names(self) -> list[str]:
        return [event[0] for event in self.events]


def test_backoff_bounds():
    backoff = Backoff(initial=1.0, factor=2.0, floor=0.1, cap=5.0)
    assert [backoff.ceiling(n) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.delay(0, lambda: 0.0) == 0.1
    assert backoff.delay(3, lambda: 0.999999) == pytest.approx(5.0, rel=1e-5)
    assert backoff.ceiling(10_000) == 5.0  # no overflow with unlimited reconnects
    with pytest.raises(ValueError):
        Backoff(floor=2.0, cap=1.0)


def test_connects_joins_and_fires_events():
    client = ScriptedClient()
    assert client.state is ClientState.CONNECTING and len(client.attempts) == 1
    waiter = client.connect()  # already under way: no second attempt
    assert len(client.attempts) == 1 and not waiter.called
    session, _ = client.succeed()
    assert client.state is ClientState.JOINED and client.session is session
    assert result_of(waiter) is session
    assert client.names() == ["join"]
    assert result_of(client.connect()) is session


def test_autoconnect_off_waits_for_connect():
    client = ScriptedClient(autoconnect=False)
    assert client.state is ClientState.DISCONNECTED and client.attempts == []
    d = client.connect()
    assert client.state is ClientState.CONNECTING
    session, _ = client.succeed()
    assert result_of(d) is session


def test_backoff_grows_and_resets_after_join():
    client = ScriptedClient(backoff=Backoff(initial=1.0, floor=0.5, cap=3.0))
    client.fail()
    assert client.state is ClientState.BACKING_OFF
    assert 0.5 <= client.pending_delay() <= 1.0
    client.reactor.advance(1.0)
    assert client.state is ClientState.CONNECTING and len(client.attempts) == 2
    client.fail()
    assert 0.5 <= client.pending_delay() <= 2.0 and client.reconnect_attempts == 2
    client.reactor.advance(2.0)
    client.fail()
    assert 0.5 <= client.pending_delay() <= 3.0
    client.reactor.advance(3.0)
    _, connection = client.succeed()
    assert client.reconnect_attempts == 0
    connection.gone(1006, "dropped")
    assert ("disconnect", 1006, "dropped") in client.events
    assert client.state is ClientState.BACKING_OFF
    assert 0.5 <= client.pending_delay() <= 1.0  # back to the first step
    assert client.session is None


def test_max_reconnects_reached_gives_up():
    client = ScriptedClient(max_reconnects=2, reconnect_interval=0.1)
    waiter = client.connect()
    for _ in range(2):
        client.fail()
        assert client.state is ClientState.BACKING_OFF
        client.reactor.advance(client.pending_delay())
    client.fail()
    assert client.state is ClientState.GIVEN_UP
    assert len(client.attempts) == 3  # the first attempt plus max_reconnects
    assert client.names() == ["reconnect_failed"]
    assert client.reactor.getDelayedCalls() == []
    with pytest.raises(NotConnected) as info:
        result_of(waiter)
    assert "gave up" in str(info.value)
    with pytest.raises(NotConnected):
        result_of(client.call("com.example.x", wait_connected=True))
    # connect() starts over
    again = client.connect()
    assert client.state is ClientState.CONNECTING and client.reconnect_attempts == 0
    session, _ = client.succeed()
    assert result_of(again) is session


def test_unlimited_reconnects():
    client = ScriptedClient(max_reconnects=0, backoff=Backoff(initial=0.1, floor=0.01, cap=1.0))
    for _ in range(30):
        client.fail()
        assert client.state is ClientState.BACKING_OFF
        assert client.pending_delay() <= 1.0
        client.reactor.advance(1.0)
    assert len(client.attempts) == 31 and "reconnect_failed" not in client.names()


def test_reconnect_off():
    client = ScriptedClient(reconnect=False)
    waiter = client.connect()
    client.fail()
    assert client.state is ClientState.DISCONNECTED and client.reactor.getDelayedCalls() == []
    with pytest.raises(NotConnected):
        result_of(waiter)
    client.connect()
    _, connection = client.succeed()
    connection.gone(1006)
    assert client.state is ClientState.DISCONNECTED


def test_a_bad_url_gives_up_at_once():
    client = ScriptedClient()
    client.fail(ValueError("invalid WebSocket URL"))
    assert client.state is ClientState.GIVEN_UP and client.names() == ["reconnect_failed"]


def test_close_while_backing_off_and_while_connecting():
    client = ScriptedClient()
    client.fail()
    assert client.state is ClientState.BACKING_OFF
    result_of(client.close())
    assert client.state is ClientState.DISCONNECTED and client.reactor.getDelayedCalls() == []

    client = ScriptedClient()
    waiter = client.connect()
    result_of(client.close())
    assert client.state is ClientState.DISCONNECTED
    assert client.attempts[0].called  # the attempt was cancelled
    with pytest.raises(NotConnected):
        result_of(waiter)


def test_close_and_leave_when_joined_do_not_reconnect():
    client = ScriptedClient()
    session, connection = client.succeed()
    d = client.close()
    assert connection.closes == [(1000, "")]
    connection.gone(1000, "")
    assert result_of(d) is None
    assert client.state is ClientState.DISCONNECTED and client.reactor.getDelayedCalls() == []

    client = ScriptedClient()
    session, connection = client.succeed()
    d = client.leave()
    assert connection.last()[0] == 6  # GOODBYE
    session.on_message([6, {}, "wamp.close.goodbye_and_out"])
    connection.gone(1000, "")
    assert result_of(d) is None and client.state is ClientState.DISCONNECTED
    assert ("leave", session, "wamp.close.normal") in client.events


def test_call_while_disconnected_and_wait_connected():
    client = ScriptedClient()
    with pytest.raises(NotConnected):
        result_of(client.call("com.example.x"))
    with pytest.raises(NotConnected):
        result_of(client.publish("com.example.t", 1))
    waiting = client.call("com.example.add", 1, 2, wait_connected=True, timeout=5)
    client.reactor.advance(2)
    assert not waiting.called
    session, connection = client.succeed()
    call = connection.last()
    assert call[0] == 48 and call[3:] == ["com.example.add", [1, 2]]
    assert call[2]["timeout"] == 3000  # what was left of the 5 s
    session.on_message([50, call[1], {}, [3]])
    assert result_of(waiting) == 3


def test_wait_connected_is_bounded_and_cancellable():
    client = ScriptedClient(wait_timeout=4)
    bounded = client.call("com.example.x", wait_connected=True)
    client.reactor.advance(4)
    with pytest.raises(NotConnected) as info:
        result_of(bounded)
    assert "within 4" in str(info.value)
    cancelled = client.call("com.example.x", wait_connected=True, timeout=10)
    cancelled.cancel()
    with pytest.raises(defer.CancelledError):
        result_of(cancelled)
    session, connection = client.succeed()
    assert [m for m in connection.sent if m[0] == 48] == []


def answer_registers(session, connection, start: int = 100) -> None:
    """Answer every REGISTER and SUBSCRIBE the session sent."""
    for n, message in enumerate(list(connection.sent)):
        if message[0] == 64:
            session.on_message([65, message[1], start + n])
        elif message[0] == 32:
            session.on_message([33, message[1], start + n])


def test_registrations_and_subscriptions_restored_after_reconnect():
    client = ScriptedClient(reconnect_interval=0.1)
    offline = result_of(client.register("com.example.offline", lambda: 0))  # not joined yet
    assert isinstance(offline, ClientRegistration) and not offline.active
    session, connection = client.succeed()
    assert client.names() == []  # "join" waits for the restore
    answer_registers(session, connection)
    assert client.names() == ["join"] and offline.active

    pending = client.register("com.example.p", lambda: 1)
    session.on_message([65, connection.last()[1], 1])
    registration = result_of(pending)
    pending = client.subscribe("com.example.t", lambda *a: None)
    session.on_message([33, connection.last()[1], 2])
    subscription = result_of(pending)
    assert isinstance(subscription, ClientSubscription) and registration.active and subscription.active
    with pytest.raises(ValueError):
        result_of(client.register("com.example.p", lambda: 2))

    connection.gone(1006, "")
    assert not registration.active and not subscription.active
    client.reactor.advance(client.pending_delay())
    session2, connection2 = client.succeed()
    sent = [(m[0], m[3]) for m in connection2.sent if m[0] in (64, 32)]
    assert sent == [(64, "com.example.offline"), (64, "com.example.p"), (32, "com.example.t")]
    answer_registers(session2, connection2)
    assert registration.active and subscription.active
    assert session2._table.registrations[registration.current.id] is registration.current
    assert client.names() == ["join", "leave", "disconnect", "join"]

    registration.unregister()
    assert connection2.last()[0] == 66
    connection2.gone(1006, "")
    client.reactor.advance(client.pending_delay())
    session3, connection3 = client.succeed()
    assert [m[3] for m in connection3.sent if m[0] == 64] == ["com.example.offline"]


def test_router_refusal_forgets_the_registration():
    client = ScriptedClient()
    session, connection = client.succeed()
    pending = client.register("com.example.taken", lambda: 1)
    session.on_message([8, 64, connection.last()[1], {}, "wamp.error.procedure_already_exists"])
    with pytest.raises(Exception):
        result_of(pending)
    assert "com.example.taken" not in client._registrations


def test_registration_survives_a_loss_before_the_answer():
    client = ScriptedClient()
    session, connection = client.succeed()
    pending = client.register("com.example.p", lambda: 1)
    connection.gone(1006, "")
    handle = result_of(pending)
    assert isinstance(handle, ClientRegistration) and not handle.active
    client.reactor.advance(client.pending_delay())
    _, connection2 = client.succeed()
    assert [m[3] for m in connection2.sent if m[0] == 64] == ["com.example.p"]


def test_each_failed_attempt_is_reported_before_the_client_gives_up():
    client = ScriptedClient(max_reconnects=1, reconnect_interval=0.1)
    reports: list = []
    client.on("attempt_failed", lambda error: reports.append(str(error)))
    client.on("reconnect_failed", lambda: reports.append("gave up"))
    client.connect()
    client.fail(ValueError("first"))  # retrying cannot help: gives up at once
    assert reports == ["first", "gave up"]
    client.connect()
    client.fail(ConnectionRefusedError("second"))
    client.reactor.advance(client.pending_delay())
    client.fail(ConnectionRefusedError("third"))
    assert reports[2:] == [
        "Connection was refused by other side: second.",
        "Connection was refused by other side: third.",
        "gave up",
    ]


def test_an_adopted_session_is_used_instead_of_a_connection():
    client = Client("ws://example.invalid/ws", "realm1", autoconnect=False, reactor=Clock())
    session, connection, _ = joined()
    joins: list = []
    client.on("join", joins.append)
    assert result_of(client.adopt(session)) is session
    assert client.state is ClientState.JOINED and client.session is session and joins == [session]
    client.set_credentials("alice", ["ticket"], {"ticket": "secret"})
    assert client._connect_options["authid"] == "alice"  # used by the next attempt
    client.close()
    assert client.state is ClientState.DISCONNECTED


# -- over real sockets -------------------------------------------------------------------------


class CountingClient(Client):
    def __init__(self, *args, **kwargs) -> None:
        self.attempt_count = 0
        super().__init__(*args, **kwargs)

    def _open_session(self):
        self.attempt_count += 1
        return super()._open_session()


def event(client: Client, name: str) -> defer.Deferred:
    """A Deferred for the next ``name`` event of ``client``."""
    d: defer.Deferred = defer.Deferred()

    def fire(*args):
        client.off(name, fire)
        d.callback(args)

    client.on(name, fire)
    return within(d)


@pytest_twisted.inlineCallbacks
def test_url_that_refuses_gives_up(free_port):
    client = CountingClient(f"ws://127.0.0.1:{free_port}/ws", "realm1", reconnect_interval=0.01, max_reconnects=2)
    failed = event(client, "reconnect_failed")
    yield failed
    assert client.state is ClientState.GIVEN_UP
    assert client.attempt_count == 3
    with pytest.raises(NotConnected):
        yield client.call("com.example.x", wait_connected=True)


@pytest_twisted.inlineCallbacks
def test_refused_without_reconnect(free_port):
    client = Client(f"ws://127.0.0.1:{free_port}/ws", "realm1", reconnect=False, autoconnect=False)
    with pytest.raises(NotConnected) as info:
        yield within(client.connect())
    assert "refused" in str(info.value).lower()
    assert client.state is ClientState.DISCONNECTED


@pytest_twisted.inlineCallbacks
@pytest.mark.parametrize("serializer", ["json", "msgpack"])
def test_reconnect_restores_registrations_and_subscriptions(serializer):
    running = yield start_router()
    port = running.port_number
    client = Client(
        running.url,
        "realm1",
        serializers=(serializer,),
        backoff=Backoff(initial=0.05, floor=0.01, cap=0.2),
        max_reconnects=0,
    )
    received: list = []
    got_event = defer.Deferred()
    connects: list = []
    client.on("connect", connects.append)

    def on_event(*args, **kwargs):
        received.append((args, kwargs))
        if not got_event.called:
            got_event.callback(None)

    try:
        yield within(client.connect())
        yield within(client.register("com.example.double", lambda x: 2 * x))
        yield within(client.subscribe("com.example.news", on_event))
        other = yield within(connect(running.url, "realm1"))
        assert (yield within(other.call("com.example.double", 4))) == 8
        yield within(other.close())

        disconnected = event(client, "disconnect")
        yield running.stop()
        yield disconnected
        assert client.state in (ClientState.BACKING_OFF, ClientState.CONNECTING)
        with pytest.raises(NotConnected):
            yield client.call("com.example.double", 1)
        waiting = client.call("com.example.double", 21, wait_connected=True, timeout=8)

        rejoined = event(client, "join")
        router = Router()
        listening = yield router.listen(f"tcp:{port}:interface=127.0.0.1", "/ws")
        running = RunningRouter(router, listening)
        yield rejoined
        assert (yield within(waiting)) == 42
        assert router.state_counts()["registrations"] == 1 and router.state_counts()["subscriptions"] == 1

        other = yield within(connect(running.url, "realm1"))
        assert (yield within(other.call("com.example.double", 5))) == 10
        yield within(other.publish("com.example.news", "back", acknowledge=True))
        yield within(got_event)
        assert received == [(("back",), {})]
        assert len(connects) == 2  # one WebSocket opened per session (before joining)
        yield within(other.close())
    finally:
        yield within(client.close())
        yield running.stop()
