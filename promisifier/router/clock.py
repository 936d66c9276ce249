"""The clock the router's timeouts run on, as the router uses it.

Twisted's reactor and :class:`twisted.internet.task.Clock` (in tests) both fit; these
protocols say so to the type checker, which cannot read Twisted's zope interfaces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class DelayedCall(Protocol):
    """A call scheduled with :meth:`Clock.callLater`."""

    def active(self) -> bool: ...

    def cancel(self) -> None: ...

    def getTime(self) -> float: ...  # noqa: N802 - Twisted's name

    def reset(self, seconds_from_now: float) -> None: ...


class Clock(Protocol):
    """Seconds, and calls later."""

    def seconds(self) -> float: ...

    def callLater(self, delay: float, callable: Callable[..., Any], *args: Any, **kwargs: Any) -> DelayedCall: ...  # noqa: N802


__all__ = ["Clock", "DelayedCall"]
