"""Idle sessions: the relay's memory per joined, idle session (1,000 and 10,000 sessions).

For each N of ``--sessions``, a fresh relay is started and left idle for ``--settle``
seconds; its RSS is read from ``/proc/PID/statm``. Then N sessions connect (over
processes of at most 2,500 sessions each), join realm1 (HELLO/WELCOME) and stay idle;
after ``--settle`` seconds more the RSS is read again. Figures per transport and N:

* ``idle.T.nN.bytes_per_session``  (RSS after - RSS before) / N, in KB
* ``idle.T.nN.rss``                 the relay's RSS with the N sessions, in MB
* ``idle.T.nN.join_rate``           sessions connected and joined per second
"""

from __future__ import annotations

import argparse
import math
import time

from benchmarks import harness


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_common_arguments(parser, serializers="msgpack")
    parser.add_argument(
        "--sessions", type=harness.csv(int), default=[1000, 10000], help="values of N (default 1000,10000)"
    )
    parser.add_argument("--settle", type=float, default=1.0, help="seconds to wait before each RSS reading (default 1)")


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    harness.check_common(args)
    results: list[dict] = []
    runs: dict = {}
    serializer = args.serializers[0]
    for transport in args.transports:
        for n in args.sessions:
            with harness.server("relay", transport, args, args.log_dir) as relay:
                runs[f"{transport}.server"] = relay.command
                time.sleep(args.settle)
                before = relay.rss()
                processes = max(1, math.ceil(n / harness.SESSIONS_PER_WORKER))
                started_at = time.perf_counter()
                with harness.workers() as started:
                    for index in range(processes):
                        count = n // processes + (1 if index < n % processes else 0)
                        started.append(
                            harness.Worker(
                                "idle", relay.urls[transport], args.log_dir, serializer=serializer, sessions=count
                            )
                        )
                    for worker in started:
                        worker.wait_ready(300)
                    joined_in = time.perf_counter() - started_at
                    time.sleep(args.settle)
                    after = relay.rss()
                    counts = None
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
                runs[prefix] = {
                    "rss_before": before,
                    "rss_after": after,
                    "join_seconds": round(joined_in, 3),
                    "processes": processes,
                    "state": counts,
                }
    return results, harness.setup_of(args, runs=runs)
