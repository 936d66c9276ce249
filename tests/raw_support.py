"""A raw WAMP-over-WebSocket client for tests that send what no real client would.

:class:`RawClient` (autobahn's ``WebSocketClientProtocol``, no WAMP on top) sends
hand-made frames and records everything that comes back; every frame the router sends
is parsed by autobahn's own WAMP serializer, and a frame autobahn rejects fails the test.
Helpers join, expect an ABORT or a close code, and check that a router is unharmed and
idle afterwards. ``no_unhandled_errors`` is an autouse fixture for the modules that
import it: it fails a test in which an exception reached Twisted's log.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import msgpack
import pytest
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.wamp import message as wamp
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.logger import formatEvent, globalLogPublisher

from promisifier.router import RouterConfig
from tests.support import WAIT, autobahn_serializer, connect_autobahn, leave_and_wait, router_idle, start_router, within

SUBPROTOCOLS = {"json": "wamp.2.json", "msgpack": "wamp.2.msgpack"}
SERIALIZER_OF = {subprotocol: name for name, subprotocol in SUBPROTOCOLS.items()}
OTHER = {"json": "msgpack", "msgpack": "json"}

PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
NO_SUCH_REALM = "wamp.error.no_such_realm"
NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
CANCELED = "wamp.error.canceled"
GOODBYE_AND_OUT = "wamp.close.goodbye_and_out"

ALL_ROLES = {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}

# WAMP message type codes used to build hand-made messages
HELLO, WELCOME, ABORT, CHALLENGE, AUTHENTICATE, GOODBYE, ERROR = 1, 2, 3, 4, 5, 6, 8
PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, UNSUBSCRIBE, UNSUBSCRIBED, EVENT = 16, 17, 32, 33, 34, 35, 36
CALL, RESULT, REGISTER, REGISTERED, UNREGISTER, UNREGISTERED, INVOCATION, INTERRUPT, YIELD = (
    48,
    50,
    64,
    65,
    66,
    67,
    68,
    69,
    70,
)

serializers = pytest.mark.parametrize("serializer", ["json", "msgpack"])


def hello(realm: str = "realm1", details: dict | None = None) -> list:
    return [HELLO, realm, details if details is not None else {"roles": ALL_ROLES}]


# -- no exception may escape into the log -------------------------------------------------


def logged_failure(event: dict) -> Any:
    """The Failure an event carries: ``log_failure`` (twisted.logger), or ``failure`` with
    ``isError`` (legacy ``twisted.python.log.err``, e.g. Twisted's "Unhandled Error" when a
    protocol's dataReceived raises: such events reach the new publisher without
    ``log_failure``)."""
    failure = event.get("log_failure")
    if failure is None and event.get("isError"):
        failure = event.get("failure")
    return failure


@pytest.fixture(autouse=True)
def no_unhandled_errors():
    """Collect twisted.logger events during the test; none may carry a failure."""
    events: list[dict] = []
    observer = events.append
    globalLogPublisher.addObserver(observer)
    try:
        yield events
    finally:
        globalLogPublisher.removeObserver(observer)
    failures = [event for event in events if logged_failure(event) is not None]
    if failures:
        lines = []
        for event in failures:
            text = formatEvent(event) or event.get("why") or ""
            lines.append(f"{event.get('log_namespace')}: {text}\n{logged_failure(event).getTraceback()}")
        pytest.fail("an exception escaped into the log:\n" + "\n".join(lines), pytrace=False)


# -- the raw WebSocket test client ---------------------------------------------------------


class ConnectionClosed(Exception):
    """The connection closed while a message was awaited."""

    def __init__(self, code: int | None, reason: str | None) -> None:
        super().__init__(f"connection closed ({code}, {reason!r}) before the next message")
        self.code = code
        self.reason = reason


class UnparsableFrame(Exception):
    """autobahn's WAMP serializer rejected a frame the router sent."""


class RawWampProtocol(WebSocketClientProtocol):
    """Plain WebSocket client protocol; everything goes to ``factory.client``."""

    def onConnect(self, response):  # noqa: N802 - autobahn API
        self.factory.client._on_connect(self, response)

    def onOpen(self):  # noqa: N802
        self.factory.client._on_open()

    def onMessage(self, payload, isBinary):  # noqa: N802, N803
        self.factory.client._on_message(payload, isBinary)

    def onCloseFrame(self, code, reasonRaw):  # noqa: N802, N803
        client = self.factory.client
        if client.hold_close:
            # Do not answer the router's close frame yet: the router's side of the
            # connection stays in its closing handshake until release_close().
            client._held_close = (code, reasonRaw)
            client._on_close_frame(code, reasonRaw)
            return None
        client._on_close_frame(code, reasonRaw)
        return super().onCloseFrame(code, reasonRaw)

    def onClose(self, wasClean, code, reason):  # noqa: N802, N803
        self.factory.client._on_close(wasClean, code, reason)


class RawClient:
    """Records every frame the router sends, decoded by autobahn's WAMP serializer.

    ``opened`` fires with True when the WebSocket opened, with False when the connection
    closed before it did. ``closed`` fires with ``(code, reason)``; ``close_frame`` with
    ``(code, reason)`` when the router's close frame arrives.
    """

    def __init__(self) -> None:
        self.protocol: RawWampProtocol | None = None
        self.subprotocol: str | None = None
        self.serializer_name: str | None = None
        self._judge: Any = None
        #: every received frame as (payload, isBinary)
        self.frames: list[tuple[bytes, bool]] = []
        #: every received WAMP message, as parsed by autobahn
        self.messages: list[Any] = []
        #: frames autobahn could not parse: (payload, isBinary, exception)
        self.parse_failures: list[tuple[bytes, bool, Exception]] = []
        self._unread: deque = deque()
        self._waiters: deque = deque()
        self.opened: defer.Deferred = defer.Deferred()
        self.closed: defer.Deferred = defer.Deferred()
        self.close_frame: defer.Deferred = defer.Deferred()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.was_clean: bool | None = None
        self.hold_close = False
        self._held_close: tuple | None = None

    # -- events from the protocol ----------------------------------------------------

    def _on_connect(self, protocol: RawWampProtocol, response: Any) -> None:
        self.protocol = protocol
        self.subprotocol = response.protocol
        self.serializer_name = SERIALIZER_OF.get(response.protocol)
        if self.serializer_name is not None:
            self._judge = autobahn_serializer(self.serializer_name)

    def _on_open(self) -> None:
        if not self.opened.called:
            self.opened.callback(True)

    def _on_message(self, payload: bytes, is_binary: bool) -> None:
        self.frames.append((payload, is_binary))
        try:
            if self._judge is None:
                raise UnparsableFrame(f"no WAMP subprotocol negotiated ({self.subprotocol!r})")
            parsed = self._judge.unserialize(payload, is_binary)
        except Exception as error:
            self.parse_failures.append((payload, is_binary, error))
            self._deliver(UnparsableFrame(f"autobahn cannot parse {payload[:200]!r} (binary={is_binary}): {error}"))
            return
        for msg in parsed:
            self.messages.append(msg)
            self._deliver(msg)

    def _on_close_frame(self, code: int | None, reason_raw: bytes | None) -> None:
        if not self.close_frame.called:
            reason = reason_raw.decode("utf-8", "replace") if reason_raw else ""
            self.close_frame.callback((code, reason))

    def _on_close(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        self.was_clean = was_clean
        self.close_code = code
        self.close_reason = reason
        if not self.opened.called:
            self.opened.callback(False)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.called:
                waiter.errback(ConnectionClosed(code, reason))
        if not self.closed.called:
            self.closed.callback((code, reason))

    def _deliver(self, item: Any) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if waiter.called:  # timed out and cancelled
                continue
            if isinstance(item, Exception):
                waiter.errback(item)
            else:
                waiter.callback(item)
            return
        self._unread.append(item)

    # -- for the test ----------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self.closed.called

    def next_message(self, timeout: float = WAIT) -> defer.Deferred:
        """The next received message not yet read (parsed by autobahn)."""
        if self._unread:
            item = self._unread.popleft()
            return defer.fail(item) if isinstance(item, Exception) else defer.succeed(item)
        if self.closed.called:
            return defer.fail(ConnectionClosed(self.close_code, self.close_reason))
        waiter: defer.Deferred = defer.Deferred()
        self._waiters.append(waiter)
        return within(waiter, timeout)

    def unread(self) -> list:
        """Messages received but not read with next_message."""
        return list(self._unread)

    def encode(self, msg: Any) -> tuple[bytes, bool]:
        if self.serializer_name == "json":
            return json.dumps(msg).encode("utf-8"), False
        return msgpack.packb(msg, use_bin_type=True), True

    def send(self, msg: Any) -> None:
        """Send ``msg`` (any value, not only a valid message) with the negotiated serializer."""
        payload, is_binary = self.encode(msg)
        self.send_raw(payload, is_binary)

    def send_raw(self, payload: bytes, is_binary: bool) -> None:
        assert self.protocol is not None
        self.protocol.sendMessage(payload, isBinary=is_binary)

    def close(self, code: int = 1000, reason: str = "test done") -> defer.Deferred:
        """Start the closing handshake; fires with (code, reason) when the connection is gone."""
        if not self.closed.called and self.protocol is not None:
            if self._held_close is not None:
                self.release_close()
            else:
                self.protocol.sendClose(code, reason)
        return within(self.closed)

    def release_close(self) -> None:
        """Answer the router's close frame that was held back (see ``hold_close``)."""
        held, self._held_close = self._held_close, None
        self.hold_close = False
        assert held is not None, "no close frame was held"
        WebSocketClientProtocol.onCloseFrame(self.protocol, *held)


#: raw clients of the running test, dropped by run_case if a failed test left them open
LIVE_CLIENTS: list[RawClient] = []


def host_port(url: str) -> tuple[str, int]:
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    return host, int(port)


@defer.inlineCallbacks
def raw_connect(url: str, serializer: str = "json", protocols: list[str] | None = None, wait_open: bool = True):
    """Open a raw WebSocket offering ``protocols`` (default: the one of ``serializer``)."""
    client = RawClient()
    LIVE_CLIENTS.append(client)
    if protocols is None:
        protocols = [SUBPROTOCOLS[serializer]]
    factory = WebSocketClientFactory(url, protocols=protocols)
    factory.protocol = RawWampProtocol
    factory.client = client
    host, port = host_port(url)
    yield within(TCP4ClientEndpoint(reactor, host, port, timeout=WAIT).connect(factory))
    if wait_open:
        opened = yield within(client.opened)
        assert opened, f"WebSocket did not open: {client.close_code} {client.close_reason!r}"
    return client


@defer.inlineCallbacks
def raw_join(url: str, serializer: str = "json", realm: str = "realm1"):
    """A raw client that sent HELLO and got WELCOME."""
    client = yield raw_connect(url, serializer)
    client.send(hello(realm))
    welcome = yield client.next_message()
    assert isinstance(welcome, wamp.Welcome), welcome
    assert welcome.realm == realm
    return client


@defer.inlineCallbacks
def expect_abort(client: RawClient, reason: str, close_code: int | None = 1002):
    """The next message is ABORT ``reason``; then the router closes with ``close_code``.

    ``close_code=None`` accepts any clean close (the router sent a close frame).
    """
    abort = yield client.next_message()
    assert isinstance(abort, wamp.Abort), f"expected ABORT {reason}, got {abort}"
    assert abort.reason == reason, abort
    assert isinstance(abort.message, str) and abort.message, "ABORT.Details.message should say what was wrong"
    code, _ = yield within(client.closed)
    if close_code is None:
        assert code != 1006, f"router dropped the connection instead of closing it: {client.close_reason}"
    else:
        assert code == close_code, (code, client.close_reason)
    assert client.unread() == [], f"messages after ABORT: {client.unread()}"
    return abort


@defer.inlineCallbacks
def expect_close(client: RawClient, close_code: int):
    """The router closes the connection with ``close_code`` and sends nothing before that."""
    code, reason = yield within(client.closed)
    assert code == close_code, (code, reason, client.messages)
    assert reason, "the close frame should carry a reason"
    assert client.unread() == [], f"unexpected messages: {client.unread()}"
    return reason


def send_garbage(client: RawClient, serializer: str) -> None:
    """A frame of the right kind that does not decode (valid UTF-8 for JSON: the router's
    decoder rejects it, not autobahn's UTF-8 check)."""
    if serializer == "json":
        client.send_raw(b"garbage {[", False)
    else:
        client.send_raw(b"\xc1 garbage", True)


# -- after each case: the router still works and holds nothing -----------------------------


@defer.inlineCallbacks
def assert_router_healthy(running, serializer: str = "json", clients: tuple = ()):
    """Close the raw clients; a normal autobahn callee and caller work; state drains to zero."""
    for client in clients:
        yield client.close()
        assert client.parse_failures == [], client.parse_failures
    callee = yield connect_autobahn(running.url, serializer=serializer)
    caller = yield connect_autobahn(running.url, serializer=OTHER[serializer])
    yield within(callee.register(lambda a, b: a + b, "com.hostile.healthy.add"))
    result = yield within(caller.call("com.hostile.healthy.add", 2, 3))
    assert result == 5
    yield leave_and_wait(caller)
    yield leave_and_wait(callee)
    for session in (callee, caller):
        assert session.judge.failures == [], session.judge.failures
        assert session.judge.parsed > 0
    yield router_idle(running.router)


@defer.inlineCallbacks
def run_case(body, serializer: str = "json", config: RouterConfig | None = None):
    """Run ``body(running_router)`` (yields raw clients to close), then the health check."""
    running = yield start_router(config)
    try:
        clients = yield body(running)
        yield assert_router_healthy(running, serializer, tuple(clients or ()))
    finally:
        left_open = [client for client in LIVE_CLIENTS if not client.is_closed and client.protocol is not None]
        LIVE_CLIENTS.clear()
        for client in left_open:  # only after a failure: do not wait for closing handshakes
            client.protocol.dropConnection(abort=True)
        yield defer.DeferredList([client.closed for client in left_open])
        yield running.stop()
