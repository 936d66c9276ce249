"""Against XConn's Python router: rpc, fan-out and latency over WebSocket, both in one run.

The same harness and load generators measure promisifier's relay and XConn's router
(``Router`` + ``Server`` on aiohttp, :mod:`benchmarks.xconn_router`, run under the
interpreter of a virtualenv that has ``xconn``: ``python3 -m venv benchmarks/.venv-xconn &&
benchmarks/.venv-xconn/bin/pip install xconn``; not a dependency of promisifier). For each
of ``--rounds`` rounds, promisifier then XConn, per serializer and each on a router of its
own: ``rpc`` (W = 16 per caller, 2 callers), ``fanout`` to ``--subscribers`` (100)
subscribers and ``latency`` (one call at a time), each with its own defaults and the
``--seconds``/``--repeat`` given here. Figures per serializer S:

* ``xconn.R.rpc.S.capacity``, ``xconn.R.fanout.S.capacity``, ``xconn.R.latency.S.p50`` /
  ``.p99`` for R = promisifier and xconn (medians over the rounds; every figure of every
  round in the JSON)
* ``xconn.ratio.rpc.S`` and ``xconn.ratio.fanout.S``: promisifier's capacity over XConn's;
  ``xconn.ratio.latency.S.p50``: promisifier's p50 over XConn's (below 1: lower)
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from benchmarks import fanout, harness, latency, rpc

#: this scenario prints each RESULT line as soon as its part finished (__main__ does not)
PRINTS_ITS_OWN_RESULTS = True
RELAYS = ("promisifier", "xconn")
PASSED = ("seconds", "warmup", "repeat", "serializers", "log_dir", "xconn_python", "lean")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_common_arguments(parser, transports="ws")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of promisifier then XConn (default 1)")
    parser.add_argument("--subscribers", type=int, default=100, help="subscribers of the fan-out (default 100)")


def _part(module: Any, args: argparse.Namespace, relay: str, **more: Any) -> list[dict]:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    part = parser.parse_args([])
    for key in PASSED:
        setattr(part, key, getattr(args, key))
    part.transports = ["ws"]
    part.relay = relay
    for key, value in more.items():
        setattr(part, key, value)
    results, _ = module.run(part)
    for result in results:
        print(
            f"RESULT name=xconn.{relay}.{result['name']} value={result['value']:.4g} unit={result['unit']}", flush=True
        )
    return results


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    harness.check_common(args)
    if args.transports != ["ws"]:
        raise SystemExit("xconn: WebSocket only (XConn's Server has no RawSocket)")
    #: figure name -> values over the rounds
    seen: dict[str, list[float]] = {}
    rounds: list[dict] = []
    for _ in range(args.rounds):
        for relay in RELAYS:
            figures = []
            # a fresh router per serializer: XConn's keeps the registrations of sessions
            # that are gone (its Server never detaches them), so a second callee of the
            # same procedure would be refused
            for serializer in args.serializers:
                for module, more in ((rpc, {}), (fanout, {"subscribers": [args.subscribers]}), (latency, {})):
                    figures += _part(module, args, relay, serializers=[serializer], **more)
            rounds.append({"relay": relay, "results": figures})
            for figure in figures:
                seen.setdefault(f"{relay}.{figure['name']}", []).append(figure["value"])
    results: list[dict] = []

    def median(name: str) -> float | None:
        values = seen.get(name)
        return statistics.median(values) if values else None

    def add(name: str, value: float | None, unit: str) -> None:
        if value is not None:
            results.append({"name": f"xconn.{name}", "value": round(value, 4), "unit": unit})

    for serializer in args.serializers:
        rows = {
            "rpc": (f"rpc.ws.{serializer}.capacity", "calls_per_s_per_relay_core"),
            "fanout": (f"fanout.ws.{serializer}.k{args.subscribers}.capacity", "events_per_s_per_relay_core"),
            "latency.p50": (f"latency.ws.{serializer}.p50", "ms"),
            "latency.p99": (f"latency.ws.{serializer}.p99", "ms"),
        }
        for label, (name, unit) in rows.items():
            values = {relay: median(f"{relay}.{name}") for relay in RELAYS}
            for relay in RELAYS:
                add(f"{relay}.{label}.{serializer}", values[relay], unit)
            if label != "latency.p99" and values["promisifier"] and values["xconn"]:
                add(f"ratio.{label}.{serializer}", values["promisifier"] / values["xconn"], "ratio")
    for result in results:
        print(f"RESULT name={result['name']} value={result['value']:.4g} unit={result['unit']}", flush=True)
    return results, harness.setup_of(args, runs={"rounds": rounds})
