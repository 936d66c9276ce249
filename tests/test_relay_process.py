"""The relay as a program: its options, its service, and the relay run as a process
(``twistd -n promisifier-relay`` and ``python -m promisifier relay``) with the examples'
callee and caller talking through it, then stopped with SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.error import CannotListenError
from twisted.python import usage

from promisifier.relay.command_line import RelayOptions
from promisifier.relay.service import make_service
from promisifier.router import RouterConfig
from tests.relay_support import Process, subprocess_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
TWISTD = Path(sys.executable).with_name("twistd")

#: bound on every wait for a process (seconds)
WAIT = 30.0


# -- options ----------------------------------------------------------------------------


def parse(*argv: str) -> RelayOptions:
    options = RelayOptions()
    options.parseOptions(list(argv))
    return options


def test_options_defaults():
    options = parse()
    assert options["endpoint"] == "tcp:8080:interface=127.0.0.1"
    assert options["path"] == "/ws"
    assert options["realms"] == ("realm1",)
    assert options["max-message-size"] == 16 * 1024 * 1024
    assert options.router_config() == RouterConfig(realms=("realm1",), max_message_size=16 * 1024 * 1024)


def test_options_all_given():
    options = parse(
        "--endpoint",
        "tcp:0",
        "--path",
        "/a/b",
        "--realm",
        "one",
        "--realm",
        "two",
        "--realm",
        "one",
        "--max-message-size",
        "1024",
    )
    assert (options["endpoint"], options["path"]) == ("tcp:0", "/a/b")
    config = options.router_config()
    assert [realm.name for realm in config.realms] == ["one", "two"]
    assert config.max_message_size == 1024


@pytest.mark.parametrize(
    "argv",
    [
        ["--path", "ws"],
        ["--max-message-size", "0"],
        ["--max-message-size", "lots"],
        ["--realm", ""],
        ["--endpoint", ""],
        ["--no-such-option"],
        ["extra-argument"],
    ],
)
def test_options_rejected(argv):
    with pytest.raises(usage.UsageError):
        parse(*argv)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--endpoint", "nonsense:1234"],
            "--endpoint nonsense:1234: an endpoint string starts with tcp:, tcp6:, ssl:, unix:",
        ),
        (["--endpoint", "tcp:lots"], "--endpoint tcp:lots: not a usable endpoint string: "),
        (
            ["--endpoint", "8089"],
            "--endpoint 8089: a port alone is not an endpoint string: write tcp:8089 (every interface)",
        ),
        (["--rawsocket", "127.0.0.1:8081"], "--rawsocket 127.0.0.1:8081: write tcp:8081:interface=127.0.0.1"),
    ],
)
def test_bad_endpoint_string_is_a_usage_error_that_says_what_to_write(argv, message):
    with pytest.raises(usage.UsageError) as raised:
        parse(*argv)
    assert str(raised.value).startswith(message)


# -- the service in this process --------------------------------------------------------


def connect_refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest_twisted.inlineCallbacks
def test_service_listens_and_stops():
    service = make_service(parse("--endpoint", "tcp:0:interface=127.0.0.1", "--path", "/a/b", "--realm", "r"))
    # the relay commands' service tidies up the process after start (gc.freeze, malloc_trim)
    assert service.own_process
    service.own_process = False  # not this test process
    service.startService()
    try:
        port = service.port.getHost().port
        assert service.url == f"ws://127.0.0.1:{port}/a/b"
        assert [realm.name for realm in service.router.config.realms] == ["r"]
        assert not connect_refused(port)
    finally:
        yield service.stopService()
    assert service.port is None and service.router is None
    assert connect_refused(port)


@pytest_twisted.inlineCallbacks
def test_service_raises_at_start_when_port_is_taken():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = make_service(parse("--endpoint", f"tcp:{port}:interface=127.0.0.1"))
        # the relay's own process exits with one line
        with pytest.raises(SystemExit) as raised:
            service.startService()
        assert raised.value.code == f"promisifier relay: cannot listen on 127.0.0.1:{port}: address already in use"
        # in a program that embeds it, Twisted's error
        service.own_process = False
        with pytest.raises(CannotListenError):
            service.startService()
        assert not service.running
        yield service.stopService()  # harmless after a failed start


# -- the relay as a process ----------------------------------------------------------------


def wait_for_port(port: int, process: Process, timeout: float = WAIT) -> None:
    """Poll until 127.0.0.1:port accepts a connection; fail if ``process`` exits first."""
    deadline = time.monotonic() + timeout
    while connect_refused(port):
        if process.popen.poll() is not None:
            pytest.fail(f"the relay exited before listening on {port}: {process.describe()}")
        if time.monotonic() > deadline:
            pytest.fail(f"nothing listening on {port} after {timeout}s: {process.describe()}")
        time.sleep(0.05)


RELAY_COMMANDS = {
    "twistd": [str(TWISTD), "-n", "--pidfile=", "promisifier-relay"],
    "python -m promisifier": [sys.executable, "-m", "promisifier", "relay"],
}


@pytest.fixture(params=list(RELAY_COMMANDS))
def relay_command(request) -> list[str]:
    if request.param == "twistd" and not TWISTD.exists():
        pytest.fail(f"no twistd next to {sys.executable}: is Twisted installed in this environment?")
    return RELAY_COMMANDS[request.param]


def _open_files_limits(pid: int) -> tuple[int, int]:
    """The soft and hard limit on open files of process ``pid`` (-1: unlimited)."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return tuple(-1 if value == "unlimited" else int(value) for value in (soft, hard))  # type: ignore[return-value]
    raise AssertionError("no open files limit in /proc/PID/limits")


@pytest.mark.process
def test_relay_process_routes_a_call_and_stops_on_sigterm(relay_command, processes, free_port):
    url = f"ws://127.0.0.1:{free_port}/ws"
    # started with a low soft limit on open files (exec keeps the process id)
    low_limit = ["sh", "-c", 'ulimit -S -n 512 && exec "$@"', "relay"]
    relay = processes([*low_limit, *relay_command, "--endpoint", f"tcp:{free_port}:interface=127.0.0.1"])
    wait_for_port(free_port, relay)
    relay.wait_for_output(f"serving {url}")
    # the relay raised it to the hard limit, and said so
    soft, hard = _open_files_limits(relay.popen.pid)
    assert soft == hard, (soft, hard)
    assert "open files limit" in relay.output and "(was 512," in relay.output, relay.describe()

    callee = processes([sys.executable, str(EXAMPLES / "callee.py"), "--url", url, "--serializer", "msgpack"])
    callee.wait_for_output("registered com.example.add")

    caller = subprocess.run(
        [sys.executable, str(EXAMPLES / "caller.py"), "--url", url, "--serializer", "json"],
        env=subprocess_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert (caller.returncode, caller.stdout.strip()) == (0, "com.example.add(2, 3) = 5"), caller.stderr

    assert relay.stop(signal.SIGTERM) == 0, relay.describe()
    assert "promisifier relay stopped" in relay.output, relay.describe()
    # the relay said goodbye to the callee that was still connected
    callee.wait_for_output("session left: wamp.close.system_shutdown")
    assert connect_refused(free_port)


@pytest.mark.process
def test_relay_process_exits_nonzero_when_port_is_taken(relay_command, processes):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        relay = processes([*relay_command, "--endpoint", f"tcp:{port}:interface=127.0.0.1"])
        code = relay.wait()
    assert code == 1, relay.describe()
    assert f"promisifier relay: cannot listen on 127.0.0.1:{port}: address already in use\n" in relay.output
    assert "Traceback" not in relay.output, relay.describe()


@pytest.mark.process
def test_relay_process_help_and_usage_errors(relay_command, processes):
    helped = processes([*relay_command, "--help"])
    assert helped.wait() == 0
    for option in ("--endpoint", "--path", "--realm", "--max-message-size"):
        assert option in helped.output, helped.describe()

    wrong = processes([*relay_command, "--max-message-size", "lots"])
    assert wrong.wait() != 0
    assert "max-message-size" in wrong.output, wrong.describe()


def test_main_without_command_shows_usage():
    result = subprocess.run(
        [sys.executable, "-m", "promisifier"],
        env=subprocess_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert result.returncode == 2
    assert "relay" in result.stderr and "COMMAND" in result.stderr
