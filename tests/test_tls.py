"""TLS: a relay listener ``ssl:...`` from a config file, with a self-signed certificate made
here for 127.0.0.1/localhost, and autobahn-python clients over ``wss://``."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest
import pytest_twisted
from autobahn.twisted.wamp import WampWebSocketClientFactory
from autobahn.wamp.types import ComponentConfig
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS

from promisifier.relay.relay_config import load_config
from promisifier.relay.service import RelayService
from tests.support import RecordingSession, autobahn_serializer, within

pytestmark = pytest.mark.slow

pytest.importorskip("OpenSSL", reason="TLS needs pyOpenSSL (the test extra installs twisted[tls])")


def make_certificate(directory: Path, name: str = "relay") -> tuple[Path, Path]:
    """A fresh key and a self-signed certificate for localhost and 127.0.0.1, as PEM files
    ``NAME.key`` and ``NAME.crt`` in ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    key_file, cert_file = directory / f"{name}.key", directory / f"{name}.crt"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


TLS_CONFIG = """
[[listeners]]
endpoint = "ssl:0:interface=127.0.0.1:privateKey=certs/relay.key:certKey=certs/relay.crt"
path = "/ws"

[[realms]]
name = "realm1"
"""


@pytest.fixture
def tls_relay(tmp_path):
    """A relay service with one TLS listener (started), and the certificate clients trust."""
    key_file, cert_file = make_certificate(tmp_path / "certs")
    config_file = tmp_path / "relay.toml"
    config_file.write_text(TLS_CONFIG)
    service = RelayService(load_config(config_file), config_file=str(config_file), handle_sighup=False)
    service.startService()
    yield service, cert_file
    pytest_twisted.blockon(service.stopService())


@pytest_twisted.inlineCallbacks
def connect_wss(url: str, trust: Path | None, hostname: str = "localhost"):
    """An autobahn-python session over wss://, trusting ``trust`` (a PEM certificate; None:
    the system's roots); fires with the session once joined."""
    from twisted.internet.ssl import Certificate, optionsForClientTLS

    port = int(url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    options = optionsForClientTLS(
        hostname, trustRoot=Certificate.loadPEM(trust.read_bytes()) if trust is not None else None
    )
    session = RecordingSession(ComponentConfig(realm="realm1"))
    factory = WampWebSocketClientFactory(
        lambda: session, url=url.replace("127.0.0.1", hostname), serializers=[autobahn_serializer("msgpack")]
    )
    endpoint = wrapClientTLS(options, TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5))
    protocol = yield within(endpoint.connect(factory))
    session.protocol = protocol
    # joined, or the connection closed first (a failed TLS handshake never opens the WebSocket)
    first = yield within(
        defer.DeferredList(
            [session.joined, protocol.is_closed], fireOnOneCallback=True, fireOnOneErrback=True, consumeErrors=True
        )
    )
    if first[1] == 1:
        raise ConnectionError("the connection closed before the session joined")
    return session


@pytest_twisted.inlineCallbacks
def test_wss_client_calls_through_a_tls_listener(tls_relay):
    service, cert_file = tls_relay
    url = service.url
    assert url.startswith("wss://127.0.0.1:") and url.endswith("/ws")

    callee = yield connect_wss(url, cert_file)
    caller = yield connect_wss(url, cert_file, hostname="127.0.0.1")  # the IP address SAN works too
    yield within(callee.register(lambda a, b: a + b, "com.example.add"))
    assert (yield within(caller.call("com.example.add", 2, 3))) == 5
    # TLS records are not the socket's octets: these connections write through Twisted
    peers = [session.peer for session in service.router.connections]
    assert len(peers) == 2 and all(peer._turn_writer is None for peer in peers)
    for session in (caller, callee):
        session.leave()
        yield within(session.disconnected)


@pytest_twisted.inlineCallbacks
def test_client_that_does_not_trust_the_certificate_cannot_connect(tls_relay, tmp_path):
    service, _ = tls_relay
    _, stranger = make_certificate(tmp_path / "other", "stranger")  # trusts another certificate
    with pytest.raises(ConnectionError):
        yield connect_wss(service.url, stranger)
    assert service.router.state_counts()["sessions"] == 0
