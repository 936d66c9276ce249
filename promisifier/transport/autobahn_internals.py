"""Shortcuts through autobahn's internals: work its WebSocket layer does per connection and
per frame that the relay skips.

* :class:`OptionsOnProtocolClass`: the protocol options live on a per-factory protocol
  class instead of being copied onto every connection;
* :func:`release_handshake_state`: what autobahn keeps of the opening handshake is let go
  once the WebSocket is open;
* :func:`can_write_frames_directly`, :func:`server_frame_header` and :func:`client_frame`:
  a plain data frame is written in one go instead of through ``sendMessage`` (a
  client's masked with our masker, not a CFFI masker object per frame);
* :func:`can_read_frames_directly`: received frames are read by our own frame reader
  instead of autobahn's per-frame state machine.

Each saves memory per idle connection or CPU per message (figures in
``benchmarks/RESULTS.md``) and keeps autobahn's behaviour on the wire.

Each relies on attributes that are not autobahn's public API (``setup.cfg`` pins the
autobahn versions they were tested with). Each checks first that what it relies on is
there; if something is missing (another autobahn), it is skipped, autobahn's own public
path is used (options copied per connection, the handshake kept, ``sendMessage``), and a
warning names what is missing, once per process.
"""

from __future__ import annotations

import random
import struct
import types
from collections.abc import Iterable
from typing import Any

from autobahn.twisted.websocket import WebSocketClientProtocol, WebSocketServerProtocol
from twisted.logger import Logger

from promisifier.transport.masking import mask

log = Logger(namespace="promisifier.transport")

#: what :class:`OptionsOnProtocolClass` reads of autobahn's protocol classes
OPTIONS_ATTRIBUTES = ("CONFIG_ATTRS",)
#: what :func:`release_handshake_state` replaces on an open connection
HANDSHAKE_STATE_ATTRIBUTES = ("http_request_data", "http_response_data", "http_headers", "http_status_line")
#: what the direct frame path reads of an open connection (see :func:`can_write_frames_directly`)
DIRECT_FRAME_ATTRIBUTES = (
    "_perMessageCompress",
    "autoFragmentSize",
    "logFrames",
    "logOctets",
    "trackedTimings",
    "send_queue",
    "maxMessagePayloadSize",
)

#: what our own frame reader needs to know of an open connection (see :func:`can_read_frames_directly`)
READ_FRAME_ATTRIBUTES = (
    "applyMask",
    "websocket_version",
    "_perMessageCompress",
    "logFrames",
    "logOctets",
    "trackTimings",
)

#: the masking options both shortcuts read, by side: (server's, client's)
MASKING_ATTRIBUTES = (
    ("maskServerFrames", "requireMaskedClientFrames"),
    ("maskClientFrames", "acceptMaskedServerFrames"),
)

#: shortcuts already reported as unavailable in this process
_reported: set[str] = set()


def missing_attributes(target: object, names: Iterable[str]) -> list[str]:
    """The names in ``names`` that ``target`` has no attribute for."""
    return [name for name in names if not hasattr(target, name)]


def available(shortcut: str, target: object, names: Iterable[str]) -> bool:
    """True when ``target`` has every attribute in ``names``; otherwise False, and the
    first time per ``shortcut`` in this process, a warning naming what is missing."""
    missing = missing_attributes(target, names)
    if not missing:
        return True
    if shortcut not in _reported:
        _reported.add(shortcut)
        log.warn(
            "autobahn {version} lacks {missing}: {shortcut} is off, its public API is used instead",
            version=_autobahn_version(),
            missing=", ".join(missing),
            shortcut=shortcut,
            event="autobahn_internals",
        )
    return False


def _autobahn_version() -> str:
    import autobahn

    return str(getattr(autobahn, "__version__", "?"))


class OptionsOnProtocolClass:
    """A factory mixin: the protocol options live on a protocol class, not on each connection.

    autobahn copies every protocol option (about 45 of them) from the factory onto each
    new connection, unless the connection already has that attribute. Each factory here
    builds a subclass of its protocol that carries its options as class attributes, so
    nothing is copied and an idle connection's attribute table is half the size (about
    2 KiB less per connection). Options set later (a reload) make a new subclass: open
    connections keep the options they started with, as with autobahn's copies.
    """

    protocol: type

    def resetProtocolOptions(self) -> None:  # noqa: N802 - autobahn API
        super().resetProtocolOptions()  # type: ignore[misc]
        self._bind_protocol_options()

    def setProtocolOptions(self, **options: Any) -> None:  # noqa: N802 - autobahn API
        super().setProtocolOptions(**options)  # type: ignore[misc]
        self._bind_protocol_options()

    def _bind_protocol_options(self) -> None:
        if not available("protocol options on the class", self.protocol, OPTIONS_ATTRIBUTES):
            return  # autobahn copies the options onto each connection itself
        base = self.protocol
        while getattr(base, "_options_bound", False):
            base = base.__bases__[0]
        options: dict[str, Any] = {"_options_bound": True}
        for name in base.CONFIG_ATTRS:  # type: ignore[attr-defined]
            value = getattr(self, name)
            # A plain function as a class attribute would become a bound method.
            options[name] = staticmethod(value) if isinstance(value, types.FunctionType) else value
        self.protocol = type(base.__name__, (base,), options)


def release_handshake_state(connection: Any) -> None:
    """Drop what autobahn keeps of the opening handshake once the WebSocket is open
    (request and response text, parsed headers: about 1 KiB per connection)."""
    if not available("releasing the handshake state", connection, HANDSHAKE_STATE_ATTRIBUTES):
        return
    connection.http_request_data = b""
    connection.http_response_data = ""
    connection.http_headers = _NO_HEADERS
    connection.http_status_line = ""


_NO_HEADERS = types.MappingProxyType({})

# RFC 6455 section 5.2: FIN + opcode (1 text, 2 binary), then the payload length in 7 bits,
# or 126 + 16 bits, or 127 + 64 bits; a server's frames are not masked.
_SHORT_HEADERS = {
    binary: tuple(bytes((0x82 if binary else 0x81, length)) for length in range(126)) for binary in (False, True)
}
_MEDIUM_HEADER = struct.Struct("!BBH")
_LONG_HEADER = struct.Struct("!BBQ")


def client_frame(payload: bytes, binary: bool) -> bytes:
    """A final, masked, uncompressed data frame, as a client sends it.

    The masking key comes from ``random.getrandbits``, as in autobahn's ``sendFrame``:
    masking keeps a browser script from choosing the octets an intermediary sees, and a
    non-browser client has no script to protect against (autobahn's issue 758).
    """
    length = len(payload)
    key = random.getrandbits(32).to_bytes(4, "big")
    header = server_frame_header(length, binary)
    # the same header with the MASK bit (the second octet's high bit) set
    return bytes((header[0], header[1] | 0x80)) + header[2:] + key + mask(payload, key)


def server_frame_header(length: int, binary: bool) -> bytes:
    """The header of a final, unmasked, uncompressed data frame of ``length`` octets."""
    if length < 126:
        return _SHORT_HEADERS[binary][length]
    opcode = 0x82 if binary else 0x81
    if length < 0x10000:
        return _MEDIUM_HEADER.pack(opcode, 126, length)
    return _LONG_HEADER.pack(opcode, 127, length)


def can_write_frames_directly(connection: Any) -> bool:
    """True when every message on ``connection`` may be written as header + payload
    (masked by :func:`client_frame` on a client).

    autobahn's ``sendMessage`` -> ``sendFrame`` -> ``sendData`` costs more per message than
    the rest of relaying it (a debug log call whose arguments are formatted every time,
    traffic counters, the frame joined from five parts). A frame is just header + payload
    on the server side with no masking (on a client: masked, as RFC 6455 wants), no
    compression, no fragmentation, and no frame or octet logging or timings. autobahn's send queue (used only for sync and chopped sends)
    must also be empty when each frame is written, so that frames keep their order: the
    caller checks that per frame.

    False (``sendMessage`` is used) also when the connection lacks an attribute of
    :data:`DIRECT_FRAME_ATTRIBUTES`.
    """
    masking = MASKING_ATTRIBUTES[0 if connection.factory.isServer else 1]
    if not available("direct frames", connection, DIRECT_FRAME_ATTRIBUTES + masking):
        return False
    if connection.factory.isServer:
        masking_as_rfc = not connection.maskServerFrames
    else:
        masking_as_rfc = connection.maskClientFrames
    return bool(
        masking_as_rfc
        and connection._perMessageCompress is None
        and not connection.autoFragmentSize
        and not connection.logFrames
        and not connection.logOctets
        and not connection.trackedTimings
    )


def can_read_frames_directly(connection: Any) -> bool:
    """True when the frames ``connection`` receives may be read by our own frame reader.

    autobahn's per-frame state machine (``processData`` and the ``onFrame*`` callbacks,
    a CFFI masker object per frame) costs most of a relayed WebSocket call.
    :class:`~promisifier.transport.websocket_reader.FrameReader` reads plain RFC 6455
    frames with the same checks; everything else stays autobahn's: per-message
    compression, Hixie-76 peers, a server that accepts unmasked frames or a client that
    accepts masked ones, unmasking switched off, frame or octet logging, timings; and
    an autobahn that lacks an attribute of :data:`READ_FRAME_ATTRIBUTES`.
    """
    masking = MASKING_ATTRIBUTES[0 if connection.factory.isServer else 1]
    if not available("reading frames directly", connection, READ_FRAME_ATTRIBUTES + masking):
        return False
    if connection.factory.isServer:
        masking_as_rfc = connection.requireMaskedClientFrames
    else:
        masking_as_rfc = not connection.acceptMaskedServerFrames
    return bool(
        masking_as_rfc
        and connection.applyMask
        and connection.websocket_version != 0
        and connection._perMessageCompress is None
        and not connection.logFrames
        and not connection.logOctets
        and not connection.trackTimings
    )


# Checked once at import: a protocol class without what the options shortcut reads is
# reported now, not at the first listener.
for _protocol in (WebSocketServerProtocol, WebSocketClientProtocol):
    available("protocol options on the class", _protocol, OPTIONS_ATTRIBUTES)
