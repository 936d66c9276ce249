"""Transports: the Twisted protocol factories that carry WAMP messages (WebSocket, RawSocket).

Only this package touches the network. It negotiates the WAMP subprotocol, decodes and
checks every received frame once (through :mod:`promisifier.wire`), keeps per-connection
statistics and facts, and hands messages to a *handler* (the router's or the client's
session), which sees the connection only as a peer with ``send`` and ``close``.

The names below are imported on first use, so that the I/O-free modules of this package
(:mod:`~promisifier.transport.closing`, :mod:`~promisifier.transport.stats`,
:mod:`~promisifier.transport.limits`) can be used without loading autobahn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from promisifier.lazy import lazy_names

if TYPE_CHECKING:
    from promisifier.transport.closing import CloseCode, truncate_reason
    from promisifier.transport.stats import ConnectionStats
    from promisifier.transport.websocket import (
        MessageHandler,
        WampClientFactory,
        WampClientProtocol,
        WampServerFactory,
        WampServerProtocol,
    )

_HOMES = {
    "CloseCode": "promisifier.transport.closing",
    "truncate_reason": "promisifier.transport.closing",
    "ConnectionStats": "promisifier.transport.stats",
}

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

__getattr__, __dir__ = lazy_names(
    __name__, {name: _HOMES.get(name, "promisifier.transport.websocket") for name in __all__}
)
