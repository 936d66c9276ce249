"""Pub/sub fan-out: 1 publisher, K subscribers (10, 100, 1,000); events delivered per second.

One publisher session keeps ``--outstanding`` acknowledged publications in flight on one
topic; K subscriber sessions, spread over ``--subscriber-processes`` processes, subscribe
to it and count the EVENT frames that arrive (without decoding them). The relay encodes
each event once per serializer and writes it to every subscriber.

Figures per transport, serializer and K:

* ``fanout.T.S.kK.rate``      events delivered per second, counted by the subscribers
* ``fanout.T.S.kK.routed``    events the relay routed per second (publications it
  acknowledged in the window x K; more than delivered when subscribers fall behind)
* ``fanout.T.S.kK.relay_cpu`` / ``.capacity``  events routed per second per relay core
* ``fanout.T.S.kK.delivery``  share of all routed events the subscribers had received
  one second after the publisher stopped (below 1: the relay dropped events for slow
  consumers, or they were still queued)
"""

from __future__ import annotations

import argparse
import time

from benchmarks import harness

TOPIC = "com.bench.topic"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_common_arguments(parser)
    parser.add_argument(
        "--subscribers", type=harness.csv(int), default=[10, 100, 1000], help="values of K (default 10,100,1000)"
    )
    parser.add_argument(
        "--subscriber-processes", type=int, default=2, help="processes the subscribers are spread over (default 2)"
    )
    parser.add_argument("--outstanding", type=int, default=4, help="publications in flight (default 4)")
    parser.add_argument("--payload", type=int, default=10, help="characters in the event's argument (default 10)")


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    harness.check_common(args)
    results: list[dict] = []
    runs: dict = {}
    for transport in args.transports:
        for serializer in args.serializers:
            for k in args.subscribers:
                # a fresh relay per K: no subscriber of an earlier round is still queued for
                with harness.server("relay", transport, args, args.log_dir) as relay:
                    runs[f"{transport}.server"] = relay.command
                    url = relay.urls[transport]
                    processes = max(1, min(args.subscriber_processes, k))
                    with harness.workers() as started:
                        for index in range(processes):
                            count = k // processes + (1 if index < k % processes else 0)
                            started.append(
                                harness.Worker(
                                    "subscriber", url, args.log_dir, serializer=serializer, sessions=count, topic=TOPIC
                                )
                            )
                        for worker in started:
                            worker.wait_ready(120)
                        publisher = harness.Worker(
                            "publisher",
                            url,
                            args.log_dir,
                            serializer=serializer,
                            outstanding=args.outstanding,
                            payload=args.payload,
                            topic=TOPIC,
                        )
                        started.append(publisher)
                        publisher.wait_ready(60)
                        windows = harness.measure_runs(relay, started, args)
                        time.sleep(1.0)
                        totals = {}
                        for worker in started:
                            worker.send(cmd="totals")
                            totals[worker] = worker.read_event(30)["total"]
                    prefix = f"fanout.{transport}.{serializer}.k{k}"

                    def routed(window: dict, k: int = k) -> float:
                        published = sum(r["count"] for r in window["results"] if r["role"] == "publisher")
                        return published * k / window["window_s"]

                    def delivered(window: dict) -> float:
                        return (
                            sum(r["count"] for r in window["results"] if r["role"] == "subscriber") / window["window_s"]
                        )

                    summary = harness.summarize(windows, routed)
                    delivered_rate = harness.statistics.median(delivered(w) for w in windows)
                    results.append(
                        {"name": f"{prefix}.rate", "value": round(delivered_rate, 1), "unit": "events_per_s"}
                    )
                    results.append(
                        {"name": f"{prefix}.routed", "value": round(summary["rate"], 1), "unit": "events_per_s"}
                    )
                    if summary["capacity"] is not None:
                        results.append({"name": f"{prefix}.relay_cpu", "value": summary["relay_cpu"], "unit": "cores"})
                        results.append(
                            {
                                "name": f"{prefix}.capacity",
                                "value": round(summary["capacity"], 1),
                                "unit": "events_per_s_per_relay_core",
                            }
                        )
                    published_total = totals[publisher]
                    delivered_total = sum(total for worker, total in totals.items() if worker is not publisher)
                    delivery = delivered_total / max(published_total * k, 1)
                    results.append({"name": f"{prefix}.delivery", "value": round(delivery, 4), "unit": "ratio"})
                    for run, window in zip(summary["runs"], windows):
                        run["delivered"] = round(delivered(window), 1)
                    runs[prefix] = {
                        "windows": summary["runs"],
                        "publications_total": published_total,
                        "events_delivered_total": delivered_total,
                    }
    return results, harness.setup_of(args, runs=runs)
