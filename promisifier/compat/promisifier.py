"""The former name of :mod:`promisifier.compat.websocket_promisifier`."""

from promisifier.compat.websocket_promisifier import (
    PromisifierStats,
    WebSocketPromisifier,
    create_websocket_promisifier,
    service_uri,
)

__all__ = ["PromisifierStats", "WebSocketPromisifier", "create_websocket_promisifier", "service_uri"]
