"""The bridge keys of a listener in the relay's TOML file: ``[[listeners.rpc_websockets]]``.

Checked like the rest of the file (:mod:`promisifier.relay.config`): every problem names
its key path.
"""

from __future__ import annotations

from promisifier.bridge.mount import DEFAULT_REALM, RpcWebSocketsConfig
from promisifier.relay.checks import Checker, key_path

#: listener keys handled here
BRIDGE_KEYS = ("rpc_websockets",)


def url_path(check: Checker, table: dict, key: str, path: str) -> str:
    """A URL path starting with '/' (no whitespace, '?' or '#')."""
    what = "a URL path starting with '/'"
    value = check.string(table, key, path, what=what)
    if isinstance(table.get(key), str) and (not value.startswith("/") or any(c.isspace() or c in "?#" for c in value)):
        check.expected(key_path(path, key), what, value)
    return value


def rpc_websockets(check: Checker, listener: dict, path: str) -> tuple[RpcWebSocketsConfig, ...]:
    """The ``[[listeners.rpc_websockets]]`` tables of one listener."""
    found = []
    for here, value in check.tables(listener, "rpc_websockets", path):
        table = check.table(value, here, ("path", "realm", "uri_prefix", "call_timeout", "events"))
        events = check.strings(table, "events", here, None, nonempty=False)  # type: ignore[arg-type]
        found.append(
            RpcWebSocketsConfig(
                path=url_path(check, table, "path", here),
                realm=check.string(table, "realm", here, DEFAULT_REALM),
                uri_prefix=check.string(table, "uri_prefix", here, "", empty=True),
                call_timeout=check.integer(table, "call_timeout", here, 0),
                events=events,
            )
        )
    return tuple(found)


def _segments(path: str) -> tuple[str, ...]:
    return tuple(segment for segment in path.split("/") if segment)


def check_paths(check: Checker, path: str, wamp_path: str, bridges: dict[str, str]) -> None:
    """Each bridge path (key path -> URL path) keeps clear of the WAMP WebSocket's and of
    the other bridges' (none may be the same as, or lie under, another)."""
    taken = [(f"{path}.path", wamp_path)]
    for where, url in bridges.items():
        mine = _segments(url)
        for other_where, other in taken:
            theirs = _segments(other)
            shorter = min(len(mine), len(theirs))
            if mine[:shorter] == theirs[:shorter]:
                check.error(where, f"{url!r} overlaps {other!r} ({other_where})")
                break
        taken.append((where, url))
