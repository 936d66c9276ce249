"""Plain (non-WAMP) WebSocket endpoints (``promisifier.websockets``, Dirigible style):
lifecycle, registry, failing handlers, and the relay serving them beside WAMP on one port."""

from __future__ import annotations

import uuid

import pytest
import pytest_twisted
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.web.server import Site

from promisifier import websockets
from promisifier.compat import websockets as compat_websockets
from promisifier.relay.relay_config import load_config
from promisifier.relay.service import RelayService
from promisifier.relay.site import mount
from tests.support import connect_autobahn, leave_and_wait, within

pytestmark = pytest.mark.slow


class PlainClient(WebSocketClientProtocol):
    """A test client: received messages in a queue; ``opened`` and ``closed`` Deferreds."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: defer.DeferredQueue = defer.DeferredQueue()
        self.opened: defer.Deferred = defer.Deferred()
        self.closed: defer.Deferred = defer.Deferred()

    def onOpen(self) -> None:  # noqa: N802
        self.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802, N803
        self.messages.put(payload if isBinary else payload.decode("utf-8"))

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:  # noqa: N802, N803
        if not self.opened.called:
            self.opened.errback(ConnectionError(f"closed before opening: {code} {reason}"))
        self.closed.callback((code, reason))

    def next_message(self) -> defer.Deferred:
        return within(self.messages.get())


@defer.inlineCallbacks
def connect_plain(port: int, path: str):
    factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}{path}")
    factory.protocol = PlainClient
    client = yield within(TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5).connect(factory))
    yield within(client.opened)
    return client


class Recorder:
    """A handler object that records every call; ``fail_on`` makes a function raise."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.events: list[tuple] = []
        self.fail_on = fail_on
        #: (client, code, reason) of each closed connection
        self.closes: defer.DeferredQueue = defer.DeferredQueue()

    def _record(self, name: str, *args) -> None:
        self.events.append((name, *args))
        if name == self.fail_on:
            raise RuntimeError(f"{name} failed on purpose")

    def on_open(self, client) -> None:
        self._record("on_open", client)

    def on_message(self, client, message) -> None:
        self._record("on_message", client, message)
        client.send(message)

    def on_error(self, client, error) -> None:
        self._record("on_error", client, error)

    def on_close(self, client, code, reason) -> None:
        self.events.append(("on_close", client, code, reason))
        self.closes.put((client, code, reason))


@pytest.fixture
def serve(request):
    """``serve({path: resource, ...})`` listens on 127.0.0.1 and returns the port number."""
    ports = []

    def start(resources):
        port = reactor.listenTCP(0, Site(mount(resources)), interface="127.0.0.1")
        ports.append(port)
        return port.getHost().port

    yield start
    for port in ports:
        pytest_twisted.blockon(port.stopListening())


@pytest_twisted.inlineCallbacks
def test_lifecycle_echo_registry_and_close(serve):
    handler = Recorder()
    port = serve({"/echo": websockets.create_websocket("/echo", handler)})
    assert websockets.get_clients() == []

    peer = yield connect_plain(port, "/echo")
    [(name, client)] = handler.events
    assert name == "on_open"
    assert (client.uri, client.handler, client.connected) == ("/echo", handler, True)
    assert client.peer.startswith("tcp4:127.0.0.1:")
    assert websockets.get_clients() == [client]
    assert websockets.get_client(client.id) is client
    assert websockets.get_client_by_handler(handler) == [client]
    assert websockets.get_client_by_handler(Recorder()) == []

    peer.sendMessage("héllo".encode(), isBinary=False)
    assert (yield peer.next_message()) == "héllo"
    peer.sendMessage(b"\x00\x01\xff", isBinary=True)
    assert (yield peer.next_message()) == b"\x00\x01\xff"
    assert [event[2] for event in handler.events if event[0] == "on_message"] == ["héllo", b"\x00\x01\xff"]

    # a second connection is a second client
    other = yield connect_plain(port, "/echo")
    assert len(websockets.get_client_by_handler(handler)) == 2
    other.sendClose(1000)
    yield within(other.closed)
    closed_client, _, _ = yield within(handler.closes.get())
    assert closed_client is not client and websockets.get_clients() == [client]

    assert client.send("from the server") is True
    assert (yield peer.next_message()) == "from the server"
    peer.sendClose(1000, "bye")
    assert (yield within(peer.closed))[0] == 1000
    assert (yield within(handler.closes.get())) == (client, 1000, "bye")
    assert websockets.get_clients() == [] and websockets.get_client(client.id) is None
    assert client.connected is False and client.send("too late") is False


@pytest_twisted.inlineCallbacks
def test_server_closes_with_a_code_and_reason(serve):
    handler = Recorder()
    port = serve({"/a/b/c": websockets.create_websocket("/a/b/c", handler)})
    peer = yield connect_plain(port, "/a/b/c")
    [client] = websockets.get_client_by_handler(handler)
    client.close(4001, "x" * 200)  # the reason is shortened to 123 bytes
    code, reason = yield within(peer.closed)
    assert (code, reason) == (4001, "x" * 123)
    with pytest.raises(ValueError):
        client.close(1005)
    with pytest.raises(TypeError):
        client.send({"not": "sendable"})


@pytest.mark.parametrize("failing", ["on_open", "on_message"])
@pytest_twisted.inlineCallbacks
def test_handler_that_raises_closes_with_1011_and_the_server_goes_on(serve, failing):
    handler = Recorder(fail_on=failing)
    port = serve({"/fragile": websockets.create_websocket("/fragile", handler)})
    peer = yield connect_plain(port, "/fragile")
    if failing == "on_message":
        peer.sendMessage(b"boom", isBinary=False)
    code, _ = yield within(peer.closed)
    assert code == 1011
    yield within(handler.closes.get())
    errors = [event for event in handler.events if event[0] == "on_error"]
    assert len(errors) == 1 and isinstance(errors[0][2], RuntimeError)
    assert websockets.get_client_by_handler(handler) == []

    # the next connection is served (and fails the same way, without taking anything down)
    handler.fail_on = None
    again = yield connect_plain(port, "/fragile")
    again.sendMessage(b"fine", isBinary=False)
    assert (yield again.next_message()) == "fine"
    again.sendClose(1000)
    yield within(again.closed)


def test_handler_must_have_a_handler_function_and_is_reexported():
    with pytest.raises(TypeError):
        websockets.create_websocket("/x", object())
    assert websockets.create_websocket is compat_websockets.create_websocket


HANDLER_MODULE = """
from promisifier import websockets

def on_open(client):
    client.send("welcome %d" % len(websockets.get_client_by_handler(__name__)))

def on_message(client, message):
    client.send(message)
"""


@pytest_twisted.inlineCallbacks
def test_relay_serves_plain_endpoints_beside_wamp_on_one_port(tmp_path, monkeypatch):
    module = f"plain_echo_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(HANDLER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    config_file = tmp_path / "relay.toml"
    config_file.write_text(
        f"""
        [[listeners]]
        endpoint = "tcp:0:interface=127.0.0.1"
        path = "/ws"

        [[endpoints]]
        path = "/websockets/service/echo"
        handler = "{module}"

        [[endpoints]]
        path = "/websockets/other"
        handler = "{module}"
        """
    )
    service = RelayService(load_config(config_file), config_file=str(config_file), handle_sighup=False)
    service.startService()
    try:
        port = service.port.getHost().port
        plain = yield connect_plain(port, "/websockets/service/echo")
        assert (yield plain.next_message()) == "welcome 1"
        plain.sendMessage(b"ping", isBinary=False)
        assert (yield plain.next_message()) == "ping"
        [client] = websockets.get_client_by_handler(module)
        assert client.uri == "/websockets/service/echo"

        session = yield connect_autobahn(service.url)  # WAMP on the same port
        yield within(session.register(lambda: "pong", "com.example.ping"))
        assert (yield within(session.call("com.example.ping"))) == "pong"
        yield leave_and_wait(session)

        other = yield connect_plain(port, "/websockets/other")
        assert (yield other.next_message()) == "welcome 2"
        other.sendClose(1000)
        yield within(other.closed)
    finally:
        yield service.stopService()
    # stopping the relay closes the plain connections too
    code, _ = yield within(plain.closed)
    assert code == 1001
    assert websockets.get_clients() == []
