"""RFC 8785 canonical JSON: golden vectors, cross-checks against rfc8785, rejections."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from gitcoop import canonical
from gitcoop.canonical import MAX_SAFE_INTEGER, decode, encode, sha256_hex
from gitcoop.errors import ExitCode, FormatError, GitcoopError

VECTORS_FILE = Path(__file__).parent / "vectors" / "canonical.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))


def _expected(vector: dict[str, Any]) -> bytes:
    if "canonical_hex" in vector:
        return bytes.fromhex(vector["canonical_hex"])
    return str(vector["canonical"]).encode("utf-8")


# --- golden vectors ------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_encode_matches_golden_vector(vector: dict[str, Any]) -> None:
    assert encode(vector["input"]) == _expected(vector)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_decode_round_trips_golden_vector(vector: dict[str, Any]) -> None:
    assert decode(_expected(vector)) == vector["input"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_golden_vectors_agree_with_rfc8785(vector: dict[str, Any]) -> None:
    # Guards the vector file itself against a hand edit.
    assert rfc8785.dumps(vector["input"]) == _expected(vector)


def test_vectors_cover_the_tricky_cases() -> None:
    names = " ".join(v["name"] for v in VECTORS)
    for topic in ("utf-16 order", "control characters", "non-ascii", "nested", "empty object"):
        assert topic in names


def test_utf16_order_differs_from_code_point_order() -> None:
    # The reason encode cannot use json.dumps(sort_keys=True).
    value = {"\ufb33": 1, "\U0001f600": 2}
    assert encode(value) == '{"\U0001f600":2,"\ufb33":1}'.encode()
    assert json.dumps(value, sort_keys=True, ensure_ascii=False) == '{"\ufb33": 1, "\U0001f600": 2}'


# --- cross-checks against the reference implementation --------------------------------

SAFE_INTS = st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
# Characters where UTF-16 and code point order disagree, plus escapes, so that random
# dict keys often exercise the ordering rule and not only ASCII.
TRICKY_CHARS = st.sampled_from(["a", "B", "\r", "\x00", "\x7f", "\xe9", "\ufb33", "\uffff"])
ASTRAL_CHARS = st.sampled_from(["\U00010000", "\U0001f600", "\U0010ffff"])
# Lone surrogates (category Cs) are excluded: JSON text cannot carry them.
ANY_CHAR = st.characters(exclude_categories=["Cs"])
KEYS = st.text(TRICKY_CHARS | ASTRAL_CHARS | ANY_CHAR, max_size=4)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | SAFE_INTS | st.text(ANY_CHAR | TRICKY_CHARS),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(KEYS, children, max_size=6),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_encode_matches_rfc8785(value: Any) -> None:
    assert encode(value) == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_decode_inverts_encode(value: object) -> None:
    assert decode(encode(value)) == value


@settings(max_examples=500, deadline=None)
@given(st.text(ANY_CHAR | TRICKY_CHARS | ASTRAL_CHARS))
def test_json_dumps_string_escaping_is_jcs(text: str) -> None:
    # The claim encode relies on: the C encoder's escaping already is JCS.
    ours = json.dumps(text, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert ours == rfc8785.dumps(text)


@pytest.mark.parametrize("code_point", [*range(0x80), 0x2028, 0x2029, 0xFEFF, 0xFFFF, 0x10FFFF])
def test_every_ascii_character_escapes_as_jcs(code_point: int) -> None:
    text = f"a{chr(code_point)}b"
    assert encode(text) == rfc8785.dumps(text)
    assert encode({text: text}) == rfc8785.dumps({text: text})


def test_sorted_keys_with_shared_prefixes() -> None:
    value = {"ab": 1, "a": 2, "abc": 3, "b": 4, "a\u0000": 5}
    assert encode(value) == rfc8785.dumps(value)


# --- encode: accepted shapes ---------------------------------------------------------


def test_encode_tuple_as_array() -> None:
    assert encode((1, (2, "x"))) == b'[1,[2,"x"]]'


def test_encode_bool_is_not_int() -> None:
    assert encode([True, False, 1, 0]) == b"[true,false,1,0]"


def test_encode_dict_subclass_is_sorted() -> None:
    assert encode(OrderedDict([("b", 1), ("a", 2)])) == b'{"a":2,"b":1}'


def test_encode_enum_members_as_their_values() -> None:
    class Color(StrEnum):
        RED = "red"

    assert encode({"code": ExitCode.SECURITY, Color.RED: Color.RED}) == b'{"code":3,"red":"red"}'


def test_encode_accepts_safe_integer_bounds() -> None:
    assert encode([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]) == b"[9007199254740991,-9007199254740991]"


def test_encode_accepts_maximum_depth() -> None:
    value: object = "leaf"
    for _ in range(canonical.DEFAULT_MAX_DEPTH):
        value = [value]
    assert decode(encode(value)) == value


# --- encode: rejections --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "type_name", "path"),
    [
        (1.0, "float", "$"),
        ({"a": [0, 1.5]}, "float", "$.a[1]"),
        (float("nan"), "float", "$"),
        ({"x": Decimal("1")}, "Decimal", "$.x"),
        ([b"raw"], "bytes", "$[0]"),
        ({"k": {1, 2}}, "set", "$.k"),
        ({"a b": [None, object()]}, "object", '$["a b"][1]'),
    ],
)
def test_encode_rejects_unsupported_types(value: object, type_name: str, path: str) -> None:
    with pytest.raises(TypeError, match=f"unsupported type {type_name} at") as info:
        encode(value)
    assert str(info.value).endswith(f" at {path}")


@pytest.mark.parametrize("key", [1, None, 1.5, b"k", ("t",)])
def test_encode_rejects_non_str_keys(key: object) -> None:
    with pytest.raises(TypeError, match=f"key type {type(key).__name__} at \\$.inner"):
        encode({"inner": {key: 1}})


@pytest.mark.parametrize("number", [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 2**64, -(10**30)])
def test_encode_rejects_unsafe_integers(number: int) -> None:
    with pytest.raises(ValueError, match=r"integer outside .* at \$\[0\]"):
        encode([number])


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("\ud800", "$"),
        (["ok", "x\udfff"], "$[1]"),
        ({"k": "\ud83d"}, "$.k"),
        ({"ok": {"\udc00": 1}}, '$.ok["\\udc00"]'),
    ],
)
def test_encode_rejects_lone_surrogates(value: object, path: str) -> None:
    with pytest.raises(ValueError, match="lone surrogate") as info:
        encode(value)
    assert str(info.value).endswith(f" at {path}")


def test_encode_rejects_excessive_depth_and_cycles() -> None:
    value: object = 1
    for _ in range(canonical.DEFAULT_MAX_DEPTH + 1):
        value = [value]
    with pytest.raises(ValueError, match="nesting deeper than 64"):
        encode(value)
    cycle: list[object] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="nesting deeper than 64"):
        encode(cycle)


# --- decode: rejections --------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"1.0", "non-integer number"),
        (b"[1.5]", "non-integer number"),
        (b"1e2", "non-integer number"),
        (b"1E2", "non-integer number"),
        (b"-0.0", "non-integer number"),
        (b"NaN", "NaN is not JSON"),
        (b"[Infinity]", "Infinity is not JSON"),
        (b'{"a":-Infinity}', "-Infinity is not JSON"),
        (b'{"a":1,"a":1}', 'duplicate object key "a"'),
        (b'{"b":{"x":1,"y":2,"x":3}}', 'duplicate object key "x"'),
        (b"\xff", "not valid UTF-8"),
        (b'"\xed\xa0\x80"', "not valid UTF-8"),  # a UTF-8-encoded surrogate
        (b'"\xc0\xaf"', "not valid UTF-8"),  # overlong encoding of "/"
        (b"", "malformed JSON"),
        (b"[1,]", "malformed JSON"),
        (b"01", "malformed JSON"),
        (b"'a'", "malformed JSON"),
        (b'"\x01"', "malformed JSON"),  # raw control character inside a string
        (b"\xef\xbb\xbf1", "malformed JSON"),  # UTF-8 byte order mark
        (b"1" * 5000, "malformed JSON"),  # beyond Python's int/str digit limit
        (b'"\\ud800"', "lone surrogate"),
        (b'["\\udc00x"]', "lone surrogate"),
        (b"9007199254740992", "integer outside"),
        (b"[-9007199254740992]", "integer outside"),
    ],
)
def test_decode_rejects_invalid(data: bytes, reason: str) -> None:
    with pytest.raises(FormatError, match=reason) as info:
        decode(data)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        b"-0",  # json.loads reads it as the int 0, whose canonical form is "0"
        b" 1",
        b"1 ",
        b"1\n",
        b"[1, 2]",
        b'{"a": 1}',
        b'{"b":1,"a":2}',
        b'{"\xef\xac\xb3":1,"\xf0\x9f\x98\x80":2}',  # code point order, not UTF-16 order
        b'"\\u0041"',
        b'"\\/"',
        b'"\\u000a"',
        b'"\\u001F"',
        b'"\\u00e9"',
        b'"\\ud83d\\ude00"',
        b'"\\u007f"',
        b"[true ]",
    ],
)
def test_decode_rejects_non_canonical(data: bytes) -> None:
    with pytest.raises(FormatError, match=r"^non-canonical payload$"):
        decode(data)


def test_decode_rejects_too_big_before_parsing() -> None:
    data = b"[" + b"1," * 600_000 + b"1]"
    with pytest.raises(FormatError, match="exceeds the 1048576-byte limit"):
        decode(data)
    # Not even UTF-8 is looked at: the size check comes first.
    with pytest.raises(FormatError, match="exceeds the 10-byte limit"):
        decode(b"\xff" * 11, max_bytes=10)
    assert decode(b"[1,2,3]", max_bytes=7) == [1, 2, 3]


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 10**5 + b"]" * 10**5,
        b"[" * 10**5,
        b'{"a":' * 10**5 + b"1" + b"}" * 10**5,
        b"[{" * 50_000,
    ],
)
def test_decode_rejects_very_deep_input_quickly(data: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(FormatError, match="nesting deeper than 64"):
        decode(data)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    "data",
    [
        # Unterminated strings full of escaped quotes: a naive string-skipping regex
        # rescans from every quote and goes quadratic.
        b"[" * 100 + b'"' + b'\\"' * 400_000,
        b"[" * 100 + b'"' + b'\\"' * 400_000 + b"\\",
        b"[" * 100 + b'"\\' * 400_000,
        b"[" * 100 + b'"' * 900_000,
    ],
)
def test_decode_depth_scan_is_linear_on_hostile_strings(data: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(FormatError):
        decode(data)
    assert time.perf_counter() - started < 1.0


def test_decode_depth_limit_is_exact() -> None:
    assert decode(b"[" * 64 + b"]" * 64) is not None
    with pytest.raises(FormatError, match="nesting deeper than 64"):
        decode(b"[" * 65 + b"]" * 65)
    assert decode(b'{"a":[[1]]}', max_depth=3) == {"a": [[1]]}
    with pytest.raises(FormatError, match="nesting deeper than 2"):
        decode(b'{"a":[[1]]}', max_depth=2)


def test_decode_depth_ignores_brackets_inside_strings() -> None:
    data = encode(["[" * 1000 + "{" * 1000, '\\"[[[', {"k]]]}": "}}}"}])
    assert decode(data) == ["[" * 1000 + "{" * 1000, '\\"[[[', {"k]]]}": "}}}"}]


def test_decode_returns_plain_types() -> None:
    value = decode(b'{"a":[1,"s",true,false,null,{}]}')
    assert value == {"a": [1, "s", True, False, None, {}]}
    assert type(value) is dict
    assert [type(item) for item in value["a"]] == [int, str, bool, bool, type(None), dict]


def test_decode_error_is_format_error_subclass_of_gitcoop_error() -> None:
    with pytest.raises(FormatError) as info:
        decode(b"{")
    assert isinstance(info.value, GitcoopError)
    assert info.value.exit_code == ExitCode.CHECK_FAILED


# --- helpers -------------------------------------------------------------------------


def test_sha256_hex() -> None:
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256_hex(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
