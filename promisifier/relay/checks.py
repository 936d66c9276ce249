"""Checking values read from a TOML file, with errors that name the key path.

:class:`Checker` collects every error (``listeners[0].auth.ticket.principals.alice.role:
expected a string, got 5 (an integer)``) instead of stopping at the first, and each getter
returns a usable stand-in after an error, so checking goes on through the whole file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from promisifier.dotted import resolve_dotted

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

_KINDS = [
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (list, "an array"),
    (dict, "a table"),
]

MISSING: Any = object()


def kind_of(value: object) -> str:
    for python_type, name in _KINDS:
        if isinstance(value, python_type):
            return name
    return f"a {type(value).__name__}"


def describe(value: object, limit: int = 60) -> str:
    """``'abc' (a string)``: a value shortened for an error message, and its TOML kind."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{text} ({kind_of(value)})"


def key_path(path: str, key: str | int) -> str:
    """``listeners[0]`` + ``auth`` -> ``listeners[0].auth``; ``realms`` + 0 -> ``realms[0]``;
    keys that are not bare TOML keys are quoted (``principals."alice.smith"``)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    part = key if _BARE_KEY.match(key) else '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{path}.{part}" if path else part


class Checker:
    """Collects errors; the typed getters read ``table[key]`` at ``path``."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, problem: str) -> None:
        self.errors.append(f"{path}: {problem}")

    def expected(self, path: str, what: str, value: object) -> None:
        self.error(path, f"expected {what}, got {describe(value)}")

    # -- tables -------------------------------------------------------------------

    def table(self, value: object, path: str, known: Iterable[str]) -> dict:
        """``value`` if it is a table whose keys are all in ``known``; unknown keys are
        errors (and left out). Anything else: an error, and an empty table."""
        known = list(known)
        if not isinstance(value, dict):
            self.expected(path, "a table", value)
            return {}
        result = {}
        for key, item in value.items():
            if key in known:
                result[key] = item
            else:
                self.error(
                    key_path(path, key),
                    f"unknown key (value {describe(item)}); expected one of: {', '.join(known)}",
                )
        return result

    def tables(self, table: dict, key: str, path: str) -> list[tuple[str, dict]]:
        """An array of tables (``[[key]]``), as (path, table) pairs."""
        value = table.get(key, [])
        here = key_path(path, key)
        if not isinstance(value, list):
            self.expected(here, "an array of tables", value)
            return []
        found = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                found.append((key_path(here, index), item))
            else:
                self.expected(key_path(here, index), "a table", item)
        return found

    # -- scalars ------------------------------------------------------------------

    @staticmethod
    def _get(table: dict, key: str, path: str) -> tuple[str, Any]:
        return key_path(path, key), table.get(key, MISSING)

    def string(
        self,
        table: dict,
        key: str,
        path: str,
        default: Any = MISSING,
        *,
        choices: Iterable[str] | None = None,
        empty: bool = False,
        what: str | None = None,
    ) -> Any:
        """A string (non-empty unless ``empty``; one of ``choices`` if given)."""
        here, value = self._get(table, key, path)
        choices = tuple(choices) if choices is not None else None
        if what is None:
            if choices is not None:
                what = "one of " + ", ".join(repr(choice) for choice in choices)
            else:
                what = "a string" if empty else "a non-empty string"
        if value is MISSING:
            if default is MISSING:
                self.error(here, f"missing; expected {what}")
                return ""
            return default
        if not isinstance(value, str) or (not empty and not value) or (choices is not None and value not in choices):
            self.expected(here, what, value)
            return default if default is not MISSING else ""
        return value

    def boolean(self, table: dict, key: str, path: str, default: bool) -> bool:
        here, value = self._get(table, key, path)
        if value is MISSING:
            return default
        if not isinstance(value, bool):
            self.expected(here, "true or false", value)
            return default
        return value

    def integer(self, table: dict, key: str, path: str, default: Any, *, minimum: int = 0) -> Any:
        here, value = self._get(table, key, path)
        if value is MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.expected(here, f"an integer >= {minimum}", value)
            return default
        return value

    def seconds(self, table: dict, key: str, path: str, default: float, zero: bool = False) -> float:
        """A positive number (integer or float); also 0 with ``zero``."""
        here, value = self._get(table, key, path)
        if value is MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value >= 0 if zero else value > 0):
            self.expected(here, f"a number of seconds {'>=' if zero else '>'} 0", value)
            return default
        return float(value)

    def strings(
        self,
        table: dict,
        key: str,
        path: str,
        default: tuple[str, ...],
        *,
        choices: Iterable[str] | None = None,
        nonempty: bool = True,
    ) -> tuple[str, ...]:
        """An array of distinct strings (each one of ``choices`` if given)."""
        here, value = self._get(table, key, path)
        if value is MISSING:
            return default
        choices = tuple(choices) if choices is not None else None
        listed = ", ".join(repr(choice) for choice in choices) if choices else ""
        if not isinstance(value, list) or (nonempty and not value):
            what = ("a non-empty array of strings" if nonempty else "an array of strings") + (
                f" from {listed}" if listed else ""
            )
            self.expected(here, what, value)
            return default
        result: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item or (choices is not None and item not in choices):
                self.expected(key_path(here, index), f"one of {listed}" if listed else "a non-empty string", item)
            elif item in result:
                self.error(key_path(here, index), f"{item!r} is listed twice")
            else:
                result.append(item)
        return tuple(result) if len(result) == len(value) else default

    def dotted(self, table: dict, key: str, path: str, *, callable_: bool, default: Any = None) -> Any:
        """A dotted path (``package.module`` or ``package.module.name``) that imports;
        with ``callable_``, it must name a callable. The path itself is returned."""
        here = key_path(path, key)
        what = (
            "a dotted path to a callable (package.module.function)"
            if callable_
            else "a dotted path to a module or object"
        )
        value = self.string(table, key, path, default, what=what)
        if not value or value is default:
            return value
        try:
            target = resolve_dotted(value)
        except Exception as error:  # noqa: BLE001 - anything an import can raise
            self.error(here, f"{value!r} cannot be imported: {type(error).__name__}: {error}")
            return default
        if callable_ and not callable(target):
            self.expected(here, what, value)
            return default
        return value
