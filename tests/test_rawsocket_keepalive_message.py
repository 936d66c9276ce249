"""A RawSocket client whose router stopped answering says that the keep-alive timeout
ended the connection (the kernel's TCP keep-alive / TCP_USER_TIMEOUT drops it, and
Twisted only reports "connection lost")."""

from __future__ import annotations

import time

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from promisifier.transport.rawsocket import RawSocketClientFactory


def lost_after(silence: float, reason: Exception) -> tuple[int, str]:
    factory = RawSocketClientFactory(lambda connection: None, keepalive_interval=2.0, keepalive_timeout=1.0)
    protocol = factory.buildProtocol(None)
    protocol.makeConnection(StringTransport())
    protocol._last_received = time.monotonic() - silence
    protocol.connectionLost(Failure(reason))
    return protocol.close_code, protocol.close_reason


def test_silent_router_then_lost_connection_names_the_keepalive_timeout():
    code, reason = lost_after(3.5, ConnectionLost())
    assert code == 1006
    assert reason.startswith("no answer from the router within the keep-alive timeout (3 s: keepalive_interval 2 s")


def test_recent_data_or_a_clean_close_keeps_twisteds_reason():
    assert "keep-alive" not in lost_after(0.5, ConnectionLost())[1]
    assert lost_after(10, ConnectionDone())[1] == "connection closed by peer"
