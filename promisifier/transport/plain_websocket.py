"""Plain (non-WAMP) WebSocket endpoints served by handler objects, in the style of
Dirigible's websockets API. Also importable as ``promisifier.websockets`` and
``promisifier.compat.websockets``.

A *handler* is any object or module with some of these functions (all optional)::

    def on_open(client): ...                    # a connection opened
    def on_message(client, message): ...        # str for a text frame, bytes for a binary one
    def on_error(client, error): ...            # another handler function raised ``error``
    def on_close(client, code, reason): ...     # the connection is gone (1006: no close frame)

:func:`create_websocket` makes the ``twisted.web`` resource for one endpoint; mount it in a
site (``root.putChild(b"echo", create_websocket("/echo", handler))``), or declare it in the
relay's config file (``[[endpoints]] path = "/echo"``, ``handler = "package.module"``) to
serve it on the same port as WAMP. No WebSocket subprotocol is required.

Every open connection is a :class:`WebSocketClient` in one registry for the process:
:func:`get_clients`, :func:`get_client` (by id) and :func:`get_client_by_handler`.

A handler function that raises (or returns a Deferred or coroutine that fails) is logged,
``on_error(client, error)`` is called, and the connection is closed with 1011 (internal
error); the server goes on.
"""

from __future__ import annotations

import inspect
import itertools
from typing import Any

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionRequest
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from promisifier.dotted import resolve_dotted
from promisifier.transport.closing import CloseCode, truncate_reason
from promisifier.transport.limits import DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_OPEN_HANDSHAKE_TIMEOUT
from promisifier.transport.proxies import TrustedProxies

__all__ = [
    "PlainWebSocketFactory",
    "WebSocketClient",
    "create_websocket",
    "get_client",
    "get_client_by_handler",
    "get_clients",
]

log = Logger(namespace="promisifier.websockets")

_HANDLER_FUNCTIONS = ("on_open", "on_message", "on_error", "on_close")

#: the registry: every open connection of every endpoint, by id (in order of opening)
_clients: dict[int, WebSocketClient] = {}
_client_ids = itertools.count(1)


def get_clients() -> list[WebSocketClient]:
    """Every open connection of every plain endpoint, oldest first."""
    return list(_clients.values())


def get_client(client_id: int) -> WebSocketClient | None:
    """The open connection with this id, or None."""
    return _clients.get(client_id)


def get_client_by_handler(handler: Any) -> list[WebSocketClient]:
    """The open connections served by ``handler`` (the handler object or module, or the
    dotted path it was given as), oldest first."""
    return [
        client
        for client in _clients.values()
        if client.handler is handler or (isinstance(handler, str) and client.factory.handler_name == handler)
    ]


def _is_sendable_close_code(code: int) -> bool:
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011) or 3000 <= code <= 4999


class WebSocketClient:
    """One open connection of a plain endpoint, as handlers and the registry see it."""

    def __init__(self, protocol: PlainWebSocketProtocol, client_id: int) -> None:
        self._protocol = protocol
        #: unique in this process
        self.id = client_id
        #: the path of the endpoint (as given to :func:`create_websocket`)
        self.uri: str = protocol.factory.uri
        #: the handler serving this connection
        self.handler: Any = protocol.factory.handler
        #: the remote address, e.g. ``tcp4:127.0.0.1:50124`` (X-Forwarded-For from trusted proxies)
        self.peer: str = protocol.peer

    @property
    def factory(self) -> PlainWebSocketFactory:
        return self._protocol.factory

    @property
    def connected(self) -> bool:
        """True while the connection is open (before either side started closing)."""
        return self._protocol.state == WebSocketServerProtocol.STATE_OPEN

    def send(self, message: str | bytes) -> bool:
        """Send a text frame (``str``) or a binary frame (``bytes``). False, and nothing
        sent, when the connection is not open any more."""
        if isinstance(message, str):
            payload, binary = message.encode("utf-8"), False
        elif isinstance(message, (bytes, bytearray, memoryview)):
            payload, binary = bytes(message), True
        else:
            raise TypeError(f"send() takes str or bytes, not {type(message).__name__}")
        if not self.connected:
            return False
        self._protocol.sendMessage(payload, isBinary=binary)
        return True

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the closing handshake (a no-op once closing). ``reason`` is shortened to
        123 bytes of UTF-8."""
        code = int(code)
        if not _is_sendable_close_code(code):
            raise ValueError(f"close code {code} cannot be sent (1000-1003, 1007-1011 or 3000-4999)")
        if self.connected:
            self._protocol.sendCloseFrame(code=code, reasonUtf8=truncate_reason(reason).encode("utf-8"), isReply=False)

    def __repr__(self) -> str:
        state = "open" if self.connected else "closed"
        return f"<WebSocketClient {self.id} {self.uri} {self.peer} {state}>"


class PlainWebSocketProtocol(WebSocketServerProtocol):
    """Calls the factory's handler for each event of one connection."""

    factory: PlainWebSocketFactory
    client: WebSocketClient | None = None

    def onConnect(self, request: ConnectionRequest) -> None:  # noqa: N802 - autobahn API
        forwarded = self.factory.trusted_proxies.forwarded_peer(
            self.transport.getPeer(), request.headers.get("x-forwarded-for")
        )
        if forwarded is not None:
            self.peer = forwarded
        return None  # no subprotocol

    def onOpen(self) -> None:  # noqa: N802
        client = self.client = WebSocketClient(self, next(_client_ids))
        _clients[client.id] = client
        self.factory.clients.add(client)
        self._call("on_open")

    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802, N803
        if self.client is None or self.state != self.STATE_OPEN:
            return  # sent before our close frame reached the peer
        # autobahn has checked that a text frame is valid UTF-8
        self._call("on_message", payload if isBinary else payload.decode("utf-8"))

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:  # noqa: N802, N803
        client, self.client = self.client, None
        if client is None:
            return  # closed before it opened
        _clients.pop(client.id, None)
        self.factory.clients.discard(client)
        self._call("on_close", code if code is not None else CloseCode.ABNORMAL, reason or "", client=client)

    def _call(self, name: str, *args: Any, client: WebSocketClient | None = None) -> None:
        client = client or self.client
        function = getattr(self.factory.handler, name, None)
        if function is None or client is None:
            return
        try:
            result = function(client, *args)
        except Exception:  # noqa: BLE001 - a handler's bug must not stop the server
            self._failed(Failure(), name, client)
            return
        if inspect.iscoroutine(result):
            result = defer.ensureDeferred(result)
        if isinstance(result, defer.Deferred):
            result.addErrback(self._failed, name, client)

    def _failed(self, failure: Failure, name: str, client: WebSocketClient) -> None:
        log.failure(
            "plain WebSocket {uri}: {handler}.{function} raised; closing connection {id} from {peer} with 1011",
            failure,
            uri=client.uri,
            handler=self.factory.handler_name,
            function=name,
            id=client.id,
            peer=client.peer,
        )
        if name not in ("on_error", "on_close"):
            self._call("on_error", failure.value, client=client)
        client.close(CloseCode.INTERNAL_ERROR, "internal error")


class PlainWebSocketFactory(WebSocketServerFactory):
    """The autobahn factory of one plain endpoint; ``clients`` are its open connections."""

    protocol = PlainWebSocketProtocol

    def __init__(
        self,
        uri: str,
        handler: Any,
        *,
        handler_name: str | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        open_handshake_timeout: float = DEFAULT_OPEN_HANDSHAKE_TIMEOUT,
        trusted_proxies: tuple[str, ...] = (),
        reactor: Any = None,
    ) -> None:
        super().__init__(reactor=reactor)
        self.uri = uri
        self.handler = handler
        self.handler_name = handler_name or getattr(handler, "__name__", None) or type(handler).__name__
        self.trusted_proxies = TrustedProxies(trusted_proxies)
        self.clients: set[WebSocketClient] = set()
        self.setProtocolOptions(
            maxMessagePayloadSize=max_message_size,
            maxFramePayloadSize=max_message_size,
            openHandshakeTimeout=open_handshake_timeout,
            failByDrop=False,
        )

    def close_all(self, code: int = CloseCode.GOING_AWAY, reason: str = "") -> None:
        """Close every open connection of this endpoint."""
        for client in list(self.clients):
            client.close(code, reason)


def resolve_handler(handler: Any) -> tuple[Any, str | None]:
    """(handler object, dotted name or None): a dotted path is imported; a class (named
    or given) is instantiated once, without arguments."""
    name = None
    if isinstance(handler, str):
        name, handler = handler, resolve_dotted(handler)
    if inspect.isclass(handler):
        handler = handler()
    if not any(hasattr(handler, function) for function in _HANDLER_FUNCTIONS):
        raise TypeError(f"{name or handler!r} has none of {', '.join(_HANDLER_FUNCTIONS)}")
    return handler, name


def create_websocket(
    uri_path: str,
    handler: Any,
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    open_handshake_timeout: float = DEFAULT_OPEN_HANDSHAKE_TIMEOUT,
    trusted_proxies: tuple[str, ...] = (),
    reactor: Any = None,
) -> WebSocketResource:
    """A ``twisted.web`` resource serving a plain WebSocket endpoint with ``handler``.

    ``handler``: an object or module with ``on_open``/``on_message``/``on_error``/
    ``on_close``, or the dotted path of one (``"package.module"``). The resource's
    ``factory`` attribute is its :class:`PlainWebSocketFactory`.
    """
    handler, name = resolve_handler(handler)
    factory = PlainWebSocketFactory(
        uri_path,
        handler,
        handler_name=name,
        max_message_size=max_message_size,
        open_handshake_timeout=open_handshake_timeout,
        trusted_proxies=trusted_proxies,
        reactor=reactor,
    )
    resource = WebSocketResource(factory)
    resource.factory = factory  # type: ignore[attr-defined]
    return resource
