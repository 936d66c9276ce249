"""Mistakes a new user makes when starting things: a port already in use and an endpoint
string Twisted cannot parse each get one line saying what to do, never a traceback."""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from twisted.internet.error import CannotListenError

from promisifier.relay.config import ConfigError, parse_config
from promisifier.relay.endpoints import cannot_listen
from tests.relay_support import subprocess_env

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
