"""The client's side of WAMP authentication: ticket, WAMP-CRA, WAMP-Cryptosign, WAMP-SCRAM.

:func:`answer_challenge` turns a ``CHALLENGE`` (method and extra) and the credentials given
to :func:`promisifier.client.connect` into the ``AUTHENTICATE`` signature;
:class:`ClientAuth` is one login's state (what HELLO announces, the SCRAM exchange, the
check of the router's SCRAM signature in WELCOME).

Credentials are a dict:

* ``{"ticket": "..."}``: ticket authentication (a JWT is a ticket too);
* ``{"secret": "..."}``: WAMP-CRA (the secret, or the password when the router sends a
  salt: the key is then derived with PBKDF2-HMAC-SHA256 as the specification says);
* ``{"private_key": ...}``: WAMP-Cryptosign, with a hex Ed25519 seed, 32 raw bytes, or
  the name of a key file (see :func:`promisifier.wire.cryptosign.load_private_key`); add
  ``"channel_binding": "tls-unique"`` to bind the signature to the TLS connection;
* ``{"password": "..."}``: WAMP-SCRAM; both the specification's ``wamp-scram`` and
  autobahn's/Crossbar's ``scram`` are offered (see :mod:`promisifier.wire.scram`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any

from promisifier.wire import cryptosign, scram
from promisifier.wire.cra import compute_signature, derive_key

#: lowest KDF costs a router may ask for before the client refuses (a rogue router could
#: otherwise collect a cheap hash of the password), and highest (so it cannot make the
#: client spend minutes or gigabytes)
SCRAM_LIMITS = {
    "pbkdf2": {"iterations": (1000, 10_000_000)},
    "argon2id13": {"iterations": (1, 100_000), "memory": (512, 4 * 1024 * 1024)},
}


class AuthenticationError(ValueError):
    """The client cannot answer a challenge (unknown method, missing credential, bad extra)."""


def wampcra_signature(secret: str | bytes, extra: Mapping[str, Any]) -> str:
    """The signature for a ``wampcra`` CHALLENGE's ``extra`` (challenge, salt, ...)."""
    challenge = extra.get("challenge")
    if not isinstance(challenge, str):
        raise AuthenticationError("wampcra CHALLENGE without a challenge string")
    salt = extra.get("salt")
    if salt is not None:
        iterations = extra.get("iterations", 1000)
        keylen = extra.get("keylen", 32)
        if not isinstance(salt, (str, bytes)) or type(iterations) is not int or type(keylen) is not int:
            raise AuthenticationError("wampcra CHALLENGE with a malformed salt, iterations or keylen")
        if not 0 < iterations <= 10_000_000 or not 0 < keylen <= 1024:
            raise AuthenticationError(f"wampcra CHALLENGE with out-of-range iterations={iterations} keylen={keylen}")
        key: str | bytes = derive_key(secret, salt, iterations, keylen)
    else:
        key = secret
    return compute_signature(key, challenge)


def answer_challenge(method: str, extra: Mapping[str, Any], credentials: Mapping[str, Any] | None) -> str:
    """The ``AUTHENTICATE`` signature for a CHALLENGE with ``method`` and ``extra``.

    Raises :class:`AuthenticationError` when the method is not supported or the
    credential it needs is missing.
    """
    credentials = credentials or {}
    if method == "ticket":
        ticket = credentials.get("ticket")
        if not isinstance(ticket, str):
            raise AuthenticationError("the router asked for a ticket, but credentials has no 'ticket'")
        return ticket
    if method == "wampcra":
        secret = credentials.get("secret")
        if not isinstance(secret, (str, bytes)):
            raise AuthenticationError("the router asked for wampcra, but credentials has no 'secret'")
        return wampcra_signature(secret, extra)
    if method == "cryptosign":
        return cryptosign_signature(extra, credentials, None)
    raise AuthenticationError(f"authentication method {method!r} is not supported by this client")


def cryptosign_signature(
    extra: Mapping[str, Any], credentials: Mapping[str, Any], channel_id: Callable[[str], bytes | None] | None
) -> str:
    """The signature for a ``cryptosign`` CHALLENGE: over the challenge, XOR'ed with the TLS
    channel id when ``credentials["channel_binding"]`` asked for binding (``channel_id``
    reads it from the connection). The router must bind exactly as asked."""
    challenge = extra.get("challenge")
    if not isinstance(challenge, str):
        raise AuthenticationError("cryptosign CHALLENGE without a challenge string")
    asked = credentials.get("channel_binding")
    if extra.get("channel_binding") != asked:
        raise AuthenticationError(
            f"cryptosign CHALLENGE with channel binding {extra.get('channel_binding')!r}, asked for {asked!r}"
        )
    bound = None
    if asked is not None:
        bound = channel_id(asked) if channel_id is not None else None
        if bound is None:
            raise AuthenticationError(f"cryptosign: no {asked} channel id on this connection (is it TLS?)")
    try:
        return cryptosign.sign_challenge(private_key(credentials), challenge, bound)
    except ValueError as error:
        raise AuthenticationError(f"cryptosign: {error}") from None


def private_key(credentials: Mapping[str, Any]) -> Any:
    """The Ed25519 key of ``credentials["private_key"]``."""
    value = credentials.get("private_key")
    if value is None:
        raise AuthenticationError("the router asked for cryptosign, but credentials has no 'private_key'")
    try:
        return cryptosign.load_private_key(value)
    except ValueError as error:
        raise AuthenticationError(f"credentials['private_key']: {error}") from None


def default_authmethods(credentials: Mapping[str, Any] | None) -> list[str] | None:
    """The methods to announce in HELLO for these credentials (None: anonymous only)."""
    if not credentials:
        return None
    methods = []
    if "private_key" in credentials:
        methods.append("cryptosign")
    if "password" in credentials:
        methods += ["wamp-scram", "scram"]
    if "ticket" in credentials:
        methods.append("ticket")
    if "secret" in credentials:
        methods.append("wampcra")
    return methods or None


class ClientAuth:
    """One login: HELLO's authextra, the answers to CHALLENGE, the check of WELCOME."""

    def __init__(
        self,
        authid: str | None,
        authmethods: list[str] | None,
        credentials: Mapping[str, Any] | None,
        channel_id: Callable[[str], bytes | None] | None = None,
    ):
        self.authid = authid
        #: the connection's TLS channel id for a binding type (None: not TLS)
        self.channel_id = channel_id
        self.credentials = dict(credentials or {})
        self.authmethods = authmethods
        self._scram_nonce: str | None = None
        self._scram: tuple[str, bytes, bytes] | None = None  # (method, salted password, AuthMessage)

    def hello_authextra(self) -> dict[str, Any]:
        """HELLO.Details.authextra: the cryptosign public key, the SCRAM client nonce."""
        methods = self.authmethods or []
        found: dict[str, Any] = {}
        if "cryptosign" in methods:
            found["pubkey"] = cryptosign.public_key_hex(private_key(self.credentials))
            binding = self.credentials.get("channel_binding")
            if binding is not None:
                if binding not in cryptosign.CHANNEL_BINDINGS:
                    raise AuthenticationError(f"unknown channel binding {binding!r}; known: tls-unique")
                found["channel_binding"] = binding
        if "wamp-scram" in methods or "scram" in methods:
            self._scram_nonce = scram.new_nonce()
            found["nonce"] = self._scram_nonce
            found["channel_binding"] = None
        return found

    def answer(self, method: str, extra: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """AUTHENTICATE's signature and Extra for a CHALLENGE."""
        if method in scram.DIALECTS:
            return self._answer_scram(method, extra)
        if method == "cryptosign":
            return cryptosign_signature(extra, self.credentials, self.channel_id), {}
        return answer_challenge(method, extra, self.credentials), {}

    def _answer_scram(self, method: str, extra: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        password = self.credentials.get("password")
        if not isinstance(password, str):
            raise AuthenticationError(f"the router asked for {method}, but credentials has no 'password'")
        if not self.authid or self._scram_nonce is None:
            raise AuthenticationError(f"{method} needs an authid")
        dialect = scram.DIALECTS[method]
        nonce, salt, iterations, memory = (extra.get(k) for k in ("nonce", "salt", "iterations", "memory"))
        try:
            kdf = scram.canonical_kdf(extra.get("kdf"))
            salt_bytes = scram.unb64(salt, "salt")
        except scram.ScramError as error:
            raise AuthenticationError(f"{method} CHALLENGE: {error}") from None
        if not scram.nonce_extends(nonce, self._scram_nonce):
            raise AuthenticationError(f"{method} CHALLENGE: the nonce does not extend the client's")
        for name, value in (("iterations", iterations), ("memory", memory)):
            bounds = SCRAM_LIMITS[kdf].get(name)
            if bounds is None:
                continue
            if type(value) is not int or not bounds[0] <= value <= bounds[1]:
                raise AuthenticationError(f"{method} CHALLENGE: {name}={value!r} is outside {bounds[0]}..{bounds[1]}")
        assert isinstance(nonce, str) and isinstance(salt, str) and isinstance(iterations, int)
        try:
            salted = scram.salted_password(password, salt_bytes, kdf, iterations, memory, dialect)
            message = scram.auth_message(self.authid, self._scram_nonce, nonce, salt, iterations, dialect)
        except scram.ScramError as error:
            raise AuthenticationError(f"{method}: {error}") from None
        self._scram = (method, salted, message)
        answer_extra = {"nonce": nonce, "channel_binding": None, "cbind_data": None} if dialect == "spec" else {}
        return scram.client_proof(salted, message), answer_extra

    def check_welcome(self, details: Mapping[str, Any]) -> str | None:
        """None when WELCOME is acceptable; else why not (a wrong SCRAM server signature)."""
        if self._scram is None:
            return None
        method, salted, message = self._scram
        authextra = details.get("authextra")
        authextra = authextra if isinstance(authextra, dict) else {}
        sent = authextra.get("verifier", authextra.get("scram_server_signature"))
        if isinstance(sent, str) and sent.startswith("v="):
            sent = sent[2:]  # the RFC 5802 form, as the specification's example shows it
        expected = scram.server_signature(scram.server_key(salted), message)
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
            return f"{method}: the router's signature in WELCOME is wrong: it does not know the password"
        return None


__all__ = [
    "AuthenticationError",
    "ClientAuth",
    "answer_challenge",
    "compute_signature",
    "default_authmethods",
    "derive_key",
    "wampcra_signature",
]
