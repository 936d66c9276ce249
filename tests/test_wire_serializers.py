"""Serializers: wamp.2.json (orjson, binary as "\\u0000" + base64), wamp.2.msgpack, wamp.2.cbor. Pure.

Decoding anything a peer can send either gives a list or raises DecodeError (never another
exception, never a crash); encoding a value the format cannot hold raises EncodeError.
Hypothesis round-trips arbitrary payloads inside a CALL through both serializers.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import math
import uuid
from typing import Any

import cbor2
import msgpack
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promisifier.wire import (
    SERIALIZERS,
    DecodeError,
    EncodeError,
    JsonSerializer,
    MsgpackSerializer,
    ProtocolError,
    check_message,
    serializer_for_subprotocol,
)

JSON = SERIALIZERS["json"]
MSGPACK = SERIALIZERS["msgpack"]
CBOR = SERIALIZERS["cbor"]
BOTH = pytest.mark.parametrize("ser", ["json", "msgpack"])

#: the example of the spec (advanced/serialization_binary_json.md)
SPEC_BYTES = bytes.fromhex("10e3ff9053075c526f5fc06d4fe37cdb")
SPEC_JSON = b'"\\u0000EOP/kFMHXFJvX8BtT+N82w=="'


def same(a: Any, b: Any) -> bool:
    """Equality that also compares types (``1``, ``1.0`` and ``True`` differ)."""
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if type(a) is float and math.isnan(a):
        return math.isnan(b)
    return a == b


# ---------------------------------------------------------------------------------------------
# the serializer objects


def test_serializer_identities() -> None:
    assert isinstance(JSON, JsonSerializer) and isinstance(MSGPACK, MsgpackSerializer)
    assert (JSON.name, JSON.subprotocol, JSON.binary) == ("json", "wamp.2.json", False)
    assert (MSGPACK.name, MSGPACK.subprotocol, MSGPACK.binary) == ("msgpack", "wamp.2.msgpack", True)
    assert serializer_for_subprotocol("wamp.2.json") is JSON
    assert serializer_for_subprotocol("wamp.2.msgpack") is MSGPACK
    assert serializer_for_subprotocol("wamp.2.cbor") is CBOR
    for other in ("wamp.2.json.batched", "wamp.2.msgpack.batched", "wamp.2.ubjson", "WAMP.2.JSON", "", "json"):
        assert serializer_for_subprotocol(other) is None


def test_errors_are_protocol_errors() -> None:
    """The transport catches ProtocolError; DecodeError must be one. EncodeError is our own fault."""
    assert issubclass(DecodeError, ProtocolError)
    assert not issubclass(EncodeError, ProtocolError) and issubclass(EncodeError, ValueError)


def test_json_is_utf8_without_whitespace() -> None:
    data = JSON.encode([48, 1, {}, "com.example.ü", ["ü€😀"]])
    assert type(data) is bytes
    assert data == '[48,1,{},"com.example.ü",["ü€😀"]]'.encode()


def test_msgpack_uses_bin_and_str_types() -> None:
    data = MSGPACK.encode([48, 1, {}, "p", [b"\x01", "t"]])
    assert data == msgpack.packb([48, 1, {}, "p", [b"\x01", "t"]], use_bin_type=True)
    assert b"\xc4\x01\x01" in data  # bin 8
    assert msgpack.unpackb(data, raw=False) == [48, 1, {}, "p", [b"\x01", "t"]]


# ---------------------------------------------------------------------------------------------
# JSON binary convention


def test_json_binary_spec_example() -> None:
    data = JSON.encode([48, 1, {}, "com.example.echo", [SPEC_BYTES]])
    assert data == b'[48,1,{},"com.example.echo",[' + SPEC_JSON + b"]]"
    assert JSON.decode(data) == [48, 1, {}, "com.example.echo", [SPEC_BYTES]]


def test_json_binary_nested_both_directions() -> None:
    msg = [
        48,
        1,
        {"key": b"opt"},
        "com.example.echo",
        [b"", b"\x00", [b"\xff" * 3, {"deep": [[b"abc"]]}], "text", "\x01 not binary"],
        {"bin": b"\x00\x01\x02", "list": [b"x", 1, None], "dict": {"inner": b"y"}},
    ]
    data = JSON.encode(msg)
    raw = orjson.loads(data)  # the JSON as any other JSON peer sees it
    assert raw[2] == {"key": "\x00" + base64.b64encode(b"opt").decode()}
    assert raw[4][0] == "\x00" and raw[4][1] == "\x00AA=="
    assert raw[4][2][1]["deep"][0][0] == "\x00YWJj"
    assert raw[5]["dict"]["inner"] == "\x00eQ=="
    assert raw[4][4] == "\x01 not binary"
    assert same(JSON.decode(data), msg)


def test_json_binary_written_by_another_peer() -> None:
    """Binary strings as another implementation writes them, anywhere in the message."""
    data = b'[50,7,{"x":"\\u0000AQI="},["\\u0000","\\u0000/w==",["\\u0000YQ=="]],{"k":{"j":"\\u0000YWI="}}]'
    assert same(JSON.decode(data), [50, 7, {"x": b"\x01\x02"}, [b"", b"\xff", [b"a"]], {"k": {"j": b"ab"}}])


def test_json_bytearray_and_memoryview_are_binary() -> None:
    data = JSON.encode([48, 1, {}, "p", [bytearray(b"ab"), memoryview(b"cd")]])
    assert same(JSON.decode(data), [48, 1, {}, "p", [b"ab", b"cd"]])


def test_json_nul_inside_a_string_is_text() -> None:
    """Only a string *starting* with NUL is binary; dict keys are never converted."""
    msg = [48, 1, {}, "p", ["a\x00b", "x\x00"], {"\x00key": "v"}]
    assert same(JSON.decode(JSON.encode(msg)), msg)


def test_json_text_starting_with_nul_cannot_be_encoded() -> None:
    """The convention's one ambiguity: a text "\\x00..." (from a msgpack peer) sent as JSON
    would arrive as bytes, or as a frame the peer refuses if the rest is not base64. It is
    an EncodeError (found by tests/test_fuzz_wire.py); dict keys are never converted."""
    for text in ("\x00AA==", "\x00not base64!", "\x00"):
        for msg in ([1, text], [48, 1, {}, "p", [[{"k": text}]]], (1, (text,))):
            with pytest.raises(EncodeError, match="NUL"):
                JSON.encode(msg)  # type: ignore[arg-type]
    assert JSON.decode(JSON.encode([1, {"\x00k": b"\x00"}])) == [1, {"\x00k": b"\x00"}]


@pytest.mark.parametrize(
    "text",
    [
        "\\u0000!!!!",
        "\\u0000AAA",
        "\\u0000A",
        "\\u0000AA=A",
        "\\u0000AA==AA==",
        "\\u0000AA AA",
        "\\u0000AA\\nAA",
        "\\u0000\\u00e9\\u00e9==",
    ],
)
def test_json_invalid_base64_after_nul(text: str) -> None:
    for data in (f'[1,"{text}"]', f'[1,{{"a":["{text}"]}}]', f'[1,[[["{text}"]]]]'):
        with pytest.raises(DecodeError, match="base64"):
            JSON.decode(data.encode())


# ---------------------------------------------------------------------------------------------
# garbage in: DecodeError


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b" ",
        b"[",
        b"]",
        b"[1,]",
        b"[1 2]",
        b"nope",
        b"[1] [2]",
        b"[1]x",
        b"[NaN]",
        b"[Infinity]",
        b"[1,'a']",
        b'[1,"a]',
        b"\x00",
        b"\xef\xbb\xbf[1]x",
        b"[1,{1:2}]",
        b'[1,{"a"}]',
        b"\x91\x01",
    ],
)
def test_json_garbage(data: bytes) -> None:
    with pytest.raises(DecodeError):
        JSON.decode(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        b"\x92\x01",
        b"\x91\x01\x02",
        b"\x91",
        b"\xdd\xff\xff\xff\xff",
        b"\xdb\xff\xff\xff\xffab",
        b"\xc4\x05ab",
        b"\x91\x81\x01\x02",
        b"\x91\x81\xc0\x01",
        b"\x91\x81\x91\x01\x01",
        b"[1]",
    ],
)
def test_msgpack_garbage(data: bytes) -> None:
    with pytest.raises(DecodeError):
        MSGPACK.decode(data)


@pytest.mark.parametrize("value", [{}, {"a": 1}, 1, -1, 1.5, "x", b"x", None, True])
def test_top_level_must_be_an_array(value: Any) -> None:
    with pytest.raises(DecodeError, match="must be a JSON array"):
        JSON.decode(orjson.dumps(value if type(value) is not bytes else "bytes"))
    with pytest.raises(DecodeError, match="must be a msgpack array"):
        MSGPACK.decode(msgpack.packb(value, use_bin_type=True))


@pytest.mark.parametrize(
    "data",
    [
        msgpack.packb([1, msgpack.ExtType(5, b"x")]),
        msgpack.packb([1, msgpack.ExtType(0, b"")]),
        msgpack.packb([1, msgpack.ExtType(0, b"ab")]),
        msgpack.packb([1, msgpack.ExtType(127, b"x" * 300)]),
        msgpack.packb([1, {"k": msgpack.ExtType(1, b"abcd")}]),
        msgpack.packb([1, msgpack.Timestamp(1, 0)]),  # the predefined timestamp extension (-1)
        msgpack.packb([1, msgpack.Timestamp(2**40, 5)]),
        b"\x91\xc7\x00\xff",  # ext 8, type -1, no data
        b"\x91\xd4\xfe\x00",  # fixext 1, type -2
    ],
    ids=[
        "ext5",
        "ext0-empty",
        "ext0-2bytes",
        "ext127-300",
        "ext-in-dict",
        "timestamp32",
        "timestamp96",
        "ts-empty",
        "ext-2",
    ],
)
def test_msgpack_extension_types_are_refused(data: bytes) -> None:
    with pytest.raises(DecodeError):
        MSGPACK.decode(data)


# msgpackr (and so Wampy.js) writes JavaScript's undefined as fixext 1, type 0, data 0
UNDEFINED = b"\xd4\x00\x00"


def test_msgpack_undefined_in_a_map_is_an_absent_key() -> None:
    # [48, 1, {"timeout": undefined, "a": 1}, "p", [1, undefined], {"k": undefined}]
    data = b"\x96\x30\x01\x82\xa7timeout" + UNDEFINED + b"\xa1a\x01\xa1p\x92\x01" + UNDEFINED + b"\x81\xa1k" + UNDEFINED
    assert same(MSGPACK.decode(data), [48, 1, {"a": 1}, "p", [1, None], {}])


def test_msgpack_undefined_nested_deeply() -> None:
    data = b"\x95\x30\x01\x80\xa1p\x91\x81\xa1x\x92" + UNDEFINED + b"\x81\xa1y" + UNDEFINED
    assert same(MSGPACK.decode(data), [48, 1, {}, "p", [{"x": [None, {}]}]])


def test_msgpack_undefined_as_the_message_is_refused() -> None:
    with pytest.raises(DecodeError, match="undefined"):
        MSGPACK.decode(UNDEFINED)


@pytest.mark.parametrize(
    "data",
    [
        b'[1,"\xff"]',
        b'[1,"\xc3\x28"]',
        b'[1,"\xed\xa0\x80"]',
        b'[1,"\xf8\x88\x80\x80\x80"]',
        b'[1,"\\ud800"]',
        b'[1,"\\udc00x"]',
        b'[1,{"\xff":1}]',
        b"\xff[1]",
        "[1]".encode("utf-16"),
    ],
    ids=["ff", "bad-2byte", "utf8-surrogate", "5byte", "lone-high-escape", "lone-low-escape", "key", "prefix", "utf16"],
)
def test_json_non_utf8_is_refused(data: bytes) -> None:
    with pytest.raises(DecodeError):
        JSON.decode(data)


def test_msgpack_non_utf8_str_is_refused() -> None:
    for data in (b"\x92\x01\xa1\xff", b"\x92\x01\xa3\xed\xa0\x80", b"\x92\x01\x81\xa1\xff\x01"):
        with pytest.raises(DecodeError):
            MSGPACK.decode(data)


def test_msgpack_non_string_map_keys_are_refused() -> None:
    for key in (1, None, 1.5, True):
        with pytest.raises(DecodeError):
            MSGPACK.decode(msgpack.packb([1, {key: 1}]))


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_deep_nesting_is_a_decode_error(depth: int) -> None:
    """Not a RecursionError, not a crash: both decoders limit the depth (orjson to 1024)."""
    with pytest.raises(DecodeError):
        JSON.decode(b"[" * depth + b"]" * depth)
    with pytest.raises(DecodeError):
        JSON.decode(b'[1,{"a":' * depth + b"1" + b"}]" * depth)
    with pytest.raises(DecodeError):
        MSGPACK.decode(b"\x91" * depth + b"\x90")
    with pytest.raises(DecodeError):
        MSGPACK.decode(b"\x81\xa1a" * depth + b"\x90")


def test_moderate_nesting_is_fine() -> None:
    nested: list = []
    for _ in range(100):
        nested = [nested]
    msg = [48, 1, {}, "p", nested]
    for serializer in (JSON, MSGPACK):
        assert serializer.decode(serializer.encode(msg)) == msg


def test_deep_nesting_is_an_encode_error() -> None:
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    for serializer in (JSON, MSGPACK):
        with pytest.raises(EncodeError):
            serializer.encode([48, 1, {}, "p", nested])


# ---------------------------------------------------------------------------------------------
# values the formats cannot hold: EncodeError


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 2**100, -(2**100)])
def test_msgpack_refuses_ints_beyond_64_bits(value: int) -> None:
    with pytest.raises(EncodeError, match="outside the 64-bit range"):
        MSGPACK.encode([48, 1, {}, "p", [value]])


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 2**100, -(2**100), -(10**300)])
def test_json_keeps_ints_beyond_64_bits(value: int) -> None:
    message = [48, 1, {}, "p", [value, {"n": value, "b": b"\x01"}], {"f": 1.5, "t": "\u00e9"}]
    payload = JSON.encode(message)
    assert str(value).encode() in payload
    assert same(JSON.decode(payload), message)


def test_json_big_ints_written_by_another_peer() -> None:
    payload = b'[48,1,{},"p",[18446744073709551616,-9223372036854775809,1.5,"\\u0000AQ=="]]'
    assert same(JSON.decode(payload), [48, 1, {}, "p", [18446744073709551616, -9223372036854775809, 1.5, b"\x01"]])


@pytest.mark.parametrize(
    "payload",
    [b'[1,"1234567890123456789",NaN]', b"[1,12345678901234567890,Infinity]", b"[1,1234567890123456789"],
    ids=["nan", "infinity", "truncated"],
)
def test_json_with_long_digit_runs_is_still_checked_by_orjson(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        JSON.decode(payload)


def test_json_integers_just_beyond_64_bits_alone_in_a_message_are_exact() -> None:
    """19 digits in all, the fewest an integer beyond 64 bits has: the digit count before
    the scan lets them through."""
    assert same(JSON.decode(b"[-9223372036854775809]"), [-9223372036854775809])
    assert same(JSON.decode(b"[18446744073709551616]"), [18446744073709551616])


def test_json_long_digit_runs_in_strings_stay_strings() -> None:
    assert JSON.decode(b'[1,"12345678901234567890",12345678901234567890]') == [
        1,
        "12345678901234567890",
        12345678901234567890,
    ]


@BOTH
@pytest.mark.parametrize("value", [2**64 - 1, 2**63, 2**63 - 1, -(2**63), 2**53 + 1, -(2**53) - 1])
def test_ints_at_the_64_bit_limits(ser: str, value: int) -> None:
    serializer = SERIALIZERS[ser]
    assert same(serializer.decode(serializer.encode([48, 1, {}, "p", [value]])), [48, 1, {}, "p", [value]])


@BOTH
@pytest.mark.parametrize(
    "value",
    [object(), {1, 2}, 1 + 2j, "\ud800", {"k": object()}],
    ids=["object", "set", "complex", "lone-surrogate", "nested-object"],
)
def test_unencodable_values(ser: str, value: Any) -> None:
    with pytest.raises(EncodeError):
        SERIALIZERS[ser].encode([48, 1, {}, "p", [value]])


@pytest.mark.parametrize("value", [{1: "int key"}, {None: 1}, {("t",): 1}], ids=["int", "null", "tuple"])
def test_json_non_string_dict_keys_are_an_encode_error(value: Any) -> None:
    with pytest.raises(EncodeError):
        JSON.encode([48, 1, {}, "p", [value]])


@pytest.mark.xfail(
    strict=True,
    reason="msgpack's Packer writes int keys, which strict decoders (ours, autobahn's) refuse",
)
@pytest.mark.parametrize("value", [{1: "int key"}, {None: 1}], ids=["int", "null"])
def test_msgpack_non_string_dict_keys_are_an_encode_error(value: Any) -> None:
    with pytest.raises(EncodeError):
        MSGPACK.encode([48, 1, {}, "p", [value]])


def test_json_bytes_as_dict_key_is_an_encode_error() -> None:
    with pytest.raises(EncodeError):
        JSON.encode([48, 1, {}, "p", [], {b"k": 1}])
    # msgpack can carry it, but WAMP's top-level dicts have string keys only
    with pytest.raises(ProtocolError, match="keys must be strings"):
        MSGPACK.decode(MSGPACK.encode([48, 1, {}, "p", [], {b"k": 1}]))
    # nested deeper (inside Arguments) it is payload, passed on as it is
    assert MSGPACK.decode(MSGPACK.encode([48, 1, {}, "p", [{b"k": 1}]])) == [48, 1, {}, "p", [{b"k": 1}]]


def test_msgpack_packer_recovers_after_a_failed_encode() -> None:
    """The shared Packer must not keep half a message after an error."""
    with pytest.raises(EncodeError):
        MSGPACK.encode([48, 1, {}, "p", [1, 2, 3, 2**70]])
    with pytest.raises(EncodeError):
        MSGPACK.encode([48, 1, {}, "p", [{"a": object()}]])
    assert MSGPACK.encode([1]) == b"\x91\x01"
    assert MSGPACK.decode(MSGPACK.encode([48, 2, {}, "q"])) == [48, 2, {}, "q"]


def test_separate_msgpack_serializers_are_independent() -> None:
    one, two = MsgpackSerializer(), MsgpackSerializer()
    assert one.encode([1, "a"]) == two.encode([1, "a"]) == MSGPACK.encode([1, "a"])


@pytest.mark.xfail(strict=True, reason="orjson writes inf and NaN as null; JSON has no such numbers")
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_json_non_finite_floats_are_refused(value: float) -> None:
    with pytest.raises(EncodeError):
        JSON.encode([48, 1, {}, "p", [value]])


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_msgpack_non_finite_floats_round_trip(value: float) -> None:
    assert same(MSGPACK.decode(MSGPACK.encode([1, value])), [1, value])


# ---------------------------------------------------------------------------------------------
# hypothesis: arbitrary payloads inside a CALL

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
JSON_TEXT = TEXT.filter(lambda s: not s.startswith("\x00"))  # "\x00..." means binary in JSON
FLOATS = st.floats(allow_nan=False, allow_infinity=False)


def payloads(text: st.SearchStrategy[str], ints: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | ints | FLOATS | text | st.binary(max_size=40)
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=5) | st.dictionaries(TEXT, children, max_size=5),
        max_leaves=25,
    )


MSGPACK_PAYLOAD = payloads(TEXT, st.integers(-(2**63), 2**64 - 1))
JSON_PAYLOAD = payloads(JSON_TEXT, st.integers(-(2**63), 2**64 - 1))


def calls(payload: st.SearchStrategy[Any]) -> st.SearchStrategy[list]:
    request = st.integers(0, 2**53)
    options = st.dictionaries(TEXT, payload, max_size=3)
    args = st.lists(payload, max_size=5)
    kwargs = st.dictionaries(TEXT, payload, max_size=5)
    procedure = st.sampled_from(["com.example.add", "a", "com.example.ü"])
    return st.one_of(
        st.tuples(request, options, procedure).map(lambda t: [48, *t]),
        st.tuples(request, options, procedure, args).map(lambda t: [48, *t]),
        st.tuples(request, options, procedure, args, kwargs).map(lambda t: [48, *t]),
    )


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(calls(MSGPACK_PAYLOAD))
def test_msgpack_round_trips_any_payload(msg: list) -> None:
    decoded = MSGPACK.decode(MSGPACK.encode(msg))
    assert same(decoded, msg)
    assert check_message(decoded) is decoded


@SETTINGS
@given(calls(JSON_PAYLOAD))
def test_json_round_trips_any_payload(msg: list) -> None:
    decoded = JSON.decode(JSON.encode(msg))
    assert same(decoded, msg)
    assert check_message(decoded) is decoded


@SETTINGS
@given(calls(JSON_PAYLOAD))
def test_payload_crosses_serializers(msg: list) -> None:
    """A CALL received in one format and forwarded in the other arrives unchanged."""
    assert same(JSON.decode(JSON.encode(MSGPACK.decode(MSGPACK.encode(msg)))), msg)
    assert same(MSGPACK.decode(MSGPACK.encode(JSON.decode(JSON.encode(msg)))), msg)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_msgpack_random_bytes_never_crash(data: bytes) -> None:
    try:
        message = MSGPACK.decode(data)
    except DecodeError:
        return
    assert type(message) is list


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=100).map(lambda s: ("[" + s).encode("utf-8", "surrogatepass")))
def test_json_random_bytes_never_crash(data: bytes) -> None:
    try:
        message = JSON.decode(data)
    except DecodeError:
        return
    assert type(message) is list


# ---------------------------------------------------------------------------------------------
# CBOR


def test_cbor_identity_and_round_trip() -> None:
    assert (CBOR.name, CBOR.subprotocol, CBOR.binary) == ("cbor", "wamp.2.cbor", True)
    message = [48, 1, {"a": 1}, "p", [1, 2**70, -(2**70), b"\x00\x01", "\u00e9", 1.5, None, True], {"k": [{}]}]
    assert same(CBOR.decode(CBOR.encode(message)), message)


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        decimal.Decimal("1.5"),
        uuid.UUID(int=5),
        {1, 2},
        cbor2.CBORTag(99, 1),
    ],
    ids=["datetime", "decimal", "uuid", "set", "unknown-tag"],
)
def test_cbor_tags_other_than_big_integers_are_refused(value: Any) -> None:
    with pytest.raises(DecodeError):
        CBOR.decode(cbor2.dumps([48, 1, {}, "p", [value]]))


def test_cbor_undefined_is_an_absent_key_or_null() -> None:
    data = cbor2.dumps([48, 1, {"timeout": cbor2.undefined, "x": 1}, "p", [cbor2.undefined, {"k": cbor2.undefined}]])
    assert same(CBOR.decode(data), [48, 1, {"x": 1}, "p", [None, {}]])


@pytest.mark.parametrize("data", [b"", b"\xff", b"\x85\x18", cbor2.dumps({"a": 1}), cbor2.dumps([1, {1: 2}])])
def test_cbor_garbage_and_non_messages(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        CBOR.decode(data)


@pytest.mark.parametrize("ser", ["json", "msgpack"])
def test_payload_crosses_to_and_from_cbor(ser: str) -> None:
    message = [36, 1, 2, {}, [1, -1, 1.5, "x", b"\x00\xff", None, False, [], {}], {"n": {"m": [2**63 - 1]}}]
    other = SERIALIZERS[ser]
    assert same(other.decode(other.encode(CBOR.decode(CBOR.encode(message)))), message)
    assert same(CBOR.decode(CBOR.encode(other.decode(other.encode(message)))), message)


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_cbor_random_bytes_never_crash(data: bytes) -> None:
    try:
        CBOR.decode(data)
    except ProtocolError:
        pass
