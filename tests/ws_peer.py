"""A WebSocket client that writes exactly the octets a test gives it, for conformance tests
against the relay's WebSocket endpoint over 127.0.0.1.

It does the opening handshake itself, then parses every frame the relay sends and
answers a close frame with a close frame (as any client would), so that the relay can
end the connection. Messages are WAMP: an "echo" is a PUBLISH to a topic the same
session subscribed to, with ``exclude_me`` off, which comes back as an EVENT carrying
the same argument; that is how a WAMP router can play the echo server the Autobahn test
suite expects.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import msgpack
from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol

from tests.support import WAIT, within
from tests.ws_frames import CLOSE, TEXT, ServerFrame, client_frame, close_payload, server_frames

HELLO, WELCOME, PUBLISH, SUBSCRIBE, SUBSCRIBED, EVENT = 1, 2, 16, 32, 33, 36
TOPIC = "com.conformance.echo"
ROLES = {"roles": {"publisher": {}, "subscriber": {}}}


class RawPeer(Protocol):
    """The client side of one connection; see the module docstring."""

    def __init__(self, subprotocol: str) -> None:
        self.subprotocol = subprotocol
        self.opened: defer.Deferred = defer.Deferred()
        self.lost: defer.Deferred = defer.Deferred()
        self.frames: list[ServerFrame] = []
        self.close_sent = False
        self._handshake_done = False
        self._buffer = b""
        self._read = 0
        self._waiting: defer.Deferred | None = None

    # -- Twisted ----------------------------------------------------------------------

    def connectionMade(self) -> None:  # noqa: N802 - Twisted API
        self.transport.setTcpNoDelay(True)
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: {self.subprotocol}\r\n\r\n"
            ).encode()
        )

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        self._buffer += data
        if not self._handshake_done:
            head, separator, rest = self._buffer.partition(b"\r\n\r\n")
            if not separator:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.opened.errback(AssertionError(head.decode("latin-1")))
                return
            self._handshake_done = True
            self._buffer = rest
            self.opened.callback(self)
        frames, self._buffer = server_frames(self._buffer)
        for frame in frames:
            self.frames.append(frame)
            if frame.opcode == CLOSE and not self.close_sent:
                self.send_close(frame.close_code)
        self._wake()

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802 - Twisted API
        self._wake()
        self.lost.callback(None)

    def _wake(self) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.callback(None)

    # -- writing ------------------------------------------------------------------------

    def send(self, octets: bytes) -> None:
        self.transport.write(octets)

    @defer.inlineCallbacks
    def send_chopped(self, octets: bytes, size: int = 1):
        """Write ``octets`` in writes of ``size`` octets, each in its own turn of the reactor
        (so that the kernel gets them as separate writes)."""
        for start in range(0, len(octets), size):
            self.transport.write(octets[start : start + size])
            yield task.deferLater(reactor, 0, lambda: None)

    def send_close(self, code: int | None = 1000, reason: bytes = b"") -> None:
        self.close_sent = True
        self.transport.write(client_frame(CLOSE, close_payload(code, reason)))

    # -- reading ------------------------------------------------------------------------

    @defer.inlineCallbacks
    def next_frame(self, timeout: float = WAIT):
        """The next frame the relay sent (fails when the connection ends first)."""
        while self._read == len(self.frames):
            if self.lost.called:
                raise AssertionError(f"connection lost; frames: {self.frames}")
            self._waiting = defer.Deferred()
            yield within(self._waiting, timeout)
        frame = self.frames[self._read]
        self._read += 1
        return frame

    @defer.inlineCallbacks
    def until_close(self, timeout: float = WAIT, hang_up: bool = False):
        """The frames up to and including the relay's close frame (answered with ours), once
        the relay has ended the TCP connection (or, with ``hang_up``, once we have)."""
        frames = []
        while not frames or frames[-1].opcode != CLOSE:
            frames.append((yield self.next_frame(timeout)))
        if hang_up:
            self.transport.loseConnection()
        yield within(self.lost, timeout)
        return frames

    @defer.inlineCallbacks
    def until_lost(self, timeout: float = WAIT):
        """The frames not read yet, once the relay has ended the TCP connection."""
        yield within(self.lost, timeout)
        rest = self.frames[self._read :]
        self._read = len(self.frames)
        return rest

    @defer.inlineCallbacks
    def finish(self, timeout: float = WAIT):
        """Close (unless a close was sent already), wait until the relay ends the TCP
        connection, and return the frames not read yet."""
        if not self.close_sent and not self.lost.called:
            self.send_close(1000)
        yield within(self.lost, timeout)
        rest = self.frames[self._read :]
        self._read = len(self.frames)
        return rest


@defer.inlineCallbacks
def connect_peer(port: int, subprotocol: str = "wamp.2.json"):
    """A :class:`RawPeer` with the WebSocket open (no WAMP message sent yet)."""
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    peer = RawPeer(subprotocol)
    yield endpoint.connect(Factory.forProtocol(lambda: peer))
    yield within(peer.opened)
    return peer


class EchoSession:
    """A joined WAMP session on a :class:`RawPeer` that subscribed to :data:`TOPIC`.

    ``publish_octets(argument)`` is the PUBLISH message (text for json, binary for
    msgpack) whose EVENT comes back with the same argument; for json, ``argument`` is
    the octets that go between the quotes of a JSON string, as they are (invalid UTF-8
    included), so that a test controls the octets of the text message.
    """

    def __init__(self, peer: RawPeer, binary: bool) -> None:
        self.peer = peer
        self.binary = binary
        self._request = 100

    @classmethod
    @defer.inlineCallbacks
    def join(cls, port: int, serializer: str = "json"):
        binary = serializer == "msgpack"
        peer = yield connect_peer(port, f"wamp.2.{serializer}")
        session = cls(peer, binary)
        peer.send(session.frame([HELLO, "realm1", ROLES]))
        welcome = session.decode((yield peer.next_frame()))
        assert welcome[0] == WELCOME, welcome
        peer.send(session.frame([SUBSCRIBE, 1, {}, TOPIC]))
        subscribed = session.decode((yield peer.next_frame()))
        assert subscribed[0] == SUBSCRIBED, subscribed
        return session

    def encode(self, message: list) -> bytes:
        return msgpack.packb(message, use_bin_type=True) if self.binary else json.dumps(message).encode()

    def decode(self, frame: ServerFrame) -> list:
        assert frame.opcode == (2 if self.binary else TEXT), frame
        return msgpack.unpackb(frame.payload, raw=False) if self.binary else json.loads(frame.payload)

    def frame(self, message: list) -> bytes:
        return client_frame(2 if self.binary else TEXT, self.encode(message))

    def publish_octets(self, argument: bytes) -> bytes:
        """The PUBLISH message that echoes ``argument`` (see the class docstring)."""
        self._request += 1
        return self._publish(self._request, argument)

    def publish_of_length(self, length: int) -> tuple[bytes, bytes]:
        """A PUBLISH message of exactly ``length`` octets, and its argument (padding)."""
        self._request += 1
        for padding in range(max(0, length - 80), length + 1):
            argument = b"*" * padding
            octets = self._publish(self._request, argument)
            if len(octets) == length:
                return octets, argument
        raise ValueError(f"no PUBLISH message of {length} octets")

    def _publish(self, request: int, argument: bytes) -> bytes:
        if self.binary:
            return self.encode([PUBLISH, request, {"exclude_me": False}, TOPIC, [argument]])
        prefix = f'[{PUBLISH},{request},{{"exclude_me":false}},"{TOPIC}",["'.encode()
        return prefix + argument + b'"]]'

    def echoed(self, frame: ServerFrame) -> Any:
        """The argument of the EVENT in ``frame``."""
        event = self.decode(frame)
        assert event[0] == EVENT, event
        return event[4][0]


def text_argument(text: str) -> bytes:
    """``text`` as it goes between the quotes of a JSON string (UTF-8, escaped as JSON
    requires, e.g. U+0000)."""
    return json.dumps(text, ensure_ascii=False)[1:-1].encode("utf-8")
