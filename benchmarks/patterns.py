"""Pattern routing: µs per call (CALL+YIELD) and per publish with 10 and 10,000 patterns.

In-process and message by message, no sockets: a :class:`Router` on a fake clock, and
:class:`RouterSession` objects on fake peers that only count what the router sends them
(``send``/``send_shared``) and keep the last message. The benchmark drives HELLO, then
REGISTER and SUBSCRIBE for the patterns, then CALL+YIELD and PUBLISH lists into
``session.on_message``, as the transport would after decoding and checking a frame.
Decoding, checking and encoding are not part of the figures; building the CALL, YIELD
and PUBLISH lists in the loop is.

Setup for N patterns: one callee session registers N procedures and one subscriber
session subscribes to N topics, a third each of exact, prefix and wildcard:

* exact     ``com.bench.exact.{i:05d}``
* prefix    ``com.bench.prefix.{i:05d}`` plus 0 to 3 extra components (``.l0.l1.l2``), so
  the prefixes come in 4 distinct lengths, as names of real services do
* wildcard  ``com.bench.wild.{i:05d}..op`` (even i) and ``com.bench.wild..{i:05d}.op`` (odd i)

Measured cases, each routed to the pattern in the middle of its kind:

* ``call.exact``     CALL ``com.bench.exact.{m}``                  -> the exact registration
* ``call.prefix``    CALL ``<prefix m>.deep.call``                -> the longest prefix
* ``call.wildcard``  CALL ``com.bench.wild.{m}.room7.op``         -> the best wildcard
* ``call.miss``      CALL to a URI nobody registered              -> ERROR no_such_procedure
* ``publish.exact`` / ``publish.prefix`` / ``publish.wildcard``    -> exactly one EVENT
* ``publish.none``   PUBLISH on a topic no pattern matches         -> no EVENT

Each case checks first that its message takes the intended route (and, after measuring,
that every message did), then runs for ``--count`` messages or ``--seconds`` seconds,
whichever comes first, ``--repeat`` times; the figure is the median of the repeats.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.task import Clock

from promisifier.router import Router, RouterConfig
from promisifier.wire.messages import (
    CALL,
    ERROR,
    EVENT,
    HELLO,
    INVOCATION,
    PUBLISH,
    REGISTER,
    REGISTERED,
    RESULT,
    SUBSCRIBE,
    SUBSCRIBED,
    WELCOME,
    YIELD,
)

REALM = "realm1"
ROLES = {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}
_connection_ids = itertools.count(1)


class CountingPeer:
    """A peer that only counts what the router sends it and keeps the last message."""

    serializer_name = None
    #: never a slow consumer
    congested = False

    def __init__(self, name: str) -> None:
        self.connection_id = next(_connection_ids)
        self.peer = f"benchmark:{name}"
        self.sent = 0
        self.shared = 0
        self.last: list | None = None
        self.closed: tuple[int, str] | None = None

    def send(self, message: list) -> None:
        self.sent += 1
        self.last = message

    def send_shared(self, message: list, encoded: dict) -> None:
        self.shared += 1
        self.last = message

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)


# -- the pattern sets ------------------------------------------------------------------------


def exact_uri(i: int) -> str:
    return f"com.bench.exact.{i:05d}"


def prefix_uri(i: int) -> str:
    return f"com.bench.prefix.{i:05d}" + "".join(f".l{depth}" for depth in range(i % 4))


def wildcard_uri(i: int) -> str:
    return f"com.bench.wild.{i:05d}..op" if i % 2 == 0 else f"com.bench.wild..{i:05d}.op"


def pattern_set(total: int) -> list[tuple[str, str]]:
    """``total`` (uri, match) pairs: a third each of exact, prefix and wildcard."""
    kinds = ("exact", "prefix", "wildcard")
    makers = {"exact": exact_uri, "prefix": prefix_uri, "wildcard": wildcard_uri}
    counters = dict.fromkeys(kinds, 0)
    patterns = []
    for n in range(total):
        kind = kinds[n % 3]
        patterns.append((makers[kind](counters[kind]), kind))
        counters[kind] += 1
    return patterns


def targets(total: int) -> dict[str, tuple[str, str]]:
    """For each match kind: (pattern routed to, concrete URI sent) in the middle of the set."""
    per_kind = {kind: sum(1 for _, k in pattern_set(total) if k == kind) for kind in ("exact", "prefix", "wildcard")}
    m_exact = per_kind["exact"] // 2
    m_prefix = per_kind["prefix"] // 2
    m_wild = per_kind["wildcard"] // 2 // 2 * 2  # an even i: com.bench.wild.{i}..op
    return {
        "exact": (exact_uri(m_exact), exact_uri(m_exact)),
        "prefix": (prefix_uri(m_prefix), prefix_uri(m_prefix) + ".deep.call"),
        "wildcard": (wildcard_uri(m_wild), f"com.bench.wild.{m_wild:05d}.room7.op"),
        "miss": ("", "com.bench.nobody.home"),
    }


# -- a router with sessions --------------------------------------------------------------------


class Bench:
    """A router on a fake clock with a callee, a subscriber and a caller/publisher session."""

    def __init__(self, total: int) -> None:
        self.router = Router(RouterConfig(realms=(REALM,)), reactor=Clock())
        self.callee_peer, self.callee = self._join("callee")
        self.subscriber_peer, self.subscriber = self._join("subscriber")
        self.caller_peer, self.caller = self._join("caller")
        self.registrations: dict[tuple[str, str], int] = {}
        self.subscriptions: dict[tuple[str, str], int] = {}
        self._request_ids = itertools.count(1)
        for uri, match in pattern_set(total):
            options = {} if match == "exact" else {"match": match}
            self.callee.on_message([REGISTER, next(self._request_ids), options, uri])
            reply = self.callee_peer.last
            assert reply is not None and reply[0] == REGISTERED, f"REGISTER {uri} {match}: {reply}"
            self.registrations[(uri, match)] = reply[2]
            self.subscriber.on_message([SUBSCRIBE, next(self._request_ids), options, uri])
            reply = self.subscriber_peer.last
            assert reply is not None and reply[0] == SUBSCRIBED, f"SUBSCRIBE {uri} {match}: {reply}"
            self.subscriptions[(uri, match)] = reply[2]
        realm = self.router.realms[REALM]
        self.prefix_lengths = len(realm.dealer._index._prefix_lengths)

    def _join(self, name: str) -> tuple[CountingPeer, Any]:
        peer = CountingPeer(name)
        session = self.router.new_session(peer)
        session.on_message([HELLO, REALM, {"roles": ROLES}])
        assert peer.last is not None and peer.last[0] == WELCOME, f"{name}: no WELCOME: {peer.last}"
        return peer, session

    # -- one message each, with the route checked ---------------------------------------------

    def call_once(self, uri: str) -> list:
        """One CALL (and the YIELD if it was routed); returns what the caller got."""
        callee_peer = self.callee_peer
        before = callee_peer.sent
        self.caller.on_message([CALL, next(self._request_ids), {}, uri, [1, 2]])
        if callee_peer.sent != before:
            invocation = callee_peer.last
            assert invocation is not None and invocation[0] == INVOCATION
            self.callee.on_message([YIELD, invocation[1], {}, [3]])
        return self.caller_peer.last  # type: ignore[return-value]

    def publish_once(self, topic: str) -> int:
        """One PUBLISH; returns the number of EVENTs it produced."""
        before = self.subscriber_peer.shared
        self.caller.on_message([PUBLISH, next(self._request_ids), {}, topic, [1, 2]])
        return self.subscriber_peer.shared - before

    # -- measured loops -----------------------------------------------------------------------

    def call_loop(self, uri: str) -> Callable[[int], None]:
        caller_on_message = self.caller.on_message
        callee_on_message = self.callee.on_message
        callee_peer = self.callee_peer
        request_ids = self._request_ids

        def loop(n: int) -> None:
            for _ in range(n):
                caller_on_message([CALL, next(request_ids), {}, uri, [1, 2]])
                callee_on_message([YIELD, callee_peer.last[1], {}, [3]])  # type: ignore[index]

        return loop

    def miss_loop(self, uri: str) -> Callable[[int], None]:
        caller_on_message = self.caller.on_message
        request_ids = self._request_ids

        def loop(n: int) -> None:
            for _ in range(n):
                caller_on_message([CALL, next(request_ids), {}, uri, [1, 2]])

        return loop

    def publish_loop(self, topic: str) -> Callable[[int], None]:
        caller_on_message = self.caller.on_message
        request_ids = self._request_ids

        def loop(n: int) -> None:
            for _ in range(n):
                caller_on_message([PUBLISH, next(request_ids), {}, topic, [1, 2]])

        return loop


def measure(loop: Callable[[int], None], count: int, seconds: float, repeat: int) -> dict:
    """Median µs per message over ``repeat`` runs of at most ``count`` messages / ``seconds``."""
    batch = 500
    loop(batch)  # warm up
    per_message = []
    messages = 0
    for _ in range(repeat):
        gc.collect()
        done = 0
        started = time.perf_counter()
        deadline = started + seconds
        while done < count:
            loop(batch)
            done += batch
            if time.perf_counter() > deadline:
                break
        elapsed = time.perf_counter() - started
        per_message.append(elapsed / done * 1e6)
        messages += done
    return {"us": statistics.median(per_message), "runs_us": [round(v, 4) for v in per_message], "messages": messages}


# -- the scenario -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--patterns",
        default="10,10000",
        help="comma-separated numbers of registered patterns (and as many subscriptions); default 10,10000",
    )
    parser.add_argument("--count", type=int, default=50_000, help="most messages per run of a case (default 50000)")
    parser.add_argument("--seconds", type=float, default=1.0, help="most seconds per run of a case (default 1.0)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per case; the median is reported (default 5)")


def run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    sizes = [int(n) for n in str(args.patterns).split(",") if n.strip()]
    if not sizes or min(sizes) < 3:
        raise SystemExit("--patterns: numbers of at least 3 are needed (one pattern of each kind)")
    if args.count < 1 or args.seconds <= 0 or args.repeat < 1:
        raise SystemExit("--count, --seconds and --repeat must be positive")
    results: list[dict] = []
    setup: dict[str, Any] = {
        "sizes": sizes,
        "count": args.count,
        "seconds": args.seconds,
        "repeat": args.repeat,
        "benches": {},
    }
    by_case: dict[str, dict[int, float]] = {}
    for total in sizes:
        started = time.perf_counter()
        bench = Bench(total)
        setup_seconds = time.perf_counter() - started
        chosen = targets(total)
        setup["benches"][total] = {
            "registrations": bench.router.state_counts()["registrations"],
            "subscriptions": bench.router.state_counts()["subscriptions"],
            "distinct_prefix_lengths": bench.prefix_lengths,
            "setup_seconds": round(setup_seconds, 3),
            "targets": {kind: {"pattern": pattern, "uri": uri} for kind, (pattern, uri) in chosen.items()},
        }
        cases: list[tuple[str, str, Callable[[int], None], Callable[[], None], str]] = []
        for kind in ("exact", "prefix", "wildcard", "miss"):
            pattern, uri = chosen[kind]
            if kind == "miss":
                cases.append((f"call.{kind}", uri, bench.miss_loop(uri), _check_miss(bench, uri), "us_per_call"))
            else:
                expected = bench.registrations[(pattern, kind)]
                cases.append(
                    (f"call.{kind}", uri, bench.call_loop(uri), _check_call(bench, uri, expected), "us_per_call")
                )
        for kind in ("exact", "prefix", "wildcard", "none"):
            if kind == "none":
                uri, expected_sub = "com.bench.nobody.listens", None
            else:
                pattern, uri = chosen[kind]
                expected_sub = bench.subscriptions[(pattern, kind)]
            cases.append(
                (
                    f"publish.{kind}",
                    uri,
                    bench.publish_loop(uri),
                    _check_publish(bench, uri, expected_sub),
                    "us_per_publish",
                )
            )
        for case, uri, loop, check, unit in cases:
            check()
            figures = measure(loop, args.count, args.seconds, args.repeat)
            check()
            name = f"patterns.{case}.n{total}"
            results.append(
                {
                    "name": name,
                    "value": round(figures["us"], 4),
                    "unit": unit,
                    "case": case,
                    "patterns": total,
                    "uri": uri,
                    **figures,
                }
            )
            by_case.setdefault(case, {})[total] = figures["us"]
        _check_counts(bench)
    if len(sizes) > 1:
        low, high = min(sizes), max(sizes)
        for case, values in by_case.items():
            results.append(
                {
                    "name": f"patterns.{case}.ratio_n{high}_vs_n{low}",
                    "value": round(values[high] / values[low], 3),
                    "unit": "x",
                    "case": case,
                }
            )
    return results, setup


def _check_call(bench: Bench, uri: str, registration_id: int) -> Callable[[], None]:
    def check() -> None:
        before = bench.callee_peer.sent
        reply = bench.call_once(uri)
        invocation = bench.callee_peer.last
        assert bench.callee_peer.sent == before + 1 and invocation is not None and invocation[0] == INVOCATION
        assert invocation[2] == registration_id, (
            f"CALL {uri} went to registration {invocation[2]}, not {registration_id}"
        )
        assert reply[0] == RESULT and reply[3] == [3], f"CALL {uri}: caller got {reply}"

    return check


def _check_miss(bench: Bench, uri: str) -> Callable[[], None]:
    def check() -> None:
        reply = bench.call_once(uri)
        assert reply[0] == ERROR and reply[4] == "wamp.error.no_such_procedure", f"CALL {uri}: caller got {reply}"

    return check


def _check_publish(bench: Bench, topic: str, subscription_id: int | None) -> Callable[[], None]:
    def check() -> None:
        events = bench.publish_once(topic)
        if subscription_id is None:
            assert events == 0, f"PUBLISH {topic}: {events} EVENTs, expected none"
        else:
            event = bench.subscriber_peer.last
            assert events == 1 and event is not None and event[0] == EVENT, f"PUBLISH {topic}: {events} EVENTs"
            assert event[1] == subscription_id, (
                f"PUBLISH {topic} reached subscription {event[1]}, not {subscription_id}"
            )

    return check


def _check_counts(bench: Bench) -> None:
    # Every call was answered and every call is finished: nothing pending, no session lost.
    counts = bench.router.state_counts()
    assert counts["pending_calls"] == 0, counts
    assert counts["sessions"] == 3, counts
    for peer in (bench.callee_peer, bench.subscriber_peer, bench.caller_peer):
        assert peer.closed is None, f"{peer.peer} was closed: {peer.closed}"
