"""Hostile HELLOs and AUTHENTICATEs for cryptosign, SCRAM (both dialects), JWT tickets and
tls, on the router in memory: whatever the shape of authextra or the signature, the answer is
one ABORT wamp.error.authentication_failed, nothing raises, nothing stays behind."""

from __future__ import annotations

from typing import Any

import pytest

from promisifier.router import RouterConfig
from promisifier.router.auth import AuthConfig
from promisifier.router.cryptosign import CryptosignPrincipal
from promisifier.router.jwt_tickets import JwtConfig
from promisifier.router.scram import ScramPrincipal
from promisifier.router.tls_auth import TlsPrincipal
from promisifier.wire import scram
from promisifier.wire.messages import ABORT, AUTHENTICATE, CHALLENGE, HELLO
from tests.memory_router import ALL_ROLES, MemoryRouter

AUTH = AuthConfig(
    methods=("cryptosign", "scram", "ticket", "tls"),
    cryptosign={"d": CryptosignPrincipal("d", "user", ("ab" * 32,))},
    scram={"s": ScramPrincipal("s", "user", scram.hash_password("pw", "pbkdf2", 1000))},
    ticket_jwt=JwtConfig(("HS256",), key="secret-secret-secret-secret-secret"),
    tls={"t": TlsPrincipal("t", "user", fingerprints=("cd" * 32,))},
)

HELLOS = [
    pytest.param("cryptosign", {"pubkey": 5}, id="cryptosign-pubkey-int"),
    pytest.param("cryptosign", {"pubkey": "ab" * 32, "channel_binding": "tls-unique"}, id="cryptosign-binding-no-tls"),
    pytest.param("cryptosign", {"pubkey": "zz" * 32, "channel_binding": ["x"]}, id="cryptosign-odd-binding"),
    pytest.param("cryptosign", "not a dict", id="cryptosign-authextra-str"),
    pytest.param("wamp-scram", {"nonce": 7}, id="scram-nonce-int"),
    pytest.param("wamp-scram", {"nonce": "%%%"}, id="scram-nonce-not-base64"),
    pytest.param("scram", {}, id="scram-no-nonce"),
    pytest.param("ticket", {}, id="jwt"),
]
SIGNATURES = ["", "00" * 96, "x" * 10_000, "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzIn0."]


@pytest.mark.parametrize("method,authextra", HELLOS)
@pytest.mark.parametrize("signature", SIGNATURES)
def test_any_shape_is_one_abort(method: str, authextra: Any, signature: str) -> None:
    memory = MemoryRouter(RouterConfig(realms=("realm1",), auth=AUTH))
    client = memory.connect()
    client.send_raw(
        [HELLO, "realm1", {"roles": ALL_ROLES, "authmethods": [method], "authid": "s", "authextra": authextra}]
    )
    memory.advance()
    if client.received and client.received[-1][0] == CHALLENGE:
        client.send_raw([AUTHENTICATE, signature, {"nonce": 5}])
        memory.advance()
    assert client.received[-1][0] == ABORT
    assert client.received[-1][2] == "wamp.error.authentication_failed"
    assert memory.router.auth_failures == 1
    memory.advance(1)
    memory.assert_idle()


def test_tls_without_a_certificate_is_one_abort() -> None:
    memory = MemoryRouter(RouterConfig(realms=("realm1",), auth=AUTH))
    client = memory.connect()
    client.send_raw([HELLO, "realm1", {"roles": ALL_ROLES, "authmethods": ["tls"]}])
    memory.advance()
    assert [message[0] for message in client.received] == [ABORT]
    assert client.received[0][2] == "wamp.error.authentication_failed"
