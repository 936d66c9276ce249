"""autobahn-js interop: tests/interop/js/interop.js (Node, autobahn-js 22) against our relay.

The test starts a relay in this process, runs ``node interop.js URL realm1 SERIALIZER`` as
a child process of the reactor (so the relay keeps serving while node runs), and checks
the one JSON line per scenario that the script prints. The scenarios: register and call,
progressive results, call timeout, cancel with mode kill, the other cancel modes, publish
with acknowledge, prefix and wildcard subscriptions, exclude_me false, and the meta
procedures wamp.session.count and wamp.registration.list.

Cancel is where autobahn-js needs the realm option ``cancel_reply``: it rejects a call
cancelled in a mode other than "kill" itself and drops its connection if an ERROR for that
call arrives afterwards. The full set runs on a realm with ``cancel_reply="kill_only"``
(safe for autobahn-js callers); the cancel scenarios also run with ``"always"`` (the
specification's ERROR), where the script checks that the mode "kill" works and that
autobahn-js does drop its connection on the ERROR for the other modes.

Needs node and ``tests/interop/js/install.sh`` (npm ci); without them the tests skip, or
fail when PROMISIFIER_INTEROP_REQUIRED=1 is set (for CI, where the install step ran).
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import defer

from promisifier.embed import Router as EmbeddedRouter
from promisifier.router import RouterConfig
from promisifier.router.history import HistoryRule
from promisifier.router.router_config import RealmConfig
from tests.js_support import JS_DIR, run_node, scenario_reports, skip_or_fail_without_node
from tests.support import SERIALIZER_NAMES, router_idle, start_router, until

pytestmark = pytest.mark.slow

SCRIPT = JS_DIR / "interop.js"

#: every scenario of interop.js; a scenario that does not report is a failure
ALL_SCENARIOS = (
    "register_call",
    "progressive_results",
    "call_timeout",
    "cancel_kill",
    "cancel_other_modes",
    "publish_acknowledge",
    "pattern_subscriptions",
    "exclude_me_false",
    "meta_session_count",
    "meta_registration_list",
    "event_history",
)
CANCEL_SCENARIOS = ("cancel_kill", "cancel_other_modes")

#: interop.js stops itself after this many seconds; this test kills it a little later
SCRIPT_TIMEOUT = 60
KILL_AFTER = SCRIPT_TIMEOUT + 15


@defer.inlineCallbacks
def _run_interop(serializer: str, cancel_reply: str, scenarios: tuple[str, ...]):
    skip_or_fail_without_node()
    history = (HistoryRule("com.interop.history.", "prefix"),)
    config = RouterConfig(realms=(RealmConfig(name="realm1", cancel_reply=cancel_reply, history=history),))
    running = yield start_router(config)
    try:
        args = [
            str(SCRIPT),
            running.url,
            "realm1",
            serializer,
            f"--cancel-reply={cancel_reply}",
            f"--timeout={SCRIPT_TIMEOUT}",
        ]
        if scenarios != ALL_SCENARIOS:
            args.append(f"--only={','.join(scenarios)}")
        code, out, err = yield run_node(args, KILL_AFTER)
        reports = scenario_reports(out)
        failed = {name: report for name, report in reports.items() if not report.get("pass")}
        missing = [name for name in scenarios if name not in reports]
        explanation = "\n".join(
            [f"{name}: {json.dumps(report['details'])}" for name, report in failed.items()]
            + [f"{name}: no report" for name in missing]
            + [f"exit code {code}; stderr (tail):", err[-3000:]]
        )
        assert not failed and not missing, (
            f"autobahn-js interop ({serializer}, cancel_reply={cancel_reply}) failed:\n{explanation}"
        )
        assert code == 0, explanation
        assert all(reports[name]["serializer"] == serializer for name in scenarios)
        # Whatever the clients did, the relay is left with nothing: no session, no
        # registration or subscription, no call in flight.
        counts = yield router_idle(running.router, 5.0)
        assert not any(counts.values()), f"relay state after the clients left: {counts}"
        return reports
    finally:
        yield running.stop()


@pytest.mark.parametrize("serializer", [*SERIALIZER_NAMES, "cbor"])
@pytest_twisted.inlineCallbacks
def test_autobahn_js_interop(serializer):
    """Every scenario on a realm safe for autobahn-js callers (cancel_reply="kill_only")."""
    reports = yield _run_interop(serializer, "kill_only", ALL_SCENARIOS)
    assert reports["register_call"]["details"]["protocol"] == f"wamp.2.{serializer}"
    # What autobahn-js puts on the wire for the call timeout and cancel (documented in the README).
    assert reports["call_timeout"]["details"]["call_on_wire"][2] == {"timeout": 300}
    assert reports["cancel_kill"]["details"]["cancel_on_wire"][2] == {"mode": "kill"}


@pytest.mark.parametrize("serializer", SERIALIZER_NAMES)
@pytest_twisted.inlineCallbacks
def test_autobahn_js_cancel_with_spec_reply(serializer):
    """cancel_reply="always": mode kill works; other modes make autobahn-js drop its connection."""
    reports = yield _run_interop(serializer, "always", CANCEL_SCENARIOS)
    callers = reports["cancel_other_modes"]["details"]["callers"]
    assert all(caller["dropped_by_autobahn_js"] for caller in callers)


# -- Wampy.js ------------------------------------------------------------------------------------


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
@pytest_twisted.inlineCallbacks
def test_wampy_js_calls_streams_and_publishes(serializer):
    """Wampy.js (msgpackr writes JavaScript's undefined as msgpack ext type 0; cbor-x for CBOR):
    a call both ways, progressive call invocations into our client's stream_input procedure,
    an event."""
    skip_or_fail_without_node()
    if not (JS_DIR / "node_modules" / "wampy" / "package.json").is_file():
        pytest.skip("wampy is not installed: bash tests/interop/js/install.sh")
    router = EmbeddedRouter(RouterConfig())
    port = yield router.listen("tcp:0:interface=127.0.0.1")
    local = yield router.session("realm1")
    try:

        async def collect(chunks):
            return [chunk async for chunk in chunks]

        yield local.register("com.test.collect", collect, stream_input=True)
        yield local.register("com.test.call_wampy", lambda *args: local.call("com.wampy.echo", *args))
        url = f"ws://127.0.0.1:{port.getHost().port}/ws"
        code, out, err = yield run_node(["wampy.mjs", url, "realm1", serializer], kill_after=40)
        report = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        assert code == 0 and "error" not in report, f"wampy ({serializer}): {report} {err[-2000:]}"
        assert report["steps"] == {"joined": True, "callee": True, "progressive_call_invocations": True, "pubsub": True}
        yield until(lambda: router.state_counts()["sessions"] == 1)  # only the test's own session
    finally:
        yield local.leave()
        yield router.stop()
        yield port.stopListening()
