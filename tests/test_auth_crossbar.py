"""Our client logs in to Crossbar.io with WAMP-Cryptosign and WAMP-SCRAM (Crossbar's dialect,
``authmethods=["scram"]``), with credentials made by our own tools (the public key of a key file, the stored
keys of ``scram-hash`` in Crossbar's hex form), and is refused for a wrong key or password.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from promisifier.client import SessionAborted, connect
from promisifier.wire import cryptosign, scram
from tests.crossbar_support import needs_crossbar, running_crossbar
from tests.support import free_ports, within

pytestmark = [pytest.mark.slow, pytest.mark.process, needs_crossbar]

SEED = bytes(range(100, 132))
OTHER_SEED = bytes(range(1, 33))
# Crossbar's own credentials use 4096 iterations and 512 KiB; cheaper here, same shape
ERIN = scram.hash_password("erin-password", "argon2id13", iterations=2, memory=1024)


def _node_config(port: int) -> dict:
    assert ERIN.autobahn_stored_key is not None and ERIN.autobahn_server_key is not None
    everything = {"call": True, "register": True, "publish": True, "subscribe": True}
    role = {"permissions": [{"uri": "", "match": "prefix", "allow": everything, "cache": True}]}
    return {
        "version": 2,
        "controller": {},
        "workers": [
            {
                "type": "router",
                "realms": [{"name": "realm1", "roles": [{"name": "device", **role}, {"name": "user", **role}]}],
                "transports": [
                    {
                        "type": "websocket",
                        "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"},
                        "serializers": ["json", "msgpack"],
                        "auth": {
                            "cryptosign": {
                                "type": "static",
                                "principals": {
                                    "device-1": {
                                        "realm": "realm1",
                                        "role": "device",
                                        "authorized_keys": [
                                            cryptosign.public_key_hex(Ed25519PrivateKey.from_private_bytes(SEED))
                                        ],
                                    }
                                },
                            },
                            "scram": {
                                "type": "static",
                                "principals": {
                                    "erin": {
                                        "role": "user",
                                        "kdf": "argon2id-13",
                                        "iterations": ERIN.iterations,
                                        "memory": ERIN.memory,
                                        "salt": ERIN.salt.hex(),
                                        "stored-key": ERIN.autobahn_stored_key.hex(),
                                        "server-key": ERIN.autobahn_server_key.hex(),
                                    }
                                },
                            },
                        },
                    }
                ],
            }
        ],
    }


@pytest.fixture(scope="module")
def crossbar_url(tmp_path_factory):
    [port] = free_ports(1)
    with running_crossbar(tmp_path_factory.mktemp("crossbar-auth"), _node_config(port), (port,)):
        yield f"ws://127.0.0.1:{port}/ws"


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
@pytest_twisted.ensureDeferred
async def test_cryptosign_against_crossbar(crossbar_url, serializer):
    session = await within(
        connect(crossbar_url, "realm1", serializers=(serializer,), credentials={"private_key": SEED.hex()}), 30
    )
    assert (session.authid, session.authrole, session.authmethod) == ("device-1", "device", "cryptosign")
    await within(session.leave())
    with pytest.raises(SessionAborted):
        await within(connect(crossbar_url, "realm1", credentials={"private_key": OTHER_SEED.hex()}), 30)


@pytest_twisted.ensureDeferred
async def test_scram_against_crossbar_checks_its_signature(crossbar_url):
    # Crossbar refuses a HELLO that lists a method it does not know ("wamp-scram", which our
    # client offers first by default): name its dialect alone
    with pytest.raises(SessionAborted, match='invalid authmethod "wamp-scram"'):
        await within(connect(crossbar_url, "realm1", authid="erin", credentials={"password": "erin-password"}), 30)
    scram_only = {"authid": "erin", "authmethods": ["scram"]}
    session = await within(connect(crossbar_url, "realm1", credentials={"password": "erin-password"}, **scram_only), 30)
    assert (session.authid, session.authrole, session.authmethod) == ("erin", "user", "scram")
    # our client checked Crossbar's server signature (else it would have refused WELCOME)
    assert "scram_server_signature" in session.welcome_details["authextra"]
    await within(session.leave())
    with pytest.raises(SessionAborted):
        await within(connect(crossbar_url, "realm1", credentials={"password": "wrong"}, **scram_only), 30)
