"""WebSocket transport: Twisted protocol factories that carry WAMP messages.

Only this package touches the network. It negotiates the WAMP subprotocol, decodes and
checks every received frame once (through :mod:`promisifier.wire`), keeps per-connection
statistics and facts, and hands messages to a *handler* (the router's or the client's
session), which sees the connection only as a peer with ``send`` and ``close``.
"""

from promisifier.transport.closing import CloseCode, truncate_reason
from promisifier.transport.stats import ConnectionStats
from promisifier.transport.websocket import (
    MessageHandler,
    WampClientFactory,
    WampClientProtocol,
    WampServerFactory,
    WampServerProtocol,
)

__all__ = [
    "CloseCode",
    "ConnectionStats",
    "MessageHandler",
    "WampClientFactory",
    "WampClientProtocol",
    "WampServerFactory",
    "WampServerProtocol",
    "truncate_reason",
]
