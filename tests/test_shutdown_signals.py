"""Stopping with calls in flight: the relay says at once how long it waits and for how
many calls, a second SIGTERM or Ctrl-C stops at once, and the grace period is a TOML key
(``[limits] shutdown_grace``) and a command-line option (``--shutdown-grace``)."""

from __future__ import annotations

import signal
import sys

import pytest
import pytest_twisted
from twisted.internet import defer, threads
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python import usage

from promisifier.client import ApplicationError, ConnectionLost, connect
from promisifier.relay.command_line import RelayOptions
from promisifier.relay.relay_config import ConfigError, parse_config
from tests.support import start_router, within

pytestmark = pytest.mark.slow


def test_shutdown_grace_in_toml_and_on_the_command_line():
    assert parse_config({"limits": {"shutdown_grace": 0}}).router.shutdown_grace == 0
    assert parse_config({"limits": {"shutdown_grace": 2.5}}).router.shutdown_grace == 2.5
    with pytest.raises(ConfigError) as raised:
        parse_config({"limits": {"shutdown_grace": -1}})
    assert "limits.shutdown_grace: expected a number of seconds >= 0, got -1" in str(raised.value)
    options = RelayOptions()
    options.parseOptions(["--shutdown-grace", "30"])
    assert options.router_config().shutdown_grace == 30.0
    with pytest.raises(usage.UsageError):
        RelayOptions().parseOptions(["--shutdown-grace", "soon"])


@pytest_twisted.inlineCallbacks
def test_stop_says_what_it_waits_for_and_hurry_ends_the_wait():
    running = yield start_router()
    callee = yield within(connect(running.url, "realm1"))
    caller = yield within(connect(running.url, "realm1"))
    invoked: defer.Deferred = defer.Deferred()

    def stuck():
        invoked.callback(None)
        return defer.Deferred()  # never answers

    yield within(callee.register("com.example.stuck", stuck))
    call = caller.call("com.example.stuck")
    yield within(invoked)
    events: list = []
    globalLogPublisher.addObserver(events.append)
    try:
        yield running.port.stopListening()
        stopped = running.router.stop(grace=300)
    finally:
        globalLogPublisher.removeObserver(events.append)
    said = [formatEvent(e) for e in events if e["log_level"] is LogLevel.info]
    assert "shutdown: waiting up to 300 s for 1 calls in flight (a second signal stops at once)" in said
    running.router.hurry()
    with pytest.raises((ApplicationError, ConnectionLost)):
        yield within(call)
    yield within(stopped)


@pytest.mark.process
@pytest_twisted.inlineCallbacks
def test_second_sigterm_stops_the_relay_at_once(processes, free_port):
    url = f"ws://127.0.0.1:{free_port}/ws"
    relay = processes(
        [
            sys.executable,
            "-m",
            "promisifier",
            "relay",
            "--endpoint",
            f"tcp:{free_port}:interface=127.0.0.1",
            "--shutdown-grace",
            "300",
        ]
    )
    yield threads.deferToThread(relay.wait_for_output, f"serving {url}")
    callee = yield within(connect(url, "realm1"))
    caller = yield within(connect(url, "realm1"))
    invoked: defer.Deferred = defer.Deferred()

    def stuck():
        invoked.callback(None)
        return defer.Deferred()  # never answers

    yield within(callee.register("com.example.stuck", stuck))
    call = caller.call("com.example.stuck")
    call.addErrback(lambda failure: None)
    yield within(invoked)
    relay.popen.send_signal(signal.SIGTERM)
    yield threads.deferToThread(relay.wait_for_output, "waiting up to 300 s for 1 calls in flight")
    relay.popen.send_signal(signal.SIGTERM)
    # well within the 300 s grace period
    code = yield threads.deferToThread(relay.wait, 30)
    assert code == 0, relay.describe()
    assert "second signal, stopping at once" in relay.output
