"""Which sessions a new authentication configuration no longer admits.

With ``revoke_on_reload``, a reload closes the sessions whose admission rests on a
configuration entry that changed or went away: a cryptosign key no longer listed for the
authid, a SCRAM or WAMP-CRA user whose stored keys or secret changed, a static ticket
that changed, a JWT key or a client-certificate principal that changed, a method no
longer accepted. What a dynamic authenticator admitted cannot be checked again here and
stays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from promisifier.router.auth import AuthConfig

if TYPE_CHECKING:
    from promisifier.router.session import RouterSession

#: authmethod of a session -> the listener's method
_METHOD = {"wamp-scram": "scram"}


def still_admitted(session: RouterSession, old: AuthConfig, new: AuthConfig) -> bool:
    """False when ``new`` would not admit ``session`` the way ``old`` did."""
    method, provider, authid = session.authmethod, session.authprovider, session.authid
    if method is None or authid is None:
        return True
    if _METHOD.get(method, method) not in new.methods:
        return False
    if provider == "dynamic":
        return True
    if method == "anonymous":
        return new.anonymous_role == session.authrole
    if method == "cryptosign":
        principal = new.cryptosign.get(authid)
        pubkey = session.authextra.get("pubkey")
        return principal is not None and principal.role == session.authrole and pubkey in principal.authorized_keys
    if method == "ticket" and provider == "jwt":
        return new.ticket_jwt == old.ticket_jwt
    tables = {
        "ticket": (old.tickets, new.tickets),
        "wampcra": (old.wampcra, new.wampcra),
        "scram": (old.scram, new.scram),
        "wamp-scram": (old.scram, new.scram),
        "tls": (old.tls, new.tls),
    }
    if method in tables:
        before, after = tables[method]
        return authid in after and after[authid] == before.get(authid)
    return True
