"""The ``auth`` table of a relay listener -> :class:`~promisifier.router.auth.AuthConfig`.

Part of reading the relay's configuration file (:mod:`promisifier.relay.relay_config`),
checked the same way: every problem names its key path. It covers the methods a listener
accepts and their principals (tickets, WAMP-CRA users, Cryptosign keys, SCRAM
credentials, TLS client certificates), JWT keys and dynamic authenticators.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from promisifier.relay.checks import Checker, describe, key_path
from promisifier.router.auth import AUTH_METHODS, AuthConfig, Principal
from promisifier.router.cryptosign import CryptosignPrincipal
from promisifier.router.jwt_tickets import ALGORITHMS as JWT_ALGORITHMS
from promisifier.router.jwt_tickets import JwtConfig
from promisifier.router.scram import ScramPrincipal
from promisifier.router.tls_auth import TlsPrincipal, normalize_fingerprint
from promisifier.wire import cryptosign, scram

_JWT_KEY_SOURCES = ("secret", "public_key_file", "jwks_file")
_SCRAM_KEYS = ("stored-key", "server-key", "autobahn-stored-key", "autobahn-server-key")


def read_auth(check: Checker, path: str, value: Any, base_dir: str) -> AuthConfig:
    table = check.table(
        value,
        path,
        ("methods", "anonymous_role", "ticket", "wampcra", "cryptosign", "scram", "tls", "revoke_on_reload"),
    )
    methods = check.strings(table, "methods", path, ("anonymous",), choices=AUTH_METHODS)
    anonymous_role = check.string(table, "anonymous_role", path, "anonymous")

    ticket_path = key_path(path, "ticket")
    ticket = check.table(table.get("ticket", {}), ticket_path, ("principals", "authenticator", "jwt"))
    tickets = {
        authid: Principal(authid, check.string(p, "role", p_path), check.string(p, "ticket", p_path))
        for authid, p_path, p in _principals(check, ticket, "principals", ticket_path, ("ticket", "role"))
    }
    authenticator = check.dotted(ticket, "authenticator", ticket_path, callable_=True)
    ticket_jwt = _jwt(check, key_path(ticket_path, "jwt"), ticket["jwt"], base_dir) if "jwt" in ticket else None

    cra_path = key_path(path, "wampcra")
    cra = check.table(table.get("wampcra", {}), cra_path, ("users",))
    users = {}
    for authid, u_path, u in _principals(
        check, cra, "users", cra_path, ("secret", "role", "salt", "iterations", "keylen")
    ):
        salt = check.string(u, "salt", u_path, None)
        if salt is None:
            for key in ("iterations", "keylen"):
                if key in u:
                    check.error(
                        key_path(u_path, key),
                        f"{describe(u[key])} given without a salt; it applies to salted secrets only",
                    )
        users[authid] = Principal(
            authid,
            check.string(u, "role", u_path),
            check.string(u, "secret", u_path),
            salt=salt,
            iterations=check.integer(u, "iterations", u_path, 1000, minimum=1),
            keylen=check.integer(u, "keylen", u_path, 32, minimum=1),
        )

    signers, signer_authenticator = _cryptosign(check, key_path(path, "cryptosign"), table.get("cryptosign", {}))
    scram_users = _scram(check, key_path(path, "scram"), table.get("scram", {}))
    tls_users = _tls_principals(check, key_path(path, "tls"), table.get("tls", {}))

    methods_path = key_path(path, "methods")
    if "ticket" in methods and not tickets and authenticator is None and ticket_jwt is None:
        check.error(
            methods_path,
            "'ticket' is enabled, but there are no ticket.principals, no ticket.authenticator and no ticket.jwt",
        )
    if "wampcra" in methods and not users:
        check.error(methods_path, "'wampcra' is enabled, but there are no wampcra.users")
    if "cryptosign" in methods and not signers and signer_authenticator is None:
        check.error(
            methods_path,
            "'cryptosign' is enabled, but there are no cryptosign.principals and no cryptosign.authenticator",
        )
    if "scram" in methods and not scram_users:
        check.error(methods_path, "'scram' is enabled, but there are no scram.principals")
    if "tls" in methods and not tls_users:
        check.error(methods_path, "'tls' is enabled, but there are no tls.principals")
    return AuthConfig(
        methods=methods,
        anonymous_role=anonymous_role,
        tickets=tickets,
        ticket_authenticator=authenticator,
        ticket_jwt=ticket_jwt,
        wampcra=users,
        cryptosign=signers,
        cryptosign_authenticator=signer_authenticator,
        scram=scram_users,
        tls=tls_users,
        revoke_on_reload=check.boolean(table, "revoke_on_reload", path, False),
    )


def _tls_principals(check: Checker, path: str, value: Any) -> dict[str, TlsPrincipal]:
    """``[auth.tls]``: principals known by their client certificate's fingerprint or subject."""
    table = check.table(value, path, ("principals",))
    found = {}
    for authid, p_path, p in _principals(check, table, "principals", path, ("role", "fingerprints", "subjects")):
        fingerprints = []
        for index, text in enumerate(check.strings(p, "fingerprints", p_path, ())):
            try:
                fingerprints.append(normalize_fingerprint(text))
            except ValueError:
                check.expected(
                    key_path(key_path(p_path, "fingerprints"), index), "a SHA-256 fingerprint (64 hex digits)", text
                )
        subjects = check.strings(p, "subjects", p_path, ())
        if "fingerprints" not in p and "subjects" not in p:
            check.error(p_path, "expected fingerprints or subjects (or both)")
        found[authid] = TlsPrincipal(authid, check.string(p, "role", p_path), tuple(fingerprints), subjects)
    return found


def _cryptosign(check: Checker, path: str, value: Any) -> tuple[dict[str, CryptosignPrincipal], str | None]:
    """``[auth.cryptosign]``: principals with their authorized public keys, and the
    dynamic authenticator."""
    table = check.table(value, path, ("principals", "authenticator"))
    principals: dict[str, CryptosignPrincipal] = {}
    owner: dict[str, str] = {}
    for authid, p_path, p in _principals(check, table, "principals", path, ("authorized_keys", "role")):
        keys_path = key_path(p_path, "authorized_keys")
        keys = check.strings(p, "authorized_keys", p_path, ())
        if "authorized_keys" not in p:
            check.error(keys_path, "missing; expected an array of hex Ed25519 public keys (64 hex digits each)")
        good = []
        for index, key in enumerate(keys):
            try:
                key = cryptosign.normalize_public_key(key)
            except ValueError:
                check.expected(key_path(keys_path, index), "an Ed25519 public key as 64 hex digits", key)
                continue
            if key in owner:
                check.error(key_path(keys_path, index), f"this key is already authorized for {owner[key]!r}")
                continue
            owner[key] = authid
            good.append(key)
        principals[authid] = CryptosignPrincipal(authid, check.string(p, "role", p_path), tuple(good))
    return principals, check.dotted(table, "authenticator", path, callable_=True)


def _jwt(check: Checker, path: str, value: Any, base_dir: str) -> JwtConfig | None:
    """``[auth.ticket.jwt]``: how tickets that are JWTs are verified."""
    table = check.table(
        value,
        path,
        ("algorithms", *_JWT_KEY_SOURCES, "audience", "issuer", "authid_claim", "role_claim", "leeway"),
    )
    errors = len(check.errors)
    algorithms = check.strings(table, "algorithms", path, (), choices=JWT_ALGORITHMS)
    if "algorithms" not in table:
        check.error(key_path(path, "algorithms"), f"missing; expected an array from {', '.join(JWT_ALGORITHMS)}")
    sources = [key for key in _JWT_KEY_SOURCES if key in table]
    if len(sources) != 1:
        check.error(path, f"expected exactly one of {', '.join(_JWT_KEY_SOURCES)}; got {len(sources)}")
    hmac_only = all(a.startswith("HS") for a in algorithms)
    if "secret" in table and algorithms and not hmac_only:
        check.error(key_path(path, "secret"), "a secret verifies HS256/HS384/HS512 only; use public_key_file")
    if {"public_key_file", "jwks_file"} & set(table) and algorithms and any(a.startswith("HS") for a in algorithms):
        check.error(key_path(path, "algorithms"), "HS* algorithms need a secret, not a public key")
    key = check.string(table, "secret", path, None)
    jwks = None
    for name in ("public_key_file", "jwks_file"):
        file_name = check.string(table, name, path, None)
        if file_name is None:
            continue
        full = os.path.join(base_dir, file_name)
        try:
            text = Path(full).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            check.error(key_path(path, name), f"cannot read {full!r}: {getattr(error, 'strerror', None) or error}")
            continue
        if name == "public_key_file":
            key = text
            if "PUBLIC KEY" not in text:
                check.error(key_path(path, name), f"{full!r} is not a PEM public key (-----BEGIN PUBLIC KEY-----)")
        else:
            jwks = text
    audience = check.string(table, "audience", path, None)
    issuer = check.string(table, "issuer", path, None)
    authid_claim = check.string(table, "authid_claim", path, "sub")
    role_claim = check.string(table, "role_claim", path, "role")
    leeway = check.seconds(table, "leeway", path, 0.0) if "leeway" in table else 0.0
    if len(check.errors) > errors:
        return None
    try:
        return JwtConfig(algorithms, key, jwks, audience, issuer, authid_claim, role_claim, leeway)
    except Exception as error:  # noqa: BLE001 - PyJWT's key parsing raises several kinds
        check.error(path, f"unusable key: {error}")
        return None


def _scram(check: Checker, path: str, value: Any) -> dict[str, ScramPrincipal]:
    """``[auth.scram]``: principals with the stored form of their password (what
    ``python -m promisifier scram-hash`` prints)."""
    table = check.table(value, path, ("principals",))
    found = {}
    known = ("role", "kdf", "iterations", "memory", "salt", *_SCRAM_KEYS)
    for authid, p_path, p in _principals(check, table, "principals", path, known):
        role = check.string(p, "role", p_path)
        kdf = check.string(p, "kdf", p_path, choices=(*scram.KDFS, *scram.KDF_ALIASES))
        kdf = scram.KDF_ALIASES.get(kdf, kdf)
        iterations = check.integer(p, "iterations", p_path, 1, minimum=1)
        if "iterations" not in p:
            check.error(key_path(p_path, "iterations"), "missing; expected an integer >= 1")
        memory = check.integer(p, "memory", p_path, None, minimum=8)
        if kdf == "argon2id13" and memory is None and "memory" not in p:
            check.error(key_path(p_path, "memory"), "missing; argon2id13 needs the memory cost in KiB")
        if kdf == "pbkdf2" and "memory" in p:
            check.error(key_path(p_path, "memory"), "given, but pbkdf2 has no memory cost")
        salt = _base64(check, p, "salt", p_path, None)
        keys = {
            name: _base64(check, p, name, p_path, 32 if name in p or not name.startswith("autobahn") else None)
            for name in _SCRAM_KEYS
        }
        if kdf == "pbkdf2":
            for name in _SCRAM_KEYS[2:]:
                if name in p:
                    check.error(key_path(p_path, name), "given, but pbkdf2's keys are the same in both dialects")
        credential = scram.StoredCredential(
            kdf or "pbkdf2",
            iterations,
            memory,
            salt or b"",
            keys["stored-key"] or b"",
            keys["server-key"] or b"",
            keys["autobahn-stored-key"],
            keys["autobahn-server-key"],
        )
        found[authid] = ScramPrincipal(authid, role, credential)
    return found


def _base64(check: Checker, table: dict, key: str, path: str, size: int | None) -> bytes | None:
    """A base64 string (of ``size`` bytes when given); missing is an error unless optional."""
    here = key_path(path, key)
    if key not in table:
        if size is not None or key == "salt":
            check.error(here, "missing; expected a base64 string (as `python -m promisifier scram-hash` prints)")
        return None
    what = f"base64 of {size} bytes" if size else "a base64 string"
    text = check.string(table, key, path, None, what=what)
    if text is None:
        return None
    try:
        decoded = scram.unb64(text, key)
    except scram.ScramError:
        check.expected(here, what, text)
        return None
    if size is not None and len(decoded) != size:
        check.expected(here, what, text)
        return None
    return decoded


def _principals(
    check: Checker, table: dict, key: str, path: str, known: tuple[str, ...]
) -> list[tuple[str, str, dict]]:
    """A table of principals keyed by authid: (authid, path, principal's table)."""
    here = key_path(path, key)
    principals = table.get(key, {})
    if not isinstance(principals, dict):
        check.expected(here, "a table of principals by authid", principals)
        return []
    return [
        (authid, key_path(here, authid), check.table(value, key_path(here, authid), known))
        for authid, value in principals.items()
    ]
