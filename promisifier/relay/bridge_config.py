"""The bridge keys of a listener in the relay's TOML file: ``[[listeners.rpc_websockets]]``,
``[listeners.http]`` and ``[[listeners.static]]``.

Checked like the rest of the file (:mod:`promisifier.relay.relay_config`): every problem names
its key path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from promisifier.bridge.http import DEFAULT_TIMESTAMP_DELTA_LIMIT, HttpBridgeConfig, HttpKey
from promisifier.bridge.mount import DEFAULT_REALM, RpcWebSocketsConfig
from promisifier.relay.checks import Checker, key_path

#: listener keys handled here
BRIDGE_KEYS = ("rpc_websockets", "http", "static")


@dataclass(frozen=True)
class StaticConfig:
    """A directory served at a URL path (TOML ``[[listeners.static]]``)."""

    path: str
    #: absolute (relative names in the file are relative to the file's folder)
    directory: str


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


def http_bridge(check: Checker, listener: dict, path: str) -> HttpBridgeConfig | None:
    """The ``[listeners.http]`` table of one listener, if any."""
    if "http" not in listener:
        return None
    here = key_path(path, "http")
    table = check.table(listener["http"], here, ("path", "realm", "keys", "timestamp_delta_limit", "call_timeout"))
    keys_path = key_path(here, "keys")
    keys = {}
    raw_keys = table.get("keys", {})
    if not isinstance(raw_keys, dict):
        check.expected(keys_path, "a table of keys", raw_keys)
        raw_keys = {}
    for name, value in raw_keys.items():
        key_here = key_path(keys_path, name)
        entry = check.table(value, key_here, ("secret", "role"))
        keys[name] = HttpKey(name, check.string(entry, "secret", key_here), check.string(entry, "role", key_here))
    return HttpBridgeConfig(
        path=url_path(check, table, "path", here),
        realm=check.string(table, "realm", here, DEFAULT_REALM),
        keys=keys,
        timestamp_delta_limit=check.seconds(table, "timestamp_delta_limit", here, DEFAULT_TIMESTAMP_DELTA_LIMIT),
        call_timeout=check.integer(table, "call_timeout", here, 0),
    )


def static_roots(check: Checker, listener: dict, path: str, base_dir: str) -> tuple[StaticConfig, ...]:
    """The ``[[listeners.static]]`` tables of one listener."""
    found = []
    for here, value in check.tables(listener, "static", path):
        table = check.table(value, here, ("path", "directory"))
        directory = check.string(table, "directory", here, what="a folder name")
        if directory:
            directory = os.path.normpath(os.path.join(base_dir, directory))
            if not os.path.isdir(directory):
                check.error(key_path(here, "directory"), f"{directory!r} is not a folder")
        found.append(StaticConfig(path=url_path(check, table, "path", here), directory=directory))
    return tuple(found)


def bridge_paths(path: str, listener: object) -> dict[str, str]:
    """Key path -> URL path of every bridge of a listener (a static folder at '/' is the
    root under which everything else lies: it is not among them)."""
    paths = {f"{path}.rpc_websockets[{i}].path": r.path for i, r in enumerate(listener.rpc_websockets)}  # type: ignore[attr-defined]
    http = listener.http  # type: ignore[attr-defined]
    if http is not None:
        paths[f"{path}.http.path"] = http.path
    static = listener.static  # type: ignore[attr-defined]
    paths.update({f"{path}.static[{i}].path": s.path for i, s in enumerate(static) if _segments(s.path)})
    return paths


def _segments(path: str) -> tuple[str, ...]:
    return tuple(segment for segment in path.split("/") if segment)


def check_paths(check: Checker, path: str, listener: object) -> None:
    """Each bridge path keeps clear of the WAMP WebSocket's and of the other bridges' (none
    may be the same as, or lie under, another); a static folder at '/' needs the WAMP
    WebSocket on a path of its own."""
    wamp_path = listener.path  # type: ignore[attr-defined]
    roots = [i for i, s in enumerate(listener.static) if not _segments(s.path)]  # type: ignore[attr-defined]
    if len(roots) > 1:
        check.error(f"{path}.static[{roots[1]}].path", "only one static folder can be at '/'")
    if roots and not _segments(wamp_path):
        check.error(
            f"{path}.static[{roots[0]}].path", "a static folder at '/' needs the WAMP WebSocket on a path such as '/ws'"
        )
    bridges = bridge_paths(path, listener)
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
