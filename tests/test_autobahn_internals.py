"""The shortcuts through autobahn's internals step aside when autobahn lacks what they rely
on: the relay then takes autobahn's public path (options copied per connection, the
handshake kept, ``sendMessage``) and says so once, instead of failing every connection."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import pytest_twisted
from twisted.logger import globalLogPublisher

import promisifier
from promisifier.transport import autobahn_internals
from promisifier.transport.websocket import WampServerProtocol
from tests.support import start_router, until, within

pytestmark = pytest.mark.slow

GONE = "_gone_in_this_autobahn"


@pytest.fixture
def warnings(monkeypatch):
    """The shortcut warnings logged during the test (none reported before it)."""
    monkeypatch.setattr(autobahn_internals, "_reported", set())
    events: list[dict] = []

    def observe(event: dict) -> None:
        if event.get("event") == "autobahn_internals":
            events.append(event)

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


def test_a_missing_attribute_turns_a_shortcut_off_with_one_warning(warnings):
    connection = SimpleNamespace(present=1)
    assert autobahn_internals.available("a shortcut", connection, ["present"])
    assert not autobahn_internals.available("a shortcut", connection, ["present", GONE])
    assert not autobahn_internals.available("a shortcut", connection, [GONE])
    assert [event["missing"] for event in warnings] == [GONE]


def test_without_direct_frame_attributes_a_connection_uses_send_message(warnings):
    connection = SimpleNamespace(factory=SimpleNamespace(isServer=True))
    assert autobahn_internals.can_write_frames_directly(connection) is False
    assert warnings and warnings[0]["shortcut"] == "direct frames"


@pytest_twisted.inlineCallbacks
def test_the_relay_works_through_autobahns_public_path_when_every_shortcut_is_off(warnings, monkeypatch):
    for name in (
        "OPTIONS_ATTRIBUTES",
        "HANDSHAKE_STATE_ATTRIBUTES",
        "DIRECT_FRAME_ATTRIBUTES",
        "READ_FRAME_ATTRIBUTES",
    ):
        monkeypatch.setattr(autobahn_internals, name, (*getattr(autobahn_internals, name), GONE))
    running = yield start_router()
    sessions = []
    try:
        for _ in range(2):
            sessions.append((yield within(promisifier.connect(running.url, "realm1"))))
        received = []
        yield within(sessions[1].subscribe("com.test.topic", received.append))
        answer = yield within(sessions[0].call("wamp.session.count"))
        assert answer == 2
        yield within(sessions[0].publish("com.test.topic", "x" * 70000, acknowledge=True))
        assert (yield until(lambda: len(received) == 1))
        assert received == ["x" * 70000]
        connections = [s.peer for s in running.router.connections if isinstance(s.peer, WampServerProtocol)]
        assert len(connections) == 2
        for connection in connections:
            assert connection._direct_frames is False
            assert connection._frame_reader is None
            # autobahn copied its options onto the connection, and kept the handshake
            assert "autoPingInterval" in vars(connection)
            assert connection.http_request_data != b""
        assert sorted(event["shortcut"] for event in warnings) == [
            "direct frames",
            "protocol options on the class",
            "reading frames directly",
            "releasing the handshake state",
        ]
    finally:
        for session in sessions:
            yield within(session.leave())
        yield running.stop()
