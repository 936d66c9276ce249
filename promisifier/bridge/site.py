"""The bridge resources of one relay listener, by URL path (mounted beside its WAMP WebSocket)."""

from __future__ import annotations

from typing import Any

from twisted.web.resource import IResource

from promisifier.bridge.http import HttpBridgeResource
from promisifier.bridge.mount import rpc_websockets_resource
from promisifier.listen import ListenerOptions


def bridge_resources(router: Any, listener: Any, options: ListenerOptions) -> dict[str, IResource]:
    """Path -> resource for the listener's rpc-websockets paths, HTTP bridge and static
    folders (except one at '/': see :func:`with_static_root`); ``options``: the
    listener's (auth, message size, keep-alive, trusted proxies)."""
    resources: dict[str, IResource] = {}
    for config in listener.rpc_websockets:
        resources[config.path] = rpc_websockets_resource(router, config, options)
    if listener.http is not None:
        resources[listener.http.path] = HttpBridgeResource(router, listener.http, options)
    for static in listener.static:
        if static.path.strip("/"):
            from twisted.web.static import File  # imported on use: its import warns (Twisted 22.10+)

            resources[static.path] = File(static.directory)
    return resources


def with_static_root(listener: Any, root: IResource) -> IResource:
    """``root`` as it is, or the listener's static folder at '/' with ``root``'s children."""
    folder = next((static for static in listener.static if not static.path.strip("/")), None)
    if folder is None:
        return root
    from twisted.web.static import File

    files = File(folder.directory)
    for name, child in getattr(root, "children", {}).items():
        files.putChild(name, child)
    return files
