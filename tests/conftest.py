"""Shared fixtures. pytest-twisted (installed with the `test` extra) runs the Twisted reactor
for the whole session: write Twisted tests with ``@pytest_twisted.inlineCallbacks`` or
``@pytest_twisted.ensureDeferred``. Settings are in setup.cfg ``[tool:pytest]``."""

import pytest

from tests.advanced_support import harness  # noqa: F401 - fixtures for every test module
from tests.cluster_support import cluster  # noqa: F401
from tests.redis_support import redis_server  # noqa: F401
from tests.relay_support import processes, relays  # noqa: F401
from tests.support import free_ports


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it)."""
    return free_ports(1)[0]
