"""URI rules (loose / strict, with / without empty components) and WAMP IDs. Pure.

The examples come from the spec: basic/building_blocks.md (URIs, IDs), basic/uri_reference.md
(predefined error URIs) and the wildcard examples of the advanced pattern-based registration
and subscription sections. Hypothesis compares is_valid_uri with an oracle written from the
spec's prose (split on "."; a component must not be empty, contain ".", "#" or whitespace;
strict components use only lower-case letters, digits and "_").
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promisifier.wire import (
    MAX_ID,
    ErrorURI,
    IdSequence,
    ProtocolError,
    check_uri,
    is_id,
    is_valid_uri,
    random_id,
    uris,
)

# (loose, strict) x (no empty components, empty components allowed)
MODES = [(False, False), (False, True), (True, False), (True, True)]
MODE_IDS = ["loose", "loose-empty", "strict", "strict-empty"]

#: uri -> set of modes (strict, allow_empty) in which it is valid
EXAMPLES: dict[str, set[tuple[bool, bool]]] = {
    # the spec's examples: strict, so valid everywhere
    "com.myapp.mytopic1": set(MODES),
    "com.myapp.myprocedure1": set(MODES),
    "com.myapp.myerror1": set(MODES),
    "wamp.error.not_authorized": set(MODES),
    "wamp.error.procedure_already_exists": set(MODES),
    "a": set(MODES),
    "a1.b2.c3.d4": set(MODES),
    "com.my_app.topic_1": set(MODES),
    "0.1.2": set(MODES),
    # loose only: upper case, dashes, non-ASCII, punctuation other than "." and "#"
    "com.MyApp.MyTopic": {(False, False), (False, True)},
    "com.myapp.my-topic": {(False, False), (False, True)},
    "com.myapp.tópico": {(False, False), (False, True)},
    "com.myapp.話題": {(False, False), (False, True)},
    "com.myapp.$weird!": {(False, False), (False, True)},
    "com.myapp/x:y": {(False, False), (False, True)},
    # empty components: the wildcard examples of the advanced profile
    "com.myapp..userevent": {(False, True), (True, True)},
    "com.myapp..myprocedure1": {(False, True), (True, True)},
    "a1.b2..d4.e5": {(False, True), (True, True)},
    "a1.b2.c33..e5": {(False, True), (True, True)},
    "a1.b2..d4.e5..g7": {(False, True), (True, True)},
    "a1...d4": {(False, True), (True, True)},
    ".com.myapp": {(False, True), (True, True)},
    "com.myapp.": {(False, True), (True, True)},
    ".": {(False, True), (True, True)},
    "..": {(False, True), (True, True)},
    "com.My-App..x": {(False, True)},
    # invalid everywhere: whitespace, "#", and the empty string
    "": set(),
    " ": set(),
    "com.my app.topic": set(),
    "com.myapp.topic ": set(),
    " com.myapp.topic": set(),
    "com.my\tapp": set(),
    "com.myapp\n": set(),  # "$" in a regex also matches before a final newline
    "com.myapp.\n": set(),
    "\n": set(),
    "com.my\u00a0app": set(),  # no-break space is whitespace too
    "com.my\u2003app": set(),
    "com.myapp.topic#1": set(),
    "com.myapp.#": set(),
    "#": set(),
    "com..my app": set(),
    "com..#": set(),
}


def oracle(uri: str, strict: bool, allow_empty: bool) -> bool:
    """The URI rules as the spec states them in words."""
    if uri == "":
        return False  # our choice: the empty string is never a URI, not even with empty components

    def component_ok(component: str) -> bool:
        if component == "":
            return allow_empty
        if strict:
            return all(c in string.ascii_lowercase + string.digits + "_" for c in component)
        return not any(c.isspace() or c in ".#" for c in component)

    return all(component_ok(c) for c in uri.split("."))


@pytest.mark.parametrize("uri", list(EXAMPLES), ids=[repr(u) for u in EXAMPLES])
@pytest.mark.parametrize(("strict", "allow_empty"), MODES, ids=MODE_IDS)
def test_uri_examples(uri: str, strict: bool, allow_empty: bool) -> None:
    expected = (strict, allow_empty) in EXAMPLES[uri]
    assert is_valid_uri(uri, strict=strict, allow_empty=allow_empty) is expected
    assert oracle(uri, strict, allow_empty) is expected  # the oracle itself agrees with the examples
    if expected:
        assert check_uri(uri, "CALL.Procedure", strict=strict, allow_empty=allow_empty) is uri
    else:
        with pytest.raises(ProtocolError) as info:
            check_uri(uri, "CALL.Procedure", strict=strict, allow_empty=allow_empty)
        assert str(info.value) == f"CALL.Procedure: invalid URI {uri!r}"


def test_defaults_are_loose_without_empty_components() -> None:
    assert is_valid_uri("com.MyApp.x") and not is_valid_uri("com..x")
    assert check_uri("com.MyApp.x") == "com.MyApp.x"
    with pytest.raises(ProtocolError, match="^URI: invalid URI 'com..x'$"):
        check_uri("com..x")


@pytest.mark.parametrize(
    "value",
    [None, [], ["com.example"], {}, {"com": 1}, 1, 0, 1.5, True, b"com.example", bytearray(b"x"), ("a",), object()],
    ids=lambda v: type(v).__name__,
)
def test_non_str_is_invalid_without_raising(value: object) -> None:
    for strict, allow_empty in MODES:
        assert is_valid_uri(value, strict=strict, allow_empty=allow_empty) is False
        with pytest.raises(ProtocolError, match="^Topic: invalid URI "):
            check_uri(value, "Topic", strict=strict, allow_empty=allow_empty)


def test_str_subclass_is_not_a_uri() -> None:
    """Only exact str, as a decoder produces."""

    class Sneaky(str):
        pass

    assert is_valid_uri(Sneaky("com.example")) is False


def test_results_are_cached() -> None:
    uri = "com.example.cache_test.unique_1"
    before = uris._matches.cache_info()
    for _ in range(5):
        assert is_valid_uri(uri)
        assert is_valid_uri(uri, strict=True)
    after = uris._matches.cache_info()
    assert after.misses - before.misses == 2  # once per mode
    assert after.hits - before.hits == 8


def test_cache_is_bounded() -> None:
    maxsize = uris._matches.cache_info().maxsize
    assert maxsize is not None and maxsize > 0
    for n in range(2000):
        is_valid_uri(f"com.example.many_{n}")
    assert uris._matches.cache_info().currsize <= maxsize


def test_error_uris_are_strict_wamp_uris() -> None:
    names = [name for name in vars(ErrorURI) if name.isupper()]
    assert len(names) >= 20
    for name in names:
        uri = getattr(ErrorURI, name)
        assert is_valid_uri(uri, strict=True), uri
        assert uri.startswith(("wamp.error.", "wamp.close."))
        assert uri.rsplit(".", 1)[1] == name.lower().removeprefix("close_"), (name, uri)
    for uri in (
        "wamp.error.invalid_uri",
        "wamp.error.no_such_procedure",
        "wamp.error.procedure_already_exists",
        "wamp.error.no_such_registration",
        "wamp.error.no_such_subscription",
        "wamp.error.invalid_argument",
        "wamp.error.canceled",
        "wamp.error.payload_size_exceeded",
        "wamp.close.system_shutdown",
        "wamp.close.close_realm",
        "wamp.close.goodbye_and_out",
        "wamp.error.protocol_violation",
        "wamp.error.not_authorized",
        "wamp.error.authorization_failed",
        "wamp.error.no_such_realm",
        "wamp.error.no_such_role",
    ):  # basic/uri_reference.md, in its order
        assert uri in {getattr(ErrorURI, n) for n in names}, uri


URI_ALPHABET = st.sampled_from(list("ab_z09.#. -AÉé\t\n\u00a0話$"))


@settings(max_examples=200, deadline=None)
@given(st.text(URI_ALPHABET, max_size=12))
def test_uri_rules_match_the_spec_prose(uri: str) -> None:
    for strict, allow_empty in MODES:
        assert is_valid_uri(uri, strict=strict, allow_empty=allow_empty) is oracle(uri, strict, allow_empty), (
            uri,
            strict,
            allow_empty,
        )


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(st.sampled_from(list("abc_019")), min_size=1, max_size=5), min_size=1, max_size=6))
def test_strict_uris_are_valid_in_every_mode(components: list[str]) -> None:
    uri = ".".join(components)
    for strict, allow_empty in MODES:
        assert is_valid_uri(uri, strict=strict, allow_empty=allow_empty)


# ---------------------------------------------------------------------------------------------
# IDs


def test_max_id() -> None:
    assert MAX_ID == 2**53 == 9007199254740992


def test_random_id_range() -> None:
    draws = [random_id() for _ in range(20_000)]
    assert all(type(d) is int and 1 <= d <= MAX_ID for d in draws)
    assert len(set(draws)) == len(draws)  # a repeat has probability ~2e-8
    # drawn over the whole range (each bound fails with probability ~2**-1000 or less)
    assert sum(d > MAX_ID // 2 for d in draws) > 9_000
    assert sum(d < MAX_ID // 2 for d in draws) > 9_000
    assert max(draws) > MAX_ID - MAX_ID // 100 and min(draws) < MAX_ID // 100


def test_random_id_lower_and_upper_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bounds handed to the generator are [1, 2**53], both included."""
    from promisifier.wire import ids

    seen = []

    class Recorder:
        def randint(self, low: int, high: int) -> int:
            seen.append((low, high))
            return high

    monkeypatch.setattr(ids, "_random", Recorder())
    assert random_id() == MAX_ID
    assert seen == [(1, MAX_ID)]


def test_id_sequence_counts_from_one() -> None:
    seq = IdSequence()
    assert [seq.next() for _ in range(5)] == [1, 2, 3, 4, 5]
    other = IdSequence()
    assert other.next() == 1  # sequences are independent
    assert seq.next() == 6


def test_id_sequence_wraps_after_max_id() -> None:
    seq = IdSequence()
    seq._last = MAX_ID - 2  # no public way to jump ahead 2**53 steps
    assert [seq.next() for _ in range(4)] == [MAX_ID - 1, MAX_ID, 1, 2]
    assert all(is_id(n) for n in (MAX_ID - 1, MAX_ID, 1, 2))


def test_id_sequence_never_yields_zero() -> None:
    seq = IdSequence()
    seq._last = MAX_ID
    assert seq.next() == 1


@pytest.mark.parametrize("value", [0, 1, 2, 2**32, 2**53 - 1, 2**53])
def test_is_id_accepts(value: int) -> None:
    assert is_id(value) is True


@pytest.mark.parametrize(
    "value",
    [True, False, -1, -(2**53), 2**53 + 1, 2**63, 2**64, 1.0, 0.0, 2.0**53, float("nan"), "1", b"1", None, [1], {1: 1}],
    ids=repr,
)
def test_is_id_refuses(value: object) -> None:
    assert is_id(value) is False


def test_is_id_agrees_with_check_message() -> None:
    """ids.is_id and the table's ID check are the same rule."""
    from promisifier.wire import check_message

    for value in (0, 1, MAX_ID, MAX_ID + 1, -1, True, 1.0, "1", None):
        try:
            check_message([65, value, 1])
            accepted = True
        except ProtocolError:
            accepted = False
        assert accepted is is_id(value), value
