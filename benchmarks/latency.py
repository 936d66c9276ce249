"""Sequential call latency: one call at a time through the relay, p50 / p90 / p99.

One caller session makes one call, waits for its RESULT, makes the next (``W = 1``),
to a callee in another process, through the relay in its own process; the caller times
each call with ``time.perf_counter`` (encode, send, the relay twice, the callee, decode).
Figures per transport and serializer, in milliseconds: ``latency.T.S.p50``, ``.p90``,
``.p99`` (and ``.mean`` in the JSON), over every call completed in the window.
"""

from __future__ import annotations

import argparse

from benchmarks import harness, rpc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_common_arguments(parser)
    parser.add_argument("--payload", type=int, default=10, help="characters in the call's argument (default 10)")


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    harness.check_common(args)
    results: list[dict] = []
    runs: dict = {}
    for transport in args.transports:
        with harness.server("relay", transport, args, args.log_dir) as relay:
            runs[f"{transport}.server"] = relay.command
            for serializer in args.serializers:
                windows = rpc.call_round(
                    args,
                    relay,
                    relay.urls[transport],
                    serializer,
                    outstanding=1,
                    payload=args.payload,
                    latency=True,
                    callers=1,
                    sessions=1,
                )
                latencies = [v for w in windows for r in w["results"] for v in r.get("latencies_us", ())]
                stats = harness.percentiles(latencies)
                prefix = f"latency.{transport}.{serializer}"
                for key in ("p50", "p90", "p99"):
                    results.append({"name": f"{prefix}.{key}", "value": round(stats[key] / 1000, 4), "unit": "ms"})
                summary = harness.summarize(windows, rpc.calls_per_second)
                runs[prefix] = {
                    **{k: round(v / 1000, 4) if k != "n" else v for k, v in stats.items()},
                    "windows": summary["runs"],
                }
    return results, harness.setup_of(args, runs=runs)
