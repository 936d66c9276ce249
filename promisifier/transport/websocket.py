"""WAMP over WebSocket: server and client protocols built on autobahn's WebSocket layer.

The protocols here speak plain RFC 6455 WebSocket (autobahn's ``WebSocketServerProtocol``
and ``WebSocketClientProtocol``, not its WAMP classes). For each frame they decode the
payload with the negotiated serializer, check it with
:func:`promisifier.wire.check_message`, and pass the message list to a *handler*:

* a frame that does not decode closes the connection with 1007 (invalid payload);
* a frame of the wrong kind (binary for JSON, text for msgpack) closes it with 1003;
* a message that decodes but breaks the protocol goes to ``handler.on_protocol_error``,
  which answers with ABORT and then closes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from autobahn.websocket.protocol import FrameHeader
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest, ConnectionResponse
from twisted.logger import Logger

from promisifier.transport.autobahn_internals import (
    OptionsOnProtocolClass,
    can_read_frames_directly,
    can_write_frames_directly,
    client_frame,
    release_handshake_state,
    server_frame_header,
)
from promisifier.transport.closing import CloseCode, truncate_reason
from promisifier.transport.flow import OutgoingBuffer
from promisifier.transport.limits import (
    DEFAULT_KEEPALIVE_INTERVAL,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_OUTGOING_BUFFER,
    DEFAULT_OPEN_HANDSHAKE_TIMEOUT,
    check_slow_consumer,
)
from promisifier.transport.proxies import TrustedProxies
from promisifier.transport.stats import PROTOCOL_ERROR_CODES, ConnectionStats, handler_log_fields
from promisifier.transport.tls_errors import tls_failure
from promisifier.transport.turn_writer import TurnWriter, turn_writer
from promisifier.transport.websocket_reader import Close, Event, Failure, FrameReader, Message, Ping
from promisifier.wire import SERIALIZERS, DecodeError, ProtocolError, check_message
from promisifier.wire.serializers import Serializer

log = Logger(namespace="promisifier.transport")


def _set_flow_options(factory: object, max_outgoing_buffer: int, slow_consumer: str) -> None:
    factory.max_outgoing_buffer = max_outgoing_buffer  # type: ignore[attr-defined]
    factory.slow_consumer = check_slow_consumer(slow_consumer)  # type: ignore[attr-defined]


_connection_ids = itertools.count(1)


class MessageHandler(Protocol):
    """What a connection drives: the WAMP session on top of it (router's or client's)."""

    def on_message(self, message: list) -> None:
        """A received message that passed :func:`check_message`."""

    def on_protocol_error(self, error: ProtocolError) -> None:
        """A received message decoded but broke the protocol."""

    def on_close(self, code: int, reason: str) -> None:
        """The connection is gone; ``code`` is 1006 when no close frame arrived."""


def _serializers_by_subprotocol(names: Iterable[str]) -> dict[str, Serializer]:
    chosen: dict[str, Serializer] = {}
    for name in names:
        try:
            serializer = SERIALIZERS[name]
        except KeyError:
            raise ValueError(f"unknown serializer {name!r}; known: {', '.join(SERIALIZERS)}") from None
        chosen[serializer.subprotocol] = serializer
    if not chosen:
        raise ValueError("at least one serializer is needed")
    return chosen


class _WampConnection:
    """The part shared by the server and the client protocol: the peer interface.

    A handler sees the connection through ``send``, ``send_shared``, ``close`` and the
    connection facts (``connection_id``, ``peer``, ``subprotocol``, ``serializer``,
    ``connected``, ``close_code``, ``close_reason``, ``stats``).
    """

    serializer: Serializer | None = None
    handler: MessageHandler | None = None
    _outgoing = OutgoingBuffer(None)
    _max_outgoing = DEFAULT_MAX_OUTGOING_BUFFER
    #: -1 while the connection is open (or not yet closed)
    close_code: int = -1
    close_reason: str = ""
    _ws_open: bool = False
    #: messages are written as single frames here, not through autobahn's sendMessage
    _direct_frames: bool = False
    #: ... and masked (a client's)
    _masked_frames: bool = False
    _direct_limit: int = 0
    #: a server's frames are gathered over a reactor turn and sent at its end (None: each
    #: goes to transport.write)
    _turn_writer: TurnWriter | None = None
    #: where send_shared keeps the frame it built for the connections of this serializer
    _shared_frame_key: str = ""
    #: received frames are read here (None: by autobahn, also before the WebSocket is open)
    _frame_reader: FrameReader | None = None

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open: after the opening handshake, until it closes."""
        return self._ws_open

    @connected.setter
    def connected(self, value: object) -> None:
        # Twisted's BaseProtocol.makeConnection sets `connected = 1` as soon as TCP is up,
        # before the WebSocket handshake: that is not what this fact means, so the write
        # is ignored.
        pass

    def _init_connection(self) -> None:
        self.connection_id = next(_connection_ids)
        self.stats = ConnectionStats()
        self.serializer = None
        self.handler = None
        self.close_code = -1
        self.close_reason = ""
        self._ws_open = False

    # -- facts --------------------------------------------------------------------

    @property
    def subprotocol(self) -> str | None:
        """The negotiated WebSocket subprotocol, e.g. ``"wamp.2.msgpack"``."""
        return self.serializer.subprotocol if self.serializer is not None else None

    @property
    def serializer_name(self) -> str | None:
        """``"json"`` or ``"msgpack"`` once negotiated."""
        return self.serializer.name if self.serializer is not None else None

    # -- sending ------------------------------------------------------------------

    def send(self, message: list) -> None:
        """Encode and send one message. Raises :class:`EncodeError`; no-op unless open."""
        if self.state != self.STATE_OPEN:  # type: ignore[attr-defined]
            return
        serializer = self.serializer
        payload = serializer.encode(message)  # type: ignore[union-attr]
        stats = self.stats
        stats.messages_out += 1
        stats.bytes_out += len(payload)
        self._send_payload(payload, serializer.binary)  # type: ignore[union-attr]

    def send_shared(self, message: list, encoded: dict[str, bytes]) -> bool:
        """Send a message that goes to many peers, encoding it once per serializer.

        ``encoded`` is a cache (serializer name -> payload) shared by all the sends of
        the same message. Raises :class:`EncodeError`. Returns False when the message
        was not sent (the connection is not open, or the peer is a slow consumer).
        """
        if self.state != self.STATE_OPEN:  # type: ignore[attr-defined]
            return False
        if self._outgoing.size() > self._max_outgoing:
            self._slow_consumer()
            return False
        serializer = self.serializer
        name = serializer.name  # type: ignore[union-attr]
        payload = encoded.get(name)
        if payload is None:
            payload = encoded[name] = serializer.encode(message)  # type: ignore[union-attr]
        stats = self.stats
        stats.messages_out += 1
        stats.bytes_out += len(payload)
        writer = self._turn_writer
        if writer is not None and len(payload) <= self._direct_limit and not self.send_queue:  # type: ignore[attr-defined]
            # A server's frame is the same for every connection of this serializer: built once.
            frame = encoded.get(self._shared_frame_key)
            if frame is None:
                frame = server_frame_header(len(payload), serializer.binary) + payload  # type: ignore[union-attr]
                encoded[self._shared_frame_key] = frame
            writer.write(frame)
        else:
            self._send_payload(payload, serializer.binary)  # type: ignore[union-attr]
        return True

    def _send_payload(self, payload: bytes, binary: bool) -> None:
        length = len(payload)
        if self._direct_frames and length <= self._direct_limit and not self.send_queue:  # type: ignore[attr-defined]
            if self._masked_frames:
                self.transport.write(client_frame(payload, binary))  # type: ignore[attr-defined]
            elif self._turn_writer is not None:
                self._turn_writer.write(server_frame_header(length, binary) + payload)
            else:
                self.transport.write(server_frame_header(length, binary) + payload)  # type: ignore[attr-defined]
        else:
            self.sendMessage(payload, binary)  # type: ignore[attr-defined]

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:  # noqa: N802
        # autobahn writes its own frames (close, ping, pong, sendMessage) here: after ours.
        if self._turn_writer is not None:
            self._turn_writer.flush()
        super().sendData(data, sync, chopsize)  # type: ignore[misc]

    def _closeConnection(self, abort: bool = False) -> None:  # noqa: N802 - autobahn API
        # what was written this turn goes out before the connection is closed
        if self._turn_writer is not None:
            self._turn_writer.flush()
        super()._closeConnection(abort)  # type: ignore[misc]

    def _decide_direct_frames(self) -> None:
        # Messages over the payload limit go to sendMessage, which refuses them as before.
        self._direct_frames = can_write_frames_directly(self)
        self._masked_frames = not self.factory.isServer  # type: ignore[attr-defined]
        limit = self.maxMessagePayloadSize  # type: ignore[attr-defined]
        self._direct_limit = limit if limit > 0 else 1 << 62
        if self._direct_frames and not self._masked_frames:
            self._turn_writer = turn_writer(self.transport)  # type: ignore[attr-defined]
            self._shared_frame_key = f"websocket frame {self.serializer.name}"  # type: ignore[union-attr]

    @property
    def congested(self) -> bool:
        """True while more than the factory's ``max_outgoing_buffer`` bytes wait to be sent."""
        return self._outgoing.size() > self._max_outgoing

    @property
    def outgoing_buffered(self) -> int:
        """Bytes written for the peer and not yet handed to the kernel."""
        return self._outgoing.size()

    def _slow_consumer(self) -> None:
        self.stats.dropped_events += 1
        if self.factory.slow_consumer == "disconnect":  # type: ignore[attr-defined]
            self._fail(CloseCode.POLICY_VIOLATION, "slow consumer: too many bytes queued")
        elif self.stats.dropped_events == 1 or self.stats.dropped_events % 1000 == 0:
            log.info(
                "connection {connection_id} from {peer} is a slow consumer: {dropped} events dropped so far",
                connection_id=self.connection_id,
                peer=self.peer,  # type: ignore[attr-defined]
                dropped=self.stats.dropped_events,
                event="slow_consumer",
                **handler_log_fields(self.handler),
            )

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the WebSocket closing handshake with ``code`` and ``reason``.

        Any code RFC 6455 lets an endpoint send is accepted (1000-1003, 1007-1011,
        3000-4999); the reason is shortened to 123 bytes of UTF-8 at a character boundary.
        """
        if self.state != self.STATE_OPEN:  # type: ignore[attr-defined]
            return
        self.sendCloseFrame(  # type: ignore[attr-defined]
            code=int(code), reasonUtf8=truncate_reason(reason).encode("utf-8"), isReply=False
        )

    def drop(self) -> None:
        """Close the TCP connection at once, without a closing handshake."""
        self.dropConnection(abort=True)  # type: ignore[attr-defined]

    # -- receiving ----------------------------------------------------------------

    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802 - autobahn API
        stats = self.stats
        stats.messages_in += 1
        stats.bytes_in += len(payload)
        serializer = self.serializer
        handler = self.handler
        # Frames that arrive after we started closing are dropped: the peer sent them
        # before it saw our close frame, and nothing can be answered any more.
        if serializer is None or handler is None or self.state != self.STATE_OPEN:  # type: ignore[attr-defined]
            return
        if isBinary is not serializer.binary:
            # (a text message is valid UTF-8 here: both readers check it, utf8validateIncoming)
            kind = "binary" if isBinary else "text"
            self._fail(CloseCode.UNSUPPORTED_DATA, f"{kind} frame on a {serializer.subprotocol} connection")
            return
        try:
            message = check_message(serializer.decode(payload))
        except DecodeError as error:
            self._fail(CloseCode.INVALID_PAYLOAD, str(error))
            return
        except ProtocolError as error:
            handler.on_protocol_error(error)
            return
        handler.on_message(message)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        reader = self._frame_reader
        if reader is None:
            super().dataReceived(data)  # type: ignore[misc]
        else:
            self._read_frames(reader, data)

    def consumeData(self) -> None:  # noqa: N802 - autobahn API
        # autobahn calls this for what it has buffered, also right after onOpen for octets
        # that came with the opening handshake: once the reader is on, they are its.
        reader = self._frame_reader
        if reader is None:
            super().consumeData()  # type: ignore[misc]
            return
        data = self.data  # type: ignore[has-type]
        self.data = b""
        if data:
            self._read_frames(reader, data)

    def _decide_frame_reader(self) -> None:
        if not can_read_frames_directly(self):
            return
        self._frame_reader = FrameReader(
            masked=bool(self.factory.isServer),  # type: ignore[attr-defined]
            max_message_size=self.maxMessagePayloadSize,  # type: ignore[attr-defined]
            max_frame_size=self.maxFramePayloadSize,  # type: ignore[attr-defined]
            validate_utf8=self.utf8validateIncoming,  # type: ignore[attr-defined]
        )

    def _read_frames(self, reader: FrameReader, data: bytes) -> None:
        closed = self.STATE_CLOSED  # type: ignore[attr-defined]
        for event in reader.feed(data):
            if self.state == closed:  # type: ignore[attr-defined]
                return
            if type(event) is Message:
                if self.autoPingTimeoutCall and self.autoPingRestartOnAnyTraffic:  # type: ignore[attr-defined]
                    # as autobahn: any data from the peer will do instead of the pong
                    self._cancelAutoPingTimeoutCall()  # type: ignore[attr-defined]
                self.onMessage(event.payload, event.binary)
                if self._listeners is not None:  # type: ignore[attr-defined]
                    self.fire("message", event.payload, is_binary=event.binary)  # type: ignore[attr-defined]
            else:
                self._frame_event(event)

    def _frame_event(self, event: Event) -> None:
        """A control frame or a failure, answered by autobahn as its own reader would."""
        kind = type(event)
        if kind is Failure:
            self._fail_connection(event.code, event.reason)  # type: ignore[attr-defined]
        elif kind is Close:
            reason = event.reason.encode("utf-8") if event.reason else None  # type: ignore[union-attr]
            self.onCloseFrame(event.code, reason)  # type: ignore[attr-defined]
        elif kind is Ping:
            self._onPing(event.payload)  # type: ignore[attr-defined]
        else:
            # A pong: autobahn's keep-alive bookkeeping lives in its control frame handler.
            self.current_frame = FrameHeader(10, True, 0, len(event.payload), None)  # type: ignore[union-attr]
            self.control_frame_data = [event.payload]  # type: ignore[union-attr]
            try:
                self.processControlFrame()  # type: ignore[attr-defined]
            finally:
                self.current_frame = None

    def onMessageEnd(self) -> None:  # noqa: N802 - autobahn API
        # autobahn's onMessageEnd also fires the "message" event of its ObservableMixin for
        # every message, which costs a Deferred made, gathered and given an errback per
        # message. Nothing observes that event on these connections, so the message goes
        # straight to onMessage (same payload, same order); with an observer or timings,
        # autobahn's own path runs.
        if self._listeners is not None or self.trackedTimings:  # type: ignore[attr-defined]
            super().onMessageEnd()  # type: ignore[misc]
            return
        if not self.failedByMe:  # type: ignore[attr-defined]
            self.onMessage(b"".join(self.message_data), self.message_is_binary)  # type: ignore[attr-defined]
        self.message_data = None

    def _fail(self, code: int, reason: str) -> None:
        protocol_error = code in PROTOCOL_ERROR_CODES
        if protocol_error:
            self.stats.protocol_errors += 1
        log.info(
            "closing connection {connection_id} from {peer} with {code}: {reason}",
            connection_id=self.connection_id,
            peer=self.peer,  # type: ignore[attr-defined]
            code=code,
            reason=reason,
            event="protocol_error" if protocol_error else "connection_failed",
            **handler_log_fields(self.handler),
        )
        self.close(code, reason)

    def onOpen(self) -> None:  # noqa: N802 - autobahn API
        self._ws_open = True
        release_handshake_state(self)
        self._decide_direct_frames()
        self._decide_frame_reader()
        self._outgoing = OutgoingBuffer(self.transport)  # type: ignore[attr-defined]
        self._max_outgoing = self.factory.max_outgoing_buffer  # type: ignore[attr-defined]
        self.handler = self.factory.handler_factory(self)  # type: ignore[attr-defined]

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:  # noqa: N802
        was_connected = self._ws_open
        self._ws_open = False
        self.close_code = code if code is not None else CloseCode.ABNORMAL
        self.close_reason = reason or ""
        handler = self.handler
        self.handler = None
        if was_connected and handler is not None:
            handler.on_close(self.close_code, self.close_reason)


class WampServerProtocol(_WampConnection, WebSocketServerProtocol):
    """The relay's side of one WAMP-over-WebSocket connection."""

    factory: WampServerFactory

    def __init__(self) -> None:
        super().__init__()
        self._init_connection()

    def onConnect(self, request: ConnectionRequest) -> str:  # noqa: N802 - autobahn API
        # Behind a trusted reverse proxy, the client is the one X-Forwarded-For names.
        forwarded = self.factory.trusted_proxies.forwarded_peer(
            self.transport.getPeer(), request.headers.get("x-forwarded-for")
        )
        if forwarded is not None:
            self.peer = forwarded
        offered = self.factory.serializers
        # The client lists its subprotocols in its order of preference.
        for subprotocol in request.protocols:
            serializer = offered.get(subprotocol)
            if serializer is not None:
                self.serializer = serializer
                return subprotocol
        raise ConnectionDeny(
            ConnectionDeny.BAD_REQUEST,
            "no supported WAMP subprotocol offered; this server speaks " + ", ".join(offered),
        )


class WampServerFactory(OptionsOnProtocolClass, WebSocketServerFactory):
    """Makes :class:`WampServerProtocol` instances whose messages go to ``handler_factory``.

    ``handler_factory(connection)`` is called once per opened connection and returns the
    :class:`MessageHandler` for it.
    """

    protocol = WampServerProtocol

    def __init__(
        self,
        handler_factory: Callable[[_WampConnection], MessageHandler],
        *,
        serializers: Iterable[str] = ("json", "msgpack", "cbor"),
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        open_handshake_timeout: float = DEFAULT_OPEN_HANDSHAKE_TIMEOUT,
        url: str | None = None,
        reactor: object | None = None,
        trusted_proxies: Iterable[str] = (),
        keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL,
        keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
        max_outgoing_buffer: int = DEFAULT_MAX_OUTGOING_BUFFER,
        slow_consumer: str = "drop",
    ) -> None:
        self.serializers = _serializers_by_subprotocol(serializers)
        super().__init__(url=url, protocols=list(self.serializers), reactor=reactor)
        self.handler_factory = handler_factory
        #: direct peers whose X-Forwarded-For names the client (IPs, CIDR networks, "unix")
        self.trusted_proxies = TrustedProxies(trusted_proxies)
        _set_flow_options(self, max_outgoing_buffer, slow_consumer)
        self.setProtocolOptions(
            maxMessagePayloadSize=max_message_size,
            maxFramePayloadSize=max_message_size,
            openHandshakeTimeout=open_handshake_timeout,
            # Send a close frame with the reason (e.g. 1009) instead of dropping TCP.
            failByDrop=False,
            # Text messages are checked to be UTF-8 as they arrive (RFC 6455 section 8.1:
            # 1007 at the first invalid octet, not after the whole message).
            utf8validateIncoming=True,
            # autobahn's timers round delays down to whole seconds: a 1 s timeout can
            # fire at once and turn a clean close into 1006.
            closeHandshakeTimeout=5,
            # Keep-alive: ping an idle peer every interval; no pong within the timeout
            # drops the connection (and with it the peer's session and pending calls).
            autoPingInterval=keepalive_interval,
            autoPingTimeout=keepalive_timeout,
        )


class WampClientProtocol(_WampConnection, WebSocketClientProtocol):
    """The client's side of one WAMP-over-WebSocket connection."""

    factory: WampClientFactory

    def __init__(self) -> None:
        super().__init__()
        self._init_connection()

    def onConnect(self, response: ConnectionResponse) -> None:  # noqa: N802 - autobahn API
        serializer = self.factory.serializers.get(response.protocol)
        if serializer is None:
            raise ConnectionDeny(
                ConnectionDeny.BAD_REQUEST, f"server chose no WAMP subprotocol we offered ({response.protocol!r})"
            )
        self.serializer = serializer

    def onOpen(self) -> None:  # noqa: N802 - autobahn API
        super().onOpen()
        on_open = self.factory.on_open
        if on_open is not None:
            on_open(self)

    #: why the TLS handshake failed (set when the connection was lost to it)
    tls_failure: str | None = None

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802 - Twisted API
        self.tls_failure = tls_failure(reason)
        super().connectionLost(reason)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:  # noqa: N802
        opened = self._ws_open
        super().onClose(wasClean, code, reason)
        on_failed = self.factory.on_open_failed
        if not opened and on_failed is not None:
            on_failed(self, code, self.tls_failure or reason)


class WampClientFactory(OptionsOnProtocolClass, WebSocketClientFactory):
    """Makes :class:`WampClientProtocol` instances offering ``serializers`` in that order.

    ``on_open(connection)`` is called when the WebSocket is open (before any WAMP
    message), ``on_open_failed(connection, code, reason)`` when it closed before opening.
    """

    protocol = WampClientProtocol

    def __init__(
        self,
        url: str,
        handler_factory: Callable[[_WampConnection], MessageHandler],
        *,
        serializers: Iterable[str] = ("msgpack", "json"),
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        open_handshake_timeout: float = DEFAULT_OPEN_HANDSHAKE_TIMEOUT,
        on_open: Callable[[WampClientProtocol], None] | None = None,
        on_open_failed: Callable[[WampClientProtocol, int | None, str | None], None] | None = None,
        reactor: object | None = None,
        keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL,
        keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
    ) -> None:
        self.serializers = _serializers_by_subprotocol(serializers)
        super().__init__(url=url, protocols=list(self.serializers), reactor=reactor)
        self.handler_factory = handler_factory
        self.on_open = on_open
        self.on_open_failed = on_open_failed
        _set_flow_options(self, DEFAULT_MAX_OUTGOING_BUFFER, "drop")
        self.setProtocolOptions(
            maxMessagePayloadSize=max_message_size,
            maxFramePayloadSize=max_message_size,
            openHandshakeTimeout=open_handshake_timeout,
            failByDrop=False,
            autoPingInterval=keepalive_interval,
            autoPingTimeout=keepalive_timeout,
        )
