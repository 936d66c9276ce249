"""The turn writer over real sockets on 127.0.0.1: what one connection writes during a
reactor turn leaves with one send at its end; what the socket does not take (a partial
write, EAGAIN) goes to Twisted's buffer, in order; a connection that is gone loses its
data the way Twisted's own write path does, and nothing raises.
"""

from __future__ import annotations

import socket
import struct

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport

from promisifier.transport.flow import OutgoingBuffer
from promisifier.transport.turn_writer import turn_writer
from tests.support import until, within

pytestmark = pytest.mark.slow

#: octets of the server's kernel send buffer and the peer's receive buffer (the kernel
#: doubles them and rounds up; small enough that a few hundred KiB do not fit)
SMALL_BUFFER = 8192


class _Server(Protocol):
    def __init__(self) -> None:
        self.made: defer.Deferred = defer.Deferred()
        self.lost: defer.Deferred = defer.Deferred()
        self.reason = None

    def connectionMade(self) -> None:  # noqa: N802 - Twisted API
        self.made.callback(self)

    def connectionLost(self, reason=None) -> None:  # noqa: N802 - Twisted API
        self.reason = reason
        self.lost.callback(None)


@pytest.fixture
def connection():
    """(the server's protocol, its TurnWriter, the peer's raw non-blocking socket)."""
    server = _Server()
    port = reactor.listenTCP(0, Factory.forProtocol(lambda: server), interface="127.0.0.1")
    peer = socket.socket()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    peer.connect(("127.0.0.1", port.getHost().port))
    peer.setblocking(False)
    made = pytest_twisted.blockon(within(server.made))
    writer = turn_writer(made.transport)
    assert writer is not None
    yield server, writer, peer
    peer.close()
    server.transport.abortConnection()
    pytest_twisted.blockon(within(server.lost))
    pytest_twisted.blockon(port.stopListening())


def _numbered(first: int, count: int, size: int = 64) -> list[bytes]:
    """``count`` chunks of ``size`` octets, each starting with its number."""
    return [struct.pack("!I", number) + b"." * (size - 4) for number in range(first, first + count)]


def _received_so_far(peer: socket.socket, into: bytearray) -> int:
    while True:
        try:
            data = peer.recv(1 << 16)
        except BlockingIOError:
            return len(into)
        if not data:
            return len(into)
        into += data


def _read_all(peer: socket.socket, length: int) -> defer.Deferred:
    received = bytearray()

    def done() -> bool:
        return _received_so_far(peer, received) >= length

    return until(done).addCallback(lambda _: bytes(received))


def _writing(transport) -> bool:
    return transport in reactor.getWriters()


@pytest_twisted.inlineCallbacks
def test_the_writes_of_one_turn_leave_together_at_its_end_in_order(connection):
    server, writer, peer = connection
    chunks = _numbered(0, 100)
    for chunk in chunks:
        writer.write(chunk)
    # nothing has left yet, and nothing sits in Twisted's buffer or waits for the reactor
    with pytest.raises(BlockingIOError):
        peer.recv(1)
    assert OutgoingBuffer(server.transport).size() == 0
    assert not _writing(server.transport)
    received = yield _read_all(peer, 6400)
    assert received == b"".join(chunks)
    # sent by the turn writer itself: Twisted's write path was never involved
    assert OutgoingBuffer(server.transport).size() == 0
    assert not _writing(server.transport)


@pytest_twisted.inlineCallbacks
def test_what_the_socket_does_not_take_goes_to_twisteds_buffer_in_order(connection):
    server, writer, peer = connection
    server.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    first = _numbered(0, 8192)  # 512 KiB in one turn: far more than both kernel buffers hold
    for chunk in first:
        writer.write(chunk)
    # the turn ends: a partial send, the rest in Twisted's buffer
    yield until(lambda: OutgoingBuffer(server.transport).size() > 0)
    assert OutgoingBuffer(server.transport).size() < 8192 * 64
    # while Twisted's buffer holds data, a write goes behind it at once
    later = _numbered(8192, 10)
    queued = OutgoingBuffer(server.transport).size()
    for chunk in later:
        writer.write(chunk)
    assert OutgoingBuffer(server.transport).size() == queued + 10 * 64
    received = yield _read_all(peer, (8192 + 10) * 64)
    assert received == b"".join(first + later)
    yield until(lambda: not _writing(server.transport))


@pytest_twisted.inlineCallbacks
def test_a_full_socket_hands_the_turns_data_to_twisted(connection):
    server, writer, peer = connection
    sock = server.transport.socket
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    # fill the kernel's buffers behind Twisted's back, until a send meets EAGAIN
    filler = bytearray()
    while True:
        try:
            sent = sock.send(b"f" * 4096)
        except BlockingIOError:
            break
        filler += b"f" * sent
    chunks = _numbered(0, 10)
    for chunk in chunks:
        writer.write(chunk)
    writer.flush()  # what the turn's end does: the send meets EAGAIN
    assert OutgoingBuffer(server.transport).size() == 10 * 64
    assert _writing(server.transport)
    received = yield _read_all(peer, len(filler) + 10 * 64)
    assert received == bytes(filler) + b"".join(chunks)


@pytest_twisted.inlineCallbacks
def test_a_reset_connection_is_closed_by_twisted_and_later_writes_are_dropped(connection):
    server, writer, peer = connection
    # the peer resets the connection (RST), then the server writes before it noticed
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    writer.write(b"to nobody")
    writer.flush()  # the send fails; Twisted's doWrite meets the same error and closes
    yield within(server.lost)
    assert not server.transport.connected
    left = OutgoingBuffer(server.transport).size()  # (Twisted keeps what it could not send)
    writer.write(b"after the end")  # no error, dropped as transport.write drops it
    writer.flush()
    assert OutgoingBuffer(server.transport).size() == left
    assert writer._pending is None


@pytest_twisted.inlineCallbacks
def test_a_flush_before_the_turn_end_keeps_the_order_with_other_writes(connection):
    server, writer, peer = connection
    writer.write(b"first,")
    writer.flush()  # as the WebSocket connection does before autobahn writes a frame itself
    server.transport.write(b"second,")
    writer.write(b"third")
    received = yield _read_all(peer, len(b"first,second,third"))
    assert received == b"first,second,third"


@pytest_twisted.inlineCallbacks
def test_data_of_a_closing_connection_leaves_before_it_closes(connection):
    server, writer, peer = connection
    writer.write(b"last words")
    writer.flush()
    server.transport.loseConnection()
    yield within(server.lost)
    received = bytearray()
    yield until(lambda: _received_so_far(peer, received) >= 10)
    assert bytes(received) == b"last words"


def test_only_plain_stream_sockets_get_a_turn_writer():
    assert turn_writer(StringTransport()) is None
    assert turn_writer(None) is None
