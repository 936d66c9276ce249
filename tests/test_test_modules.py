"""Rules every test module follows.

* The fast subset stays fast: a module that opens sockets or starts processes (through the
  helpers and fixtures that do) is marked ``slow``, so ``pytest -m "not slow"`` skips it.
* Helpers are imported as ``tests.x`` (pytest runs from the checkout's root), never through
  ``try: ... except ImportError`` with a second import path.
* Fixtures live in ``conftest.py``, not re-exported by test modules through ``__all__``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

#: helper modules whose use means sockets or processes
SLOW_HELPERS = {
    "tests.advanced_support",
    "tests.auth_support",
    "tests.raw_support",
    "tests.redis_support",
    "tests.relay_support",
}
#: names of tests.support that open sockets
SLOW_SUPPORT_NAMES = {"start_router", "connect_autobahn", "free_ports", "RunningRouter"}
#: fixtures (conftest.py) that start routers, relays or servers
SLOW_FIXTURES = {"harness", "relays", "processes", "redis_server", "free_port"}
SLOW_MODULES = {"socket"}


def needs_slow_marker(tree: ast.Module) -> list[str]:
    """Why a test module must be marked slow (empty: it need not)."""
    reasons = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module in SLOW_HELPERS:
                reasons.append(node.module)
            elif node.module == "tests.support":
                reasons.extend(alias.name for alias in node.names if alias.name in SLOW_SUPPORT_NAMES)
        elif isinstance(node, ast.Import):
            reasons.extend(alias.name for alias in node.names if alias.name in SLOW_MODULES)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            reasons.extend(f"fixture {arg.arg}" for arg in node.args.args if arg.arg in SLOW_FIXTURES)
    return reasons


def marked_slow(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == "pytestmark" for target in node.targets):
            return "pytest.mark.slow" in ast.unparse(node.value)
    return False


@pytest.mark.parametrize("path", sorted(TESTS.glob("test_*.py")), ids=lambda path: path.name)
def test_modules_that_open_sockets_or_start_processes_are_marked_slow(path):
    tree = ast.parse(path.read_text(), str(path))
    reasons = needs_slow_marker(tree)
    assert not reasons or marked_slow(tree), (
        f"{path.name} uses {sorted(set(reasons))}: add pytestmark = pytest.mark.slow"
    )


@pytest.mark.parametrize("path", sorted(TESTS.glob("*.py")), ids=lambda path: path.name)
def test_helpers_are_imported_one_way_and_fixtures_not_re_exported(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            caught = [ast.unparse(handler.type) for handler in node.handlers if handler.type is not None]
            imports = [n for n in node.body if isinstance(n, ast.Import | ast.ImportFrom)]
            assert not (imports and "ImportError" in caught), f"{path.name}:{node.lineno}: import tests.x directly"
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == "__all__" for target in node.targets):
            raise AssertionError(f"{path.name}: fixtures belong in conftest.py, not in __all__")


def test_the_check_sees_a_socket_test():
    tree = ast.parse("from tests.support import start_router\ndef test_x(relays):\n    pass\n")
    assert needs_slow_marker(tree) == ["start_router", "fixture relays"]
    assert not marked_slow(tree)
    assert marked_slow(ast.parse("import pytest\npytestmark = [pytest.mark.slow, pytest.mark.process]\n"))
