"""The real ``rpc-websockets`` npm client (Node, pinned in tests/interop/js) against the relay,
with JSON and with msgpack.

``tests/interop/js/rpc_websockets.js`` runs its scenarios (calls with list and object
params, errors, client and server timeouts, notifications, a batch, events, rpc.login
with a protected method and event, reconnect) against the relay's rpc-websockets path;
the procedures it calls are registered by an autobahn-python session, and the events it
receives are published by that session. Needs node and ``tests/interop/js/install.sh``
(npm ci); without them the test skips (fails under PROMISIFIER_INTEROP_REQUIRED=1).
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor, task

from tests.js_support import JS_DIR, run_node, scenario_reports, skip_or_fail_without_node
from tests.relay_support import relay_config
from tests.support import RecordingSession, connect_autobahn, until

pytestmark = pytest.mark.slow

SCRIPT = JS_DIR / "rpc_websockets.js"
SCENARIOS = ("calls", "errors", "timeouts", "notifications", "batch", "events", "login", "reconnect")

CONFIG = """
[[listeners]]
endpoint = "tcp:0:interface=127.0.0.1"
[listeners.auth]
methods = ["anonymous", "ticket"]
[listeners.auth.ticket.principals.alice]
ticket = "alice-secret"
role = "user"
[[listeners.rpc_websockets]]
path = "/rpc"
uri_prefix = "com.example."
call_timeout = 500

[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
call = true
register = true
publish = true
subscribe = true
[[realms.roles.permissions]]
uri = "com.example.private"
match = "exact"
register = true
[[realms.roles.permissions]]
uri = "com.example.secret"
match = "exact"
publish = true
[[realms.roles]]
name = "user"
[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
call = true
subscribe = true
"""


class Backend(RecordingSession):
    """The autobahn-python session whose procedures the Node client calls."""

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.noted: list = []
        self.kick_rpc_clients = lambda: None

    @defer.inlineCallbacks
    def register_all(self):
        def fail():
            raise ApplicationError("com.example.oops", "it broke", code=7)

        def note(*args, **kwargs):
            self.noted.append(kwargs if kwargs else args[0])

        def emit(name, *params):
            kwargs = params[0] if len(params) == 1 and isinstance(params[0], dict) else None
            if kwargs is not None:
                return self.publish("com.example." + name, kwargs)
            return self.publish("com.example." + name, *params)

        def kick():
            reactor.callLater(0.05, self.kick_rpc_clients)
            return "bye"

        procedures = {
            "sum": lambda *a, **kw: sum(a) + sum(kw.values()),
            "fail": fail,
            "slow": lambda: task.deferLater(reactor, 3, lambda: "late"),
            "note": note,
            "noted": lambda: list(self.noted),
            "emit": emit,
            "kick": kick,
            "private": lambda: "private",
        }
        for name, fn in procedures.items():
            yield self.register(fn, "com.example." + name)


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
@pytest_twisted.inlineCallbacks
def test_rpc_websockets_node_client(relays, serializer):
    """json: the npm client as it comes; msgpack: its CommonClient with a msgpack DataPack
    (binary frames; the msgpack-rpc-websockets package is not on the npm registry)."""
    skip_or_fail_without_node()
    if not (JS_DIR / "node_modules" / "rpc-websockets" / "package.json").is_file():
        pytest.skip("rpc-websockets is not installed: run tests/interop/js/install.sh (npm ci)")
    relay = relays(relay_config(CONFIG))
    backend = yield connect_autobahn(relay.url, session_class=Backend)
    yield backend.register_all()

    def kick_rpc_clients():
        for session in relay.router.connections:
            if getattr(session.peer, "transport_type", None) == "rpc-websockets":
                session.goodbye("wamp.close.killed", "kicked by the test")

    backend.kick_rpc_clients = kick_rpc_clients
    url = relay.http.replace("http://", "ws://") + "/rpc"
    code, out, err = yield run_node([str(SCRIPT), url, f"--serializer={serializer}", "--timeout=60"], kill_after=75)
    reports = scenario_reports(out)
    failed = {name: report["details"] for name, report in reports.items() if not report.get("pass")}
    missing = [name for name in SCENARIOS if name not in reports]
    assert not failed and not missing, (
        f"failed: {json.dumps(failed, indent=1)}\nmissing: {missing}\nstderr: {err[-3000:]}"
    )
    assert code == 0
    assert reports["reconnect"]["details"]["code"] == 1001
    # answered in kind: only text frames to the JSON client, only binary to the msgpack one
    frames = reports["frames"]["details"]
    assert frames["binary" if serializer == "msgpack" else "text"] > 10
    assert frames["text" if serializer == "msgpack" else "binary"] == 0
    # the batch's notification ran too
    assert "batched" in backend.noted
    # every rpc-websockets session is gone; only the backend is left
    assert (yield until(lambda: relay.router.session_count == 1))
    yield backend.leave()


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
@pytest_twisted.inlineCallbacks
def test_rpc_websockets_node_client_against_the_server_facade(serializer):
    """The same scenarios against promisifier.compat.Server on its own port (a program
    that used the Node server keeps its JS clients); the façade has no call timeout, so
    the timeouts scenario is the relay's only."""
    from promisifier import ApplicationError as Raised  # the façade's methods raise ours
    from promisifier.compat.rpc_server import Server
    from tests.support import within

    skip_or_fail_without_node()
    server = Server("127.0.0.1", 0)
    yield within(server.when_ready())
    noted: list = []
    try:

        def fail():
            raise Raised("com.example.oops", "it broke", code=7)

        def emit(name, *params):
            return server.emit(name, *params)

        def kick():
            reactor.callLater(0.05, kick_rpc_clients)
            return "bye"

        def kick_rpc_clients():
            for session in server.router.connections:
                if getattr(session.peer, "transport_type", None) == "rpc-websockets":
                    session.goodbye("wamp.close.killed", "kicked by the test")

        for name, fn in {
            "sum": lambda *a, **kw: sum(a) + sum(kw.values()),
            "fail": fail,
            "note": lambda *a, **kw: noted.append(kw if kw else a[0]),
            "noted": lambda: list(noted),
            "emit": emit,
            "kick": kick,
        }.items():
            server.register(name, fn)
        server.register("private", lambda: "private").protected()
        server.event("tick")
        server.event("secret").protected()
        server.set_auth(lambda params: params.get("authid") == "alice" and params.get("ticket") == "alice-secret")
        yield within(server._default.methods["private"].when_registered())
        scenarios = [name for name in SCENARIOS if name != "timeouts"]
        args = [str(SCRIPT), server.url(), f"--serializer={serializer}", f"--only={','.join(scenarios)}"]
        code, out, err = yield run_node(args, kill_after=75)
        reports = scenario_reports(out)
        failed = {name: report["details"] for name, report in reports.items() if not report.get("pass")}
        missing = [name for name in scenarios if name not in reports]
        assert not failed and not missing, (
            f"failed: {json.dumps(failed, indent=1)}\nmissing: {missing}\nstderr: {err[-3000:]}"
        )
        assert code == 0 and "batched" in noted
    finally:
        yield within(server.close())
