"""Listeners get a listen backlog of DEFAULT_BACKLOG unless their endpoint string names one.

Twisted's default backlog (50) overflowed in the 100,000-session benchmark: the kernel
dropped the final ACK of connections arriving in a burst, and some clients waited for
TCP retransmissions past the relay's 10 s opening-handshake deadline.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer

import promisifier
from promisifier.relay.endpoints import DEFAULT_BACKLOG, with_backlog
from tests.relay_support import relay_config

pytestmark = pytest.mark.slow  # some of these listen on 127.0.0.1


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("tcp:8080", f"tcp:8080:backlog={DEFAULT_BACKLOG}"),
        ("tcp6:8080:interface=\\:\\:1", f"tcp6:8080:interface=\\:\\:1:backlog={DEFAULT_BACKLOG}"),
        ("ssl:8443:privateKey=k.pem", f"ssl:8443:privateKey=k.pem:backlog={DEFAULT_BACKLOG}"),
        ("unix:/run/relay.sock", f"unix:/run/relay.sock:backlog={DEFAULT_BACKLOG}"),
        ("TCP:8080", f"TCP:8080:backlog={DEFAULT_BACKLOG}"),
        ("tcp:8080:backlog=7", "tcp:8080:backlog=7"),
        ("tcp:8080:interface=127.0.0.1:backlog=7", "tcp:8080:interface=127.0.0.1:backlog=7"),
        ("systemd:domain=INET:index=0", "systemd:domain=INET:index=0"),
    ],
)
def test_with_backlog(description: str, expected: str) -> None:
    assert with_backlog(description) == expected


def test_with_backlog_takes_another_default() -> None:
    assert with_backlog("tcp:0", 4096) == "tcp:0:backlog=4096"


@pytest.mark.parametrize(
    ("endpoint", "backlog"),
    [("tcp:0:interface=127.0.0.1", DEFAULT_BACKLOG), ("tcp:0:interface=127.0.0.1:backlog=9", 9)],
)
def test_relay_listener_backlog(relays, endpoint: str, backlog: int) -> None:
    relay = relays(relay_config(f'[[listeners]]\nendpoint = "{endpoint}"\n'))
    assert relay.service.port is not None
    assert relay.service.port.backlog == backlog


def test_relay_unix_listener_backlog(relays, tmp_path) -> None:
    socket = tmp_path / "relay.sock"
    relay = relays(relay_config(f'[[listeners]]\nendpoint = "unix:{socket}"\n'))
    assert relay.service.port is not None
    assert relay.service.port.backlog == DEFAULT_BACKLOG


@pytest_twisted.inlineCallbacks
def test_embedded_listen_backlog():
    router = promisifier.Router()
    port = yield router.listen("tcp:0:interface=127.0.0.1")
    try:
        assert port.backlog == DEFAULT_BACKLOG
    finally:
        yield defer.maybeDeferred(port.stopListening)
