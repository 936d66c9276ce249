"""WAMP-Cryptosign signatures (Ed25519, RFC 8032), used by both peers.

The router sends a random 32-byte challenge (hex); the client signs it, XOR'ed with the TLS
channel id when ``tls-unique`` channel binding is in use, and answers with the hex of the
64-byte signature followed by the 32 bytes it signed. The Ed25519 arithmetic is the
``cryptography`` package's.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

#: bytes of a challenge, a public key, a private key seed and a TLS channel id
KEY_SIZE = 32
SIGNATURE_SIZE = 64
#: the channel binding types this implementation knows
CHANNEL_BINDINGS = ("tls-unique",)


class KeyFormatError(ValueError):
    """A key could not be read (wrong length, not hex, unknown file format)."""


def new_challenge() -> bytes:
    """A fresh random challenge."""
    return os.urandom(KEY_SIZE)


def _hex_bytes(text: str, size: int, what: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise KeyFormatError(f"{what}: expected {size * 2} hex digits") from None
    if len(value) != size:
        raise KeyFormatError(f"{what}: expected {size * 2} hex digits, got {len(text)} characters")
    return value


def public_key_from_hex(text: str) -> Ed25519PublicKey:
    """The Ed25519 public key whose 32 bytes ``text`` spells in hex."""
    return Ed25519PublicKey.from_public_bytes(_hex_bytes(text, KEY_SIZE, "an Ed25519 public key"))


def normalize_public_key(text: str) -> str:
    """``text`` as lower-case hex, after checking that it is a 32-byte public key."""
    public_key_from_hex(text)
    return text.lower()


def public_key_hex(private_key: Ed25519PrivateKey) -> str:
    """The hex of ``private_key``'s public key, as HELLO.Details.authextra.pubkey carries it."""
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def load_private_key(value: str | bytes | Ed25519PrivateKey) -> Ed25519PrivateKey:
    """An Ed25519 private key from a hex seed (64 hex digits), raw 32 seed bytes, or the
    name of a file holding one of these, an OpenSSH private key (``ssh-keygen -t
    ed25519``, without passphrase) or a PKCS#8 PEM key (``openssl genpkey -algorithm
    ed25519``)."""
    if isinstance(value, Ed25519PrivateKey):
        return value
    if isinstance(value, bytes):
        if len(value) == KEY_SIZE:
            return Ed25519PrivateKey.from_private_bytes(value)
        return _key_from_file_content(value, "the key bytes")
    text = value.strip()
    if len(text) == 2 * KEY_SIZE and all(c in "0123456789abcdefABCDEF" for c in text):
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text))
    path = Path(os.path.expanduser(text))
    if not path.is_file():
        raise KeyFormatError("private key: neither 64 hex digits nor the name of an existing file")
    return _key_from_file_content(path.read_bytes(), str(path))


def _key_from_file_content(data: bytes, where: str) -> Ed25519PrivateKey:
    if len(data) == KEY_SIZE:
        return Ed25519PrivateKey.from_private_bytes(data)
    stripped = data.strip()
    if len(stripped) == 2 * KEY_SIZE:
        try:
            return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(stripped.decode("ascii")))
        except (ValueError, UnicodeDecodeError):
            pass
    loaders = (serialization.load_ssh_private_key, serialization.load_pem_private_key)
    for loader in loaders:
        try:
            key = loader(data, password=None)
        except (ValueError, TypeError):
            continue
        if isinstance(key, Ed25519PrivateKey):
            return key
        raise KeyFormatError(f"{where}: not an Ed25519 key ({type(key).__name__})")
    raise KeyFormatError(
        f"{where}: not an Ed25519 private key (hex seed, 32 raw bytes, OpenSSH or PEM without passphrase)"
    )


def signed_message(challenge: bytes, channel_id: bytes | None) -> bytes:
    """What gets signed: the challenge, XOR'ed with the channel id when binding is active."""
    if channel_id is None:
        return challenge
    if len(channel_id) != KEY_SIZE or len(challenge) != KEY_SIZE:
        raise ValueError("challenge and channel id must be 32 bytes each")
    return bytes(a ^ b for a, b in zip(challenge, channel_id, strict=True))


def sign_challenge(private_key: Ed25519PrivateKey, challenge_hex: str, channel_id: bytes | None = None) -> str:
    """The AUTHENTICATE signature for a CHALLENGE's ``challenge``: hex(signature + message)."""
    message = signed_message(_hex_bytes(challenge_hex, KEY_SIZE, "the cryptosign challenge"), channel_id)
    return (private_key.sign(message) + message).hex()


def verify_signature(public_key: Ed25519PublicKey, message: bytes, signature_hex: object) -> bool:
    """True when ``signature_hex`` is the hex of a valid signature over ``message``
    followed by ``message`` itself (so a signature over another challenge fails)."""
    if not isinstance(signature_hex, str) or len(signature_hex) != 2 * (SIGNATURE_SIZE + KEY_SIZE):
        return False
    try:
        signed = bytes.fromhex(signature_hex)
    except ValueError:
        return False
    if signed[SIGNATURE_SIZE:] != message:
        return False
    try:
        public_key.verify(signed[:SIGNATURE_SIZE], message)
    except InvalidSignature:
        return False
    return True
