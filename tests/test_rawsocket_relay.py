"""RawSocket in the relay and in our client.

The relay runs as a process (``python -m promisifier relay --endpoint ... --rawsocket
...``); our client joins over ``rs://`` and an autobahn-python WebSocket client over
``ws://``, and each calls a procedure the other registered, with json and msgpack. The
config file's ``transport = "rawsocket"`` listeners are checked with ``--check-config``
and through the relay service in this process. Everything talks to 127.0.0.1; every
wait is bounded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory, Protocol
from twisted.python import usage

from promisifier.client import connect
from promisifier.client.connection import parse_rawsocket_url
from promisifier.client.errors import ConnectionClosed
from promisifier.relay.command_line import RelayOptions
from promisifier.relay.relay_config import ConfigError, load_config
from promisifier.relay.service import RelayService, make_service
from tests.support import SERIALIZER_NAMES, connect_autobahn, free_ports, leave_and_wait, within

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
PYTHON_M = [sys.executable, "-m", "promisifier", "relay"]
#: bound on every wait for the relay process (seconds)
WAIT = 10.0


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    """A relay process with a WebSocket and a RawSocket listener: (ws URL, rs URL)."""
    ws_port, rs_port = free_ports(2)
    log = (tmp_path_factory.mktemp("relay") / "relay.log").open("w+")
    process = subprocess.Popen(
        [
            *PYTHON_M,
            "--endpoint",
            f"tcp:{ws_port}:interface=127.0.0.1",
            "--rawsocket",
            f"tcp:{rs_port}:interface=127.0.0.1",
        ],
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + WAIT
        while not (accepts(ws_port) and accepts(rs_port)):
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"relay not listening on {ws_port} and {rs_port} (exit {process.poll()}):\n{log.read()}")
            time.sleep(0.05)
        yield f"ws://127.0.0.1:{ws_port}/ws", f"rs://127.0.0.1:{rs_port}"
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(WAIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(WAIT)
        log.seek(0)
        output = log.read()
        log.close()
    assert process.returncode == 0, output
    assert f"serving rs://127.0.0.1:{rs_port}" in output, output


by_serializer = pytest.mark.parametrize("ser", SERIALIZER_NAMES)


@by_serializer
@pytest_twisted.inlineCallbacks
def test_rawsocket_callee_websocket_caller(relay, ser):
    ws_url, rs_url = relay
    callee = yield within(connect(rs_url, "realm1", serializers=[ser]))
    assert callee.subprotocol == f"wamp.2.{ser}"
    yield within(callee.register(f"com.rs.{ser}.add", lambda a, b: a + b))
    caller = yield connect_autobahn(ws_url, serializer=ser)
    try:
        assert (yield within(caller.call(f"com.rs.{ser}.add", 2, 3))) == 5
    finally:
        yield leave_and_wait(caller)
        yield within(callee.leave())


@by_serializer
@pytest_twisted.inlineCallbacks
def test_websocket_callee_rawsocket_caller(relay, ser):
    ws_url, rs_url = relay
    callee = yield connect_autobahn(ws_url, serializer=ser)
    yield within(callee.register(lambda text: text.upper(), f"com.ws.{ser}.shout"))
    caller = yield within(connect(rs_url, "realm1", serializers=[ser]))
    try:
        assert (yield within(caller.call(f"com.ws.{ser}.shout", "hello"))) == "HELLO"
        # pub/sub across the two transports too
        received: defer.Deferred = defer.Deferred()
        yield within(caller.subscribe(f"com.ws.{ser}.news", lambda *args, **kwargs: received.callback(args)))
        callee.publish(f"com.ws.{ser}.news", "fresh")
        assert (yield within(received)) == ("fresh",)
    finally:
        yield within(caller.leave())
        yield leave_and_wait(callee)


@pytest_twisted.inlineCallbacks
def test_reconnecting_client_over_rawsocket(relay):
    from promisifier import Client

    ws_url, rs_url = relay
    client = Client(rs_url, "realm1", max_reconnects=0)
    try:
        session = yield within(client.connect())
        assert session.subprotocol == "wamp.2.msgpack"
        yield within(client.register("com.rs.client.echo", lambda x: x))
        other = yield within(connect(rs_url, "realm1", serializers=["json"]))
        assert (yield within(other.call("com.rs.client.echo", [1, "two"]))) == [1, "two"]
        yield within(other.leave())
    finally:
        yield within(client.leave())


class _NotRawSocket(Protocol):
    def connectionMade(self) -> None:  # noqa: N802 - Twisted API
        self.transport.write(self.factory.answer)
        self.transport.loseConnection()


@pytest.mark.parametrize(
    "answer, error",
    [(b"HTTP/1.1 400 Bad Request\r\n\r\n", "not a RawSocket handshake reply"), (b"", "RawSocket handshake")],
)
@pytest_twisted.inlineCallbacks
def test_connect_fails_clearly_when_not_rawsocket(answer, error):
    factory = Factory.forProtocol(_NotRawSocket)
    factory.answer = answer
    port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    try:
        with pytest.raises(ConnectionClosed, match=error):
            yield within(connect(f"rs://127.0.0.1:{port.getHost().port}", "realm1", timeout=5))
    finally:
        yield port.stopListening()


@pytest.mark.parametrize(
    "url", ["rs://127.0.0.1", "rs://127.0.0.1:80/ws", "ws://127.0.0.1:80", "rs://:80", "rs://127.0.0.1:x"]
)
def test_rawsocket_url_rejected(url):
    with pytest.raises(ValueError):
        parse_rawsocket_url(url)


def test_rawsocket_urls():
    assert parse_rawsocket_url("rs://127.0.0.1:8081") == (False, "127.0.0.1", 8081)
    assert parse_rawsocket_url("rss://example.com:443/") == (True, "example.com", 443)
    assert parse_rawsocket_url("rs://[::1]:9000") == (False, "::1", 9000)


# -- options and the config file --------------------------------------------------------


def parse(*argv: str) -> RelayOptions:
    options = RelayOptions()
    options.parseOptions(list(argv))
    return options


def test_rawsocket_option_repeatable():
    options = parse("--rawsocket", "tcp:8081", "--rawsocket", "unix:/tmp/r.sock", "--rawsocket", "tcp:8081")
    assert options["rawsockets"] == ("tcp:8081", "unix:/tmp/r.sock")
    service = make_service(options)
    transports = [(listener.config.endpoint, listener.config.transport) for listener in service.listeners]
    assert transports == [
        ("tcp:8080:interface=127.0.0.1", "websocket"),
        ("tcp:8081", "rawsocket"),
        ("unix:/tmp/r.sock", "rawsocket"),
    ]
    assert parse()["rawsockets"] == ()


@pytest.mark.parametrize(
    "argv",
    [
        ["--rawsocket", ""],
        ["--rawsocket", "tcp:1", "--endpoint", "tcp:1"],
        ["--config", "x.toml", "--rawsocket", "tcp:1"],
    ],
)
def test_rawsocket_option_rejected(argv):
    with pytest.raises(usage.UsageError):
        parse(*argv)


RAWSOCKET_TOML = """
[[listeners]]
endpoint = "tcp:0:interface=127.0.0.1"

[[listeners]]
endpoint = "tcp:{port}:interface=127.0.0.1"
transport = "rawsocket"
serializers = ["msgpack"]
limits = {{ max_message_size = 4096 }}
"""


def test_config_rawsocket_listener(tmp_path):
    path = tmp_path / "relay.toml"
    path.write_text(RAWSOCKET_TOML.format(port=2) + '\n[[listeners]]\nendpoint = "tcp:1"\ntransport = "websocket"\n')
    config = load_config(path)
    assert [listener.transport for listener in config.listeners] == ["websocket", "rawsocket", "websocket"]
    rawsocket = config.listeners[1]
    assert rawsocket.rawsocket and rawsocket.web_paths() == {}
    assert rawsocket.serializers == ("msgpack",) and rawsocket.max_message_size == 4096


def test_config_rawsocket_rejects_websocket_keys(tmp_path):
    path = tmp_path / "relay.toml"
    path.write_text(
        '[[listeners]]\nendpoint = "tcp:0"\ntransport = "rawsocket"\npath = "/ws"\nstatus = true\n'
        '[[listeners]]\nendpoint = "tcp:1"\ntransport = "udp"\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    errors = raised.value.errors
    assert any(
        e.startswith("listeners[0].path: '/ws' (a string) given, but 'path' applies to WebSocket") for e in errors
    ), errors
    assert any(e.startswith("listeners[0].status:") for e in errors), errors
    assert "listeners[1].transport: expected one of 'websocket', 'rawsocket', got 'udp' (a string)" in errors
    assert len(errors) == 3, errors


def test_check_config_with_a_rawsocket_listener(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(RAWSOCKET_TOML.format(port=2))
    bad = tmp_path / "bad.toml"
    bad.write_text('[[listeners]]\nendpoint = "tcp:0"\ntransport = "rawsocket"\nmetrics = true\n')
    runs = {
        name: subprocess.Popen(
            [*PYTHON_M, "--check-config", str(path)],
            cwd=tmp_path,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, path in (("good", good), ("bad", bad))
    }
    (out, err), code = runs["good"].communicate(timeout=30), runs["good"].returncode
    assert (code, out.strip()) == (0, "ok"), err
    (out, err), code = runs["bad"].communicate(timeout=30), runs["bad"].returncode
    assert code == 1 and "listeners[0].metrics: True (a boolean) given, but 'metrics' applies to WebSocket" in err, err


@pytest_twisted.inlineCallbacks
def test_service_serves_a_config_rawsocket_listener_and_reloads_it(tmp_path):
    (rs_port,) = free_ports(1)
    path = tmp_path / "relay.toml"
    path.write_text(RAWSOCKET_TOML.format(port=rs_port))
    service = RelayService(load_config(path), config_file=str(path), handle_sighup=False)
    service.startService()
    try:
        assert service.urls[1] == f"rs://127.0.0.1:{rs_port}"
        factory = service.listeners[1].factory
        assert list(factory.serializers) == [2] and factory.max_message_size == 4096
        with pytest.raises(ConnectionClosed, match="serializer unsupported"):
            yield within(connect(service.urls[1], "realm1", serializers=["json"]))
        session = yield within(connect(service.urls[1], "realm1", serializers=["msgpack"]))
        # a reload keeps the port and gives new connections the new settings
        path.write_text(RAWSOCKET_TOML.format(port=rs_port).replace('["msgpack"]', '["json"]'))
        assert (yield within(service.reload())) is True
        assert service.listeners[1].factory is factory and list(factory.serializers) == [1]
        assert session.connected
        other = yield within(connect(service.urls[1], "realm1", serializers=["json"]))
        yield within(other.leave())
        yield within(session.leave())
    finally:
        yield service.stopService()
    assert not accepts(rs_port)
