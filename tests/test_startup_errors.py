"""Mistakes a new user makes when starting things: a port already in use, an endpoint
string Twisted cannot parse, a relay that is not running: each gets one line saying what
is wrong, never a traceback."""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python import usage

from promisifier.client import Client
from promisifier.relay.command_line import RelayOptions
from promisifier.relay.endpoints import cannot_listen
from promisifier.relay.relay_config import ConfigError, parse_config
from tests.relay_support import subprocess_env
from tests.support import within

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            CannotListenError("127.0.0.1", 8080, OSError(errno.EADDRINUSE, "Address already in use")),
            "cannot listen on 127.0.0.1:8080: address already in use",
        ),
        (
            CannotListenError("", 80, OSError(errno.EACCES, "Permission denied")),
            "cannot listen on 0.0.0.0:80: permission denied (ports below 1024 need root)",
        ),
        (
            CannotListenError("::1", 8080, OSError(errno.EADDRINUSE, "Address already in use")),
            "cannot listen on [::1]:8080: address already in use",
        ),
        (
            CannotListenError(None, "/run/relay.sock", OSError(errno.EACCES, "Permission denied")),
            "cannot listen on /run/relay.sock: permission denied",
        ),
    ],
)
def test_cannot_listen_is_one_line(error, line):
    assert cannot_listen(error) == line


def test_config_file_endpoint_that_is_a_port_says_what_to_write():
    with pytest.raises(ConfigError) as raised:
        parse_config({"listeners": [{"endpoint": "8089"}]})
    assert "write tcp:8089 (every interface) or tcp:8089:interface=127.0.0.1" in str(raised.value)


@pytest.mark.parametrize(
    ("example", "argv"),
    [("embedded.py", ["{port}"]), ("rpc_server.py", ["--port", "{port}"])],
)
def test_listening_example_says_port_is_taken_in_one_line(example, argv):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / example), *(arg.format(port=port) for arg in argv)],
            env=subprocess_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.startswith(f"{example}: cannot listen on 127.0.0.1:{port}: address already in use")
    assert result.stderr.count("\n") == 1 and not result.stdout, result.stderr


# -- the relay is not running ------------------------------------------------------------------

CONNECTING_EXAMPLES = [
    "auth_client.py",
    "caller.py",
    "peers.py",
    "progress.py",
    "pubsub.py",
    "rpc_client.py",
    "browser/drive.py",
]


@pytest.mark.parametrize("example", CONNECTING_EXAMPLES)
def test_example_without_a_relay_says_so_in_one_line(example, free_port):
    url = f"ws://127.0.0.1:{free_port}/ws"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / example), "--url", url],
        env=subprocess_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    name = Path(example).name
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"{name}: error: "), result.stderr
    assert f"cannot connect to {url}: " in result.stderr and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize(
    ("example", "line"), [("callee.py", "callee.py: cannot connect to"), ("client.py", "reconnecting in")]
)
def test_serving_example_without_a_relay_says_it_retries(example, line, processes, free_port):
    url = f"ws://127.0.0.1:{free_port}/ws"
    process = processes([sys.executable, str(EXAMPLES / example), "--url", url])
    process.wait_for_output(line)
    assert "Traceback" not in process.output


@pytest_twisted.inlineCallbacks
def test_client_logs_each_retry_at_info(free_port):
    url = f"ws://127.0.0.1:{free_port}/ws"
    events: list = []
    observer = events.append
    globalLogPublisher.addObserver(observer)
    try:
        client = Client(url, "realm1", reconnect_interval=0.01, max_reconnects=2)
        given_up = defer.Deferred()
        client.on("reconnect_failed", lambda: given_up.callback(None))
        yield within(given_up)
    finally:
        globalLogPublisher.removeObserver(observer)
    retries = [
        formatEvent(e) for e in events if e["log_level"] is LogLevel.info and "reconnecting in" in formatEvent(e)
    ]
    assert len(retries) == 2, retries
    assert retries[0].startswith(f"client: cannot connect to {url}: connection refused (is the relay running?); ")


# -- configuration mistakes ----------------------------------------------------------------------


def test_realm_names_must_be_uris():
    with pytest.raises(ConfigError) as raised:
        parse_config({"realms": [{"name": "bad realm!"}]})
    assert "realms[0].name: expected a realm name: a URI such as realm1" in str(raised.value)
    options = RelayOptions()
    with pytest.raises(usage.UsageError) as raised:
        options.parseOptions(["--realm", "bad realm!"])
    assert str(raised.value).startswith("--realm 'bad realm!': expected a realm name")


def test_a_principal_whose_role_only_open_realms_accept_is_reported():
    config = parse_config(
        {
            "listeners": [
                {
                    "endpoint": "tcp:0:interface=127.0.0.1",
                    "auth": {
                        "methods": ["ticket"],
                        "ticket": {"principals": {"alice": {"ticket": "x", "role": "admin"}}},
                    },
                }
            ],
            "realms": [{"name": "realm1", "roles": [{"name": "user"}]}, {"name": "open"}],
        }
    )
    assert config.warnings() == [
        "listeners[0].auth.ticket.principals.alice.role: role 'admin' is defined in no realm with roles"
        " ('realm1'); its sessions can join only 'open'"
    ]
