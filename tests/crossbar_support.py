"""Crossbar.io, a WAMP router nobody here wrote, as a process for the interop tests.

It lives in its own virtualenv, ``tests/interop/crossbar/venv`` (``bash
tests/interop/crossbar/install.sh``; CI runs it), or wherever the environment variable
``PROMISIFIER_CROSSBAR`` points (the ``crossbar`` executable). Tests marked
:data:`needs_crossbar` skip without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CROSSBAR = os.environ.get("PROMISIFIER_CROSSBAR") or str(HERE / "interop" / "crossbar" / "venv" / "bin" / "crossbar")
START_TIMEOUT = 60.0

needs_crossbar = pytest.mark.skipif(
    not os.access(CROSSBAR, os.X_OK),
    reason=f"Crossbar not installed ({CROSSBAR}): bash tests/interop/crossbar/install.sh",
)


def _wait_listening(port: int, process: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"crossbar exited with {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"crossbar not listening on {port} within {START_TIMEOUT} s")


@contextlib.contextmanager
def running_crossbar(directory: Path, config: dict, ports: tuple[int, ...]) -> Iterator[Path]:
    """Crossbar started with ``config`` (its node directory under ``directory``) until it
    listens on every one of ``ports`` (127.0.0.1), stopped at the end. Yields the node
    directory (its log is ``node.log`` there)."""
    node_dir = directory / ".crossbar"
    node_dir.mkdir()
    (node_dir / "config.json").write_text(json.dumps(config))
    log = open(node_dir / "node.log", "wb")
    process = subprocess.Popen(
        [CROSSBAR, "start", "--cbdir", str(node_dir), "--loglevel", "warn"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        for port in ports:
            _wait_listening(port, process, deadline)
        yield node_dir
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        log.close()
