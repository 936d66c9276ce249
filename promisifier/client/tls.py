"""TLS settings of a client connection (``wss://``, ``rss://``): which CAs to trust, the
client certificate to present, the name to check the router's certificate against.

Without settings the system's trust store is used and the URL's host is checked, as
before. With a ``ca_file`` only the CAs in it are trusted (a private CA); ``cert_file`` and
``key_file`` present a client certificate (for routers that require one, e.g. the relay's
``tls`` authentication); ``server_name`` checks the certificate against another name than
the URL's host (and sends it as SNI).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class TlsSettingsError(ValueError):
    """A TLS file is missing or unreadable, or the settings do not fit together."""


@dataclass(frozen=True)
class TlsOptions:
    """How a client sets up TLS."""

    #: PEM file of the CA certificate(s) to trust instead of the system's
    ca_file: str | None = None
    #: PEM file of the client certificate (may also hold the key)
    cert_file: str | None = None
    #: PEM file of the client certificate's private key (default: ``cert_file``)
    key_file: str | None = None
    #: the name the router's certificate must carry (default: the URL's host)
    server_name: str | None = None

    @classmethod
    def coerce(cls, value: TlsOptions | Mapping[str, Any] | None) -> TlsOptions | None:
        """``value`` as TlsOptions: a TlsOptions, a dict of its fields, or None."""
        if value is None or isinstance(value, TlsOptions):
            return value
        unknown = set(value) - {"ca_file", "cert_file", "key_file", "server_name"}
        if unknown:
            raise TlsSettingsError(f"unknown TLS option(s): {', '.join(sorted(unknown))}")
        return cls(**value)

    def creator(self, host: str) -> Any:
        """The Twisted ``IOpenSSLClientConnectionCreator`` for a connection to ``host``."""
        from twisted.internet import ssl

        if self.key_file is not None and self.cert_file is None:
            raise TlsSettingsError("a client key needs its certificate: give cert_file too")
        # every certificate of the file, not only the first: it may be a bundle of CAs
        trust_root = ssl.trustRootFromCertificates(_certificates(self.ca_file)) if self.ca_file else None
        client_certificate = None
        if self.cert_file is not None:
            certificate = _read(self.cert_file, "cert_file")
            key = _read(self.key_file, "key_file") if self.key_file else certificate
            try:
                client_certificate = ssl.PrivateCertificate.loadPEM(key + b"\n" + certificate)
            except Exception as error:  # noqa: BLE001 - OpenSSL's errors are of several kinds
                raise TlsSettingsError(
                    f"cannot use the client certificate {self.cert_file!r} with key {self.key_file or self.cert_file!r}: "
                    f"{error}"
                ) from None
        return ssl.optionsForClientTLS(
            self.server_name or host, trustRoot=trust_root, clientCertificate=client_certificate
        )


def _read(name: str, what: str) -> bytes:
    try:
        return Path(name).expanduser().read_bytes()
    except OSError as error:
        raise TlsSettingsError(f"TLS {what} {name!r}: {error.strerror or error}") from None


def _certificates(name: str) -> list[Any]:
    from twisted.internet import ssl

    data = _read(name, "ca_file")
    marker = b"-----END CERTIFICATE-----"
    blocks = [block + marker for block in data.split(marker) if b"-----BEGIN CERTIFICATE-----" in block]
    if not blocks:
        raise TlsSettingsError(f"TLS ca_file {name!r}: no PEM certificate in it")
    return [ssl.Certificate.loadPEM(block) for block in blocks]
