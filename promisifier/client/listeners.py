"""Event listeners (``on``/``off``/emit) for the client's objects and the façades.

One :class:`Listeners` per object: listeners by event name, called in the order they
were added; an exception raised by one goes to the object's error hook and the others
still run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.python.failure import Failure


class Listeners:
    """Listeners by event name.

    ``events``: the known event names (adding a listener for another is ``ValueError``
    naming ``kind``); None: any name. ``on_error(failure, what)`` gets the exception of
    a listener, ``what`` being ``describe(event)``.
    """

    __slots__ = ("_by_event", "_known", "_on_error", "_describe", "_kind")

    def __init__(
        self,
        events: Iterable[str] | None,
        on_error: Callable[[Failure, str], Any],
        describe: Callable[[str], str],
        kind: str = "",
    ) -> None:
        self._known = tuple(events) if events is not None else None
        self._by_event: dict[str, list[Callable[..., Any]]] = {name: [] for name in self._known or ()}
        self._on_error = on_error
        self._describe = describe
        self._kind = kind

    def add(self, event: str, fn: Callable[..., Any]) -> None:
        """Call ``fn(*args)`` on each :meth:`emit` of ``event``."""
        if self._known is not None and event not in self._known:
            raise ValueError(f"unknown {self._kind}event {event!r}; known: {', '.join(self._known)}")
        self._by_event.setdefault(event, []).append(fn)

    def remove(self, event: str, fn: Callable[..., Any] | None = None) -> None:
        """Stop calling ``fn`` on ``event`` (None: every listener of ``event``)."""
        listeners = self._by_event.get(event)
        if not listeners:
            return
        if fn is None:
            listeners.clear()
        elif fn in listeners:
            listeners.remove(fn)

    def has(self, event: str) -> bool:
        """True when ``event`` has a listener."""
        return bool(self._by_event.get(event))

    def emit(self, event: str, *args: Any) -> None:
        """Call every listener of ``event`` with ``args``."""
        for fn in list(self._by_event.get(event, ())):
            try:
                fn(*args)
            except Exception:
                self._on_error(Failure(), self._describe(event))


__all__ = ["Listeners"]
