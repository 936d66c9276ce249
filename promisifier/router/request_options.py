"""Reading the Options of REGISTER, CALL, PUBLISH, SUBSCRIBE and CANCEL with type checks.

A bad option is the client's mistake, not a protocol violation: it gets ERROR
``wamp.error.invalid_argument`` with a message naming the option, and the session goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from promisifier.wire.ids import MAX_ID


class OptionError(ValueError):
    """An option of a request has the wrong type or value; the text names the option."""


def flag(options: dict[str, Any], key: str, default: bool = False) -> bool:
    """A boolean option."""
    value = options.get(key, default)
    if type(value) is not bool:
        raise OptionError(f"option {key!r} must be a bool, got {type(value).__name__}")
    return value


def choice(options: dict[str, Any], key: str, choices: Sequence[str], default: str) -> str:
    """A string option restricted to ``choices``."""
    value = options.get(key, default)
    if value not in choices or type(value) is not str:
        raise OptionError(f"option {key!r} must be one of {', '.join(choices)}; got {value!r}")
    return value


def milliseconds(options: dict[str, Any], key: str) -> float:
    """A non-negative duration in milliseconds (0 when absent)."""
    value = options.get(key, 0)
    if type(value) not in (int, float) or value < 0 or value != value:
        raise OptionError(f"option {key!r} must be a non-negative number of milliseconds, got {value!r}")
    return float(value)


def id_list(options: dict[str, Any], key: str) -> frozenset[int] | None:
    """A list of session IDs, or None when absent."""
    value = options.get(key)
    if value is None:
        return None
    if type(value) is not list or not all(type(v) is int and 0 <= v <= MAX_ID for v in value):
        raise OptionError(f"option {key!r} must be a list of session IDs")
    return frozenset(value)


def str_list(options: dict[str, Any], key: str) -> frozenset[str] | None:
    """A list of strings (authids, authroles), or None when absent."""
    value = options.get(key)
    if value is None:
        return None
    if type(value) is not list or not all(type(v) is str for v in value):
        raise OptionError(f"option {key!r} must be a list of strings")
    return frozenset(value)


def any_of(options: dict[str, Any], keys: Sequence[str]) -> bool:
    """True when at least one of ``keys`` is present (fast check before detailed parsing)."""
    return any(key in options for key in keys)


def maybe(options: dict[str, Any], key: str) -> Any:
    """The raw value of an option or None."""
    return options.get(key)
