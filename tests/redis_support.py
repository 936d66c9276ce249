"""A real ``redis-server`` for the cluster tests: each test that asks for ``redis_server``
gets its own, on a free port of 127.0.0.1 with a temporary directory and no persistence
(``--save "" --appendonly no``); it is stopped after the test. No test uses a Redis it did
not start. ``stop()`` / ``start()`` take it down and bring it back (empty) on the same port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import free_ports

#: seconds redis-server gets to accept connections or to exit
STARTUP_WAIT = 10.0


class RedisServer:
    """One ``redis-server`` child process on 127.0.0.1."""

    def __init__(self, directory: Path, password: str | None = None) -> None:
        self.directory = directory
        self.password = password
        self.port = free_ports(1)[0]
        self.popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (again, on the same port, empty) and wait until it answers PING."""
        assert self.popen is None, "already running"
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
        if self.password:
            argv += ["--requirepass", self.password]
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - the child owns it
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + STARTUP_WAIT
        while not self._answers():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"redis-server did not start: {(self.directory / 'redis.log').read_text()}")
            time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            return self.command("PING") in (b"+PONG\r\n", b"-NOAUTH Authentication required.\r\n")
        except OSError:
            return False

    def command(self, *words: str) -> bytes:
        """One command on a fresh connection (authenticated if there is a password); the
        raw reply. For tests to look at or poke the server (``CLIENT KILL``, ``DBSIZE``)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            commands = [("AUTH", self.password)] if self.password else []
            commands.append(words)
            for command in commands:
                encoded = b"".join(b"$%d\r\n%s\r\n" % (len(w.encode()), w.encode()) for w in command)
                sock.sendall(b"*%d\r\n" % len(command) + encoded)
                reply = sock.recv(65536)
            return reply

    def stop(self) -> None:
        """Stop the server (SIGKILL: what a crash looks like to its clients) and wait."""
        if self.popen is not None:
            self.popen.kill()
            self.popen.wait(STARTUP_WAIT)
            self.popen = None


@pytest.fixture
def redis_server(tmp_path_factory):
    """A started :class:`RedisServer` of this test alone."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (.ci/run installs it)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
