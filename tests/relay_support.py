"""The relay for tests: started in this process (``relays``) or as a child process
(``processes``). Both fixtures are available to every test module (``tests/conftest.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import threading
import time
import tomllib
from pathlib import Path

import orjson
import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.web.client import Agent, readBody

import promisifier
from promisifier.relay.relay_config import RelayConfig, parse_config
from promisifier.relay.service import RelayService
from promisifier.router import RouterCore
from tests.support import within

REPO = Path(__file__).resolve().parent.parent
#: seconds a child process gets to show some output or to exit
PROCESS_WAIT = 30.0

LOOPBACK = "tcp:0:interface=127.0.0.1"


# -- helpers (test_metrics.py and test_browser.py use them too) ------------------------------


def relay_config(text: str = "") -> RelayConfig:
    """A config from TOML text; with no [[listeners]], one loopback listener on port 0."""
    if "[[listeners]]" not in text:
        text = f'[[listeners]]\nendpoint = "{LOOPBACK}"\n' + text
    return parse_config(tomllib.loads(textwrap.dedent(text)))


class Relay:
    """A started relay service and helpers to talk HTTP to its first listener."""

    def __init__(self, config: RelayConfig | None = None) -> None:
        self.service = RelayService(config or relay_config(), reactor=reactor, handle_sighup=False, stop_timeout=5)
        self.service.startService()
        self.sessions: list = []

    @property
    def router(self) -> RouterCore:
        return self.service.router  # type: ignore[return-value]

    @property
    def url(self) -> str:
        return self.service.url  # type: ignore[return-value]

    @property
    def http(self) -> str:
        host = self.service.port.getHost()  # type: ignore[union-attr]
        return f"http://127.0.0.1:{host.port}"

    @defer.inlineCallbacks
    def get(self, path: str):
        """GET ``path``: fires with (status code, content type, body bytes)."""
        response = yield within(Agent(reactor).request(b"GET", (self.http + path).encode("ascii")))
        body = yield within(readBody(response))
        content_type = (response.headers.getRawHeaders(b"content-type") or [b""])[0].decode("ascii")
        return response.code, content_type, body

    @defer.inlineCallbacks
    def get_json(self, path: str = "/status.json"):
        code, content_type, body = yield self.get(path)
        assert code == 200, (path, code, body[:300])
        assert content_type == "application/json"
        return orjson.loads(body)

    @defer.inlineCallbacks
    def connect(self, **kwargs):
        session = yield within(promisifier.connect(self.url, "realm1", **kwargs))
        self.sessions.append(session)
        return session

    @defer.inlineCallbacks
    def stop(self):
        for session in self.sessions:
            if session.is_joined:
                yield within(session.leave())
        yield within(self.service.stopService())


@pytest.fixture
def relays():
    """Start relays with ``relays(config)``; every one is stopped after the test."""
    started: list[Relay] = []

    def start(config: RelayConfig | None = None) -> Relay:
        relay = Relay(config)
        started.append(relay)
        return relay

    yield start
    for relay in started:
        if relay.service.running:
            pytest_twisted.blockon(relay.stop())


# -- the relay (or anything else) as a child process ------------------------------------


def subprocess_env() -> dict[str, str]:
    """The environment for child processes: this checkout's package first on sys.path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Process:
    """A child process whose output (stdout and stderr) is collected line by line."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.argv = argv
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=subprocess_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def describe(self) -> str:
        return f"{' '.join(self.argv)} (exit code {self.popen.poll()}), output:\n{self.output}"

    def wait_for_output(self, text: str, timeout: float = PROCESS_WAIT) -> None:
        """Wait until ``text`` appears in the output; fail if the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while text not in "".join(self.lines):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (not self._reader.is_alive() and self.popen.poll() is not None):
                    pytest.fail(f"{text!r} not seen within {timeout}s: {self.describe()}")
                self._changed.wait(min(remaining, 0.5))

    def wait(self, timeout: float = PROCESS_WAIT) -> int:
        """Wait for the process to exit (and its output to be read); its exit code."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running after {timeout}s: {self.describe()}")
        self._reader.join(timeout)
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = PROCESS_WAIT) -> int:
        """Send ``sig`` and wait for the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(PROCESS_WAIT)
        # the output ends once every process holding it (children too) is gone
        self._reader.join(PROCESS_WAIT)
        self.popen.stdout.close()


@pytest.fixture
def processes(tmp_path):
    """Start child processes with ``processes(argv)``; all are killed after the test."""
    started: list[Process] = []

    def start(argv: list[str]) -> Process:
        process = Process(argv, cwd=tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
