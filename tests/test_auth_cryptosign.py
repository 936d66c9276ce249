"""WAMP-Cryptosign: the relay with autobahn-python's CryptosignKey and with our client.

Real sockets on 127.0.0.1. A success is WELCOME with the principal's authid and role,
authmethod "cryptosign" and the public key in authextra; every failure (unknown key,
signature by another key, over another challenge, replayed, another principal's authid,
malformed key or signature) is the same ABORT, counted in ``router.auth_failures``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.cryptosign import CryptosignKey
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from twisted.logger import globalLogPublisher

from promisifier.client import SessionAborted, connect
from promisifier.relay.relay_config import load_config
from promisifier.relay.service import RelayService
from promisifier.router import RouterConfig
from promisifier.router.auth import AuthConfig
from promisifier.router.authz import Permission, RoleConfig
from promisifier.router.cryptosign import CryptosignPrincipal
from promisifier.router.router_config import RealmConfig
from promisifier.wire import cryptosign
from tests.auth_support import Routers, connect_auth, leave
from tests.js_support import run_node, skip_or_fail_without_node
from tests.support import within

pytestmark = pytest.mark.slow  # real sockets on 127.0.0.1

by_serializer = pytest.mark.parametrize("ser", ["json", "msgpack"])
AUTH_FAILED = "wamp.error.authentication_failed"

EVERYTHING = (Permission("", "prefix", call=True, register=True, publish=True, subscribe=True),)
ROLES = tuple(RoleConfig(name, EVERYTHING) for name in ("device", "backend", "guest"))

DEVICE_SEED = bytes.fromhex("4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510")
DEVICE_SEED_2 = bytes.fromhex("d511fe78e23934b3dadb52fcd022974b80bd92bccc7c5cf404e46cc0a8a2f5cd")
BACKEND_SEED = bytes.fromhex("6e1fde9cf9e2359a87420b65a87dc0c66136e66945196ba2475990d8a0c3a25b")
STRANGER_SEED = bytes(range(32))
DYNAMIC_SEED = bytes(range(32, 64))


def pubkey(seed: bytes) -> str:
    return cryptosign.public_key_hex(Ed25519PrivateKey.from_private_bytes(seed))


#: every call of the dynamic authenticator: (realm, authid, pubkey)
dynamic_calls: list[tuple[str, str | None, str]] = []


def dynamic(realm: str, authid: str | None, key: str, details: dict) -> Any:
    dynamic_calls.append((realm, authid, key))
    return {"role": "guest", "authid": "dynamic-device"} if key == pubkey(DYNAMIC_SEED) else None


AUTH = AuthConfig(
    methods=("cryptosign",),
    cryptosign={
        "device-1": CryptosignPrincipal("device-1", "device", (pubkey(DEVICE_SEED), pubkey(DEVICE_SEED_2).upper())),
        "backend": CryptosignPrincipal("backend", "backend", (pubkey(BACKEND_SEED),)),
    },
    cryptosign_authenticator=f"{__name__}.dynamic",
)
CONFIG = RouterConfig(realms=(RealmConfig("realm1", roles=ROLES),), auth=AUTH)


@pytest_twisted.async_yield_fixture
async def relay():
    dynamic_calls.clear()
    routers = Routers()
    yield await routers.start(CONFIG)
    await routers.stop_all()


def autobahn_key(seed: bytes) -> CryptosignKey:
    return CryptosignKey.from_bytes(seed)


async def autobahn_login(url: str, seed: bytes, ser: str = "json", expect: str = "joined", **kwargs: Any) -> Any:
    """autobahn-python signs with CryptosignKey, announcing the key's public part."""
    key = autobahn_key(seed)
    kwargs.setdefault("authextra", {"pubkey": key.public_key()})
    kwargs.setdefault("answer", key.sign_challenge)
    return await connect_auth(url, serializer=ser, authmethods=["cryptosign"], expect=expect, **kwargs)


def keep(signatures: list[str]) -> Any:
    """A callback that records a signature and passes it on."""

    def record(signature: str) -> str:
        signatures.append(signature)
        return signature

    return record


def test_signatures_match_the_specification_vectors():
    vectors = [
        (None, DEVICE_SEED.hex(), "ff" * 32, "b32675b221f08593213737bef8240e7c15228b07028e19595294678c90d11c0c"),
        (
            "62e935ae755f3d48f80d4d59f6121358c435722a67e859cc0caa8b539027f2ff",
            DEVICE_SEED.hex(),
            "ff" * 32,
            "9b6f41540c9b95b4b7b281c3042fa9c54cef43c842d62ea3fd6030fcb66e70b3",
        ),
    ]
    for channel_id, seed, challenge, signature_start in vectors:
        key = cryptosign.load_private_key(seed)
        binding = bytes.fromhex(channel_id) if channel_id else None
        signed = cryptosign.sign_challenge(key, challenge, binding)
        assert signed.startswith(signature_start)
        message = cryptosign.signed_message(bytes.fromhex(challenge), binding)
        assert cryptosign.verify_signature(key.public_key(), message, signed)
        assert not cryptosign.verify_signature(key.public_key(), bytes(32), signed)


def test_private_keys_load_from_hex_raw_openssh_and_pem_files(tmp_path):
    key = Ed25519PrivateKey.generate()
    expected = cryptosign.public_key_hex(key)
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    openssh = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    files = {"raw.key": seed, "hex.key": seed.hex().encode() + b"\n", "id_ed25519": openssh, "key.pem": pem}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        assert cryptosign.public_key_hex(cryptosign.load_private_key(str(tmp_path / name))) == expected, name
    assert cryptosign.public_key_hex(cryptosign.load_private_key(seed.hex())) == expected
    assert cryptosign.public_key_hex(cryptosign.load_private_key(seed)) == expected
    with pytest.raises(ValueError, match="neither 64 hex digits nor"):
        cryptosign.load_private_key(str(tmp_path / "missing"))
    (tmp_path / "junk").write_bytes(b"not a key")
    with pytest.raises(ValueError, match="not an Ed25519 private key"):
        cryptosign.load_private_key(str(tmp_path / "junk"))


# -- autobahn-python ------------------------------------------------------------------------


@by_serializer
@pytest_twisted.ensureDeferred
async def test_autobahn_cryptosign_logs_in(relay, ser):
    session = await autobahn_login(relay.url, DEVICE_SEED, ser, authid="device-1")
    [challenge] = session.challenges
    assert challenge.method == "cryptosign"
    assert len(bytes.fromhex(challenge.extra["challenge"])) == 32
    assert challenge.extra["channel_binding"] is None
    welcome = session.welcome
    assert (welcome.authid, welcome.authrole, welcome.authmethod, welcome.authprovider) == (
        "device-1",
        "device",
        "cryptosign",
        "static",
    )
    assert welcome.authextra["pubkey"] == pubkey(DEVICE_SEED)
    # the meta API tells the same
    details = await session.call("wamp.session.get", session.session_id)
    assert (details["authmethod"], details["authprovider"]) == ("cryptosign", "static")
    assert details["authextra"] == {"pubkey": pubkey(DEVICE_SEED)}
    await leave(session)


@pytest_twisted.ensureDeferred
async def test_every_authorized_key_of_a_principal_works_and_the_authid_may_be_left_out(relay):
    session = await autobahn_login(relay.url, DEVICE_SEED_2)
    assert (session.welcome.authid, session.welcome.authrole) == ("device-1", "device")
    await leave(session)
    assert dynamic_calls == []


@pytest_twisted.ensureDeferred
async def test_dynamic_authenticator_sees_only_keys_that_signed(relay):
    session = await autobahn_login(relay.url, DYNAMIC_SEED, "msgpack")
    assert (session.welcome.authid, session.welcome.authrole, session.welcome.authprovider) == (
        "dynamic-device",
        "guest",
        "dynamic",
    )
    await leave(session)
    # a forged signature for the dynamic key never reaches the authenticator
    await autobahn_login(
        relay.url,
        STRANGER_SEED,
        expect="aborted",
        authextra={"pubkey": pubkey(DYNAMIC_SEED)},
    )
    assert dynamic_calls == [("realm1", None, pubkey(DYNAMIC_SEED))]


@pytest.fixture
def logged():
    """Every log event while the test runs."""
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


@pytest_twisted.ensureDeferred
async def test_failures_are_indistinguishable(relay, logged):
    async def refused(seed: bytes, **kwargs: Any) -> tuple[str, str]:
        session = await autobahn_login(relay.url, seed, expect="aborted", **kwargs)
        assert session.welcome is None
        return session.abort.reason, session.abort.message

    sent: list[str] = []
    key = autobahn_key(DEVICE_SEED)
    first = await autobahn_login(relay.url, DEVICE_SEED, answer=lambda c: key.sign_challenge(c).addCallback(keep(sent)))
    replayed = sent[0]
    await leave(first)
    signer = cryptosign.load_private_key(DEVICE_SEED)
    outcomes = {
        "unknown key": await refused(STRANGER_SEED),
        "another principal's authid": await refused(DEVICE_SEED, authid="backend"),
        "signed by another key": await refused(STRANGER_SEED, authextra={"pubkey": pubkey(DEVICE_SEED)}),
        "over another challenge": await refused(
            DEVICE_SEED, answer=lambda challenge: cryptosign.sign_challenge(signer, "ab" * 32)
        ),
        "replayed": await refused(DEVICE_SEED, answer=lambda challenge: replayed),
        "malformed pubkey": await refused(DEVICE_SEED, authextra={"pubkey": "xyz"}),
        "no pubkey": await refused(DEVICE_SEED, authextra={}),
        "garbage signature": await refused(DEVICE_SEED, answer=lambda challenge: "00" * 96),
        "not hex": await refused(DEVICE_SEED, answer=lambda challenge: "\u00e9" * 192),
    }
    assert set(outcomes.values()) == {(AUTH_FAILED, "authentication failed")}, outcomes
    assert relay.router.auth_failures == len(outcomes)
    # the relay's log tells why, the client never does
    whys = [event["text"] for event in logged if event.get("event") == "auth_failure"]
    assert len(whys) == len(outcomes)
    assert any(why.startswith("cryptosign: the dynamic authenticator refused pubkey") for why in whys), whys
    assert any(why.startswith("cryptosign: bad signature") for why in whys), whys
    assert any("belongs to 'device-1', not the authid asked for" in why for why in whys), whys
    # the relay goes on
    session = await autobahn_login(relay.url, BACKEND_SEED)
    assert session.welcome.authid == "backend"
    await leave(session)


# -- our client -----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_our_client_with_a_hex_seed_and_with_a_key_file(relay, tmp_path):
    session = await within(connect(relay.url, "realm1", credentials={"private_key": DEVICE_SEED.hex()}))
    assert (session.authid, session.authrole, session.authmethod) == ("device-1", "device", "cryptosign")
    assert session.welcome_details["authextra"]["pubkey"] == pubkey(DEVICE_SEED)
    await within(session.leave())

    key_file = tmp_path / "id_ed25519"
    key = Ed25519PrivateKey.from_private_bytes(BACKEND_SEED)
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    )
    session = await within(
        connect(
            relay.url, "realm1", serializers=("json",), authid="backend", credentials={"private_key": str(key_file)}
        )
    )
    assert (session.authid, session.authrole) == ("backend", "backend")
    await within(session.leave())


@pytest_twisted.ensureDeferred
async def test_the_rpc_websockets_facade_and_the_reconnecting_client_take_the_key(relay):
    from promisifier.client import Client
    from promisifier.compat.rpc_client import Client as RpcClient

    facade = RpcClient(relay.url, realm="realm1", autoconnect=False, credentials={"private_key": DEVICE_SEED.hex()})
    await within(facade.connect())
    assert facade.authid == "device-1"
    await within(facade.close())
    client = Client(relay.url, "realm1", credentials={"private_key": BACKEND_SEED.hex()})
    session = await within(client.connect())
    assert (session.authid, session.authmethod) == ("backend", "cryptosign")
    await within(client.leave())


@pytest_twisted.ensureDeferred
async def test_our_client_with_an_unknown_key_is_refused(relay):
    with pytest.raises(SessionAborted) as caught:
        await within(connect(relay.url, "realm1", credentials={"private_key": STRANGER_SEED.hex()}))
    assert caught.value.reason == AUTH_FAILED
    assert relay.router.auth_failures == 1


# -- autobahn-js (Node, tweetnacl) -----------------------------------------------------------


async def autobahn_js(url: str, ser: str, seed: bytes, authid: str = "") -> dict[str, Any]:
    code, out, err = await run_node(["cryptosign.js", url, "realm1", ser, seed.hex(), authid])
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"no report from cryptosign.js (exit {code})\nstdout:\n{out}\nstderr:\n{err[-2000:]}"
    return json.loads(lines[-1])


@by_serializer
@pytest_twisted.ensureDeferred
async def test_autobahn_js_cryptosign_logs_in_and_is_refused_alike(relay, ser):
    skip_or_fail_without_node()
    joined = await autobahn_js(relay.url, ser, DEVICE_SEED_2, "device-1")
    assert joined["joined"], joined
    welcome = joined["welcome"]
    assert (welcome["authid"], welcome["authrole"], welcome["authmethod"]) == ("device-1", "device", "cryptosign")
    assert joined["meta"]["authextra"] == {"pubkey": pubkey(DEVICE_SEED_2)}
    assert [c["method"] for c in joined["challenges"]] == ["cryptosign"]

    unknown = await autobahn_js(relay.url, ser, STRANGER_SEED)
    impostor = await autobahn_js(relay.url, ser, BACKEND_SEED, "device-1")
    assert not unknown["joined"] and not impostor["joined"]
    assert unknown["abort"] == impostor["abort"] == {"reason": AUTH_FAILED, "message": "authentication failed"}
    assert relay.router.auth_failures == 2


# -- key rotation through reload ---------------------------------------------------------------

ROTATION_TOML = """
[[listeners]]
endpoint = "tcp:0:interface=127.0.0.1"
auth.methods = ["cryptosign", "scram"]
auth.revoke_on_reload = {revoke}
[listeners.auth.cryptosign.principals.device-1]
authorized_keys = [{keys}]
role = "user"
[listeners.auth.scram.principals.erin]
role = "user"
{scram}
"""


def rotation_config(path: Any, seeds: list[bytes], password: str, revoke: bool = False) -> Any:
    import hashlib

    from promisifier.wire import scram

    keys = ", ".join(f'"{pubkey(seed)}"' for seed in seeds)
    # the same password gives the same stored keys (a salt of its own), as an unchanged entry would
    salt = hashlib.sha256(password.encode()).digest()[:16]
    stored = scram.hash_password(password, "pbkdf2", 4096, salt=salt).as_config()
    lines = "\n".join(
        f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}" for key, value in stored.items()
    )
    path.write_text(ROTATION_TOML.format(keys=keys, scram=lines, revoke=str(revoke).lower()))
    return path


@pytest_twisted.ensureDeferred
async def test_reload_rotates_keys_and_passwords(tmp_path):
    config_file = rotation_config(tmp_path / "relay.toml", [DEVICE_SEED], "first-pw")
    service = RelayService(load_config(config_file), config_file=str(config_file), handle_sighup=False)
    service.startService()
    try:
        old = await within(connect(service.url, "realm1", credentials={"private_key": DEVICE_SEED.hex()}))
        erin = await within(connect(service.url, "realm1", authid="erin", credentials={"password": "first-pw"}))

        rotation_config(config_file, [DEVICE_SEED_2], "second-pw")
        assert await within(service.reload()) is True
        for authid, credentials in (
            (None, {"private_key": DEVICE_SEED.hex()}),
            ("erin", {"password": "first-pw"}),
        ):
            with pytest.raises(SessionAborted) as caught:
                await within(connect(service.url, "realm1", authid=authid, credentials=credentials))
            assert caught.value.reason == AUTH_FAILED
        new = await within(connect(service.url, "realm1", credentials={"private_key": DEVICE_SEED_2.hex()}))
        assert new.authid == "device-1"
        erin_again = await within(connect(service.url, "realm1", authid="erin", credentials={"password": "second-pw"}))
        # sessions that joined with the old key and password stay
        assert old.is_joined and erin.is_joined
        for session in (old, erin, new, erin_again):
            await within(session.leave())
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_revoke_on_reload_closes_the_sessions_of_a_removed_key(tmp_path):
    config_file = rotation_config(tmp_path / "relay.toml", [DEVICE_SEED, DEVICE_SEED_2], "erin-pw", revoke=True)
    service = RelayService(load_config(config_file), config_file=str(config_file), handle_sighup=False)
    service.startService()
    try:
        removed = await within(connect(service.url, "realm1", credentials={"private_key": DEVICE_SEED.hex()}))
        kept = await within(connect(service.url, "realm1", credentials={"private_key": DEVICE_SEED_2.hex()}))
        erin = await within(connect(service.url, "realm1", authid="erin", credentials={"password": "erin-pw"}))
        ended: list[str] = []
        removed.on("leave", lambda session, reason: ended.append(reason))

        rotation_config(config_file, [DEVICE_SEED_2], "erin-pw", revoke=True)
        assert await within(service.reload()) is True
        await within(removed.closed)
        assert ended == ["wamp.close.killed"]
        # a key still listed and an unchanged password keep their sessions
        assert kept.is_joined and erin.is_joined

        rotation_config(config_file, [DEVICE_SEED_2], "new-erin-pw", revoke=True)
        assert await within(service.reload()) is True
        await within(erin.closed)
        assert kept.is_joined
        await within(kept.leave())
    finally:
        await service.stopService()
