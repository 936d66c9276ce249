"""WAMP-CRA (challenge-response authentication) signatures, used by both peers.

The router signs the challenge it sent to check the client's AUTHENTICATE; the client
signs it to answer. With a salt, the HMAC key is derived from the secret with PBKDF2.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def derive_key(secret: str | bytes, salt: str | bytes, iterations: int = 1000, keylen: int = 32) -> bytes:
    """The WAMP-CRA key for a salted secret: base64(PBKDF2-HMAC-SHA256(secret, salt)).

    The base64 text (as ASCII bytes) is what is then used as the HMAC key, as the other
    WAMP implementations do.
    """
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if isinstance(salt, str):
        salt = salt.encode("utf-8")
    return base64.b64encode(hashlib.pbkdf2_hmac("sha256", secret, salt, iterations, keylen))


def compute_signature(key: str | bytes, challenge: str | bytes) -> str:
    """The WAMP-CRA signature: base64(HMAC-SHA256(key, challenge)) as a string."""
    if isinstance(key, str):
        key = key.encode("utf-8")
    if isinstance(challenge, str):
        challenge = challenge.encode("utf-8")
    return base64.b64encode(hmac.new(key, challenge, hashlib.sha256).digest()).decode("ascii")
