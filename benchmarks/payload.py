"""Relayed RPC with larger payloads: calls/s and MB/s for 50 B, 4 KiB and 64 KiB arguments.

The rpc scenario with the call's one argument a string of ``--sizes`` characters; the
callee answers with the same argument, so each call carries the payload four times
through the relay (CALL, INVOCATION, YIELD, RESULT). Figures per transport, serializer
and size: ``payload.T.S.SIZE.rate`` (calls/s), ``.relay_cpu``, ``.capacity``, and
``.mbytes`` (payload megabytes per second into the relay: 2 x size x rate).
"""

from __future__ import annotations

import argparse

from benchmarks import harness, rpc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_common_arguments(parser)
    rpc.add_call_arguments(parser, outstanding=4)
    parser.add_argument(
        "--sizes", type=harness.csv(int), default=[50, 4096, 65536], help="argument sizes (default 50,4096,65536)"
    )


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    harness.check_common(args)
    results: list[dict] = []
    runs: dict = {}
    for transport in args.transports:
        with harness.server("relay", transport, args, args.log_dir) as relay:
            runs[f"{transport}.server"] = relay.command
            for serializer in args.serializers:
                for size in args.sizes:
                    windows = rpc.call_round(
                        args, relay, relay.urls[transport], serializer, outstanding=args.outstanding, payload=size
                    )
                    prefix = f"payload.{transport}.{serializer}.{size}"
                    summary = harness.summarize(windows, rpc.calls_per_second)
                    results.extend(harness.rate_figures(prefix, summary, "calls_per_s"))
                    results.append(
                        {
                            "name": f"{prefix}.mbytes",
                            "value": round(2 * size * summary["rate"] / 1e6, 2),
                            "unit": "MB_per_s_in",
                        }
                    )
                    runs[prefix] = summary["runs"]
    return results, harness.setup_of(args, runs=runs)
