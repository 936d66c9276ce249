"""TLS client certificates: a listener that requires a certificate from a configured CA, and
the ``tls`` authentication method mapping a certificate's fingerprint or subject to authid
and role; the client's TLS options (CA file, client certificate and key, server name) in
connect() and the CLI. Every certificate is made here with ``cryptography``; only
127.0.0.1 is used.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, ssl, utils

from promisifier.client import SessionAborted, connect
from promisifier.relay.relay_config import ConfigError, load_config
from promisifier.relay.tls_listener import server_endpoint
from promisifier.router import RouterConfig
from promisifier.router.auth import AuthConfig
from promisifier.router.authz import Permission, RoleConfig
from promisifier.router.router_config import RealmConfig
from promisifier.router.tls_auth import TlsPrincipal
from tests.auth_support import Routers, connect_auth, leave
from tests.pki_support import issue, make_ca
from tests.support import RunningRouter, within

pytestmark = pytest.mark.slow  # real sockets on 127.0.0.1

pytest.importorskip("OpenSSL", reason="TLS needs pyOpenSSL (twisted[tls])")

REPO = Path(__file__).resolve().parent.parent
AUTH_FAILED = "wamp.error.authentication_failed"
EVERYTHING = (Permission("", "prefix", call=True, register=True, publish=True, subscribe=True),)
ROLES = tuple(RoleConfig(name, EVERYTHING) for name in ("backend", "monitor"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Two CAs: the relay's server certificate and the clients' from "services", one
    client from "other"."""
    directory = tmp_path_factory.mktemp("pki")
    services, other = make_ca(directory, "services"), make_ca(directory, "other")
    return {
        "services": services,
        "server": issue(services, directory, "server", "localhost", server=True),
        "billing": issue(services, directory, "billing", "billing"),
        "monitor": issue(services, directory, "monitor", "monitor-7"),
        "unlisted": issue(services, directory, "unlisted", "unlisted"),
        "stranger": issue(other, directory, "stranger", "billing"),
    }


@pytest_twisted.async_yield_fixture
async def relay(pki):
    auth = AuthConfig(
        methods=("tls",),
        tls={
            "billing": TlsPrincipal("billing", "backend", fingerprints=(pki["billing"].fingerprint,)),
            "monitor": TlsPrincipal("monitor", "monitor", subjects=("CN=monitor-7,O=Example",)),
        },
    )
    routers = Routers()
    endpoint = server_endpoint(
        reactor,
        f"ssl:0:interface=127.0.0.1:privateKey={pki['server'].key_file}:certKey={pki['server'].cert_file}",
        client_ca=str(pki["services"].cert_file),
    )
    first = await routers.start(RouterConfig(realms=(RealmConfig("realm1", roles=ROLES),)))
    port = await routers.listen(first, endpoint, auth=auth)
    running = RunningRouter(first.router, port, "/ws")
    yield running, f"wss://127.0.0.1:{port.getHost().port}/ws"
    await routers.stop_all()


def tls_of(pki: dict, client: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {"ca_file": str(pki["services"].cert_file)}
    if client is not None:
        found.update(cert_file=str(pki[client].cert_file), key_file=str(pki[client].key_file))
    return found


@pytest_twisted.ensureDeferred
async def test_our_client_logs_in_by_fingerprint_and_by_subject(relay, pki):
    running, url = relay
    session = await within(connect(url, "realm1", authmethods=["tls"], tls=tls_of(pki, "billing")))
    assert (session.authid, session.authrole, session.authmethod) == ("billing", "backend", "tls")
    extra = session.welcome_details["authextra"]
    assert extra["fingerprint"] == pki["billing"].fingerprint
    details = await within(session.call("wamp.session.get", session.session_id))
    assert details["authextra"]["subject"] == "CN=billing,O=Example"
    await within(session.leave())

    session = await within(connect(url, "realm1", authmethods=["tls"], tls=tls_of(pki, "monitor")))
    assert (session.authid, session.authrole) == ("monitor", "monitor")
    await within(session.leave())


@pytest_twisted.ensureDeferred
async def test_autobahn_python_with_a_client_certificate(relay, pki):
    running, url = relay
    key_and_cert = pki["billing"].key_file.read_bytes() + pki["billing"].cert_file.read_bytes()
    creator = ssl.optionsForClientTLS(
        "localhost",
        trustRoot=ssl.Certificate.loadPEM(pki["services"].cert_file.read_bytes()),
        clientCertificate=ssl.PrivateCertificate.loadPEM(key_and_cert),
    )
    session = await connect_auth(url, serializer="msgpack", authmethods=["tls"], tls=creator)
    welcome = session.welcome
    assert (welcome.authid, welcome.authrole, welcome.authmethod) == ("billing", "backend", "tls")
    await leave(session)


@pytest_twisted.ensureDeferred
async def test_unlisted_certificate_and_another_authid_get_the_same_abort(relay, pki):
    running, url = relay
    outcomes = []
    for client, authid in (("unlisted", None), ("billing", "monitor")):
        with pytest.raises(SessionAborted) as caught:
            await within(connect(url, "realm1", authid=authid, authmethods=["tls"], tls=tls_of(pki, client)))
        outcomes.append((caught.value.reason, caught.value.message))
    assert outcomes == [(AUTH_FAILED, "authentication failed")] * 2
    assert running.router.auth_failures == 2


@pytest_twisted.ensureDeferred
async def test_certificates_of_another_ca_or_none_fail_in_the_handshake(relay, pki):
    running, url = relay
    for client in ("stranger", None):
        with pytest.raises(Exception) as caught:
            await within(connect(url, "realm1", authmethods=["tls"], tls=tls_of(pki, client), timeout=5))
        assert not isinstance(caught.value, SessionAborted)
    assert running.router.state_counts()["sessions"] == 0
    # the relay goes on
    session = await within(connect(url, "realm1", authmethods=["tls"], tls=tls_of(pki, "monitor")))
    await within(session.leave())


@pytest_twisted.ensureDeferred
async def test_server_name_and_a_wrong_ca_file(relay, pki):
    running, url = relay
    options = {**tls_of(pki, "billing"), "server_name": "localhost"}
    session = await within(connect(url.replace("127.0.0.1", "127.0.0.1"), "realm1", authmethods=["tls"], tls=options))
    await within(session.leave())
    # the router's certificate is not for this name: refused by the client
    with pytest.raises(Exception):  # noqa: B017 - whatever TLS reports
        await within(
            connect(url, "realm1", authmethods=["tls"], tls={**options, "server_name": "elsewhere"}, timeout=5)
        )
    with pytest.raises(ValueError, match="ca_file"):
        await within(connect(url, "realm1", tls={"ca_file": "/nonexistent/ca.pem"}))


@pytest_twisted.ensureDeferred
async def test_cli_with_ca_file_cert_and_key(relay, pki):
    running, url = relay
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    argv = ["-m", "promisifier", "call", url, "realm1", "wamp.session.count"]
    tls = ["--ca-file", str(pki["services"].cert_file), "--cert", str(pki["monitor"].cert_file)]
    out, err, code = await within(
        utils.getProcessOutputAndValue(
            sys.executable, [*argv, *tls, "--key", str(pki["monitor"].key_file)], env=env, path=str(REPO)
        ),
        30,
    )
    assert (code, out.strip()) == (0, b"1"), err
    out, err, code = await within(
        utils.getProcessOutputAndValue(sys.executable, [*argv, "--ca-file", "/nonexistent.pem"], env=env), 30
    )
    assert code != 0 and b"ca_file" in err, err


def test_config_client_ca_and_tls_principals(tmp_path, pki):
    files = f"privateKey={pki['server'].key_file}:certKey={pki['server'].cert_file}"
    (tmp_path / "relay.toml").write_text(
        f"""
[[listeners]]
endpoint = "ssl:0:interface=127.0.0.1:{files}"
client_ca = "{pki["services"].cert_file}"
[listeners.auth]
methods = ["tls"]
[listeners.auth.tls.principals.billing]
fingerprints = ["{":".join(pki["billing"].fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()}"]
role = "backend"
"""
    )
    listener = load_config(tmp_path / "relay.toml").listeners[0]
    assert listener.client_ca == str(pki["services"].cert_file)
    assert listener.auth.tls["billing"].fingerprints == (pki["billing"].fingerprint,)
    assert str(pki["services"].cert_file) in listener.files  # a renewed CA file rebinds on reload

    (tmp_path / "bad.toml").write_text(
        """
[[listeners]]
endpoint = "tcp:0"
client_ca = "ca.pem"
[listeners.auth]
methods = ["tls"]
[listeners.auth.tls.principals.x]
fingerprints = ["abc"]
role = "r"
[listeners.auth.tls.principals.y]
role = "r"
"""
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "bad.toml")
    errors = info.value.errors
    assert any(
        e.startswith("listeners[0].client_ca: 'ca.pem' given, but client certificates need an ssl:") for e in errors
    )
    assert any(e.startswith("listeners[0].auth.tls.principals.x.fingerprints[0]: expected a SHA-256") for e in errors)
    assert any(e.startswith("listeners[0].auth.tls.principals.y: expected fingerprints or subjects") for e in errors)


# -- WAMP-Cryptosign bound to the TLS channel ----------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_cryptosign_with_tls_unique_channel_binding(pki):
    """autobahn-python asks for tls-unique binding: the relay XORs the challenge with the
    channel id of that TLS connection, so a signature only counts on the connection it was
    made for."""
    from autobahn.wamp.cryptosign import CryptosignKey

    from promisifier.router.cryptosign import CryptosignPrincipal

    seed = bytes(range(7, 39))
    key = CryptosignKey.from_bytes(seed)
    auth = AuthConfig(
        methods=("cryptosign",),
        cryptosign={"bound": CryptosignPrincipal("bound", "backend", (key.public_key(),))},
    )
    routers = Routers()
    first = await routers.start(RouterConfig(realms=(RealmConfig("realm1", roles=ROLES),)))
    endpoint = server_endpoint(
        reactor, f"ssl:0:interface=127.0.0.1:privateKey={pki['server'].key_file}:certKey={pki['server'].cert_file}"
    )
    port = await routers.listen(first, endpoint, auth=auth)
    url = f"wss://127.0.0.1:{port.getHost().port}/ws"
    creator = ssl.optionsForClientTLS(
        "localhost", trustRoot=ssl.Certificate.loadPEM(pki["services"].cert_file.read_bytes())
    )
    sessions: list[Any] = []

    def bound_signature(challenge: Any) -> Any:
        channel_id = sessions[0]._transport.transport_details.channel_id["tls-unique"]
        return key.sign_challenge(challenge, channel_id=channel_id, channel_id_type="tls-unique")

    try:
        extra = {"pubkey": key.public_key(), "channel_binding": "tls-unique"}
        session = await connect_auth(
            url,
            authmethods=["cryptosign"],
            authextra=extra,
            tls=creator,
            answer=bound_signature,
            on_session=sessions.append,
        )
        assert session.challenges[0].extra["channel_binding"] == "tls-unique"
        assert (session.welcome.authid, session.welcome.authmethod) == ("bound", "cryptosign")
        await leave(session)
        # the same client signing the bare challenge (no binding) is refused
        sessions.clear()
        refused = await connect_auth(
            url,
            authmethods=["cryptosign"],
            authextra=extra,
            tls=creator,
            answer=key.sign_challenge,
            on_session=sessions.append,
            expect="aborted",
        )
        assert refused.abort.reason == AUTH_FAILED
        # our client binds too when asked
        credentials = {"private_key": seed.hex(), "channel_binding": "tls-unique"}
        ours = await within(
            connect(url, "realm1", credentials=credentials, tls={"ca_file": str(pki["services"].cert_file)})
        )
        assert (ours.authid, ours.authmethod) == ("bound", "cryptosign")
        await within(ours.leave())
        # and refuses to go on without TLS, where the router cannot bind
        plain = await routers.add_listener(first, "/plain", auth=auth)
        with pytest.raises(SessionAborted, match="channel binding None, asked for 'tls-unique'"):
            await within(connect(plain, "realm1", credentials=credentials))
    finally:
        await routers.stop_all()
