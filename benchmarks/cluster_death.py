"""A node dies with calls in flight: how long until the others notice, and until the calls fail.

``python -m benchmarks cluster-death [--repeat 3]``

Each round: a Redis of its own and two relays with ``--cluster`` and the default heartbeat
(1 s) and time-to-live (4 s); a callee on node 2 registers a procedure that never answers,
a caller on node 1 (our client, in this process) calls it, then node 2 gets SIGKILL. Figures
(seconds after the kill, median and worst over the rounds): ``cluster_death.call_failed``
(the caller got ERROR ``wamp.error.canceled``) and ``cluster_death.detected`` (node 1's
``/health`` no longer lists node 2).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import time
import urllib.request

from twisted.internet import defer, task

from benchmarks import cluster as cluster_scenario
from benchmarks import harness
from benchmarks.cluster_soak import _run_in_reactor

WAIT = 15.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--log-dir", default=harness.Path("/tmp/promisifier-benchmarks"), type=harness.Path)


def _nodes_seen(url: str) -> list[str]:
    health = url.replace("ws://", "http://").rsplit("/", 1)[0] + "/health"
    with urllib.request.urlopen(health, timeout=5) as response:
        return json.loads(response.read())["cluster"]["nodes"]


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    args.log_dir.mkdir(parents=True, exist_ok=True)
    args.profile = None
    args.relay = "promisifier"
    rounds: list[dict] = []

    @defer.inlineCallbacks
    def measure(reactor):
        import promisifier

        for _ in range(args.repeat):
            with cluster_scenario.cluster(args) as (_, nodes):
                one, two = (node.urls["ws"] for node in nodes)
                callee = yield promisifier.connect(two, "realm1", timeout=WAIT)
                yield callee.register("com.bench.hang", lambda: defer.Deferred())
                caller = yield promisifier.connect(one, "realm1", timeout=WAIT)
                deadline = reactor.seconds() + WAIT
                while not _nodes_seen(one) and reactor.seconds() < deadline:  # node 1 sees node 2
                    yield task.deferLater(reactor, 0.05, lambda: None)
                while True:  # until node 1 routes it (a moment after REGISTERED)
                    call = caller.call("com.bench.hang")
                    yield task.deferLater(reactor, 0.2, lambda: None)
                    if not call.called:
                        break
                    call.addErrback(lambda _: None)
                failed: list[float] = []
                call.addErrback(lambda failure, failed=failed: failed.append(time.monotonic()))
                killed = time.monotonic()
                nodes[1].process.send_signal(signal.SIGKILL)
                detected = None
                while (not failed or detected is None) and time.monotonic() - killed < WAIT:
                    if detected is None and not _nodes_seen(one):
                        detected = time.monotonic()
                    yield task.deferLater(reactor, 0.05, lambda: None)
                rounds.append(
                    {
                        "call_failed": round(failed[0] - killed, 3) if failed else None,
                        "detected": round(detected - killed, 3) if detected else None,
                    }
                )
                yield caller.leave()

    _run_in_reactor(measure)
    results = []
    for key in ("call_failed", "detected"):
        values = [r[key] for r in rounds if r[key] is not None]
        if values:
            results.append({"name": f"cluster_death.{key}.median", "value": statistics.median(values), "unit": "s"})
            results.append({"name": f"cluster_death.{key}.max", "value": max(values), "unit": "s"})
    return results, {"rounds": rounds}
