"""The official WAMP test vectors (tests/vectors/, copied from ../shared/wamp-testsuite/).

Pure tests: no sockets, no reactor.

For every serialization sample, every ``json`` and ``msgpack`` byte variant must decode with
our serializer to a message that passes :func:`check_message` and whose fields equal the
sample's ``expected_attributes``; re-encoding the decoded message with either serializer must
decode back to an equal message. Each (file, sample, serializer, variant) is its own test.

How ``expected_attributes`` map onto the message list:

* Each attribute name maps to a field name of the message table (``FIELDS``), and so to a list
  position; ``ATTRIBUTES`` below spells the mapping out per message type. The vectors name the
  same thing differently from file to file (``subscription`` and ``subscription_id``), so both
  spellings are accepted where they occur.
* ``roles`` (HELLO, WELCOME) is ``Details["roles"]``.
* ``args: null`` / ``kwargs: null`` (or not given) means the element is absent, or present
  but empty (``[]`` / ``{}``): both are the same call on the wire. That lets ``[..., [], {...}]``
  mean "kwargs only".
* A list position no attribute speaks about must be absent or an empty dict / list, so a
  message with unexpected content fails.
* ``payload`` (not null) is payload passthru mode (E2EE): the binary payload sits where
  Arguments would be and ArgumentsKw is absent, with ``enc_algo`` (autobahn's name) or
  ``ppt_scheme`` (the spec's) in the Options or Details: ``check_message`` accepts it.
* ``EVENT_RECEIVED`` (code 337) is a provisional message type we do not implement: it must
  decode, and ``check_message`` must refuse it as an unknown type.

The validation samples (``wmsg``, a raw message list without bytes) exercise checks of
Options/Details *contents* (e.g. ``acknowledge`` must be a bool). The wire layer checks only a
message's envelope (length, field types); values inside Options/Details belong to the router.
So every ``wmsg`` is tested to round-trip and to pass ``check_message``, except those that put
a (hex) string where Arguments would be: they stand for a passthru payload and are refused.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from promisifier.wire import SERIALIZERS, ProtocolError, check_message
from promisifier.wire.messages import FIELDS, MIN_LENGTH, MessageType

VECTORS = Path(__file__).parent / "vectors"
WIRE_SERIALIZERS = ("json", "msgpack", "cbor")

#: message code -> {attribute name in the vectors: field name in FIELDS}
ATTRIBUTES: dict[int, dict[str, str]] = {
    MessageType.HELLO: {"realm": "Realm", "details": "Details", "roles": "Details"},
    MessageType.WELCOME: {"session_id": "Session", "details": "Details", "roles": "Details"},
    MessageType.ABORT: {"details": "Details", "reason": "Reason"},
    MessageType.CHALLENGE: {"method": "AuthMethod", "extra": "Extra"},
    MessageType.AUTHENTICATE: {"signature": "Signature", "extra": "Extra"},
    MessageType.GOODBYE: {"details": "Details", "reason": "Reason"},
    MessageType.ERROR: {
        "request_type": "REQUEST.Type",
        "request_id": "REQUEST.Request",
        "details": "Details",
        "error": "Error",
        "args": "Arguments",
        "kwargs": "ArgumentsKw",
    },
    MessageType.PUBLISH: {
        "request_id": "Request",
        "options": "Options",
        "topic": "Topic",
        "args": "Arguments",
        "kwargs": "ArgumentsKw",
        "payload": "Arguments",
    },
    MessageType.PUBLISHED: {"request_id": "PUBLISH.Request", "publication_id": "Publication"},
    MessageType.SUBSCRIBE: {"request_id": "Request", "options": "Options", "topic": "Topic"},
    MessageType.SUBSCRIBED: {"request_id": "SUBSCRIBE.Request", "subscription_id": "Subscription"},
    MessageType.UNSUBSCRIBE: {"request_id": "Request", "subscription_id": "SUBSCRIBED.Subscription"},
    MessageType.UNSUBSCRIBED: {"request_id": "UNSUBSCRIBE.Request", "details": "Details"},
    MessageType.EVENT: {
        "subscription": "SUBSCRIBED.Subscription",
        "subscription_id": "SUBSCRIBED.Subscription",
        "publication": "PUBLISHED.Publication",
        "publication_id": "PUBLISHED.Publication",
        "details": "Details",
        "args": "Arguments",
        "kwargs": "ArgumentsKw",
        "payload": "Arguments",
    },
    MessageType.CALL: {
        "request_id": "Request",
        "options": "Options",
        "procedure": "Procedure",
        "args": "Arguments",
        "kwargs": "ArgumentsKw",
    },
    MessageType.CANCEL: {"request_id": "CALL.Request", "options": "Options"},
    MessageType.RESULT: {
        "request_id": "CALL.Request",
        "details": "Details",
        "args": "Arguments",
        "kwargs": "ArgumentsKw",
    },
    MessageType.REGISTER: {"request_id": "Request", "options": "Options", "procedure": "Procedure"},
    MessageType.REGISTERED: {"request_id": "REGISTER.Request", "registration_id": "Registration"},
    MessageType.UNREGISTER: {"request_id": "Request", "registration_id": "REGISTERED.Registration"},
    MessageType.UNREGISTERED: {"request_id": "UNREGISTER.Request", "details": "Details"},
    MessageType.INVOCATION: {
        "request_id": "Request",
        "registration_id": "REGISTERED.Registration",
        "details": "Details",
        "args": "Arguments",
        "kwargs": "ArgumentsKw",
    },
    MessageType.INTERRUPT: {"request_id": "INVOCATION.Request", "options": "Options"},
    MessageType.YIELD: {
        "request_id": "INVOCATION.Request",
        "options": "Options",
        "args": "Arguments",
        "kwargs": "ArgumentsKw",
    },
}

#: message types in the vectors that our table does not have: code -> {attribute: position}
UNKNOWN_TYPES: dict[int, dict[str, int]] = {337: {"publication_id": 1}}  # EVENT_RECEIVED

#: attributes that are not a list position of their own
NESTED = {"roles": "roles"}  # attribute -> key inside the dict at the mapped position
OPTIONAL_EMPTY = {"args": [], "kwargs": {}}


def positions(code: int) -> dict[str, int]:
    """Attribute name -> list position, for a message code."""
    if code in UNKNOWN_TYPES:
        return UNKNOWN_TYPES[code]
    fields = FIELDS[code]
    return {attr: fields.index(field) + 1 for attr, field in ATTRIBUTES[code].items()}


def same(a: Any, b: Any) -> bool:
    """Equality that also compares types (so ``1 == 1.0 == True`` do not pass for each other)."""
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def check_attributes(msg: list, expected: dict[str, Any]) -> None:
    """Assert that ``msg`` carries exactly the ``expected`` attributes (rules in the module doc)."""
    code = expected["message_type"]
    assert same(msg[0], code)
    where = positions(code)
    covered = {0}
    for attr, value in expected.items():
        if attr == "message_type":
            continue
        assert attr in where, f"no mapping for attribute {attr!r} of message type {code}"
        index = where[attr]
        if attr in NESTED:
            covered.add(index)
            assert index < len(msg) and type(msg[index]) is dict, (attr, msg)
            assert same(msg[index].get(NESTED[attr]), value), (attr, msg)
        elif attr == "payload":
            if value is None:
                continue
            covered.add(index)
            assert index == len(msg) - 1, f"the passthru payload must be the last element: {msg}"
            assert same(msg[index], bytes.fromhex(value)), (attr, msg)
        elif value is None and attr in OPTIONAL_EMPTY:
            covered.add(index)
            if index < len(msg) and not ("payload" in expected and expected["payload"] is not None):
                assert same(msg[index], OPTIONAL_EMPTY[attr]), (attr, msg)
        else:
            covered.add(index)
            assert index < len(msg), f"attribute {attr!r} missing (position {index}): {msg}"
            assert same(msg[index], value), (attr, msg[index], value)
    for index in range(len(msg)):
        if index not in covered:
            assert msg[index] in ({}, []), f"position {index} holds unexpected {msg[index]!r}"


def unsupported_reason(expected: dict[str, Any]) -> str | None:
    """Why ``check_message`` must refuse this sample, or None when it must accept it."""
    code = expected["message_type"]
    if code not in FIELDS:
        return f"unknown message type {code}"
    return None


def variant_bytes(variant: dict[str, Any]) -> bytes:
    """The bytes of one serialization variant; when given twice, both forms must agree."""
    forms = []
    if "bytes" in variant:
        forms.append(variant["bytes"].encode("utf-8"))
    if "bytes_hex" in variant:
        forms.append(bytes.fromhex(variant["bytes_hex"]))
    if "bytes_base64" in variant:
        forms.append(base64.b64decode(variant["bytes_base64"]))
    assert forms, f"variant without bytes: {variant}"
    assert all(form == forms[0] for form in forms), f"bytes, bytes_hex, bytes_base64 disagree: {variant}"
    return forms[0]


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


SINGLE_FILES = sorted((VECTORS / "singlemessage").rglob("*.json"))
MULTI_FILES = sorted((VECTORS / "multisession").rglob("*.json"))


def _name(path: Path) -> str:
    """A short test id part: ``basic/call`` for ``singlemessage/basic/call.json``."""
    return path.relative_to(VECTORS).with_suffix("").as_posix().removeprefix("singlemessage/")


def _serialization_cases() -> list:
    cases = []
    for path in SINGLE_FILES:
        vector = load(path)
        for s_index, sample in enumerate(vector["samples"]):
            if "serializers" not in sample:
                continue
            for ser in WIRE_SERIALIZERS:
                for v_index, variant in enumerate(sample["serializers"].get(ser, ())):
                    cases.append(
                        pytest.param(
                            variant_bytes(variant),
                            ser,
                            sample["expected_attributes"],
                            id=f"{_name(path)}-s{s_index}-{ser}{v_index}",
                        )
                    )
    return cases


def _validation_cases() -> list:
    cases = []
    for path in SINGLE_FILES:
        vector = load(path)
        for s_index, sample in enumerate(vector["samples"]):
            if "wmsg" in sample:
                cases.append(pytest.param(sample, id=f"{_name(path)}-s{s_index}"))
    return cases


def _multisession_cases() -> list:
    cases = []
    for path in MULTI_FILES:
        for step in load(path)["sequence"]:
            cases.append(pytest.param(step["message"], id=f"{_name(path)}-step{step['step']}"))
    return cases


SERIALIZATION_CASES = _serialization_cases()
VALIDATION_CASES = _validation_cases()
MULTISESSION_CASES = _multisession_cases()


def test_vectors_are_present() -> None:
    """The copied vectors are there, with their notes, and every sample offers json and msgpack."""
    assert (VECTORS / "SOURCE.md").is_file() and (VECTORS / "LEGAL.md").is_file()
    assert len(SINGLE_FILES) >= 20 and MULTI_FILES
    for path in SINGLE_FILES:
        for sample in load(path)["samples"]:
            if "serializers" in sample:
                for ser in WIRE_SERIALIZERS:
                    assert sample["serializers"].get(ser), f"{path.name}: {sample['description']}: no {ser}"


def test_every_message_type_has_a_vector() -> None:
    """Each type of our table is covered by at least one serialization sample."""
    codes = {expected["message_type"] for _, _, expected in (c.values for c in SERIALIZATION_CASES)}
    assert set(FIELDS) <= codes, sorted(set(FIELDS) - codes)


def test_attribute_mapping_matches_table() -> None:
    """Every mapped field name exists in FIELDS (so a reordered table would show up here)."""
    assert set(ATTRIBUTES) == set(FIELDS)
    for code, mapping in ATTRIBUTES.items():
        for field in mapping.values():
            assert field in FIELDS[code], (code, field)


@pytest.mark.parametrize(("payload", "ser", "expected"), SERIALIZATION_CASES)
def test_sample_decodes_to_expected_attributes(payload: bytes, ser: str, expected: dict[str, Any]) -> None:
    msg = SERIALIZERS[ser].decode(payload)
    check_attributes(msg, expected)
    reason = unsupported_reason(expected)
    if reason is None:
        assert check_message(msg) is msg
    else:
        with pytest.raises(ProtocolError) as info:
            check_message(msg)
        assert reason in str(info.value)


@pytest.mark.parametrize(("payload", "ser", "expected"), SERIALIZATION_CASES)
def test_sample_reencodes_in_both_serializers(payload: bytes, ser: str, expected: dict[str, Any]) -> None:
    msg = SERIALIZERS[ser].decode(payload)
    for other in WIRE_SERIALIZERS:
        again = SERIALIZERS[other].decode(SERIALIZERS[other].encode(msg))
        assert same(again, msg), (other, again, msg)
        check_attributes(again, expected)


def test_serializations_of_one_sample_agree() -> None:
    """All json and msgpack variants of one sample decode to the very same message."""
    for path in SINGLE_FILES:
        for sample in load(path)["samples"]:
            if "serializers" not in sample:
                continue
            decoded = [
                SERIALIZERS[ser].decode(variant_bytes(variant))
                for ser in WIRE_SERIALIZERS
                for variant in sample["serializers"][ser]
            ]
            assert all(same(d, decoded[0]) for d in decoded), (path.name, sample["description"], decoded)


@pytest.mark.parametrize("sample", VALIDATION_CASES)
def test_validation_sample_envelope(sample: dict[str, Any]) -> None:
    """A raw ``wmsg``: round-trips in both serializers; its envelope is judged by check_message.

    ``expected_error`` samples break a rule about Options/Details values, which the router
    checks, not the wire layer: their envelope is valid.
    """
    msg = sample["wmsg"]
    for ser in WIRE_SERIALIZERS:
        assert same(SERIALIZERS[ser].decode(SERIALIZERS[ser].encode(msg)), msg)
    args_index = positions(msg[0]).get("args")
    if args_index is not None and args_index < len(msg) and type(msg[args_index]) is str:
        # a passthru payload, written as hex text in the vector: not a list of arguments
        with pytest.raises(ProtocolError, match="Arguments must be a list, got str"):
            check_message(msg)
    else:
        assert check_message(msg) is msg


def build_message(message: dict[str, Any]) -> list:
    """The list for a multisession step's message (``{"type": "EVENT", "args": [...], ...}``)."""
    code = int(MessageType[message["type"]])
    where = positions(code)
    by_index = {where[attr]: value for attr, value in message.items() if attr != "type"}
    length = max(by_index) + 1
    assert sorted(by_index) == list(range(1, length)), f"gap in {message}"
    assert length >= MIN_LENGTH[code]
    return [code] + [by_index[i] for i in range(1, length)]


@pytest.mark.parametrize("message", MULTISESSION_CASES)
def test_multisession_message(message: dict[str, Any]) -> None:
    """Every message of the sequence vectors, built as a list, is valid and round-trips."""
    msg = build_message(message)
    assert check_message(msg) is msg
    expected = {"message_type": msg[0], **{k: v for k, v in message.items() if k != "type"}}
    for ser in WIRE_SERIALIZERS:
        again = SERIALIZERS[ser].decode(SERIALIZERS[ser].encode(msg))
        assert same(again, msg)
        check_attributes(again, expected)
