"""A RawSocket peer that vanishes from the network is dropped by TCP keep-alive.

The client runs in a network namespace of its own, joined to this one by a veth pair
(addresses 10.213.N.1 here and 10.213.N.2 there, nothing else routed); it connects to a
relay listening on 10.213.N.1, joins and registers a procedure. Then its address goes
away: no FIN, no RST, the peer is simply gone, as with a host that lost power. With ``keepalive_interval = 1`` and ``keepalive_timeout = 3`` the
relay's kernel probes the idle connection, gets no answer, and closes it within about
4 s; the session and its registration go with it.

Needs root and iproute2 (``ip netns``); skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import serverFromString

from promisifier.embed import Router
from promisifier.router import RouterConfig
from tests.support import until, within

REPO = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.process,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2 for a network namespace"
    ),
]

CLIENT = """
import sys
from twisted.internet import reactor
import promisifier

def joined(session):
    d = session.register("com.test.in_namespace", lambda: "here")
    d.addCallback(lambda _: print("registered", flush=True))
    return d

def failed(failure):
    print("failed", failure.getErrorMessage(), flush=True)
    reactor.stop()

promisifier.connect(sys.argv[1], "realm1").addCallbacks(joined, failed)
reactor.callLater(120, reactor.stop)
reactor.run()
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def namespace():
    """(namespace name, address here, address there); removed afterwards."""
    name = f"pfka{os.getpid()}"
    net = 10 + os.getpid() % 240
    here, there = f"10.213.{net}.1", f"10.213.{net}.2"
    host_end, ns_end = f"{name}h", f"{name}n"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
    _ip("netns", "add", name)
    try:
        _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        _ip("link", "set", ns_end, "netns", name)
        _ip("addr", "add", f"{here}/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        _ip("netns", "exec", name, "ip", "addr", "add", f"{there}/30", "dev", ns_end)
        _ip("netns", "exec", name, "ip", "link", "set", ns_end, "up")
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name, here, ns_end
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", host_end], capture_output=True, timeout=10)


def _line_from(process: subprocess.Popen) -> defer.Deferred:
    from twisted.internet import threads

    return threads.deferToThread(process.stdout.readline)


@pytest_twisted.inlineCallbacks
def test_a_rawsocket_peer_that_vanished_is_dropped_by_tcp_keepalive(namespace):
    name, here, ns_end = namespace
    router = Router(RouterConfig(realms=("realm1",), keepalive_interval=1, keepalive_timeout=3))
    port = yield serverFromString(reactor, f"tcp:0:interface={here}").listen(router.rawsocket_factory())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    client = subprocess.Popen(
        ["ip", "netns", "exec", name, sys.executable, "-c", CLIENT, f"rs://{here}:{port.getHost().port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=env,
    )
    try:
        assert (yield within(_line_from(client), 30)).strip() == "registered"
        assert router.state_counts()["sessions"] == 1
        started = reactor.seconds()
        # The client's address goes away: packets for it still arrive but are dropped
        # without an answer (no ACK, no RST), as for a host that lost power. (Taking the
        # link down instead would make the relay's kernel fail to send its probes, which it
        # counts as local congestion, not as an unanswered probe.)
        _ip("netns", "exec", name, "ip", "addr", "flush", "dev", ns_end)
        assert (yield until(lambda: router.state_counts()["sessions"] == 0, 20, every=0.05)), router.state_counts()
        assert reactor.seconds() - started < 15
        assert router.state_counts()["registrations"] == 0
    finally:
        client.kill()
        client.wait(10)
        yield port.stopListening()
        yield within(router.stop())


@pytest_twisted.inlineCallbacks
def test_a_rawsocket_client_whose_relay_vanished_says_keepalive_timeout(namespace, monkeypatch):
    """The reverse: the relay runs in the namespace and its address goes away; the client
    here (keep-alive 1 s + 3 s) is dropped by its own kernel and says why."""
    from twisted.internet import threads

    from promisifier.client import connect, connection
    from promisifier.transport.rawsocket import RawSocketClientFactory

    name, here, ns_end = namespace
    there = here.rsplit(".", 1)[0] + ".2"
    port = 18000 + os.getpid() % 2000
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    relay = subprocess.Popen(
        ["ip", "netns", "exec", name, sys.executable, "-m", "promisifier", "relay"]
        + ["--endpoint", f"tcp:0:interface={there}", "--rawsocket", f"tcp:{port}:interface={there}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env=env,
    )

    def quick_keepalive(*args, **kwargs):
        return RawSocketClientFactory(*args, keepalive_interval=1, keepalive_timeout=3, **kwargs)

    monkeypatch.setattr(connection, "RawSocketClientFactory", quick_keepalive)
    try:
        while f"serving rs://{there}:{port}" not in (yield within(threads.deferToThread(relay.stdout.readline), 30)):
            pass
        session = yield within(connect(f"rs://{there}:{port}", "realm1"), 30)
        ended = session.closed
        # the relay's address goes away: the client's probes get no answer (no ACK, no RST)
        _ip("netns", "exec", name, "ip", "addr", "flush", "dev", ns_end)
        with pytest.raises(Exception) as raised:  # noqa: B017 - ConnectionClosed, checked below
            yield within(ended, 20)
        assert getattr(raised.value, "code", None) == 1006
        assert "no answer from the router within the keep-alive timeout (4 s" in raised.value.reason
    finally:
        relay.kill()
        relay.wait(10)
