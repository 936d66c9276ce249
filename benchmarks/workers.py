"""One relay on every core: ``relay --workers N`` against ``--workers 1`` in the same run.

For each count in ``--workers-list`` (default ``1,2``) a relay is started with
``python -m promisifier relay --workers N`` (1: the lone relay, no Redis; more: N worker
processes on the relay's own private Redis), then the same load over WebSocket: one
:mod:`benchmarks.loadgen` process with ``--callees`` callee sessions registering one
procedure shared (``--invoke``, default ``roundrobin``), and ``--callers`` processes of
``--sessions`` caller sessions each with ``--outstanding`` calls in flight. Connections land
on whichever worker accepts them: where the sessions landed is read from the status page
(``relay.workers``) and reported. Figures per serializer and count N:

* ``workers.S.wN.rpc.{rate,relay_cpu,capacity}``: calls/s of all callers together, the CPU
  of the whole relay (the parent, every worker and the private redis-server) in cores, and
  calls per second per relay core
* ``workers.S.wN.redis_cpu``: the private redis-server's share of that CPU (cores)
* ``workers.S.wN.crossed``: the share of calls that crossed workers (Redis ``PUBLISH``
  commands in the window, two per crossing call, less the heartbeats' probes, over the
  calls made)
* ``workers.S.wN.vs_w1``: rate and capacity against ``--workers 1`` of the same run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import cluster, harness, rpc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_common_arguments(parser, transports="ws", serializers="msgpack")
    parser.add_argument("--workers-list", type=harness.csv(int), default=[1, 2], help="counts to compare (default 1,2)")
    parser.add_argument("--callers", type=int, default=2, help="caller processes (default 2)")
    parser.add_argument("--sessions", type=int, default=4, help="caller sessions per caller process (default 4)")
    parser.add_argument("--callees", type=int, default=4, help="callee sessions (default 4)")
    parser.add_argument("--outstanding", type=int, default=8, help="calls in flight per caller session (default 8)")
    parser.add_argument("--payload", type=int, default=10, help="characters in the argument (default 10)")
    parser.add_argument("--invoke", default="roundrobin", help="the callees' shared invoke policy (default roundrobin)")


def _children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            found += [int(child) for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            pass
    return found


class WorkersRelay(harness.Server):
    """``relay --workers N``: the CPU of the parent and of all its children (the workers and
    the private redis-server) added up; Redis's command counts read with each CPU reading."""

    def __init__(self, argv: list[str], url: str, log_dir: Path, name: str, workers: int) -> None:
        super().__init__(argv, {"ws": url}, log_dir, name)
        self.workers = workers
        self.redis_socket: str | None = None
        self.redis_pid: int | None = None
        #: (Redis command counts, redis-server CPU seconds) at each CPU reading
        self.readings: list[tuple[dict[str, int], float]] = []

    def start(self, timeout: float = 60.0) -> None:
        # the log file is appended to: read only what this start writes
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        super().start(timeout)
        if self.workers == 1:
            return

        def logged() -> str:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                log.seek(offset)
                return log.read()

        deadline = time.monotonic() + timeout
        while f"{self.workers} workers serving" not in logged():
            if time.monotonic() > deadline or self.process.poll() is not None:  # type: ignore[union-attr]
                raise RuntimeError(f"the workers did not come up; see {self.log_path}")
            time.sleep(0.05)
        found = re.findall(r"private redis-server \(pid (\d+)\) on (\S+)", logged())
        self.redis_pid, self.redis_socket = int(found[-1][0]), found[-1][1]

    def processes(self) -> list[int]:
        return [self.pid, *_children(self.pid)] if self.pid else []

    def cpu(self) -> float | None:
        if self.redis_socket is not None:
            self.readings.append((_commandstats(self.redis_socket), harness.cpu_seconds(self.redis_pid)))
        return sum(harness.cpu_seconds(pid) for pid in self.processes())

    def system_cpu(self) -> float | None:
        return sum(harness.cpu_times(pid)[1] for pid in self.processes())


def _commandstats(path: str) -> dict[str, int]:
    """Redis's calls per command since start, over its UNIX socket."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(path)
        return cluster.read_commandstats(sock)


@contextmanager
def relay(args: argparse.Namespace, workers: int) -> Iterator[WorkersRelay]:
    port = harness.free_port()
    url = f"ws://127.0.0.1:{port}/ws"
    argv = harness.relay_argv("relay", "ws", {"ws": port}, args) + ["--workers", str(workers)]
    running = WorkersRelay(argv, url, args.log_dir, f"workers-{workers}-{os.getpid()}", workers)
    try:
        running.start()
        yield running
    finally:
        running.stop(timeout=30.0)


def status(url: str) -> dict:
    with urllib.request.urlopen(url.replace("ws://", "http://").rsplit("/", 1)[0] + "/status.json", timeout=5) as r:
        return json.loads(r.read())


def routed_everywhere(url: str, workers: int, procedure: str, timeout: float = 15.0) -> None:
    """Wait until every worker has the procedure (its callees' or mirrored from another's)."""
    deadline = time.monotonic() + timeout
    while True:
        found = status(url)
        having = {
            row.get("worker") for realm in found["realms"] for row in realm["registrations"] if row["uri"] == procedure
        }
        if len(having) >= workers:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{procedure} routed by {len(having)} of {workers} workers after {timeout} s")
        time.sleep(0.05)


def spread(url: str) -> list[int]:
    """Sessions per worker, as the status page says (once every worker's figures are in)."""
    found = status(url)
    return sorted(
        worker["sessions"] for worker in found["relay"].get("workers") or [{"sessions": found["totals"]["sessions"]}]
    )


def crossed(readings: list[tuple[dict[str, int], float]], calls: int) -> tuple[float | None, float]:
    """(share of calls that crossed workers, redis-server CPU seconds) over the windows."""
    publishes = 0
    redis_cpu = 0.0
    for (start, cpu0), (end, cpu1) in zip(readings[0::2], readings[1::2], strict=True):
        scripts = sum(end.get(name, 0) - start.get(name, 0) for name in ("eval", "evalsha"))
        publishes += end.get("publish", 0) - start.get("publish", 0) - scripts
        redis_cpu += cpu1 - cpu0
    return (round(publishes / 2 / calls, 3) if calls else None), redis_cpu


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    harness.check_common(args)
    if args.transports != ["ws"]:
        raise SystemExit("--transports: the workers scenario measures WebSocket (ws) only")
    results: list[dict] = []
    runs: dict = {}
    for serializer in args.serializers:
        baseline: dict | None = None
        for count in args.workers_list:
            prefix = f"workers.{serializer}.w{count}"
            with relay(args, count) as running, harness.workers() as started:
                url = running.urls["ws"]
                runs[f"{prefix}.relay"] = running.command
                callee = harness.Worker(
                    "callee",
                    url,
                    args.log_dir,
                    serializer=serializer,
                    sessions=args.callees,
                    procedure=rpc.PROCEDURE,
                    invoke=args.invoke,
                )
                started.append(callee)
                callee.wait_ready(60)
                routed_everywhere(url, count, rpc.PROCEDURE)
                for _ in range(args.callers):
                    started.append(
                        harness.Worker(
                            "caller",
                            url,
                            args.log_dir,
                            serializer=serializer,
                            sessions=args.sessions,
                            outstanding=args.outstanding,
                            payload=args.payload,
                            procedure=rpc.PROCEDURE,
                        )
                    )
                for worker in started:
                    if worker.ready is None:
                        worker.wait_ready(60)
                time.sleep(2.5)  # every worker's figures reach the status page
                runs[f"{prefix}.sessions_per_worker"] = spread(url)
                running.readings.clear()
                windows = harness.measure_runs(running, started, args)
            errors = sum(r.get("errors", 0) for w in windows for r in w["results"] if r["role"] == "caller")
            summary = harness.summarize(windows, rpc.calls_per_second)
            results.extend(harness.rate_figures(f"{prefix}.rpc", summary, "calls_per_s"))
            runs[f"{prefix}.call_errors"] = errors
            if count > 1:
                made = sum(r["count"] for w in windows for r in w["results"] if r["role"] == "caller")
                share, redis_seconds = crossed(running.readings, made)
                window_seconds = sum(w["window_s"] for w in windows)
                if share is not None:
                    results.append({"name": f"{prefix}.crossed", "value": share, "unit": "share"})
                results.append(
                    {"name": f"{prefix}.redis_cpu", "value": round(redis_seconds / window_seconds, 4), "unit": "cores"}
                )
            if count == 1:
                baseline = summary
            elif baseline is not None:
                for key in ("rate", "capacity"):
                    if summary[key] and baseline[key]:
                        results.append(
                            {
                                "name": f"{prefix}.vs_w1.{key}",
                                "value": round(summary[key] / baseline[key], 3),
                                "unit": "ratio",
                            }
                        )
            time.sleep(0.3)
    return results, harness.setup_of(args, runs=runs)
