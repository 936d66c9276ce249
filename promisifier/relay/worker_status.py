"""One status page for the workers of a relay (``--workers N``).

Whichever worker answers ``/status.json``, ``/status`` or ``/health``, it shows the whole
relay: every :data:`EXCHANGE_INTERVAL` seconds each worker shares its own figures
(:meth:`~promisifier.relay.web.RelayWeb.local_snapshot`) through the cluster's bus and reads
those of the other workers of the same relay (the nodes whose names start with the relay's
group). The answer adds them up (:func:`merge_snapshots`): totals, traffic and per-realm
counts are sums over the workers, the charts are sampled from those sums, the session,
registration and subscription rows of every worker are listed (each with its ``worker``),
and ``relay.workers`` lists the workers that reported. Another worker's figures are at most
about one interval old; a worker that stopped reporting drops out after three intervals.
``/metrics`` stays per process (a Prometheus counter must come from one process).
"""

from __future__ import annotations

from typing import Any

import orjson
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

log = Logger(namespace="promisifier.relay")

#: seconds between two exchanges of figures
EXCHANGE_INTERVAL = 1.0
#: most rows of each kind listed per realm, over all workers
MAX_ROWS = 500
_ROWS = ("sessions", "registrations", "subscriptions")


def _add(a: Any, b: Any) -> Any:
    """``a + b`` for numbers, key by key for tables of them; otherwise ``a``."""
    if a is None:
        return b
    if isinstance(a, bool) or isinstance(b, bool):
        return a
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a + b
    if isinstance(a, dict) and isinstance(b, dict):
        return {key: _add(a.get(key), b.get(key)) for key in {**a, **b}}
    return a


def _add_latency(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    buckets = a.get("buckets", [])
    other = b.get("buckets", [])
    if len(buckets) == len(other):
        buckets = [[bound, count + more] for (bound, count), (_, more) in zip(buckets, other)]
    return {
        "count": a.get("count", 0) + b.get("count", 0),
        "sum": a.get("sum", 0) + b.get("sum", 0),
        "buckets": buckets,
    }


def _worker_name(snapshot: dict[str, Any]) -> str | None:
    cluster = snapshot.get("relay", {}).get("cluster") or {}
    return cluster.get("node")


def merge_snapshots(own: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole relay's status from the answering worker's ``own`` snapshot and the
    ``others``' (see the module docstring)."""
    everyone = [own, *others]
    merged = dict(own)
    merged["relay"] = dict(own["relay"])
    merged["relay"]["workers"] = [
        {
            "node": _worker_name(snapshot),
            "pid": snapshot["relay"].get("pid"),
            "serving": snapshot["relay"].get("serving"),
            "uptime": snapshot["relay"].get("uptime"),
            "sessions": snapshot["totals"].get("sessions"),
        }
        for snapshot in everyone
    ]
    totals: Any = None
    traffic: dict[str, Any] = {}
    for snapshot in everyone:
        totals = _add(totals, snapshot["totals"])
        for name, stats in snapshot.get("traffic", {}).items():
            traffic[name] = _add(traffic.get(name), stats)
    merged["totals"] = totals
    merged["traffic"] = traffic
    realms: dict[str, dict[str, Any]] = {}
    for snapshot in everyone:
        worker = _worker_name(snapshot)
        for realm in snapshot.get("realms", []):
            rows = {kind: [dict(row, worker=worker) for row in realm.get(kind, [])] for kind in _ROWS}
            found = realms.get(realm["name"])
            if found is None:
                realms[realm["name"]] = {**realm, **rows}
                continue
            for key, value in realm.items():
                if key in _ROWS or key == "name":
                    continue
                found[key] = _add_latency(found[key], value) if key == "call_latency" else _add(found.get(key), value)
            for kind in _ROWS:
                found[kind] = (found[kind] + rows[kind])[:MAX_ROWS]
    merged["realms"] = list(realms.values())
    return merged


class WorkerFigures:
    """Shares one worker's figures with the other workers of its relay and keeps theirs
    (see the module docstring). ``web`` is the worker's
    :class:`~promisifier.relay.web.RelayWeb`, ``cluster`` its
    :class:`~promisifier.cluster.node.ClusterNode`; the relay's workers are the nodes whose
    names start with ``group``; ``count`` is how many there should be."""

    def __init__(self, web: Any, cluster: Any, group: str, count: int, clock: Any) -> None:
        self.web = web
        self.cluster = cluster
        self.group = group
        self.count = count
        self.clock = clock
        self._others: dict[str, dict[str, Any]] = {}
        self._loop: LoopingCall | None = None

    def start(self) -> None:
        self._loop = LoopingCall(self.exchange)
        self._loop.clock = self.clock
        self._loop.start(EXCHANGE_INTERVAL, now=True)

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()

    def exchange(self) -> None:
        """Share this worker's figures, and read the others' (once the link answers)."""
        bus = self.cluster.bus
        if not bus.up:
            self._others = {}
            return
        # each worker shares its share of the rows the merged page lists: with every worker
        # sending all of them, each read and parsed count - 1 full lists every second
        rows = -(-MAX_ROWS // max(self.count, 1))
        snapshot = self.web.local_snapshot(max_rows=rows, traffic_max_age=EXCHANGE_INTERVAL)
        own = orjson.dumps(snapshot, option=orjson.OPT_NON_STR_KEYS)
        bus.share_figures(own, 3 * EXCHANGE_INTERVAL)
        peers = sorted(node for node in bus.live_nodes if node.startswith(self.group))
        bus.figures(peers).addCallbacks(self._received, self._failed)

    def _received(self, found: dict[str, bytes]) -> None:
        others = {}
        for node, payload in found.items():
            try:
                others[node] = orjson.loads(payload)
            except orjson.JSONDecodeError:
                log.warn("promisifier relay: unreadable figures of worker {node}", node=node)
        self._others = others

    def _failed(self, failure: Any) -> None:
        self._others = {}

    def others(self) -> list[dict[str, Any]]:
        """The other workers' latest figures (by node name)."""
        return [self._others[node] for node in sorted(self._others)]

    def merged(self, own: dict[str, Any]) -> dict[str, Any]:
        return merge_snapshots(own, self.others())

    def merged_totals(self, own: dict[str, Any]) -> dict[str, Any]:
        totals = own
        for other in self.others():
            totals = _add(totals, other["totals"])
        return totals

    def health(self) -> dict[str, int]:
        """For ``/health``: how many workers there should be, and how many report."""
        return {"count": self.count, "reporting": 1 + len(self._others)}
