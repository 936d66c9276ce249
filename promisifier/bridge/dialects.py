"""WAMP and the rpc-websockets dialect on the same URL: the client's subprotocol decides.

A WAMP client offers ``wamp.2.json`` / ``wamp.2.msgpack`` in ``Sec-WebSocket-Protocol``;
an rpc-websockets client offers none. :class:`BySubprotocol` hands each upgrade request
to the resource of its dialect.
"""

from __future__ import annotations

from typing import Any

from twisted.web.resource import IResource, Resource
from twisted.web.server import Request


class BySubprotocol(Resource):
    """``wamp`` for requests offering a ``wamp.2.*`` subprotocol, ``other`` for the rest."""

    isLeaf = True

    def __init__(self, wamp: IResource, other: IResource) -> None:
        super().__init__()
        self.wamp = wamp
        self.other = other

    def render(self, request: Request) -> Any:
        offered = request.getHeader(b"sec-websocket-protocol") or b""
        wants_wamp = any(name.strip().startswith(b"wamp.2.") for name in offered.split(b","))
        return (self.wamp if wants_wamp else self.other).render(request)
