"""X-Forwarded-For: the session's peer address comes from the header only when the direct
peer is a trusted proxy (RouterConfig.trusted_proxies); otherwise it is the socket's."""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.twisted.wamp import WampWebSocketClientFactory
from autobahn.wamp.types import ComponentConfig
from twisted.internet import reactor
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.endpoints import TCP4ClientEndpoint

from promisifier.router import RouterConfig
from promisifier.transport.proxies import TrustedProxies
from tests.support import RecordingSession, autobahn_serializer, leave_and_wait, start_router, within

pytestmark = pytest.mark.slow


def tcp4(host: str) -> IPv4Address:
    return IPv4Address("TCP", host, 40000)


@pytest.mark.parametrize(
    "trusted, peer, header, expected",
    [
        # the direct peer is trusted: the client the header names
        (["127.0.0.1"], tcp4("127.0.0.1"), "203.0.113.7", "tcp4:203.0.113.7"),
        (["10.0.0.0/8"], tcp4("10.1.2.3"), " 203.0.113.7 ", "tcp4:203.0.113.7"),
        (["::1"], IPv6Address("TCP", "::1", 1), "2001:db8::5", "tcp6:2001:db8::5"),
        (["127.0.0.1"], tcp4("127.0.0.1"), "[2001:db8::5]:4431", "tcp6:2001:db8::5"),
        (["127.0.0.1"], tcp4("127.0.0.1"), "203.0.113.7:5555", "tcp4:203.0.113.7"),
        (["unix"], UNIXAddress("/run/relay.sock"), "203.0.113.7", "tcp4:203.0.113.7"),
        # a chain: trusted proxies are skipped from the right; the first untrusted is the client
        (["127.0.0.1", "10.0.0.0/8"], tcp4("127.0.0.1"), "203.0.113.7, 10.0.0.2", "tcp4:203.0.113.7"),
        # ... so an address the client made up in front of the real one is never believed
        (["127.0.0.1"], tcp4("127.0.0.1"), "198.51.100.1, 203.0.113.7", "tcp4:203.0.113.7"),
        # every address trusted: the left-most one
        (["127.0.0.1", "10.0.0.0/8"], tcp4("127.0.0.1"), "10.0.0.9, 10.0.0.2", "tcp4:10.0.0.9"),
        # the direct peer is not trusted: the socket's address stays
        (["10.0.0.0/8"], tcp4("127.0.0.1"), "203.0.113.7", None),
        ([], tcp4("127.0.0.1"), "203.0.113.7", None),
        (["127.0.0.1"], UNIXAddress("/run/relay.sock"), "203.0.113.7", None),
        # no header, or one that does not parse
        (["127.0.0.1"], tcp4("127.0.0.1"), None, None),
        (["127.0.0.1"], tcp4("127.0.0.1"), "unknown", None),
        (["127.0.0.1"], tcp4("127.0.0.1"), "203.0.113.7, garbage", None),
    ],
)
def test_forwarded_peer(trusted, peer, header, expected):
    assert TrustedProxies(trusted).forwarded_peer(peer, header) == expected


def test_trusted_proxies_reject_what_is_not_an_address():
    with pytest.raises(ValueError):
        TrustedProxies(["10.0.0.300"])


@pytest_twisted.inlineCallbacks
def connect_with_header(url: str, forwarded_for: str | None):
    """An autobahn-python session that sends ``X-Forwarded-For`` in its upgrade request."""
    session = RecordingSession(ComponentConfig(realm="realm1"))
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else None
    factory = WampWebSocketClientFactory(
        lambda: session, url=url, serializers=[autobahn_serializer("json")], headers=headers
    )
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    yield within(TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5).connect(factory))
    yield within(session.joined)
    return session


@pytest_twisted.inlineCallbacks
def own_peer(session) -> str:
    """The session's peer address as the router reports it (meta API)."""
    details = yield within(session.call("wamp.session.get", session.session_id))
    return details["transport"]["peer"]


@pytest.mark.parametrize(
    "trusted, header, expected",
    [
        (("127.0.0.1",), "203.0.113.7", "tcp4:203.0.113.7"),
        (("127.0.0.0/8", "10.0.0.0/8"), "198.51.100.20, 10.9.8.7", "tcp4:198.51.100.20"),
        (("10.0.0.0/8",), "203.0.113.7", None),  # untrusted direct peer: the socket's address
        ((), "203.0.113.7", None),
        (("127.0.0.1",), None, None),
    ],
)
@pytest_twisted.inlineCallbacks
def test_session_peer_through_the_router(trusted, header, expected):
    running = yield start_router(RouterConfig(trusted_proxies=trusted))
    try:
        session = yield connect_with_header(running.url, header)
        peer = yield own_peer(session)
        if expected is None:
            host, port = peer.removeprefix("tcp4:").rsplit(":", 1)
            assert host == "127.0.0.1" and int(port) > 0
        else:
            assert peer == expected
        [router_session] = [s for realm in running.router.realms.values() for s in realm.sessions.values()]
        assert router_session.peer.peer == peer
        yield leave_and_wait(session)
    finally:
        yield running.stop()
