"""The benchmark harness still works: one tiny relayed-RPC run per transport, end to end.

``python -m benchmarks rpc`` starts the relay (``python -m promisifier relay``, with
``--rawsocket`` for RawSocket) and load generator processes,
measures a window of a fraction of a second, and prints RESULT lines and a JSON file.
Only that it runs and reports figures is checked: no timing assertions.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
RESULT_LINE = re.compile(r"^RESULT name=(\S+) value=(\S+) unit=(\S+)$")


@pytest.mark.process
def test_rpc_benchmark_runs_over_both_transports(tmp_path):
    report = tmp_path / "rpc.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    command = [
        sys.executable,
        "-m",
        "benchmarks",
        "rpc",
        "--transports",
        "ws,rs",
        "--serializers",
        "msgpack",
        "--seconds",
        "0.4",
        "--warmup",
        "0.1",
        "--callers",
        "1",
        "--outstanding",
        "4",
        "--log-dir",
        str(tmp_path / "logs"),
        "--json",
        str(report),
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = {}
    for line in done.stdout.splitlines():
        match = RESULT_LINE.match(line)
        if match:
            figures[match[1]] = (float(match[2]), match[3])
    for transport in ("ws", "rs"):
        rate, unit = figures[f"rpc.{transport}.msgpack.rate"]
        assert unit == "calls_per_s" and rate > 0
        assert f"rpc.{transport}.msgpack.capacity" in figures
    written = json.loads(report.read_text())
    assert written["scenario"] == "rpc"
    assert "--rawsocket" in written["setup"]["runs"]["rs.server"]
    assert {r["name"] for r in written["results"]} == set(figures)
    for transport in ("ws", "rs"):
        assert not any(run.get("call_errors") for run in written["setup"]["runs"][f"rpc.{transport}.msgpack"])


@pytest.mark.process
def test_cluster_benchmark_runs_two_nodes_and_a_redis(tmp_path):
    report = tmp_path / "cluster.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    command = [sys.executable, "-m", "benchmarks", "cluster", "--serializers", "msgpack", "--seconds", "0.4"]
    command += ["--sequence-seconds", "0.5"]
    command += ["--warmup", "0.1", "--log-dir", str(tmp_path / "logs"), "--json", str(report)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = {match[1]: float(match[2]) for match in map(RESULT_LINE.match, done.stdout.splitlines()) if match}
    for name in ("latency.cross.p50", "rpc.cross.rate", "rpc.same.rate", "rpc.alone.rate", "events.cross.rate"):
        assert figures[f"cluster.msgpack.{name}"] > 0, name
    assert figures["cluster.msgpack.rpc.cross.redis_publishes_per_call"] > 0
    assert figures["cluster.msgpack.sequence.rate"] > 0
    for name in ("lost", "missing", "out_of_order"):
        assert figures[f"cluster.msgpack.sequence.{name}"] == 0, name


@pytest.mark.process
def test_workers_benchmark_compares_two_workers_with_one(tmp_path):
    report = tmp_path / "workers.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    command = [sys.executable, "-m", "benchmarks", "workers", "--seconds", "0.4", "--warmup", "0.1"]
    command += ["--callers", "1", "--sessions", "2", "--callees", "2"]
    command += ["--log-dir", str(tmp_path / "logs"), "--json", str(report)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = {match[1]: float(match[2]) for match in map(RESULT_LINE.match, done.stdout.splitlines()) if match}
    for count in ("w1", "w2"):
        assert figures[f"workers.msgpack.{count}.rpc.rate"] > 0
        assert figures[f"workers.msgpack.{count}.rpc.capacity"] > 0
    assert 0 <= figures["workers.msgpack.w2.crossed"] <= 1
    assert figures["workers.msgpack.w2.vs_w1.rate"] > 0
    runs = json.loads(report.read_text())["setup"]["runs"]
    assert sum(runs["workers.msgpack.w2.sessions_per_worker"]) == 2 + 2
    assert runs["workers.msgpack.w1.call_errors"] == runs["workers.msgpack.w2.call_errors"] == 0


@pytest.mark.process
def test_cluster_soak_leaves_redis_and_the_nodes_tables_as_it_found_them(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    command = [sys.executable, "-m", "benchmarks", "cluster-soak", "--seconds", "3", "--sessions", "2"]
    command += ["--log-dir", str(tmp_path / "logs"), "--json", str(tmp_path / "soak.json")]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = {match[1]: float(match[2]) for match in map(RESULT_LINE.match, done.stdout.splitlines()) if match}
    assert figures["cluster_soak.rounds"] >= 1 and figures["cluster_soak.calls"] > 0
    assert figures["cluster_soak.leftover"] == 0
    assert figures["cluster_soak.dbsize_end"] == figures["cluster_soak.dbsize_start"]


@pytest.mark.process
def test_cluster_death_benchmark_times_a_killed_node(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    command = [sys.executable, "-m", "benchmarks", "cluster-death", "--repeat", "1"]
    command += ["--log-dir", str(tmp_path / "logs"), "--json", str(tmp_path / "death.json")]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = {match[1]: float(match[2]) for match in map(RESULT_LINE.match, done.stdout.splitlines()) if match}
    assert figures["cluster_death.call_failed.max"] > 0 and figures["cluster_death.detected.max"] > 0


@pytest.mark.process
def test_latency_with_the_lean_websocket_client(tmp_path):
    report = tmp_path / "latency.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    command = [sys.executable, "-m", "benchmarks", "latency", "--transports", "ws", "--serializers", "msgpack,json"]
    command += ["--lean", "--seconds", "0.3", "--warmup", "0.1", "--log-dir", str(tmp_path / "logs")]
    done = subprocess.run(
        command + ["--json", str(report)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = {match[1]: float(match[2]) for match in map(RESULT_LINE.match, done.stdout.splitlines()) if match}
    for serializer in ("msgpack", "json"):
        assert figures[f"latency.ws.{serializer}.p50"] > 0
    assert json.loads(report.read_text())["setup"]["lean"] is True
