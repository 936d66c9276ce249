"""Every program in examples/ (the ones the README names), run as a child process, so that
they never rot.

One router in this process (127.0.0.1, an ephemeral port) serves them, each example in a
realm of its own so that they can run at the same time; the config example runs against
``python -m promisifier relay --config`` (a copy of examples/relay_auth.toml on port 0),
and the rpc-websockets style server is its own relay. All the examples of this module
start together when its first test runs (they are mostly waiting on the network, and each
is a Python start-up); each test then waits for its own example's outcome. Readiness comes
from the lines the examples print; every wait is bounded.

The browser example's page is tested in headless Chromium by tests/test_browser.py; here
its Python side (examples/browser/drive.py) runs against a Python stand-in for the page.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor
from twisted.python.failure import Failure
from twisted.web.client import Agent

from promisifier import connect
from promisifier.router import RouterConfig
from tests.support import start_router, within

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
#: bound on each wait for a child process (seconds)
WAIT = 20.0
#: bound on one whole example scenario (seconds)
SCENARIO_WAIT = 40.0


# -- child processes --------------------------------------------------------------------------


def copy_of(d: defer.Deferred) -> defer.Deferred:
    """A new Deferred fired with ``d``'s result (``d`` keeps it): the copy may be timed out
    or cancelled without touching ``d``. For Deferreds that do not fail."""
    copy: defer.Deferred = defer.Deferred()

    def pass_on(result: Any) -> Any:
        copy.callback(result)  # ignored when the copy was cancelled meanwhile
        return result

    d.addCallback(pass_on)
    return copy


def child_env() -> dict[str, str]:
    """The environment of the examples: this checkout first on the Python path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class _Body(protocol.Protocol):
    def __init__(self, done: defer.Deferred[bytes]) -> None:
        self.done, self.data = done, b""

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        self.data += data

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802
        self.done.callback(self.data)


def body_of(response: Any) -> defer.Deferred[bytes]:
    """The body of a twisted.web.client response."""
    done: defer.Deferred[bytes] = defer.Deferred()
    response.deliverBody(_Body(done))
    return done


class Example(protocol.ProcessProtocol):
    """A child process: its output, a Deferred per awaited text, and its end."""

    #: every child started, so that the module's teardown can kill what is left
    started: list[Example] = []

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.out = b""
        self.err = b""
        self.code: int | None = None
        self.ended: defer.Deferred[int] = defer.Deferred()
        self._waits: list[tuple[bytes, defer.Deferred[None]]] = []

    @classmethod
    def run(cls, *argv: str) -> Example:
        """Start ``python ARGV...`` in the checkout."""
        child = cls([sys.executable, *argv])
        reactor.spawnProcess(child, sys.executable, child.argv, env=child_env(), path=str(REPO))
        cls.started.append(child)
        return child

    def describe(self) -> str:
        return (
            f"{' '.join(self.argv[1:])} (exit code {self.code})\n"
            f"--- stdout:\n{self.out.decode('utf-8', 'replace')}--- stderr:\n{self.err.decode('utf-8', 'replace')}"
        )

    @property
    def lines(self) -> list[str]:
        return self.out.decode("utf-8").splitlines()

    def outReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        self.out += data
        self._check()

    def errReceived(self, data: bytes) -> None:  # noqa: N802
        self.err += data
        self._check()

    def processEnded(self, reason: Failure) -> None:  # noqa: N802
        code = reason.value.exitCode
        self.code = code if code is not None else -(reason.value.signal or 0)
        waits, self._waits = self._waits, []
        for text, d in waits:
            d.errback(AssertionError(f"{text!r} not printed before the end: {self.describe()}"))
        self.ended.callback(self.code)

    def _check(self) -> None:
        both = self.out + self.err
        for item in list(self._waits):
            if item[0] in both:
                self._waits.remove(item)
                item[1].callback(None)

    def wait_for(self, text: str) -> defer.Deferred[None]:
        """Fires once ``text`` appeared in the output (stdout or stderr)."""
        d: defer.Deferred[None] = defer.Deferred()
        if self.ended.called:
            if text.encode() in self.out + self.err:
                return defer.succeed(None)
            return defer.fail(AssertionError(f"{text!r} not printed before the end: {self.describe()}"))
        self._waits.append((text.encode(), d))
        self._check()

        def timed_out(failure: Failure) -> Failure:
            if failure.check(defer.TimeoutError):
                raise AssertionError(f"{text!r} not printed within {WAIT} s: {self.describe()}")
            return failure

        return within(d, WAIT).addErrback(timed_out)

    @defer.inlineCallbacks
    def finish(self):
        """Wait for the exit; fires with the exit code (fails after WAIT seconds)."""
        try:
            code = yield within(copy_of(self.ended), WAIT)
        except defer.TimeoutError:
            raise AssertionError(f"still running after {WAIT} s: {self.describe()}") from None
        return code

    @defer.inlineCallbacks
    def succeeds(self):
        """Wait for the exit and require code 0; fires with the stdout lines."""
        code = yield self.finish()
        assert code == 0, self.describe()
        return self.lines

    @defer.inlineCallbacks
    def stop(self, signal: str = "TERM"):
        """Signal the child (if it still runs) and wait for its exit code."""
        if not self.ended.called:
            self.transport.signalProcess(signal)
        code = yield self.finish()
        return code

    def kill(self) -> None:
        if not self.ended.called:
            try:
                self.transport.signalProcess("KILL")
            except Exception:  # noqa: BLE001 - already gone
                pass


# -- the examples, each a scenario -------------------------------------------------------------

#: one realm per example on the test's router, so that they may run at the same time
REALMS = ("rpc", "pubsub", "pubsub.two", "progress", "peers", "client", "browser")


class Context:
    """What the scenarios share: the router's URL and a scratch folder."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.url = url
        self.tmp = tmp


SCENARIOS: dict[str, Callable[[Context], defer.Deferred]] = {}


def scenario(fn: Callable[[Context], Any]) -> Callable[[Context], defer.Deferred]:
    """Register ``fn`` (a generator of Deferreds) as the scenario named after it."""
    wrapped = defer.inlineCallbacks(fn)
    SCENARIOS[fn.__name__] = wrapped
    return wrapped


def example(*argv: str) -> Example:
    return Example.run(str(Path("examples", argv[0])), *argv[1:])


@scenario
def rpc(ctx: Context):
    """examples/callee.py (serves until stopped) and examples/caller.py (autobahn-python)."""
    callee = example("callee.py", "--url", ctx.url, "--realm", "rpc")
    try:
        yield callee.wait_for("registered com.example.add")
        caller = example("caller.py", "--url", ctx.url, "--realm", "rpc", "--serializer", "msgpack")
        assert (yield caller.succeeds()) == ["com.example.add(2, 3) = 5"]
    finally:
        code = yield callee.stop("TERM")
    assert code == 0, callee.describe()
    assert "callee: session left" in callee.out.decode(), callee.describe()


@scenario
def pubsub(ctx: Context):
    """examples/pubsub.py: subscriber and publisher in one process."""
    lines = yield example("pubsub.py", "--url", ctx.url, "--realm", "pubsub", "--count", "3").succeeds()
    assert lines[0].startswith("subscriber: session ") and lines[0].endswith(" subscribed to com.example.news")
    assert [line for line in lines if line.startswith("subscriber: received")] == [
        f"subscriber: received 'headline {n}' (#{n})" for n in (1, 2, 3)
    ]
    assert [line.split(" (")[0] for line in lines if line.startswith("publisher:")] == [
        f"publisher: published #{n}" for n in (1, 2, 3)
    ]
    assert lines[-1] == "subscriber: all 3 events received; leaving"


@scenario
def pubsub_in_two_processes(ctx: Context):
    """examples/pubsub.py --role subscriber, then --role publisher."""
    args = ("--url", ctx.url, "--realm", "pubsub.two", "--count", "2")
    subscriber = example("pubsub.py", "--role", "subscriber", *args)
    try:
        yield subscriber.wait_for("subscribed to com.example.news")
        published = yield example("pubsub.py", "--role", "publisher", *args).succeeds()
        assert [line.split(" (")[0] for line in published] == ["publisher: published #1", "publisher: published #2"]
        received = yield subscriber.succeeds()
    finally:
        subscriber.kill()
    assert received[1:] == [
        "subscriber: received 'headline 1' (#1)",
        "subscriber: received 'headline 2' (#2)",
        "subscriber: all 2 events received; leaving",
    ]


@scenario
def progress(ctx: Context):
    """examples/progress.py: progressive results arrive before the final one, in order."""
    lines = yield example(
        "progress.py", "--url", ctx.url, "--realm", "progress", "--count", "3", "--delay", "0.01"
    ).succeeds()
    assert lines == [
        "callee: registered com.example.countdown",
        "progress: 3",
        "progress: 2",
        "progress: 1",
        "result: liftoff",
    ]


@scenario
def peers(ctx: Context):
    """examples/peers.py: the websocket-promisifier façade between two sessions."""
    lines = yield example("peers.py", "--url", ctx.url, "--realm", "peers").succeeds()
    assert lines == [
        "alice offers ['add', 'divide']; bob offers ['event']",
        "bob: alice's add(2, 3) = 5",
        "bob: alice's divide(1, 0) failed: com.example.division_by_zero cannot divide by zero",
        "bob received: ['hello from alice']",
        "alice: bob has no such service: wamp.error.no_such_procedure",
        "alice: 2 requests sent, 2 served",
        "closed (1000)",
    ]


@scenario
def rpc_server_and_client(ctx: Context):
    """examples/rpc_server.py (its own relay, port 0) and examples/rpc_client.py; the server
    exits by itself once its client has come and gone."""
    server = example("rpc_server.py", "--port", "0")
    try:
        yield server.wait_for("rpc server: listening on ws://")
        port = re.search(rb"listening on ws://127\.0\.0\.1:(\d+)/", server.out).group(1).decode()
        client = yield example("rpc_client.py", "--url", f"ws://127.0.0.1:{port}/ws").succeeds()
        served = yield server.succeeds()
    finally:
        server.kill()
    assert client == [
        "rpc client: open (realm realm1)",
        "sum(1, 2, 3) = 6",
        "account() before login: error -32605 (wamp.error.not_authorized)",
        "logged in as ann (role authenticated)",
        "account() = {'user': 'ann', 'balance': 42}",
        "post('hello') = posted",
        "event feed_updated: {'text': 'hello'}",
        "rpc client: closed",
    ]
    roles = [line.rsplit("(", 1)[1] for line in served if " connected (role " in line]
    assert roles == ["role anonymous)", "role authenticated)"], served
    assert sum(" disconnected" in line for line in served) == 2, served
    assert served[-1] == "rpc server: 1 client(s) served; closed"


@scenario
def embedded(ctx: Context):
    """examples/embedded.py: a page and the router on one port (serves until Ctrl-C)."""
    child = example("embedded.py", "0")
    try:
        yield child.wait_for("and WAMP on ws://")
        port = int(re.search(rb"page on http://127\.0\.0\.1:(\d+)/", child.out).group(1))
        response = yield within(Agent(reactor).request(b"GET", f"http://127.0.0.1:{port}/".encode()))
        assert b"Hello from promisifier" in (yield within(body_of(response)))
        session = yield within(connect(f"ws://127.0.0.1:{port}/ws", "realm1"))
        assert (yield within(session.call("com.example.add", 2, 3))) == 5
        yield within(session.leave())
    finally:
        code = yield child.stop("INT")
    assert code == 0, child.describe()


@scenario
def client(ctx: Context):
    """examples/client.py: promisifier.Client registers, subscribes, calls, publishes."""
    lines = yield example(
        "client.py", "--url", ctx.url, "--realm", "client", "--rounds", "2", "--interval", "0.01"
    ).succeeds()
    assert lines[0].startswith("joined realm client as session ")
    assert "com.example.client.add(1, 1) = 2" in lines and "com.example.client.add(2, 2) = 4" in lines
    assert "tick 1 received" in lines


@scenario
def auth_config(ctx: Context):
    """examples/auth_client.py against ``python -m promisifier relay --config
    examples/relay_auth.toml`` (a copy listening on port 0)."""
    text = (EXAMPLES / "relay_auth.toml").read_text()
    assert 'endpoint = "tcp:8080:interface=127.0.0.1"' in text
    config = ctx.tmp / "relay_auth.toml"
    config.write_text(text.replace('"tcp:8080:', '"tcp:0:'))
    relay = Example.run("-m", "promisifier", "relay", "--config", str(config))
    try:
        yield relay.wait_for("promisifier relay serving ws://")
        url = re.search(rb"serving (ws://\S+)", relay.out + relay.err).group(1).decode()
        lines = yield example("auth_client.py", "--url", url).succeeds()
    finally:
        code = yield relay.stop("TERM")
    assert code == 0, relay.describe()
    assert len(lines) == 5, lines
    assert lines[0].startswith("backend joined realm1 as session ")
    assert lines[0].endswith(": role backend, authmethod wampcra")
    assert lines[1].startswith("alice joined realm1 as session ")
    assert lines[1].endswith(": role user, authmethod ticket")
    assert lines[2:] == [
        "alice calls com.example.greet: 'hello, alice'",
        "alice may not register: wamp.error.not_authorized",
        "a wrong ticket is refused: wamp.error.authentication_failed",
    ]


@scenario
def browser_drive(ctx: Context):
    """examples/browser/drive.py, started before the "page" (a Python stand-in here; the
    real page runs in Chromium in tests/test_browser.py): it waits for the procedure."""
    page = yield within(connect(ctx.url, "browser"))
    news: defer.Deferred = defer.Deferred()
    drive = example("browser/drive.py", "--url", ctx.url, "--realm", "browser", "--wait", str(WAIT))
    try:
        yield drive.wait_for("waiting for the browser to register com.browser.sum")
        # as the page does: subscribe first, then register
        yield within(page.subscribe("com.browser.news", lambda text: news.called or news.callback(text)))
        yield within(page.register("com.browser.sum", lambda numbers: sum(numbers)))
        lines = yield drive.succeeds()
        assert (yield within(news)) == "hello from Python"
    finally:
        drive.kill()
        yield within(page.leave())
    assert lines == [
        "waiting for the browser to register com.browser.sum ...",
        "the browser says: com.browser.sum([1, 2, 3, 4.5]) = 10.5",
        "published 'hello from Python' to com.browser.news",
    ]


# -- running them ----------------------------------------------------------------------------


class Runs:
    """Scenarios started at once; :meth:`outcome` fires with one's result (or fails)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._results: dict[str, Any] = {}
        self._waiting: dict[str, list[defer.Deferred]] = {}

    def start(self, name: str) -> None:
        if name in self._waiting or name in self._results:
            return
        self._waiting[name] = []
        d = defer.maybeDeferred(SCENARIOS[name], self.ctx)

        def timed_out(failure: Failure) -> Failure:
            if failure.check(defer.TimeoutError):
                return Failure(AssertionError(f"example scenario {name!r} not done within {SCENARIO_WAIT} s"))
            return failure

        within(d, SCENARIO_WAIT).addErrback(timed_out).addBoth(self._done, name)

    def _done(self, result: Any, name: str) -> None:
        self._results[name] = result
        for waiter in self._waiting.pop(name):
            self._fire(waiter, result)

    @staticmethod
    def _fire(waiter: defer.Deferred, result: Any) -> None:
        if isinstance(result, Failure):
            waiter.errback(result)
        else:
            waiter.callback(result)

    def outcome(self, name: str) -> defer.Deferred:
        self.start(name)
        waiter: defer.Deferred = defer.Deferred()
        if name in self._results:
            self._fire(waiter, self._results[name])
        else:
            self._waiting[name].append(waiter)
        return waiter

    def settle(self) -> defer.Deferred:
        """Fires once every scenario started has ended (each is bounded)."""
        return defer.DeferredList([self.outcome(name) for name in list(self._waiting)], consumeErrors=True)


@pytest.fixture(scope="module")
def examples(request, tmp_path_factory):
    """The router for the examples, and every selected example of this module started at once."""
    running = pytest_twisted.blockon(start_router(RouterConfig(realms=REALMS)))
    runs = Runs(Context(running.url, tmp_path_factory.mktemp("examples")))
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and item.module.__file__ == __file__ and "name" in callspec.params:
            runs.start(callspec.params["name"])
    yield runs
    pytest_twisted.blockon(runs.settle())
    for child in Example.started:
        child.kill()
    pytest_twisted.blockon(
        within(defer.DeferredList([copy_of(child.ended) for child in Example.started], consumeErrors=True), WAIT)
    )
    pytest_twisted.blockon(running.stop())


@pytest.mark.parametrize("name", list(SCENARIOS))
@pytest_twisted.inlineCallbacks
def test_example(examples, name):
    yield examples.outcome(name)
