"""The router session's state machine, driven in memory (tests/memory_router.py): what it
answers to each message in each state. A message that decodes but breaks the protocol gets
ABORT ``wamp.error.protocol_violation`` naming what was wrong, then close 1002; HELLO for an
unknown realm gets ABORT ``wamp.error.no_such_realm``; GOODBYE is answered and the
connection may carry a new session; a router GOODBYE waits for the client's reply; the
router's shutdown lets calls in flight finish; authentication passes through CHALLENGING
and AUTHENTICATING. Every test ends with the router idle.

The same abuses over a real socket, with frames that do not even decode, are in
tests/test_router_hostile.py.
"""

from __future__ import annotations

import pytest
from twisted.internet import defer

from promisifier.router import RouterConfig
from promisifier.router.auth import AuthConfig, Principal
from promisifier.router.authz import ALLOW_ALL, RoleConfig
from promisifier.router.router_config import RealmConfig
from promisifier.router.session import GOODBYE_CLOSE_GRACE, RouterSessionState
from promisifier.wire.cra import compute_signature
from promisifier.wire.messages import (
    ABORT,
    AUTHENTICATE,
    CALL,
    CHALLENGE,
    ERROR,
    EVENT,
    GOODBYE,
    HELLO,
    INTERRUPT,
    INVOCATION,
    PUBLISH,
    PUBLISHED,
    REGISTER,
    REGISTERED,
    RESULT,
    SUBSCRIBE,
    SUBSCRIBED,
    UNREGISTER,
    UNREGISTERED,
    UNSUBSCRIBE,
    UNSUBSCRIBED,
    WELCOME,
    YIELD,
)
from tests.memory_router import ALL_ROLES, MemoryClient, MemoryRouter

PROTOCOL_VIOLATION = "wamp.error.protocol_violation"


@pytest.fixture
def memory() -> MemoryRouter:
    memory = MemoryRouter()
    yield memory
    memory.assert_idle()


def assert_aborted(client: MemoryClient, reason: str, close_code: int = 1002) -> str:
    """The last thing the router sent is ABORT ``reason`` (with a message); the connection
    is closed with ``close_code``. Returns the ABORT's message."""
    abort = client.last()
    assert abort[0] == ABORT and abort[2] == reason, abort
    assert isinstance(abort[1].get("message"), str) and abort[1]["message"]
    assert client.closed_with is not None and client.closed_with[0] == close_code, client.closed_with
    assert client.state is RouterSessionState.CLOSED
    return abort[1]["message"]


@pytest.mark.parametrize(
    "msg",
    [
        pytest.param([CALL, 1, {}, "com.hostile.proc", []], id="CALL"),
        pytest.param([REGISTER, 1, {}, "com.hostile.proc"], id="REGISTER"),
        pytest.param([PUBLISH, 1, {}, "com.hostile.topic"], id="PUBLISH"),
        pytest.param([GOODBYE, {}, "wamp.close.normal"], id="GOODBYE"),
        pytest.param([RESULT, 1, {}], id="RESULT"),
        pytest.param([WELCOME, 1, {}], id="WELCOME"),
        pytest.param([AUTHENTICATE, "signature", {}], id="AUTHENTICATE"),
    ],
)
def test_message_before_hello_is_a_protocol_violation(memory, msg):
    client = memory.connect()
    client.send_raw(msg)
    assert_aborted(client, PROTOCOL_VIOLATION)
    assert memory.state_counts()["sessions"] == 0
    assert memory.router.protocol_errors == 1


def test_hello_twice_is_a_protocol_violation(memory):
    client = memory.join()
    client.send_raw([HELLO, "realm1", {"roles": ALL_ROLES}])
    assert "HELLO" in assert_aborted(client, PROTOCOL_VIOLATION)


@pytest.mark.parametrize("realm", ["no.such.realm", "", "realm1 "])
def test_hello_for_unknown_realm_gets_no_such_realm(memory, realm):
    client = memory.connect()
    client.send_raw([HELLO, realm, {"roles": ALL_ROLES}])
    assert_aborted(client, "wamp.error.no_such_realm", close_code=1000)


@pytest.mark.parametrize(
    "details",
    [
        pytest.param({}, id="no-roles"),
        pytest.param({"roles": {}}, id="empty-roles"),
        pytest.param({"roles": ["caller"]}, id="roles-a-list"),
        pytest.param({"roles": {"broker": {}, "dealer": {}}}, id="only-router-roles"),
        pytest.param({"roles": None}, id="roles-null"),
    ],
)
def test_hello_without_client_roles_is_a_protocol_violation(memory, details):
    client = memory.connect()
    client.send_raw([HELLO, "realm1", details])
    assert "roles" in assert_aborted(client, PROTOCOL_VIOLATION)


@pytest.mark.parametrize("joined", [False, True], ids=["before-hello", "joined"])
@pytest.mark.parametrize(
    "msg",
    [
        pytest.param([999], id="999"),
        pytest.param([999, 1, {}, "x"], id="999-with-fields"),
        pytest.param([7, {}], id="7-unassigned"),
        pytest.param(["CALL", 1, {}, "com.x"], id="string-type"),
        pytest.param([48.0, 1, {}, "com.x"], id="float-type"),
        pytest.param([True, "realm1", {}], id="bool-type"),
        pytest.param([], id="empty-list"),
    ],
)
def test_unknown_message_type_is_a_protocol_violation(memory, joined, msg):
    client = memory.join() if joined else memory.connect()
    client.send_raw(msg)
    assert_aborted(client, PROTOCOL_VIOLATION)


# (message, name and field the ABORT's Details.message must mention)
WRONG_FIELDS = [
    pytest.param([CALL, 1, [], "com.hostile.proc"], "CALL", "Options", id="CALL-options-list"),
    pytest.param([CALL, 1, {}, 42], "CALL", "Procedure", id="CALL-procedure-int"),
    pytest.param([CALL, 1, {}, b"com.x"], "CALL", "Procedure", id="CALL-procedure-bytes"),
    pytest.param([CALL, 1, {}, "com.hostile.proc", {"a": 1}], "CALL", "Arguments", id="CALL-args-dict"),
    pytest.param([CALL, 1, {}, "com.hostile.proc", [], []], "CALL", "ArgumentsKw", id="CALL-kwargs-list"),
    pytest.param([CALL, None, {}, "com.hostile.proc"], "CALL", "Request", id="CALL-request-null"),
    pytest.param([CALL, -1, {}, "com.hostile.proc"], "CALL", "Request", id="CALL-request-negative"),
    pytest.param([CALL, 2**53 + 1, {}, "com.hostile.proc"], "CALL", "Request", id="CALL-request-too-big"),
    pytest.param([CALL, 1.5, {}, "com.hostile.proc"], "CALL", "Request", id="CALL-request-float"),
    pytest.param([CALL, 1, {}], "CALL", "elements", id="CALL-too-short"),
    pytest.param([CALL, 1, {}, "com.hostile.proc", [], {}, "extra"], "CALL", "elements", id="CALL-too-long"),
    pytest.param([SUBSCRIBE, 1, {}, 42], "SUBSCRIBE", "Topic", id="SUBSCRIBE-topic-int"),
    pytest.param([REGISTER, True, {}, "com.hostile.proc"], "REGISTER", "Request", id="REGISTER-request-bool"),
    pytest.param([REGISTER, 1, "exact", "com.hostile.proc"], "REGISTER", "Options", id="REGISTER-options-str"),
    pytest.param([UNREGISTER, 1, "12"], "UNREGISTER", "Registration", id="UNREGISTER-registration-str"),
    pytest.param([UNSUBSCRIBE, 1, False], "UNSUBSCRIBE", "Subscription", id="UNSUBSCRIBE-subscription-bool"),
    pytest.param([PUBLISH, 1, {}, ["com.t"]], "PUBLISH", "Topic", id="PUBLISH-topic-list"),
    pytest.param([PUBLISH, 1, {}, "com.t", "args"], "PUBLISH", "Arguments", id="PUBLISH-args-str"),
    pytest.param([YIELD, 1, None], "YIELD", "Options", id="YIELD-options-null"),
    pytest.param([ERROR, INVOCATION, "1", {}, "com.err"], "ERROR", "Request", id="ERROR-request-str"),
    pytest.param([ERROR, 999, 1, {}, "com.err"], "ERROR", "Type", id="ERROR-type-unknown"),
    pytest.param([ERROR, INVOCATION, 1, {}, 5], "ERROR", "Error", id="ERROR-uri-int"),
    pytest.param([GOODBYE, [], "wamp.close.normal"], "GOODBYE", "Details", id="GOODBYE-details-list"),
]


@pytest.mark.parametrize("msg, name, field", WRONG_FIELDS)
def test_wrong_field_type_is_a_protocol_violation_naming_message_and_field(memory, msg, name, field):
    client = memory.join()
    client.send_raw(msg)
    message = assert_aborted(client, PROTOCOL_VIOLATION)
    assert name in message and field in message, message


@pytest.mark.parametrize(
    "msg, field", [([HELLO, 1, {"roles": ALL_ROLES}], "Realm"), ([HELLO, "realm1", []], "Details")]
)
def test_hello_with_wrong_field_types_is_a_protocol_violation(memory, msg, field):
    client = memory.connect()
    client.send_raw(msg)
    message = assert_aborted(client, PROTOCOL_VIOLATION)
    assert "HELLO" in message and field in message, message


@pytest.mark.parametrize("request_type", [CALL, REGISTER, SUBSCRIBE, PUBLISH, EVENT, RESULT])
def test_client_error_for_anything_but_invocation_is_a_protocol_violation(memory, request_type):
    client = memory.join()
    client.send_raw([ERROR, request_type, 1, {}, "com.hostile.error", ["why"]])
    assert_aborted(client, PROTOCOL_VIOLATION)


@pytest.mark.parametrize(
    "msg",
    [
        pytest.param([WELCOME, 1, {}], id="WELCOME"),
        pytest.param([CHALLENGE, "ticket", {}], id="CHALLENGE"),
        pytest.param([AUTHENTICATE, "secret", {}], id="AUTHENTICATE"),
        pytest.param([PUBLISHED, 1, 2], id="PUBLISHED"),
        pytest.param([SUBSCRIBED, 1, 2], id="SUBSCRIBED"),
        pytest.param([UNSUBSCRIBED, 1], id="UNSUBSCRIBED"),
        pytest.param([EVENT, 1, 2, {}, ["x"]], id="EVENT"),
        pytest.param([RESULT, 1, {}, [1]], id="RESULT"),
        pytest.param([REGISTERED, 1, 2], id="REGISTERED"),
        pytest.param([UNREGISTERED, 1], id="UNREGISTERED"),
        pytest.param([INVOCATION, 1, 2, {}], id="INVOCATION"),
        pytest.param([INTERRUPT, 1, {}], id="INTERRUPT"),
    ],
)
def test_router_to_client_message_from_client_is_a_protocol_violation(memory, msg):
    client = memory.join()
    client.send_raw(msg)
    assert_aborted(client, PROTOCOL_VIOLATION)


@pytest.mark.parametrize(
    "stale",
    [
        pytest.param([YIELD, 12345, {}], id="YIELD"),
        pytest.param([YIELD, 12345, {}, ["late"], {"k": 1}], id="YIELD-with-args"),
        pytest.param([ERROR, INVOCATION, 12345, {}, "com.hostile.error", ["late"]], id="ERROR"),
    ],
)
def test_answer_for_unknown_invocation_is_ignored(memory, stale):
    client = memory.join()
    received = len(client.received)
    client.send_raw(stale)
    assert len(client.received) == received and client.open
    # the session stays usable
    assert client.call_and_answer("com.hostile.nobody")[4] == "wamp.error.no_such_procedure"


# -- GOODBYE, ABORT, and a new session on the same connection --------------------------------------


@pytest.mark.parametrize("client_reason", ["wamp.close.close_realm", "wamp.close.normal", "com.whatever.reason"])
def test_goodbye_answered_and_new_hello_joins_again(memory, client_reason):
    client = memory.join()
    first_session = client.session_id
    client.register("com.hostile.mine")
    client.subscribe("com.hostile.topic")
    client.send_raw([GOODBYE, {"message": "bye"}, client_reason])
    assert client.last() == [GOODBYE, {}, "wamp.close.goodbye_and_out"]
    # the session is gone with everything it held; the connection stays
    assert memory.state_counts() == {
        "connections": 1,
        "sessions": 0,
        "registrations": 0,
        "subscriptions": 0,
        "pending_calls": 0,
    }
    assert client.open and client.state is RouterSessionState.ESTABLISHING
    assert client.join() != first_session
    client.register("com.hostile.mine")  # the old registration is gone


def test_abort_from_the_client_ends_the_session_and_the_connection(memory):
    client = memory.join()
    client.register("com.hostile.mine")
    client.send_raw([ABORT, {}, "com.example.fatal"])
    assert client.closed_with == (1000, "session aborted")
    assert memory.state_counts()["registrations"] == 0


def test_a_router_goodbye_waits_for_the_reply_then_closes_after_a_grace(memory):
    killer, client = memory.join(), memory.join()
    killer.call_and_answer("wamp.session.kill", [client.session_id])
    assert client.last()[0] == GOODBYE and client.state is RouterSessionState.SHUTTING_DOWN
    # while shutting down, anything but the GOODBYE reply is ignored
    received = len(client.received)
    client.send_raw([CALL, 1, {}, "com.example.proc"])
    assert len(client.received) == received and client.open
    client.send_raw([GOODBYE, {}, "wamp.close.goodbye_and_out"])
    memory.advance(GOODBYE_CLOSE_GRACE - 0.01)
    assert client.open  # the client closes first, if it does
    memory.advance(0.01)
    assert client.closed_with == (1000, "goodbye")


# -- shutdown -------------------------------------------------------------------------------------


def test_stop_lets_calls_in_flight_finish_then_says_goodbye(memory):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.slow")
    request_id = caller.call("com.example.slow")
    invocation_id = callee.invocations()[-1][1]
    stopped = memory.router.stop(timeout=5.0, grace=1.0)
    memory.advance(0.5)
    assert caller.of_type(GOODBYE) == [] and not stopped.called
    callee.yield_(invocation_id, ["in time"])
    memory.advance(0.1)  # the drain is polled
    assert caller.finals_of(request_id)[0][0] == RESULT
    for client in (callee, caller):
        assert client.last() == [GOODBYE, {"message": "router is shutting down"}, "wamp.close.system_shutdown"]
        client.send_raw([GOODBYE, {}, "wamp.close.goodbye_and_out"])
        client.close()
    memory.advance()
    assert stopped.called


def test_stop_fails_calls_still_in_flight_after_the_grace_period(memory):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.slow")
    request_id = caller.call("com.example.slow")
    stopped = memory.router.stop(timeout=5.0, grace=1.0)
    memory.advance(1.1)
    error = caller.finals_of(request_id)[0]
    assert error[:5] == [ERROR, CALL, request_id, {}, "wamp.error.canceled"]
    assert callee.of_type(INTERRUPT)[-1][2] == {"mode": "killnowait", "reason": "wamp.error.canceled"}
    assert caller.last()[0] == GOODBYE
    # clients that never answer are dropped after the timeout
    memory.advance(5.0)
    assert not caller.open and not callee.open and stopped.called


def test_a_connection_that_opens_while_stopping_gets_goodbye_at_once(memory):
    memory.join()
    memory.router.stop(timeout=1.0, grace=0.0)
    memory.advance()
    late = memory.connect()
    assert late.closed_with is not None and late.closed_with[0] == 1001
    memory.advance(1.0)


def test_a_session_that_cannot_be_encoded_for_is_not_sent_the_message(memory):
    callee, caller = memory.join(), memory.join()
    callee.register("com.example.echo")
    # a dict with a non-string key cannot be encoded as JSON for the callee
    request_id = caller.call("com.example.echo", [{1: "one"}])
    error = caller.finals_of(request_id)[0]
    assert error[4] == "wamp.error.invalid_argument" and "encoded" in error[5][0]
    assert callee.invocations() == [] and memory.state_counts()["pending_calls"] == 0


def test_router_config_defaults_apply_in_memory():
    memory = MemoryRouter(RouterConfig(realms=("realm1",)))
    assert memory.join().session_id is not None
    memory.assert_idle()


# -- authentication: CHALLENGING and AUTHENTICATING ------------------------------------------------

ROLES = (RoleConfig("user", (ALLOW_ALL,)),)


def auth_router(**auth) -> MemoryRouter:
    config = RouterConfig(realms=(RealmConfig("realm1", roles=ROLES),), auth=AuthConfig(**auth))
    return MemoryRouter(config)


def ticket_hello(client: MemoryClient, authid: str = "joe") -> list:
    client.send_raw([HELLO, "realm1", {"roles": ALL_ROLES, "authmethods": ["ticket"], "authid": authid}])
    return client.last()


def test_ticket_challenge_then_welcome():
    memory = auth_router(methods=("ticket",), tickets={"joe": Principal("joe", "user", "pw")})
    client = memory.connect()
    assert ticket_hello(client) == [CHALLENGE, "ticket", {}]
    assert client.state is RouterSessionState.CHALLENGING
    client.send_raw([AUTHENTICATE, "pw", {}])
    welcome = client.last()
    assert welcome[0] == WELCOME and client.state is RouterSessionState.ESTABLISHED
    assert (welcome[2]["authid"], welcome[2]["authrole"], welcome[2]["authmethod"]) == ("joe", "user", "ticket")
    memory.assert_idle()


def test_wrong_ticket_and_unknown_authid_fail_alike():
    memory = auth_router(methods=("ticket",), tickets={"joe": Principal("joe", "user", "pw")})
    answers = []
    for authid, ticket in (("joe", "wrong"), ("nobody", "pw")):
        client = memory.connect()
        assert ticket_hello(client, authid)[0] == CHALLENGE
        client.send_raw([AUTHENTICATE, ticket, {}])
        answers.append(client.last())
        assert client.closed_with is not None
    assert answers[0] == answers[1] == [ABORT, {"message": "authentication failed"}, "wamp.error.authentication_failed"]
    assert memory.router.auth_failures == 2
    memory.assert_idle()


def test_wampcra_challenge_signed_by_the_client():
    memory = auth_router(methods=("wampcra",), wampcra={"peter": Principal("peter", "user", "secret")})
    client = memory.connect()
    client.send_raw([HELLO, "realm1", {"roles": ALL_ROLES, "authmethods": ["wampcra"], "authid": "peter"}])
    challenge = client.last()
    assert challenge[:2] == [CHALLENGE, "wampcra"]
    signature = compute_signature(b"secret", challenge[2]["challenge"].encode())
    client.send_raw([AUTHENTICATE, signature, {}])
    assert client.last()[0] == WELCOME
    memory.assert_idle()


@pytest.mark.parametrize(
    "msg",
    [
        pytest.param([CALL, 1, {}, "com.example.proc"], id="CALL"),
        pytest.param([HELLO, "realm1", {"roles": ALL_ROLES}], id="HELLO"),
    ],
)
def test_anything_but_authenticate_while_challenged_is_a_protocol_violation(msg):
    memory = auth_router(methods=("ticket",), tickets={"joe": Principal("joe", "user", "pw")})
    client = memory.connect()
    ticket_hello(client)
    client.send_raw(msg)
    assert "AUTHENTICATE" in assert_aborted(client, PROTOCOL_VIOLATION)
    memory.assert_idle()


def test_a_slow_authenticator_holds_the_session_in_authenticating():
    answers: list[defer.Deferred] = []

    def authenticator(realm, authid, ticket, details):
        answers.append(defer.Deferred())
        return answers[-1]

    memory = auth_router(methods=("ticket",), ticket_authenticator=authenticator)
    client = memory.connect()
    ticket_hello(client)
    client.send_raw([AUTHENTICATE, "pw", {}])
    assert client.state is RouterSessionState.AUTHENTICATING and client.last()[0] == CHALLENGE
    answers[0].callback("user")
    assert client.last()[0] == WELCOME
    # a message while AUTHENTICATING is a protocol violation
    other = memory.connect()
    ticket_hello(other)
    other.send_raw([AUTHENTICATE, "pw", {}])
    other.send_raw([CALL, 1, {}, "com.example.proc"])
    assert "before WELCOME" in assert_aborted(other, PROTOCOL_VIOLATION)
    answers[1].callback("user")  # the late answer finds the session closed
    assert other.of_type(WELCOME) == []
    memory.assert_idle()


def test_a_client_gone_during_a_slow_authentication_leaves_nothing():
    answer: defer.Deferred = defer.Deferred()
    memory = auth_router(methods=("ticket",), ticket_authenticator=lambda *args: answer)
    client = memory.connect()
    ticket_hello(client)
    client.send_raw([AUTHENTICATE, "pw", {}])
    client.drop()
    answer.callback("user")
    assert client.of_type(WELCOME) == []
    memory.assert_idle()


def test_no_acceptable_method_is_no_auth_method():
    memory = auth_router(methods=("ticket",), tickets={"joe": Principal("joe", "user", "pw")})
    client = memory.connect()
    client.send_raw([HELLO, "realm1", {"roles": ALL_ROLES, "authmethods": ["wampcra", "cryptosign"]}])
    assert_aborted(client, "wamp.error.no_auth_method", close_code=1000)
    memory.assert_idle()
