"""The idle-sessions benchmark spreads its load generators over processes and source
addresses of 127.0.0.0/8 (so that 100,000 sessions fit in the ephemeral port range); a
tiny run checks that it runs from several source addresses. No timing assertions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


def test_idle_sessions_are_spread_over_processes_and_source_addresses():
    from benchmarks.idle import source_address, spread

    plan = spread(100_000, per_process=2500, per_source=20_000)
    assert sum(count for count, _ in plan) == 100_000
    assert max(count for count, _ in plan) <= 2500
    per_source: dict[str, int] = {}
    for count, source in plan:
        per_source[source] = per_source.get(source, 0) + count
    assert per_source == {f"127.0.0.{i}": 20_000 for i in range(1, 6)}
    assert spread(7, per_process=5, per_source=10) == [(4, "127.0.0.1"), (3, "127.0.0.1")]
    assert source_address(255) == "127.0.1.0"


@pytest.mark.process
def test_idle_benchmark_runs_from_several_source_addresses(tmp_path):
    report = tmp_path / "idle.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    command = [
        *(sys.executable, "-m", "benchmarks", "idle", "--transports", "ws", "--sessions", "6"),
        *("--sessions-per-process", "3", "--sessions-per-source", "3", "--settle", "0.1"),
        *("--log-dir", str(tmp_path / "logs"), "--json", str(report)),
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads(report.read_text())["setup"]["runs"]["idle.ws.n6"]
    assert (run["processes"], run["source_addresses"]) == (2, 2)
    assert "idle.ws.n6.join_rate" in done.stdout
    assert run["calls"]["n"] > 0 and "idle.ws.n6.call.p99" in done.stdout
