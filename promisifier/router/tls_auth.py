"""The ``tls`` authentication method: the client certificate of the TLS connection says
who the client is.

The listener's TLS handshake already checked that the certificate comes from a trusted
CA (``client_ca``); here its SHA-256 fingerprint or its subject is looked up among the
configured principals. No CHALLENGE: the decision is made at HELLO.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509

from promisifier.transport import tls_facts


@dataclass(frozen=True)
class TlsPrincipal:
    """A client known by its certificate: any of ``fingerprints`` (SHA-256, hex, colons
    allowed) or a subject among ``subjects`` (RFC 4514, e.g. ``CN=backend-1,O=Example``,
    or just the common name)."""

    authid: str
    role: str
    fingerprints: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "fingerprints", tuple(normalize_fingerprint(f) for f in self.fingerprints))
        object.__setattr__(self, "subjects", tuple(self.subjects))


def normalize_fingerprint(text: str) -> str:
    """``AB:CD:...`` or ``abcd...`` -> lower-case hex; ValueError unless 32 bytes."""
    value = text.replace(":", "").strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"not a SHA-256 fingerprint (64 hex digits, colons allowed): {text!r}")
    return value


def _names(certificate: x509.Certificate) -> set[str]:
    names = {certificate.subject.rfc4514_string()}
    names.update(
        attribute.value
        for attribute in certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        if isinstance(attribute.value, str)
    )
    return names


def identify(principals: Mapping[str, TlsPrincipal], peer: object) -> tuple[TlsPrincipal, dict[str, str]] | None:
    """The principal whose certificate ``peer`` presented, and the facts for authextra."""
    certificate = tls_facts.peer_certificate(peer)
    if certificate is None:
        return None
    fingerprint = tls_facts.fingerprint(certificate)
    names = _names(certificate)
    for principal in principals.values():
        if fingerprint in principal.fingerprints or names.intersection(principal.subjects):
            return principal, {"fingerprint": fingerprint, "subject": certificate.subject.rfc4514_string()}
    return None
