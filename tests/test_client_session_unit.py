"""The client Session driven message by message: a fake connection and a Clock, no sockets."""

from __future__ import annotations

import json

import pytest
from autobahn.wamp import auth as autobahn_auth
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure

from promisifier.client import (
    ApplicationError,
    CallResult,
    CallTimeout,
    ConnectionClosed,
    ConnectionLost,
    NotConnected,
    Session,
    SessionAborted,
    SessionState,
    compute_signature,
    derive_key,
    log_user_error,
)
from promisifier.client.auth import AuthenticationError, answer_challenge, default_authmethods
from promisifier.transport.stats import ConnectionStats
from promisifier.wire import EncodeError, JsonSerializer

ALL_DEALER_FEATURES = {"call_canceling": True, "progressive_call_results": True, "call_timeout": True}


class FakeConnection:
    """Records what the session sends; encodes with JSON so unencodable values fail."""

    def __init__(self) -> None:
        self.sent: list[list] = []
        self.closes: list[tuple[int, str]] = []
        self.stats = ConnectionStats()
        self.peer = "fake:1"
        self.subprotocol = "wamp.2.json"
        self.connected = True
        self.close_code = -1
        self.close_reason = ""
        self.session: Session | None = None
        self._serializer = JsonSerializer()

    def send(self, message: list) -> None:
        if not self.connected:
            return
        payload = self._serializer.encode(message)
        self.stats.messages_out += 1
        self.stats.bytes_out += len(payload)
        self.sent.append(message)

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.closes.append((code, reason))

    def drop(self) -> None:
        self.gone(1006, "dropped")

    def gone(self, code: int, reason: str = "") -> None:
        """The transport reports the end of the connection."""
        self.connected = False
        self.close_code, self.close_reason = code, reason
        assert self.session is not None
        self.session.on_close(code, reason)

    def last(self) -> list:
        return self.sent[-1]


def make_session(**kwargs) -> tuple[Session, FakeConnection, Clock]:
    connection = FakeConnection()
    clock = Clock()
    session = Session(connection, "realm1", clock=clock, **kwargs)
    connection.session = session
    return session, connection, clock


def joined(dealer: dict | None = None, broker: dict | None = None, **kwargs) -> tuple[Session, FakeConnection, Clock]:
    session, connection, clock = make_session(**kwargs)
    d = session.join()
    roles = {"dealer": {"features": dealer or {}}, "broker": {"features": broker or {}}}
    session.on_message([2, 12345, {"authid": "joe", "authrole": "user", "authmethod": "anonymous", "roles": roles}])
    assert d.called and d.result is session
    return session, connection, clock


def result_of(d: defer.Deferred):
    """The result of a fired Deferred (raises its failure's exception)."""
    assert d.called, "Deferred has not fired"
    box: list = []
    d.addBoth(box.append)
    outcome = box[0]
    if isinstance(outcome, Failure):
        outcome.raiseException()
    return outcome


# -- joining -----------------------------------------------------------------------------


def test_hello_announces_roles_and_features():
    session, connection, _ = make_session()
    session.join()
    hello = connection.sent[0]
    assert hello[0] == 1 and hello[1] == "realm1"
    roles = hello[2]["roles"]
    assert set(roles) == {"caller", "callee", "publisher", "subscriber"}
    assert roles["caller"]["features"]["progressive_call_results"] is True
    assert roles["caller"]["features"]["call_canceling"] is True
    assert roles["caller"]["features"]["call_timeout"] is True
    assert roles["caller"]["features"]["caller_identification"] is True
    assert roles["callee"]["features"]["call_canceling"] is True
    assert roles["publisher"]["features"]["publisher_exclusion"] is True
    assert "authmethods" not in hello[2] and "authid" not in hello[2]
    assert session.state is SessionState.JOINING


def test_welcome_sets_facts_and_router_features():
    session, connection, _ = joined(dealer={"call_canceling": True, "call_timeout": False})
    assert session.session_id == 12345 and (session.authid, session.authrole) == ("joe", "user")
    assert session.router_supports("dealer", "call_canceling")
    assert not session.router_supports("dealer", "call_timeout")
    assert not session.router_supports("broker", "event_retention")
    assert session.peer == "fake:1" and session.subprotocol == "wamp.2.json" and session.connected


def test_abort_on_join_fails_with_session_aborted_and_closes_after_grace():
    session, connection, clock = make_session()
    d = session.join()
    session.on_message([3, {"message": "no realm here"}, "wamp.error.no_such_realm"])
    with pytest.raises(SessionAborted) as info:
        result_of(d)
    assert (info.value.reason, info.value.message) == ("wamp.error.no_such_realm", "no realm here")
    assert connection.closes == []  # the router closes; the session waits for it
    clock.advance(session.goodbye_timeout)
    assert connection.closes == [(1000, "session ended")]


def test_connection_closed_before_welcome():
    session, connection, _ = make_session()
    d = session.join()
    connection.gone(1006, "gone")
    with pytest.raises(ConnectionClosed) as info:
        result_of(d)
    assert info.value.code == 1006


def test_ticket_challenge():
    session, connection, _ = make_session(authid="joe", credentials={"ticket": "s3cret"})
    d = session.join()
    assert connection.sent[0][2]["authmethods"] == ["ticket"]
    assert connection.sent[0][2]["authid"] == "joe"
    session.on_message([4, "ticket", {}])
    assert connection.last() == [5, "s3cret", {}]
    session.on_message([2, 7, {"authid": "joe", "authrole": "user", "roles": {}}])
    assert result_of(d) is session


def test_wampcra_challenge_salted_matches_autobahn():
    challenge = json.dumps({"authid": "peter", "nonce": "abc", "session": 7})
    session, connection, _ = make_session(authid="peter", credentials={"secret": "secret123"})
    session.join()
    assert connection.sent[0][2]["authmethods"] == ["wampcra"]
    session.on_message([4, "wampcra", {"challenge": challenge, "salt": "salt123", "iterations": 100, "keylen": 32}])
    expected = autobahn_auth.compute_wcs(autobahn_auth.derive_key("secret123", "salt123", 100, 32), challenge).decode()
    assert connection.last() == [5, expected, {}]


def test_unanswerable_challenge_aborts():
    session, connection, _ = make_session(authmethods=["wampcra"])
    d = session.join()
    session.on_message([4, "wampcra", {"challenge": "{}"}])
    assert connection.last()[0] == 3 and connection.last()[2] == "wamp.error.cannot_authenticate"
    with pytest.raises(SessionAborted) as info:
        result_of(d)
    assert "secret" in info.value.message


def test_signature_computation():
    challenge = '{"authid": "peter", "nonce": "LHRTC9zeOIrt_9U3", "session": 3251278072152162}'
    # unsalted: the secret is the HMAC key
    assert compute_signature("secret", challenge) == autobahn_auth.compute_wcs(b"secret", challenge.encode()).decode()
    # salted: PBKDF2-HMAC-SHA256, base64, then used as the key
    key = derive_key("secret", "salt123", 1000, 32)
    assert key == autobahn_auth.derive_key("secret", "salt123", 1000, 32)
    assert (
        answer_challenge(
            "wampcra",
            {"challenge": challenge, "salt": "salt123", "iterations": 1000, "keylen": 32},
            {"secret": "secret"},
        )
        == autobahn_auth.compute_wcs(key, challenge.encode()).decode()
    )
    # a fixed vector computed once with hashlib/hmac
    assert compute_signature(b"key", "The quick brown fox jumps over the lazy dog") == (
        "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="
    )
    assert answer_challenge("ticket", {}, {"ticket": "t"}) == "t"
    with pytest.raises(AuthenticationError):
        answer_challenge("cryptosign", {}, {"secret": "x"})
    with pytest.raises(AuthenticationError):
        answer_challenge("wampcra", {"challenge": "c", "salt": "s", "iterations": "many"}, {"secret": "x"})
    assert default_authmethods({"ticket": "t", "secret": "s"}) == ["ticket", "wampcra"]
    assert default_authmethods(None) is None


# -- calls ---------------------------------------------------------------------------------


def test_call_result_shapes():
    session, connection, _ = joined()
    d1 = session.call("com.a", 1, 2, x=3, disclose_me=True)
    assert connection.last() == [48, 1, {"disclose_me": True}, "com.a", [1, 2], {"x": 3}]
    d2 = session.call("com.b")
    assert connection.last() == [48, 2, {}, "com.b"]
    d3 = session.call("com.c")
    d4 = session.call("com.d")
    session.on_message([50, 1, {}, [1, 2]])
    session.on_message([50, 2, {}])
    session.on_message([50, 3, {}, [], {"k": 1}])
    session.on_message([50, 4, {}, ["one"]])
    assert result_of(d1) == CallResult([1, 2], {})
    assert result_of(d2) is None
    assert result_of(d3) == CallResult([], {"k": 1})
    assert result_of(d4) == "one"
    assert session.pending_requests == 0 and session.stats.calls_made == 4


def test_local_timeout_when_router_ignores_it():
    session, connection, clock = joined()  # no dealer features: nothing to cancel with
    d = session.call("com.slow", timeout=1.5)
    assert connection.last()[2] == {"timeout": 1500}
    clock.advance(1.4)
    assert not d.called
    clock.advance(0.2)
    with pytest.raises(CallTimeout) as info:
        result_of(d)
    assert info.value.error == "wamp.error.timeout" and isinstance(info.value, ApplicationError)
    assert connection.last()[0] == 48  # no CANCEL: the router did not announce call_canceling
    session.on_message([50, 1, {}, ["late"]])  # the late answer is ignored
    assert session.is_joined and session.pending_requests == 0


def test_local_timeout_sends_cancel_when_router_supports_it():
    session, connection, clock = joined(dealer=ALL_DEALER_FEATURES)
    d = session.call("com.slow", timeout=1)
    clock.advance(1)
    assert connection.last() == [49, 1, {"mode": "killnowait"}]
    with pytest.raises(CallTimeout):
        result_of(d)


def test_router_timeout_error_is_call_timeout_and_cancels_local_timer():
    session, connection, clock = joined(dealer=ALL_DEALER_FEATURES)
    d = session.call("com.slow", timeout=5)
    session.on_message([8, 48, 1, {}, "wamp.error.timeout", ["call timed out"]])
    with pytest.raises(CallTimeout):
        result_of(d)
    assert clock.getDelayedCalls() == []


def test_cancel_sends_cancel_with_mode_only_when_supported():
    session, connection, _ = joined(dealer=ALL_DEALER_FEATURES)
    session.cancel_mode = "killnowait"
    d = session.call("com.slow")
    d.cancel()
    assert connection.last() == [49, 1, {"mode": "killnowait"}]
    with pytest.raises(defer.CancelledError):
        result_of(d)
    session.on_message([8, 48, 1, {}, "wamp.error.canceled"])  # the router's ERROR: ignored
    assert session.is_joined

    plain, plain_connection, _ = joined()
    d = plain.call("com.slow")
    d.cancel()
    assert plain_connection.last()[0] == 48
    with pytest.raises(defer.CancelledError):
        result_of(d)


def test_progressive_results_go_to_on_progress():
    session, connection, _ = joined(dealer=ALL_DEALER_FEATURES)
    updates = []
    d = session.call("com.p", on_progress=lambda *a, **kw: updates.append((a, kw)))
    assert connection.last()[2] == {"receive_progress": True}
    session.on_message([50, 1, {"progress": True}, [1]])
    session.on_message([50, 1, {"progress": True}, [], {"k": 2}])
    session.on_message([50, 1, {"progress": True}])
    assert not d.called
    session.on_message([50, 1, {}, ["done"]])
    assert result_of(d) == "done"
    assert updates == [((1,), {}), ((), {"k": 2}), ((), {})]


def test_error_answers():
    session, _, _ = joined()
    d = session.call("com.x")
    session.on_message([8, 48, 1, {}, "com.example.error", ["text", 2], {"k": "v"}])
    with pytest.raises(ApplicationError) as info:
        result_of(d)
    assert (info.value.error, info.value.args, info.value.kwargs) == ("com.example.error", ("text", 2), {"k": "v"})
    assert "com.example.error" in str(info.value) and info.value.message == "text"


def test_answers_of_the_wrong_kind_are_ignored():
    session, _, _ = joined()
    d = session.call("com.x")
    session.on_message([65, 1, 99])  # REGISTERED for a CALL's request id
    session.on_message([8, 64, 1, {}, "wamp.error.x"])  # ERROR naming the wrong request type
    assert not d.called
    session.on_message([50, 1, {}, [1]])
    assert result_of(d) == 1


def test_requests_fail_at_once_when_the_connection_drops():
    session, connection, _ = joined()
    calls = [session.call("com.x") for _ in range(3)]
    reg = session.register("com.r", lambda: None)
    pub = session.publish("com.t", acknowledge=True)
    left = []
    session.on("leave", lambda s, reason: left.append(reason))
    closed = session.closed
    connection.drop()
    for d in [*calls, reg, pub]:
        with pytest.raises(ConnectionLost) as info:
            result_of(d)
        assert info.value.code == 1006
    assert session.pending_requests == 0 and session.state is SessionState.CLOSED
    assert left == ["connection closed (1006)"]
    with pytest.raises(ConnectionClosed):
        result_of(closed)
    with pytest.raises(NotConnected):
        result_of(session.call("com.x"))


# -- callee ------------------------------------------------------------------------------------


def registered(session: Session, connection: FakeConnection, procedure: str, fn, registration_id: int = 500):
    d = session.register(procedure, fn)
    request_id = connection.last()[1]
    session.on_message([65, request_id, registration_id])
    return result_of(d)


def test_invocation_with_progress_and_interrupt():
    session, connection, _ = joined(dealer=ALL_DEALER_FEATURES)
    running: dict = {}

    def long(n, progress=None):
        running["progress"] = progress
        running["d"] = defer.Deferred(lambda d: running.setdefault("cancelled", True))
        return running["d"]

    registered(session, connection, "com.long", long)
    session.on_message([68, 9, 500, {"receive_progress": True}, [3]])
    running["progress"]("half", pct=50)
    assert connection.last() == [70, 9, {"progress": True}, ["half"], {"pct": 50}]
    session.on_message([69, 9, {"mode": "kill", "reason": "wamp.error.canceled"}])
    assert connection.last() == [8, 68, 9, {}, "wamp.error.canceled", ["the call was canceled"]]
    assert running["cancelled"] is True
    count = len(connection.sent)
    running["progress"]("after the end")  # a no-op now
    assert len(connection.sent) == count

    # killnowait: no ERROR is sent, the running function is cancelled
    session.on_message([68, 10, 500, {}, [1]])
    assert running["progress"] is None  # the caller did not ask for progress
    session.on_message([69, 10, {"mode": "killnowait"}])
    assert len(connection.sent) == count
    assert session.stats.invocations_served == 2


def test_invocation_errors_and_unencodable_results():
    session, connection, _ = joined(debug=True)

    def boom():
        raise KeyError("missing")

    registered(session, connection, "com.boom", boom, 1)
    registered(session, connection, "com.app", lambda: defer.fail(ApplicationError("com.err", 1, k=2)), 2)
    registered(session, connection, "com.bad", lambda: object(), 3)
    session.on_message([68, 1, 1, {}])
    error = connection.last()
    assert error[:5] == [8, 68, 1, {}, "wamp.error.runtime_error"]
    assert error[5][0] == "'missing'" and "Traceback" in error[5][1]  # debug: traceback added
    session.on_message([68, 2, 2, {}])
    assert connection.last() == [8, 68, 2, {}, "com.err", [1], {"k": 2}]
    session.on_message([68, 3, 3, {}])
    assert connection.last()[4] == "wamp.error.invalid_argument"
    session.on_message([68, 4, 999, {}])  # unknown registration
    assert connection.last()[4] == "wamp.error.no_such_registration"


def test_invocations_in_progress_are_dropped_on_disconnect():
    session, connection, _ = joined()
    pending = defer.Deferred()
    registration = registered(session, connection, "com.wait", lambda: pending)
    session.on_message([68, 1, 500, {}])
    connection.gone(1000, "")
    assert not registration.active
    count = len(connection.sent)
    pending.callback("too late")
    assert len(connection.sent) == count


def test_registration_revoked_by_router():
    session, connection, _ = joined()
    registration = registered(session, connection, "com.r", lambda: 1, 77)
    session.on_message([67, 0, {"registration": 77, "reason": "wamp.error.revoked"}])
    assert not registration.active
    session.on_message([68, 1, 77, {}])
    assert connection.last()[4] == "wamp.error.no_such_registration"


# -- leaving -----------------------------------------------------------------------------------


def test_leave_waits_for_goodbye_then_closes():
    session, connection, _ = joined()
    call = session.call("com.x")
    d = session.leave("com.example.bye")
    assert connection.last() == [6, {}, "com.example.bye"]
    with pytest.raises(ConnectionLost):
        result_of(call)
    again = session.leave()  # a second leave() waits for the same end
    session.on_message([6, {}, "wamp.close.goodbye_and_out"])
    assert connection.closes == [(1000, "")]
    assert not d.called
    connection.gone(1000, "")
    assert result_of(d) == "wamp.close.goodbye_and_out"
    assert result_of(again) == "wamp.close.goodbye_and_out"
    assert [m[0] for m in connection.sent].count(6) == 1


def test_leave_unanswered_closes_after_timeout():
    session, connection, clock = joined()
    d = session.leave()
    clock.advance(session.goodbye_timeout)
    assert connection.closes == [(1000, "GOODBYE not answered")]
    connection.gone(1000, "")
    with pytest.raises(ConnectionLost):
        result_of(d)


def test_goodbye_from_router():
    session, connection, clock = joined()
    call = session.call("com.x")
    left = []
    session.on("leave", lambda s, reason: left.append(reason))
    session.on_message([6, {"message": "shutdown"}, "wamp.close.system_shutdown"])
    assert connection.last() == [6, {}, "wamp.close.goodbye_and_out"]
    assert left == ["wamp.close.system_shutdown"]
    with pytest.raises(ConnectionLost):
        result_of(call)
    assert session.state is SessionState.LEFT
    # the client closes the connection right after its answer (the router waits for it)
    assert connection.closes == [(1000, "session ended")]


def test_protocol_violations_abort_with_1002():
    session, connection, _ = joined()
    session.on_message([2, 1, {}])  # a second WELCOME
    assert connection.last()[0] == 3 and connection.last()[2] == "wamp.error.protocol_violation"
    assert connection.closes[-1][0] == 1002
    assert session.state is SessionState.LEFT

    from promisifier.wire import ProtocolError

    other, other_connection, _ = joined()
    other.on_protocol_error(ProtocolError("RESULT: Details must be a dict, got list"))
    assert other_connection.closes[-1][0] == 1002


def test_unencodable_request_fails_without_entering_the_table():
    session, _, _ = joined()
    with pytest.raises(EncodeError):
        result_of(session.call("com.x", {b"k": 1}))
    with pytest.raises(EncodeError):
        result_of(session.publish("com.t", object(), acknowledge=True))
    with pytest.raises(EncodeError):
        result_of(session.publish("com.t", object()))
    assert session.pending_requests == 0
    assert result_of(session.publish("com.t", 1)) is None


def test_a_failing_connection_is_not_taken_for_an_unencodable_request():
    session, connection, _ = joined()

    def broken(message: list) -> None:
        raise RuntimeError("transport bug")

    connection.send = broken
    # only EncodeError becomes a failed Deferred; a bug propagates to the caller
    with pytest.raises(RuntimeError, match="transport bug"):
        session.call("com.x")
    with pytest.raises(RuntimeError, match="transport bug"):
        session.publish("com.t", 1)
    assert session.pending_requests == 0


def test_event_handlers_plain_async_and_failing():
    session, connection, _ = joined()
    got = []

    async def async_handler(x):
        got.append(("async", x))

    def failing(x):
        raise RuntimeError("handler bug")

    for handler in (lambda x: got.append(("plain", x)), async_handler, failing):
        d = session.subscribe("com.t", handler)
        session.on_message([33, connection.last()[1], 42])
        result_of(d)
    session.on_message([36, 42, 1, {}, [7]])
    assert got == [("plain", 7), ("async", 7)]
    assert session.stats.events_received == 1 and session.is_joined


# -- exceptions raised by the application's code ------------------------------------------------


class UserErrors:
    """An ``on_user_error`` hook that keeps what it was given."""

    def __init__(self) -> None:
        self.seen: list[tuple[Failure, str]] = []

    def __call__(self, failure: Failure, what: str) -> None:
        self.seen.append((failure, what))

    @property
    def kinds(self) -> list[tuple[type, str]]:
        return [(failure.type, what) for failure, what in self.seen]


def test_handler_exceptions_go_to_on_user_error_with_their_traceback():
    errors = UserErrors()
    session, connection, _ = joined(on_user_error=errors)
    got = []

    def failing(x):
        raise KeyError("sync bug")

    def failing_later(x):
        return defer.fail(ValueError("async bug"))

    for handler in (failing, failing_later, got.append):
        d = session.subscribe("com.t", handler)
        session.on_message([33, connection.last()[1], 42])
        result_of(d)
    session.on_message([36, 42, 1, {}, [7]])
    assert got == [7]  # the other handlers still ran
    assert errors.kinds == [(KeyError, "event handler for com.t"), (ValueError, "event handler for com.t")]
    # the traceback names the frame that raised
    assert "failing" in errors.seen[0][0].getTraceback()


def test_on_progress_and_listener_exceptions_go_to_on_user_error():
    errors = UserErrors()
    session, connection, _ = joined(dealer=ALL_DEALER_FEATURES, on_user_error=errors)

    def on_progress(x):
        raise RuntimeError("progress bug")

    d = session.call("com.p", on_progress=on_progress)
    session.on_message([50, 1, {"progress": True}, [1]])
    session.on_message([50, 1, {}, ["done"]])
    assert result_of(d) == "done"
    session.on("close", lambda *args: 1 / 0)
    connection.gone(1000, "bye")
    assert errors.kinds == [(RuntimeError, "on_progress of com.p"), (ZeroDivisionError, "session close listener")]


def test_a_procedure_bug_goes_to_on_user_error_an_application_error_does_not():
    errors = UserErrors()
    session, connection, _ = joined(on_user_error=errors)

    def boom():
        raise KeyError("missing")

    registered(session, connection, "com.boom", boom, 1)
    registered(session, connection, "com.app", lambda: defer.fail(ApplicationError("com.err")), 2)
    session.on_message([68, 1, 1, {}])
    assert connection.last()[4] == "wamp.error.runtime_error"  # the caller learns of it too
    session.on_message([68, 2, 2, {}])
    assert connection.last()[4] == "com.err"
    assert errors.kinds == [(KeyError, "procedure com.boom")]


def test_the_default_on_user_error_logs_the_traceback_at_error_level():
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        session, connection, _ = joined()
        assert session.on_user_error is log_user_error

        def failing(x):
            raise KeyError("handler bug")

        d = session.subscribe("com.t", failing)
        session.on_message([33, connection.last()[1], 42])
        result_of(d)
        session.on_message([36, 42, 1, {}, [7]])
    finally:
        globalLogPublisher.removeObserver(events.append)
    [event] = [e for e in events if e.get("what") == "event handler for com.t"]
    assert event["log_level"] is LogLevel.error
    assert event["log_failure"].type is KeyError
    assert "handler bug" in event["log_failure"].getTraceback()
