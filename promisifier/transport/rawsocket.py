"""WAMP over RawSocket: length-prefixed frames on a plain byte stream (TCP, TLS, UNIX).

The transport of the WAMP spec's advanced profile ("RawSocket Transport"). The octets on the wire (handshake and frame prefix) are in
:mod:`promisifier.transport.rawsocket_framing`.

:class:`RawSocketServerProtocol` gives a handler the same peer interface as the WebSocket
connection of :mod:`promisifier.transport.websocket` (``send``, ``send_shared``,
``close``, ``drop``, ``stats``, ``serializer_name``, ``peer``, ``connection_id``,
``congested``, ...) and calls the same handler methods (``on_message``,
``on_protocol_error``, ``on_close``), so the router's sessions run over it unchanged.
RawSocket has no close frame: ``close(code, reason)`` sends what is queued and closes the
TCP connection; the code and reason are kept as connection facts and passed to
``handler.on_close``. A frame that does not decode, a frame over the negotiated maximum
length, a reserved frame kind or reserved bits fail the connection at once.

:class:`RawSocketClientProtocol` is the client's side (used by
:func:`promisifier.client.connect` for ``rs://`` / ``rss://`` URLs, the benchmarks and tests).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any

from autobahn.twisted.util import peer2str
from twisted.internet import error as twisted_error
from twisted.internet.protocol import ClientFactory, Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from promisifier.transport.closing import CloseCode
from promisifier.transport.flow import OutgoingBuffer
from promisifier.transport.limits import (
    DEFAULT_KEEPALIVE_INTERVAL,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_OUTGOING_BUFFER,
    DEFAULT_OPEN_HANDSHAKE_TIMEOUT,
    check_slow_consumer,
)
from promisifier.transport.rawsocket_framing import (
    ERROR_CONNECTION_COUNT,
    ERROR_MAX_LENGTH_UNACCEPTABLE,
    ERROR_RESERVED_BITS,
    ERROR_SERIALIZER_UNSUPPORTED,
    HANDSHAKE_ERRORS,
    MAGIC,
    MAX_FRAME_LENGTH,
    MESSAGE,
    PING,
    PONG,
    RESERVED_BITS,
    SERIALIZER_IDS,
    X_BIT,
    exponent_length,
    frame_header,
    handshake_error_octets,
    handshake_octets,
    length_exponent,
    pack_header,
    unpack_header,
)
from promisifier.transport.stats import PROTOCOL_ERROR_CODES, ConnectionStats, handler_log_fields
from promisifier.transport.tcp_keepalive import enable_tcp_keepalive
from promisifier.transport.tls_errors import tls_failure
from promisifier.wire import SERIALIZERS, DecodeError, EncodeError, ProtocolError, check_message
from promisifier.wire.serializers import Serializer

log = Logger(namespace="promisifier.transport")

_connection_ids = itertools.count(1)


class _RawSocketConnection(Protocol):
    """What the server and client protocols share: framing, the peer interface, facts."""

    #: what the connection is, for status pages and logs
    transport_type = "rawsocket"
    serializer: Serializer | None = None
    handler: Any = None
    close_code: int = -1
    close_reason: str = ""
    connected: bool = False
    peer: str = "unknown"
    _outgoing = OutgoingBuffer(None)
    #: 0: waiting for the handshake; 1: open; 2: closing (our close, or failed); 3: closed
    _state = 0
    #: largest payload we accept (what we announced, or less) and may send (the peer's)
    _max_receive = DEFAULT_MAX_MESSAGE_SIZE
    _max_send = MAX_FRAME_LENGTH

    def __init__(self) -> None:
        self.connection_id = next(_connection_ids)
        self.stats = ConnectionStats()
        self._handshake = b""
        #: bytes of an incomplete frame (None: nothing pending)
        self._pending: bytearray | None = None
        #: total bytes the pending frame needs (its header included)
        self._pending_need = 0
        self._timers: list[Any] = []

    # -- facts ----------------------------------------------------------------------

    @property
    def subprotocol(self) -> str | None:
        """The WebSocket subprotocol name of the serializer (``"wamp.2.msgpack"``), for
        code that reports both transports alike."""
        return self.serializer.subprotocol if self.serializer is not None else None

    @property
    def serializer_name(self) -> str | None:
        """``"json"`` or ``"msgpack"`` once the handshake is done."""
        return self.serializer.name if self.serializer is not None else None

    @property
    def max_send_length(self) -> int:
        """The largest message the peer accepts (from its handshake)."""
        return self._max_send

    @property
    def max_receive_length(self) -> int:
        """The largest message accepted from the peer."""
        return self._max_receive

    @property
    def congested(self) -> bool:
        """True while more than the factory's ``max_outgoing_buffer`` bytes wait to be sent."""
        return self._outgoing.size() > self.factory.max_outgoing_buffer

    @property
    def outgoing_buffered(self) -> int:
        """Bytes written for the peer and not yet handed to the kernel."""
        return self._outgoing.size()

    # -- sending --------------------------------------------------------------------

    def send(self, message: list) -> None:
        """Encode and send one message. Raises :class:`EncodeError` (also for a message
        longer than the peer accepts); no-op unless open."""
        if self._state != 1:
            return
        payload = self.serializer.encode(message)  # type: ignore[union-attr]
        length = len(payload)
        if length > self._max_send:
            raise EncodeError(f"message of {length} octets exceeds the peer's limit of {self._max_send}")
        stats = self.stats
        stats.messages_out += 1
        stats.bytes_out += length
        if length < MAX_FRAME_LENGTH:
            header = pack_header(length)
        else:
            header = pack_header(X_BIT)
        if length < 4096:
            self.transport.write(header + payload)  # type: ignore[union-attr]
        else:  # no copy of a large payload
            self.transport.writeSequence((header, payload))  # type: ignore[union-attr]

    def send_shared(self, message: list, encoded: dict[str, bytes]) -> bool:
        """Send a message that goes to many peers, encoding it once per serializer.

        ``encoded`` is a cache (serializer name -> payload) shared by all the sends of the
        same message. Raises :class:`EncodeError`. Returns False when the message was
        not sent (the connection is not open, or the peer is a slow consumer).
        """
        if self._state != 1:
            return False
        if self._outgoing.size() > self.factory.max_outgoing_buffer:
            self._slow_consumer()
            return False
        serializer = self.serializer
        name = serializer.name  # type: ignore[union-attr]
        payload = encoded.get(name)
        if payload is None:
            payload = encoded[name] = serializer.encode(message)  # type: ignore[union-attr]
        length = len(payload)
        if length > self._max_send:
            raise EncodeError(f"message of {length} octets exceeds the peer's limit of {self._max_send}")
        stats = self.stats
        stats.messages_out += 1
        stats.bytes_out += length
        header = pack_header(length) if length < MAX_FRAME_LENGTH else pack_header(X_BIT)
        if length < 4096:
            self.transport.write(header + payload)  # type: ignore[union-attr]
        else:
            self.transport.writeSequence((header, payload))  # type: ignore[union-attr]
        return True

    def ping(self, payload: bytes = b"") -> None:
        """Send a PING; the peer answers with a PONG carrying ``payload``."""
        if self._state == 1:
            self.transport.write(frame_header(PING, len(payload)) + payload)  # type: ignore[union-attr]

    def _slow_consumer(self) -> None:
        stats = self.stats
        stats.dropped_events += 1
        if getattr(self.factory, "slow_consumer", "drop") == "disconnect":
            self._fail(CloseCode.POLICY_VIOLATION, "slow consumer: too many bytes queued")
        elif stats.dropped_events == 1 or stats.dropped_events % 1000 == 0:
            log.info(
                "connection {connection_id} from {peer} is a slow consumer: {dropped} events dropped so far",
                connection_id=self.connection_id,
                peer=self.peer,
                dropped=stats.dropped_events,
                event="slow_consumer",
                **handler_log_fields(self.handler),
            )

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Send what is queued, then close the connection; ``code`` and ``reason`` become
        the connection's close facts (RawSocket has no close frame to carry them)."""
        if self._state >= 2:
            return
        self._state = 2
        self.close_code = int(code)
        self.close_reason = reason
        self.transport.loseConnection()  # type: ignore[union-attr]

    def drop(self) -> None:
        """Close the TCP connection at once, without sending what is queued."""
        if self._state < 2:
            self._state = 2
            self.close_code = CloseCode.ABNORMAL
            self.close_reason = "dropped"
        self.transport.abortConnection()  # type: ignore[union-attr]

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection (the spec's word): log, and close without sending more."""
        if self._state >= 2:
            return
        protocol_error = code in PROTOCOL_ERROR_CODES
        if protocol_error:
            self.stats.protocol_errors += 1
        log.info(
            "closing rawsocket connection {connection_id} from {peer}: {reason}",
            connection_id=self.connection_id,
            peer=self.peer,
            reason=reason,
            code=code,
            event="protocol_error" if protocol_error else "connection_failed",
            **handler_log_fields(self.handler),
        )
        self._state = 2
        self.close_code = int(code)
        self.close_reason = reason
        self.transport.loseConnection()  # type: ignore[union-attr]

    # -- receiving --------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        state = self._state
        if state != 1:
            if state == 0:
                data = self._handshake_received(data)
                if not data or self._state != 1:
                    return
            else:
                return  # closing: what arrives now cannot be answered
        pending = self._pending
        if pending is not None:
            pending += data
            if len(pending) < self._pending_need:
                return
            data = bytes(pending)
            self._pending = None
        end = len(data)
        offset = 0
        max_receive = self._max_receive
        while end - offset >= 4:
            header = unpack_header(data, offset)[0]
            length = header & 0xFFFFFF
            if header > 0xFFFFFF:  # not a plain WAMP message below 16 MiB
                if header & RESERVED_BITS:
                    self._fail(CloseCode.PROTOCOL_ERROR, "reserved bits set in a frame header")
                    return
                if header & X_BIT:
                    if length:
                        self._fail(CloseCode.PROTOCOL_ERROR, "frame length over 16 MiB")
                        return
                    length = MAX_FRAME_LENGTH
            if length > max_receive:
                self._fail(CloseCode.MESSAGE_TOO_BIG, f"frame of {length} octets exceeds the limit of {max_receive}")
                return
            start = offset + 4
            stop = start + length
            if stop > end:
                break
            kind = (header >> 24) & 0x07
            if kind == MESSAGE:
                self._frame_received(data[start:stop])
                if self._state != 1:
                    return
            elif kind == PING:
                self.transport.write(frame_header(PONG, length) + data[start:stop])  # type: ignore[union-attr]
            elif kind == PONG:
                self._pong_received(data[start:stop])
            else:
                self._fail(CloseCode.PROTOCOL_ERROR, f"reserved frame kind {kind}")
                return
            offset = stop
        if offset < end:
            rest = bytearray(data[offset:] if offset else data)
            self._pending = rest
            if len(rest) >= 4:
                header = unpack_header(rest, 0)[0]
                length = header & 0xFFFFFF or (MAX_FRAME_LENGTH if header & X_BIT else 0)
                self._pending_need = 4 + length
            else:
                self._pending_need = 4

    def _frame_received(self, payload: bytes) -> None:
        """One WAMP message arrived: decode, check, hand to the handler."""
        stats = self.stats
        stats.messages_in += 1
        stats.bytes_in += len(payload)
        handler = self.handler
        if handler is None:
            return
        try:
            message = check_message(self.serializer.decode(payload))  # type: ignore[union-attr]
        except DecodeError as error:
            self._fail(CloseCode.INVALID_PAYLOAD, str(error))
            return
        except ProtocolError as error:
            handler.on_protocol_error(error)
            return
        handler.on_message(message)

    def _pong_received(self, payload: bytes) -> None:
        """A PONG arrived (the server's keep-alive watches for these)."""

    def _handshake_received(self, data: bytes) -> bytes:
        """Collect the 4 handshake octets; returns what came after them."""
        needed = 4 - len(self._handshake)
        self._handshake += data[:needed]
        if len(self._handshake) < 4:
            return b""
        self._on_handshake(self._handshake)
        return data[needed:]

    def _on_handshake(self, octets: bytes) -> None:
        raise NotImplementedError

    def _opened(self, serializer: Serializer, max_send: int, max_receive: int) -> None:
        self.serializer = serializer
        self._max_send = max_send
        self._max_receive = max_receive
        self._state = 1
        self.connected = True
        self._outgoing = OutgoingBuffer(self.transport)

    # -- lifetime -----------------------------------------------------------------------

    def connectionMade(self) -> None:  # noqa: N802 - Twisted API
        self.peer = peer2str(self.transport)
        # Frames go out at once, as autobahn does for WebSocket: no Nagle delay for small
        # frames while earlier ones wait for their ACK.
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            try:
                set_no_delay(True)
            except OSError:  # not a TCP socket
                pass
        factory = self.factory  # type: ignore[attr-defined]
        enable_tcp_keepalive(self.transport, factory.keepalive_interval, factory.keepalive_timeout)

    def connectionLost(self, reason: Failure = twisted_error.ConnectionDone) -> None:  # noqa: N802
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        self._timers = []
        was_connected = self.connected
        if self._state < 2:
            # The peer closed, or the network failed: no code of ours to report.
            clean = isinstance(reason, Failure) and reason.check(twisted_error.ConnectionDone) is not None
            self.close_code = CloseCode.NORMAL if clean and was_connected else CloseCode.ABNORMAL
            self.close_reason = "connection closed by peer" if clean else self._lost_reason(reason)
        self._state = 3
        self.connected = False
        self._pending = None
        handler, self.handler = self.handler, None
        if was_connected and handler is not None:
            handler.on_close(self.close_code, self.close_reason)

    def _lost_reason(self, reason: Any) -> str:
        """The close reason of a connection that ended without a clean close."""
        return str(getattr(reason, "value", reason))


class RawSocketServerProtocol(_RawSocketConnection):
    """The relay's side of one WAMP-over-RawSocket connection."""

    factory: RawSocketServerFactory
    #: counted in the factory's open_connections
    _counted = False

    def connectionMade(self) -> None:  # noqa: N802 - Twisted API
        super().connectionMade()
        factory = self.factory
        factory.connections.add(self)
        clock = factory.reactor
        if factory.open_handshake_timeout > 0:
            self._timers.append(clock.callLater(factory.open_handshake_timeout, self._handshake_timeout))

    def _handshake_timeout(self) -> None:
        if self._state == 0:
            self._fail(CloseCode.POLICY_VIOLATION, "no RawSocket handshake in time")

    def _refuse(self, code: int) -> None:
        log.info(
            "rawsocket connection {connection_id} from {peer} refused: {why}",
            connection_id=self.connection_id,
            peer=self.peer,
            why=HANDSHAKE_ERRORS[code],
        )
        self._state = 2
        self.close_code = CloseCode.PROTOCOL_ERROR
        self.close_reason = HANDSHAKE_ERRORS[code]
        self.transport.write(handshake_error_octets(code))  # type: ignore[union-attr]
        self.transport.loseConnection()  # type: ignore[union-attr]

    def _on_handshake(self, octets: bytes) -> None:
        factory = self.factory
        if octets[0] != MAGIC:
            # Not a RawSocket client at all (e.g. HTTP): fail the connection, no reply.
            self._fail(CloseCode.PROTOCOL_ERROR, f"not a RawSocket handshake (first octet 0x{octets[0]:02x})")
            return
        if octets[2] or octets[3]:
            self._refuse(ERROR_RESERVED_BITS)
            return
        serializer_id = octets[1] & 0x0F
        serializer = factory.serializers.get(serializer_id)
        if serializer is None:
            self._refuse(ERROR_SERIALIZER_UNSUPPORTED)
            return
        max_send = exponent_length(octets[1] >> 4)
        if max_send < factory.min_peer_max_length:
            self._refuse(ERROR_MAX_LENGTH_UNACCEPTABLE)
            return
        if factory.max_connections is not None and factory.open_connections >= factory.max_connections:
            self._refuse(ERROR_CONNECTION_COUNT)
            return
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        self._timers = []
        exponent = length_exponent(factory.max_message_size)
        self.transport.write(handshake_octets(serializer_id, exponent))  # type: ignore[union-attr]
        self._opened(serializer, max_send, min(exponent_length(exponent), factory.max_message_size))
        factory.open_connections += 1
        self._counted = True
        self.handler = factory.handler_factory(self)

    def connectionLost(self, reason: Failure = twisted_error.ConnectionDone) -> None:  # noqa: N802
        self.factory.connections.discard(self)
        if self._counted:
            self._counted = False
            self.factory.open_connections -= 1
        _RawSocketConnection.connectionLost(self, reason)


class RawSocketServerFactory(Factory):
    """Makes :class:`RawSocketServerProtocol` instances whose messages go to ``handler_factory``.

    ``handler_factory(connection)`` is called once per connection whose handshake
    succeeded and returns its handler (``on_message``, ``on_protocol_error``,
    ``on_close``). ``max_message_size`` is the largest message accepted (announced as
    the largest power of two not above it, at least 512); a client announcing a receive
    limit below ``min_peer_max_length`` is refused (error 2); beyond ``max_connections``
    open connections new ones are refused (error 4).
    """

    protocol = RawSocketServerProtocol
    noisy = False

    def __init__(
        self,
        handler_factory: Callable[[Any], Any],
        *,
        reactor: Any = None,
        **settings: Any,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.reactor = reactor
        #: every connection, before and after its handshake
        self.connections: set[RawSocketServerProtocol] = set()
        #: connections whose handshake succeeded and that are not closed yet
        self.open_connections = 0
        self.configure(handler_factory, **settings)

    def configure(
        self,
        handler_factory: Callable[[Any], Any],
        *,
        serializers: Iterable[str] = ("json", "msgpack", "cbor"),
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        open_handshake_timeout: float = DEFAULT_OPEN_HANDSHAKE_TIMEOUT,
        min_peer_max_length: int = 512,
        max_connections: int | None = None,
        max_outgoing_buffer: int = DEFAULT_MAX_OUTGOING_BUFFER,
        slow_consumer: str = "drop",
        keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL,
        keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
    ) -> None:
        """Set every setting (the constructor's, or new ones after a reload): connections
        opened from now on get them; open ones keep their handler."""
        chosen: dict[int, Serializer] = {}
        for name in serializers:
            if name not in SERIALIZER_IDS:
                raise ValueError(f"unknown serializer {name!r}; known: {', '.join(SERIALIZER_IDS)}")
            chosen[SERIALIZER_IDS[name]] = SERIALIZERS[name]
        if not chosen:
            raise ValueError("at least one serializer is needed")
        if max_message_size <= 0:
            raise ValueError(f"max_message_size must be > 0, got {max_message_size}")
        self.serializers = chosen
        self.handler_factory = handler_factory
        self.max_message_size = min(max_message_size, MAX_FRAME_LENGTH)
        self.open_handshake_timeout = open_handshake_timeout
        self.min_peer_max_length = min_peer_max_length
        self.max_connections = max_connections
        self.max_outgoing_buffer = max_outgoing_buffer
        self.slow_consumer = check_slow_consumer(slow_consumer)
        #: TCP keep-alive: idle seconds before probing, seconds of probes (0: off)
        self.keepalive_interval = keepalive_interval
        self.keepalive_timeout = keepalive_timeout


class RawSocketClientProtocol(_RawSocketConnection):
    """The client's side: sends the handshake, then carries WAMP messages.

    Once the router accepted, ``factory.handler_factory(connection)`` gives the handler
    and ``factory.on_open(connection)`` is called; a refused handshake calls
    ``factory.on_open_failed(connection, code, reason)`` (the spec's error code, or 0 when
    the reply was not a RawSocket reply or the connection closed before any reply).
    """

    factory: RawSocketClientFactory
    #: ``time.monotonic()`` when data last came from the router
    _last_received = 0.0

    def connectionMade(self) -> None:  # noqa: N802 - Twisted API
        super().connectionMade()
        self._last_received = time.monotonic()
        factory = self.factory
        self.transport.write(handshake_octets(factory.serializer_id, length_exponent(factory.max_message_size)))  # type: ignore[union-attr]

    def _on_handshake(self, octets: bytes) -> None:
        factory = self.factory
        if octets[0] != MAGIC or (octets[1] & 0x0F and octets[1] & 0x0F != factory.serializer_id):
            self._handshake_failed(0, f"not a RawSocket handshake reply: {octets.hex()}")
            return
        if not octets[1] & 0x0F:
            code = octets[1] >> 4
            self._handshake_failed(code, HANDSHAKE_ERRORS.get(code, f"error {code}"))
            return
        exponent = length_exponent(factory.max_message_size)
        self._opened(
            SERIALIZERS[factory.serializer_name],
            exponent_length(octets[1] >> 4),
            min(exponent_length(exponent), factory.max_message_size),
        )
        self.handler = factory.handler_factory(self)
        if factory.on_open is not None:
            factory.on_open(self)

    def _handshake_failed(self, code: int, reason: str) -> None:
        self._state = 2
        self.close_code = CloseCode.PROTOCOL_ERROR
        self.close_reason = reason
        self._open_failed_reported = True
        self.transport.loseConnection()  # type: ignore[union-attr]
        if self.factory.on_open_failed is not None:
            self.factory.on_open_failed(self, code, reason)

    _open_failed_reported = False

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        self._last_received = time.monotonic()
        _RawSocketConnection.dataReceived(self, data)

    def _lost_reason(self, reason: Any) -> str:
        failed_tls = tls_failure(reason)
        if failed_tls is not None:
            return failed_tls
        # The kernel drops a connection whose peer stopped answering (TCP keep-alive
        # probes, or data unacknowledged for interval + timeout: TCP_USER_TIMEOUT), and
        # Twisted reports it as a plain "connection lost": name the keep-alive when the
        # router has been silent for that long.
        factory = self.factory
        bound = factory.keepalive_interval + factory.keepalive_timeout
        if factory.keepalive_timeout > 0 and time.monotonic() - self._last_received >= 0.9 * bound:
            return (
                f"no answer from the router within the keep-alive timeout ({bound:g} s: keepalive_interval"
                f" {factory.keepalive_interval:g} s + keepalive_timeout {factory.keepalive_timeout:g} s);"
                " the router or the network is gone"
            )
        return super()._lost_reason(reason)

    def connectionLost(self, reason: Failure = twisted_error.ConnectionDone) -> None:  # noqa: N802
        # (not self.connected: Twisted's makeConnection sets that as soon as TCP is up)
        opened = self.serializer is not None
        _RawSocketConnection.connectionLost(self, reason)
        # Closed before the router answered the handshake (or by our drop()): that is a
        # failed opening too, with code 0 (no RawSocket error code).
        if not opened and not self._open_failed_reported:
            self._open_failed_reported = True
            if self.factory.on_open_failed is not None:
                self.factory.on_open_failed(
                    self, 0, self.close_reason or "connection closed before the RawSocket handshake"
                )


class RawSocketClientFactory(ClientFactory):
    """Makes :class:`RawSocketClientProtocol` instances speaking ``serializer``."""

    protocol = RawSocketClientProtocol
    noisy = False

    def __init__(
        self,
        handler_factory: Callable[[Any], Any],
        *,
        serializer: str = "msgpack",
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        on_open: Callable[[RawSocketClientProtocol], None] | None = None,
        on_open_failed: Callable[[RawSocketClientProtocol, int, str], None] | None = None,
        max_outgoing_buffer: int = DEFAULT_MAX_OUTGOING_BUFFER,
        keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL,
        keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
    ) -> None:
        if serializer not in SERIALIZER_IDS:
            raise ValueError(f"unknown serializer {serializer!r}; known: {', '.join(SERIALIZER_IDS)}")
        self.handler_factory = handler_factory
        self.serializer_name = serializer
        self.serializer_id = SERIALIZER_IDS[serializer]
        self.max_message_size = min(max_message_size, MAX_FRAME_LENGTH)
        self.on_open = on_open
        self.on_open_failed = on_open_failed
        self.max_outgoing_buffer = max_outgoing_buffer
        self.slow_consumer = "drop"
        #: TCP keep-alive: idle seconds before probing, seconds of probes (0: off)
        self.keepalive_interval = keepalive_interval
        self.keepalive_timeout = keepalive_timeout
