"""The client's side of WAMP challenge-response authentication: ``ticket`` and ``wampcra``.

Pure functions: :func:`answer_challenge` turns a ``CHALLENGE`` (method and extra) and the
credentials given to :func:`promisifier.client.connect` into the ``AUTHENTICATE``
signature.

Credentials are a dict: ``{"ticket": "..."}`` for ticket authentication,
``{"secret": "..."}`` for WAMP-CRA (the secret, or the password when the router sends a
salt: the key is then derived with PBKDF2-HMAC-SHA256 as the specification says).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promisifier.wire.cra import compute_signature, derive_key


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
