"""WAMP-SCRAM on the relay in both dialects: autobahn-python's AuthScram (authmethod
"scram") and our client (the specification's "wamp-scram", or "scram" when asked).

The relay holds stored keys only (what ``scram-hash`` prints). A wrong password, an unknown
authid, a proof for another exchange and a replayed proof all get the same ABORT; the
CHALLENGE for an unknown authid looks like a real one.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.auth import AuthScram

from promisifier.client import SessionAborted, connect
from promisifier.router import RouterConfig
from promisifier.router.auth import AuthConfig
from promisifier.router.authz import Permission, RoleConfig
from promisifier.router.router_config import RealmConfig
from promisifier.router.scram import ScramPrincipal
from promisifier.wire import scram
from tests.auth_support import Routers, connect_auth, leave
from tests.support import within

pytestmark = pytest.mark.slow  # real sockets on 127.0.0.1

AUTH_FAILED = "wamp.error.authentication_failed"
EVERYTHING = (Permission("", "prefix", call=True, register=True, publish=True, subscribe=True),)
ROLES = tuple(RoleConfig(name, EVERYTHING) for name in ("user", "admin"))

# small costs keep the tests fast; the defaults of scram-hash are far higher
ARGON = scram.hash_password("alice-pw", "argon2id13", iterations=1, memory=1024)
PBKDF2 = scram.hash_password("bob-pw", "pbkdf2", iterations=4096)
AUTH = AuthConfig(
    methods=("scram",),
    scram={
        "alice": ScramPrincipal("alice", "user", ARGON),
        "bob": ScramPrincipal("bob", "admin", PBKDF2),
        "bj\u00f6rn,x=y": ScramPrincipal("bj\u00f6rn,x=y", "user", scram.hash_password("p", "pbkdf2", 4096)),
    },
)
CONFIG = RouterConfig(realms=(RealmConfig("realm1", roles=ROLES),), auth=AUTH)


@pytest_twisted.async_yield_fixture
async def relay():
    routers = Routers()
    yield await routers.start(CONFIG)
    await routers.stop_all()


async def autobahn_login(
    url: str, authid: str, password: str, ser: str = "json", client: AuthScram | None = None, **kwargs: Any
) -> Any:
    """autobahn-python's own SCRAM client (its dialect: authmethod "scram")."""
    client = client or AuthScram(authid=authid, password=password)
    kwargs.setdefault("answer", lambda challenge: client.on_challenge(None, challenge).decode("ascii"))
    session = await connect_auth(
        url, serializer=ser, authmethods=["scram"], authid=authid, authextra=client.authextra, **kwargs
    )
    session.scram_client = client
    return session


def test_stored_keys_follow_rfc_7677_and_the_dialects_differ_only_for_argon2():
    # RFC 7677's SCRAM-SHA-256 example: user "user", password "pencil", 4096 iterations
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    salted = scram.salted_password("pencil", salt, "pbkdf2", 4096, None)
    message = scram.auth_message(
        "user",
        "rOprNGfwEbeRWgbNEkqO",
        "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        "W22ZaJ0SNY7soEsUEjb6gQ==",
        4096,
    )
    assert scram.client_proof(salted, message) == "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    assert scram.server_signature(scram.server_key(salted), message) == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    assert PBKDF2.keys("spec") == PBKDF2.keys("autobahn")
    assert ARGON.keys("spec") != ARGON.keys("autobahn")
    assert scram.saslprep("I\u00adX") == "IX" and scram.saslprep("\u2168") == "IX"
    with pytest.raises(scram.ScramError):
        scram.saslprep("a\u0007b")


# -- autobahn-python (its dialect) ----------------------------------------------------------


@pytest.mark.parametrize("ser", ["json", "msgpack"])
@pytest_twisted.ensureDeferred
async def test_autobahn_scram_logs_in_with_argon2id(relay, ser):
    session = await autobahn_login(relay.url, "alice", "alice-pw", ser)
    [challenge] = session.challenges
    assert challenge.method == "scram"
    assert challenge.extra["kdf"] == "argon2id-13"
    assert (challenge.extra["iterations"], challenge.extra["memory"]) == (1, 1024)
    welcome = session.welcome
    assert (welcome.authid, welcome.authrole, welcome.authmethod) == ("alice", "user", "scram")
    # the router proves it knows the password, where autobahn looks for it
    assert session.scram_client.on_welcome(session, welcome.authextra) is None
    assert "verifier" not in welcome.authextra
    details = await session.call("wamp.session.get", session.session_id)
    assert (details["authmethod"], details["authprovider"]) == ("scram", "static")
    await leave(session)


@pytest_twisted.ensureDeferred
async def test_autobahn_scram_failures_are_indistinguishable(relay):
    sent: list[str] = []
    first = AuthScram(authid="alice", password="alice-pw")

    def record(challenge: Any) -> str:
        sent.append(first.on_challenge(None, challenge).decode("ascii"))
        return sent[-1]

    await leave(await autobahn_login(relay.url, "alice", "alice-pw", client=first, answer=record))

    async def refused(authid: str, password: str, **kwargs: Any) -> tuple[str, str]:
        session = await autobahn_login(relay.url, authid, password, expect="aborted", **kwargs)
        return session.abort.reason, session.abort.message

    outcomes = {
        "wrong password": await refused("alice", "wrong"),
        "unknown authid": await refused("mallory", "alice-pw"),
        "replayed proof": await refused("alice", "alice-pw", answer=lambda challenge: sent[0]),
        "not base64": await refused("alice", "alice-pw", answer=lambda challenge: "!!"),
    }
    assert set(outcomes.values()) == {(AUTH_FAILED, "authentication failed")}, outcomes
    assert relay.router.auth_failures == len(outcomes)


@pytest_twisted.ensureDeferred
async def test_challenge_for_an_unknown_authid_looks_like_a_real_one(relay):
    async def challenge_for(authid: str) -> Any:
        session = await autobahn_login(relay.url, authid, "x", expect="aborted")
        return session.challenges[0].extra

    known = await challenge_for("alice")
    unknown = await challenge_for("mallory")
    again = await challenge_for("mallory")
    assert sorted(known) == sorted(unknown)
    assert {k: unknown[k] for k in ("kdf", "iterations", "memory")} == {
        k: known[k] for k in ("kdf", "iterations", "memory")
    }
    assert unknown["salt"] == again["salt"] != known["salt"]
    assert unknown["nonce"] != again["nonce"]


# -- our client (the specification's dialect, and autobahn's) ---------------------------------


@pytest.mark.parametrize("authid,password,role", [("alice", "alice-pw", "user"), ("bob", "bob-pw", "admin")])
@pytest_twisted.ensureDeferred
async def test_our_client_speaks_the_specification_dialect(relay, authid, password, role):
    session = await within(connect(relay.url, "realm1", authid=authid, credentials={"password": password}))
    assert (session.authid, session.authrole, session.authmethod) == (authid, role, "wamp-scram")
    assert set(session.welcome_details["authextra"]) == {"verifier"}
    await within(session.leave())


@pytest_twisted.ensureDeferred
async def test_our_client_in_autobahns_dialect_and_with_an_escaped_authid(relay):
    session = await within(
        connect(relay.url, "realm1", authid="alice", authmethods=["scram"], credentials={"password": "alice-pw"})
    )
    assert session.authmethod == "scram"
    await within(session.leave())
    session = await within(connect(relay.url, "realm1", authid="bj\u00f6rn,x=y", credentials={"password": "p"}))
    assert session.authid == "bj\u00f6rn,x=y"
    await within(session.leave())


@pytest_twisted.ensureDeferred
async def test_our_client_wrong_password_and_unknown_authid_fail_alike(relay):
    reasons = []
    for authid, password in (("alice", "nope"), ("bob", "nope"), ("nobody", "bob-pw")):
        with pytest.raises(SessionAborted) as caught:
            await within(connect(relay.url, "realm1", authid=authid, credentials={"password": password}))
        reasons.append((caught.value.reason, caught.value.message))
    assert set(reasons) == {(AUTH_FAILED, "authentication failed")}


def test_our_client_refuses_weak_parameters_a_foreign_nonce_and_a_wrong_verifier():
    from promisifier.client.auth import AuthenticationError, ClientAuth

    def client() -> tuple[ClientAuth, str]:
        auth = ClientAuth("alice", ["wamp-scram"], {"password": "alice-pw"})
        return auth, auth.hello_authextra()["nonce"]

    def challenge(client_nonce: str, **changes: Any) -> dict[str, Any]:
        return {"nonce": client_nonce + scram.new_nonce(), "salt": scram.b64(PBKDF2.salt), "kdf": "pbkdf2",
                "iterations": 4096, "memory": None, **changes}  # fmt: skip

    auth, nonce = client()
    with pytest.raises(AuthenticationError, match="iterations=10 is outside"):
        auth.answer("wamp-scram", challenge(nonce, iterations=10))
    with pytest.raises(AuthenticationError, match="memory=8 is outside"):
        auth.answer("wamp-scram", challenge(nonce, kdf="argon2id13", iterations=1, memory=8))
    with pytest.raises(AuthenticationError, match="does not extend"):
        auth.answer("wamp-scram", challenge("", nonce=scram.new_nonce()))
    with pytest.raises(AuthenticationError, match="unknown KDF"):
        auth.answer("wamp-scram", challenge(nonce, kdf="scrypt"))
    proof, extra = auth.answer("wamp-scram", challenge(nonce))
    assert extra["nonce"].startswith(nonce) and proof
    assert "does not know the password" in auth.check_welcome({"authextra": {"verifier": scram.b64(bytes(32))}})
    assert "does not know the password" in auth.check_welcome({})
