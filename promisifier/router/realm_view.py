"""A realm as its parts see it: :class:`RealmView`.

The dealer and the broker need little of the realm they belong to: its name, URI rules,
clock, configuration, limits and authorizer, and the authorization of a request that may
wait for a dynamic authorizer. They take the realm as a :class:`RealmView` (each adds the
meta API hooks it calls: ``DealerRealm`` in :mod:`~promisifier.router.dealer`,
``BrokerRealm`` in :mod:`~promisifier.router.broker`; the meta API has its own
``MetaRealm``), so that none of them imports :mod:`promisifier.router.realm`, which holds
them: the router has no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from promisifier.router.authz import Authorizer
    from promisifier.router.clock import Clock
    from promisifier.router.routed import RoutedSession
    from promisifier.router.router_config import Limits, RealmConfig
    from promisifier.wire.messages import Message

#: what handles one message type of an established session: handler(session, message)
Handler = Callable[["RoutedSession", list[Any]], None]


class RealmView(Protocol):
    """What the dealer and the broker read of their realm (:class:`~promisifier.router.realm.Realm`)."""

    @property
    def name(self) -> str: ...

    @property
    def strict_uris(self) -> bool: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def config(self) -> RealmConfig: ...

    @property
    def limits(self) -> Limits: ...

    @property
    def authorizer(self) -> Authorizer: ...

    def authorized(
        self, session: RoutedSession, action: str, uri: str, message: Message, proceed: Handler, match: Any = "exact"
    ) -> bool:
        """Check ``action`` on ``uri`` for the request ``message``: True to go on now;
        False when it was denied (and answered), or when ``proceed(session, message)`` runs
        once a dynamic authorizer allows it."""
        ...


__all__ = ["Handler", "RealmView"]
