"""Two relay nodes on one Redis: cross-node calls and events against same-node ones.

Starts a ``redis-server`` of its own (free port, temporary directory, no persistence), two
relays with ``--cluster`` and, for the baseline, one lone relay; the load comes from
:mod:`benchmarks.loadgen` processes over WebSocket. Figures per serializer:

* ``cluster.S.latency.{same,cross}.{p50,p99}`` sequential calls (one in flight), caller on
  node 1, callee on node 1 (same) or node 2 (cross), ms; ``cluster.S.latency.added.p50``
  and ``.p99``: cross minus same
* ``cluster.S.rpc.cross.{rate,relay_cpu,capacity}`` calls/s with ``--outstanding`` in
  flight, caller on node 1, callee on node 2; the relay CPU is both nodes' together, the
  capacity is calls per second per relay core
* ``cluster.S.rpc.cross.redis_publishes_per_call`` Redis PUBLISH commands per call
  (``INFO commandstats``, less the heartbeats' probes)
* ``cluster.S.rpc.same.*`` and ``cluster.S.rpc.alone.*`` the same load on node 1 alone
  (callee on node 1) and on a relay without the cluster; ``cluster.S.rpc.same_vs_alone``:
  the share of the lone relay's capacity left with the cluster on
* ``cluster.S.events.cross.{rate,relay_cpu,capacity}`` events/s from a publisher on node
  1 (``--outstanding`` acknowledged publications in flight) to one subscriber on node 2
* ``cluster.S.sequence.{rate,relay_cpu,capacity}``: the same for ``--sequence-seconds``
  (60) in one window, every publication numbered and checked by the subscriber; after
  the window (and a second for the last ones to arrive) ``cluster.S.sequence.lost``
  (publications sent but not delivered by then: lost, or still queued for a subscribing
  node that fell behind), ``.missing`` (numbers skipped by the subscriber) and
  ``.out_of_order`` (numbers at or below one already seen): 0, 0 and 0 when nothing was
  lost, late or reordered
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import harness, rpc

TOPIC = "com.bench.cluster"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_common_arguments(parser, transports="ws")
    parser.add_argument("--outstanding", type=int, default=8, help="calls or publications in flight (default 8)")
    parser.add_argument("--payload", type=int, default=10, help="characters in the argument (default 10)")
    parser.add_argument(
        "--cases",
        type=harness.csv(),
        default=list(CASES),
        help=f"which of {','.join(CASES)} to measure (default all)",
    )

    parser.add_argument(
        "--sequence-seconds",
        type=float,
        default=60.0,
        help="length of the sequence-checked events window (default 60)",
    )


#: the cases of a run, in their order
CASES = ("latency", "rpc", "same", "events", "sequence", "alone")


class Nodes(harness.Server):
    """Both relay nodes, measured as one: their CPU is added up. The harness reads the CPU
    at the start and at the end of each window: Redis's command counts are read then too."""

    def __init__(self, nodes: list[harness.Server], redis: Redis) -> None:
        super().__init__(None, nodes[0].urls, nodes[0].log_path.parent, "nodes")
        self.nodes = nodes
        self.redis = redis
        #: Redis's command counts at each CPU reading
        self.commandstats: list[dict[str, int]] = []

    def cpu(self) -> float | None:
        self.commandstats.append(self.redis.commandstats())
        return sum(node.cpu() or 0.0 for node in self.nodes)

    def system_cpu(self) -> float | None:
        return sum(node.system_cpu() or 0.0 for node in self.nodes)

    def start_py_spy(self, seconds: float) -> _Spies | None:
        spies = [spy for spy in (node.start_py_spy(seconds) for node in self.nodes) if spy is not None]
        return _Spies(spies) if spies else None


class _Spies:
    """The py-spy processes of every node, waited for as one."""

    def __init__(self, processes: list[subprocess.Popen]) -> None:
        self.processes = processes

    def wait(self, timeout: float) -> None:
        for process in self.processes:
            process.wait(timeout)

    def kill(self) -> None:
        for process in self.processes:
            process.kill()


class Redis:
    """A redis-server of the benchmark's own."""

    def __init__(self, log_dir: Path) -> None:
        if shutil.which("redis-server") is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        self.port = harness.free_port()
        self.directory = tempfile.mkdtemp(prefix="promisifier-bench-redis-")
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.directory]
        argv += ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(argv, stdout=open(log_dir / "redis.log", "ab"), stderr=subprocess.STDOUT)
        harness.wait_port(self.port, 10, self.process)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def commandstats(self) -> dict[str, int]:
        """Calls per command since start."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            return read_commandstats(sock)

    def dbsize(self) -> int:
        """Keys in the database."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"*1\r\n$6\r\nDBSIZE\r\n")
            reply = b""
            while not reply.endswith(b"\r\n"):
                reply += sock.recv(1024)
        return int(reply[1:])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


def read_commandstats(sock: socket.socket) -> dict[str, int]:
    """Calls per command since start, asked of the Redis at the other end of ``sock``."""
    sock.sendall(b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")
    reply = b""
    while b"\r\n" not in reply:
        reply += sock.recv(65536)
    header, _, body = reply.partition(b"\r\n")
    length = int(header[1:])  # a bulk string: $LENGTH
    while len(body) < length:
        body += sock.recv(65536)
    return {name: int(count) for name, count in re.findall(r"cmdstat_(\w+):calls=(\d+)", body.decode())}


@contextmanager
def cluster(args: argparse.Namespace, nodes: int = 2) -> Iterator[tuple[Redis, list[harness.Server]]]:
    """A Redis and ``nodes`` relays with ``--cluster``, stopped at the end."""
    redis = Redis(args.log_dir)
    started: list[harness.Server] = []
    try:
        for index in range(1, nodes + 1):
            port = harness.free_port()
            # --profile: node 1 only (the caller's node)
            options = args if index == 1 else argparse.Namespace(**{**vars(args), "profile": None})
            argv = harness.relay_argv("relay", "ws", {"ws": port}, options) + ["--cluster", redis.url]
            node = harness.Server(argv, {"ws": f"ws://127.0.0.1:{port}/ws"}, args.log_dir, f"cluster-node{index}")
            if getattr(args, "py_spy", None):
                node.py_spy = (args.py_spy_bin, f"{args.py_spy}.node{index}")
            node.start()
            started.append(node)
        yield redis, started
    finally:
        for node in started:
            node.stop()
        redis.stop()


def calls(
    args: argparse.Namespace,
    measured: harness.Server,
    caller_url: str,
    callee_url: str,
    serializer: str,
    outstanding: int,
    latency: bool,
) -> list[dict]:
    """Windows of calls from a caller at ``caller_url`` to a callee at ``callee_url``."""
    with harness.workers() as started:
        callee = harness.Worker("callee", callee_url, args.log_dir, serializer=serializer, procedure=rpc.PROCEDURE)
        started.append(callee)
        callee.wait_ready(60)
        registered(caller_url, rpc.PROCEDURE)
        caller = harness.Worker(
            "caller",
            caller_url,
            args.log_dir,
            serializer=serializer,
            sessions=1,
            outstanding=outstanding,
            payload=args.payload,
            procedure=rpc.PROCEDURE,
            latency=latency,
        )
        started.append(caller)
        caller.wait_ready(60)
        return harness.measure_runs(measured, started, args)


def registered(url: str, procedure: str, timeout: float = 15.0) -> None:
    """Wait until the relay at ``url`` routes ``procedure`` (a registration on another
    node takes a moment to reach it)."""
    status = url.replace("ws://", "http://").rsplit("/", 1)[0] + "/status.json"
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(status, timeout=5) as response:
            found = json.loads(response.read())
        if any(r["uri"] == procedure for realm in found["realms"] for r in realm["registrations"]):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{procedure} not routed by {url} within {timeout} s")
        time.sleep(0.05)


def latencies(windows: list[dict]) -> dict[str, float]:
    return harness.percentiles([v for w in windows for r in w["results"] for v in r.get("latencies_us", ())])


def events(
    args: argparse.Namespace,
    measured: harness.Server,
    publisher_url: str,
    subscriber_url: str,
    serializer: str,
    sequence: bool = False,
) -> tuple[list[dict], dict[str, dict]]:
    """Windows of events from a publisher at ``publisher_url`` to a subscriber at
    ``subscriber_url``, and the workers' totals (by role) a second after the last window."""
    with harness.workers() as started:
        subscriber = harness.Worker(
            "subscriber", subscriber_url, args.log_dir, serializer=serializer, topic=TOPIC, sequence=sequence
        )
        started.append(subscriber)
        subscriber.wait_ready(60)
        publisher = harness.Worker(
            "publisher",
            publisher_url,
            args.log_dir,
            serializer=serializer,
            outstanding=args.outstanding,
            payload=args.payload,
            topic=TOPIC,
            sequence=sequence,
        )
        started.append(publisher)
        publisher.wait_ready(60)
        if sequence:
            windows = [harness.measure(measured, started, args.warmup, args.sequence_seconds)]
        else:
            windows = harness.measure_runs(measured, started, args)
        time.sleep(1.0)  # the last publications arrive
        totals = {}
        for worker in started:
            worker.send(cmd="totals")
            totals[worker.role] = worker.read_event(30)
        return windows, totals


def delivered_per_second(window: dict) -> float:
    return _count(window, "subscriber") / window["window_s"]


def _count(window: dict, role: str) -> int:
    return sum(r["count"] for r in window["results"] if r["role"] == role)


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    harness.check_common(args)
    unknown = set(args.cases) - set(CASES)
    if unknown:
        raise SystemExit(f"unknown --cases {','.join(sorted(unknown))} (known: {','.join(CASES)})")
    results: list[dict] = []
    runs: dict = {}
    for serializer in args.serializers:
        prefix = f"cluster.{serializer}"
        same: dict | None = None
        with cluster(args) as (redis, nodes):
            node1, node2 = (node.urls["ws"] for node in nodes)
            both = Nodes(nodes, redis)
            runs["nodes"] = [node.command for node in nodes]
            if "latency" in args.cases:
                # sequential latency, same node and across nodes
                stats = {}
                for where, callee_url in (("same", node1), ("cross", node2)):
                    stats[where] = latencies(calls(args, both, node1, callee_url, serializer, 1, True))
                    for key in ("p50", "p99"):
                        value = round(stats[where][key] / 1000, 4)
                        results.append({"name": f"{prefix}.latency.{where}.{key}", "value": value, "unit": "ms"})
                for key in ("p50", "p99"):
                    added = round((stats["cross"][key] - stats["same"][key]) / 1000, 4)
                    results.append({"name": f"{prefix}.latency.added.{key}", "value": added, "unit": "ms"})
            if "rpc" in args.cases:
                # capacity across nodes, and what Redis does per call in the windows
                both.commandstats.clear()
                windows = calls(args, both, node1, node2, serializer, args.outstanding, False)
                summary = harness.summarize(windows, rpc.calls_per_second)
                results.extend(harness.rate_figures(f"{prefix}.rpc.cross", summary, "calls_per_s"))
                results.extend(publishes_per_call(prefix, windows, both.commandstats))
                runs[f"{prefix}.rpc.cross"] = summary["runs"]
            if "same" in args.cases:
                # the same load on one node of the cluster
                windows = calls(args, nodes[0], node1, node1, serializer, args.outstanding, False)
                same = harness.summarize(windows, rpc.calls_per_second)
                results.extend(harness.rate_figures(f"{prefix}.rpc.same", same, "calls_per_s"))
            if "events" in args.cases:
                windows, _ = events(args, both, node1, node2, serializer)
                summary = harness.summarize(windows, delivered_per_second)
                results.extend(harness.rate_figures(f"{prefix}.events.cross", summary, "events_per_s"))
            if "sequence" in args.cases:
                windows, totals = events(args, both, node1, node2, serializer, sequence=True)
                summary = harness.summarize(windows, delivered_per_second)
                results.extend(harness.rate_figures(f"{prefix}.sequence", summary, "events_per_s"))
                sent = totals["publisher"]["sequence"]["sent"]
                check = totals["subscriber"]["sequence"]
                for name, value in (
                    ("lost", sent - check["received"]),
                    ("missing", check["missing"]),
                    ("out_of_order", check["out_of_order"]),
                ):
                    results.append({"name": f"{prefix}.sequence.{name}", "value": value, "unit": "events"})
                runs[f"{prefix}.sequence"] = {"sent": sent, **check}
        if "alone" in args.cases:
            # the lone relay, same load
            with harness.server("relay", "ws", args, args.log_dir) as alone:
                url = alone.urls["ws"]
                windows = calls(args, alone, url, url, serializer, args.outstanding, False)
                lone = harness.summarize(windows, rpc.calls_per_second)
                results.extend(harness.rate_figures(f"{prefix}.rpc.alone", lone, "calls_per_s"))
                if lone["capacity"] and same and same["capacity"]:
                    results.append(
                        {
                            "name": f"{prefix}.rpc.same_vs_alone",
                            "value": round(same["capacity"] / lone["capacity"], 3),
                            "unit": "share",
                        }
                    )
        time.sleep(0.2)
    return results, harness.setup_of(args, runs=runs)


def publishes_per_call(prefix: str, windows: list[dict], commandstats: list[dict[str, int]]) -> list[dict]:
    """Redis PUBLISH commands per call made in ``windows`` (``commandstats``: Redis's counts
    at the start and end of each window), the heartbeats' probes left out."""
    made = sum(_count(window, "caller") for window in windows)
    publishes = 0
    for start, end in zip(commandstats[0::2], commandstats[1::2], strict=True):
        # each heartbeat (a script) publishes one probe
        scripts = sum(end.get(name, 0) - start.get(name, 0) for name in ("eval", "evalsha"))
        publishes += end.get("publish", 0) - start.get("publish", 0) - scripts
    if not made:
        return []
    return [
        {
            "name": f"{prefix}.rpc.cross.redis_publishes_per_call",
            "value": round(publishes / made, 3),
            "unit": "publishes",
        }
    ]
