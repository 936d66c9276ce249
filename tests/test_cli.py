"""The client commands of ``python -m promisifier`` and the client examples, run as child
processes against a router in the test's process (real sockets on 127.0.0.1).

The children run while the test's reactor serves the router, so they are driven with
``reactor.spawnProcess``; readiness comes from the line each prints when it is ready.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor
from twisted.web.client import Agent

from promisifier.cli import parse_value, to_json
from promisifier.client import CallResult, connect
from promisifier.router import RouterConfig
from promisifier.router.authz import Permission, RoleConfig
from promisifier.router.router_config import RealmConfig
from tests.support import start_router, until, within

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
#: bound on any wait for a child process (seconds)
WAIT = 20.0


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


class Child(protocol.ProcessProtocol):
    """A child process: its output, a Deferred per awaited stdout/stderr text, and its end."""

    def __init__(self) -> None:
        self.out = b""
        self.err = b""
        self.ended: defer.Deferred[int] = defer.Deferred()
        self._waits: list[tuple[str, bytes, defer.Deferred[None]]] = []

    def outReceived(self, data: bytes) -> None:  # noqa: N802
        self.out += data
        self._check()

    def errReceived(self, data: bytes) -> None:  # noqa: N802
        self.err += data
        self._check()

    def processEnded(self, reason) -> None:  # noqa: N802
        code = reason.value.exitCode
        for _, _, d in self._waits:
            if not d.called:
                d.errback(AssertionError(f"child ended ({code}) first; stdout {self.out!r}, stderr {self.err!r}"))
        self.ended.callback(code if code is not None else -(reason.value.signal or 0))

    def wait_for(self, stream: str, text: bytes) -> defer.Deferred[None]:
        d: defer.Deferred[None] = defer.Deferred()
        self._waits.append((stream, text, d))
        self._check()
        return within(d, WAIT)

    def _check(self) -> None:
        for item in list(self._waits):
            stream, text, d = item
            if text in (self.out if stream == "out" else self.err):
                self._waits.remove(item)
                d.callback(None)

    def signal(self, name: str) -> None:
        self.transport.signalProcess(name)

    @defer.inlineCallbacks
    def result(self):
        code = yield within(self.ended, WAIT)
        return self.out.decode("utf-8"), self.err.decode("utf-8"), code


class _Body(protocol.Protocol):
    def __init__(self, done: defer.Deferred[bytes]) -> None:
        self.done, self.data = done, b""

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.data += data

    def connectionLost(self, reason=None) -> None:  # noqa: N802
        self.done.callback(self.data)


def body_of(response) -> defer.Deferred[bytes]:
    done: defer.Deferred[bytes] = defer.Deferred()
    response.deliverBody(_Body(done))
    return done


def spawn(*argv: str) -> Child:
    child = Child()
    reactor.spawnProcess(child, sys.executable, [sys.executable, *argv], env=child_env(), path=str(REPO))
    return child


def cli(*args: str) -> Child:
    return spawn("-m", "promisifier", *args)


@pytest.fixture
def relay():
    config = RouterConfig(
        realms=(
            "realm1",
            RealmConfig("guarded", roles=(RoleConfig("anonymous", (Permission("com.public.", "prefix", call=True),)),)),
        )
    )
    running = pytest_twisted.blockon(start_router(config))
    yield running
    pytest_twisted.blockon(running.stop())


def test_values_as_json():
    assert parse_value("2") == 2 and parse_value('"2"') == "2" and parse_value("hello") == "hello"
    assert parse_value('{"$base64": "AAE="}') == b"\x00\x01"
    assert parse_value('[{"$base64": "AA=="}, null]') == [b"\x00", None]
    assert json.loads(to_json({"b": b"\xff", 1: (1, 2)})) == {"b": {"$base64": "/w=="}, "1": [1, 2]}


@pytest_twisted.inlineCallbacks
def test_call_prints_results_as_json(relay):
    session = yield within(connect(relay.url, "realm1"))
    try:
        yield within(session.register("com.test.add", lambda a, b: a + b))
        yield within(session.register("com.test.echo", lambda *args, **kwargs: CallResult(list(args), kwargs)))
        yield within(session.register("com.test.nothing", lambda: None))
        children = [
            cli("call", relay.url, "realm1", "com.test.add", "2", "3"),
            cli(
                "call",
                relay.url,
                "realm1",
                "com.test.echo",
                "hello",
                '{"$base64": "AAE="}',
                "[1, 2.5]",
                "-k",
                "flag=true",
                "--serializer",
                "json",
            ),
            cli(
                "call",
                relay.url,
                "realm1",
                "com.test.echo",
                "hello",
                '{"$base64": "AAE="}',
                "-k",
                "flag=true",
                "--serializer",
                "msgpack",
            ),
            cli("call", relay.url, "realm1", "com.test.nothing"),
        ]
        (add, echo_json, echo_msgpack, nothing) = yield defer.gatherResults([c.result() for c in children])
        assert add == ("5\n", "", 0)
        out, err, code = echo_json
        assert (code, err) == (0, "") and json.loads(out) == {
            "args": ["hello", {"$base64": "AAE="}, [1, 2.5]],
            "kwargs": {"flag": True},
        }
        out, err, code = echo_msgpack
        assert (code, err) == (0, "") and json.loads(out) == {
            "args": ["hello", {"$base64": "AAE="}],
            "kwargs": {"flag": True},
        }
        assert nothing == ("null\n", "", 0)
    finally:
        yield within(session.close())


@pytest_twisted.inlineCallbacks
def test_errors_are_one_line_and_a_nonzero_exit(relay, free_port):
    refused_url = f"ws://127.0.0.1:{free_port}/ws"
    children = {
        "refused": cli("call", refused_url, "realm1", "com.test.x"),
        "no_procedure": cli("call", relay.url, "realm1", "com.test.missing", "1"),
        "not_authorized": cli("call", relay.url, "guarded", "com.private.x"),
        "publish_denied": cli("publish", relay.url, "guarded", "com.public.news", "1"),
        "no_realm": cli("list", relay.url, "nowhere"),
        "usage": cli("call", relay.url),
    }
    results = yield defer.gatherResults([c.result() for c in children.values()])
    outcome = dict(zip(children, results))
    expected = {
        "refused": f"promisifier call: error: cannot connect to {refused_url}: connection refused (is the relay running?)",
        "no_procedure": "promisifier call: error: wamp.error.no_such_procedure: no callee registered for 'com.test.missing'",
        "not_authorized": "promisifier call: error: wamp.error.not_authorized: not authorized to call 'com.private.x'",
        "publish_denied": "promisifier publish: error: wamp.error.not_authorized: not authorized to publish 'com.public.news'",
        "no_realm": "promisifier list: error: the router refused the session: wamp.error.no_such_realm: no realm 'nowhere' on this router",
    }
    for name, line in expected.items():
        out, err, code = outcome[name]
        assert (out, err, code) == ("", line + "\n", 1), name
    out, err, code = outcome["usage"]
    assert code == 2 and "usage:" in err


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
@pytest_twisted.inlineCallbacks
def test_subscribe_prints_one_line_per_event_and_publish(relay, serializer):
    child = cli("subscribe", relay.url, "realm1", "com.test.topic", "--count", "3", "--serializer", serializer)
    session = yield within(connect(relay.url, "realm1"))
    try:
        yield child.wait_for("err", b"subscribed to com.test.topic")
        yield within(session.publish("com.test.topic", 1, b"\x00\xff", acknowledge=True))
        yield within(session.publish("com.test.topic", acknowledge=True, text="é"))
        # the third event comes from the publish command
        published = yield cli("publish", relay.url, "realm1", "com.test.topic", "[1]", "-k", "n=null").result()
        assert published == ("", "", 0)
        out, err, code = yield child.result()
        assert code == 0
        assert [json.loads(line) for line in out.splitlines()] == [
            {"args": [1, {"$base64": "AP8="}], "kwargs": {}},
            {"args": [], "kwargs": {"text": "é"}},
            {"args": [[1]], "kwargs": {"n": None}},
        ]
        assert relay.router.state_counts()["subscriptions"] == 0  # it left
    finally:
        yield within(session.close())


@pytest_twisted.inlineCallbacks
def test_register_echo_then_interrupted(relay):
    counted = cli("register", relay.url, "realm1", "com.test.echo", "--echo", "--count", "1")
    replying = cli("register", relay.url, "realm1", "com.test.fixed", "--reply", '{"ok": true}')
    session = yield within(connect(relay.url, "realm1"))
    try:
        yield counted.wait_for("err", b"registered com.test.echo")
        yield replying.wait_for("err", b"registered com.test.fixed")
        assert (yield within(session.call("com.test.echo", "x", b"\x01", k=2))) == CallResult(["x", b"\x01"], {"k": 2})
        out, err, code = yield counted.result()
        assert code == 0 and json.loads(out) == {"args": ["x", {"$base64": "AQ=="}], "kwargs": {"k": 2}}

        assert (yield within(session.call("com.test.fixed", 1))) == {"ok": True}
        assert (yield within(session.call("com.test.fixed", 2))) == {"ok": True}
        replying.signal("INT")  # runs until interrupted: leaves and exits 0
        out, err, code = yield replying.result()
        assert code == 0 and len(out.splitlines()) == 2
        assert relay.router.state_counts()["registrations"] == 0
    finally:
        yield within(session.close())


@pytest_twisted.inlineCallbacks
def test_list_shows_registrations_and_subscriptions(relay):
    session = yield within(connect(relay.url, "realm1"))
    try:
        yield within(session.register("com.test.add", lambda a, b: a + b))
        yield within(session.register("com.test", lambda: None, match="prefix"))
        yield within(session.subscribe("com.test.topic", lambda *a: None))
        out, err, code = yield cli("list", relay.url, "realm1").result()
        assert (err, code) == ("", 0)
        listed = json.loads(out)
        assert [(r["uri"], r["match"], r["callees"]) for r in listed["registrations"]] == [
            ("com.test", "prefix", 1),
            ("com.test.add", "exact", 1),
        ]
        assert [(s["uri"], s["subscribers"]) for s in listed["subscriptions"]] == [("com.test.topic", 1)]
    finally:
        yield within(session.close())


# -- the examples ------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_example_client(relay):
    out, err, code = yield spawn(
        "examples/client.py", "--url", relay.url, "--rounds", "2", "--interval", "0.01"
    ).result()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("joined realm realm1 as session ")
    assert "com.example.client.add(1, 1) = 2" in lines and "com.example.client.add(2, 2) = 4" in lines
    assert "tick 1 received" in lines


@pytest_twisted.inlineCallbacks
def test_example_embedded_serves_a_page_and_the_relay_on_one_port():
    child = spawn("examples/embedded.py", "0")
    try:
        yield child.wait_for("out", b"/ws\n")
        port = int(child.out.decode().split("http://127.0.0.1:", 1)[1].split("/", 1)[0])
        response = yield within(Agent(reactor).request(b"GET", f"http://127.0.0.1:{port}/".encode()))
        assert b"Hello from promisifier" in (yield within(body_of(response)))
        session = yield within(connect(f"ws://127.0.0.1:{port}/ws", "realm1"))
        assert (yield within(session.call("com.example.add", 2, 3))) == 5
        yield within(session.close())
    finally:
        if not child.ended.called:
            child.signal("INT")
        out, err, code = yield child.result()
    assert code == 0, err


@pytest.mark.parametrize("serializer", ["json", "cbor"])
@pytest_twisted.inlineCallbacks
def test_call_stdin_lines_streams_each_line_as_it_is_read(relay, serializer):
    session = yield within(connect(relay.url, "realm1"))
    seen: list = []

    async def collect(chunks):
        async for chunk in chunks:
            seen.append(chunk)
        return seen

    try:
        yield within(session.register("com.test.lines", collect, stream_input=True))
        child = cli("call", relay.url, "realm1", "com.test.lines", "--stdin-lines", "--serializer", serializer)
        child.transport.write(b"first line\n")
        yield until(lambda: seen == ["first line"])  # arrived while stdin is still open
        child.transport.write(b'42\n{"k": [1]}\n')
        child.transport.closeStdin()
        out, err, code = yield child.result()
        assert (code, err) == (0, "")
        assert json.loads(out) == ["first line", 42, {"k": [1]}]
    finally:
        yield within(session.close())
