"""Exceptions raised by the wire layer for anything a peer sent that breaks the protocol."""


class ProtocolError(Exception):
    """A message decoded but breaks the WAMP protocol (wrong type, length or field).

    The text says what was wrong, e.g. ``"CALL: Options must be a dict, got list"``.
    The router answers it with ABORT ``wamp.error.protocol_violation``.
    """


class DecodeError(ProtocolError):
    """A frame's bytes are not valid JSON or msgpack, or not a WAMP message list.

    The transport answers it by closing the WebSocket with 1007 (invalid payload).
    """


class EncodeError(ValueError):
    """A message holds a value the chosen serializer cannot represent.

    Example: bytes used as a dict key cannot be sent as JSON; an int beyond 64 bits
    cannot be sent in either format. The sender answers with a WAMP ERROR instead.
    """
