"""The client's side of WAMP challenge-response authentication: ``ticket`` and ``wampcra``.

Pure functions: :func:`answer_challenge` turns a ``CHALLENGE`` (method and extra) and the
credentials given to :func:`promisifier.client.connect` into the ``AUTHENTICATE``
signature.

Credentials are a dict: ``{"ticket": "..."}`` for ticket authentication,
``{"secret": "..."}`` for WAMP-CRA (the secret, or the password when the router sends a
salt: the key is then derived with PBKDF2-HMAC-SHA256 as the specification says).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any, Mapping


class AuthenticationError(ValueError):
    """The client cannot answer a challenge (unknown method, missing credential, bad extra)."""


def derive_key(secret: str | bytes, salt: str | bytes, iterations: int = 1000, keylen: int = 32) -> bytes:
    """The WAMP-CRA key for a salted secret: base64(PBKDF2-HMAC-SHA256(secret, salt)).

    The base64 text (as ASCII bytes) is what is then used as the HMAC key, as the other
    WAMP implementations do.
    """
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if isinstance(salt, str):
        salt = salt.encode("utf-8")
    key = hashlib.pbkdf2_hmac("sha256", secret, salt, iterations, keylen)
    return base64.b64encode(key)


def compute_signature(key: str | bytes, challenge: str | bytes) -> str:
    """The WAMP-CRA signature: base64(HMAC-SHA256(key, challenge)) as a string."""
    if isinstance(key, str):
        key = key.encode("utf-8")
    if isinstance(challenge, str):
        challenge = challenge.encode("utf-8")
    digest = hmac.new(key, challenge, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


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
    raise AuthenticationError(f"authentication method {method!r} is not supported by this client")


def default_authmethods(credentials: Mapping[str, Any] | None) -> list[str] | None:
    """The methods to announce in HELLO for these credentials (None: anonymous only)."""
    if not credentials:
        return None
    methods = []
    if "ticket" in credentials:
        methods.append("ticket")
    if "secret" in credentials:
        methods.append("wampcra")
    return methods or None


__all__ = [
    "AuthenticationError",
    "answer_challenge",
    "compute_signature",
    "default_authmethods",
    "derive_key",
    "wampcra_signature",
]
