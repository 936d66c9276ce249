"""The load generator's sequence check (benchmarks/loadgen.py): what it counts as missing
and as out of order."""

from __future__ import annotations

from types import SimpleNamespace

from benchmarks.loadgen import EVENT, Subscriber


def _subscriber() -> Subscriber:
    worker = SimpleNamespace(args=SimpleNamespace(serializer="msgpack", sequence=True))
    return Subscriber(worker)  # type: ignore[arg-type]


def _event(number: object) -> list:
    return [EVENT, 1, 2, {}, [number, "x"]]


def test_numbers_in_order_are_neither_missing_nor_out_of_order():
    subscriber = _subscriber()
    for number in (1, 2, 3):
        subscriber._check(_event(number))
    assert (subscriber.last, subscriber.missing, subscriber.out_of_order) == (3, 0, 0)


def test_a_skipped_number_is_missing_and_a_late_or_repeated_one_out_of_order():
    subscriber = _subscriber()
    for number in (1, 2, 5, 3, 5, 6):
        subscriber._check(_event(number))
    assert (subscriber.last, subscriber.missing, subscriber.out_of_order) == (6, 2, 2)


def test_an_event_without_a_number_is_out_of_order():
    subscriber = _subscriber()
    subscriber._check(_event("one"))
    subscriber._check([EVENT, 1, 2, {}])
    assert (subscriber.last, subscriber.out_of_order) == (0, 2)
