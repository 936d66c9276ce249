"""Event history in one relay: bounded in-memory rings of published events, per history rule.

A realm's history rules (:class:`HistoryRule`, TOML ``[[realms.history]]``) name topics by URI
and match policy; an event published to a topic a rule covers (the first rule that covers it)
is kept in that rule's ring, at most ``limit`` events and ``max_age`` seconds, and all the
realm's rings together at most ``max_bytes`` (the oldest event of the realm goes first). Each
topic with history numbers its events (1, 2, ...): the ``offset`` of an event. The realm's
``epoch`` is new on every start: offsets of another epoch mean nothing here.

Two uses: ``wamp.subscription.get_events`` (the specification's event history, every filter
it lists) and gap-free resume (a subscriber gives the epoch and offset of the last event it
got and receives the ones it missed, see :meth:`History.since`).

Events published with session-id black/white lists (``exclude``, ``eligible``) are not kept,
as the specification's security section says; authid/authrole lists are kept and applied to
who asks.
"""

from __future__ import annotations

import base64
import os
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgpack

from promisifier.router.matching import covers, iso_8601
from promisifier.wire.policies import MATCH_POLICIES

#: bytes all the history rings of a realm may hold together, by default
DEFAULT_MAX_HISTORY_BYTES = 64 * 1024 * 1024
#: what one stored event costs besides its payload (objects, details), roughly
_EVENT_OVERHEAD = 400


@dataclass(frozen=True)
class HistoryRule:
    """Keep the events published to the topics ``uri`` covers with ``match``: the last
    ``limit`` events, none older than ``max_age`` seconds (0: no age limit)."""

    uri: str
    match: str = "exact"
    limit: int = 1000
    max_age: float = 0.0

    def __post_init__(self) -> None:
        if self.match not in MATCH_POLICIES:
            raise ValueError(f"HistoryRule.match: one of {MATCH_POLICIES} is needed, got {self.match!r}")
        if type(self.limit) is not int or self.limit < 1:
            raise ValueError(f"HistoryRule.limit: a positive int is needed, got {self.limit!r}")
        if self.max_age < 0:
            raise ValueError(f"HistoryRule.max_age: 0 (none) or more seconds are needed, got {self.max_age!r}")


class StoredEvent:
    """One event of the history, as published (before per-subscription details)."""

    __slots__ = ("time", "topic", "offset", "publication", "details", "payload", "filter", "size", "held")

    def __init__(
        self,
        time: float,
        topic: str,
        offset: int,
        publication: int,
        details: dict[str, Any],
        payload: list[Any],
        event_filter: Any,
    ) -> None:
        self.time = time
        self.topic = topic
        self.offset = offset
        self.publication = publication
        self.details = details
        self.payload = payload
        #: the publication's authid/authrole black/white lists (an object with admits(session))
        self.filter = event_filter
        self.size = _EVENT_OVERHEAD + _payload_size(payload)
        #: still in its ring (False once dropped)
        self.held = True


def _payload_size(payload: list[Any]) -> int:
    try:
        return len(msgpack.packb(payload, use_bin_type=True))
    except Exception:  # noqa: BLE001 - a value msgpack cannot pack (a big integer): estimate
        return len(repr(payload))


class _Ring:
    __slots__ = ("rule", "events")

    def __init__(self, rule: HistoryRule) -> None:
        self.rule = rule
        self.events: deque[StoredEvent] = deque()


class HistoryError(ValueError):
    """A bad ``wamp.subscription.get_events`` argument; the text names it."""


class History:
    """The event history of one realm."""

    def __init__(
        self, rules: Iterable[HistoryRule], seconds: Callable[[], float], max_bytes: int = DEFAULT_MAX_HISTORY_BYTES
    ) -> None:
        self._rings = [_Ring(rule) for rule in rules]
        self._seconds = seconds
        self.max_bytes = max_bytes
        #: bytes held by every ring together (estimated: payload in msgpack plus a fixed overhead)
        self.bytes = 0
        #: new on every start of the realm: offsets of another epoch cannot be resumed
        self.epoch = base64.urlsafe_b64encode(os.urandom(9)).decode("ascii")
        #: topic -> offset of its last event
        self._offsets: dict[str, int] = {}
        #: every stored event in publication order, to drop the realm's oldest first
        self._order: deque[tuple[_Ring, StoredEvent]] = deque()

    def __len__(self) -> int:
        return self.held_count

    def ring_for(self, topic: str) -> _Ring | None:
        """The ring keeping ``topic``'s events (the first rule covering it), or None."""
        for ring in self._rings:
            rule = ring.rule
            if covers(rule.uri, rule.match, topic):
                return ring
        return None

    def record(
        self, ring: _Ring, topic: str, publication: int, details: dict[str, Any], payload: list[Any], event_filter: Any
    ) -> int:
        """Keep an event of ``topic`` in ``ring``; returns its offset."""
        offset = self._offsets.get(topic, 0) + 1
        self._offsets[topic] = offset
        event = StoredEvent(self._seconds(), topic, offset, publication, details, payload, event_filter)
        ring.events.append(event)
        self._order.append((ring, event))
        self.bytes += event.size
        if len(ring.events) > ring.rule.limit:
            self._drop_oldest(ring)
        order = self._order
        while self.bytes > self.max_bytes and order:
            oldest_ring, oldest = order.popleft()
            if oldest.held:
                self._drop_oldest(oldest_ring)
        if len(order) > 2 * (self.held_count + 32):
            # entries of events their ring dropped (its limit, its age): compact
            self._order = deque(entry for entry in order if entry[1].held)
        return offset

    @property
    def held_count(self) -> int:
        return sum(len(ring.events) for ring in self._rings)

    def next_offset(self, topic: str) -> int:
        """The offset the next event of ``topic`` will get."""
        return self._offsets.get(topic, 0) + 1

    def _drop_oldest(self, ring: _Ring) -> None:
        event = ring.events.popleft()
        event.held = False
        self.bytes -= event.size

    def _expire(self, ring: _Ring) -> None:
        max_age = ring.rule.max_age
        if max_age:
            limit = self._seconds() - max_age
            while ring.events and ring.events[0].time < limit:
                self._drop_oldest(ring)

    def events_of(self, topics_covered: Callable[[str], bool]) -> list[StoredEvent]:
        """Every stored event whose topic ``topics_covered`` accepts, oldest first."""
        found: list[StoredEvent] = []
        for ring in self._rings:
            self._expire(ring)
            found.extend(event for event in ring.events if topics_covered(event.topic))
        if len(self._rings) > 1:
            found.sort(key=lambda event: event.time)
        return found

    def since(self, topic: str, epoch: str, offset: int) -> list[StoredEvent] | None:
        """The events of ``topic`` after ``offset`` of ``epoch``, oldest first; None when
        they cannot all be given (another epoch, or the history no longer holds the event
        right after ``offset``)."""
        if epoch != self.epoch or offset < 0 or offset > self._offsets.get(topic, 0):
            return None
        ring = self.ring_for(topic)
        if ring is None:
            return None
        self._expire(ring)
        missed = [event for event in ring.events if event.topic == topic and event.offset > offset]
        expected = self._offsets.get(topic, 0) - offset
        if len(missed) != expected:
            return None
        return missed


# -- wamp.subscription.get_events ------------------------------------------------------------

_TIME_FILTERS = ("from_time", "after_time", "before_time", "until_time")
_PUBLICATION_FILTERS = ("from_publication", "after_publication", "before_publication", "until_publication")
GET_EVENTS_OPTIONS = ("reverse", "limit", "topic", *_TIME_FILTERS, *_PUBLICATION_FILTERS)


def _rfc3339(value: Any, name: str) -> float:
    if type(value) is not str:
        raise HistoryError(f"{name} must be an RFC 3339 timestamp string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise HistoryError(f"{name} must be an RFC 3339 timestamp string, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def select(events: list[StoredEvent], options: dict[str, Any]) -> list[StoredEvent]:
    """The events the ``get_events`` options keep (all conditions together), in the order asked."""
    unknown = set(options) - set(GET_EVENTS_OPTIONS)
    if unknown:
        raise HistoryError(f"unknown option(s) {sorted(unknown)}; known: {', '.join(GET_EVENTS_OPTIONS)}")
    reverse = options.get("reverse", False)
    if type(reverse) is not bool:
        raise HistoryError("reverse must be a bool")
    limit = options.get("limit")
    if limit is not None and (type(limit) is not int or limit < 1):
        raise HistoryError("limit must be a positive integer")
    topic = options.get("topic")
    if topic is not None:
        if type(topic) is not str:
            raise HistoryError("topic must be a URI string")
        events = [event for event in events if event.topic == topic]
    bounds = {name: _rfc3339(options[name], name) for name in _TIME_FILTERS if name in options}
    if "from_time" in bounds:
        events = [e for e in events if e.time >= bounds["from_time"]]
    if "after_time" in bounds:
        events = [e for e in events if e.time > bounds["after_time"]]
    if "before_time" in bounds:
        events = [e for e in events if e.time < bounds["before_time"]]
    if "until_time" in bounds:
        events = [e for e in events if e.time <= bounds["until_time"]]
    for name in _PUBLICATION_FILTERS:
        if name not in options:
            continue
        publication = options[name]
        if type(publication) is not int or publication < 1:
            raise HistoryError(f"{name} must be a positive integer (a publication id)")
        position = next((i for i, e in enumerate(events) if e.publication == publication), None)
        if position is None:
            events = []  # the publication is not (or no longer) in the history
        elif name == "from_publication":
            events = events[position:]
        elif name == "after_publication":
            events = events[position + 1 :]
        elif name == "before_publication":
            events = events[:position]
        else:
            events = events[: position + 1]
    if reverse:
        events = events[::-1]
    if limit is not None:
        events = events[:limit]
    return events


def as_record(event: StoredEvent, subscription_id: int, details: dict[str, Any]) -> dict[str, Any]:
    """An event of a ``get_events`` result (the specification's Event object)."""
    record: dict[str, Any] = {
        "timestamp": iso_8601(event.time),
        "subscription": subscription_id,
        "publication": event.publication,
        "details": details,
    }
    payload = event.payload
    if payload:
        record["args"] = payload[0]
        if len(payload) > 1:
            record["kwargs"] = payload[1]
    return record
