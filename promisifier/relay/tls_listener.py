"""TLS listeners that require client certificates from a configured CA.

Twisted's ``ssl:`` endpoint strings cannot ask for a client certificate, so a listener
with ``client_ca`` gets its endpoint from here: the same arguments (port, privateKey,
certKey, extraCertChain, dhParameters, interface, backlog, sslmethod) and a TLS context
that requires a certificate signed by one of the CAs in ``client_ca``. A client without
one, or with one from another CA, fails in the TLS handshake and never reaches WAMP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from promisifier.relay import endpoints as ep

_PEM_END = b"-----END CERTIFICATE-----"


def ca_certificates(ca_file: str) -> list[Any]:
    """Every certificate in a PEM file (Twisted ``Certificate``s). Raises ValueError."""
    from twisted.internet import ssl

    data = Path(ca_file).read_bytes()
    blocks = [block + _PEM_END for block in data.split(_PEM_END) if b"-----BEGIN CERTIFICATE-----" in block]
    if not blocks:
        raise ValueError(f"{ca_file!r} holds no PEM certificate")
    try:
        return [ssl.Certificate.loadPEM(block) for block in blocks]
    except Exception as error:  # noqa: BLE001 - OpenSSL's errors are of several kinds
        raise ValueError(f"{ca_file!r}: not a readable PEM certificate: {error}") from None


def server_endpoint(reactor: Any, description: str, client_ca: str | None = None) -> Any:
    """The server endpoint of a listener: Twisted's own for its endpoint string, or, with
    ``client_ca``, a TLS endpoint that requires client certificates from those CAs."""
    from twisted.internet.endpoints import serverFromString

    if client_ca is None:
        return serverFromString(reactor, ep.with_backlog(description))
    from twisted.internet import ssl
    from twisted.internet.endpoints import SSL4ServerEndpoint
    from twisted.python.filepath import FilePath

    parsed = ep.parse_endpoint(description)
    if parsed.kind != "ssl":
        raise ValueError(f"client_ca needs an ssl: endpoint, not {parsed.kind}:")
    options = parsed.options
    if not parsed.args:
        raise ValueError(f"{description!r}: no port")
    key_file = options.get("privateKey", "server.pem")
    key_pem = Path(key_file).read_bytes()
    cert_pem = Path(options.get("certKey", key_file)).read_bytes()
    private = ssl.PrivateCertificate.loadPEM(key_pem + b"\n" + cert_pem)
    kwargs: dict[str, Any] = {}
    if options.get("sslmethod"):
        kwargs["method"] = getattr(ssl.SSL, options["sslmethod"])
    if options.get("extraCertChain"):
        kwargs["extraCertChain"] = [cert.original for cert in ca_certificates(options["extraCertChain"])]
    if options.get("dhParameters"):
        kwargs["dhParameters"] = ssl.DiffieHellmanParameters.fromFile(FilePath(options["dhParameters"]))
    context = ssl.CertificateOptions(
        privateKey=private.privateKey.original,
        certificate=private.original,
        verify=True,
        caCerts=[cert.original for cert in ca_certificates(client_ca)],
        requireCertificate=True,
        **kwargs,
    )
    return SSL4ServerEndpoint(
        reactor,
        int(parsed.args[0]),
        context,
        backlog=int(options.get("backlog", ep.DEFAULT_BACKLOG)),
        interface=options.get("interface", ""),
    )
