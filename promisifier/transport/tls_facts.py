"""What a connection's TLS layer knows: the channel id for channel binding, and the
certificate the peer presented.

Both are read from the Twisted transport under a peer (``peer.transport``); a connection
without TLS (plain TCP, UNIX socket, in-process peer) has neither.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography import x509
from twisted.internet.interfaces import ISSLTransport


def _tls_transport(peer: object) -> Any:
    transport = getattr(peer, "transport", None)
    if transport is None or not ISSLTransport.providedBy(transport):
        return None
    return transport


def channel_id(peer: object, binding: str, *, server: bool = True) -> bytes | None:
    """The ``tls-unique`` channel id of ``peer``'s connection (RFC 5929: the first TLS
    Finished message, which the client sends), or None without TLS. WAMP-Cryptosign
    signs over 32 bytes, so the Finished message is hashed with SHA-256, as autobahn and
    Crossbar do."""
    if binding != "tls-unique":
        return None
    transport = _tls_transport(peer)
    if transport is None:
        return None
    connection = transport.getHandle()
    finished = connection.get_peer_finished() if server else connection.get_finished()
    if not finished:
        return None
    return hashlib.sha256(finished).digest()


def peer_certificate(peer: object) -> x509.Certificate | None:
    """The certificate the other end presented in the TLS handshake, or None."""
    transport = _tls_transport(peer)
    if transport is None:
        return None
    certificate = transport.getPeerCertificate()
    if certificate is None:
        return None
    return certificate.to_cryptography()


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 fingerprint of a certificate: lower-case hex, no separators."""
    from cryptography.hazmat.primitives import hashes

    return certificate.fingerprint(hashes.SHA256()).hex()
