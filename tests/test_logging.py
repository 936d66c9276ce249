"""Logging: events with the session's fields, the message trace switched on at run time
through ``promisifier.session.trace``, and ``--log-format`` / ``--log-level``."""

from __future__ import annotations

import io
import json
import os
import signal
import urllib.request
from types import SimpleNamespace

import pytest
import pytest_twisted
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel, globalLogPublisher
from twisted.python import usage

from promisifier import ApplicationError
from promisifier.relay import logging as relay_logging
from promisifier.relay.command_line import RelayOptions
from promisifier.router import Router, RouterConfig
from promisifier.router.trace import describe
from promisifier.transport.stats import ConnectionStats
from promisifier.transport.websocket import WampServerProtocol
from promisifier.wire.messages import ABORT, CALL, EVENT, HELLO, PUBLISH, RESULT, YIELD
from tests.raw_support import expect_abort, raw_connect, raw_join
from tests.relay_support import relay_config
from tests.support import within

pytestmark = pytest.mark.slow

SESSION_FIELDS = ("session_id", "realm", "authid", "peer")


@pytest.fixture
def events():
    """Every log event of the promisifier namespaces while the test runs."""
    seen: list[dict] = []

    def observe(event: dict) -> None:
        if str(event.get("log_namespace", "")).startswith("promisifier"):
            seen.append(event)

    globalLogPublisher.addObserver(observe)
    yield seen
    globalLogPublisher.removeObserver(observe)


def of_kind(events: list[dict], kind: str, **fields) -> list[dict]:
    return [e for e in events if e.get("event") == kind and all(e.get(k) == v for k, v in fields.items())]


class FakePeer:
    """A peer that keeps what the router sends it."""

    serializer_name = None
    congested = False

    def __init__(self, number: int) -> None:
        self.connection_id = number
        self.peer = f"test:{number}"
        self.stats = ConnectionStats()
        self.sent: list[list] = []

    def send(self, message: list) -> None:
        self.sent.append(message)

    def send_shared(self, message: list, encoded: dict) -> bool:
        self.sent.append(message)
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.sent.append(["closed", code, reason])


def local_sessions(router: Router, clock: Clock, count: int) -> list:
    """``count`` router sessions on fake peers, joined to realm1 (message by message)."""
    roles = {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}
    sessions = []
    for number in range(count):
        session = router.new_session(FakePeer(number))
        session.on_message([HELLO, "realm1", {"roles": roles}])
        assert session.peer.sent[-1][0] == 2, session.peer.sent  # WELCOME
        sessions.append(session)
    return sessions


# -- events with fields ----------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_join_leave_abort_auth_failure_and_protocol_error_carry_the_session_fields(relays, events):
    relay = relays(
        relay_config(
            '[listeners.auth]\nmethods = ["anonymous", "ticket"]\n'
            '[listeners.auth.ticket.principals.alice]\nticket = "right"\nrole = "anonymous"\n'
        )
    )
    session = yield relay.connect()
    [join] = of_kind(events, "join", session_id=session.session_id)
    assert join["realm"] == "realm1" and join["authid"] == f"anonymous-{session.session_id}"
    assert join["peer"].startswith("tcp4:127.0.0.1:") and join["authrole"] == "anonymous"
    yield within(session.leave())
    [leave] = of_kind(events, "leave", session_id=session.session_id)
    assert all(leave[field] == join[field] for field in SESSION_FIELDS)

    with pytest.raises(Exception):
        yield within(relay.connect(authid="alice", credentials={"ticket": "wrong"}, authmethods=["ticket"]))
    [failure] = of_kind(events, "auth_failure")
    assert (failure["realm"], failure["authid"], failure["reason"]) == (
        "realm1",
        "alice",
        "wamp.error.authentication_failed",
    )
    assert failure["peer"].startswith("tcp4:127.0.0.1:") and "session_id" in failure

    raw = yield raw_join(relay.url)
    raw.send([HELLO, "realm1", {"roles": {"caller": {}}}])
    yield expect_abort(raw, "wamp.error.protocol_violation")
    [violation] = of_kind(events, "protocol_error")
    assert isinstance(violation["session_id"], int) and violation["realm"] == "realm1"
    assert violation["authid"].startswith("anonymous-") and violation["peer"].startswith("tcp4:127.0.0.1:")
    assert "HELLO" in violation["text"]
    assert not of_kind(events, "abort", session_id=violation["session_id"])  # one line per abort

    quitter = yield raw_join(relay.url)
    quitter.send([ABORT, {}, "com.example.bye"])
    yield within(quitter.closed)
    [aborted] = of_kind(events, "abort", by="client")
    assert aborted["reason"] == "com.example.bye" and aborted["realm"] == "realm1"
    assert isinstance(aborted["session_id"], int) and aborted["authid"].startswith("anonymous-")

    lost = yield raw_connect(relay.url)
    lost.send([HELLO, "nowhere", {"roles": {"caller": {}}}])
    yield expect_abort(lost, "wamp.error.no_such_realm", close_code=None)
    [refused] = of_kind(events, "abort", reason="wamp.error.no_such_realm")
    assert refused["realm"] == "nowhere" and refused["by"] == "router" and refused["peer"].startswith("tcp4:")


def test_a_slow_consumer_drop_is_logged_with_the_session_fields(events):
    connection = WampServerProtocol()
    connection.factory = SimpleNamespace(slow_consumer="drop")
    connection.peer = "tcp4:192.0.2.1:5000"
    connection.handler = SimpleNamespace(
        log_fields=lambda: {"session_id": 42, "realm": "realm1", "authid": "bob", "peer": "ignored"}
    )
    connection._slow_consumer()
    [drop] = of_kind(events, "slow_consumer")
    assert (drop["session_id"], drop["realm"], drop["authid"], drop["peer"]) == (
        42,
        "realm1",
        "bob",
        "tcp4:192.0.2.1:5000",
    )
    assert drop["dropped"] == 1 and connection.stats.dropped_events == 1


# -- the message trace ---------------------------------------------------------------------------


def test_describe_shows_sizes_unless_payloads_are_asked_for_and_never_secrets():
    call = [CALL, 7, {"timeout": 1000}, "com.example.add", [1, "secret"], {"token": "xyz"}]
    text = describe(call)
    assert text.startswith("CALL 7 {'timeout': 1000} 'com.example.add' args=2 items/")
    assert "kwargs=1 key/" in text and "secret" not in text and "xyz" not in text
    assert "secret" in describe(call, payloads=True) and "xyz" in describe(call, payloads=True)
    assert describe([RESULT, 7, {}]) == "RESULT 7 {}"
    assert "args=0 items/1 B" in describe([YIELD, 1, {}, []])
    assert describe([5, "s3cr3t-signature", {}]) == "AUTHENTICATE (signature and extra not shown)"
    assert "x" * 2000 not in describe([EVENT, 1, 2, {}, ["x" * 5000]], payloads=True)


@pytest_twisted.inlineCallbacks
def test_the_trace_is_switched_on_and_off_at_run_time_by_a_meta_procedure(relays, events):
    relay = relays()
    operator = yield relay.connect()
    callee = yield relay.connect()
    yield within(callee.register("com.example.echo", lambda *args: list(args)))

    def traced() -> list[dict]:
        return [e for e in events if e.get("event") == "trace" and e.get("session_id") == callee.session_id]

    assert (yield within(operator.call("com.example.echo", "before"))) == ["before"]
    assert traced() == []

    answer = yield within(operator.call("promisifier.session.trace", callee.session_id, True))
    assert answer == {"session": callee.session_id, "trace": True, "payloads": False}
    assert (yield within(operator.call("com.example.echo", "top-secret", 12345))) == ["top-secret", 12345]
    lines = traced()
    assert [(e["direction"], e["kind"]) for e in lines] == [("out", "INVOCATION"), ("in", "YIELD")]
    assert all(e["realm"] == "realm1" and e["authid"] == callee.authid and e["peer"].startswith("tcp4:") for e in lines)
    assert "args=2 items/" in lines[0]["message"] and "top-secret" not in lines[0]["message"]
    status = yield relay.get_json()
    assert {s["id"]: s["traced"] for s in status["realms"][0]["sessions"]} == {
        operator.session_id: False,
        callee.session_id: True,
    }

    yield within(operator.call("promisifier.session.trace", callee.session_id, True, payloads=True))
    yield within(operator.call("com.example.echo", "shown"))
    assert "'shown'" in traced()[-2]["message"]

    yield within(operator.call("promisifier.session.trace", callee.session_id, False))
    count = len(traced())
    yield within(operator.call("com.example.echo", "after"))
    assert len(traced()) == count
    assert "on_message" not in vars(relay.router.realms["realm1"].sessions[callee.session_id])

    with pytest.raises(ApplicationError) as no_such:
        yield within(operator.call("promisifier.session.trace", 1, True))
    assert no_such.value.error == "wamp.error.no_such_session"
    with pytest.raises(ApplicationError) as bad:
        yield within(operator.call("promisifier.session.trace", callee.session_id, "yes"))
    assert bad.value.error == "wamp.error.invalid_argument"
    with pytest.raises(ApplicationError) as taken:
        yield within(callee.register("promisifier.session.trace", lambda *a: None))
    assert taken.value.error == "wamp.error.invalid_uri"
    # nor can a pattern that would cover it
    for pattern, match in (("promisifier.session", "prefix"), ("promisifier..trace", "wildcard")):
        with pytest.raises(ApplicationError) as covered:
            yield within(callee.register(pattern, lambda *a: None, match=match))
        assert covered.value.error == "wamp.error.invalid_uri"
    yield within(callee.register("promisifier.other", lambda *a: "other", match="prefix"))
    assert (yield within(operator.call("promisifier.other.thing"))) == "other"


def test_the_trace_follows_events_and_ends_when_the_session_leaves(events):
    clock = Clock()
    router = Router(RouterConfig(), reactor=clock)
    publisher, subscriber = local_sessions(router, clock, 2)
    meta = router.realms["realm1"].meta
    meta.set_trace(subscriber, True)
    subscriber.on_message([32, 1, {}, "com.example.topic"])
    publisher.on_message([PUBLISH, 1, {}, "com.example.topic", [1, 2, 3]])
    kinds = [(e["direction"], e["kind"]) for e in events if e.get("event") == "trace"]
    assert kinds == [("in", "SUBSCRIBE"), ("out", "SUBSCRIBED"), ("out", "EVENT")]
    subscriber.on_message([6, {}, "wamp.close.normal"])  # GOODBYE
    assert meta.traces == {}
    assert "send_shared" not in vars(subscriber.peer) and "on_message" not in vars(subscriber)


# -- output formats and levels --------------------------------------------------------------


def test_json_lines_carry_the_event_fields_and_the_level_filter_applies():
    out = io.StringIO()
    observer = relay_logging.make_observer("json", "info", out)
    log = Logger(namespace="promisifier.router", observer=observer)
    log.info("session {session_id} joined realm {realm}", session_id=7, realm="r", authid="a", peer="p", event="join")
    log.debug("not shown")
    log.warn("odd {thing}", thing=object())
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    first = lines[0]
    assert first["text"] == "session 7 joined realm r"
    assert (first["level"], first["namespace"], first["event"]) == ("info", "promisifier.router", "join")
    assert (first["session_id"], first["realm"], first["authid"], first["peer"]) == (7, "r", "a", "p")
    assert first["time"].endswith("+00:00")
    assert lines[1]["level"] == "warn" and lines[1]["thing"].startswith("<object object")

    text = io.StringIO()
    observer = relay_logging.make_observer("text", "warn", text)
    log = Logger(namespace="promisifier.router", observer=observer)
    log.info("quiet")
    log.error("loud {n}", n=1)
    assert "quiet" not in text.getvalue() and "[promisifier.router#error] loud 1" in text.getvalue()
    assert relay_logging.parse_level("WARNING") is LogLevel.warn
    with pytest.raises(ValueError):
        relay_logging.parse_level("loud")


@pytest.mark.parametrize(
    "argv, error",
    [
        (["--log-format", "xml"], "--log-format must be one of text, json"),
        (["--log-level", "loud"], "--log-level: unknown log level 'loud'"),
    ],
)
def test_bad_log_options_are_usage_errors(argv, error):
    with pytest.raises(usage.UsageError, match=error):
        RelayOptions().parseOptions(argv)


def test_under_twistd_the_options_become_its_logger(tmp_path):
    from twisted.python.reflect import namedAny
    from twisted.scripts.twistd import ServerOptions

    parent = ServerOptions()
    parent["logfile"] = str(tmp_path / "relay.log")
    options = RelayOptions()
    options.parent = parent
    options.parseOptions(["--log-format", "json", "--log-level", "warn"])
    assert parent["logger"] == relay_logging.TWISTD_LOGGER
    observer = namedAny(parent["logger"])()  # as twistd's postOptions and AppLogger do
    log = Logger(namespace="promisifier.relay", observer=observer)
    log.info("not logged")
    log.warn("relay {what}", what="warned", event="test")
    [line] = (tmp_path / "relay.log").read_text().splitlines()
    assert json.loads(line)["text"] == "relay warned" and json.loads(line)["event"] == "test"

    taken = ServerOptions()
    taken["logger"] = "twisted.logger.textFileLogObserver"
    options = RelayOptions()
    options.parent = taken
    with pytest.raises(usage.UsageError, match="cannot be combined with twistd's --logger"):
        options.parseOptions(["--log-format", "json"])
    untouched = ServerOptions()
    options = RelayOptions()
    options.parent = untouched
    options.parseOptions([])
    assert untouched["logger"] is None  # without the options twistd logs as it always does


def twistd_sees_the_plugin() -> bool:
    from twisted.application.service import IServiceMaker
    from twisted.plugin import getPlugins

    return any(plugin.tapname == "promisifier-relay" for plugin in getPlugins(IServiceMaker))


@pytest.mark.process
@pytest.mark.parametrize("command", ["python -m promisifier", "twistd"])
def test_the_relay_process_logs_json_lines(command, processes):
    from tests.test_relay_process import RELAY_COMMANDS, TWISTD

    if command == "twistd" and not (TWISTD.exists() and twistd_sees_the_plugin()) and not os.environ.get("CI"):
        pytest.skip("twistd does not see the promisifier-relay plugin here (pip install -e . installs it)")
    relay = processes(
        [
            *RELAY_COMMANDS[command],
            "--endpoint",
            "tcp:0:interface=127.0.0.1",
            "--log-format",
            "json",
            "--log-level",
            "debug",
        ]
    )
    relay.wait_for_output("promisifier relay serving")
    [serving] = [json.loads(line) for line in relay.lines if "promisifier relay serving" in line]
    assert serving["namespace"] == "promisifier.relay" and serving["level"] == "info"
    assert serving["url"].startswith("ws://127.0.0.1:") and serving["url"].endswith("/ws")
    # /health answers once the reactor runs (and handles SIGTERM)
    health = serving["url"].replace("ws://", "http://").removesuffix("/ws") + "/health"
    with urllib.request.urlopen(health, timeout=10) as response:
        assert response.status == 200 and json.loads(response.read())["status"] == "serving"
    assert relay.stop(signal.SIGTERM) == 0, relay.describe()
    assert all(line.startswith("{") for line in relay.lines if line.strip()), relay.output
