"""WAMP v2 messages as plain lists, and the one check every received message passes.

Messages stay plain lists on the hot path (``[48, 7, {}, "com.example.add", [2, 3]]``):
no objects are built per message. A table per message type gives its length range and
the type of each field; :func:`check_message` validates a received list against it once,
so the router and the client can index fields without re-checking them.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import Any, Final, TypeAlias

from promisifier.wire.errors import ProtocolError
from promisifier.wire.ids import MAX_ID


class MessageType(IntEnum):
    """The WAMP v2 message type codes (basic profile plus auth, CANCEL and INTERRUPT)."""

    HELLO = 1
    WELCOME = 2
    ABORT = 3
    CHALLENGE = 4
    AUTHENTICATE = 5
    GOODBYE = 6
    ERROR = 8
    PUBLISH = 16
    PUBLISHED = 17
    SUBSCRIBE = 32
    SUBSCRIBED = 33
    UNSUBSCRIBE = 34
    UNSUBSCRIBED = 35
    EVENT = 36
    CALL = 48
    CANCEL = 49
    RESULT = 50
    REGISTER = 64
    REGISTERED = 65
    UNREGISTER = 66
    UNREGISTERED = 67
    INVOCATION = 68
    INTERRUPT = 69
    YIELD = 70


# Plain int aliases: comparing against an int is cheaper than against an IntEnum member.
HELLO: Final = 1
WELCOME: Final = 2
ABORT: Final = 3
CHALLENGE: Final = 4
AUTHENTICATE: Final = 5
GOODBYE: Final = 6
ERROR: Final = 8
PUBLISH: Final = 16
PUBLISHED: Final = 17
SUBSCRIBE: Final = 32
SUBSCRIBED: Final = 33
UNSUBSCRIBE: Final = 34
UNSUBSCRIBED: Final = 35
EVENT: Final = 36
CALL: Final = 48
CANCEL: Final = 49
RESULT: Final = 50
REGISTER: Final = 64
REGISTERED: Final = 65
UNREGISTER: Final = 66
UNREGISTERED: Final = 67
INVOCATION: Final = 68
INTERRUPT: Final = 69
YIELD: Final = 70

#: a WAMP message, decoded: ``[type code, field, field, ...]``
Message: TypeAlias = list[Any]


def _is_id(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_ID


def _is_code(value: Any) -> bool:
    return type(value) is int and value in _SPECS


# kind -> (check, description used in error texts)
_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "id": (_is_id, "an ID (int in [0, 2**53])"),
    "code": (_is_code, "a message type code"),
    "dict": (lambda v: type(v) is dict, "a dict"),
    "list": (lambda v: type(v) is list, "a list"),
    # Arguments: a list, or the bytes of a passthru payload (checked below: with ppt_scheme)
    "args": (lambda v: type(v) is list or type(v) is bytes, "a list"),
    "uri": (lambda v: type(v) is str, "a URI string"),
    "str": (lambda v: type(v) is str, "a string"),
}

# code -> (name, min length, fields after the type code as (field name, kind))
_TABLE: dict[int, tuple[str, int, tuple[tuple[str, str], ...]]] = {
    HELLO: ("HELLO", 3, (("Realm", "uri"), ("Details", "dict"))),
    WELCOME: ("WELCOME", 3, (("Session", "id"), ("Details", "dict"))),
    ABORT: ("ABORT", 3, (("Details", "dict"), ("Reason", "uri"))),
    CHALLENGE: ("CHALLENGE", 3, (("AuthMethod", "str"), ("Extra", "dict"))),
    AUTHENTICATE: ("AUTHENTICATE", 3, (("Signature", "str"), ("Extra", "dict"))),
    GOODBYE: ("GOODBYE", 3, (("Details", "dict"), ("Reason", "uri"))),
    ERROR: (
        "ERROR",
        5,
        (
            ("REQUEST.Type", "code"),
            ("REQUEST.Request", "id"),
            ("Details", "dict"),
            ("Error", "uri"),
            ("Arguments", "args"),
            ("ArgumentsKw", "dict"),
        ),
    ),
    PUBLISH: (
        "PUBLISH",
        4,
        (("Request", "id"), ("Options", "dict"), ("Topic", "uri"), ("Arguments", "args"), ("ArgumentsKw", "dict")),
    ),
    PUBLISHED: ("PUBLISHED", 3, (("PUBLISH.Request", "id"), ("Publication", "id"))),
    SUBSCRIBE: ("SUBSCRIBE", 4, (("Request", "id"), ("Options", "dict"), ("Topic", "uri"))),
    # Details: only for a SUBSCRIBE with this router's _resume option (gap-free resume)
    SUBSCRIBED: ("SUBSCRIBED", 3, (("SUBSCRIBE.Request", "id"), ("Subscription", "id"), ("Details", "dict"))),
    UNSUBSCRIBE: ("UNSUBSCRIBE", 3, (("Request", "id"), ("SUBSCRIBED.Subscription", "id"))),
    UNSUBSCRIBED: ("UNSUBSCRIBED", 2, (("UNSUBSCRIBE.Request", "id"), ("Details", "dict"))),
    EVENT: (
        "EVENT",
        4,
        (
            ("SUBSCRIBED.Subscription", "id"),
            ("PUBLISHED.Publication", "id"),
            ("Details", "dict"),
            ("Arguments", "args"),
            ("ArgumentsKw", "dict"),
        ),
    ),
    CALL: (
        "CALL",
        4,
        (("Request", "id"), ("Options", "dict"), ("Procedure", "uri"), ("Arguments", "args"), ("ArgumentsKw", "dict")),
    ),
    CANCEL: ("CANCEL", 3, (("CALL.Request", "id"), ("Options", "dict"))),
    RESULT: (
        "RESULT",
        3,
        (("CALL.Request", "id"), ("Details", "dict"), ("Arguments", "args"), ("ArgumentsKw", "dict")),
    ),
    REGISTER: ("REGISTER", 4, (("Request", "id"), ("Options", "dict"), ("Procedure", "uri"))),
    REGISTERED: ("REGISTERED", 3, (("REGISTER.Request", "id"), ("Registration", "id"))),
    UNREGISTER: ("UNREGISTER", 3, (("Request", "id"), ("REGISTERED.Registration", "id"))),
    UNREGISTERED: ("UNREGISTERED", 2, (("UNREGISTER.Request", "id"), ("Details", "dict"))),
    INVOCATION: (
        "INVOCATION",
        4,
        (
            ("Request", "id"),
            ("REGISTERED.Registration", "id"),
            ("Details", "dict"),
            ("Arguments", "args"),
            ("ArgumentsKw", "dict"),
        ),
    ),
    INTERRUPT: ("INTERRUPT", 3, (("INVOCATION.Request", "id"), ("Options", "dict"))),
    YIELD: (
        "YIELD",
        3,
        (("INVOCATION.Request", "id"), ("Options", "dict"), ("Arguments", "args"), ("ArgumentsKw", "dict")),
    ),
}


#: the Options/Details keys that mark a passthru payload (payload_passthru_mode), and the
#: older names autobahn-python's payload transparency (end-to-end encryption) uses
PASSTHRU_MARKERS = ("ppt_scheme", "enc_algo")


class _Spec:
    __slots__ = ("name", "min_len", "max_len", "fields", "payload_index", "options_index")

    def __init__(self, name: str, min_len: int, fields: tuple[tuple[str, str], ...]) -> None:
        self.name = name
        self.min_len = min_len
        self.max_len = len(fields) + 1
        # (index, field name, check, description) for every field
        self.fields = tuple(
            (index, field_name, _KINDS[kind][0], _KINDS[kind][1])
            for index, (field_name, kind) in enumerate(fields, start=1)
        )
        #: where Arguments is, or 0; and the Options or Details dict before it
        self.payload_index = next((index for index, (_, kind) in enumerate(fields, start=1) if kind == "args"), 0)
        self.options_index = max(
            (index for index, (_, kind) in enumerate(fields[: self.payload_index], start=1) if kind == "dict"),
            default=0,
        )


_SPECS: dict[int, _Spec] = {code: _Spec(*row) for code, row in _TABLE.items()}

#: The message fields of each type, for tests and documentation: code -> field names.
FIELDS: dict[int, tuple[str, ...]] = {code: tuple(f for f, _ in row[2]) for code, row in _TABLE.items()}
MIN_LENGTH: dict[int, int] = {code: row[1] for code, row in _TABLE.items()}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "bool"
    if type(value) is int and not 0 <= value <= MAX_ID:
        return "int out of range"
    return type(value).__name__


def message_name(code: object) -> str:
    """The name of a message type code (``"CALL"`` for 48 or ``MessageType.CALL``), or
    ``"UNKNOWN(code)"``; ``True`` is not a code."""
    is_code = isinstance(code, int) and not isinstance(code, bool)
    spec = _SPECS.get(code) if is_code else None  # type: ignore[call-overload]
    return spec.name if spec is not None else f"UNKNOWN({code!r})"


def error_message(
    request_type: int,
    request_id: int,
    error_uri: str,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> Message:
    """An ERROR for the request ``request_id`` of type ``request_type``; ``args`` and
    ``kwargs`` are appended only when there is something to carry."""
    message: Message = [ERROR, request_type, request_id, details if details is not None else {}, error_uri]
    if args is not None or kwargs:
        message.append(args if args is not None else [])
        if kwargs:
            message.append(kwargs)
    return message


def check_message(msg: Any) -> Message:
    """Check a decoded message against its type's table row and return it unchanged.

    Raises :class:`ProtocolError` with a text that names the message type, the field and
    what was wrong. A message is checked once, where it is received.
    """
    if type(msg) is not list:
        raise ProtocolError(f"a WAMP message must be a list, got {_type_name(msg)}")
    if not msg:
        raise ProtocolError("a WAMP message must not be empty")
    code = msg[0]
    spec = _SPECS.get(code) if type(code) is int else None
    if spec is None:
        raise ProtocolError(f"unknown message type {code!r}")
    length = len(msg)
    if length < spec.min_len or length > spec.max_len:
        if spec.min_len == spec.max_len:
            expected = str(spec.min_len)
        else:
            expected = f"{spec.min_len} to {spec.max_len}"
        raise ProtocolError(f"{spec.name}: expected {expected} elements, got {length}")
    for index, field_name, check, description in spec.fields:
        if index >= length:
            break
        if not check(msg[index]):
            raise ProtocolError(f"{spec.name}: {field_name} must be {description}, got {_type_name(msg[index])}")
    payload_index = spec.payload_index
    if payload_index and length > payload_index and type(msg[payload_index]) is bytes:
        _check_passthru(spec, msg, payload_index)
    return msg


def _check_passthru(spec: _Spec, msg: list[Any], payload_index: int) -> None:
    """A passthru payload: bytes where Arguments is, the last element, with a non-empty
    ``ppt_scheme`` (or autobahn's ``enc_algo``) in the Options or Details before it."""
    options = msg[spec.options_index]
    if not any(type(options.get(key)) is str and options.get(key) for key in PASSTHRU_MARKERS):
        raise ProtocolError(f"{spec.name}: Arguments must be a list, got bytes")
    if len(msg) != payload_index + 1:
        raise ProtocolError(f"{spec.name}: a passthru payload is the last element (no ArgumentsKw)")
