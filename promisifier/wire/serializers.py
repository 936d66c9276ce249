"""The WAMP v2 serializers: ``wamp.2.json`` (orjson), ``wamp.2.msgpack`` and ``wamp.2.cbor`` (cbor2).

A serializer turns a message list into the bytes of one WebSocket frame and back. It does
not check the message: :func:`promisifier.wire.messages.check_message` does that.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Protocol

import cbor2
import msgpack
import orjson

from promisifier.wire.errors import DecodeError, EncodeError, ProtocolError
from promisifier.wire.messages import Message


class Serializer(Protocol):
    """What the transport needs of a serializer."""

    #: short name, "json" or "msgpack"
    name: str
    #: the WebSocket subprotocol it is negotiated as, e.g. "wamp.2.json"
    subprotocol: str
    #: True when frames are binary, False when they are text
    binary: bool

    def encode(self, message: Message) -> bytes:
        """The frame payload for ``message``. Raises :class:`EncodeError`."""
        ...

    def decode(self, payload: bytes) -> Message:
        """The message list in ``payload``.

        Raises :class:`DecodeError` for bytes that are not the format, or another
        :class:`ProtocolError` for a value WAMP does not allow (e.g. a non-string key).
        """
        ...


# JSON has no binary type: WAMP sends bytes as a string of a NUL character followed by
# the base64 of the bytes. orjson always escapes NUL as \u0000, so a payload without that
# escape holds no binary value and the (recursive) conversion is skipped.
_NUL_ESCAPE = b"\\u0000"


def _bytes_to_json(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\x00" + base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _binary_from_json(text: str) -> bytes:
    try:
        return base64.b64decode(text[1:], validate=True)
    except (binascii.Error, ValueError) as error:
        raise DecodeError(f"invalid base64 in binary string: {error}") from None


def _json_to_bytes(root: list[Any]) -> None:
    """Replace, in place, every ``"\x00" + base64`` string inside ``root`` by its bytes.

    Iterative, so the depth of a message is bounded by the JSON parser's own limit and
    never by Python's recursion limit.
    """
    stack: list[Any] = [root]
    while stack:
        container = stack.pop()
        entries = enumerate(container) if type(container) is list else container.items()
        for key, item in entries:
            kind = type(item)
            if kind is str:
                if item and item[0] == "\x00":
                    container[key] = _binary_from_json(item)
            elif kind is list or kind is dict:
                stack.append(item)


def _check_no_nul_text(root: Any) -> None:
    """Raise :class:`EncodeError` for a text value starting with NUL inside ``root``.

    In WAMP's JSON such a string is binary: the peer would turn it into bytes (a URI or a
    text argument of a msgpack peer would change type) or refuse the frame when the rest
    is not base64. Only values are converted by the decoder; dict keys may start with NUL.
    Iterative, like :func:`_json_to_bytes`.
    """
    stack: list[Any] = [root]
    while stack:
        container = stack.pop()
        items = container.values() if isinstance(container, dict) else container
        for item in items:
            if isinstance(item, str):
                if item and item[0] == "\x00":
                    raise EncodeError(
                        "a text value starting with NUL cannot be sent as JSON (it would arrive as binary)"
                    )
            elif isinstance(item, (list, tuple, dict)):
                stack.append(item)


# orjson reads integers beyond 64 bits as floats (silently changing a payload) and refuses
# to write them. Such an integer has 19 digits or more (-9223372036854775809 has 19): a
# payload without a run of 19 digits, nearly every payload, is read by orjson alone. With
# one, the stdlib json (integers of any size) reads it again after orjson has checked it.
# The run is found by mapping every digit to "0" and searching for 19 of them: about as
# long as orjson's own time on a small message (a regular expression takes two to five
# times that). Before it, a cheaper test: a payload with fewer than 19 digits in all (what
# deleting the digits takes off its length), such as most messages a client sends, has no
# such run.
_DIGITS = b"0123456789"
_DIGITS_AS_ZERO = bytes.maketrans(_DIGITS, b"0" * 10)
_LONG_DIGIT_RUN = b"0" * 19
_ORJSON_INT_OVERFLOW = "Integer exceeds 64-bit range"


def _refuse_constant(name: str) -> Any:
    raise DecodeError(f"invalid JSON: {name} is not a JSON number")


def _dumps_any_int(message: list[Any]) -> bytes:
    """JSON of ``message`` like orjson writes it, for a message holding an integer beyond 64 bits."""
    text = json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_bytes_to_json)
    return text.encode("utf-8")


class JsonSerializer:
    """``wamp.2.json``: UTF-8 JSON in text frames, bytes as ``"\\u0000" + base64``.

    Integers of any size pass through unchanged (a JSON peer to a JSON peer); a serializer
    that cannot carry one (msgpack: 64 bits) refuses to encode the message.
    """

    name = "json"
    subprotocol = "wamp.2.json"
    binary = False

    def encode(self, message: Message) -> bytes:
        try:
            payload = orjson.dumps(message, default=_bytes_to_json)
        except (TypeError, orjson.JSONEncodeError) as error:
            if str(error) != _ORJSON_INT_OVERFLOW:
                raise EncodeError(f"cannot encode message as JSON: {error}") from None
            try:
                payload = _dumps_any_int(message)
            except (TypeError, ValueError, RecursionError, UnicodeEncodeError) as error:
                raise EncodeError(f"cannot encode message as JSON: {error}") from None
        # orjson escapes NUL as \u0000: without that escape no text starts with NUL.
        if _NUL_ESCAPE in payload:
            _check_no_nul_text(message)
        return payload

    def decode(self, payload: bytes) -> Message:
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError as error:
            raise DecodeError(f"invalid JSON: {error}") from None
        digits = len(payload) - len(payload.translate(None, _DIGITS))
        if digits >= 19 and _LONG_DIGIT_RUN in payload.translate(_DIGITS_AS_ZERO):
            # orjson has checked the text; the stdlib json keeps integers beyond 64 bits.
            try:
                message = json.loads(payload, parse_constant=_refuse_constant)
            except RecursionError:
                raise DecodeError("invalid JSON: nested too deeply") from None
        if type(message) is not list:
            raise DecodeError(f"a WAMP message must be a JSON array, got {type(message).__name__}")
        if _NUL_ESCAPE in payload:
            _json_to_bytes(message)
        return message


class _Undefined:
    """JavaScript's ``undefined`` as msgpackr (and so Wampy.js) writes it: ext type 0."""

    __slots__ = ()


_UNDEFINED = _Undefined()
#: the msgpack extension type msgpackr writes ``undefined`` as (one data byte)
_UNDEFINED_EXT = 0


def _drop_undefined(root: list[Any]) -> None:
    """Remove, in place, every ``undefined`` inside ``root``: a dict entry whose value is
    ``undefined`` is an absent key, an ``undefined`` list item is null (what
    ``JSON.stringify`` makes of both). Iterative, like :func:`_json_to_bytes`."""
    stack: list[Any] = [root]
    while stack:
        container = stack.pop()
        if type(container) is dict:
            for key in [key for key, item in container.items() if item is _UNDEFINED]:
                del container[key]
            items: Any = container.values()
        else:
            for index, item in enumerate(container):
                if item is _UNDEFINED:
                    container[index] = None
            items = container
        for item in items:
            if type(item) is list or type(item) is dict:
                stack.append(item)


class MsgpackSerializer:
    """``wamp.2.msgpack``: msgpack in binary frames, with the bin type for bytes.

    No extension type is allowed but msgpackr's ``undefined`` (ext type 0), read as an
    absent key (in a map) or null (in an array).
    """

    name = "msgpack"
    subprotocol = "wamp.2.msgpack"
    binary = True

    def __init__(self) -> None:
        # One Packer reused for every message: creating one per message costs more than
        # packing a small message. The reactor is single-threaded, so sharing is safe.
        self._packer = msgpack.Packer(use_bin_type=True, autoreset=True)
        self._saw_undefined = False

    def encode(self, message: Message) -> bytes:
        try:
            packed: bytes = self._packer.pack(message)
            return packed
        except OverflowError:
            self._packer.reset()
            raise EncodeError(
                "cannot encode message as msgpack: an integer outside the 64-bit range (msgpack cannot carry it)"
            ) from None
        except (TypeError, ValueError) as error:
            self._packer.reset()
            raise EncodeError(f"cannot encode message as msgpack: {error}") from None

    def _ext(self, code: int, data: bytes) -> Any:
        if code == _UNDEFINED_EXT and len(data) == 1:
            self._saw_undefined = True
            return _UNDEFINED
        raise DecodeError(f"msgpack extension type {code} is not allowed in WAMP")

    def decode(self, payload: bytes) -> Message:
        self._saw_undefined = False
        try:
            # max_ext_len=1: msgpack decodes the timestamp extension (type -1, 4 bytes and
            # more) itself, without calling ext_hook; the length limit refuses it (and every
            # other extension with more data than msgpackr's undefined) before that happens.
            message = msgpack.unpackb(payload, raw=False, ext_hook=self._ext, strict_map_key=True, max_ext_len=1)
        except DecodeError:
            raise
        except Exception as error:  # msgpack raises several unrelated types on bad input
            raise DecodeError(f"invalid msgpack: {type(error).__name__}: {error}") from None
        if type(message) is not list:
            if message is _UNDEFINED:
                raise DecodeError("a WAMP message must be a msgpack array, got undefined")
            raise DecodeError(f"a WAMP message must be a msgpack array, got {type(message).__name__}")
        if self._saw_undefined:
            _drop_undefined(message)
        # msgpack maps may have binary keys; WAMP's Options, Details and ArgumentsKw (the
        # dicts at the top of a message) have string keys only. JSON cannot express others.
        for element in message:
            if type(element) is dict:
                for key in element:
                    if type(key) is not str:
                        raise ProtocolError(f"dict keys must be strings, got {type(key).__name__}")
        return message


def _no_tag(decoder: Any, tag: Any = None) -> Any:
    raise DecodeError("CBOR tags are not allowed in WAMP (but big integers, tags 2 and 3)")


# cbor2 turns the semantic tags it knows into Python objects (datetimes, decimals, sets,
# UUIDs, ...) that another serializer would silently write as something else: every one of
# them but the big integers (2, 3) is refused, and so is any other tag (tag_hook). Nothing of
# this costs anything on a message without tags.
_CBOR_REFUSED_TAGS = {tag: _no_tag for tag in (0, 1, 4, 5, 21, 22, 23, 24, 25, 28, 29, 30, 32, 33, 34, 35, 36, 37)}
_CBOR_REFUSED_TAGS.update({tag: _no_tag for tag in (52, 54, 100, 256, 258, 260, 261, 1004, 55799)})
#: CBOR's undefined (simple value 23): JavaScript encoders write ``undefined`` as it
_CBOR_UNDEFINED_OCTET = b"\xf7"


def _drop_cbor_undefined(root: list[Any]) -> None:
    stack: list[Any] = [root]
    while stack:
        container = stack.pop()
        if type(container) is dict:
            for key in [key for key, item in container.items() if item is cbor2.undefined]:
                del container[key]
            items: Any = container.values()
        else:
            for index, item in enumerate(container):
                if item is cbor2.undefined:
                    container[index] = None
            items = container
        for item in items:
            if type(item) is list or type(item) is dict:
                stack.append(item)


class CborSerializer:
    """``wamp.2.cbor``: CBOR (RFC 8949) in binary frames, with byte strings for bytes.

    Integers of any size (tags 2 and 3), no other tag; ``undefined`` reads as an absent key
    in a map and null in an array, as with msgpack.
    """

    name = "cbor"
    subprotocol = "wamp.2.cbor"
    binary = True

    def encode(self, message: list[Any]) -> bytes:
        try:
            return cbor2.dumps(message)
        except (TypeError, ValueError, RecursionError, cbor2.CBOREncodeError) as error:
            raise EncodeError(f"cannot encode message as CBOR: {error}") from None

    def decode(self, payload: bytes) -> list[Any]:
        try:
            message = cbor2.loads(payload, tag_hook=_no_tag, semantic_decoders=_CBOR_REFUSED_TAGS)
        except DecodeError:
            raise
        except Exception as error:  # cbor2 raises several types on bad input
            raise DecodeError(f"invalid CBOR: {type(error).__name__}: {error}") from None
        if type(message) is not list:
            raise DecodeError(f"a WAMP message must be a CBOR array, got {type(message).__name__}")
        if _CBOR_UNDEFINED_OCTET in payload:
            _drop_cbor_undefined(message)
        for element in message:
            if type(element) is dict:
                for key in element:
                    if type(key) is not str:
                        raise ProtocolError(f"dict keys must be strings, got {type(key).__name__}")
        return message


#: one shared instance per serializer name
SERIALIZERS: dict[str, Serializer] = {
    "json": JsonSerializer(),
    "msgpack": MsgpackSerializer(),
    "cbor": CborSerializer(),
}
_BY_SUBPROTOCOL: dict[str, Serializer] = {s.subprotocol: s for s in SERIALIZERS.values()}


def serializer_for_subprotocol(subprotocol: str) -> Serializer | None:
    """The serializer negotiated as ``subprotocol`` ("wamp.2.json"), or None."""
    return _BY_SUBPROTOCOL.get(subprotocol)
