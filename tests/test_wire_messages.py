"""Messages: the per-type table (FIELDS / MIN_LENGTH) and check_message. Pure: no I/O.

The cases are generated from the table plus one hand-written valid message per type, at its
maximum length; every shorter message down to MIN_LENGTH is valid too (that is the "with and
without the optional Arguments / ArgumentsKw" variants). The kind of each field (ID, dict,
list, string, message code) is read from the valid sample, and values of every other kind are
put in its place to check that the error names the message and the field.
"""

from __future__ import annotations

from typing import Any

import pytest

from promisifier.wire import MAX_ID, SERIALIZERS, MessageType, ProtocolError, check_message, message_name
from promisifier.wire.messages import FIELDS, MIN_LENGTH

WIRE_SERIALIZERS = ("json", "msgpack")

ARGS = [1, "two", None, True, 2.5, b"\x00\xffbin", [3, {"four": 4}], {"k": [b"x"]}]
KWARGS = {"a": 1, "b": "two", "bin": b"\x01\x02", "nested": {"list": [1, 2.5, None, False]}, "": ""}

#: one valid message per type, with every optional field present
FULL: dict[int, list] = {
    MessageType.HELLO: [1, "realm1", {"roles": {"caller": {"features": {"progressive_call_results": True}}}}],
    MessageType.WELCOME: [2, 9129137332, {"roles": {"broker": {}, "dealer": {}}, "authid": "anon"}],
    MessageType.ABORT: [3, {"message": "bye"}, "wamp.error.no_such_realm"],
    MessageType.CHALLENGE: [4, "wampcra", {"challenge": '{"nonce": 1}'}],
    MessageType.AUTHENTICATE: [5, "gir1mSx+deCDUV7FgLvsQNTi6n3W/Z/WcZ/OT9RwdZY=", {}],
    MessageType.GOODBYE: [6, {}, "wamp.close.close_realm"],
    MessageType.ERROR: [8, 48, 7814135, {}, "com.myapp.error", ARGS, KWARGS],
    MessageType.PUBLISH: [16, 239714735, {"acknowledge": True}, "com.myapp.topic", ARGS, KWARGS],
    MessageType.PUBLISHED: [17, 239714735, 4429313566],
    MessageType.SUBSCRIBE: [32, 713845233, {"match": "prefix"}, "com.myapp"],
    MessageType.SUBSCRIBED: [33, 713845233, 5512315355, {"_recovered": True}],
    MessageType.UNSUBSCRIBE: [34, 85346237, 5512315355],
    MessageType.UNSUBSCRIBED: [35, 85346237, {"reason": "wamp.error.canceled"}],
    MessageType.EVENT: [36, 5512315355, 4429313566, {"publisher": 1}, ARGS, KWARGS],
    MessageType.CALL: [48, 7814135, {"timeout": 1000}, "com.myapp.add", ARGS, KWARGS],
    MessageType.CANCEL: [49, 7814135, {"mode": "kill"}],
    MessageType.RESULT: [50, 7814135, {"progress": True}, ARGS, KWARGS],
    MessageType.REGISTER: [64, 25349185, {"invoke": "roundrobin"}, "com.myapp.add"],
    MessageType.REGISTERED: [65, 25349185, 2103333224],
    MessageType.UNREGISTER: [66, 788923562, 2103333224],
    MessageType.UNREGISTERED: [67, 788923562, {}],
    MessageType.INVOCATION: [68, 6131533, 9823526, {"caller": 9129137332}, ARGS, KWARGS],
    MessageType.INTERRUPT: [69, 6131533, {"mode": "killnowait"}],
    MessageType.YIELD: [70, 6131533, {"progress": False}, ARGS, KWARGS],
}

NAMES = {code: message_name(code) for code in FIELDS}

#: the error-text description of each field kind, as check_message writes it
DESCRIPTIONS = {
    "id": "an ID (int in [0, 2**53])",
    "code": "a message type code",
    "dict": "a dict",
    "list": "a list",
    "str": "a string",
    "uri": "a URI string",
}

#: fields that hold a URI (typed "uri" in the table; other string fields are "str")
URI_FIELDS = {"Realm", "Reason", "Error", "Topic", "Procedure"}

#: values of other kinds to put in a field of each kind (all must be refused)
WRONG: dict[str, list[Any]] = {
    "id": [None, True, False, -1, MAX_ID + 1, 2**64, 1.0, "1", b"1", [], {}],
    "code": [None, True, 0, 7, 999, 48.0, "48", [], {}],
    "dict": [None, True, 0, 1.5, "x", b"x", [], [["a", 1]]],
    "list": [None, True, 0, 1.5, "x", b"x", {}, (1, 2)],
    "str": [None, True, 0, 1.5, b"x", [], {}, ["a"]],
    "uri": [None, True, 0, 1.5, b"com.example", [], {}, ["com.example"]],
}


def kind_of(code: int, index: int) -> str:
    """The kind of field ``index`` of message type ``code``, read from the valid sample."""
    if FIELDS[code][index - 1] == "REQUEST.Type":
        return "code"
    if FIELDS[code][index - 1] in URI_FIELDS:
        return "uri"
    value = FULL[code][index]
    return {int: "id", dict: "dict", list: "list", str: "str"}[type(value)]


def type_name(value: Any) -> str:
    """How check_message names the type of a wrong value."""
    if value is None:
        return "null"
    if type(value) is bool:
        return "bool"
    if type(value) is int and not 0 <= value <= MAX_ID:
        return "int out of range"
    return type(value).__name__


def same(a: Any, b: Any) -> bool:
    """Equality that also compares types (``1``, ``1.0`` and ``True`` differ)."""
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def _valid_cases() -> list:
    return [
        pytest.param(FULL[code][:length], id=f"{NAMES[code]}-len{length}")
        for code in FIELDS
        for length in range(MIN_LENGTH[code], len(FULL[code]) + 1)
    ]


def _wrong_type_cases() -> list:
    cases = []
    for code in FIELDS:
        for index, field in enumerate(FIELDS[code], start=1):
            kind = kind_of(code, index)
            for n, wrong in enumerate(WRONG[kind]):
                cases.append(pytest.param(code, index, wrong, id=f"{NAMES[code]}-{field}-{type_name(wrong)}-{n}"))
    return cases


VALID_CASES = _valid_cases()


def test_table_and_samples_agree() -> None:
    """One sample per type, at full length; MIN_LENGTH within range; enum and names agree."""
    assert set(FULL) == set(FIELDS) == set(MIN_LENGTH) == {int(t) for t in MessageType}
    for code, sample in FULL.items():
        assert sample[0] == code
        assert len(sample) == len(FIELDS[code]) + 1, NAMES[code]
        assert 2 <= MIN_LENGTH[code] <= len(sample)
        assert NAMES[code] == MessageType(code).name


def test_optional_fields_are_arguments_or_trailing_details() -> None:
    """Only Arguments/ArgumentsKw (or a trailing Details) may be left out."""
    for code, fields in FIELDS.items():
        optional = fields[MIN_LENGTH[code] - 1 :]
        assert set(optional) <= {"Arguments", "ArgumentsKw", "Details"}, (NAMES[code], optional)
        if "ArgumentsKw" in fields:
            assert fields[-2:] == ("Arguments", "ArgumentsKw")


@pytest.mark.parametrize("msg", VALID_CASES)
def test_valid_message_passes_and_round_trips(msg: list) -> None:
    assert check_message(msg) is msg
    for ser in WIRE_SERIALIZERS:
        serializer = SERIALIZERS[ser]
        decoded = serializer.decode(serializer.encode(msg))
        assert same(decoded, msg), (ser, decoded)
        assert check_message(decoded) is decoded


@pytest.mark.parametrize("msg", VALID_CASES)
def test_valid_message_crosses_serializers(msg: list) -> None:
    """Received as msgpack, forwarded as JSON (and back): nothing changes."""
    json, msgpack = SERIALIZERS["json"], SERIALIZERS["msgpack"]
    assert same(json.decode(json.encode(msgpack.decode(msgpack.encode(msg)))), msg)
    assert same(msgpack.decode(msgpack.encode(json.decode(json.encode(msg)))), msg)


@pytest.mark.parametrize(("code", "index", "wrong"), _wrong_type_cases())
def test_wrong_field_type_is_refused(code: int, index: int, wrong: Any) -> None:
    msg = list(FULL[code])
    msg[index] = wrong
    with pytest.raises(ProtocolError) as info:
        check_message(msg)
    field = FIELDS[code][index - 1]
    description = DESCRIPTIONS[kind_of(code, index)]
    assert str(info.value) == f"{NAMES[code]}: {field} must be {description}, got {type_name(wrong)}"


@pytest.mark.parametrize(("code", "index", "wrong"), _wrong_type_cases())
def test_wrong_field_type_is_refused_in_shortest_form(code: int, index: int, wrong: Any) -> None:
    """The same in the shortest valid message that still has the field."""
    msg = FULL[code][: max(MIN_LENGTH[code], index + 1)]
    msg[index] = wrong
    with pytest.raises(ProtocolError, match=f"^{NAMES[code]}: "):
        check_message(msg)


def test_error_text_names_the_message_the_field_and_the_type_found() -> None:
    with pytest.raises(ProtocolError) as info:
        check_message([48, 1, [], "com.example.add"])
    assert str(info.value) == "CALL: Options must be a dict, got list"


def test_error_text_after_decoding() -> None:
    """What a peer sends goes through decode and then the same check."""
    for ser in WIRE_SERIALIZERS:
        serializer = SERIALIZERS[ser]
        msg = serializer.decode(serializer.encode([16, 1, {}, "com.example.topic", {"a": 1}]))
        with pytest.raises(ProtocolError, match="^PUBLISH: Arguments must be a list, got dict$"):
            check_message(msg)


@pytest.mark.parametrize(
    ("code", "length"),
    [
        pytest.param(code, length, id=f"{NAMES[code]}-len{length}")
        for code in FIELDS
        for length in range(1, MIN_LENGTH[code])
    ],
)
def test_missing_required_field_is_refused(code: int, length: int) -> None:
    msg = FULL[code][:length]
    with pytest.raises(ProtocolError) as info:
        check_message(msg)
    text = str(info.value)
    assert text.startswith(f"{NAMES[code]}: expected ") and text.endswith(f"elements, got {length}")


@pytest.mark.parametrize("code", [pytest.param(code, id=NAMES[code]) for code in FIELDS])
@pytest.mark.parametrize("extra", [{}, [], None, 1], ids=["dict", "list", "null", "int"])
def test_too_many_elements_are_refused(code: int, extra: Any) -> None:
    msg = FULL[code] + [extra]
    with pytest.raises(ProtocolError) as info:
        check_message(msg)
    text = str(info.value)
    assert text.startswith(f"{NAMES[code]}: expected ") and text.endswith(f"elements, got {len(msg)}")


def id_fields() -> list:
    return [
        pytest.param(code, index, id=f"{NAMES[code]}-{FIELDS[code][index - 1]}")
        for code in FIELDS
        for index in range(1, len(FIELDS[code]) + 1)
        if kind_of(code, index) == "id"
    ]


@pytest.mark.parametrize(("code", "index"), id_fields())
def test_bool_is_not_an_id(code: int, index: int) -> None:
    for value in (True, False):
        msg = list(FULL[code])
        msg[index] = value
        with pytest.raises(ProtocolError, match="got bool$"):
            check_message(msg)


@pytest.mark.parametrize(("code", "index"), id_fields())
def test_id_range(code: int, index: int) -> None:
    """IDs in [0, 2**53] pass (0 is tolerated on receipt); outside, they are refused."""
    for value in (0, 1, MAX_ID - 1, MAX_ID):
        msg = list(FULL[code])
        msg[index] = value
        assert check_message(msg) is msg
    for value in (-1, -(2**53), MAX_ID + 1, 2**63, 2**64 - 1):
        msg = list(FULL[code])
        msg[index] = value
        with pytest.raises(ProtocolError, match="got int out of range$"):
            check_message(msg)


def test_id_range_survives_serialization() -> None:
    """2**53 and 0 round-trip as ints; an ID sent as a float (1.0) is refused after decoding."""
    for ser in WIRE_SERIALIZERS:
        serializer = SERIALIZERS[ser]
        for value in (0, MAX_ID):
            msg = serializer.decode(serializer.encode([65, value, value]))
            assert same(msg, [65, value, value]) and check_message(msg) is msg
        msg = serializer.decode(serializer.encode([65, 1.0, 2]))
        with pytest.raises(ProtocolError, match="^REGISTERED: REGISTER.Request must be an ID"):
            check_message(msg)


@pytest.mark.parametrize(
    "code",
    [0, 7, 9, 15, 37, 71, 72, 255, 337, 1024, -1, -48, 2**64, True, False, None, 48.0, "48", "CALL", b"0", [48], {}],
)
def test_unknown_type_code_is_refused(code: Any) -> None:
    with pytest.raises(ProtocolError, match="^unknown message type "):
        check_message([code, 1, {}, "com.example.add"])


@pytest.mark.parametrize(
    "value",
    [None, {}, {"0": 48}, (48, 1, {}, "com.example.add"), "[48]", b"\x91\x30", 48, 1.5, True, set(), frozenset([1])],
    ids=lambda v: type(v).__name__,
)
def test_non_list_is_refused(value: Any) -> None:
    with pytest.raises(ProtocolError, match="^a WAMP message must be a list, got "):
        check_message(value)


def test_empty_list_is_refused() -> None:
    with pytest.raises(ProtocolError, match="must not be empty"):
        check_message([])


def test_list_subclass_is_refused() -> None:
    """Only plain lists: a decoder never produces anything else."""

    class Sneaky(list):
        pass

    with pytest.raises(ProtocolError):
        check_message(Sneaky([48, 1, {}, "com.example.add"]))


def test_dict_subclass_is_not_a_dict_field() -> None:
    class Sneaky(dict):
        pass

    with pytest.raises(ProtocolError, match="^CALL: Options must be a dict, got Sneaky$"):
        check_message([48, 1, Sneaky(), "com.example.add"])


def test_check_message_returns_the_same_object_unchanged() -> None:
    msg = [48, 1, {"x": [1]}, "com.example.add", [1, 2], {"a": b"b"}]
    copy = [48, 1, {"x": [1]}, "com.example.add", [1, 2], {"a": b"b"}]
    assert check_message(msg) is msg
    assert msg == copy


def test_uri_fields_are_typed_not_validated_here() -> None:
    """check_message checks that a URI field is a string; URI rules are applied by the router
    (it answers a bad URI with ERROR wamp.error.invalid_uri, not with a protocol violation)."""
    assert check_message([48, 1, {}, "not a valid uri"])
    with pytest.raises(ProtocolError, match="^CALL: Procedure must be a URI string, got int$"):
        check_message([48, 1, {}, 42])


def test_message_name() -> None:
    for member in MessageType:
        assert message_name(int(member)) == member.name
        assert message_name(member) == member.name
    assert message_name(999) == "UNKNOWN(999)"
    assert message_name(True) == "UNKNOWN(True)"
    assert message_name("48") == "UNKNOWN('48')"
    assert message_name(None) == "UNKNOWN(None)"
    assert message_name([48]) == "UNKNOWN([48])"
