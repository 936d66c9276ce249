"""Network entry points of a router: the transport factories, web resources and listening.

The router core (:mod:`promisifier.router`) never touches the network; this module, between
the transports and the relay, connects the two. Everything an entry point needs is one
:class:`ListenerOptions`: where it listens, at which path, with which serializers,
limits, authentication, keep-alive and slow-consumer policy::

    options = ListenerOptions.from_config(router.config, endpoint="tcp:8080", path="/ws")
    port = yield listen(router, options)

The embeddable :class:`promisifier.Router` offers the same as methods (``listen``,
``site``, ``resource``, ``websocket_factory``, ``rawsocket_factory``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from autobahn.twisted.resource import WebSocketResource
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.web.resource import IResource, Resource

from promisifier.relay.endpoints import with_backlog
from promisifier.router.auth import AuthConfig, Authenticator
from promisifier.router.peer import Peer
from promisifier.transport.handshake import HandshakeDeadlineSite
from promisifier.transport.limits import (
    DEFAULT_KEEPALIVE_INTERVAL,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_OUTGOING_BUFFER,
    DEFAULT_OPEN_HANDSHAKE_TIMEOUT,
    check_slow_consumer,
)
from promisifier.transport.rawsocket import RawSocketServerFactory
from promisifier.transport.websocket import WampServerFactory

if TYPE_CHECKING:
    from promisifier.router.router import RouterCore
    from promisifier.router.router_config import RouterConfig
    from promisifier.router.session import RouterSession

DEFAULT_PATH = "/ws"


@dataclass(frozen=True)
class ListenerOptions:
    """Everything one network entry point of a router needs (every field has a default).

    :meth:`from_config` takes the defaults from a :class:`~promisifier.router.RouterConfig`.
    """

    #: a Twisted server endpoint string (``"tcp:8080"``) or endpoint; used by :func:`listen`
    endpoint: str | IStreamServerEndpoint = "tcp:8080"
    #: URL path of the WAMP WebSocket ("/": the site's root); RawSocket has no path
    path: str = DEFAULT_PATH
    #: serializers offered (the client's preference picks among them)
    serializers: tuple[str, ...] = ("json", "msgpack", "cbor")
    #: authentication methods of this entry point; None: the router's
    auth: AuthConfig | None = None
    #: largest WAMP message accepted, in bytes (over it: close 1009)
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: seconds a new connection has to complete the opening handshake
    open_handshake_timeout: float = DEFAULT_OPEN_HANDSHAKE_TIMEOUT
    #: seconds between keep-alive pings to an idle client, and to wait for its answer (0: off)
    keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    #: bytes queued for one client beyond which it is a slow consumer, and what then
    #: happens to it ("drop" its events, or "disconnect" it)
    max_outgoing_buffer: int = DEFAULT_MAX_OUTGOING_BUFFER
    slow_consumer: str = "drop"
    #: reverse proxies whose X-Forwarded-For header names the client (WebSocket only)
    trusted_proxies: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        check_slow_consumer(self.slow_consumer, "ListenerOptions.slow_consumer")
        object.__setattr__(self, "serializers", tuple(self.serializers))
        object.__setattr__(self, "trusted_proxies", tuple(self.trusted_proxies))
        if self.max_message_size <= 0:
            raise ValueError(f"ListenerOptions.max_message_size: must be > 0, got {self.max_message_size}")

    @classmethod
    def from_config(cls, config: RouterConfig, **overrides: Any) -> ListenerOptions:
        """The options of an entry point with ``config``'s settings, except ``overrides``
        (an override of None keeps the config's value)."""
        options = cls(
            serializers=config.serializers,
            max_message_size=config.max_message_size,
            open_handshake_timeout=config.open_handshake_timeout,
            keepalive_interval=config.keepalive_interval,
            keepalive_timeout=config.keepalive_timeout,
            max_outgoing_buffer=config.max_outgoing_buffer,
            slow_consumer=config.slow_consumer,
            trusted_proxies=config.trusted_proxies,
        )
        chosen = {name: value for name, value in overrides.items() if value is not None}
        return replace(options, **chosen) if chosen else options


def session_factory(router: RouterCore, auth: AuthConfig | None) -> Callable[[Peer], RouterSession]:
    """What a transport calls for each new connection: a router session using ``auth``'s
    methods (None: the router's)."""
    if auth is None:
        return router.new_session
    authenticator = Authenticator(auth)
    return lambda peer: router.new_session(peer, authenticator)


def websocket_factory(router: RouterCore, options: ListenerOptions) -> WampServerFactory:
    """An autobahn server factory that feeds WebSocket connections into ``router``."""
    return WampServerFactory(
        session_factory(router, options.auth),
        serializers=options.serializers,
        max_message_size=options.max_message_size,
        open_handshake_timeout=options.open_handshake_timeout,
        reactor=router.reactor,
        trusted_proxies=options.trusted_proxies,
        keepalive_interval=options.keepalive_interval,
        keepalive_timeout=options.keepalive_timeout,
        max_outgoing_buffer=options.max_outgoing_buffer,
        slow_consumer=options.slow_consumer,
    )


def _rawsocket_settings(options: ListenerOptions) -> dict[str, Any]:
    return {
        "serializers": options.serializers,
        "max_message_size": options.max_message_size,
        "open_handshake_timeout": options.open_handshake_timeout,
        "max_outgoing_buffer": options.max_outgoing_buffer,
        "slow_consumer": options.slow_consumer,
        "keepalive_interval": options.keepalive_interval,
        "keepalive_timeout": options.keepalive_timeout,
    }


def rawsocket_factory(router: RouterCore, options: ListenerOptions) -> RawSocketServerFactory:
    """A Twisted server factory speaking WAMP over RawSocket (length-prefixed frames on
    TCP, TLS or a UNIX socket) into ``router``; listen with any server endpoint."""
    return RawSocketServerFactory(
        session_factory(router, options.auth), reactor=router.reactor, **_rawsocket_settings(options)
    )


def reconfigure_rawsocket_factory(
    factory: RawSocketServerFactory, router: RouterCore, options: ListenerOptions
) -> None:
    """Give a listening RawSocket factory new options (after a reload): new connections
    get them; open ones keep their session."""
    factory.configure(session_factory(router, options.auth), **_rawsocket_settings(options))


def websocket_resource(router: RouterCore, options: ListenerOptions) -> WebSocketResource:
    """A ``twisted.web`` resource speaking WAMP over WebSocket into ``router``."""
    return WebSocketResource(websocket_factory(router, options))


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


def deadline_site(root: IResource, options: ListenerOptions, reactor: Any) -> HandshakeDeadlineSite:
    """A web site serving ``root`` whose connections must complete the WebSocket upgrade
    (or their HTTP request) within ``options.open_handshake_timeout``."""
    return HandshakeDeadlineSite(root, options.open_handshake_timeout, reactor=reactor)


def site(router: RouterCore, options: ListenerOptions) -> HandshakeDeadlineSite:
    """A web site serving :func:`websocket_resource` at ``options.path``."""
    root = mount({options.path: websocket_resource(router, options)})
    return deadline_site(root, options, router.reactor)


def listen(router: RouterCore, options: ListenerOptions) -> defer.Deferred[IListeningPort]:
    """Serve WAMP over WebSocket at ``options.path`` on ``options.endpoint`` (an endpoint
    string without ``backlog=`` listens with a backlog of
    :data:`~promisifier.relay.endpoints.DEFAULT_BACKLOG`)."""
    endpoint = options.endpoint
    if isinstance(endpoint, str):
        endpoint = serverFromString(router.reactor, with_backlog(endpoint))
    return endpoint.listen(site(router, options))


class Listening:
    """The network entry points as methods of a router (mixed into :class:`promisifier.Router`).

    Each takes the router configuration's settings; ``auth`` overrides its authentication.
    """

    config: RouterConfig
    reactor: Any

    def listener_options(self, **overrides: Any) -> ListenerOptions:
        """:class:`ListenerOptions` from this router's configuration, except ``overrides``."""
        return ListenerOptions.from_config(self.config, **overrides)

    def websocket_factory(self, auth: AuthConfig | None = None) -> WampServerFactory:
        """An autobahn server factory that feeds connections into this router.

        ``auth``: the authentication methods of this entry point (default: the config's).
        """
        return websocket_factory(self, self.listener_options(auth=auth))  # type: ignore[arg-type]

    def rawsocket_factory(self, auth: AuthConfig | None = None) -> RawSocketServerFactory:
        """A Twisted server factory speaking WAMP over RawSocket (length-prefixed frames on
        TCP, TLS or a UNIX socket) into this router; listen with any server endpoint, e.g.
        ``serverFromString(reactor, "tcp:8081").listen(router.rawsocket_factory())``.

        ``auth``: the authentication methods of this entry point (default: the config's).
        """
        return rawsocket_factory(self, self.listener_options(auth=auth))  # type: ignore[arg-type]

    def resource(self, auth: AuthConfig | None = None) -> IResource:
        """A ``twisted.web`` resource speaking WAMP over WebSocket, to mount in a site."""
        return websocket_resource(self, self.listener_options(auth=auth))  # type: ignore[arg-type]

    def site(self, path: str = DEFAULT_PATH, auth: AuthConfig | None = None) -> HandshakeDeadlineSite:
        """A web site serving :meth:`resource` at ``path`` (e.g. ``"/ws"``). A connection
        that has not completed the WebSocket upgrade within the configuration's
        ``open_handshake_timeout`` is closed."""
        return site(self, self.listener_options(path=path, auth=auth))  # type: ignore[arg-type]

    def listen(
        self, endpoint: str | IStreamServerEndpoint, path: str = DEFAULT_PATH, auth: AuthConfig | None = None
    ) -> defer.Deferred[IListeningPort]:
        """Listen on ``endpoint`` (a Twisted endpoint string such as ``"tcp:8080"``)."""
        return listen(self, self.listener_options(endpoint=endpoint, path=path, auth=auth))  # type: ignore[arg-type]


__all__ = [
    "DEFAULT_PATH",
    "Listening",
    "ListenerOptions",
    "deadline_site",
    "listen",
    "mount",
    "rawsocket_factory",
    "reconfigure_rawsocket_factory",
    "session_factory",
    "websocket_factory",
    "websocket_resource",
    "site",
]
