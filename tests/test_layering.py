"""The layers import only downwards: the router core is free of I/O (nothing under
``promisifier/router/`` imports Twisted's networking, autobahn, twisted.web, the transports
or the layers above the router), and the relay does not import the façades (compat)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROUTER = REPO / "promisifier" / "router"

#: module prefixes the router must not import, not even inside a function
FORBIDDEN = (
    "autobahn",
    "twisted.web",
    "twisted.internet.endpoints",
    "twisted.internet.protocol",
    "twisted.internet.tcp",
    "twisted.internet.ssl",
    "twisted.internet.unix",
    "promisifier.transport.websocket",
    "promisifier.transport.rawsocket",
    "promisifier.transport.handshake",
    "promisifier.listen",
    "promisifier.embed",
    "promisifier.client",
    "promisifier.compat",
    "promisifier.relay",
)


def _forbidden(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in FORBIDDEN)


def _imported_names(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted(ROUTER.glob("*.py")), ids=lambda path: path.name)
def test_no_router_module_imports_networking(path):
    assert [name for name in _imported_names(path) if _forbidden(name)] == []


def test_the_scan_sees_a_forbidden_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from twisted.internet.endpoints import serverFromString\n")
    assert [name for name in _imported_names(sample) if _forbidden(name)] != []


def test_importing_the_router_loads_no_networking():
    probe = (
        "import sys, pkgutil, importlib, promisifier.router\n"
        "for info in pkgutil.iter_modules(promisifier.router.__path__):\n"
        "    importlib.import_module('promisifier.router.' + info.name)\n"
        f"prefixes = {FORBIDDEN!r}\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith(prefixes))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""


def test_the_relay_does_not_import_the_facades():
    probe = (
        "import sys, promisifier.relay.service, promisifier.relay.site, promisifier.relay.relay_config\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('promisifier.compat'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""


def _import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> modules of the same package it imports (at any level, TYPE_CHECKING too)."""
    modules = {path.stem for path in package.glob("*.py") if path.stem != "__init__"}
    prefix = f"promisifier.{package.name}."
    graph: dict[str, set[str]] = {}
    for module in modules:
        names = _imported_names(package / f"{module}.py")
        graph[module] = {name[len(prefix) :].split(".")[0] for name in names if name.startswith(prefix)} & modules
        graph[module].discard(module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module."""
    reach = {module: set() for module in graph}
    for module in graph:
        todo = list(graph[module])
        while todo:
            other = todo.pop()
            if other not in reach[module]:
                reach[module].add(other)
                todo.extend(graph[other])
    components: list[set[str]] = []
    for module in graph:
        component = {module} | {other for other in reach[module] if module in reach[other]}
        if len(component) > 1 and component not in components:
            components.append(component)
    return components


def test_the_client_has_no_import_cycles():
    assert _cycles(_import_graph(REPO / "promisifier" / "client")) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [{"a", "b"}]


def test_the_router_has_no_import_cycles():
    # the dealer, broker and meta API take their realm as a protocol (realm_view.RealmView,
    # DealerRealm, BrokerRealm, MetaRealm), not as the Realm that holds them
    assert _cycles(_import_graph(ROUTER)) == []


def test_the_relays_web_pages_and_metrics_are_in_no_import_cycle():
    # metrics reads the relay's serving state through a protocol of its own, not web.RelayWeb
    cycles = _cycles(_import_graph(REPO / "promisifier" / "relay"))
    assert [cycle for cycle in cycles if cycle & {"web", "metrics"}] == []
