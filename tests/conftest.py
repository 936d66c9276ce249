"""Shared fixtures. pytest-twisted (installed with the `test` extra) runs the Twisted reactor
for the whole session: write Twisted tests with ``@pytest_twisted.inlineCallbacks`` or
``@pytest_twisted.ensureDeferred``. Settings are in setup.cfg ``[tool:pytest]``."""

import socket

import pytest

from tests.relay_support import processes, relays  # noqa: F401 - fixtures for every test module


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
