"""WAMP-SCRAM on the router, in both dialects (see :mod:`promisifier.wire.scram`).

The authmethod the client picked says the dialect: ``wamp-scram`` is the specification's,
``scram`` autobahn-python's and Crossbar's. The router keeps only stored keys. An unknown
authid gets a CHALLENGE too, with a salt that stays the same for that authid and the
parameters of a real principal, so the CHALLENGE does not tell whether the authid exists.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from promisifier.router.auth_failure import AuthenticationFailed
from promisifier.wire import scram


@dataclass(frozen=True)
class ScramPrincipal:
    """A password user: role and the stored form of the password."""

    authid: str
    role: str
    credential: scram.StoredCredential


@dataclass(frozen=True)
class ScramRequest:
    """One exchange in progress: what HELLO said and what CHALLENGE answered."""

    dialect: str
    authid: str
    client_nonce: str
    nonce: str
    salt: str
    iterations: int
    principal: ScramPrincipal | None

    @property
    def auth_message(self) -> bytes:
        return scram.auth_message(self.authid, self.client_nonce, self.nonce, self.salt, self.iterations, self.dialect)


class ScramVerifier:
    """Starts exchanges for HELLOs and checks AUTHENTICATEs."""

    def __init__(self, principals: Mapping[str, ScramPrincipal]) -> None:
        self._principals = dict(principals)
        self._decoy_key = os.urandom(32)
        first = next(iter(self._principals.values()), None)
        self._decoy = first.credential if first is not None else scram.hash_password("", "pbkdf2", 1)

    def start(
        self, method: str, authid: str | None, details: dict[str, Any]
    ) -> tuple[ScramRequest | None, dict[str, Any]]:
        """(the exchange, CHALLENGE.Extra). The exchange is None when HELLO lacks what SCRAM
        needs (no authid, no base64 nonce): AUTHENTICATE then fails like a wrong password."""
        dialect = scram.DIALECTS[method]
        authextra = details.get("authextra")
        client_nonce = authextra.get("nonce") if type(authextra) is dict else None
        claimed = authid or ""
        principal = self._principals.get(claimed)
        credential = principal.credential if principal is not None else self._decoy
        salt = credential.salt if principal is not None else self._decoy_salt(claimed)
        kdf = "argon2id-13" if dialect == "autobahn" and credential.kdf == "argon2id13" else credential.kdf
        try:
            scram.unb64(client_nonce, "nonce")
            nonce = scram.combined_nonce(client_nonce, dialect)  # type: ignore[arg-type]
            scram.saslprep(claimed)
            valid = bool(claimed)
        except scram.ScramError:
            nonce, valid = scram.new_nonce(), False
        extra: dict[str, Any] = {
            "nonce": nonce,
            "salt": scram.b64(salt),
            "kdf": kdf,
            "iterations": credential.iterations,
            "memory": credential.memory,
        }
        if dialect == "spec":
            extra["channel_binding"] = None
        elif credential.memory is None:
            # autobahn-python reads an absent memory as "none"; null would break its int()
            del extra["memory"]
        if not valid:
            return None, extra
        request = ScramRequest(dialect, claimed, client_nonce, nonce, extra["salt"], credential.iterations, principal)  # type: ignore[arg-type]
        return request, extra

    def _decoy_salt(self, authid: str) -> bytes:
        return hmac.new(self._decoy_key, authid.encode("utf-8"), "sha256").digest()[: len(self._decoy.salt)]

    def verify(self, request: ScramRequest | None, proof: object, extra: dict[str, Any]) -> tuple[str, str, str]:
        """(authid, role, verifier) when the proof is right; raises
        :class:`AuthenticationFailed` (with the reason, for the log) otherwise."""
        if request is None:
            raise AuthenticationFailed("HELLO without an authid or a base64 nonce")
        message = request.auth_message
        principal = request.principal
        keys = principal.credential.keys(request.dialect) if principal is not None else None
        if keys is None:
            # the same work as for a real user, so that timing does not tell
            scram.verify_proof(self._decoy.stored_key, message, proof)
            if principal is None:
                raise AuthenticationFailed("unknown authid")
            raise AuthenticationFailed(f"no stored keys for the {request.dialect} dialect (scram-hash prints them)")
        if request.dialect == "spec":
            # autobahn's AUTHENTICATE carries no Extra; the specification's repeats the nonce
            if extra.get("nonce") != request.nonce or extra.get("channel_binding") is not None:
                scram.verify_proof(keys[0], message, proof)
                raise AuthenticationFailed("AUTHENTICATE.Extra: wrong nonce, or a channel binding")
        if not scram.verify_proof(keys[0], message, proof):
            raise AuthenticationFailed("wrong password (the proof does not match the stored key)")
        assert principal is not None
        return principal.authid, principal.role, scram.server_signature(keys[1], message)
