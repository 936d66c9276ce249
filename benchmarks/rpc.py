"""Relayed RPC: calls/s through the relay (caller -> relay -> callee), W calls in flight.

The relay runs in its own process (``python -m promisifier relay``, with ``--rawsocket``
for RawSocket; ``--relay script`` runs the bare router of ``benchmarks.servers`` instead). One callee process registers ``com.bench.echo`` and answers each INVOCATION
with its arguments; ``--callers`` caller processes of ``--sessions`` sessions each keep
``--outstanding`` calls in flight per session. Each call is 4 messages through the relay
(CALL in, INVOCATION out, YIELD in, RESULT out). Figures per transport and serializer:

* ``rpc.T.S.rate``      calls completed per second in the window
* ``rpc.T.S.relay_cpu`` share of one core the relay process used in the window
* ``rpc.T.S.capacity``  rate / relay_cpu: calls/s the relay would route with a full core
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmarks import harness

PROCEDURE = "com.bench.echo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_common_arguments(parser)
    add_call_arguments(parser)


def add_call_arguments(
    parser: argparse.ArgumentParser, outstanding: int = 16, payload: int = 10, callers: int = 2
) -> None:
    parser.add_argument("--callers", type=int, default=callers, help=f"caller processes (default {callers})")
    parser.add_argument("--sessions", type=int, default=1, help="caller sessions per caller process (default 1)")
    parser.add_argument(
        "--outstanding",
        type=int,
        default=outstanding,
        help=f"calls in flight per caller session (default {outstanding})",
    )
    parser.add_argument(
        "--payload", type=int, default=payload, help=f"characters in the call's one argument (default {payload})"
    )


def call_round(
    args: argparse.Namespace,
    relay: harness.Server,
    url: str,
    serializer: str,
    *,
    outstanding: int,
    payload: int,
    with_callee: bool = True,
    latency: bool = False,
    callers: int | None = None,
    sessions: int | None = None,
    before_callers: Any = None,
) -> list[dict]:
    """The measured windows of calls (``--repeat`` of them) with one set of processes."""
    log_dir: Path = args.log_dir
    lean = getattr(args, "lean", False)
    with harness.workers() as started:
        if with_callee:
            callee = harness.Worker("callee", url, log_dir, serializer=serializer, procedure=PROCEDURE, lean=lean)
            started.append(callee)
            callee.wait_ready(60)
        if before_callers is not None:
            before_callers()  # e.g. until every worker of a relay routes the procedure
        for _ in range(callers if callers is not None else args.callers):
            started.append(
                harness.Worker(
                    "caller",
                    url,
                    log_dir,
                    serializer=serializer,
                    sessions=sessions if sessions is not None else args.sessions,
                    outstanding=outstanding,
                    payload=payload,
                    procedure=PROCEDURE,
                    latency=latency,
                    lean=lean,
                )
            )
        for worker in started:
            if worker.ready is None:
                worker.wait_ready(60)
        windows = harness.measure_runs(relay, started, args)
    for window in windows:
        errors = sum(r.get("errors", 0) for r in window["results"] if r["role"] == "caller")
        if errors:
            window["call_errors"] = errors
    return windows


def calls_per_second(window: dict) -> float:
    return sum(r["count"] for r in window["results"] if r["role"] == "caller") / window["window_s"]


def run_calls(args: argparse.Namespace, kind: str, scenario: str) -> tuple[list[dict], dict]:
    """The rpc / embedded scenarios: per transport and serializer, one window."""
    harness.check_common(args)
    results: list[dict] = []
    runs: dict[str, Any] = {}
    for transport in args.transports:
        with harness.server(kind, transport, args, args.log_dir) as relay:
            url = relay.urls[transport]
            runs[f"{transport}.server"] = relay.command
            for serializer in args.serializers:
                windows = call_round(
                    args,
                    relay,
                    url,
                    serializer,
                    outstanding=args.outstanding,
                    payload=args.payload,
                    with_callee=kind != "embedded",
                )
                prefix = f"{scenario}.{transport}.{serializer}"
                summary = harness.summarize(windows, calls_per_second)
                results.extend(harness.rate_figures(prefix, summary, "calls_per_s"))
                runs[prefix] = summary["runs"]
    return results, harness.setup_of(args, runs=runs)


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    return run_calls(args, "relay", "rpc")
