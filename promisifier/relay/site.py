"""The web site of one relay listener: the WAMP WebSocket at its path, each plain
WebSocket endpoint at its own, and the listener's status page, health check and metrics
(:mod:`promisifier.relay.web`), on the same port.

The tree of resources is rebuilt on every reload and swapped into the listener's
:class:`~twisted.web.server.Site` (``site.resource``): new connections see the new
configuration, open ones keep the factories they came through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autobahn.twisted.resource import WebSocketResource
from twisted.web.resource import IResource, Resource

from promisifier.bridge.site import bridge_resources
from promisifier.compat.websockets import PlainWebSocketFactory, create_websocket
from promisifier.relay.config import EndpointConfig, ListenerConfig
from promisifier.router import Router
from promisifier.wire import SERIALIZERS


def mount(resources: Mapping[str, IResource]) -> IResource:
    """One resource tree with each resource at its path (``"/ws"``, ``"/a/b/c"``).

    A resource alone at ``"/"`` is the root itself. Paths must not overlap (a WebSocket
    resource has no children): ``ValueError`` otherwise.
    """
    if list(resources) == ["/"] or list(resources) == [""]:
        return next(iter(resources.values()))
    root = Resource()
    for path, resource in resources.items():
        segments = [segment.encode("utf-8") for segment in path.split("/") if segment]
        if not segments:
            raise ValueError("only a single resource can be mounted at '/'")
        parent = root
        for segment in segments[:-1]:
            child = parent.children.get(segment)
            if child is None:
                child = Resource()
                parent.putChild(segment, child)
            elif isinstance(child, WebSocketResource):
                raise ValueError(f"{path!r} lies under another WebSocket")
            parent = child
        if segments[-1] in parent.children:
            raise ValueError(f"{path!r} overlaps another path")
        parent.putChild(segments[-1], resource)
    return root


def wamp_resource(router: Router, listener: ListenerConfig) -> WebSocketResource:
    """The router's WebSocket resource with the listener's auth, serializers and limit."""
    factory = router.websocket_factory(listener.auth)
    if listener.serializers is not None and tuple(listener.serializers) != tuple(router.config.serializers):
        chosen = [SERIALIZERS[name] for name in listener.serializers]
        factory.serializers = {serializer.subprotocol: serializer for serializer in chosen}
        factory.protocols = list(factory.serializers)
    if listener.max_message_size is not None:
        factory.setProtocolOptions(
            maxMessagePayloadSize=listener.max_message_size, maxFramePayloadSize=listener.max_message_size
        )
    return WebSocketResource(factory)


def rawsocket_factory(router: Router, listener: ListenerConfig) -> Any:
    """The router's RawSocket server factory with the listener's auth, serializers and limit
    (a listener with ``transport = "rawsocket"``)."""
    from promisifier.transport.rawsocket_framing import MAX_FRAME_LENGTH, SERIALIZER_IDS

    factory = router.rawsocket_factory(listener.auth)
    if listener.serializers is not None:
        factory.serializers = {SERIALIZER_IDS[name]: SERIALIZERS[name] for name in listener.serializers}
    if listener.max_message_size is not None:
        factory.max_message_size = min(listener.max_message_size, MAX_FRAME_LENGTH)
    return factory


def renew_rawsocket_factory(factory: Any, fresh: Any) -> None:
    """Give a listening RawSocket factory the settings of ``fresh`` (after a reload): new
    connections get them; open ones keep their handler."""
    for name, value in vars(fresh).items():
        if name not in ("connections", "open_connections"):
            setattr(factory, name, value)


def listener_root(
    router: Router,
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
    resources: dict[str, IResource] = {listener.path: wamp_resource(router, listener)}
    resources.update(bridge_resources(router, listener))
    if listener.web_paths():
        from promisifier.relay.web import RelayWeb

        resources.update((web if web is not None else RelayWeb.of(router)).resources(listener))
    factories = []
    max_message_size = listener.max_message_size or router.config.max_message_size
    for endpoint in endpoints:
        resource = create_websocket(
            endpoint.path,
            endpoint.handler,
            max_message_size=max_message_size,
            open_handshake_timeout=router.config.open_handshake_timeout,
            trusted_proxies=router.config.trusted_proxies,
            reactor=reactor,
        )
        resources[endpoint.path] = resource
        factories.append(resource.factory)  # type: ignore[attr-defined]
    return mount(resources), factories
