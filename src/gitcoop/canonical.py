"""RFC 8785 (JCS) canonical JSON for the subset gitcoop records use.

Every signed or hashed gitcoop record is canonical JSON, so the same value always
has the same bytes. The subset is objects, arrays, strings, integers, booleans and
null: floats are refused because their canonical form (ECMAScript number printing)
is easy to get subtly wrong and gitcoop never needs them in signed records.

Encoding reuses the C JSON encoder: with ``ensure_ascii=False`` and compact
separators its string escaping is exactly JCS (only ``"``, ``\\`` and control
characters below U+0020 are escaped, with lowercase ``\\u00xx``), so the Python-level
work is one walk that validates types and orders object keys by UTF-16 code units,
which is the one thing ``sort_keys=True`` gets wrong (it sorts by code point).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from itertools import accumulate
from typing import Any

from gitcoop.errors import FormatError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "decode",
    "encode",
    "sha256_hex",
]

# JCS numbers are IEEE doubles: beyond this an integer no longer round-trips exactly.
MAX_SAFE_INTEGER = 2**53 - 1
DEFAULT_MAX_BYTES = 1 << 20
DEFAULT_MAX_DEPTH = 64

_ENCODER = json.JSONEncoder(
    ensure_ascii=False,
    separators=(",", ":"),
    allow_nan=False,
    # The walk below bounds depth and rebuilds containers, so cycles cannot reach it.
    check_circular=False,
)

# A JSON string token: the span json.loads treats as one string. Possessive
# quantifiers forbid backtracking, and an unterminated string runs to the end of the
# input, so every attempt succeeds and the scan stays linear (a plain pattern goes
# quadratic on '"\\"\\"\\"...' with no closing quote). Brackets after an unterminated
# string are never parsed by json.loads, so dropping them cannot hide real depth.
_STRING_TOKEN = re.compile(r'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_DELTA = {"[": 1, "{": 1, "]": -1, "}": -1}
_MAX_PATH_CHARS = 120


class _Rejected(Exception):
    """Raised inside the encode walk; collects the path while the stack unwinds."""

    def __init__(self, kind: type[Exception], reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.path: list[str | int] = []

    def to_error(self) -> Exception:
        return self.kind(f"{self.reason} at {_format_path(reversed(self.path))}")


def _format_path(segments: Iterable[str | int]) -> str:
    out = ["$"]
    for seg in segments:
        if isinstance(seg, int):
            out.append(f"[{seg}]")
        elif seg.isidentifier():
            out.append(f".{seg}")
        else:
            # json.dumps escapes to ASCII: one printable line whatever the key holds.
            out.append(f"[{json.dumps(seg)}]")
    path = "".join(out)
    # A cycle or a deep structure would otherwise produce a path hundreds of segments long.
    return path if len(path) <= _MAX_PATH_CHARS else "..." + path[-_MAX_PATH_CHARS:]


def _utf16_key(item: tuple[str, object]) -> bytes:
    # Big-endian UTF-16 bytes compare exactly like UTF-16 code unit sequences.
    return item[0].encode("utf-16-be")


def _check_str(value: str) -> None:
    # isascii() is a C-level flag check, so the common ASCII case costs nothing.
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _Rejected(ValueError, "lone surrogate in string") from exc


def _prepare(obj: object, depth: int, max_depth: int) -> object:
    """Validate ``obj`` and return an equal value whose dicts are in JCS key order."""
    if isinstance(obj, str):
        _check_str(obj)
        return obj
    # bool before int: bool is an int subclass but encodes as true/false.
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        if -MAX_SAFE_INTEGER <= obj <= MAX_SAFE_INTEGER:
            return obj
        raise _Rejected(ValueError, "integer outside +/-(2**53 - 1)")
    if isinstance(obj, dict | list | tuple):
        if depth >= max_depth:
            raise _Rejected(ValueError, f"nesting deeper than {max_depth}")
        if isinstance(obj, dict):
            return _prepare_dict(obj, depth + 1, max_depth)
        return _prepare_list(obj, depth + 1, max_depth)
    raise _Rejected(TypeError, f"unsupported type {type(obj).__name__}")


def _sorted_items(obj: dict[Any, Any]) -> list[tuple[str, Any]]:
    """Return the items of ``obj`` in JCS order, refusing keys that are not JSON strings."""
    try:
        # One C-level pass both type-checks all keys and gives one string to scan.
        joined = "".join(obj)
    except TypeError:
        bad = next(key for key in obj if not isinstance(key, str))
        # The path stops at the object: a non-str key has no JSON path segment.
        raise _Rejected(TypeError, f"unsupported object key type {type(bad).__name__}") from None
    if joined.isascii():
        # ASCII code points are UTF-16 code units, and keys are unique, so plain tuple
        # comparison orders by key alone and never compares values.
        return sorted(obj.items())
    for key in obj:
        try:
            _check_str(key)
        except _Rejected as rejected:
            rejected.reason = "lone surrogate in object key"
            rejected.path.append(key)
            raise
    return sorted(obj.items(), key=_utf16_key)


def _prepare_dict(obj: dict[Any, Any], depth: int, max_depth: int) -> dict[str, object]:
    out: dict[str, object] = {}
    # json.dumps keeps insertion order, so inserting in JCS order is all it takes.
    for key, value in _sorted_items(obj):
        try:
            out[key] = _prepare(value, depth, max_depth)
        except _Rejected as rejected:
            rejected.path.append(key)
            raise
    return out


def _prepare_list(obj: list[Any] | tuple[Any, ...], depth: int, max_depth: int) -> list[object]:
    out: list[object] = []
    for index, value in enumerate(obj):
        try:
            out.append(_prepare(value, depth, max_depth))
        except _Rejected as rejected:
            rejected.path.append(index)
            raise
    return out


def _encode(obj: object, max_depth: int) -> bytes:
    try:
        prepared = _prepare(obj, 0, max_depth)
    except _Rejected as rejected:
        raise rejected.to_error() from None
    except RecursionError:
        # Only reachable when a caller's max_depth exceeds the interpreter's stack.
        raise ValueError("nesting too deep to encode") from None
    # Cannot fail: every string was checked for lone surrogates above.
    return _ENCODER.encode(prepared).encode("utf-8")


def encode(obj: object) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of ``obj``.

    Accepts dict (str keys), list, tuple, str, int, bool and None, nested at most
    ``DEFAULT_MAX_DEPTH`` containers deep, so that whatever this returns ``decode``
    accepts (size aside). Object keys are ordered by UTF-16 code units as JCS requires.

    Raises:
        TypeError: a value or key of an unsupported type (float, Decimal, bytes,
            non-str key, ...); the message names the type and the path (``$.a[0]``).
        ValueError: an integer outside +/-(2**53 - 1), a string with a lone
            surrogate, or nesting deeper than ``DEFAULT_MAX_DEPTH`` (also how
            reference cycles surface); the message names the path.
    """
    return _encode(obj, DEFAULT_MAX_DEPTH)


def _max_depth_of(text: str) -> int:
    """Deepest bracket nesting outside strings, computed without recursion."""
    brackets = _NOT_BRACKET.sub("", _STRING_TOKEN.sub("", text))
    # accumulate/map/max all iterate in C: fast even for a megabyte of brackets.
    return max(accumulate(map(_BRACKET_DELTA.__getitem__, brackets)), default=0)


def _check_depth(text: str, max_depth: int) -> None:
    # Cheap upper bound first: most records have far fewer brackets than the limit.
    if text.count("[") + text.count("{") <= max_depth:
        return
    if _max_depth_of(text) > max_depth:
        raise FormatError(f"JSON nesting deeper than {max_depth}")


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise FormatError(f"duplicate object key {json.dumps(key)}")
            seen.add(key)
    return out


def _reject_float(literal: str) -> Any:
    raise FormatError(f"non-integer number {literal[:32]}")


def _reject_constant(literal: str) -> Any:
    raise FormatError(f"{literal} is not JSON")


def decode(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """Parse canonical JSON bytes and return plain dict/list/str/int/bool/None values.

    Only the exact bytes ``encode`` would produce are accepted, so a record has one
    byte form and its hash identifies it.

    Raises:
        FormatError: one-line reason when the input exceeds ``max_bytes`` (checked
            before anything else), is not UTF-8, nests deeper than ``max_depth``
            (checked before parsing, without recursion), is not JSON, has duplicate
            keys, non-integer numbers, NaN/Infinity, integers outside +/-(2**53 - 1),
            lone surrogates, or is valid JSON but not canonical (whitespace, key
            order, escapes, ``-0`` ...): "non-canonical payload".
    """
    if len(data) > max_bytes:
        raise FormatError(f"payload of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"payload is not valid UTF-8 (byte {exc.start})") from None
    fast = _decode_fast(data, text, max_depth)
    if fast is not _SLOW:
        return fast
    _check_depth(text, max_depth)
    value = _parse(text)
    try:
        canonical = _encode(value, max_depth)
    except ValueError as exc:
        raise FormatError(f"non-canonical payload: {exc}") from None
    if canonical != data:
        raise FormatError("non-canonical payload")
    return value


_SLOW = object()
# The C encoder sorts keys by code point, RFC 8785 by UTF-16 unit: they differ only for
# characters outside the BMP, which take four bytes in UTF-8.
_NON_BMP = re.compile(rb"[\xf0-\xff]")


def _decode_fast(data: bytes, text: str, max_depth: int) -> Any:
    """The common case in C: parse, re-encode with the stdlib, compare bytes.

    Returns _SLOW whenever the stdlib's output could differ from RFC 8785 or the input
    has anything unusual; the careful path then decides and names the problem.
    """
    if (not data.isascii() and _NON_BMP.search(data)) or (
        text.count("[") + text.count("{") > max_depth
    ):
        return _SLOW
    try:
        value = _FAST_DECODER.decode(text)
        again = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if again.encode("utf-8") == data:
            return value
    except (ValueError, FormatError, UnicodeEncodeError, RecursionError):
        pass
    return _SLOW


def _safe_int(literal: str) -> int:
    value = int(literal)
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise ValueError("integer outside the safe range")
    return value


_FAST_DECODER = json.JSONDecoder(
    parse_float=_reject_float, parse_int=_safe_int, parse_constant=_reject_constant
)


def _parse(text: str) -> Any:
    try:
        return json.loads(
            text,
            object_pairs_hook=_pairs_without_duplicates,
            parse_float=_reject_float,
            parse_constant=_reject_constant,
        )
    except json.JSONDecodeError as exc:
        raise FormatError(f"malformed JSON: {exc.msg} at char {exc.pos}") from None
    except RecursionError:
        # Only reachable when a caller raises max_depth past the interpreter's limit.
        raise FormatError("JSON nesting too deep to parse") from None
    except ValueError as exc:
        # e.g. an integer literal longer than Python's int/str conversion limit.
        raise FormatError(f"malformed JSON: {str(exc).splitlines()[0]}") from None


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex SHA-256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()
