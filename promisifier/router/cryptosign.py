"""WAMP-Cryptosign on the router: principals known by their Ed25519 public keys.

HELLO.Details.authextra.pubkey names the key the client will sign with. The router
answers with a random 32-byte challenge (XOR'ed with the TLS ``tls-unique`` channel id
when the client asks for that binding over TLS) and, on AUTHENTICATE, checks the
signature first, then looks the key up among the configured principals, then asks the
dynamic authenticator, if any. An unknown key, a key of another authid, a bad signature
and a signature over another challenge all fail the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from promisifier.router.auth_failure import AuthenticationFailed
from promisifier.wire import cryptosign

#: a dynamic cryptosign authenticator: (realm, authid or None, pubkey hex, hello details)
#: -> role name, or a dict with "role" (and optionally "authid"), or a Deferred of either;
#: raise or return None/False to refuse. Called only after the signature was verified.
CryptosignAuthenticator = Callable[[str, "str | None", str, dict[str, Any]], Any]


@dataclass(frozen=True)
class CryptosignPrincipal:
    """A client that may authenticate with any of its ``authorized_keys`` (hex public keys)."""

    authid: str
    role: str
    authorized_keys: tuple[str, ...]

    def __post_init__(self) -> None:
        keys = tuple(cryptosign.normalize_public_key(key) for key in self.authorized_keys)
        object.__setattr__(self, "authorized_keys", keys)


def principals_by_key(principals: Mapping[str, CryptosignPrincipal]) -> dict[str, CryptosignPrincipal]:
    """Public key (lower-case hex) -> principal. A key listed for two principals is an error."""
    by_key: dict[str, CryptosignPrincipal] = {}
    for principal in principals.values():
        for key in principal.authorized_keys:
            other = by_key.setdefault(key, principal)
            if other is not principal:
                raise ValueError(f"public key {key} is authorized for both {other.authid!r} and {principal.authid!r}")
    return by_key


@dataclass(frozen=True)
class CryptosignRequest:
    """What the client asked for in HELLO, and what the router sent back."""

    realm: str
    #: the authid the client asked for (None: the router picks the principal's)
    authid: str | None
    #: HELLO.Details.authextra.pubkey as sent (may be malformed)
    pubkey: object
    details: dict[str, Any]
    #: the 32 random bytes of CHALLENGE.Extra.challenge
    challenge: bytes
    #: the TLS channel id when tls-unique binding is active
    channel_id: bytes | None

    @property
    def extra(self) -> dict[str, Any]:
        """CHALLENGE.Extra."""
        return {
            "challenge": self.challenge.hex(),
            "channel_binding": "tls-unique" if self.channel_id is not None else None,
        }


def start(
    realm: str, authid: str | None, details: dict[str, Any], channel_id: Callable[[str], bytes | None]
) -> CryptosignRequest:
    """The challenge for a HELLO. ``channel_id(binding)``: the transport's channel id for a
    binding type, or None (not TLS, or unknown type): then the challenge is unbound."""
    authextra = details.get("authextra")
    authextra = authextra if type(authextra) is dict else {}
    binding = authextra.get("channel_binding")
    bound = channel_id(binding) if binding in cryptosign.CHANNEL_BINDINGS else None
    return CryptosignRequest(realm, authid, authextra.get("pubkey"), details, cryptosign.new_challenge(), bound)


class CryptosignVerifier:
    """Checks AUTHENTICATE against the configured principals and the dynamic hook."""

    def __init__(
        self, principals: Mapping[str, CryptosignPrincipal], authenticator: CryptosignAuthenticator | None
    ) -> None:
        self._by_key = principals_by_key(principals)
        self._authenticator = authenticator

    def verify(self, request: CryptosignRequest, signature: object) -> Any:
        """(authid, role, provider, pubkey), or a Deferred of it; raises
        :class:`AuthenticationFailed` (with the reason, for the log) when refused."""
        pubkey = request.pubkey
        if not isinstance(pubkey, str):
            raise AuthenticationFailed("no pubkey in HELLO.Details.authextra")
        try:
            public_key = cryptosign.public_key_from_hex(pubkey)
        except ValueError:
            raise AuthenticationFailed(f"malformed pubkey {pubkey[:80]!r}") from None
        message = cryptosign.signed_message(request.challenge, request.channel_id)
        if not cryptosign.verify_signature(public_key, message, signature):
            raise AuthenticationFailed(f"bad signature for pubkey {pubkey}")
        pubkey = pubkey.lower()
        principal = self._by_key.get(pubkey)
        if principal is not None:
            if request.authid is not None and request.authid != principal.authid:
                raise AuthenticationFailed(f"pubkey {pubkey} belongs to {principal.authid!r}, not the authid asked for")
            return principal.authid, principal.role, "static", pubkey
        if self._authenticator is None:
            raise AuthenticationFailed(f"unknown pubkey {pubkey}")
        result = defer.maybeDeferred(self._authenticator, request.realm, request.authid, pubkey, request.details)
        return result.addCallback(_dynamic_result, request.authid, pubkey)


def _dynamic_result(result: Any, authid: str | None, pubkey: str) -> tuple[str, str, str, str]:
    if isinstance(result, str) and result:
        return authid or pubkey, result, "dynamic", pubkey
    if isinstance(result, dict) and isinstance(result.get("role"), str) and result["role"]:
        return str(result.get("authid") or authid or pubkey), result["role"], "dynamic", pubkey
    raise AuthenticationFailed(f"the dynamic authenticator refused pubkey {pubkey} ({result!r})")
