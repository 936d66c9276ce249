"""Cluster soak: sessions churn on three relay nodes for a set time; afterwards Redis and
every node's tables must be back to where they started.

``python -m benchmarks cluster-soak [--seconds 30] [--sessions 4]``

A Redis of its own and three relays with ``--cluster`` (started and stopped like the
``cluster`` scenario's). Then, in rounds until ``--seconds`` have passed, ``--sessions``
sessions on each node (our client, in this process) each register a procedure of their
own, subscribe to a topic (exact) and a prefix, call the procedure of a session on the next
node, publish, and leave; a third of them leave by dropping their connection instead of
GOODBYE. Every round waits for all of that (each wait bounded).

At the end, after a short settle: Redis's ``DBSIZE`` (against its size after a first round) and each node's routing tables
(``/status.json`` counts: sessions, registrations, subscriptions, calls in flight). Figures:
``cluster_soak.rounds``, ``.sessions`` (churned), ``.calls``, ``.dbsize_start``,
``.dbsize_end`` and ``.leftover`` (the nodes' table entries left, summed: 0 when nothing
leaked).
"""

from __future__ import annotations

import argparse
import json
import urllib.request

from twisted.internet import defer, task

from benchmarks import cluster as cluster_scenario
from benchmarks import harness

#: seconds after the last round before the tables are read
SETTLE = 3.0
WAIT = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=30.0, help="how long sessions churn (default 30)")
    parser.add_argument("--sessions", type=int, default=4, help="sessions per node and round (default 4)")
    parser.add_argument("--nodes", type=int, default=3, help="relay nodes (default 3)")
    parser.add_argument("--log-dir", default=harness.Path("/tmp/promisifier-benchmarks"), type=harness.Path)


def _counts(url: str) -> dict[str, int]:
    status = url.replace("ws://", "http://").rsplit("/", 1)[0] + "/status.json"
    with urllib.request.urlopen(status, timeout=5) as response:
        found = json.loads(response.read())
    totals = {"sessions": 0, "registrations": 0, "subscriptions": 0, "pending_calls": 0}
    for realm in found["realms"]:
        for key in totals:
            totals[key] += realm["counts"][key]
    return totals


@defer.inlineCallbacks
def _round(reactor, urls: list[str], per_node: int, number: int):
    import promisifier

    sessions = []
    for node, url in enumerate(urls):
        for index in range(per_node):
            session = yield promisifier.connect(url, "realm1", timeout=WAIT)
            sessions.append((node, index, session))
    for node, index, session in sessions:
        yield session.register(f"com.soak.n{node}.s{index}.r{number}", lambda n: n + 1)
        yield session.subscribe(f"com.soak.topic.n{node}", lambda *a, **k: None)
        yield session.subscribe("com.soak", lambda *a, **k: None, match="prefix")
    calls = 0
    for node, index, session in sessions:
        target = f"com.soak.n{(node + 1) % len(urls)}.s{index}.r{number}"
        deadline = reactor.seconds() + WAIT
        while True:  # the registration reaches the other nodes a moment after REGISTERED
            try:
                assert (yield session.call(target, calls, timeout=WAIT)) == calls + 1
                break
            except promisifier.ApplicationError as error:
                if error.error != "wamp.error.no_such_procedure" or reactor.seconds() > deadline:
                    raise
                yield task.deferLater(reactor, 0.02, lambda: None)
        calls += 1
        yield session.publish(f"com.soak.topic.n{node}", calls, acknowledge=True)
    for count, (_, _, session) in enumerate(sessions):
        if count % 3 == 2:
            session.connection.drop()  # gone without GOODBYE
        else:
            yield session.leave()
    return len(sessions), calls


def _run_in_reactor(function) -> None:
    """Run ``function(reactor)`` (a Deferred) to its end in the reactor, here."""
    from twisted.internet import reactor

    failures = []

    def go() -> None:
        d = defer.maybeDeferred(function, reactor)
        d.addErrback(failures.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(go)
    reactor.run(installSignalHandlers=False)
    if failures:
        failures[0].raiseException()


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    args.log_dir.mkdir(parents=True, exist_ok=True)
    outcome: dict = {}
    args.serializers = ["msgpack"]
    args.profile = None
    args.relay = "promisifier"
    with cluster_scenario.cluster(args, nodes=args.nodes) as (redis, nodes):
        urls = [node.urls["ws"] for node in nodes]

        @defer.inlineCallbacks
        def churn(reactor):
            # one round first, so that the keys that stay (the nodes, their slots, the
            # registration table's version) are in the baseline
            yield _round(reactor, urls, 1, -1)
            yield task.deferLater(reactor, SETTLE, lambda: None)
            outcome["dbsize_start"] = redis.dbsize()
            rounds = sessions = calls = 0
            started = reactor.seconds()
            while reactor.seconds() - started < args.seconds:
                churned, made = yield _round(reactor, urls, args.sessions, rounds)
                rounds, sessions, calls = rounds + 1, sessions + churned, calls + made
            yield task.deferLater(reactor, SETTLE, lambda: None)
            outcome.update(rounds=rounds, sessions=sessions, calls=calls)

        _run_in_reactor(churn)
        outcome["dbsize_end"] = redis.dbsize()
        outcome["tables"] = [_counts(url) for url in urls]
    leftover = sum(sum(counts.values()) for counts in outcome["tables"])
    results = [
        {"name": f"cluster_soak.{key}", "value": outcome[key], "unit": unit}
        for key, unit in (("rounds", "rounds"), ("sessions", "sessions"), ("calls", "calls"))
    ]
    results += [
        {"name": "cluster_soak.dbsize_start", "value": outcome["dbsize_start"], "unit": "keys"},
        {"name": "cluster_soak.dbsize_end", "value": outcome["dbsize_end"], "unit": "keys"},
        {"name": "cluster_soak.leftover", "value": leftover, "unit": "entries"},
    ]
    return results, {
        "nodes": args.nodes,
        "sessions": args.sessions,
        "seconds": args.seconds,
        "tables": outcome["tables"],
    }
