"""Authentication on the router (anonymous, ticket, WAMP-CRA), driven by autobahn-python.

Real sockets on 127.0.0.1, json and msgpack. Every failure must be an ABORT with the same
reason and message whatever was wrong (no hint of which part), counted in
``router.auth_failures``; a success is a WELCOME with authid, authrole, authmethod and
authprovider.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.auth import compute_wcs
from autobahn.wamp.types import RegisterOptions
from twisted.internet import defer, reactor, task

from promisifier.router import RouterConfig
from promisifier.router.auth import AuthConfig, AuthenticationFailed, Principal, load_callable
from promisifier.router.authz import Permission, RoleConfig
from promisifier.router.router_config import RealmConfig
from tests.auth_support import Routers, connect_auth, leave
from tests.support import within

pytestmark = pytest.mark.slow

by_serializer = pytest.mark.parametrize("ser", ["json", "msgpack"])

AUTH_FAILED = "wamp.error.authentication_failed"
NO_AUTH_METHOD = "wamp.error.no_auth_method"
NO_SUCH_ROLE = "wamp.error.no_such_role"

EVERYTHING = (Permission("", "prefix", call=True, register=True, publish=True, subscribe=True),)
#: callees of com.example.whoami learn who calls (disclose_caller forced by permission)
WHOAMI = Permission("com.example.whoami", "exact", call=True, register=True, disclose_caller=True)
ROLES = tuple(RoleConfig(name, (*EVERYTHING, WHOAMI)) for name in ("guest", "user", "admin"))

TICKETS = {"joe": Principal("joe", "user", "joe-ticket")}
WAMPCRA = {
    "peter": Principal("peter", "user", "peter-secret"),
    "salty": Principal("salty", "admin", "salty-password", salt="pepper-and-salt", iterations=100, keylen=32),
}

#: every call of the dynamic ticket authenticator: (realm, authid, ticket, details)
dynamic_calls: list[tuple[str, str, str, dict]] = []


def dynamic_ticket(realm: str, authid: str, ticket: str, details: dict) -> Any:
    """The dynamic ticket authenticator, named by dotted path in the config."""
    dynamic_calls.append((realm, authid, ticket, details))
    if ticket != "dyn-pw":
        return None
    if authid == "dyn-str":
        return "user"
    if authid == "dyn-dict":
        return {"role": "admin", "authid": "renamed-by-authenticator"}
    if authid == "dyn-deferred":
        # answers on a later reactor turn: a real asynchronous authenticator
        return task.deferLater(reactor, 0, lambda: {"role": "user"})
    if authid == "dyn-deferred-fails":
        return task.deferLater(reactor, 0, _refuse)
    if authid == "dyn-raise":
        raise RuntimeError("authenticator crashed")
    if authid == "dyn-false":
        return False
    if authid == "dyn-no-role":
        return {"authid": "someone"}
    if authid == "dyn-unknown-role":
        return "no-such-role-here"
    return None


def _refuse() -> None:
    raise AuthenticationFailed()


AUTH = AuthConfig(
    methods=("anonymous", "ticket", "wampcra"),
    anonymous_role="guest",
    tickets=TICKETS,
    ticket_authenticator=f"{__name__}.dynamic_ticket",
    wampcra=WAMPCRA,
)
CONFIG = RouterConfig(realms=(RealmConfig("realm1", roles=ROLES), RealmConfig("closed", roles=())), auth=AUTH)


@pytest_twisted.async_yield_fixture
async def routers():
    started = Routers()
    yield started
    await started.stop_all()


@pytest_twisted.async_yield_fixture
async def relay(routers):
    dynamic_calls.clear()
    yield await routers.start(CONFIG)


def welcome_of(session: Any) -> dict[str, Any]:
    welcome = session.welcome
    return {
        "authid": welcome.authid,
        "authrole": welcome.authrole,
        "authmethod": welcome.authmethod,
        "authprovider": welcome.authprovider,
    }


async def refused(url: str, ser: str = "json", realm: str = "realm1", **kwargs: Any) -> tuple[str, str]:
    """Connect expecting ABORT; the (reason, message) of the ABORT."""
    session = await connect_auth(url, realm, ser, expect="aborted", **kwargs)
    assert session.welcome is None
    return session.abort.reason, session.abort.message


# -- anonymous --------------------------------------------------------------------------


@by_serializer
@pytest_twisted.ensureDeferred
async def test_anonymous_gets_the_configured_role(relay, ser):
    session = await connect_auth(relay.url, serializer=ser, authmethods=["anonymous"])
    details = welcome_of(session)
    assert details["authrole"] == "guest"
    assert details["authmethod"] == "anonymous"
    assert details["authprovider"] == "static"
    assert isinstance(details["authid"], str) and details["authid"]
    assert session.challenges == []
    # the autobahn session sees the same identity
    assert session.join_details.authrole == "guest"
    # and may act with its role's permissions
    assert await session.call("wamp.session.count") == 1
    await leave(session)


@pytest_twisted.ensureDeferred
async def test_anonymous_cannot_claim_an_authid(relay):
    """Anonymous proves nothing: an authid it asks for (here a ticket principal's) is not
    taken, or it would be disclosed to callees and subscribers as that principal."""
    callee = await connect_auth(relay.url, authmethods=["ticket"], authid="joe", secret="joe-ticket")
    await callee.register(
        lambda details=None: details.caller_authid, "com.example.whoami", options=RegisterOptions(details=True)
    )
    impostor = await connect_auth(relay.url, "realm1", "msgpack", authmethods=["anonymous"], authid="joe")
    assert impostor.welcome.authid != "joe"
    assert impostor.welcome.authrole == "guest"
    assert await impostor.call("com.example.whoami") == impostor.welcome.authid
    await leave(impostor)
    await leave(callee)


@pytest_twisted.ensureDeferred
async def test_hello_without_authmethods_is_anonymous(relay):
    session = await connect_auth(relay.url)
    assert (session.welcome.authmethod, session.welcome.authrole) == ("anonymous", "guest")
    await leave(session)


@pytest_twisted.ensureDeferred
async def test_anonymous_role_missing_from_the_realm_is_no_such_role(relay):
    reason, _ = await refused(relay.url, realm="closed", authmethods=["anonymous"])
    assert reason == NO_SUCH_ROLE
    assert relay.router.auth_failures == 1


# -- ticket, static -----------------------------------------------------------------------


@by_serializer
@pytest_twisted.ensureDeferred
async def test_static_ticket_right(relay, ser):
    session = await connect_auth(relay.url, serializer=ser, authmethods=["ticket"], authid="joe", secret="joe-ticket")
    assert [c.method for c in session.challenges] == ["ticket"]
    assert welcome_of(session) == {
        "authid": "joe",
        "authrole": "user",
        "authmethod": "ticket",
        "authprovider": "static",
    }
    assert relay.router.auth_failures == 0
    # a static principal never reaches the dynamic authenticator
    assert dynamic_calls == []
    await leave(session)


@by_serializer
@pytest_twisted.ensureDeferred
async def test_static_ticket_wrong_and_unknown_authid_fail_alike(relay, ser):
    wrong = await refused(relay.url, ser, authmethods=["ticket"], authid="joe", secret="not-joes-ticket")
    unknown = await refused(relay.url, ser, authmethods=["ticket"], authid="nobody", secret="joe-ticket")
    empty = await refused(relay.url, ser, authmethods=["ticket"], authid="joe", secret="")
    assert wrong[0] == AUTH_FAILED
    assert wrong == unknown == empty
    assert "joe" not in wrong[1] and "nobody" not in unknown[1]
    assert relay.router.auth_failures == 3
    # a static principal with a wrong ticket does not fall through to the dynamic one
    assert [call[1] for call in dynamic_calls] == ["nobody"]
    assert relay.router.state_counts()["sessions"] == 0


# -- ticket, dynamic ----------------------------------------------------------------------


@by_serializer
@pytest_twisted.ensureDeferred
async def test_dynamic_ticket_returning_a_role(relay, ser):
    session = await connect_auth(relay.url, serializer=ser, authmethods=["ticket"], authid="dyn-str", secret="dyn-pw")
    assert welcome_of(session) == {
        "authid": "dyn-str",
        "authrole": "user",
        "authmethod": "ticket",
        "authprovider": "dynamic",
    }
    [(realm, authid, ticket, details)] = dynamic_calls
    assert (realm, authid, ticket) == ("realm1", "dyn-str", "dyn-pw")
    # the authenticator sees the HELLO details
    assert details.get("authid") == "dyn-str" and details.get("authmethods") == ["ticket"]
    await leave(session)


@pytest_twisted.ensureDeferred
async def test_dynamic_ticket_returning_a_dict_may_rename_the_authid(relay):
    session = await connect_auth(relay.url, authmethods=["ticket"], authid="dyn-dict", secret="dyn-pw")
    assert welcome_of(session) == {
        "authid": "renamed-by-authenticator",
        "authrole": "admin",
        "authmethod": "ticket",
        "authprovider": "dynamic",
    }
    await leave(session)


@by_serializer
@pytest_twisted.ensureDeferred
async def test_dynamic_ticket_returning_a_deferred(relay, ser):
    session = await connect_auth(
        relay.url, serializer=ser, authmethods=["ticket"], authid="dyn-deferred", secret="dyn-pw"
    )
    assert welcome_of(session) == {
        "authid": "dyn-deferred",
        "authrole": "user",
        "authmethod": "ticket",
        "authprovider": "dynamic",
    }
    await leave(session)


@pytest_twisted.ensureDeferred
async def test_dynamic_ticket_refusals_all_look_the_same(relay):
    wrong_ticket = await refused(relay.url, authmethods=["ticket"], authid="dyn-str", secret="bad")
    outcomes = {
        authid: await refused(relay.url, authmethods=["ticket"], authid=authid, secret="dyn-pw")
        for authid in ("dyn-none", "dyn-false", "dyn-raise", "dyn-deferred-fails", "dyn-no-role")
    }
    assert wrong_ticket[0] == AUTH_FAILED
    for authid, outcome in outcomes.items():
        assert outcome == wrong_ticket, authid
    assert "crashed" not in wrong_ticket[1]
    assert relay.router.auth_failures == 6
    # the router goes on after an authenticator raised
    session = await connect_auth(relay.url, authmethods=["ticket"], authid="dyn-str", secret="dyn-pw")
    await leave(session)


@pytest_twisted.ensureDeferred
async def test_dynamic_ticket_role_not_in_the_realm_is_no_such_role(relay):
    reason, _ = await refused(relay.url, authmethods=["ticket"], authid="dyn-unknown-role", secret="dyn-pw")
    assert reason == NO_SUCH_ROLE


@pytest_twisted.ensureDeferred
async def test_ticket_without_an_authenticator_refuses_unknown_authids(routers):
    auth = AuthConfig(methods=("ticket",), tickets=TICKETS)
    running = await routers.start(RouterConfig(realms=(RealmConfig("realm1", roles=ROLES),), auth=auth))
    unknown = await refused(running.url, authmethods=["ticket"], authid="nobody", secret="x")
    wrong = await refused(running.url, authmethods=["ticket"], authid="joe", secret="x")
    assert unknown == wrong and unknown[0] == AUTH_FAILED


def test_dotted_path_authenticator_is_resolved():
    assert load_callable(f"{__name__}.dynamic_ticket") is dynamic_ticket
    with pytest.raises(ValueError):
        load_callable("no_dots_here")
    with pytest.raises(ValueError):
        AuthConfig(methods=("anonymous", "kerberos"))


# -- WAMP-CRA -----------------------------------------------------------------------------


@by_serializer
@pytest_twisted.ensureDeferred
async def test_wampcra_plain_secret_right(relay, ser):
    session = await connect_auth(
        relay.url, serializer=ser, authmethods=["wampcra"], authid="peter", secret="peter-secret"
    )
    [challenge] = session.challenges
    assert challenge.method == "wampcra"
    assert "salt" not in challenge.extra
    fields = json.loads(challenge.extra["challenge"])
    assert fields["authid"] == "peter" and fields["authmethod"] == "wampcra"
    assert fields["session"] == session.session_id
    assert fields["nonce"]
    assert welcome_of(session) == {
        "authid": "peter",
        "authrole": "user",
        "authmethod": "wampcra",
        "authprovider": "static",
    }
    await leave(session)


@by_serializer
@pytest_twisted.ensureDeferred
async def test_wampcra_salted_secret_right(relay, ser):
    session = await connect_auth(
        relay.url, serializer=ser, authmethods=["wampcra"], authid="salty", secret="salty-password"
    )
    [challenge] = session.challenges
    assert (challenge.extra["salt"], challenge.extra["iterations"], challenge.extra["keylen"]) == (
        "pepper-and-salt",
        100,
        32,
    )
    assert welcome_of(session) == {
        "authid": "salty",
        "authrole": "admin",
        "authmethod": "wampcra",
        "authprovider": "static",
    }
    await leave(session)


@by_serializer
@pytest_twisted.ensureDeferred
async def test_wampcra_wrong_secrets_and_unknown_user_fail_alike(relay, ser):
    plain_wrong = await refused(relay.url, ser, authmethods=["wampcra"], authid="peter", secret="not-peters")
    salted_wrong = await refused(relay.url, ser, authmethods=["wampcra"], authid="salty", secret="not-saltys")
    unknown = await refused(relay.url, ser, authmethods=["wampcra"], authid="nobody", secret="peter-secret")
    # the salted secret used as a plain key (no PBKDF2) is wrong too
    raw_key = await refused(
        relay.url,
        ser,
        authmethods=["wampcra"],
        authid="salty",
        answer=lambda c: compute_wcs("salty-password", c.extra["challenge"]).decode(),
    )
    garbage = await refused(
        relay.url, ser, authmethods=["wampcra"], authid="peter", answer=lambda c: "\u00e9not base64"
    )
    assert plain_wrong[0] == AUTH_FAILED
    assert plain_wrong == salted_wrong == unknown == raw_key == garbage
    assert "nobody" not in unknown[1] and "salty" not in salted_wrong[1]
    assert relay.router.auth_failures == 5


@pytest_twisted.ensureDeferred
async def test_wampcra_challenge_does_not_tell_whether_the_authid_exists(relay):
    async def challenge_for(authid):
        seen = []
        await refused(relay.url, authmethods=["wampcra"], authid=authid, answer=lambda c: seen.append(c) or "wrong")
        return seen[0]

    known = await challenge_for("salty")
    unknown = await challenge_for("nobody")
    unknown_again = await challenge_for("nobody")
    other_unknown = await challenge_for("nobody-else")
    # the same fields, a salt with a real user's parameters, and no role
    assert sorted(unknown.extra) == sorted(known.extra) == ["challenge", "iterations", "keylen", "salt"]
    assert (unknown.extra["iterations"], unknown.extra["keylen"]) == (known.extra["iterations"], known.extra["keylen"])
    assert sorted(json.loads(unknown.extra["challenge"])) == sorted(json.loads(known.extra["challenge"]))
    assert "authrole" not in json.loads(known.extra["challenge"])
    # an unknown authid's salt stays the same from one attempt to the next, as a real one
    assert unknown.extra["salt"] == unknown_again.extra["salt"] != other_unknown.extra["salt"]


@pytest_twisted.ensureDeferred
async def test_wampcra_signature_of_an_old_challenge_is_refused(relay):
    first = await connect_auth(relay.url, authmethods=["wampcra"], authid="peter", secret="peter-secret")
    replayed_signature = first.signatures[0]
    await leave(first)
    reason, _ = await refused(relay.url, authmethods=["wampcra"], authid="peter", answer=lambda c: replayed_signature)
    assert reason == AUTH_FAILED


# -- method choice and listeners ----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_first_offered_method_the_listener_accepts_is_used(relay):
    session = await connect_auth(
        relay.url, authmethods=["cryptosign", "wampcra", "ticket"], authid="peter", secret="peter-secret"
    )
    assert [c.method for c in session.challenges] == ["wampcra"]
    assert session.welcome.authmethod == "wampcra"
    await leave(session)


@by_serializer
@pytest_twisted.ensureDeferred
async def test_no_acceptable_method_is_no_auth_method(relay, ser):
    reason, message = await refused(relay.url, ser, authmethods=["cryptosign", "scram"], authid="joe")
    assert reason == NO_AUTH_METHOD
    assert await refused(relay.url, ser, authmethods=[], authid="joe") == (reason, message)
    assert relay.router.auth_failures == 2


@pytest_twisted.ensureDeferred
async def test_listener_with_its_own_auth_next_to_the_default_one(routers):
    # the router's own auth: anonymous only (the default AuthConfig)
    config = RouterConfig(realms=(RealmConfig("realm1", roles=(*ROLES, RoleConfig("anonymous", EVERYTHING))),))
    default = await routers.start(config)
    ticket_url = await routers.add_listener(default, "/secure", auth=AuthConfig(methods=("ticket",), tickets=TICKETS))

    anonymous = await connect_auth(default.url)
    assert (anonymous.welcome.authmethod, anonymous.welcome.authrole) == ("anonymous", "anonymous")
    joe = await connect_auth(
        ticket_url, serializer="msgpack", authmethods=["ticket"], authid="joe", secret="joe-ticket"
    )
    assert welcome_of(joe)["authmethod"] == "ticket"

    # each listener keeps to its own methods
    assert (await refused(ticket_url))[0] == NO_AUTH_METHOD
    assert (await refused(ticket_url, authmethods=["anonymous"]))[0] == NO_AUTH_METHOD
    assert (await refused(default.url, authmethods=["ticket"], authid="joe", secret="joe-ticket"))[0] == NO_AUTH_METHOD
    assert (await refused(ticket_url, authmethods=["ticket"], authid="joe", secret="wrong"))[0] == AUTH_FAILED

    # sessions of both listeners share the realm
    assert await anonymous.call("wamp.session.count") == 2
    await leave(anonymous)
    await leave(joe)
    assert default.router.auth_failures == 4


@pytest_twisted.ensureDeferred
async def test_open_realm_accepts_any_role(routers):
    auth = AuthConfig(methods=("ticket",), ticket_authenticator=lambda realm, authid, ticket, details: "whatever-role")
    running = await routers.start(RouterConfig(realms=("realm1",), auth=auth))
    session = await connect_auth(running.url, authmethods=["ticket"], authid="x", secret="y")
    assert session.welcome.authrole == "whatever-role"
    await leave(session)


@pytest_twisted.ensureDeferred
async def test_client_gone_during_a_slow_authentication_leaves_nothing(routers):
    asked: defer.Deferred = defer.Deferred()
    answer: defer.Deferred = defer.Deferred()

    def slow(realm: str, authid: str, ticket: str, details: dict) -> defer.Deferred:
        asked.callback(None)
        return answer

    auth = AuthConfig(methods=("ticket",), ticket_authenticator=slow)
    running = await routers.start(RouterConfig(realms=(RealmConfig("realm1", roles=ROLES),), auth=auth))
    router = running.router
    ended: defer.Deferred = defer.Deferred()
    original = router.session_ended

    def session_ended(session: Any) -> None:
        original(session)
        if not ended.called:
            ended.callback(None)

    router.session_ended = session_ended
    sessions: list[Any] = []
    connecting = connect_auth(
        running.url, authmethods=["ticket"], authid="slowpoke", secret="t", expect=None, on_session=sessions.append
    )
    await within(asked)
    sessions[0].disconnect()
    session = await connecting
    assert session.welcome is None
    await within(ended)
    answer.callback("user")  # the late answer finds the connection gone
    assert router.state_counts() == {
        "connections": 0,
        "sessions": 0,
        "registrations": 0,
        "subscriptions": 0,
        "pending_calls": 0,
    }
