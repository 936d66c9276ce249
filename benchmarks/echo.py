"""The ceiling: a raw echo server measured by the same harness, per transport.

WebSocket: autobahn's plain ``WebSocketServerProtocol`` sending each message back
(``onMessage`` -> ``sendMessage``), with the relay's protocol options. RawSocket: the
RawSocket framing of :mod:`promisifier.transport.rawsocket` sending each frame back,
undecoded. No WAMP, no serializer: what the transport layer alone costs per message.
The clients (``--callers`` processes, ``--outstanding`` in flight each, as in the rpc
scenario) send the encoding of a typical CALL (text frames for json, binary for
msgpack) and count the echoes.

Figures per transport and serializer: ``echo.T.S.rate`` (echoes/s: one message in and
one out), ``.relay_cpu`` (the echo server's share of a core), ``.capacity`` (echoes/s per
core) and ``.call_ceiling``: capacity / 2, the relayed calls/s per core this transport
would allow if routing cost nothing (a relayed call is two messages in and two out).
"""

from __future__ import annotations

import argparse

from benchmarks import harness, rpc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_common_arguments(parser)
    rpc.add_call_arguments(parser)


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    harness.check_common(args)
    results: list[dict] = []
    runs: dict = {}
    for transport in args.transports:
        with harness.server("echo", transport, args, args.log_dir) as echo_server:
            runs[f"{transport}.server"] = echo_server.command
            url = echo_server.urls[transport]
            for serializer in args.serializers:
                with harness.workers() as started:
                    for _ in range(args.callers):
                        started.append(
                            harness.Worker(
                                "echo",
                                url,
                                args.log_dir,
                                serializer=serializer,
                                sessions=args.sessions,
                                outstanding=args.outstanding,
                                payload=args.payload,
                            )
                        )
                    for worker in started:
                        worker.wait_ready(60)
                    windows = harness.measure_runs(echo_server, started, args)
                prefix = f"echo.{transport}.{serializer}"
                summary = harness.summarize(windows, lambda w: sum(r["count"] for r in w["results"]) / w["window_s"])
                results.extend(harness.rate_figures(prefix, summary, "echoes_per_s"))
                if summary["capacity"]:
                    results.append(
                        {
                            "name": f"{prefix}.call_ceiling",
                            "value": round(summary["capacity"] / 2, 1),
                            "unit": "calls_per_s_per_core",
                        }
                    )
                runs[prefix] = summary["runs"]
    return results, harness.setup_of(args, runs=runs)
