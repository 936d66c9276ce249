"""autobahn-js (Node) across two nodes of a cluster: tests/interop/js/cluster.js calls a
procedure registered on the other node (a result and an error with its URI, args and
kwargs) and publishes to a prefix subscription there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import SERIALIZER_NAMES

pytestmark = pytest.mark.slow

JS_DIR = Path(__file__).parent / "interop" / "js"


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (JS_DIR / "node_modules" / "autobahn" / "package.json").is_file():
        return "autobahn-js is not installed: run tests/interop/js/install.sh (npm ci)"
    return None


@pytest.mark.process
@pytest.mark.parametrize("serializer", SERIALIZER_NAMES)
def test_autobahn_js_calls_and_publishes_across_nodes(cluster, serializer):
    missing = _missing()
    if missing is not None:
        if os.environ.get("PROMISIFIER_INTEROP_REQUIRED") == "1":
            pytest.fail(f"PROMISIFIER_INTEROP_REQUIRED=1 but {missing}")
        pytest.skip(missing)
    n1, n2 = cluster("n1"), cluster("n2")
    # the relays are other processes: this one may wait for node without starving them
    run = subprocess.run(
        ["node", "cluster.js", n1.url, n2.url, "realm1", serializer],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(run.stdout.strip().splitlines()[-1]) if run.stdout.strip() else None
    assert run.returncode == 0 and report and report["pass"], (run.returncode, run.stdout, run.stderr[-3000:])
