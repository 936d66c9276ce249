"""What the relay serves over plain HTTP beside its WebSocket: a status page, its data as
JSON, a health check and Prometheus metrics.

One :class:`RelayWeb` per router (:meth:`RelayWeb.of`) holds what those pages share: the
router, the history of totals behind the page's charts (sampled every
:data:`SAMPLE_INTERVAL` seconds for the last :data:`HISTORY_SECONDS`), whether the relay is
shutting down, and the router's Prometheus registry. :meth:`RelayWeb.resources` gives the
``twisted.web`` resources a listener mounts (see :mod:`promisifier.relay.site`):

* ``status_path`` (default ``/status``): the page, ``index.html`` from the package data in
  ``promisifier/relay/status/`` with its script and style sheet beside it
  (``/status/status.js``, ``/status/status.css``). The page polls the JSON every 2 s.
* ``status_path + ".json"``: :meth:`RelayWeb.snapshot` (realms, sessions, registrations,
  subscriptions, totals, rates over the last minute).
* ``/health``: 200 with ``{"status": "serving", ...}`` while the relay serves, 503 with
  ``"shutting_down"`` from the moment it starts to stop.
* ``/metrics``: :mod:`promisifier.relay.metrics`, Prometheus text format.

Nothing here runs on the message path: the router counts with plain integers, and these
pages read the counts when asked.
"""

from __future__ import annotations

import html
import os
import time
from collections import deque
from collections.abc import Callable
from importlib import resources as package_files
from itertools import islice
from typing import Any

import orjson
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.resource import IResource, Resource

from promisifier.router import RouterCore
from promisifier.router.counters import CALL_OUTCOMES

log = Logger(namespace="promisifier.relay.web")

#: seconds between two samples of the totals, and how far back the charts go
SAMPLE_INTERVAL = 2.0
HISTORY_SECONDS = 60.0
#: most rows of each kind listed per realm in the JSON (the counts are always complete)
MAX_ROWS = 500

_TRANSPORTS = {
    "promisifier.transport.websocket": "websocket",
    "promisifier.transport.rawsocket": "rawsocket",
    "promisifier.embed": "in-process",
}

_STATIC = {
    b"status.js": ("status.js", b"text/javascript; charset=utf-8"),
    b"status.css": ("status.css", b"text/css; charset=utf-8"),
}


def _package_file(name: str) -> bytes:
    return package_files.files("promisifier.relay").joinpath("status", name).read_bytes()


def transport_kind(peer: object) -> str:
    """``websocket``, ``rawsocket``, ``in-process``, a bridge's own (``rpc-websockets``,
    ``http``: its ``transport_type``), or the peer's class name."""
    kind = getattr(peer, "transport_type", None)
    if isinstance(kind, str):
        return kind
    for cls in type(peer).__mro__:
        kind = _TRANSPORTS.get(cls.__module__)
        if kind is not None:
            return kind
    return type(peer).__name__


class RelayWeb:
    """The HTTP side of one router: status data, chart history, health and metrics."""

    @classmethod
    def of(cls, router: RouterCore) -> RelayWeb:
        """The one RelayWeb of ``router`` (made on first use, kept on the router)."""
        web = getattr(router, "_relay_web", None)
        if web is None:
            web = cls(router)
            router._relay_web = web  # type: ignore[attr-defined]
        return web

    def __init__(self, router: RouterCore) -> None:
        self.router = router
        self.clock = router.clock
        #: set by the relay service when it starts to stop: /health answers 503 from then on
        self.shutting_down = False
        #: the URLs the relay serves WAMP at (set by the relay service)
        self.listener_urls: Callable[[], list[str]] = lambda: []
        #: the relay's node of a cluster as /health shows it (set by the relay service)
        self.cluster_status: Callable[[], dict[str, Any]] | None = None
        #: the other workers' figures, in a worker of ``--workers N``
        #: (:class:`~promisifier.relay.worker_status.WorkerFigures`, set by the worker)
        self.workers: Any = None
        self._samples: deque[dict[str, float]] = deque(maxlen=int(HISTORY_SECONDS / SAMPLE_INTERVAL) + 1)
        self._sampler: LoopingCall | None = None
        self._registry: Any = None
        #: wall clock minus router clock (they differ under a test clock)
        self._wall_offset = time.time() - self.clock.seconds()
        #: (clock time, router.traffic()) of the last reading, see _traffic()
        self._traffic_read: tuple[float, dict[str | None, Any]] | None = None

    # -- state ------------------------------------------------------------------------

    @property
    def serving(self) -> bool:
        """False once the relay or the router started to shut down."""
        return not self.shutting_down and not self.router.stopping

    @property
    def registry(self) -> Any:
        """The router's own Prometheus ``CollectorRegistry`` (not the global one)."""
        if self._registry is None:
            from promisifier.relay.metrics import router_registry

            self._registry = router_registry(self.router, self)
        return self._registry

    def wall(self, router_seconds: float | None) -> float | None:
        """A time on the router clock as seconds since the epoch."""
        return None if router_seconds is None else router_seconds + self._wall_offset

    # -- history of totals ------------------------------------------------------------------

    def start(self) -> None:
        """Sample the totals every :data:`SAMPLE_INTERVAL` seconds (for the charts)."""
        if self._sampler is None:
            self._sampler = LoopingCall(self.sample)
            self._sampler.clock = self.clock
            self._sampler.start(SAMPLE_INTERVAL, now=True)

    def stop(self) -> None:
        sampler, self._sampler = self._sampler, None
        if sampler is not None and sampler.running:
            sampler.stop()

    def sample(self) -> None:
        """Record the totals now (of every worker, in a worker of ``--workers N``)."""
        totals = self.totals(self._traffic(SAMPLE_INTERVAL))
        if self.workers is not None:
            totals = self.workers.merged_totals(totals)
        self._samples.append(
            {
                "t": self.clock.seconds(),
                "sessions": totals["sessions"],
                "messages_in": totals["messages_in"],
                "messages_out": totals["messages_out"],
                "bytes_in": totals["bytes_in"],
                "bytes_out": totals["bytes_out"],
                "calls": totals["calls_total"],
                "events": totals["events_delivered"],
            }
        )

    def history(self) -> list[dict[str, float]]:
        """Per-second rates between consecutive samples of the last minute (and the session
        count at each), oldest first."""
        if self._sampler is None:
            # Not started (a router embedded without the relay service): sample when asked.
            last = self._samples[-1]["t"] if self._samples else None
            if last is None or self.clock.seconds() - last >= SAMPLE_INTERVAL / 2:
                self.sample()
        points = []
        samples = list(self._samples)
        for before, after in zip(samples, samples[1:]):
            elapsed = after["t"] - before["t"]
            if elapsed <= 0:
                continue
            point: dict[str, float] = {"t": self.wall(after["t"]), "sessions": after["sessions"]}  # type: ignore[dict-item]
            for key in ("messages_in", "messages_out", "bytes_in", "bytes_out", "calls", "events"):
                point[key + "_rate"] = round(max(0, after[key] - before[key]) / elapsed, 3)
            points.append(point)
        return points

    # -- figures ------------------------------------------------------------------------

    def totals(self, traffic: dict[str | None, Any] | None = None) -> dict[str, Any]:
        """Relay-wide totals: state now, and counts since start (``traffic``: the
        router's :meth:`~promisifier.router.RouterCore.traffic`, if already at hand)."""
        router = self.router
        totals: dict[str, Any] = dict(router.state_counts())
        if traffic is None:
            traffic = self._traffic()
        for key in ("messages_in", "messages_out", "bytes_in", "bytes_out", "dropped_events"):
            totals[key] = sum(getattr(stats, key) for stats in traffic.values())
        calls = dict.fromkeys(CALL_OUTCOMES, 0)
        published = delivered = undeliverable = denied = 0
        for realm in router.realms.values():
            for outcome, count in realm.dealer.call_counts().items():
                calls[outcome] += count
            published += realm.broker.events_published
            delivered += realm.broker.events_delivered
            undeliverable += realm.broker.undeliverable_events
            denied += realm.denied_publications
        totals["calls"] = calls
        totals["calls_total"] = sum(calls.values())
        totals["events_published"] = published
        totals["events_delivered"] = delivered
        totals["undeliverable_events"] = undeliverable
        totals["denied_publications"] = denied
        totals["auth_failures"] = router.auth_failures
        totals["protocol_errors"] = router.protocol_errors + sum(stats.protocol_errors for stats in traffic.values())
        return totals

    def snapshot(self) -> dict[str, Any]:
        """Everything the status page shows (``/status.json``): in a worker of ``--workers
        N``, of every worker (:mod:`promisifier.relay.worker_status`)."""
        found = self.local_snapshot()
        if self.workers is not None:
            found = self.workers.merged(found)
        found["history"] = {"interval": SAMPLE_INTERVAL, "seconds": HISTORY_SECONDS, "points": self.history()}
        return found

    def _traffic(self, max_age: float = 0.0) -> dict[str | None, Any]:
        """``router.traffic()``, or its last reading if younger than ``max_age`` seconds:
        it visits every connection, and the chart's sample and a worker's figures both
        want it each second (what a client asks for is read afresh)."""
        now = self.clock.seconds()
        read = self._traffic_read
        if read is None or not 0 <= now - read[0] < max_age:
            read = self._traffic_read = (now, self.router.traffic())
        return read[1]

    def local_snapshot(self, max_rows: int = MAX_ROWS, traffic_max_age: float = 0.0) -> dict[str, Any]:
        """The figures of this process: :meth:`snapshot` without the charts' history, with at
        most ``max_rows`` session, registration and subscription rows per realm (traffic
        counters: see :meth:`_traffic`)."""
        router = self.router
        now = self.clock.seconds()
        traffic = self._traffic(traffic_max_age)
        return {
            "relay": {
                "agent": router.config.agent,
                "version": _version(),
                "now": self.wall(now),
                "started": self.wall(router.started_at),
                "uptime": round(now - router.started_at, 3),
                "serving": self.serving,
                "pid": os.getpid(),
                "listeners": list(self.listener_urls()),
                "cluster": self.cluster_status() if self.cluster_status is not None else None,
            },
            "totals": self.totals(traffic),
            "traffic": {
                (name or "in-process"): stats.as_dict() for name, stats in sorted(traffic.items(), key=_by_name)
            },
            "realms": [self._realm(realm, max_rows) for realm in router.realms.values()],
        }

    def _realm(self, realm: Any, max_rows: int) -> dict[str, Any]:
        dealer, broker = realm.dealer, realm.broker
        sessions = list(islice(realm.sessions.values(), max_rows))
        registrations = dealer.registrations()
        subscriptions = broker.subscriptions()
        latency = dealer.call_latency
        return {
            "name": realm.name,
            "counts": realm.state_counts(),
            "calls": dealer.call_counts(),
            "call_latency": {
                "count": latency.count,
                "sum": round(latency.sum, 6),
                "buckets": latency.cumulative()[:-1],
            },
            "events_published": broker.events_published,
            "events_delivered": broker.events_delivered,
            "sessions": [self._session(session, dealer) for session in sessions],
            "registrations": [_registration(r) for r in registrations[:max_rows]],
            "subscriptions": [_subscription(s) for s in subscriptions[:max_rows]],
        }

    def _session(self, session: Any, dealer: Any) -> dict[str, Any]:
        peer = session.connection
        stats = getattr(peer, "stats", None)
        traces = session.realm.meta.traces if session.realm is not None else {}
        return {
            "id": session.session_id,
            "authid": session.authid,
            "authrole": session.authrole,
            "authmethod": session.authmethod,
            "peer": peer.peer,
            "transport": transport_kind(peer),
            "serializer": peer.serializer_name,
            "connected_since": self.wall(session.joined_at),
            "messages_in": stats.messages_in if stats else 0,
            "messages_out": stats.messages_out if stats else 0,
            "bytes_in": stats.bytes_in if stats else 0,
            "bytes_out": stats.bytes_out if stats else 0,
            "dropped_events": stats.dropped_events if stats else 0,
            "pending_calls": dealer.pending_calls_of(session),
            "traced": session in traces,
        }

    def health(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of ``/health``."""
        router = self.router
        body = {
            "status": "serving" if self.serving else "shutting_down",
            "sessions": router.session_count,
            "uptime": round(self.clock.seconds() - router.started_at, 3),
        }
        if self.cluster_status is not None:
            # a node cut off from the others still serves its own sessions: 200 all the same
            body["cluster"] = self.cluster_status()
        if self.workers is not None:
            body["workers"] = self.workers.health()
        return (200 if self.serving else 503), body

    # -- resources ------------------------------------------------------------------------

    def resources(self, listener: Any) -> dict[str, IResource]:
        """The resources a listener (:class:`~promisifier.relay.relay_config.ListenerConfig`)
        serves beside its WebSocket, by path."""
        found: dict[str, IResource] = {}
        paths = listener.web_paths()
        links = [paths[name] for name in ("metrics", "health") if name in paths]
        for name, path in paths.items():
            if name == "status":
                found[path] = StatusPage(path + ".json", links)
            elif name == "status.json":
                found[path] = JsonResource(self.snapshot)
            elif name == "health":
                found[path] = HealthResource(self)
            elif name == "metrics":
                found[path] = MetricsResource(self)
        return found

    def home_page(self, listener: Any) -> IResource | None:
        """The small page at ``/`` that links the status page (None unless the listener
        serves the status page, and its WebSocket is not at ``/``)."""
        paths = listener.web_paths()
        if "status" not in paths or listener.path in ("", "/"):
            return None
        return HomePage(listener.path, paths)


def _version() -> str:
    try:
        from promisifier import __version__

        return __version__
    except Exception:  # noqa: BLE001 - a partial install
        return "unknown"


def _by_name(item: tuple[str | None, Any]) -> str:
    return item[0] or ""


def _registration(registration: Any) -> dict[str, Any]:
    return {
        "id": registration.id,
        "uri": registration.uri,
        "match": registration.match,
        "invoke": registration.invoke,
        "callees": [callee.session_id for callee in registration.callees],
        "calls": registration.calls,
        "errors": registration.errors,
    }


def _subscription(subscription: Any) -> dict[str, Any]:
    subscribers = [session.session_id for session in subscription.subscribers]
    return {
        "id": subscription.id,
        "uri": subscription.uri,
        "match": subscription.match,
        "subscribers": len(subscribers),
        "subscriber_ids": subscribers[:50],
        "delivered": subscription.delivered,
    }


def _no_store(request: Any, content_type: bytes) -> None:
    request.setHeader(b"content-type", content_type)
    request.setHeader(b"cache-control", b"no-store")
    request.setHeader(b"x-content-type-options", b"nosniff")


class JsonResource(Resource):
    """``GET`` answers with ``produce()`` as JSON."""

    isLeaf = True

    def __init__(self, produce: Callable[[], Any]) -> None:
        super().__init__()
        self._produce = produce

    def render_GET(self, request: Any) -> bytes:  # noqa: N802 - twisted.web API
        _no_store(request, b"application/json")
        return orjson.dumps(self._produce(), option=orjson.OPT_NON_STR_KEYS)


class HealthResource(Resource):
    """``/health``: 200 while serving, 503 while shutting down; a short JSON body."""

    isLeaf = True

    def __init__(self, web: RelayWeb) -> None:
        super().__init__()
        self._web = web

    def render_GET(self, request: Any) -> bytes:  # noqa: N802
        code, body = self._web.health()
        request.setResponseCode(code)
        _no_store(request, b"application/json")
        return orjson.dumps(body)


class MetricsResource(Resource):
    """``/metrics``: the router's registry in Prometheus text format."""

    isLeaf = True

    def __init__(self, web: RelayWeb) -> None:
        super().__init__()
        self._web = web

    def render_GET(self, request: Any) -> bytes:  # noqa: N802
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        _no_store(request, CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self._web.registry)


class StatusPage(Resource):
    """The status page (at its path and with a trailing slash) and its script and style
    sheet (children), from the package data."""

    def __init__(self, json_path: str, links: list[str] = ()) -> None:  # type: ignore[assignment]
        super().__init__()
        self._json_path = json_path
        self._links = list(links)
        self._html: bytes | None = None

    def getChild(self, path: bytes, request: Any) -> IResource:  # noqa: N802 - twisted.web API
        if path == b"":
            return self
        static = _STATIC.get(path)
        if static is not None:
            return _StaticFile(*static)
        return super().getChild(path, request)

    def render_GET(self, request: Any) -> bytes:  # noqa: N802
        if self._html is None:
            page = _package_file("index.html").decode("utf-8")
            base = self._json_path[: -len(".json")]
            page = page.replace("__STATUS_JSON__", html.escape(self._json_path, quote=True))
            page = page.replace("__STATUS_BASE__", html.escape(base, quote=True))
            links = "".join(
                f' &middot; <a href="{html.escape(link, quote=True)}">{html.escape(link)}</a>' for link in self._links
            )
            page = page.replace("__LINKS__", links)
            self._html = page.encode("utf-8")
        _no_store(request, b"text/html; charset=utf-8")
        return self._html


class HomePage(Resource):
    """``GET /``: what this port serves, with links (instead of a 404)."""

    isLeaf = True

    def __init__(self, websocket_path: str, paths: dict[str, str]) -> None:
        super().__init__()
        links = "".join(
            f'<li><a href="{html.escape(paths[name], quote=True)}">{html.escape(paths[name])}</a>: {what}</li>'
            for name, what in (
                ("status", "the relay's status page"),
                ("health", "health check (JSON)"),
                ("metrics", "metrics (Prometheus text format)"),
            )
            if name in paths
        )
        self._html = (
            '<!doctype html>\n<html><head><meta charset="utf-8"><title>promisifier relay</title></head><body>'
            f"<h1>promisifier relay {html.escape(_version())}</h1>"
            f"<p>WAMP v2 over WebSocket at <code>{html.escape(websocket_path)}</code> on this port.</p>"
            f"<ul>{links}</ul></body></html>\n"
        ).encode()

    def render_GET(self, request: Any) -> bytes:  # noqa: N802 - twisted.web API
        if request.path not in (b"", b"/"):
            request.setResponseCode(404)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"No such resource.\n"
        _no_store(request, b"text/html; charset=utf-8")
        return self._html


class _StaticFile(Resource):
    isLeaf = True

    def __init__(self, name: str, content_type: bytes) -> None:
        super().__init__()
        self._name = name
        self._content_type = content_type

    def render_GET(self, request: Any) -> bytes:  # noqa: N802
        request.setHeader(b"content-type", self._content_type)
        request.setHeader(b"cache-control", b"no-cache")
        return _package_file(self._name)
