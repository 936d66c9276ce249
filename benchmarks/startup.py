"""Relay start-up: seconds from process start to listening and to the first WELCOME; idle RSS.

Starts ``python -m promisifier relay`` (``--relay script``: the benchmarks' relay script)
``--repeat`` times. Each time it measures the seconds from spawning the process until
its port accepts a TCP connection (polled every 2 ms), then the seconds for a first
client's WebSocket handshake plus HELLO -> WELCOME, then, after ``--settle`` seconds
idle, the process's RSS. Figures (medians): ``startup.listening`` (s),
``startup.first_welcome`` (s, from process start), ``startup.idle_rss`` (MB).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from benchmarks import harness


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeat", type=int, default=3, help="relay starts (default 3)")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds idle before reading the RSS (default 1)")
    parser.add_argument("--relay", choices=("promisifier", "script"), default="promisifier")
    parser.add_argument(
        "--log-dir", type=harness.Path, default=harness.Path(harness.tempfile.gettempdir()) / "promisifier-benchmarks"
    )


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    args.log_dir.mkdir(parents=True, exist_ok=True)
    args.profile = None
    listening, welcome, rss = [], [], []
    command = None
    for _ in range(args.repeat):
        port = harness.free_port()
        argv = harness.relay_argv("relay", "ws", {"ws": port}, args)
        command = " ".join(argv)
        relay = harness.Server(argv, {"ws": f"ws://127.0.0.1:{port}/ws"}, args.log_dir, f"startup-{port}")
        started = time.perf_counter()
        try:
            relay.start()
            listening.append(time.perf_counter() - started)
            harness.hello_over_websocket(port)
            welcome.append(time.perf_counter() - started)
            time.sleep(args.settle)
            rss.append(relay.rss())
        finally:
            relay.stop()
    results = [
        {"name": "startup.listening", "value": round(statistics.median(listening), 4), "unit": "s", "runs": listening},
        {"name": "startup.first_welcome", "value": round(statistics.median(welcome), 4), "unit": "s", "runs": welcome},
        {"name": "startup.idle_rss", "value": round(statistics.median(rss) / 1e6, 1), "unit": "MB", "runs": rss},
    ]
    return results, {"command": command, "python": sys.executable, "repeat": args.repeat, "loadavg": harness.loadavg()}
