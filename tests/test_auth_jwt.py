"""JWT tickets: a ticket that is a JSON Web Token is verified with PyJWT (HS256, RS256,
EdDSA; a key or a key set), its exp and aud checked, authid and role taken from claims.

autobahn-python and our client send the token as an ordinary ticket. Every bad token
(expired, wrong audience, other key, tampered, another authid, alg "none") gets the same
ABORT as a wrong static ticket.
"""

from __future__ import annotations

import json
import time
import tomllib
from typing import Any

import jwt
import pytest
import pytest_twisted
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from promisifier.client import SessionAborted, connect
from promisifier.relay.relay_config import ConfigError, parse_config
from promisifier.router import RouterConfig
from promisifier.router.auth import AuthConfig, Principal
from promisifier.router.authz import Permission, RoleConfig
from promisifier.router.jwt_tickets import JwtConfig
from promisifier.router.router_config import RealmConfig
from tests.auth_support import Routers, connect_auth, leave
from tests.support import within

pytestmark = pytest.mark.slow  # real sockets on 127.0.0.1


AUTH_FAILED = "wamp.error.authentication_failed"
EVERYTHING = (Permission("", "prefix", call=True, register=True, publish=True, subscribe=True),)
ROLES = tuple(RoleConfig(name, EVERYTHING) for name in ("user", "admin"))
SECRET = "a-shared-secret-of-the-web-app-32b"
AUDIENCE = "relay.example.com"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ED_KEY = ed25519.Ed25519PrivateKey.generate()
OTHER_ED_KEY = ed25519.Ed25519PrivateKey.generate()


def public_pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def token(key: Any, algorithm: str = "HS256", *, lifetime: float = 60, headers: dict | None = None, **claims: Any):
    payload = {"sub": "carol", "role": "user", "aud": AUDIENCE, "exp": int(time.time() + lifetime), **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm=algorithm, headers=headers)


def relay_config(jwt_config: JwtConfig) -> RouterConfig:
    auth = AuthConfig(
        methods=("ticket",), tickets={"joe": Principal("joe", "admin", "joe-ticket")}, ticket_jwt=jwt_config
    )
    return RouterConfig(realms=(RealmConfig("realm1", roles=ROLES),), auth=auth)


@pytest_twisted.async_yield_fixture
async def routers():
    started = Routers()
    yield started
    await started.stop_all()


async def login(url: str, ticket: str, authid: str | None = None, expect: str = "joined", ser: str = "json") -> Any:
    return await connect_auth(url, serializer=ser, authmethods=["ticket"], authid=authid, secret=ticket, expect=expect)


@pytest.mark.parametrize("ser", ["json", "msgpack"])
@pytest_twisted.ensureDeferred
async def test_hs256_token_from_autobahn_python(routers, ser):
    running = await routers.start(relay_config(JwtConfig(("HS256",), key=SECRET, audience=AUDIENCE)))
    session = await login(running.url, token(SECRET, role="admin"), ser=ser)
    welcome = session.welcome
    assert (welcome.authid, welcome.authrole, welcome.authmethod, welcome.authprovider) == (
        "carol",
        "admin",
        "ticket",
        "jwt",
    )
    await leave(session)
    # static principals still work next to the JWTs
    session = await login(running.url, "joe-ticket", "joe")
    assert (session.welcome.authrole, session.welcome.authprovider) == ("admin", "static")
    await leave(session)


@pytest_twisted.ensureDeferred
async def test_rs256_and_eddsa_tokens_from_our_client(routers):
    rsa_relay = await routers.start(relay_config(JwtConfig(("RS256",), key=public_pem(RSA_KEY), audience=AUDIENCE)))
    session = await within(connect(rsa_relay.url, "realm1", credentials={"ticket": token(RSA_KEY, "RS256")}))
    assert (session.authid, session.authrole, session.authmethod) == ("carol", "user", "ticket")
    await within(session.leave())

    custom = JwtConfig(("EdDSA",), key=public_pem(ED_KEY), authid_claim="email", role_claim="wamp_role")
    ed_relay = await routers.start(relay_config(custom))
    signed = token(ED_KEY, "EdDSA", aud=None, email="dan@example.com", wamp_role="admin")
    session = await within(connect(ed_relay.url, "realm1", authid="dan@example.com", credentials={"ticket": signed}))
    assert (session.authid, session.authrole) == ("dan@example.com", "admin")
    await within(session.leave())


@pytest_twisted.ensureDeferred
async def test_key_set_picks_the_key_by_kid(routers):
    keys = {"keys": []}
    for kid, key in (("old", OTHER_ED_KEY), ("new", ED_KEY)):
        jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key()))
        keys["keys"].append({**jwk, "kid": kid})
    running = await routers.start(relay_config(JwtConfig(("EdDSA",), jwks=json.dumps(keys), audience=AUDIENCE)))
    for kid, key in (("old", OTHER_ED_KEY), ("new", ED_KEY)):
        session = await login(running.url, token(key, "EdDSA", headers={"kid": kid}))
        assert session.welcome.authprovider == "jwt"
        await leave(session)
    wrong_kid = await login(running.url, token(ED_KEY, "EdDSA", headers={"kid": "old"}), expect="aborted")
    no_such_kid = await login(running.url, token(ED_KEY, "EdDSA", headers={"kid": "gone"}), expect="aborted")
    assert wrong_kid.abort.reason == no_such_kid.abort.reason == AUTH_FAILED


@pytest_twisted.ensureDeferred
async def test_bad_tokens_are_refused_alike(routers):
    running = await routers.start(relay_config(JwtConfig(("HS256",), key=SECRET, audience=AUDIENCE)))
    good = token(SECRET)
    header, payload, signature = good.split(".")
    forged_payload = jwt.utils.base64url_encode(
        json.dumps({**jwt.decode(good, options={"verify_signature": False}), "role": "admin"}).encode()
    ).decode()
    bad = {
        "expired": token(SECRET, lifetime=-120),
        "wrong audience": token(SECRET, aud="other.example.com"),
        "no audience": token(SECRET, aud=None),
        "no expiry": jwt.encode({"sub": "carol", "role": "user", "aud": AUDIENCE}, SECRET, algorithm="HS256"),
        "other secret": token("another-secret-of-another-app-32b"),
        "tampered": f"{header}.{forged_payload}.{signature}",
        "alg none": jwt.encode({"sub": "carol", "role": "admin", "aud": AUDIENCE, "exp": 2**33}, None, algorithm="none")
        + "x",
        "no role claim": token(SECRET, role=None),
        "signed with RS256": token(RSA_KEY, "RS256"),
    }
    outcomes = {name: await login(running.url, ticket, expect="aborted") for name, ticket in bad.items()}
    outcomes["another authid"] = await login(running.url, good, "mallory", expect="aborted")
    outcomes["wrong static ticket"] = await login(running.url, "nope", "joe", expect="aborted")
    found = {name: (s.abort.reason, s.abort.message) for name, s in outcomes.items()}
    assert set(found.values()) == {(AUTH_FAILED, "authentication failed")}, found
    assert running.router.auth_failures == len(found)
    with pytest.raises(SessionAborted):
        await within(connect(running.url, "realm1", credentials={"ticket": bad["expired"]}))


def test_config_names_the_key_of_each_problem(tmp_path):
    (tmp_path / "rsa.pub").write_text(public_pem(RSA_KEY))
    (tmp_path / "not-a-key.pub").write_text("hello")

    def errors(jwt_table: str) -> list[str]:
        text = f"[[listeners]]\nauth.methods = ['ticket']\n[listeners.auth.ticket.jwt]\n{jwt_table}\n"
        with pytest.raises(ConfigError) as info:
            parse_config(tomllib.loads(text), base_dir=str(tmp_path))
        return info.value.errors

    where = "listeners[0].auth.ticket.jwt"
    assert any(
        e.startswith(f"{where}.algorithms[0]: expected one of") for e in errors("algorithms = ['none']\nsecret = 'x'")
    )
    assert any(e.startswith(f"{where}.algorithms: missing") for e in errors("secret = 'x'"))
    assert any(
        e.startswith(f"{where}.public_key_file: cannot read")
        for e in errors("algorithms = ['RS256']\npublic_key_file = 'missing.pub'")
    )
    assert any(
        e.startswith(f"{where}.public_key_file:") and "not a PEM public key" in e
        for e in errors("algorithms = ['RS256']\npublic_key_file = 'not-a-key.pub'")
    )
    assert any(e.startswith(f"{where}.secret:") for e in errors("algorithms = ['RS256']\nsecret = 'x'"))
    assert any("exactly one of" in e for e in errors("algorithms = ['HS256']"))
    # a usable configuration
    config = parse_config(
        tomllib.loads(
            "[[listeners]]\nauth.methods = ['ticket']\n[listeners.auth.ticket.jwt]\n"
            "algorithms = ['RS256']\npublic_key_file = 'rsa.pub'\naudience = 'relay'\n"
        ),
        base_dir=str(tmp_path),
    )
    assert config.listeners[0].auth.ticket_jwt.audience == "relay"
