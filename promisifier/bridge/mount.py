"""The bridges of one router: their settings, and the web resources that serve them.

:func:`rpc_websockets_resource` makes the rpc-websockets WebSocket of a router;
:func:`rpc_websockets_factory` its factory, for a program that mounts it itself.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from autobahn.twisted.resource import WebSocketResource

from promisifier.bridge.rpc_websockets import RpcWebSocketsFactory, RpcWebSocketsOptions
from promisifier.listen import ListenerOptions, session_factory

__all__ = ["RpcWebSocketsConfig", "realm_procedures", "rpc_websockets_factory", "rpc_websockets_resource"]

DEFAULT_REALM = "realm1"


@dataclass(frozen=True)
class RpcWebSocketsConfig:
    """One rpc-websockets path of a listener (TOML ``[[listeners.rpc_websockets]]``)."""

    #: URL path; below it, a namespace ``/chat`` selects realm ``chat`` when it exists
    path: str
    #: the realm of the path itself (namespace ``/``)
    realm: str = DEFAULT_REALM
    #: put before method and event names: ``com.example.`` makes ``sum`` ``com.example.sum``
    uri_prefix: str = ""
    #: milliseconds a call may take (0: no limit)
    call_timeout: int = 0
    #: the event names clients may subscribe to; None: any topic their role may subscribe to
    events: tuple[str, ...] | None = None


def realm_procedures(router: Any, realm: str) -> list[str]:
    """The URIs of a realm's exact registrations."""
    found = router.realms.get(realm)
    if found is None:
        return []
    return [registration.uri for registration in found.dealer.registrations() if registration.match == "exact"]


def _namespace_realms(router: Any, realm: str) -> Callable[[str], str | None]:
    def realm_for(namespace: str) -> str | None:
        if namespace == "/":
            return realm
        name = ".".join(part for part in namespace.split("/") if part)
        return name if name in router.realms else None

    return realm_for


def rpc_websockets_factory(
    router: Any,
    config: RpcWebSocketsConfig,
    options: ListenerOptions | None = None,
    *,
    declared_events: Callable[[str], Collection[str] | None] | None = None,
    realm_for: Callable[[str], str | None] | None = None,
    procedures: Callable[[str], Collection[str]] | None = None,
) -> RpcWebSocketsFactory:
    """The rpc-websockets factory of ``router`` for ``config``, with the listener's
    ``options`` (auth, message size, keep-alive, ...; default: the router configuration's). ``declared_events(realm)``, ``realm_for(namespace)``
    and ``procedures(realm)`` override what ``config`` and the router say (the Server
    façade has its own namespaces, declarations and procedures)."""
    if options is None:
        options = ListenerOptions.from_config(router.config)
    methods = (options.auth if options.auth is not None else router.config.auth).methods
    if declared_events is None:
        events = None if config.events is None else frozenset(config.events)

        def declared_events(realm: str) -> Collection[str] | None:
            return events

    dialect = RpcWebSocketsOptions(
        realm_for=realm_for or _namespace_realms(router, config.realm),
        uri_prefix=config.uri_prefix,
        call_timeout=config.call_timeout,
        declared_events=declared_events,
        procedures=procedures or (lambda realm: realm_procedures(router, realm)),
        login="ticket" in methods,
        anonymous="anonymous" in methods,
    )
    return RpcWebSocketsFactory(
        session_factory(router, options.auth),
        dialect,
        base_path=config.path,
        max_message_size=options.max_message_size,
        open_handshake_timeout=options.open_handshake_timeout,
        trusted_proxies=options.trusted_proxies,
        keepalive_interval=options.keepalive_interval,
        keepalive_timeout=options.keepalive_timeout,
        max_outgoing_buffer=options.max_outgoing_buffer,
        reactor=router.reactor,
    )


def rpc_websockets_resource(
    router: Any, config: RpcWebSocketsConfig, options: ListenerOptions | None = None, **overrides: Any
) -> WebSocketResource:
    """A ``twisted.web`` resource serving :func:`rpc_websockets_factory` (mount it at
    ``config.path``)."""
    return WebSocketResource(rpc_websockets_factory(router, config, options, **overrides))
