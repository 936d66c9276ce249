"""The relay's WebSocket connections: what an open one keeps in memory, and the frames
it writes itself.

An idle connection should hold its protocol, its transport and its router session, not
the HTTP machinery that carried the upgrade nor a copy of every protocol option.
"""

from __future__ import annotations

import gc
import weakref

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.web.http import HTTPChannel

import promisifier
from promisifier.embed import Router
from promisifier.router import RouterConfig
from promisifier.transport.autobahn_internals import server_frame_header
from promisifier.transport.websocket import WampServerProtocol
from tests.support import connect_autobahn, leave_and_wait, start_router, within

pytestmark = pytest.mark.slow


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


# -- frames written without autobahn's sendMessage --------------------------------------


def _parse_server_frame(frame: bytes) -> tuple[int, bytes]:
    """(opcode, payload) of one final, unmasked frame, read by RFC 6455 section 5.2."""
    assert frame[0] & 0xF0 == 0x80  # FIN, no RSV bits
    assert frame[1] & 0x80 == 0  # not masked
    length, offset = frame[1] & 0x7F, 2
    if length == 126:
        length, offset = int.from_bytes(frame[2:4], "big"), 4
    elif length == 127:
        length, offset = int.from_bytes(frame[2:10], "big"), 10
    assert len(frame) == offset + length
    return frame[0] & 0x0F, frame[offset:]


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
@pytest.mark.parametrize("binary", [False, True])
def test_server_frame_header_encodes_each_length_form(length, binary):
    payload = bytes(range(256)) * (length // 256) + bytes(length % 256)
    header = server_frame_header(length, binary)
    assert len(header) == (2 if length < 126 else 4 if length < 65536 else 10)
    assert _parse_server_frame(header + payload) == (2 if binary else 1, payload)


@pytest_twisted.inlineCallbacks
def test_autobahn_reads_events_across_every_frame_length_form():
    """EVENTs whose frames take the 7-bit, 16-bit and 64-bit length forms, written by the
    relay's direct frame path, arrive intact and in order at autobahn-python clients: two
    per serializer, so that the second gets the frame built for the first."""
    running = yield start_router()
    subscribers: list = []
    publisher = None
    try:
        sizes = [*range(100, 130), *range(65500, 65540)]
        received: list[list[str]] = []
        all_received = []
        for serializer in ("json", "msgpack", "json", "msgpack"):
            subscriber = yield connect_autobahn(running.url, serializer=serializer)
            subscribers.append(subscriber)
            texts: list[str] = []
            done: defer.Deferred = defer.Deferred()

            def on_event(text: str, texts: list[str] = texts, done: defer.Deferred = done) -> None:
                texts.append(text)
                if len(texts) == len(sizes):
                    done.callback(None)

            received.append(texts)
            all_received.append(done)
            yield within(subscriber.subscribe(on_event, "com.test.frames"))
        connections = _server_connections(running.router)
        assert len(connections) == 4 and all(connection._direct_frames for connection in connections)
        # ... gathered per reactor turn by the turn writer (65 KiB events: partial sends too)
        assert all(connection._turn_writer is not None for connection in connections)
        publisher = yield within(promisifier.connect(running.url, "realm1"))
        sent = ["x" * size for size in sizes]
        for text in sent:
            publisher.publish("com.test.frames", text)
        yield within(defer.gatherResults(all_received))
        assert received == [sent] * 4
    finally:
        if publisher is not None:
            yield within(publisher.leave())
        for subscriber in subscribers:
            yield leave_and_wait(subscriber)
        yield running.stop()


@pytest_twisted.inlineCallbacks
def test_the_client_reads_with_our_reader_and_writes_masked_frames_directly():
    running = yield start_router(RouterConfig(realms=("realm1",)))
    try:
        session = yield within(promisifier.connect(running.url, "realm1"))
        connection = session.connection
        assert connection._frame_reader is not None
        assert connection._direct_frames and connection._masked_frames
        # a call goes out through the direct write and its result comes back through the reader
        assert (yield within(session.call("wamp.session.count"))) == 1
        yield within(session.leave())
    finally:
        yield running.stop()
