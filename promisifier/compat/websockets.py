"""The Dirigible-style plain WebSocket endpoints (``create_websocket``, ``get_clients``,
``get_client``, ``get_client_by_handler``): the façade of
:mod:`promisifier.transport.plain_websocket`, where they live (the relay serves them too).
"""

from promisifier.transport.plain_websocket import (
    PlainWebSocketFactory,
    WebSocketClient,
    create_websocket,
    get_client,
    get_client_by_handler,
    get_clients,
    resolve_handler,
)

__all__ = [
    "PlainWebSocketFactory",
    "WebSocketClient",
    "create_websocket",
    "get_client",
    "get_client_by_handler",
    "get_clients",
    "resolve_handler",
]
