"""Prometheus metrics of a router, through ``prometheus-client``.

Each router gets a ``CollectorRegistry`` of its own (:func:`router_registry`; never the
global one, so several routers in one process, as in the tests, do not clash) with one
custom collector, :class:`RouterCollector`, that reads the router's state and its plain
integer counters when ``/metrics`` is scraped: nothing is done per message for the
metrics beyond the ``+= 1`` the router does anyway. The process collector (memory, CPU,
open files) is in the registry too.

Exported (counters end in ``_total``):

==========================================  ============================  =========================================
name                                        labels                        what
==========================================  ============================  =========================================
promisifier_serving                                                       1 while serving, 0 while shutting down
promisifier_start_time_seconds                                            when the router started (Unix time)
promisifier_connections                                                   open connections (joined or not)
promisifier_sessions                        realm                         joined sessions
promisifier_registrations                   realm                         registrations
promisifier_subscriptions                   realm                         subscriptions
promisifier_pending_calls                   realm                         calls in flight
promisifier_messages_total                  direction, serializer         WAMP messages in and out
promisifier_bytes_total                     direction, serializer         message payload bytes in and out
promisifier_calls_total                     realm, outcome                calls by outcome (result, error, timeout,
                                                                          canceled, callee_gone, caller_gone,
                                                                          rejected)
promisifier_call_duration_seconds           realm                         histogram: CALL to final RESULT or ERROR
promisifier_events_published_total          realm                         publications routed (meta events too)
promisifier_events_delivered_total          realm                         EVENTs handed to subscribers' connections
promisifier_dropped_events_total            serializer                    EVENTs dropped for slow consumers
promisifier_undeliverable_events_total      realm                         EVENTs that could not be encoded
promisifier_denied_publications_total       realm                         unacknowledged PUBLISHes not authorized
promisifier_auth_failures_total                                           sessions refused at authentication
promisifier_protocol_errors_total           layer                         ``wamp``: sessions aborted for a protocol
                                                                          violation; ``transport``: connections
                                                                          closed for frames that did not decode
==========================================  ============================  =========================================

``direction`` is ``in`` or ``out``; ``serializer`` is ``json``, ``msgpack``,
``in-process`` (an embedded client) or a bridge's (``rpc-websockets``: its frames;
``http``: request and response bodies).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from promisifier.router import RouterCore

PREFIX = "promisifier_"


class ServingState(Protocol):
    """What the collector reads of the relay beyond its router (the relay's
    :class:`~promisifier.relay.web.RelayWeb`)."""

    @property
    def serving(self) -> bool:
        """False once the relay or the router started to shut down."""
        ...

    def wall(self, router_seconds: float | None) -> float | None:
        """A time on the router clock as seconds since the epoch."""
        ...


def router_registry(router: RouterCore, web: ServingState | None = None) -> CollectorRegistry:
    """A new registry holding the router's collector and the process collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RouterCollector(router, web))  # type: ignore[arg-type]
    ProcessCollector(registry=registry)
    return registry


class RouterCollector:
    """Reads a router's figures at scrape time."""

    def __init__(self, router: RouterCore, web: ServingState | None = None) -> None:
        self.router = router
        self.web = web

    def collect(self) -> Iterator[Metric]:
        router = self.router
        realms = list(router.realms.values())
        serving = self.web.serving if self.web is not None else not router.stopping

        yield _gauge("serving", "1 while the relay serves, 0 while it shuts down", value=1 if serving else 0)
        started = self.web.wall(router.started_at) if self.web is not None else router.started_at
        yield _gauge("start_time_seconds", "When the router started, in seconds since the epoch", value=started)
        yield _gauge("connections", "Open connections, joined to a realm or not", value=len(router.connections))

        state = {realm.name: realm.state_counts() for realm in realms}
        for key, help_text in (
            ("sessions", "Joined sessions"),
            ("registrations", "Registrations (procedures with at least one callee)"),
            ("subscriptions", "Subscriptions (topics with at least one subscriber)"),
            ("pending_calls", "Calls in flight"),
        ):
            family = _gauge(key, help_text, labels=["realm"])
            for name, counts in state.items():
                family.add_metric([name], counts[key])
            yield family

        traffic = router.traffic()
        messages = _counter("messages", "WAMP messages received (in) and sent (out)", ["direction", "serializer"])
        payload = _counter("bytes", "Bytes of WAMP message payloads received and sent", ["direction", "serializer"])
        dropped = _counter(
            "dropped_events", "Events dropped because the subscriber was a slow consumer", ["serializer"]
        )
        transport_errors = 0
        for serializer, stats in sorted(traffic.items(), key=lambda item: item[0] or ""):
            label = serializer or "in-process"
            messages.add_metric(["in", label], stats.messages_in)
            messages.add_metric(["out", label], stats.messages_out)
            payload.add_metric(["in", label], stats.bytes_in)
            payload.add_metric(["out", label], stats.bytes_out)
            dropped.add_metric([label], stats.dropped_events)
            transport_errors += stats.protocol_errors
        yield messages
        yield payload
        yield dropped

        calls = _counter("calls", "Calls by outcome", ["realm", "outcome"])
        latency = HistogramMetricFamily(
            PREFIX + "call_duration_seconds",
            "Seconds from CALL to the final RESULT or ERROR (router clock)",
            labels=["realm"],
        )
        published = _counter("events_published", "Publications routed (meta events included)", ["realm"])
        delivered = _counter("events_delivered", "EVENTs handed to subscribers' connections", ["realm"])
        undeliverable = _counter("undeliverable_events", "EVENTs that could not be encoded for a subscriber", ["realm"])
        denied = _counter("denied_publications", "PUBLISHes without acknowledge dropped as not authorized", ["realm"])
        for realm in realms:
            dealer, broker = realm.dealer, realm.broker
            for outcome, count in dealer.call_counts().items():
                calls.add_metric([realm.name, outcome], count)
            histogram = dealer.call_latency
            buckets = [(floatToGoString(bound), count) for bound, count in histogram.cumulative()]
            latency.add_metric([realm.name], buckets, histogram.sum)
            published.add_metric([realm.name], broker.events_published)
            delivered.add_metric([realm.name], broker.events_delivered)
            undeliverable.add_metric([realm.name], broker.undeliverable_events)
            denied.add_metric([realm.name], realm.denied_publications)
        yield calls
        yield latency
        yield published
        yield delivered
        yield undeliverable
        yield denied

        yield _counter("auth_failures", "Sessions refused at authentication", value=router.auth_failures)
        errors = _counter(
            "protocol_errors",
            "Protocol errors: sessions aborted (wamp), frames that did not decode (transport)",
            ["layer"],
        )
        errors.add_metric(["wamp"], router.protocol_errors)
        errors.add_metric(["transport"], transport_errors)
        yield errors
        web = self.web
        cluster = web.cluster_status() if web is not None and web.cluster_status is not None else None
        if cluster is not None:
            yield _gauge(
                "cluster_link_up", "1 while the link to the cluster's Redis is up", value=int(cluster["link"] == "up")
            )
            yield _gauge("cluster_nodes", "Other live nodes of the cluster", value=len(cluster["nodes"]))
            yield _counter(
                "cluster_dropped_publications",
                "Publications of this node's sessions that reached no other node (link down)",
                value=cluster["dropped_publications"],
            )


def _gauge(name: str, help_text: str, labels: list[str] | None = None, value: Any = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, help_text, value=value, labels=labels)


def _counter(name: str, help_text: str, labels: list[str] | None = None, value: Any = None) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, help_text, value=value, labels=labels)
