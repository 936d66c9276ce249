"""The web site of one relay listener: the WAMP WebSocket at its path, each plain
WebSocket endpoint at its own, and the listener's status page, health check and metrics
(:mod:`promisifier.relay.web`), on the same port.

The tree of resources is rebuilt on every reload and swapped into the listener's
:class:`~twisted.web.server.Site` (``site.resource``): new connections see the new
configuration, open ones keep the factories they came through.
"""

from __future__ import annotations

from typing import Any

from twisted.web.resource import IResource

from promisifier.bridge.site import bridge_resources, with_static_root
from promisifier.listen import (
    ListenerOptions,
    mount,
    rawsocket_factory,
    reconfigure_rawsocket_factory,
    websocket_resource,
)
from promisifier.relay.relay_config import EndpointConfig, ListenerConfig
from promisifier.router import RouterCore
from promisifier.transport.plain_websocket import PlainWebSocketFactory, create_websocket
from promisifier.transport.rawsocket import RawSocketServerFactory


def listener_options(router: RouterCore, listener: ListenerConfig) -> ListenerOptions:
    """A relay listener's options: its own path, auth, serializers and message size, the
    router configuration's settings for what it leaves open."""
    return ListenerOptions.from_config(
        router.config,
        endpoint=listener.endpoint,
        path=listener.path,
        auth=listener.auth,
        serializers=listener.serializers,
        max_message_size=listener.max_message_size,
    )


def listener_rawsocket_factory(router: RouterCore, listener: ListenerConfig) -> RawSocketServerFactory:
    """The RawSocket server factory of a listener with ``transport = "rawsocket"``."""
    return rawsocket_factory(router, listener_options(router, listener))


def reconfigure_listener_rawsocket_factory(
    factory: RawSocketServerFactory, router: RouterCore, listener: ListenerConfig
) -> None:
    """Give a listening RawSocket factory the listener's settings after a reload."""
    reconfigure_rawsocket_factory(factory, router, listener_options(router, listener))


def listener_root(
    router: RouterCore,
    listener: ListenerConfig,
    endpoints: tuple[EndpointConfig, ...],
    reactor: Any = None,
    web: Any = None,
) -> tuple[IResource, list[PlainWebSocketFactory]]:
    """The resource tree of a listener, and the factories of its plain endpoints.

    ``web``: the router's :class:`~promisifier.relay.web.RelayWeb` (default
    ``RelayWeb.of(router)``), used when the listener serves a status page, health check
    or metrics.
    """
    options = listener_options(router, listener)
    resources: dict[str, IResource] = {listener.path: websocket_resource(router, options)}
    resources.update(bridge_resources(router, listener, options))
    if listener.web_paths():
        from promisifier.relay.web import RelayWeb

        resources.update((web if web is not None else RelayWeb.of(router)).resources(listener))
    factories = []
    for endpoint in endpoints:
        resource = create_websocket(
            endpoint.path,
            endpoint.handler,
            max_message_size=options.max_message_size,
            open_handshake_timeout=options.open_handshake_timeout,
            trusted_proxies=options.trusted_proxies,
            reactor=reactor,
        )
        resources[endpoint.path] = resource
        factories.append(resource.factory)  # type: ignore[attr-defined]
    return with_static_root(listener, mount(resources)), factories
