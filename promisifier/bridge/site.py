"""The bridge resources of one relay listener, by URL path (mounted beside its WAMP WebSocket)."""

from __future__ import annotations

from typing import Any

from twisted.web.resource import IResource

from promisifier.bridge.mount import rpc_websockets_resource


def bridge_resources(router: Any, listener: Any) -> dict[str, IResource]:
    """Path -> resource for the listener's rpc-websockets paths."""
    resources: dict[str, IResource] = {}
    for config in listener.rpc_websockets:
        resources[config.path] = rpc_websockets_resource(
            router, config, auth=listener.auth, max_message_size=listener.max_message_size
        )
    return resources
