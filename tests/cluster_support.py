"""Relays as nodes of a cluster for tests: separate processes sharing the test's own
``redis_server``, each with a config file of its own (short heartbeats keep failure tests
quick)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest

from tests.relay_support import Process
from tests.support import free_ports

#: heartbeat settings of test nodes (seconds)
HEARTBEAT_INTERVAL = 0.5
TTL = 2.0


@dataclass
class Node:
    """A relay process that is a node of the test's cluster."""

    name: str
    port: int
    process: Process

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def cluster(redis_server, processes, tmp_path):
    """Start nodes with ``cluster(name)``: a relay process on a free port, its link to
    Redis up. ``extra`` TOML goes into its config file."""

    def start(name: str, extra: str = "") -> Node:
        port = free_ports(1)[0]
        config = tmp_path / f"{name}.toml"
        config.write_text(
            f'[[listeners]]\nendpoint = "tcp:{port}:interface=127.0.0.1"\n'
            f'[cluster]\nredis = "{redis_server.url}"\nnode = "{name}"\n'
            f"heartbeat_interval = {HEARTBEAT_INTERVAL}\nttl = {TTL}\n{extra}"
        )
        process = processes([sys.executable, "-m", "promisifier", "relay", "--config", str(config)])
        process.wait_for_output(f"cluster node {name}: link to Redis up")
        process.wait_for_output("promisifier relay serving")
        return Node(name, port, process)

    return start
