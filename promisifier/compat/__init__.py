"""The seeds' APIs as thin façades over the client and the router.

Each façade is a module of its own (e.g. :mod:`promisifier.compat.websockets`, the
Dirigible-style plain WebSocket endpoints, also importable as ``promisifier.websockets``).
Nothing is imported here, so that importing one façade does not load the others.
"""

from promisifier.lazy import lazy_names

# name -> module that defines it; imported on first use
_LAZY = {
    "create_websocket_promisifier": "promisifier.compat.websocket_promisifier",
    "Client": "promisifier.compat.rpc_client",
    "Server": "promisifier.compat.rpc_server",
    "RpcError": "promisifier.compat.common",
}

__all__ = sorted(_LAZY)

__getattr__, _ = lazy_names(__name__, _LAZY)
