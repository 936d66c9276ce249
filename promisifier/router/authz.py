"""Authorization: may this session's role call, register, publish or subscribe on a URI?

Each role has permissions per URI pattern (exact, prefix, wildcard; the best match
decides, as for call routing). Decisions are cached per (role, action, URI); a new
configuration makes a new :class:`Authorizer`, so the cache never outlives its rules.
A role may instead name a dynamic authorizer (a callable or a dotted path) that may
return a Deferred; its answers are not cached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from promisifier.router.auth import load_callable
from promisifier.router.matching import UriIndex
from promisifier.wire.policies import MATCH_POLICIES

if TYPE_CHECKING:
    from promisifier.router.routed import RoutedSession

ACTIONS = ("call", "register", "publish", "subscribe")
_CACHE_LIMIT = 100_000


@dataclass(frozen=True)
class Permission:
    """What a role may do on the URIs ``uri`` matches with ``match``.

    ``disclose_caller`` / ``disclose_publisher``: the router discloses the identity of
    this role's sessions to callees / subscribers even when they did not ask.
    """

    uri: str = ""
    match: str = "prefix"
    call: bool = False
    register: bool = False
    publish: bool = False
    subscribe: bool = False
    disclose_caller: bool = False
    disclose_publisher: bool = False

    def __post_init__(self) -> None:
        if self.match not in MATCH_POLICIES:
            raise ValueError(f"Permission.match: one of {MATCH_POLICIES} is needed, got {self.match!r}")

    def allows(self, action: str) -> bool:
        """True when this permission grants ``action``."""
        return bool(getattr(self, action))


#: a dynamic authorizer: (session details dict, uri, action) -> bool or Deferred[bool]
DynamicAuthorizer = Callable[[dict[str, Any], str, str], Any]


@dataclass(frozen=True)
class RoleConfig:
    """A role of a realm: its permissions, or a dynamic authorizer."""

    name: str
    permissions: tuple[Permission, ...] = ()
    authorizer: DynamicAuthorizer | str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "permissions", tuple(self.permissions))


#: everything allowed on every URI
ALLOW_ALL = Permission("", "prefix", call=True, register=True, publish=True, subscribe=True)


class Authorizer:
    """Answers authorization questions for one realm's roles."""

    def __init__(self, roles: tuple[RoleConfig, ...] | None) -> None:
        #: True when the realm has no role configuration: everything is allowed
        self.open = roles is None
        self._roles: dict[str, UriIndex[Permission]] = {}
        self._permissions: dict[str, tuple[Permission, ...]] = {}
        self._dynamic: dict[str, DynamicAuthorizer] = {}
        self._cache: dict[tuple[str | None, str, str], Permission | None] = {}
        self._pattern_cache: dict[tuple[str | None, str, str, str], bool] = {}
        for role in roles or ():
            index: UriIndex[Permission] = UriIndex()
            for permission in role.permissions:
                index.add(permission.uri, permission.match, permission)
            self._roles[role.name] = index
            self._permissions[role.name] = role.permissions
            if role.authorizer is not None:
                self._dynamic[role.name] = load_callable(role.authorizer)

    def has_role(self, role: str) -> bool:
        """True when ``role`` is defined (always, for an open realm)."""
        return self.open or role in self._roles

    def permission(self, role: str | None, uri: str) -> Permission | None:
        """The permission that governs ``uri`` for ``role`` (cached), or None."""
        if self.open:
            return ALLOW_ALL
        key = (role, "", uri)
        try:
            return self._cache[key]
        except KeyError:
            pass
        index = self._roles.get(role) if role is not None else None
        permission = index.best(uri) if index is not None else None
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = permission
        return permission

    def authorize(
        self, session: RoutedSession, action: str, uri: str, match: str = "exact"
    ) -> bool | defer.Deferred[bool]:
        """May ``session`` perform ``action`` on ``uri``? A bool, or a Deferred for dynamic roles.

        For a prefix or wildcard registration or subscription (``match``), the pattern is
        allowed only when every URI it can match is allowed: see :meth:`pattern_allowed`.
        """
        if self.open:
            return True
        dynamic = self._dynamic.get(session.authrole) if self._dynamic else None  # type: ignore[arg-type]
        if dynamic is not None:
            details = session.details()
            details["match"] = match
            return defer.maybeDeferred(dynamic, details, uri, action).addCallback(lambda ok: ok is True)
        if match == "prefix" or match == "wildcard":
            return self.pattern_allowed(session.authrole, action, uri, match)
        permission = self.permission(session.authrole, uri)
        return permission is not None and permission.allows(action)

    def pattern_allowed(self, role: str | None, action: str, pattern: str, match: str) -> bool:
        """May ``role`` ``action`` on every URI the pattern (``match`` prefix or wildcard) matches?

        Allowed when a permission for exactly this pattern grants it, or when a prefix
        permission covers the pattern's literal head (the part every matched URI starts
        with) and no more specific permission inside that head denies it.
        """
        key = (role, action, pattern, match)
        cached = self._pattern_cache.get(key)
        if cached is not None:
            return cached
        allowed = self._pattern_decision(role, action, pattern, match)
        if len(self._pattern_cache) >= _CACHE_LIMIT:
            self._pattern_cache.clear()
        self._pattern_cache[key] = allowed
        return allowed

    def _pattern_decision(self, role: str | None, action: str, pattern: str, match: str) -> bool:
        index = self._roles.get(role) if role is not None else None
        if index is None:
            return False
        same = index.get(pattern, match)
        if same is not None:
            return same.allows(action)
        if match == "prefix":
            head = pattern
        else:
            components = pattern.split(".")
            first_wildcard = components.index("")
            head = ".".join(components[:first_wildcard]) + ("." if first_wildcard else "")
        covering = [p for p in index.all(head) if p.match == "prefix"]
        if not covering:
            return False
        best = max(covering, key=lambda p: len(p.uri))
        if not best.allows(action):
            return False
        for permission in self._permissions.get(role, ()):  # type: ignore[arg-type]
            if permission is not best and permission.uri.startswith(head) and not permission.allows(action):
                return False
        return True

    def discloses(self, session: RoutedSession, kind: str, uri: str) -> bool:
        """Must the router disclose ``session`` as ``kind`` ("caller"/"publisher") on ``uri``?"""
        if self.open:
            return False
        permission = self.permission(session.authrole, uri)
        return permission is not None and bool(getattr(permission, "disclose_" + kind))
