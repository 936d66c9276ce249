"""The README's authentication example: examples/auth/relay.toml (on port 0 here) and a client
per method with the credentials the README gives (the key file, the SCRAM password, a JWT
signed with the example secret), through the CLI as the README runs them."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import jwt
import pytest
import pytest_twisted
from twisted.internet import defer, utils

from promisifier.relay.relay_config import load_config
from promisifier.relay.service import RelayService
from tests.support import within

pytestmark = pytest.mark.slow  # real sockets on 127.0.0.1


REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "auth"


@pytest_twisted.ensureDeferred
async def test_the_readme_runs_a_client_per_method(tmp_path):
    config = tmp_path / "relay.toml"
    config.write_text((EXAMPLE / "relay.toml").read_text().replace("tcp:8080:", "tcp:0:"))
    service = RelayService(load_config(config), config_file=str(config), handle_sighup=False)
    service.startService()
    token = jwt.encode(
        {"sub": "frank", "role": "user", "aud": "relay.example", "exp": int(time.time()) + 3600},
        "example-secret-shared-with-the-web-app",
        algorithm="HS256",
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    try:
        runs = [
            ["--private-key", str(EXAMPLE / "device.key")],
            ["--authid", "erin", "--password", "erin-password"],
            ["--ticket", token],
            ["--authid", "erin", "--password", "wrong"],
        ]
        # the four clients at once: each is a Python start-up
        results = await within(
            defer.gatherResults(
                [
                    utils.getProcessOutputAndValue(
                        sys.executable,
                        ["-m", "promisifier", "call", service.url, "realm1", "wamp.session.count", *options],
                        env=env,
                        path=str(REPO),
                    )
                    for options in runs
                ]
            ),
            60,
        )
        for options, (out, err, code) in zip(runs[:3], results[:3], strict=True):
            assert code == 0 and out.strip() in (b"1", b"2", b"3"), (options[0], err)
        out, err, code = results[3]
        assert code == 1 and b"wamp.error.authentication_failed: authentication failed" in err, err
    finally:
        await service.stopService()
