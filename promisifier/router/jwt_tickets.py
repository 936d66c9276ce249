"""JWT tickets: a ticket that is a JSON Web Token, verified with PyJWT.

A web application signs a token for its user (HS256 with a shared secret, RS256 or EdDSA
with its private key); the client sends it as its ticket. The relay checks the signature
against the configured key (or the key of a JSON Web Key Set named by the token's ``kid``),
the expiry (``exp`` is required) and, when configured, the audience and issuer, and takes
the authid and the role from configured claims. A HELLO authid, when given, must be the
token's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import jwt

from promisifier.router.auth_failure import AuthenticationFailed

#: algorithms a JWT ticket may be signed with
ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA")


@dataclass(frozen=True)
class JwtConfig:
    """How JWT tickets are verified."""

    #: accepted signature algorithms (never "none")
    algorithms: tuple[str, ...]
    #: the HMAC secret (HS*) or a PEM public key (RS*, ES*, EdDSA); or None with ``jwks``
    key: str | None = None
    #: a JSON Web Key Set (its JSON text): the token's ``kid`` picks the key
    jwks: str | None = None
    #: required ``aud``; None: a token with an audience is refused (PyJWT's rule)
    audience: str | None = None
    #: required ``iss``, or None
    issuer: str | None = None
    authid_claim: str = "sub"
    role_claim: str = "role"
    #: seconds of clock skew tolerated on exp/nbf/iat
    leeway: float = 0.0
    _keys: dict[str | None, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "algorithms", tuple(self.algorithms))
        for algorithm in self.algorithms:
            if algorithm not in ALGORITHMS:
                raise ValueError(f"JWT algorithm {algorithm!r} is not supported; known: {', '.join(ALGORITHMS)}")
        if (self.key is None) == (self.jwks is None):
            raise ValueError("a JWT ticket configuration needs exactly one of a key and a key set")
        if self.jwks is not None:
            key_set = jwt.PyJWKSet.from_json(self.jwks)
            for key in key_set.keys:
                self._keys[key.key_id] = key.key
        else:
            self._keys[None] = self.key
            if self.algorithms and not self.algorithms[0].startswith("HS"):
                # fails now, at configuration time, for a key that is no key of this algorithm
                jwt.get_algorithm_by_name(self.algorithms[0]).prepare_key(self.key)
        if any(a.startswith("HS") for a in self.algorithms) and any(not a.startswith("HS") for a in self.algorithms):
            # one key for both an HMAC and a public-key algorithm invites the classic
            # confusion attack (a public key used as an HMAC secret)
            raise ValueError("JWT algorithms: HMAC (HS*) and public-key algorithms cannot share one configuration")


def looks_like_jwt(ticket: str) -> bool:
    """A compact JWS: three base64url parts separated by dots."""
    return ticket.count(".") == 2 and all(ticket.split("."))


def verify(config: JwtConfig, token: str, authid: str | None) -> tuple[str, str]:
    """(authid, role) from a valid token; raises :class:`AuthenticationFailed` (with the
    reason, for the log) otherwise."""
    try:
        header = jwt.get_unverified_header(token)
        key = config._keys.get(header.get("kid")) if config.jwks is not None else config._keys[None]
        if key is None:
            raise AuthenticationFailed(f"JWT: no key with kid {header.get('kid')!r} in the key set")
        claims = jwt.decode(
            token,
            key,
            algorithms=list(config.algorithms),
            audience=config.audience,
            issuer=config.issuer,
            leeway=config.leeway,
            options={"require": ["exp"]},
        )
    except (jwt.InvalidTokenError, ValueError, TypeError, json.JSONDecodeError) as error:
        raise AuthenticationFailed(f"JWT: {type(error).__name__}: {error}") from None
    subject, role = claims.get(config.authid_claim), claims.get(config.role_claim)
    if not isinstance(subject, str) or not subject or not isinstance(role, str) or not role:
        raise AuthenticationFailed(f"JWT: no string claims {config.authid_claim!r} and {config.role_claim!r}")
    if authid is not None and authid != subject:
        raise AuthenticationFailed(f"JWT: for {subject!r}, not the authid asked for")
    return subject, role
