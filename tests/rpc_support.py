"""A hand-written rpc-websockets client for tests that check the dialect frame by frame.

:class:`FrameClient` sends what it is given (JSON in text frames, msgpack in binary
frames, or raw bytes) and queues every frame that comes back, decoded by its kind.
Real-client tests use the ``rpc-websockets`` npm package (tests/test_rpc_websockets_js.py).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

import msgpack
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint

from tests.support import within


class _Protocol(WebSocketClientProtocol):
    client: FrameClient

    def onOpen(self) -> None:  # noqa: N802 - autobahn API
        self.client.opened.callback(self.client)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802, N803
        value = msgpack.unpackb(payload, raw=False) if isBinary else json.loads(payload)
        self.client.frames.put((value, isBinary))

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:  # noqa: N802, N803
        if not self.client.opened.called:
            self.client.opened.errback(ConnectionError(f"refused: {code} {reason}"))
        self.client.closed.callback((code, reason))


class FrameClient:
    """One connection to an rpc-websockets path."""

    def __init__(self) -> None:
        self.protocol: _Protocol | None = None
        self.frames: defer.DeferredQueue = defer.DeferredQueue()
        self.opened: defer.Deferred = defer.Deferred()
        self.closed: defer.Deferred = defer.Deferred()
        self._ids = 0

    @classmethod
    def connect(cls, url: str, max_message_size: int = 0) -> defer.Deferred[FrameClient]:
        client = cls()
        parsed = urlparse(url)
        factory = WebSocketClientFactory(url)
        factory.setProtocolOptions(maxMessagePayloadSize=max_message_size, maxFramePayloadSize=max_message_size)

        def build(_: Any) -> _Protocol:
            protocol = _Protocol()
            protocol.factory = factory
            protocol.client = client
            client.protocol = protocol
            return protocol

        factory.buildProtocol = build  # type: ignore[method-assign]
        endpoint = TCP4ClientEndpoint(reactor, parsed.hostname, parsed.port)
        endpoint.connect(factory).addErrback(client.opened.errback)
        return within(client.opened)

    def send(self, value: Any, binary: bool = False) -> None:
        """Send ``value`` as JSON text, or msgpack when ``binary``."""
        payload = msgpack.packb(value, use_bin_type=True) if binary else json.dumps(value).encode("utf-8")
        self.send_raw(payload, binary)

    def send_raw(self, payload: bytes, binary: bool = False) -> None:
        assert self.protocol is not None
        self.protocol.sendMessage(payload, binary)

    def next(self) -> defer.Deferred[Any]:
        """The next frame received, decoded (waits a bounded time)."""
        return within(self.frames.get()).addCallback(lambda frame: frame[0])

    def next_frame(self) -> defer.Deferred[tuple[Any, bool]]:
        """The next frame received: (decoded value, was it binary)."""
        return within(self.frames.get())

    @defer.inlineCallbacks
    def call(self, method: str, params: Any = None, binary: bool = False) -> Any:
        """Send a request with a fresh id; fires with the response (checked to carry that id)."""
        self._ids += 1
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": self._ids}
        if params is not None:
            request["params"] = params
        self.send(request, binary)
        response = yield self.next()
        assert response.get("id") == self._ids, response
        return response

    def close(self) -> defer.Deferred:
        if self.protocol is not None and not self.closed.called:
            self.protocol.sendClose(1000)
        return within(self.closed)
