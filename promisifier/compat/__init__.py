"""The seeds' APIs as thin façades over the client and the router.

Each façade is a module of its own (e.g. :mod:`promisifier.compat.websockets`, the
Dirigible-style plain WebSocket endpoints, also importable as ``promisifier.websockets``).
Nothing is imported here, so that importing one façade does not load the others.
"""

from importlib import import_module
from typing import Any

# name -> module that defines it; imported on first use
_LAZY = {
    "create_websocket_promisifier": "promisifier.compat.websocket_promisifier",
    "Client": "promisifier.compat.rpc_client",
    "Server": "promisifier.compat.rpc_server",
    "RpcError": "promisifier.compat.common",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'promisifier.compat' has no attribute {name!r}")
    return getattr(import_module(module), name)
