"""What an open WebSocket connection keeps in the relay's memory.

An idle connection should hold its protocol, its transport and its router session, not
the HTTP machinery that carried the upgrade nor a copy of every protocol option.
"""

from __future__ import annotations

import gc
import weakref

import pytest_twisted
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.web.http import HTTPChannel

import promisifier
from promisifier.router import Router, RouterConfig
from promisifier.transport.websocket import WampServerProtocol
from tests.support import within


@defer.inlineCallbacks
def _listen_recording_channels(router: Router):
    """Listen with ``router.site()``, keeping a weak reference to every HTTP channel."""
    from twisted.internet import reactor

    site = router.site("/ws")
    channels: list[weakref.ref[HTTPChannel]] = []
    build = site.buildProtocol

    def build_and_record(address):
        channel = build(address)
        channels.append(weakref.ref(channel))
        return channel

    site.buildProtocol = build_and_record  # type: ignore[method-assign]
    port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(site)
    return port, channels


def _server_connections(router: Router) -> list[WampServerProtocol]:
    return [session.peer for session in router.connections if isinstance(session.peer, WampServerProtocol)]


@pytest_twisted.inlineCallbacks
def test_the_http_channel_and_request_are_released_after_the_upgrade():
    router = Router(RouterConfig(realms=("realm1",)))
    port, channels = yield _listen_recording_channels(router)
    url = f"ws://127.0.0.1:{port.getHost().port}/ws"
    sessions = []
    try:
        for _ in range(3):
            sessions.append((yield within(promisifier.connect(url, "realm1"))))
        gc.collect()
        assert len(channels) == 3
        assert [ref() for ref in channels] == [None, None, None]
        # the sessions still work over the connections the channels handed over
        assert (yield within(sessions[0].call("wamp.session.count"))) == 3
    finally:
        for session in sessions:
            yield within(session.leave())
        yield port.stopListening()
        yield within(router.stop())


@pytest_twisted.inlineCallbacks
def test_protocol_options_live_on_the_class_and_a_change_reaches_new_connections_only():
    router = Router(RouterConfig(realms=("realm1",)))
    port, _channels = yield _listen_recording_channels(router)
    url = f"ws://127.0.0.1:{port.getHost().port}/ws"
    sessions = []
    try:
        sessions.append((yield within(promisifier.connect(url, "realm1"))))
        (first,) = _server_connections(router)
        copied = [name for name in WampServerProtocol.CONFIG_ATTRS if name in vars(first)]
        assert copied == []
        assert first.autoPingInterval == router.config.keepalive_interval
        # what autobahn keeps of the handshake is gone once the connection is open
        assert first.http_request_data == b""
        assert dict(first.http_headers) == {}

        factory = first.factory
        factory.setProtocolOptions(autoPingInterval=7)
        sessions.append((yield within(promisifier.connect(url, "realm1"))))
        (second,) = [connection for connection in _server_connections(router) if connection is not first]
        assert second.autoPingInterval == 7
        assert first.autoPingInterval == router.config.keepalive_interval
        assert isinstance(second, WampServerProtocol)
        assert (yield within(sessions[1].call("wamp.session.count"))) == 2
    finally:
        for session in sessions:
            yield within(session.leave())
        yield port.stopListening()
        yield within(router.stop())
