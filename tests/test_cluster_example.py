"""examples/cluster/run.sh: a Redis and two relay nodes on free ports, the demo across them,
and everything it started stopped again."""

from __future__ import annotations

import sys

import pytest

from tests.relay_support import REPO
from tests.support import free_ports

pytestmark = pytest.mark.slow


@pytest.mark.process
def test_the_cluster_example_runs_two_nodes(processes, monkeypatch):
    redis_port, port1, port2 = free_ports(3)
    monkeypatch.setenv("REDIS_PORT", str(redis_port))
    monkeypatch.setenv("PORT1", str(port1))
    monkeypatch.setenv("PORT2", str(port2))
    monkeypatch.setenv("PYTHON", sys.executable)
    run = processes(["bash", str(REPO / "examples" / "cluster" / "run.sh")])
    assert run.wait(60) == 0, run.describe()
    assert "node 1: com.example.add(2, 3) = 5 (answered by node 2)" in run.output
    assert "node 2: received 'hello from node 1'" in run.output
