"""Idle sessions: the relay's memory per joined, idle session (1,000 and 10,000 sessions).

For each N of ``--sessions``, a fresh relay is started and left idle for ``--settle``
seconds; its RSS is read from ``/proc/PID/statm``. Then N sessions connect (over
processes of at most ``--sessions-per-process`` sessions each), join realm1
(HELLO/WELCOME) and stay idle; after ``--settle`` seconds more the RSS is read again.

Connections to one address and port from one source address are limited by the
ephemeral port range (about 28,000 on Linux), so the worker processes connect from
several source addresses of 127.0.0.0/8 (127.0.0.1, 127.0.0.2, ...), at most
``--sessions-per-source`` sessions from each: ``--sessions 100000`` takes 5. The relay
raises its own open files limit at start, the workers theirs (beyond the hard limit where
the harness may: see ``harness.OPEN_FILES``); a relay whose limit is too low for N is not
started (the figure says so). Keep-alive is the relay's default (a WebSocket ping every
30 s). ``--join-rate R``: at most R sessions connect per second (joining as fast as the
machine can saturates it, and on a machine that also runs the load generators a saturated
relay's workers can miss each other's heartbeats). ``--lean``: the sessions (and the caller and callee) use the load generator's
minimal WebSocket client, which answers the relay's pings and costs the load generator
far less CPU per handshake than autobahn's. While the N sessions are connected, one caller makes one call at a time to a
callee (``--seconds``, ``--repeat``), both on the relay. Figures per transport and N:

* ``idle.T.nN.bytes_per_session``  (RSS after - RSS before) / N, in KB
* ``idle.T.nN.rss``                 the relay's RSS with the N sessions, in MB
* ``idle.T.nN.join_rate``           sessions connected and joined per second
* ``idle.T.nN.call.p50``, ``.p99``  latency of those calls, in ms

With ``--workers N`` the relay is ``relay --workers N`` (N processes sharing the port, joined
on a private redis-server; each process has its own open files limit): its memory is that
of all its processes, and the JSON has the sessions each worker holds. ``--worker-ttl S``
gives the workers' heartbeat a time-to-live of S seconds: on a machine the load generators
saturate too, a worker starved of CPU for more than the default 4 s is counted lost by the
others, and reconnecting and announcing itself again costs it more CPU still.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks import harness, rpc, workers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_common_arguments(parser, serializers="msgpack")
    parser.add_argument(
        "--sessions", type=harness.csv(int), default=[1000, 10000], help="values of N (default 1000,10000)"
    )
    parser.add_argument("--settle", type=float, default=1.0, help="seconds to wait before each RSS reading (default 1)")
    parser.add_argument(
        "--sessions-per-process",
        type=int,
        default=harness.SESSIONS_PER_WORKER,
        help=f"sessions per load generator process (default {harness.SESSIONS_PER_WORKER})",
    )
    parser.add_argument(
        "--sessions-per-source",
        type=int,
        default=SESSIONS_PER_SOURCE,
        help=f"sessions per source address in 127.0.0.0/8 (default {SESSIONS_PER_SOURCE})",
    )
    parser.add_argument(
        "--join-rate",
        type=float,
        default=0.0,
        help="sessions joining per second at most, over all processes (default 0: as fast as they can; "
        "a machine that also runs the load generators may need less, see the module docstring)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="run the relay as `relay --workers N` (WebSocket; its memory: every process of it together)",
    )
    parser.add_argument(
        "--worker-ttl",
        type=float,
        default=0.0,
        help="with --workers: the private cluster's ttl in seconds (heartbeat every ttl/5; default: the "
        "relay's, 4 s and 1 s), through a config file whose [cluster] table names no redis",
    )


#: opening handshakes in progress at a time over all worker processes: more only wait in
#: the relay's queues, and one that takes longer than the relay's handshake deadline (10 s)
#: is dropped
HANDSHAKES_IN_FLIGHT = 256

#: seconds the sessions of one run may take to join (100,000 take several minutes here)
JOIN_TIMEOUT = 900

#: files the relay keeps open besides its sessions (listeners, logs, the callee and caller)
SPARE_FILES = 64


class _WorkersRelay(workers.WorkersRelay):
    """``relay --workers N``: its memory is that of the parent, every worker and the
    private redis-server together."""

    def rss(self) -> int | None:
        return sum(harness.rss_bytes(pid) for pid in self.processes()) if self.pid else None


@contextmanager
def relay_of(args: argparse.Namespace, transport: str) -> Iterator[harness.Server]:
    """The relay under test: ``--workers 1``, the lone relay; more, ``relay --workers N``."""
    if args.workers == 1:
        with harness.server("relay", transport, args, args.log_dir) as relay:
            yield relay
        return
    if transport != "ws":
        raise SystemExit("idle --workers: WebSocket only")
    port = harness.free_port()
    name = f"idle-workers-{args.workers}-{os.getpid()}"
    if args.worker_ttl:
        # the relay's TOML file: its [cluster] table without redis sets the heartbeat of the
        # workers' private cluster
        config = args.log_dir / f"{name}.toml"
        config.write_text(
            f'workers = {args.workers}\n[[listeners]]\nendpoint = "tcp:{port}:interface=127.0.0.1"\n'
            f"[cluster]\nheartbeat_interval = {args.worker_ttl / 5:g}\nttl = {args.worker_ttl:g}\n"
        )
        argv = [sys.executable, "-m", "promisifier", "relay", "--config", str(config)]
    else:
        argv = harness.relay_argv("relay", "ws", {"ws": port}, args) + ["--workers", str(args.workers)]
    running = _WorkersRelay(argv, f"ws://127.0.0.1:{port}/ws", args.log_dir, name, args.workers)
    try:
        running.start()
        yield running
    finally:
        running.stop(timeout=60.0)


def open_files_limit(pid: int | None) -> int | None:
    """The soft limit on open files of process ``pid`` (from /proc), None if unknown."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    soft = line.split()[3]
                    return None if soft == "unlimited" else int(soft)
    except OSError:
        pass
    return None


#: below the default ephemeral port range of Linux (32768-60999: 28,232 ports)
SESSIONS_PER_SOURCE = 20000


def source_address(index: int) -> str:
    """The ``index``-th source address of 127.0.0.0/8: 127.0.0.1, 127.0.0.2, ..."""
    number = index + 1
    if not 0 < number < 1 << 24:
        raise ValueError(f"no source address number {index} in 127.0.0.0/8")
    return f"127.{number >> 16}.{(number >> 8) & 0xFF}.{number & 0xFF}"


def spread(sessions: int, per_process: int, per_source: int) -> list[tuple[int, str]]:
    """(sessions, source address) of each worker process: every source address holds at
    most ``per_source`` sessions, every process at most ``per_process``."""
    if per_process <= 0 or per_source <= 0:
        raise ValueError("--sessions-per-process and --sessions-per-source must be positive")
    workers = []
    remaining = sessions
    source = 0
    while remaining > 0:
        on_source = min(remaining, per_source)
        processes = math.ceil(on_source / per_process)
        for index in range(processes):
            count = on_source // processes + (1 if index < on_source % processes else 0)
            workers.append((count, source_address(source)))
        remaining -= on_source
        source += 1
    return workers


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    harness.check_common(args)
    results: list[dict] = []
    runs: dict = {}
    serializer = args.serializers[0]
    for transport in args.transports:
        for n in args.sessions:
            with relay_of(args, transport) as relay:
                runs[f"{transport}.server"] = relay.command
                limit = open_files_limit(relay.pid)
                if limit is not None and n / args.workers + SPARE_FILES > limit:
                    raise SystemExit(
                        f"the relay may open {limit} files: too few for {n} sessions (a connection is one); "
                        f"at most {limit - SPARE_FILES} sessions on this machine"
                    )
                time.sleep(args.settle)
                before = relay.rss()
                plan = spread(n, args.sessions_per_process, args.sessions_per_source)
                started_at = time.perf_counter()
                with harness.workers() as started:
                    for count, source in plan:
                        started.append(
                            harness.Worker(
                                "idle",
                                relay.urls[transport],
                                args.log_dir,
                                serializer=serializer,
                                sessions=count,
                                bind=source,
                                deadline=JOIN_TIMEOUT + 600,
                                connect_concurrency=max(1, HANDSHAKES_IN_FLIGHT // len(plan)),
                                lean=args.lean,
                                connect_rate=args.join_rate / len(plan) if args.join_rate else None,
                            )
                        )
                    for worker in started:
                        worker.wait_ready(JOIN_TIMEOUT)
                    joined_in = time.perf_counter() - started_at
                    time.sleep(args.settle)
                    after = relay.rss()
                    counts = None
                    spread_over_workers = workers.spread(relay.urls[transport]) if args.workers > 1 else None
                    windows = rpc.call_round(
                        args,
                        relay,
                        relay.urls[transport],
                        serializer,
                        outstanding=1,
                        payload=10,
                        latency=True,
                        callers=1,
                        sessions=1,
                        before_callers=(
                            (
                                lambda url=relay.urls[transport]: workers.routed_everywhere(
                                    url, args.workers, rpc.PROCEDURE
                                )
                            )
                            if args.workers > 1
                            else None
                        ),
                    )
                latencies = harness.percentiles(
                    [v for w in windows for r in w["results"] for v in r.get("latencies_us", ())]
                )
                prefix = f"idle.{transport}.n{n}"
                if before is not None and after is not None:
                    results.append(
                        {
                            "name": f"{prefix}.bytes_per_session",
                            "value": round((after - before) / n / 1024, 2),
                            "unit": "KB",
                        }
                    )
                    results.append({"name": f"{prefix}.rss", "value": round(after / 1e6, 1), "unit": "MB"})
                results.append(
                    {"name": f"{prefix}.join_rate", "value": round(n / joined_in, 1), "unit": "sessions_per_s"}
                )
                for key in ("p50", "p99"):
                    if key in latencies:
                        value = round(latencies[key] / 1000, 4)
                        results.append({"name": f"{prefix}.call.{key}", "value": value, "unit": "ms"})
                runs[prefix] = {
                    "rss_before": before,
                    "rss_after": after,
                    "join_seconds": round(joined_in, 3),
                    "processes": len(plan),
                    "source_addresses": len({source for _, source in plan}),
                    "state": counts,
                    "relay_open_files_limit": limit,
                    "sessions_per_worker": spread_over_workers,
                    "calls": {k: round(v / 1000, 4) if k != "n" else v for k, v in latencies.items()},
                    "call_windows": harness.summarize(windows, rpc.calls_per_second)["runs"],
                }
    return results, harness.setup_of(args, runs=runs)
