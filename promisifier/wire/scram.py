"""WAMP-SCRAM (RFC 5802 with SHA-256, Argon2id or PBKDF2), used by both peers.

Two dialects are in use, and both peers here speak both:

``spec``: the WAMP specification's text. authmethod ``wamp-scram``; KDF names ``argon2id13``
and ``pbkdf2``; the salted password is the KDF's 32 raw bytes; the AuthMessage carries
``c=biws`` (base64 of ``n,,``, no channel binding); the server signature comes back in
WELCOME's ``authextra.verifier``.

``autobahn``: what autobahn-python's client and Crossbar's router speak. authmethod
``scram``; KDF name ``argon2id-13``; the salted password is the *base64 text* (no padding)
of the Argon2 hash; the AuthMessage carries ``c=`` (empty) and the authid without escaping;
the server signature comes back in ``authextra.scram_server_signature``. (autobahn-python's
PBKDF2 path fails before it sends anything, so with autobahn only Argon2id works.)

Argon2id is argon2-cffi's; PBKDF2 and HMAC are the standard library's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stringprep
import unicodedata
from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw

#: authmethod -> dialect
DIALECTS = {"wamp-scram": "spec", "scram": "autobahn"}
#: KDF names as the configuration and the spec say them; "argon2id-13" is autobahn's name
KDFS = ("argon2id13", "pbkdf2")
KDF_ALIASES = {"argon2id-13": "argon2id13"}
#: defaults of `python -m promisifier scram-hash`: Argon2id with 64 MiB, 3 passes (the
#: argon2-cffi/RFC 9106 second recommendation); PBKDF2 with OWASP's 600,000 iterations
DEFAULT_ARGON2_ITERATIONS = 3
DEFAULT_ARGON2_MEMORY = 65536
DEFAULT_PBKDF2_ITERATIONS = 600_000
NONCE_SIZE = 16
SALT_SIZE = 16


class ScramError(ValueError):
    """A SCRAM message or parameter is malformed."""


# -- SASLprep (RFC 4013) ----------------------------------------------------------------


def saslprep(text: str) -> str:
    """``text`` normalized by the SASLprep profile of stringprep (RFC 4013), with the
    standard library's stringprep tables. Raises :class:`ScramError` for prohibited text."""
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c))
    normalized = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
        stringprep.in_table_a1,
    )
    for c in normalized:
        if any(table(c) for table in prohibited):
            raise ScramError(f"character {c!r} is not allowed in a SCRAM name or password")
    if any(stringprep.in_table_d1(c) for c in normalized):
        if any(stringprep.in_table_d2(c) for c in normalized):
            raise ScramError("mixed right-to-left and left-to-right text")
        if not (stringprep.in_table_d1(normalized[0]) and stringprep.in_table_d1(normalized[-1])):
            raise ScramError("right-to-left text must start and end with a right-to-left character")
    return normalized


# -- keys ----------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise ScramError(f"{what}: expected a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ScramError(f"{what}: not base64") from None


def canonical_kdf(name: object) -> str:
    """The configuration's KDF name for ``name`` (which may be autobahn's spelling)."""
    kdf = KDF_ALIASES.get(name, name) if isinstance(name, str) else None
    if kdf is None or kdf not in KDFS:
        raise ScramError(f"unknown KDF {name!r}; known: {', '.join(KDFS)} (or argon2id-13)")
    return kdf


def salted_password(
    password: str, salt: bytes, kdf: str, iterations: int, memory: int | None, dialect: str = "spec"
) -> bytes:
    """SaltedPassword = KDF(Normalize(password), salt, ...), in ``dialect``'s encoding."""
    secret = saslprep(password).encode("utf-8")
    kdf = canonical_kdf(kdf)
    if kdf == "pbkdf2":
        return hashlib.pbkdf2_hmac("sha256", secret, salt, iterations, 32)
    if not memory:
        raise ScramError("argon2id13 needs a memory parameter")
    raw = hash_secret_raw(
        secret, salt, time_cost=iterations, memory_cost=memory, parallelism=1, hash_len=32, type=Type.ID, version=19
    )
    if dialect == "autobahn":
        return base64.b64encode(raw).rstrip(b"=")
    return raw


def client_key(salted: bytes) -> bytes:
    return hmac.new(salted, b"Client Key", hashlib.sha256).digest()


def server_key(salted: bytes) -> bytes:
    return hmac.new(salted, b"Server Key", hashlib.sha256).digest()


def stored_key(salted: bytes) -> bytes:
    return hashlib.sha256(client_key(salted)).digest()


@dataclass(frozen=True)
class StoredCredential:
    """What the router keeps of a password: never the password itself."""

    kdf: str
    iterations: int
    #: KiB, Argon2id only
    memory: int | None
    salt: bytes
    stored_key: bytes
    server_key: bytes
    #: the same for autobahn-python's dialect (Argon2id only; None: that dialect fails)
    autobahn_stored_key: bytes | None = None
    autobahn_server_key: bytes | None = None

    def keys(self, dialect: str) -> tuple[bytes, bytes] | None:
        """(StoredKey, ServerKey) for ``dialect``, or None when this credential has none."""
        if dialect == "spec" or self.kdf == "pbkdf2":
            return self.stored_key, self.server_key
        if self.autobahn_stored_key is None or self.autobahn_server_key is None:
            return None
        return self.autobahn_stored_key, self.autobahn_server_key

    def as_config(self) -> dict[str, object]:
        """The TOML keys of ``[listeners.auth.scram.principals.<authid>]`` (without role)."""
        found: dict[str, object] = {"kdf": self.kdf, "iterations": self.iterations}
        if self.memory is not None:
            found["memory"] = self.memory
        found.update(salt=b64(self.salt), **{"stored-key": b64(self.stored_key), "server-key": b64(self.server_key)})
        if self.autobahn_stored_key is not None and self.autobahn_server_key is not None:
            found["autobahn-stored-key"] = b64(self.autobahn_stored_key)
            found["autobahn-server-key"] = b64(self.autobahn_server_key)
        return found


def hash_password(
    password: str,
    kdf: str = "argon2id13",
    iterations: int | None = None,
    memory: int | None = None,
    salt: bytes | None = None,
) -> StoredCredential:
    """The stored form of ``password``: a fresh random salt, and the keys of both dialects
    (for Argon2id; PBKDF2's keys are the same in both)."""
    kdf = canonical_kdf(kdf)
    salt = salt if salt is not None else os.urandom(SALT_SIZE)
    if kdf == "pbkdf2":
        iterations = iterations or DEFAULT_PBKDF2_ITERATIONS
        memory = None
    else:
        iterations = iterations or DEFAULT_ARGON2_ITERATIONS
        memory = memory or DEFAULT_ARGON2_MEMORY
    spec = salted_password(password, salt, kdf, iterations, memory, "spec")
    credential = StoredCredential(kdf, iterations, memory, salt, stored_key(spec), server_key(spec))
    if kdf == "argon2id13":
        autobahn = base64.b64encode(spec).rstrip(b"=")
        credential = StoredCredential(
            kdf,
            iterations,
            memory,
            salt,
            stored_key(spec),
            server_key(spec),
            stored_key(autobahn),
            server_key(autobahn),
        )
    return credential


# -- the exchange --------------------------------------------------------------------------


def new_nonce() -> str:
    return b64(os.urandom(NONCE_SIZE))


def combined_nonce(client_nonce: str, dialect: str) -> str:
    """CHALLENGE.Extra.nonce: the client's nonce with the server's appended (the spec:
    text appended to text; Crossbar: base64 of the client's bytes and 16 more)."""
    if dialect == "autobahn":
        return b64(unb64(client_nonce, "nonce") + os.urandom(NONCE_SIZE))
    return client_nonce + new_nonce()


def nonce_extends(combined: object, client_nonce: str) -> bool:
    """True when a CHALLENGE nonce begins with the client's nonce, in either dialect."""
    if not isinstance(combined, str) or combined == client_nonce:
        return False
    if combined.startswith(client_nonce):
        return True
    try:
        return unb64(combined, "nonce").startswith(unb64(client_nonce, "nonce"))
    except ScramError:
        return False


def escape(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def auth_message(
    authid: str, client_nonce: str, nonce: str, salt: str, iterations: int, dialect: str = "spec"
) -> bytes:
    """The AuthMessage both sides sign (no channel binding)."""
    name = saslprep(authid)
    if dialect == "autobahn":
        client_first, channel = f"n={name},r={client_nonce}", "c="
    else:
        client_first, channel = f"n={escape(name)},r={client_nonce}", "c=biws"
    server_first = f"r={nonce},s={salt},i={iterations}"
    return f"{client_first},{server_first},{channel},r={nonce}".encode()


def client_proof(salted: bytes, message: bytes) -> str:
    """ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage), base64."""
    key = client_key(salted)
    signature = hmac.new(hashlib.sha256(key).digest(), message, hashlib.sha256).digest()
    return b64(bytes(a ^ b for a, b in zip(key, signature, strict=True)))


def verify_proof(stored: bytes, message: bytes, proof: object) -> bool:
    """True when ``proof`` (base64) recovers a ClientKey whose hash is ``stored``."""
    try:
        received = unb64(proof, "ClientProof")
    except ScramError:
        return False
    signature = hmac.new(stored, message, hashlib.sha256).digest()
    if len(received) != len(signature):
        return False
    recovered = bytes(a ^ b for a, b in zip(received, signature, strict=True))
    return hmac.compare_digest(hashlib.sha256(recovered).digest(), stored)


def server_signature(server: bytes, message: bytes) -> str:
    """ServerSignature = HMAC(ServerKey, AuthMessage), base64."""
    return b64(hmac.new(server, message, hashlib.sha256).digest())
