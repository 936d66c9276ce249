"""WAMP identifiers: global random IDs and per-session sequential request IDs."""

from __future__ import annotations

import random

#: IDs are integers in [1, 2**53] so that they survive a round trip through IEEE doubles.
MAX_ID = 2**53

_random = random.SystemRandom()
# Publication ids are drawn once per PUBLISH: the OS's random source costs a system call
# each time, and these ids only need to be unpredictable enough not to collide, not to be
# secrets. A Mersenne Twister seeded from the OS serves them.
_fast = random.Random(_random.getrandbits(128))


def random_id() -> int:
    """A random ID in [1, 2**53] from the OS's random source (sessions, registrations)."""
    return _random.randint(1, MAX_ID)


def fast_random_id() -> int:
    """A random ID in [1, 2**53] without a system call (publications: one per PUBLISH)."""
    return _fast.getrandbits(53) + 1


def is_id(value: object) -> bool:
    """True for an int in [0, 2**53]; ``bool`` is not an ID.

    0 is accepted on receipt because some peers send it where no ID applies
    (e.g. an ERROR for a request that could not be parsed).
    """
    return type(value) is int and 0 <= value <= MAX_ID  # noqa: E721 - bool must not pass


class IdSequence:
    """Sequential IDs 1, 2, 3, ... wrapping back to 1 after 2**53 (session scope)."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        """The next ID of the sequence."""
        last = self._last + 1
        if last > MAX_ID:
            last = 1
        self._last = last
        return last
