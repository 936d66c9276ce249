"""Plain (non-WAMP) WebSocket endpoints with handlers, in the style of Dirigible's
websockets API: ``create_websocket``, ``get_clients``, ``get_client``,
``get_client_by_handler``. See :mod:`promisifier.transport.plain_websocket`."""

from promisifier.transport.plain_websocket import (
    PlainWebSocketFactory,
    WebSocketClient,
    create_websocket,
    get_client,
    get_client_by_handler,
    get_clients,
)

__all__ = [
    "PlainWebSocketFactory",
    "WebSocketClient",
    "create_websocket",
    "get_client",
    "get_client_by_handler",
    "get_clients",
]
