"""Codec fuzzing, pure and in-process: whatever bytes a peer sends, ``decode`` followed by
``check_message`` gives a checked message list, :class:`DecodeError` or another
:class:`ProtocolError` — never any other exception — for both serializers.

Inputs (hypothesis): structured messages of every type code with fields of the right
and of the wrong kind and lengths around the allowed range; random bytes; valid
encodings mutated (bit flips, cuts, insertions, duplicated runs); deep nesting of lists
and dicts up to and beyond the decoders' depth limit; huge integers (JSON literals of
hundreds of digits, the 64-bit edges for msgpack) in every position; non-UTF-8 bytes in
JSON text and msgpack strings.

Beyond "no other exception", the checks compare against an oracle written here from the
WAMP specification (a message passes exactly when it is a list with a known type code,
an allowed length and fields of the right kinds), and check that a message that passed,
encoded again by either serializer (as the router does when it forwards it), gives an
:class:`EncodeError` or bytes that decode and pass again. That check found that a msgpack
text starting with NUL was written as a JSON string its receivers read as binary (or
refuse); the last test pins it.

About 1,300 examples in all by default, a few seconds. Hypothesis tests are not
``parametrize``d here: pytest-twisted runs each hypothesis example in the reactor and
breaks on parametrized ones; the serializer is drawn instead. The default number of examples keeps this file to a few seconds. Set the environment
variable ``PROMISIFIER_FUZZ_LONG=1`` for a long run (100 times the examples, about 134,000: ten minutes or more), e.g.::

    PROMISIFIER_FUZZ_LONG=1 python -m pytest tests/test_fuzz_wire.py
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from promisifier.wire import SERIALIZERS, DecodeError, EncodeError, ProtocolError, check_message

#: a long run: PROMISIFIER_FUZZ_LONG=1 (any value but "", "0")
LONG = os.environ.get("PROMISIFIER_FUZZ_LONG", "") not in ("", "0")
SCALE = 100 if LONG else 1

SER_NAMES = ("json", "msgpack")
#: hypothesis draws the serializer: pytest-twisted runs each hypothesis example in the
#: reactor and does not support hypothesis tests that are also parametrized
SERS = st.sampled_from(SER_NAMES)
MAX_ID = 2**53


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# -- the oracle: WAMP message formats, from the specification ----------------------------------

ID, DICT, LIST, URI, STR, CODE = "id", "dict", "list", "uri", "str", "code"

#: type code -> (minimum length, kinds of the fields after the code); the maximum length is
#: 1 + len(kinds). Basic profile plus CHALLENGE/AUTHENTICATE, CANCEL and INTERRUPT.
SPEC: dict[int, tuple[int, tuple[str, ...]]] = {
    1: (3, (URI, DICT)),  # HELLO Realm Details
    2: (3, (ID, DICT)),  # WELCOME Session Details
    3: (3, (DICT, URI)),  # ABORT Details Reason
    4: (3, (STR, DICT)),  # CHALLENGE AuthMethod Extra
    5: (3, (STR, DICT)),  # AUTHENTICATE Signature Extra
    6: (3, (DICT, URI)),  # GOODBYE Details Reason
    8: (5, (CODE, ID, DICT, URI, LIST, DICT)),  # ERROR Type Request Details Error Args Kw
    16: (4, (ID, DICT, URI, LIST, DICT)),  # PUBLISH
    17: (3, (ID, ID)),  # PUBLISHED
    32: (4, (ID, DICT, URI)),  # SUBSCRIBE
    33: (3, (ID, ID)),  # SUBSCRIBED
    34: (3, (ID, ID)),  # UNSUBSCRIBE
    35: (2, (ID, DICT)),  # UNSUBSCRIBED (Details: advanced profile)
    36: (4, (ID, ID, DICT, LIST, DICT)),  # EVENT
    48: (4, (ID, DICT, URI, LIST, DICT)),  # CALL
    49: (3, (ID, DICT)),  # CANCEL
    50: (3, (ID, DICT, LIST, DICT)),  # RESULT
    64: (4, (ID, DICT, URI)),  # REGISTER
    65: (3, (ID, ID)),  # REGISTERED
    66: (3, (ID, ID)),  # UNREGISTER
    67: (2, (ID, DICT)),  # UNREGISTERED (Details: advanced profile)
    68: (4, (ID, ID, DICT, LIST, DICT)),  # INVOCATION
    69: (3, (ID, DICT)),  # INTERRUPT
    70: (3, (ID, DICT, LIST, DICT)),  # YIELD
}


def kind_ok(kind: str, value: Any) -> bool:
    if kind == ID:
        return type(value) is int and 0 <= value <= MAX_ID
    if kind == CODE:
        return type(value) is int and value in SPEC
    if kind == DICT:
        return type(value) is dict
    if kind == LIST:
        return type(value) is list
    return type(value) is str  # URI, STR: URI rules are the router's business, not the codec's


def spec_valid(value: Any) -> bool:
    """The specification's verdict on a decoded value."""
    if type(value) is not list or not value or type(value[0]) is not int or value[0] not in SPEC:
        return False
    min_len, kinds = SPEC[value[0]]
    if not min_len <= len(value) <= 1 + len(kinds):
        return False
    return all(kind_ok(kind, field) for kind, field in zip(kinds, value[1:]))


# -- what the codec may do with any input ------------------------------------------------------


def outcome(ser: str, payload: bytes) -> Any:
    """``check_message(decode(payload))``: the checked list, or the ProtocolError raised.
    Any other exception propagates and fails the test."""
    serializer = SERIALIZERS[ser]
    try:
        decoded = serializer.decode(payload)
    except ProtocolError as error:  # DecodeError included
        assert isinstance(str(error), str) and str(error), "errors must say what was wrong"
        return error
    assert type(decoded) is list, f"decode returned {type(decoded).__name__}"
    try:
        checked = check_message(decoded)
    except DecodeError as error:
        raise AssertionError(f"check_message raised DecodeError: {error}") from None
    except ProtocolError as error:
        assert not spec_valid(decoded), f"check_message refused a valid message: {error} {decoded!r:.300}"
        assert str(error)
        return error
    assert checked is decoded
    assert spec_valid(checked), f"check_message let through {checked!r:.300}"
    reencode(checked)
    return checked


def reencode(message: list) -> None:
    """A message that passed is forwarded by the router: encoding it for a peer of either
    serializer gives EncodeError, or bytes that the peer can decode into a message that
    passes the check as well."""
    for name in SER_NAMES:
        serializer = SERIALIZERS[name]
        try:
            payload = serializer.encode(message)
        except EncodeError:
            continue
        try:
            again = check_message(serializer.decode(payload))
        except ProtocolError as error:
            raise AssertionError(
                f"{name} encoded {message!r:.300} into a frame its own decoder refuses: {error}"
            ) from None
        assert again[0] == message[0] and len(again) == len(message)


def assert_allowed(ser: str, payload: bytes) -> Any:
    result = outcome(ser, payload)
    assert isinstance(result, (list, ProtocolError))
    return result


# -- value strategies ----------------------------------------------------------------------------

#: integers at and around the edges that matter: IDs (2**53), 64-bit, and beyond
EDGE_INTS = [0, 1, -1, MAX_ID, MAX_ID + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63)]
BEYOND_64_BITS = [2**64, -(2**63) - 1, 2**100, -(2**100), 10**30, 10**300, -(10**400)]

texts = st.text(max_size=12) | st.sampled_from(
    ["", "\x00", "\x00AA==", "\x00not base64!", "com.x", "wamp.close.normal", "\ud800", "a\x00b"]
)


def ints(ser: str) -> st.SearchStrategy:
    if ser == "json":
        return st.integers() | st.sampled_from(EDGE_INTS + BEYOND_64_BITS)
    return st.integers(-(2**63), 2**64 - 1) | st.sampled_from(EDGE_INTS)


def scalars(ser: str) -> st.SearchStrategy:
    options = [st.none(), st.booleans(), ints(ser), st.floats(), texts, st.binary(max_size=12)]
    if ser == "msgpack":
        options.append(st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=6)))
    return st.one_of(options)


def keys(ser: str) -> st.SearchStrategy:
    if ser == "json":
        return texts
    # msgpack maps may have any key: only strings are WAMP
    return texts | texts | texts | st.binary(max_size=4) | st.integers(-3, 3) | st.none() | st.booleans()


def values(ser: str, max_leaves: int = 10) -> st.SearchStrategy:
    return st.recursive(
        scalars(ser),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys(ser), children, max_size=4),
        max_leaves=max_leaves,
    )


def right_kind(kind: str, ser: str) -> st.SearchStrategy:
    if kind == ID:
        return st.integers(0, MAX_ID) | st.sampled_from([0, 1, MAX_ID])
    if kind == CODE:
        return st.sampled_from(sorted(SPEC))
    if kind == DICT:
        return st.dictionaries(texts, values(ser, 4), max_size=3)
    if kind == LIST:
        return st.lists(values(ser, 4), max_size=3)
    return texts


@st.composite
def structured(draw: Any, ser: str) -> list:
    """A message of a known type (mostly), with a length around the allowed range and
    each field of the right kind with probability 0.85."""
    if draw(st.integers(0, 19)) == 0:
        code = draw(st.sampled_from([0, 7, 9, 71, 255, 999, -1, 2**53, True, 48.0, "CALL", None]) | ints(ser))
        min_len, kinds = 3, (DICT, URI, LIST)
    else:
        code = draw(st.sampled_from(sorted(SPEC)))
        min_len, kinds = SPEC[code]
    length = draw(st.integers(max(1, min_len - 1), len(kinds) + 2))
    message: list = [code]
    for index in range(1, length):
        kind = kinds[index - 1] if index <= len(kinds) else LIST
        if draw(st.integers(0, 99)) < 85:
            message.append(draw(right_kind(kind, ser)))
        else:
            message.append(draw(values(ser, 6)))
    return message


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return "\x00" + base64.b64encode(value).decode("ascii")
    raise TypeError(type(value).__name__)


def reference_encode(ser: str, value: Any, ascii_only: bool = True) -> bytes:
    """The bytes another implementation would send for ``value`` (with the standard
    library's json, which writes any int and NaN, or msgpack-python)."""
    if ser == "json":
        text = json.dumps(value, default=_json_default, ensure_ascii=ascii_only, allow_nan=True)
        return text.encode("utf-8", "surrogatepass")
    return msgpack.Packer(use_bin_type=True, unicode_errors="surrogatepass", strict_types=True).pack(value)


@st.composite
def encoded_structured(draw: Any, ser: str) -> bytes:
    message = draw(structured(ser))
    try:
        return reference_encode(ser, message, draw(st.booleans()))
    except (ValueError, TypeError, OverflowError):
        assume(False)  # not representable in the format at all (e.g. a 5000-digit int)
        raise


# -- properties --------------------------------------------------------------------------------


@fuzz_settings(150)
@given(ser=SERS, data=st.data())
def test_structured_messages_pass_exactly_when_the_spec_says(ser: str, data: Any) -> None:
    payload = data.draw(encoded_structured(ser))
    assert_allowed(ser, payload)


@fuzz_settings(400)
@given(
    ser=SERS, payload=st.binary(max_size=300) | st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
def test_random_bytes(ser: str, payload: bytes) -> None:
    assert_allowed(ser, payload)


MUTATIONS = ("flip", "delete", "insert", "truncate", "duplicate", "swap")


@st.composite
def mutated(draw: Any, ser: str) -> bytes:
    payload = bytearray(draw(encoded_structured(ser)))
    for _ in range(draw(st.integers(1, 4))):
        if not payload:
            break
        kind = draw(st.sampled_from(MUTATIONS))
        pos = draw(st.integers(0, len(payload) - 1))
        if kind == "flip":
            payload[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "delete":
            del payload[pos : pos + draw(st.integers(1, 8))]
        elif kind == "insert":
            payload[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "truncate":
            del payload[pos:]
        elif kind == "duplicate":
            end = pos + draw(st.integers(1, 16))
            payload[pos:pos] = payload[pos:end]
        else:
            payload[pos] = draw(st.integers(0, 255))
    return bytes(payload)


@fuzz_settings(150)
@given(ser=SERS, data=st.data())
def test_mutated_encodings(ser: str, data: Any) -> None:
    assert_allowed(ser, data.draw(mutated(ser)))


def nested(ser: str, depth: int, shape: str, leaf_kind: str) -> bytes:
    """``depth`` levels of lists / dicts / both around a leaf, as bytes (built directly:
    the reference encoders have their own recursion limits)."""
    if ser == "json":
        leaf = {"int": b"1", "binary": b'"\\u0000AAAA"', "empty": b"[]"}[leaf_kind]
        opens = {"list": (b"[", b"]"), "dict": (b'{"k":', b"}")}
    else:
        leaf = {"int": b"\x01", "binary": b"\xc4\x03AAA", "empty": b"\x90"}[leaf_kind]
        opens = {"list": (b"\x91", b""), "dict": (b"\x81\xa1k", b"")}
    head, tail = [], []
    for level in range(depth):
        which = shape if shape != "mixed" else ("list", "dict")[level % 2]
        head.append(opens[which][0])
        tail.append(opens[which][1])
    return b"".join(head) + leaf + b"".join(reversed(tail))


def wrap(ser: str, where: str, inner: bytes) -> bytes:
    """A CALL with ``inner`` as its arguments, keyword argument, option, or as the whole message."""
    if ser == "json":
        parts = {
            "args": b'[48,1,{},"com.x",[' + inner + b"]]",
            "kwargs": b'[48,1,{},"com.x",[],{"k":' + inner + b"}]",
            "options": b'[48,1,{"k":' + inner + b'},"com.x"]',
            "message": inner,
        }
    else:
        call = b"\x30\x01"
        parts = {
            "args": b"\x95" + call + b"\x80\xa5com.x\x91" + inner,
            "kwargs": b"\x96" + call + b"\x80\xa5com.x\x90\x81\xa1k" + inner,
            "options": b"\x94" + call + b"\x81\xa1k" + inner + b"\xa5com.x",
            "message": inner,
        }
    return parts[where]


@fuzz_settings(160)
@given(
    ser=SERS,
    depth=st.integers(1, 3000) | st.sampled_from([1000, 1020, 1021, 1022, 1023, 1024, 1025, 100_000]),
    shape=st.sampled_from(["list", "dict", "mixed"]),
    leaf=st.sampled_from(["int", "binary", "empty"]),
    where=st.sampled_from(["args", "kwargs", "options", "message"]),
)
def test_deep_nesting(ser: str, depth: int, shape: str, leaf: str, where: str) -> None:
    """Up to 1000 levels inside a message decode; from 1100 on, DecodeError (both
    decoders stop at about 1024); never a RecursionError or a crash."""
    result = assert_allowed(ser, wrap(ser, where, nested(ser, depth, shape, leaf)))
    if where != "message" and depth <= 1000:
        assert isinstance(result, list), f"depth {depth} in {where} refused: {result}"
    if depth >= 1100:
        assert isinstance(result, DecodeError), f"depth {depth}: {result!r:.200}"


@fuzz_settings(150)
@given(ser=SERS, data=st.data())
def test_huge_ints_anywhere(ser: str, data: Any) -> None:
    """Each field of a valid message replaced by a big or edge integer: IDs beyond 2**53
    are refused with ProtocolError; elsewhere the message is a message like any other."""
    code = data.draw(st.sampled_from(sorted(SPEC)))
    min_len, kinds = SPEC[code]
    message: list = [code] + [data.draw(right_kind(kind, ser)) for kind in kinds[: min_len - 1]]
    index = data.draw(st.integers(1, len(message) - 1))
    if ser == "json":
        huge = data.draw(st.integers(-(10**4000), 10**4000) | st.sampled_from(EDGE_INTS + BEYOND_64_BITS))
    else:
        huge = data.draw(st.sampled_from(EDGE_INTS) | st.integers(2**53, 2**64 - 1) | st.integers(-(2**63), -1))
    inside = data.draw(st.booleans()) and kinds[index - 1] in (LIST, DICT)
    message[index] = [huge] if inside and kinds[index - 1] == LIST else {"n": huge} if inside else huge
    result = assert_allowed(ser, reference_encode(ser, message))
    if kinds[index - 1] == ID and not inside and not 0 <= huge <= MAX_ID:
        assert isinstance(result, ProtocolError)


#: byte sequences that are not UTF-8 wherever they stand between two characters
INVALID_UTF8 = [
    b"\xff",
    b"\xfe",
    b"\x80",
    b"\xbf",
    b"\xc3(",
    b"\xc0\xaf",
    b"\xe0\x80\xaf",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80",
]


@fuzz_settings(100)
@given(data=st.data())
def test_non_utf8_json_is_a_decode_error(data: Any) -> None:
    """Invalid UTF-8 anywhere in a JSON frame — inside a string, a key, or between tokens."""
    payload = data.draw(encoded_structured("json"))
    boundaries = [i for i in range(len(payload) + 1) if i == len(payload) or not 0x80 <= payload[i] < 0xC0]
    pos = data.draw(st.sampled_from(boundaries))
    bad = data.draw(st.sampled_from(INVALID_UTF8))
    result = assert_allowed("json", payload[:pos] + bad + payload[pos:])
    assert isinstance(result, DecodeError), result


@fuzz_settings(150)
@given(
    bad=st.sampled_from(INVALID_UTF8),
    prefix=st.text(max_size=5),
    where=st.sampled_from(["procedure", "arg", "kwarg-key", "kwarg-value", "option-key", "nested-key"]),
)
def test_non_utf8_msgpack_strings_are_a_decode_error(bad: bytes, prefix: str, where: str) -> None:
    raw = prefix.encode("utf-8") + bad
    assert len(raw) < 32
    bad_str = bytes([0xA0 | len(raw)]) + raw  # fixstr with invalid UTF-8
    call = b"\x30\x01"
    payloads = {
        "procedure": b"\x94" + call + b"\x80" + bad_str,
        "arg": b"\x95" + call + b"\x80\xa5com.x\x91" + bad_str,
        "kwarg-key": b"\x96" + call + b"\x80\xa5com.x\x90\x81" + bad_str + b"\x01",
        "kwarg-value": b"\x96" + call + b"\x80\xa5com.x\x90\x81\xa1k" + bad_str,
        "option-key": b"\x94" + call + b"\x81" + bad_str + b"\x01\xa5com.x",
        "nested-key": b"\x95" + call + b"\x80\xa5com.x\x91\x81" + bad_str + b"\x01",
    }
    result = assert_allowed("msgpack", payloads[where])
    assert isinstance(result, DecodeError), result


@fuzz_settings(80)
@given(ser=SERS, data=st.data())
def test_valid_messages_pass_and_survive_forwarding(ser: str, data: Any) -> None:
    """Messages of the right shape with arbitrary payloads (the argument lists and dicts
    the router forwards without looking): they pass, and re-encode for either peer."""
    code = data.draw(st.sampled_from(sorted(SPEC)))
    min_len, kinds = SPEC[code]
    length = data.draw(st.integers(min_len, 1 + len(kinds)))
    message: list = [code]
    for kind in kinds[: length - 1]:
        if kind == LIST:
            message.append(data.draw(st.lists(values(ser, 12), max_size=5)))
        elif kind == DICT:
            message.append(data.draw(st.dictionaries(st.text(max_size=8), values(ser, 12), max_size=5)))
        else:
            message.append(data.draw(right_kind(kind, ser)))
    try:
        payload = reference_encode(ser, message, data.draw(st.booleans()))
    except (ValueError, TypeError, OverflowError):
        assume(False)
        raise
    assert_allowed(ser, payload)


@pytest.mark.parametrize(
    "message",
    [
        pytest.param([48, 1, {}, "com.x", ["\x00not base64!"]], id="nul-string-not-base64"),
        pytest.param([36, 1, 2, {}, [], {"k": ["\x00!"]}], id="nul-string-in-kwargs"),
        pytest.param([50, 1, {"x": "\x00A"}], id="nul-string-in-details"),
    ],
)
def test_a_msgpack_string_starting_with_nul_is_not_forwarded_as_broken_json(message: list) -> None:
    """Found by the re-encode property: a msgpack peer may send any text, but a JSON text
    starting with NUL is binary by the WAMP convention, and "\\x00" + not-base64 cannot be
    decoded by any JSON peer. Encoding such a message as JSON must fail (EncodeError: the
    router answers the sender or skips that receiver) rather than produce the frame."""
    decoded = check_message(SERIALIZERS["msgpack"].decode(msgpack.packb(message, use_bin_type=True)))
    reencode(decoded)
    with pytest.raises(EncodeError):
        SERIALIZERS["json"].encode(decoded)
