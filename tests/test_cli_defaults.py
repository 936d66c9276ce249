"""The command line without traps: URL and realm may be omitted (environment, then
defaults), WAMP-CRA beside tickets, messages that say what to pass, ``--timeout 0``,
``publish --ack``, and ``register`` / ``subscribe`` that outlive a relay restart."""

from __future__ import annotations

import sys

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from promisifier import cli as cli_module
from promisifier.client import connect
from promisifier.embed import Router
from promisifier.router import RouterConfig
from promisifier.router.auth import AuthConfig, Principal
from promisifier.router.router_config import RealmConfig
from tests.support import RunningRouter, start_router, until, within
from tests.test_cli import REPO, Child, child_env

pytestmark = pytest.mark.slow


def cli_with(env: dict[str, str], *args: str) -> Child:
    child = Child()
    argv = [sys.executable, "-m", "promisifier", *args]
    reactor.spawnProcess(child, sys.executable, argv, env={**child_env(), **env}, path=str(REPO))
    return child


def cli(*args: str) -> Child:
    return cli_with({}, *args)


@pytest_twisted.inlineCallbacks
def test_url_and_realm_from_the_environment_or_options():
    running = yield start_router(RouterConfig(realms=("realm1", "other")))
    session = yield within(connect(running.url, "other"))
    try:
        yield within(session.register("com.example.add", lambda a, b: a + b))
        from_env = cli_with(
            {"PROMISIFIER_URL": running.url, "PROMISIFIER_REALM": "other"}, "call", "com.example.add", "2", "3"
        )
        from_options = cli("call", "--url", running.url, "--realm", "other", "com.example.add", "2", "3")
        old_form = cli("call", "--timeout", "5", running.url, "other", "com.example.add", "2", "3")
        results = yield defer.gatherResults([from_env.result(), from_options.result(), old_form.result()])
        assert results == [("5\n", "", 0)] * 3
    finally:
        yield within(session.close())
        yield running.stop()


def test_defaults_without_environment(monkeypatch):
    monkeypatch.delenv("PROMISIFIER_URL", raising=False)
    monkeypatch.delenv("PROMISIFIER_REALM", raising=False)
    parser = cli_module._parser("call", "")
    parser.add_argument("procedure")
    options = cli_module._parse(parser, ["com.example.add"])
    assert (options.url, options.realm, options.procedure) == ("ws://127.0.0.1:8080/ws", "realm1", "com.example.add")
    monkeypatch.setenv("PROMISIFIER_URL", "rs://127.0.0.1:8081")
    parser = cli_module._parser("call", "")
    parser.add_argument("procedure")
    options = cli_module._parse(parser, ["--serializer", "json", "wss://example.org/ws", "r2", "p"])
    assert (options.url, options.realm, options.procedure) == ("wss://example.org/ws", "r2", "p")


@pytest_twisted.inlineCallbacks
def test_wampcra_ticket_and_what_to_pass():
    auth = AuthConfig(
        methods=("ticket", "wampcra"),
        tickets={"alice": Principal("alice", "user", "alice-secret")},
        wampcra={"backend": Principal("backend", "user", "backend-secret", salt="pepper")},
    )
    running = yield start_router(RouterConfig(realms=(RealmConfig("realm1"),), auth=auth))
    url = running.url
    try:
        children = {
            "cra": cli("list", url, "realm1", "--authid", "backend", "--secret", "backend-secret"),
            "ticket": cli("list", url, "realm1", "--authid", "alice", "--ticket", "alice-secret"),
            "ticket_without_authid": cli("list", url, "realm1", "--ticket", "alice-secret"),
            "secret_without_authid": cli("list", url, "realm1", "--secret", "backend-secret"),
            "anonymous": cli("list", url, "realm1"),
        }
        results = dict(zip(children, (yield defer.gatherResults([c.result() for c in children.values()]))))
        assert results["cra"][2] == 0 and results["ticket"][2] == 0, results
        _, err, code = results["ticket_without_authid"]
        assert code == 1 and err.count("\n") == 1
        assert "(--ticket without --authid: pass --authid NAME, the identity the ticket belongs to)" in err
        _, err, code = results["secret_without_authid"]
        assert code == 2 and "--secret needs --authid NAME" in err
        _, err, code = results["anonymous"]
        assert code == 1 and err.count("\n") == 1
        assert err.startswith("promisifier list: error: the router refused the session: wamp.error.no_auth_method")
        assert "pass --authid NAME with --ticket TICKET or --secret SECRET" in err
    finally:
        yield running.stop()


@pytest_twisted.inlineCallbacks
def test_timeout_zero_and_publish_ack():
    running = yield start_router()
    session = yield within(connect(running.url, "realm1"))

    def slow():
        return deferLater(0.2, "done")

    try:
        yield within(session.register("com.example.slow", slow))
        unbounded = cli("call", "--url", running.url, "--timeout", "0", "com.example.slow")
        acked = cli("publish", "--url", running.url, "com.example.news", '"hi"', "--ack")
        silent = cli("publish", "--url", running.url, "com.example.news", '"hi"')
        (slow_result, acked_result, silent_result) = yield defer.gatherResults(
            [unbounded.result(), acked.result(), silent.result()]
        )
        assert slow_result == ('"done"\n', "", 0)
        out, err, code = acked_result
        assert code == 0 and int(out) > 0, (out, err)
        assert silent_result == ("", "", 0)
    finally:
        yield within(session.close())
        yield running.stop()


def deferLater(seconds, value):  # noqa: N802
    from twisted.internet import task

    return task.deferLater(reactor, seconds, lambda: value)


@pytest_twisted.inlineCallbacks
def test_register_outlives_a_relay_restart_unless_once():
    running = yield start_router()
    port, url = running.port_number, running.url
    keeps = cli("register", "--url", url, "com.example.echo")
    once = cli("register", "--url", url, "com.example.once", "--once")
    try:
        yield keeps.wait_for("err", b"registered com.example.echo")
        yield once.wait_for("err", b"registered com.example.once")
        yield running.stop()
        _, err, code = yield once.result()
        assert code == 1 and "the session ended" in err, err
        yield keeps.wait_for("err", b"reconnecting")
        router = Router()
        running = RunningRouter(router, (yield router.listen(f"tcp:{port}:interface=127.0.0.1", "/ws")))
        yield until(lambda: keeps.err.count(b"registered com.example.echo") == 2, 30)
        session = yield within(connect(url, "realm1"))
        assert (yield within(session.call("com.example.echo", "back"))) == "back"
        yield within(session.close())
    finally:
        keeps.signal("TERM")
        _, err, code = yield keeps.result()
        yield running.stop()
    assert code == 0, err
