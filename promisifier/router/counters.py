"""Cheap counters the router keeps for its status page and metrics.

The routing code only adds to plain ``int`` attributes (and, once per finished call, to a
:class:`LatencyHistogram`); whoever wants the figures (``/status.json``, ``/metrics``)
reads them when asked. Nothing here locks, allocates or formats on the message path.
"""

from __future__ import annotations

from bisect import bisect_left

#: upper bounds (seconds) of the call latency buckets: 0.5 ms to 10 s
CALL_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: outcomes of a call, as counted by the dealer (``Dealer.calls``)
CALL_OUTCOMES = (
    "result",  # the callee's final RESULT reached the caller
    "error",  # the callee answered with ERROR
    "timeout",  # the call's timeout ran out
    "canceled",  # the caller cancelled it
    "callee_gone",  # the callee left before answering
    "caller_gone",  # the caller left before the answer
    "rejected",  # never routed: no such procedure, not authorized, a limit, bad options
)


class LatencyHistogram:
    """Counts of observed durations per bucket (Prometheus style: each bucket's own count;
    :meth:`cumulative` adds them up), plus their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = CALL_LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        #: counts[i]: observations <= bounds[i] (and > bounds[i-1]); the last one: above all
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations <= it) for every bucket, ending with +Inf."""
        found = []
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts):
            total += count
            found.append((bound, total))
        return found
