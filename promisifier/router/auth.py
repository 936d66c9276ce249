"""Authentication of a joining session: anonymous, ticket (with JWTs), WAMP-CRA,
WAMP-Cryptosign, WAMP-SCRAM and TLS client certificates.

HELLO.Details.authmethods lists the methods a client offers, in its order of preference;
the first one the listener accepts is used. anonymous and tls decide at once; the others
answer with CHALLENGE and check the client's AUTHENTICATE. A failure never says which part
was wrong: the client gets the same ABORT, the relay's log gets the reason.
"""

from __future__ import annotations

import base64
import hmac
import importlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from twisted.internet import defer

from promisifier.router import cryptosign, jwt_tickets, scram, tls_auth
from promisifier.router.auth_failure import AuthenticationFailed
from promisifier.router.cryptosign import CryptosignAuthenticator, CryptosignPrincipal
from promisifier.router.scram import ScramPrincipal
from promisifier.transport import tls_facts
from promisifier.wire.cra import compute_signature, derive_key

#: methods a listener may accept ("scram" covers both dialects' authmethods, "scram" and
#: "wamp-scram")
AUTH_METHODS = ("anonymous", "ticket", "wampcra", "cryptosign", "scram", "tls")
#: what a client may put in HELLO.Details.authmethods -> the listener's method
_OFFERED = {method: method for method in AUTH_METHODS} | {"wamp-scram": "scram"}


@dataclass(frozen=True)
class Principal:
    """A user known to the configuration: authid, role and secret (ticket or WAMP-CRA).

    For WAMP-CRA with ``salt`` set, the key is derived from ``secret`` with PBKDF2
    (HMAC-SHA256, ``iterations``, ``keylen`` bytes), as the specification describes, and
    the salt parameters are sent in the CHALLENGE so the client derives the same key.
    """

    authid: str
    role: str
    secret: str
    salt: str | None = None
    iterations: int = 1000
    keylen: int = 32


@dataclass(frozen=True)
class Accepted:
    """A successful authentication: what WELCOME will carry."""

    authid: str
    authrole: str
    authmethod: str
    authprovider: str
    #: facts about the authentication that WELCOME and the meta API show (e.g. the pubkey)
    authextra: dict[str, Any] = field(default_factory=dict[str, Any])
    #: what only WELCOME carries (the SCRAM server signature)
    welcome_extra: dict[str, Any] = field(default_factory=dict[str, Any])


#: a dynamic ticket authenticator: (realm, authid, ticket, hello details) -> role name, or
#: a dict with "role" (and optionally "authid"), or a Deferred of either; raise or return
#: None/False to refuse
TicketAuthenticator = Callable[[str, str, str, dict[str, Any]], Any]


@dataclass(frozen=True)
class AuthConfig:
    """Which authentication methods a listener accepts, and the principals for each."""

    methods: tuple[str, ...] = ("anonymous",)
    #: role given to anonymous sessions
    anonymous_role: str = "anonymous"
    #: ticket principals by authid
    tickets: Mapping[str, Principal] = field(default_factory=dict)
    #: dynamic ticket authenticator: a callable or a dotted path to one
    ticket_authenticator: TicketAuthenticator | str | None = None
    #: tickets that are JWTs are verified with this (before the dynamic authenticator)
    ticket_jwt: jwt_tickets.JwtConfig | None = None
    #: WAMP-CRA users by authid
    wampcra: Mapping[str, Principal] = field(default_factory=dict)
    #: WAMP-Cryptosign principals by authid
    cryptosign: Mapping[str, CryptosignPrincipal] = field(default_factory=dict)
    #: dynamic cryptosign authenticator (for keys no principal lists): a callable or a
    #: dotted path to one
    cryptosign_authenticator: CryptosignAuthenticator | str | None = None
    #: WAMP-SCRAM principals by authid
    scram: Mapping[str, ScramPrincipal] = field(default_factory=dict)
    #: principals known by their TLS client certificate, by authid
    tls: Mapping[str, tls_auth.TlsPrincipal] = field(default_factory=dict)
    #: on reload, close the sessions whose key, password, secret or principal changed or
    #: went away (see :mod:`promisifier.router.revocation`)
    revoke_on_reload: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(self.methods))
        for method in self.methods:
            if method not in AUTH_METHODS:
                raise ValueError(f"AuthConfig.methods: unknown method {method!r}; known: {', '.join(AUTH_METHODS)}")


def load_callable(target: Callable[..., Any] | str) -> Callable[..., Any]:
    """``target`` itself, or the callable a dotted path ``package.module.name`` names."""
    if callable(target):
        return target
    module_name, _, attribute = target.rpartition(".")
    if not module_name:
        raise ValueError(f"not a dotted path to a callable: {target!r}")
    value: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
    if not callable(value):
        raise ValueError(f"{target!r} is not callable")
    return value


class Challenge:
    """One authentication in progress: the method, the claimed authid and what to check."""

    def __init__(
        self, method: str, authid: str, extra: dict[str, Any], check: Callable[[Any, dict[str, Any]], Any]
    ) -> None:
        self.method = method
        self.authid = authid
        #: CHALLENGE.Extra sent to the client
        self.extra = extra
        self._check = check

    def verify(self, signature: Any, extra: dict[str, Any] | None = None) -> defer.Deferred[Accepted]:
        """Check the AUTHENTICATE signature (and Extra); fails with :class:`AuthenticationFailed`."""
        return defer.maybeDeferred(self._check, signature, extra if type(extra) is dict else {})


class Authenticator:
    """Runs the methods of one :class:`AuthConfig`."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._ticket_authenticator = (
            load_callable(config.ticket_authenticator) if config.ticket_authenticator is not None else None
        )
        # A WAMP-CRA challenge must not tell whether its authid exists: an unknown authid
        # gets a salt too when salted users exist, the same for every attempt (derived
        # from the authid with a key of this process), with the parameters of a real one.
        self._decoy_key = os.urandom(32)
        salted = [principal for principal in config.wampcra.values() if principal.salt is not None]
        self._decoy_kdf = (salted[0].iterations, salted[0].keylen) if salted else None
        self._cryptosign = cryptosign.CryptosignVerifier(
            config.cryptosign,
            load_callable(config.cryptosign_authenticator) if config.cryptosign_authenticator is not None else None,
        )
        self._scram = scram.ScramVerifier(config.scram)

    def pick_method(self, details: dict[str, Any]) -> str | None:
        """The first method the client offers that this listener accepts, or None."""
        offered = details.get("authmethods")
        if offered is None:
            offered = ["anonymous"]
        if type(offered) is not list:
            return None
        for method in offered:
            if type(method) is str and _OFFERED.get(method) in self.config.methods:
                return method
        return None

    def anonymous(self, requested_authid: str | None, session_id: int) -> Accepted:
        """Accept an anonymous session.

        The authid is the router's, never ``requested_authid``: anonymous proves nothing,
        and a claimed authid (another principal's) would be disclosed to callees and
        subscribers and matched by kill_by_authid as if it were that principal.
        """
        return Accepted(f"anonymous-{session_id}", self.config.anonymous_role, "anonymous", "static")

    def tls(self, peer: object) -> Accepted:
        """Accept the client by the certificate it presented on this TLS connection;
        raises :class:`AuthenticationFailed` for none, or one no principal lists."""
        found = tls_auth.identify(self.config.tls, peer)
        if found is None:
            certificate = tls_facts.peer_certificate(peer)
            raise AuthenticationFailed(
                "no client certificate"
                if certificate is None
                else f"certificate {tls_facts.fingerprint(certificate)} ({certificate.subject.rfc4514_string()}) "
                "matches no principal"
            )
        principal, facts = found
        return Accepted(principal.authid, principal.role, "tls", "static", facts)

    def challenge(
        self, method: str, realm: str, authid: str | None, session_id: int, details: dict[str, Any], peer: object = None
    ) -> Challenge:
        """Start ``method`` (ticket, wampcra, cryptosign, scram or wamp-scram) for the
        claimed ``authid``; ``peer`` is the connection (for TLS channel binding)."""
        claimed = authid or ""
        if method == "ticket":
            return Challenge(
                method, claimed, {}, lambda signature, _: self._check_ticket(realm, claimed, signature, details)
            )
        if method == "cryptosign":
            request = cryptosign.start(realm, authid, details, lambda binding: tls_facts.channel_id(peer, binding))
            return Challenge(
                method, claimed, request.extra, lambda signature, _: self._check_cryptosign(request, signature)
            )
        if method in ("scram", "wamp-scram"):
            exchange, scram_extra = self._scram.start(method, authid, details)
            return Challenge(
                method,
                claimed,
                scram_extra,
                lambda signature, sent: self._check_scram(method, exchange, signature, sent),
            )
        principal = self.config.wampcra.get(claimed)
        # No "authrole" in the challenge (clients sign the text as it is): the role of a
        # known authid, or none for an unknown one, would tell which authids exist.
        challenge_text = orjson.dumps(
            {
                "authid": claimed,
                "authmethod": "wampcra",
                "authprovider": "static",
                "nonce": base64.b64encode(os.urandom(16)).decode("ascii"),
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "session": session_id,
            }
        ).decode("utf-8")
        extra: dict[str, Any] = {"challenge": challenge_text}
        if principal is not None and principal.salt is not None:
            extra.update(salt=principal.salt, iterations=principal.iterations, keylen=principal.keylen)
        elif principal is None and self._decoy_kdf is not None:
            decoy_salt = hmac.new(self._decoy_key, claimed.encode("utf-8"), "sha256").digest()[:16]
            iterations, keylen = self._decoy_kdf
            extra.update(salt=base64.b64encode(decoy_salt).decode("ascii"), iterations=iterations, keylen=keylen)
        return Challenge(
            method, claimed, extra, lambda signature, _: self._check_wampcra(principal, challenge_text, signature)
        )

    def _check_cryptosign(self, request: cryptosign.CryptosignRequest, signature: Any) -> Any:
        def accepted(found: tuple[str, str, str, str]) -> Accepted:
            authid, role, provider, pubkey = found
            return Accepted(authid, role, "cryptosign", provider, {"pubkey": pubkey})

        return defer.maybeDeferred(self._cryptosign.verify, request, signature).addCallback(accepted)

    def _check_scram(
        self, method: str, exchange: scram.ScramRequest | None, proof: Any, extra: dict[str, Any]
    ) -> Accepted:
        found = self._scram.verify(exchange, proof, extra)
        authid, role, verifier = found
        key = "verifier" if method == "wamp-scram" else "scram_server_signature"
        return Accepted(authid, role, method, "static", welcome_extra={key: verifier})

    def _check_ticket(self, realm: str, authid: str, ticket: Any, details: dict[str, Any]) -> Any:
        if not isinstance(ticket, str):
            raise AuthenticationFailed("the ticket is not a string")
        principal = self.config.tickets.get(authid)
        if principal is not None:
            if hmac.compare_digest(principal.secret.encode("utf-8"), ticket.encode("utf-8")):
                return Accepted(authid, principal.role, "ticket", "static")
            raise AuthenticationFailed("wrong ticket")
        jwt_config = self.config.ticket_jwt
        if jwt_config is not None and jwt_tickets.looks_like_jwt(ticket):
            found = jwt_tickets.verify(jwt_config, ticket, authid or None)
            return Accepted(found[0], found[1], "ticket", "jwt")
        if self._ticket_authenticator is None:
            raise AuthenticationFailed("unknown authid, and no dynamic ticket authenticator")
        result = defer.maybeDeferred(self._ticket_authenticator, realm, authid, ticket, details)
        return result.addCallback(self._dynamic_ticket_result, authid)

    @staticmethod
    def _dynamic_ticket_result(result: Any, authid: str) -> Accepted:
        if isinstance(result, str) and result:
            return Accepted(authid, result, "ticket", "dynamic")
        if isinstance(result, dict) and isinstance(result.get("role"), str):
            return Accepted(str(result.get("authid") or authid), result["role"], "ticket", "dynamic")
        raise AuthenticationFailed(f"the dynamic ticket authenticator refused ({result!r})")

    @staticmethod
    def _check_wampcra(principal: Principal | None, challenge_text: str, signature: str) -> Accepted:
        if principal is None:
            # Compute anyway so an unknown user costs the same as a wrong secret.
            hmac.compare_digest(compute_signature(b"unknown", challenge_text).encode(), signature.encode("utf-8"))
            raise AuthenticationFailed("unknown authid")
        if principal.salt is not None:
            key = derive_key(principal.secret, principal.salt, principal.iterations, principal.keylen)
        else:
            key = principal.secret.encode("utf-8")
        if not hmac.compare_digest(compute_signature(key, challenge_text).encode(), signature.encode("utf-8")):
            raise AuthenticationFailed("wrong signature")
        return Accepted(principal.authid, principal.role, "wampcra", "static")
