"""``--workers N``: one relay as N processes sharing the listening sockets, joined as a
cluster on a Redis of their own (or the configured one). Real processes, real sockets on
127.0.0.1, a real redis-server.

Which worker a session landed on is read from its session id: each worker is a cluster node
with its own session id slot (the low bits of every id it hands out), so tests connect
until they have seen both workers (a bounded number of attempts)."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import stat
import sys
from pathlib import Path

import orjson
import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions
from twisted.internet import defer

import promisifier
from promisifier.client.errors import ApplicationError
from promisifier.cluster.bus import SLOTS
from tests.pki_support import issue, make_ca
from tests.relay_support import Process
from tests.support import RecordingSession, connect_autobahn, free_ports, leave_and_wait, until, within

pytestmark = pytest.mark.slow

#: connections tried before giving up on meeting every worker
ATTEMPTS = 60


def _alive(pid: int) -> bool:
    """Running (an orphan that ended but was not reaped yet counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status


class WorkersRelay:
    """``python -m promisifier relay --workers N`` as a child process."""

    def __init__(self, process: Process, port: int | None, count: int) -> None:
        self.process = process
        self.port = port
        self.count = count

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def worker_pids(self) -> dict[int, int]:
        """index -> pid of the workers that said they serve (the latest of each)."""
        found = {}
        for index, pid in re.findall(r"worker (\d+) \(pid (\d+)\) serving", self.process.output):
            found[int(index)] = int(pid)
        return found

    def redis(self) -> tuple[int, str]:
        pid, path = re.search(r"private redis-server \(pid (\d+)\) on (\S+)", self.process.output).groups()
        return int(pid), path


@pytest.fixture
def workers_relay(processes, tmp_path):
    """Start ``relay --workers N [args]`` and wait until every worker serves."""

    def start(count: int = 2, *args: str, config: str | None = None, wait: bool = True) -> WorkersRelay:
        port = None
        argv = [sys.executable, "-m", "promisifier", "relay", "--workers", str(count), *args]
        if config is not None:
            path = tmp_path / "relay.toml"
            path.write_text(config)
            argv += ["--config", str(path)]
        elif "--endpoint" not in args:
            port = free_ports(1)[0]
            argv += ["--endpoint", f"tcp:{port}:interface=127.0.0.1"]
        relay = WorkersRelay(processes(argv), port, count)
        if wait:
            relay.process.wait_for_output(f"{count} workers serving")
        return relay

    return start


def worker_of(session_id: int) -> int:
    """The session id slot: which worker (node) the session is on."""
    return session_id % SLOTS


@defer.inlineCallbacks
def sessions_on_every_worker(url: str, count: int = 2, connect=None):
    """Sessions connected until ``count`` different workers were met: slot -> session
    (the others are closed)."""
    connect = connect or (lambda: promisifier.connect(url, "realm1"))
    found: dict[int, object] = {}
    extra = []
    for _ in range(ATTEMPTS):
        session = yield within(connect())
        slot = worker_of(session_id_of(session))
        if slot in found:
            extra.append(session)
        else:
            found[slot] = session
        if len(found) == count:
            break
    for session in extra:
        yield leave(session)
    assert len(found) == count, f"met {len(found)} of {count} workers in {ATTEMPTS} connections"
    return found


def session_id_of(session) -> int:
    return session._session_id if isinstance(session, RecordingSession) else session.session_id


@defer.inlineCallbacks
def leave(session):
    if isinstance(session, RecordingSession):  # autobahn's
        yield leave_and_wait(session)
    elif session.is_joined:
        yield within(session.leave())


@defer.inlineCallbacks
def call_when_registered(session, uri: str, *args):
    """Call ``uri``; while the registration has not reached the caller's worker yet
    (``no_such_procedure``), try again (bounded)."""
    for _ in range(200):
        try:
            return (yield within(session.call(uri, *args)))
        except ApplicationError as error:
            if error.error != "wamp.error.no_such_procedure":
                raise
        yield until(lambda: False, seconds=0.02)
    pytest.fail(f"{uri} never reached the caller's worker")


@pytest_twisted.inlineCallbacks
def test_two_workers_answer_on_one_port(workers_relay):
    relay = workers_relay(2)
    pids = relay.worker_pids()
    assert sorted(pids) == [0, 1] and len(set(pids.values())) == 2
    sessions = yield sessions_on_every_worker(relay.url)
    assert len(sessions) == 2
    for session in sessions.values():
        yield leave(session)


@pytest_twisted.inlineCallbacks
def test_calls_and_events_cross_workers_with_autobahn_and_our_client(workers_relay):
    relay = workers_relay(2)
    autobahn_sessions = yield sessions_on_every_worker(relay.url, connect=lambda: connect_autobahn(relay.url))
    ours = yield sessions_on_every_worker(relay.url)
    (slot_a, callee), (slot_b, _) = sorted(autobahn_sessions.items())
    caller = ours[slot_b]  # our client on the other worker than autobahn's callee
    assert worker_of(session_id_of(callee)) != worker_of(caller.session_id)

    yield within(callee.register(lambda a, b: a + b, "com.example.add"))
    assert (yield call_when_registered(caller, "com.example.add", 2, 3)) == 5

    # our callee on one worker, autobahn's caller on the other
    yield within(ours[slot_a].register("com.example.twice", lambda x: 2 * x))
    autobahn_caller = autobahn_sessions[slot_b]
    for _ in range(200):
        try:
            result = yield within(autobahn_caller.call("com.example.twice", 21))
            break
        except Exception as error:  # noqa: BLE001 - autobahn's ApplicationError until it is mirrored
            assert "no_such_procedure" in str(error), error
            yield until(lambda: False, seconds=0.02)
    assert result == 42

    # events: our subscriber on one worker, autobahn's publisher on the other, and back
    received: list = []
    yield within(ours[slot_a].subscribe("com.example.news", lambda *args: received.append(("ours", args))))
    autobahn_received: list = []
    yield within(autobahn_sessions[slot_a].subscribe(lambda *args: autobahn_received.append(args), "com.example.back"))
    yield within(autobahn_sessions[slot_b].publish("com.example.news", "hi", options=PublishOptions(acknowledge=True)))
    yield within(ours[slot_b].publish("com.example.back", "ho", acknowledge=True))
    assert (yield until(lambda: received == [("ours", ("hi",))] and autobahn_received == [("ho",)])), (
        received,
        autobahn_received,
    )
    for session in [*autobahn_sessions.values(), *ours.values()]:
        yield leave(session)


def test_sigterm_stops_every_worker_and_the_private_redis(workers_relay):
    relay = workers_relay(2)
    pids = list(relay.worker_pids().values())
    redis_pid, redis_socket = relay.redis()
    assert all(_alive(pid) for pid in [*pids, redis_pid])
    assert relay.process.stop(signal.SIGTERM) == 0
    output = relay.process.output
    assert output.count("promisifier relay stopped") == 3, output  # two workers and the parent
    assert not any(_alive(pid) for pid in [*pids, redis_pid])
    assert not os.path.exists(redis_socket) and not os.path.exists(os.path.dirname(redis_socket))
    assert "Traceback" not in output


@pytest_twisted.inlineCallbacks
def test_when_the_parent_dies_the_workers_stop_and_take_the_private_redis_along(workers_relay):
    relay = workers_relay(2)
    pids = list(relay.worker_pids().values())
    redis_pid, redis_socket = relay.redis()
    relay.process.popen.kill()
    relay.process.wait()
    assert (yield until(lambda: not any(_alive(pid) for pid in [*pids, redis_pid]), seconds=20)), relay.process.output
    assert not os.path.exists(os.path.dirname(redis_socket))


def test_without_redis_server_the_relay_says_what_to_do(processes, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    port = free_ports(1)[0]
    process = processes(
        [
            sys.executable,
            "-c",
            "import os, sys, runpy; os.environ['PATH'] = sys.argv[1]; sys.argv[1:] = sys.argv[2:];"
            " runpy.run_module('promisifier', run_name='__main__')",
            str(empty),
            "relay",
            "--workers",
            "2",
            "--endpoint",
            f"tcp:{port}:interface=127.0.0.1",
        ]
    )
    assert process.wait() == 1
    assert (
        "promisifier relay: --workers 2 joins the workers on a Redis of their own, but redis-server is not installed"
        " (on Debian or Ubuntu: apt-get install redis-server)" in process.output
    ), process.output
    with socket.socket() as probe:  # nothing listens
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_worker_that_dies_is_replaced(workers_relay):
    relay = workers_relay(2)
    victim = relay.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    relay.process.wait_for_output(f"worker 0 (pid {victim}) was killed by SIGKILL; a new one starts in 1.0 s")
    relay.process.wait_for_output("serving again")
    assert relay.worker_pids()[0] != victim
    assert relay.process.stop() == 0


def test_the_workers_share_a_unix_socket_that_outlives_one_of_them(workers_relay, tmp_path):
    path = tmp_path / "relay.sock"
    relay = workers_relay(2, "--endpoint", f"unix:{path}:mode=600")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the workers keep the endpoint's mode
    nodes = set()
    for _ in range(ATTEMPTS):
        nodes.add(_health_over_unix(path)["cluster"]["node"])
        if len(nodes) == 2:
            break
    assert len(nodes) == 2, nodes
    # a worker that stops cleanly does not take the socket's file along
    pids = relay.worker_pids()
    os.kill(pids[1], signal.SIGTERM)
    relay.process.wait_for_output("worker 1 (pid")
    relay.process.wait_for_output("serving again")
    assert path.exists()
    assert _health_over_unix(path)["status"] == "serving"
    assert relay.process.stop() == 0
    assert not path.exists()


def _health_over_unix(path: Path) -> dict:
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(10)
        connection.connect(str(path))
        connection.sendall(b"GET /health HTTP/1.0\r\nHost: relay\r\n\r\n")
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    return orjson.loads(reply.split(b"\r\n\r\n", 1)[1])


def test_the_workers_share_a_tls_listener(workers_relay, tmp_path):
    ca = make_ca(tmp_path / "pki", "relay")
    server = issue(ca, tmp_path / "pki", "server", "localhost", server=True)
    port = free_ports(1)[0]
    endpoint = f"ssl:{port}:interface=127.0.0.1:privateKey={server.key_file}:certKey={server.cert_file}"
    workers_relay(2, "--endpoint", endpoint)
    context = ssl.create_default_context(cafile=str(ca.cert_file))
    nodes = set()
    for _ in range(ATTEMPTS):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
                reply = b""
                while chunk := tls.recv(65536):
                    reply += chunk
        nodes.add(orjson.loads(reply.split(b"\r\n\r\n", 1)[1])["cluster"]["node"])
        if len(nodes) == 2:
            break
    assert len(nodes) == 2, nodes


def test_twistd_runs_the_workers_too(processes, tmp_path):
    port = free_ports(1)[0]
    twistd = str(Path(sys.executable).with_name("twistd"))
    process = processes(
        [
            twistd,
            "-n",
            "--pidfile=",
            "promisifier-relay",
            "--workers",
            "2",
            "--endpoint",
            f"tcp:{port}:interface=127.0.0.1",
        ]
    )
    process.wait_for_output("2 workers serving")
    redis_pid = int(re.search(r"private redis-server \(pid (\d+)\)", process.output).group(1))
    assert process.stop(signal.SIGTERM) == 0
    assert not _alive(redis_pid)


@defer.inlineCallbacks
def get_json(url: str):
    """GET on a new connection (so either worker may answer)."""
    import warnings

    from twisted.internet import reactor
    from twisted.web.client import Agent, readBody

    response = yield within(Agent(reactor).request(b"GET", url.encode()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        body = yield within(readBody(response))
    return orjson.loads(body)


@pytest_twisted.inlineCallbacks
def test_the_status_page_and_health_add_up_every_worker(workers_relay):
    relay = workers_relay(2)
    sessions = yield sessions_on_every_worker(relay.url)
    whole_from: dict[str, dict] = {}
    for _ in range(400):  # answers from both workers, each counting both sessions
        status = yield get_json(f"http://127.0.0.1:{relay.port}/status.json")
        if status["totals"]["sessions"] == 2 and len(status["relay"]["workers"]) == 2:
            whole_from[status["relay"]["cluster"]["node"]] = status
        if len(whole_from) == 2:
            break
        yield until(lambda: False, seconds=0.02)
    assert len(whole_from) == 2, "both workers never answered for the whole relay"
    for status in whole_from.values():
        assert sorted(w["sessions"] for w in status["relay"]["workers"]) == [1, 1]
        (realm,) = status["realms"]
        assert realm["counts"]["sessions"] == 2
        rows = {row["id"]: row["worker"] for row in realm["sessions"]}
        assert set(rows) == {s.session_id for s in sessions.values()}
        assert len(set(rows.values())) == 2
    health = yield get_json(f"http://127.0.0.1:{relay.port}/health")
    assert health["workers"] == {"count": 2, "reporting": 2} and health["status"] == "serving"
    for session in sessions.values():
        yield leave(session)


@pytest_twisted.inlineCallbacks
def test_sighup_reaches_every_worker(workers_relay, tmp_path):
    port = free_ports(1)[0]
    listener = f'[[listeners]]\nendpoint = "tcp:{port}:interface=127.0.0.1"\n'
    relay = workers_relay(2, config=listener + '[[realms]]\nname = "realm1"\n')
    (tmp_path / "relay.toml").write_text(listener + '[[realms]]\nname = "realm1"\n[[realms]]\nname = "realm2"\n')
    relay.process.popen.send_signal(signal.SIGHUP)
    relay.process.wait_for_output("the workers read")
    reloaded = f"configuration reloaded from {tmp_path / 'relay.toml'}"
    assert (yield until(lambda: relay.process.output.count(reloaded) == 2)), relay.process.output
    url = f"ws://127.0.0.1:{port}/ws"
    sessions = yield sessions_on_every_worker(url, connect=lambda: promisifier.connect(url, "realm2"))
    for session in sessions.values():
        yield leave(session)
    assert relay.process.stop() == 0


@pytest_twisted.inlineCallbacks
def test_a_cluster_table_without_redis_sets_the_heartbeat_of_the_private_cluster(workers_relay):
    port = free_ports(1)[0]
    listener = f'[[listeners]]\nendpoint = "tcp:{port}:interface=127.0.0.1"\n'
    relay = workers_relay(2, config=listener + "[cluster]\nheartbeat_interval = 0.5\nttl = 3\n")
    assert relay.redis()  # the private one
    assert relay.process.output.count("(a heartbeat every 0.5 s, lost after 3 s)") == 2, relay.process.output
    url = f"ws://127.0.0.1:{port}/ws"
    sessions = yield sessions_on_every_worker(url)
    for session in sessions.values():
        yield leave(session)
    assert relay.process.stop() == 0


def test_a_worker_that_dies_before_serving_stops_the_relay_with_exit_code_1(processes, tmp_path):
    broken = tmp_path / "broken" / "promisifier"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise SystemExit(3)\n")
    port = free_ports(1)[0]
    # the parent runs the real promisifier; the workers it spawns find the broken one first
    process = processes(
        [
            sys.executable,
            "-c",
            "import os, sys, runpy; import promisifier.relay.workers;"
            " os.environ['PYTHONPATH'] = sys.argv[1] + os.pathsep + os.environ['PYTHONPATH']; sys.argv[1:] = sys.argv[2:];"
            " runpy.run_module('promisifier', run_name='__main__')",
            str(broken.parent),
            "relay",
            "--workers",
            "2",
            "--endpoint",
            f"tcp:{port}:interface=127.0.0.1",
        ]
    )
    assert process.wait() == 1
    assert re.search(r"a worker failed: worker \d exited with code 3 before it served; stopping", process.output)
    redis_pid = int(re.search(r"private redis-server \(pid (\d+)\)", process.output).group(1))
    assert not _alive(redis_pid)
    with socket.socket() as probe:  # nothing listens any more
        assert probe.connect_ex(("127.0.0.1", port)) != 0
