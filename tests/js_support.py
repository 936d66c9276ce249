"""Running Node scripts of tests/interop/js (autobahn-js) from a test, under the reactor.

The relay under test lives in the test's reactor, so node runs as a child process of it;
:func:`run_node` fires with the exit code and output.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from twisted.internet import defer, protocol, reactor

JS_DIR = Path(__file__).parent / "interop" / "js"


def _missing_prerequisite() -> str | None:
    node = shutil.which("node")
    if node is None:
        return "node is not installed (autobahn-js interop needs Node >= 20)"
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
        major = int(version.lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError) as error:
        return f"cannot tell the version of {node}: {error}"
    if major < 20:
        return f"node {version} is too old for the autobahn-js interop test (Node >= 20 is needed)"
    if not (JS_DIR / "node_modules" / "autobahn" / "package.json").is_file():
        return "autobahn-js is not installed: run tests/interop/js/install.sh (npm ci)"
    return None


def skip_or_fail_without_node() -> None:
    """Skip the test when node or autobahn-js is missing (fail with PROMISIFIER_INTEROP_REQUIRED=1)."""
    missing = _missing_prerequisite()
    if missing is None:
        return
    if os.environ.get("PROMISIFIER_INTEROP_REQUIRED") == "1":
        pytest.fail(f"PROMISIFIER_INTEROP_REQUIRED=1 but {missing}")
    pytest.skip(missing)


class _Collect(protocol.ProcessProtocol):
    """Collects a child's stdout and stderr; ``ended`` fires with its exit code."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.err = bytearray()
        self.ended: defer.Deferred[int | None] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        self.out += data

    def errReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        self.err += data

    def processEnded(self, reason) -> None:  # noqa: N802 - Twisted API
        self.ended.callback(getattr(reason.value, "exitCode", None))


@defer.inlineCallbacks
def run_node(args: list[str], kill_after: float = 30.0):
    """Run node with ``args`` in tests/interop/js; fires with (exit code, stdout, stderr).

    The reactor keeps running meanwhile (the relay under test lives in it). A child still
    running after ``kill_after`` seconds is killed and the test fails.
    """
    node = shutil.which("node")
    collector = _Collect()
    transport = reactor.spawnProcess(collector, node, [node, *args], env=dict(os.environ), path=str(JS_DIR))
    killed = []

    def kill() -> None:
        killed.append(True)
        try:
            transport.signalProcess(signal.SIGKILL)
        except Exception:  # already gone
            pass

    timer = reactor.callLater(kill_after, kill)
    try:
        code = yield collector.ended
    finally:
        if timer.active():
            timer.cancel()
    out, err = collector.out.decode("utf-8", "replace"), collector.err.decode("utf-8", "replace")
    if killed:
        pytest.fail(
            f"node {' '.join(args)} still running after {kill_after} s; killed\nstdout:\n{out}\nstderr:\n{err[-4000:]}"
        )
    return code, out, err


def scenario_reports(out: str) -> dict[str, dict]:
    """The JSON lines a script printed, by their ``scenario``."""
    reports = {}
    for line in out.splitlines():
        if line.startswith("{"):
            report = json.loads(line)
            reports[report["scenario"]] = report
    return reports
