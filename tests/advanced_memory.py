"""The in-memory router of tests/memory_router.py as the advanced-profile tests use it
(test_advanced_profile, test_event_history, test_passthru): realms given as arguments, and
HELLO roles announcing the features those tests exercise."""

from __future__ import annotations

from typing import Any

from promisifier.router import RouterConfig
from promisifier.router.router_config import RealmConfig
from tests.memory_router import ALL_ROLES, MemoryClient, MemoryRouter

#: HELLO roles announcing the client features the advanced profile tests use
ROLES: dict[str, Any] = ALL_ROLES


class Peer(MemoryClient):
    """A client connection of :class:`Memory`."""

    def request_id(self) -> int:
        return self.next_request_id()


class Memory(MemoryRouter):
    """A router on a Clock with ``realms`` (names or RealmConfig) and router ``config``."""

    def __init__(self, *realms: RealmConfig | str, **config: Any) -> None:
        super().__init__(RouterConfig(realms=realms or ("realm1",), **config))

    def connect(self, serializer: str | None = "json", **kwargs: Any) -> Peer:
        client = Peer(self, serializer, **kwargs)
        self.clients.append(client)
        return client

    def join(  # type: ignore[override]
        self, realm: str = "realm1", serializer: str | None = "json", roles: dict[str, Any] | None = None
    ) -> Peer:
        client = self.connect(serializer)
        client.join(realm, roles if roles is not None else ROLES)
        return client
