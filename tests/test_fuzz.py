"""The fuzzing battery: Hypothesis mutates envelopes, statements, events, ledger entries,
challenge.yaml and metric output (bytes, fields, ordering, sizes, nesting).

Every mutation ends in gitcoop's own error, or, where the format allows the change
(a DSSE key id, unknown statement fields, another base64 spelling), in exactly the value
an oracle in this file predicts; never in another exception. Size bombs are refused
within seconds and with bounded memory.

``GITCOOP_SOAK=1`` runs every property with 20 times the examples.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import os
import re
import shlex
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
import rfc8785
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gitcoop import canonical, challenge, constants, decimals, dsse, ledger, metric, records
from gitcoop.errors import (
    ConfigError,
    FormatError,
    GitcoopError,
    MetricError,
    VerificationError,
)
from gitcoop.keys import SigningKey

T = TypeVar("T")
Draw = Callable[[st.SearchStrategy[Any]], Any]  # st.DrawFn or st.DataObject.draw
Path_ = tuple[str | int, ...]

# --------------------------------------------------------------------------- settings

SOAK = 20 if os.environ.get("GITCOOP_SOAK") == "1" else 1
settings.register_profile(
    "gitcoop-fuzz",
    deadline=None,
    database=None,  # nothing written under .hypothesis/ in the work tree
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def fuzz(examples: int) -> settings:
    """The fuzz profile with ``examples`` examples (times 20 under GITCOOP_SOAK=1)."""
    return settings(settings.get_profile("gitcoop-fuzz"), max_examples=examples * SOAK)


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Accept:
    """The call must return exactly ``value``."""

    value: object


Expect = Accept | type[GitcoopError]


def outcome(call: Callable[[], T]) -> T | GitcoopError:
    """The call's value, or the GitcoopError it raised; any other exception escapes and
    fails the test (that is the point)."""
    try:
        return call()
    except GitcoopError as exc:
        return exc


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "..."


def check(call: Callable[[], object], expect: Expect) -> object:
    got = outcome(call)
    if isinstance(expect, Accept):
        assert not isinstance(got, GitcoopError), f"refused: {got}"
        assert got == expect.value, f"{_short(got)} != {_short(expect.value)}"
    else:
        assert isinstance(got, expect), f"expected {expect.__name__}, got {_short(got)}"
    return got


# --------------------------------------------------------------------------- shared data

SEED = bytes(range(32))
KEY = SigningKey.from_private(Path("/nonexistent"), Ed25519PrivateKey.from_private_bytes(SEED))
OTHER_KEY = SigningKey.from_private(
    Path("/nonexistent"), Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
)
KEY_TEXT = KEY.public_openssh
INTOTO = constants.INTOTO_PAYLOAD_TYPE
HEX = "0123456789abcdef"
SHA1 = re.compile(r"[0-9a-f]{40}")
SHA256_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
HEX64 = re.compile(r"[0-9a-f]{64}")
MAX_SAFE = 2**53 - 1
MIB = 1 << 20


def _base_attestation(split: str) -> records.Attestation:
    return records.Attestation(
        commit="a" * 40,
        tree="b" * 40,
        challenge="sha256:" + "c" * 64,
        origin="d" * 64,
        metric="accuracy",
        direction="maximize",
        split=split,
        score=Decimal("0.91"),
        parent="e" * 40,
        parent_score=Decimal("0.875"),
        delta=Decimal("0.035"),
        environment={"gitcoop": "0.1.0", "python": "3.11.7"},
        duration_ms=1234,
        time="2026-01-01T00:00:00Z",
        signer=records.Signer(KEY.keyid, "ada@example.org", "Ada Lovelace"),
    )


# A payload whose base64 ends in padding, so that "unused bits set" has somewhere to go.
ATT = next(
    a
    for a in map(_base_attestation, ("public", "public-", "public--"))
    if len(canonical.encode(a.statement())) % 3
)
STATEMENT = ATT.statement()
PAYLOAD = canonical.encode(STATEMENT)
ENVELOPE = records.sign(STATEMENT, INTOTO, KEY)
PAYLOAD_B64: str = ENVELOPE["payload"]
SIG = base64.b64decode(ENVELOPE["signatures"][0]["sig"])
ACCEPTED = Accept((PAYLOAD, KEY.keyid))


def hexes(n: int) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from(HEX), min_size=n, max_size=n)


TEXT = st.text(max_size=16)  # any Unicode but lone surrogates
SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
SURROGATE_TEXT = st.builds(lambda a, s, b: a + s + b, TEXT, SURROGATES, TEXT)
SAFE_INTS = st.integers(-MAX_SAFE, MAX_SAFE)
JSON_SCALARS = st.none() | st.booleans() | SAFE_INTS | st.text(max_size=20)
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def json_type(value: object) -> str:
    """The JSON type of a decoded value; bool is not a number here."""
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", str: "string", list: "array", dict: "object"}[
        type(value)
    ]


def nested(depth: int, leaf: object = 0, *, as_object: bool = False) -> object:
    """``depth`` containers around ``leaf``, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = {"a": value} if as_object else [value]
    return value


# --------------------------------------------------------------------------- paths


def get_at(obj: Any, path: Path_) -> Any:
    for step in path:
        obj = obj[step]
    return obj


def set_at(obj: Any, path: Path_, value: object) -> None:
    get_at(obj, path[:-1])[path[-1]] = value


def drop_at(obj: Any, path: Path_) -> None:
    del get_at(obj, path[:-1])[path[-1]]


def all_paths(obj: object, prefix: Path_ = ()) -> list[Path_]:
    """Every path to a value inside ``obj`` (not the root)."""
    out: list[Path_] = []
    stack: list[tuple[object, Path_]] = [(obj, prefix)]
    while stack:
        node, here = stack.pop()
        items: list[tuple[str | int, object]] = []
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        for step, child in items:
            out.append((*here, step))
            stack.append((child, (*here, step)))
    return sorted(out, key=repr)


def dict_paths(obj: object) -> list[Path_]:
    """Paths of every object inside ``obj``, the root included."""
    return [p for p in [(), *all_paths(obj)] if isinstance(get_at(obj, p), dict)]


# --------------------------------------------------------------------------- byte mutations

# Bytes that change JSON's meaning or canonical form when dropped in anywhere.
NOISE = [
    *(bytes([c]) for c in b'"\\{}[],:0-.aeE+ \t\n/'),
    b"\x00",
    b"\x1f",
    b"\x7f",
    b"\xc3",
    b"\xff",
    b"\xed\xa0\x80",  # a surrogate, encoded as UTF-8 (invalid)
    b"\\u0061",
    b"\\ud800",
    b"\\/",
    b"1e400",
    b"-0",
    b"0.10",
    b"1.0",
    b"9007199254740993",
    b"null",
    b"true",
    b"NaN",
    b"Infinity",
    "\u00e9".encode(),
    "\U0001f600".encode(),
]


def mutate_bytes(data: bytes, draw: Draw, most: int = 3) -> bytes:
    """``data`` with a few bytes replaced, inserted or removed, or a span duplicated,
    moved or cut off."""
    for _ in range(draw(st.integers(1, most))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["put", "insert", "drop", "dup", "swap", "cut"]))
        if action in ("put", "insert"):
            noise = draw(st.sampled_from(NOISE) | st.binary(min_size=1, max_size=4))
            data = data[:at] + noise + data[at + (action == "put") :]
        elif action == "drop":
            data = data[:at] + data[at + draw(st.integers(1, 8)) :]
        elif action == "dup":
            end = draw(st.integers(at, min(len(data), at + 80)))
            data = data[:end] + data[at:end] + data[end:]
        elif action == "swap":
            mid = draw(st.integers(at, len(data)))
            end = draw(st.integers(mid, len(data)))
            data = data[:at] + data[mid:end] + data[at:mid] + data[end:]
        else:
            data = data[:at]
    return data


# --------------------------------------------------------------------------- respelling

_WS = [" ", "\t", "\n", "\r", "  \n"]


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be")


@dataclass
class Spelling:
    """Ways to write a JSON value other than the canonical one, all keeping its value."""

    shuffle: bool = False
    space: bool = False
    escape: bool = False
    numbers: bool = False
    duplicate: bool = False


class _Writer:
    """An independent JSON writer. Asked for nothing, it writes RFC 8785 bytes (keys by
    UTF-16 units, strings as json.dumps writes them with ensure_ascii=False); each
    ``Spelling`` flag lets it write the same value some other way."""

    def __init__(self, how: Spelling, draw: Draw) -> None:
        self.how = how
        self.draw = draw

    def ws(self) -> str:
        return self.draw(st.sampled_from(["", *_WS])) if self.how.space else ""

    def string(self, s: str) -> str:
        if not self.how.escape or not s or not self.draw(st.booleans()):
            return json.dumps(s, ensure_ascii=False)
        i = self.draw(st.integers(0, len(s) - 1))
        c = s[i]
        if ord(c) > 0xFFFF:
            hi, lo = divmod(ord(c) - 0x10000, 0x400)
            esc = f"\\u{0xD800 + hi:04x}\\u{0xDC00 + lo:04x}"
        elif c == "/" and self.draw(st.booleans()):
            esc = "\\/"
        else:
            esc = self.draw(st.sampled_from([f"\\u{ord(c):04x}", f"\\u{ord(c):04X}"]))
        head = json.dumps(s[:i], ensure_ascii=False)[:-1]
        return head + esc + json.dumps(s[i + 1 :], ensure_ascii=False)[1:]

    def number(self, n: int) -> str:
        if not self.how.numbers or not self.draw(st.booleans()):
            return str(n)
        forms = [f"{n}.0", f"{n}e0", f"{n}E+0", f"{n}.00e-0"]
        if n == 0:
            forms += ["-0", "0e5", "-0.0"]
        if n and n % 10 == 0:
            forms.append(f"{n // 10}e1")
        form: str = self.draw(st.sampled_from(forms))
        return form

    def obj(self, v: dict[str, object]) -> str:
        keys = sorted(v, key=_utf16)
        if self.how.shuffle and len(keys) > 1:
            keys = self.draw(st.permutations(keys))
        ws = self.ws
        pairs = [f"{ws()}{self.string(k)}{ws()}:{ws()}{self.write(v[k])}{ws()}" for k in keys]
        if self.how.duplicate and keys and self.draw(st.booleans()):
            pairs.insert(0, pairs[0])
        return "{" + ",".join(pairs) + "}" if pairs else "{" + ws() + "}"

    def write(self, v: object) -> str:
        if isinstance(v, dict):
            return self.obj(v)
        if isinstance(v, list):
            items = [f"{self.ws()}{self.write(x)}{self.ws()}" for x in v]
            return "[" + ",".join(items) + "]" if items else "[" + self.ws() + "]"
        if isinstance(v, str):
            return self.string(v)
        if v is None or isinstance(v, bool):
            return json.dumps(v)
        assert isinstance(v, int)
        return self.number(v)


def respell(value: object, how: Spelling, draw: Draw) -> bytes:
    """JSON text of ``value`` written as ``how`` asks (the canonical bytes when it asks
    for nothing)."""
    w = _Writer(how, draw)
    return (w.ws() + w.write(value) + w.ws()).encode("utf-8")


spellings = st.builds(
    Spelling, st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.booleans()
).filter(lambda how: how != Spelling())


# =========================================================================== 1. DSSE


_B64_TEXT = re.compile(r"[A-Za-z0-9+/]*={0,2}|[A-Za-z0-9_-]*={0,2}")


def reference_b64(text: str) -> bytes | None:
    """The bytes DSSE base64 ``text`` stands for (RFC 4648 standard or URL-safe alphabet,
    padded or not, unused bits zero), or None when it is not such base64."""
    if not _B64_TEXT.fullmatch(text):
        return None
    body = text.rstrip("=")
    if (body != text and len(text) % 4) or len(body) % 4 == 1:
        return None
    standard = body.replace("-", "+").replace("_", "/")
    data = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    if base64.b64encode(data).decode().rstrip("=") != standard:
        return None
    return data


def b64_spellings(data: bytes) -> list[str]:
    padded = base64.b64encode(data).decode()
    url = base64.urlsafe_b64encode(data).decode()
    return [padded, padded.rstrip("="), url, url.rstrip("=")]


B64_NOISE = "ABCDQRSTabcdwxyz0189+/-_=" + " \n!.\x00\u00e9"


@st.composite
def b64_edits(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few characters changed, inserted or removed."""
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["put", "insert", "drop", "cut"]))
        c = draw(st.sampled_from(B64_NOISE))
        if action == "put":
            text = text[:at] + c + text[at + 1 :]
        elif action == "insert":
            text = text[:at] + c + text[at:]
        elif action == "drop":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at]
    return text


def b64_expect(
    text: str, original: bytes, bad: type[GitcoopError], limit: int, *, empty: bool = False
) -> Expect:
    """What a field holding base64 ``text`` must give when ``original`` is the right value:
    the same result for any spelling of it, ``bad`` for other bytes, FormatError for
    text that is no base64 (or decodes to more than ``limit`` bytes, or to nothing
    unless ``empty`` may be)."""
    data = reference_b64(text)
    if data is None or (not data and not empty) or len(data) > limit:
        return FormatError
    return ACCEPTED if data == original else bad


def flip_bit(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    return data[: bit // 8] + bytes([data[bit // 8] ^ (1 << bit % 8)]) + data[bit // 8 + 1 :]


ENVELOPE_KEYS = ("payload", "payloadType", "signatures")
BAD_FIELD_NAMES = st.text(max_size=12) | st.sampled_from(
    ["Payload", "payload_type", "signature", "sigs", "keyId", "sig ", "", "payload\x00"]
)


def _non(kind: str) -> st.SearchStrategy[Any]:
    """JSON values (some very deep or very long) whose JSON type is not ``kind``."""
    odd = st.sampled_from(
        [nested(200), nested(50, as_object=True), "x" * 100_000, list(range(1000)), -1, True]
    )
    return (JSON_VALUES | odd).filter(lambda v: json_type(v) != kind)


Mutated = tuple[object, Expect]
_HAS_SURROGATE = re.compile("[\ud800-\udfff]")


def _drop(draw: Draw, env: dict[str, Any]) -> Mutated:
    where = draw(st.sampled_from([*ENVELOPE_KEYS, "sig", "keyid"]))
    if where in ("sig", "keyid"):
        del env["signatures"][0][where]
        return env, ACCEPTED if where == "keyid" else FormatError  # DSSE: keyid is optional
    del env[where]
    return env, FormatError


def _add_or_rename(draw: Draw, env: dict[str, Any]) -> Mutated:
    target = draw(st.sampled_from([env, env["signatures"][0]]))
    allowed = set(ENVELOPE_KEYS) if target is env else {"keyid", "sig"}
    name = draw(BAD_FIELD_NAMES.filter(lambda n: n not in allowed))
    if draw(st.booleans()):
        target[name] = target.pop(draw(st.sampled_from(sorted(allowed))))
    else:
        target[name] = draw(JSON_VALUES)
    return env, FormatError


def _retype(draw: Draw, env: dict[str, Any]) -> Mutated:
    where = draw(st.sampled_from([*ENVELOPE_KEYS, "signatures[0]", "sig", "keyid", "root"]))
    expected_type = {"signatures": "array", "signatures[0]": "object", "root": "object"}
    value = draw(_non(expected_type.get(where, "string")))
    if where == "root":
        return value, FormatError
    if where == "signatures[0]":
        env["signatures"][0] = value
    elif where in ("sig", "keyid"):
        env["signatures"][0][where] = value
    else:
        env[where] = value
    return env, FormatError


def _payload_text(draw: Draw, env: dict[str, Any]) -> Mutated:
    env["payload"] = text = draw(b64_edits(PAYLOAD_B64))
    limit = dsse.MAX_PAYLOAD_BYTES
    return env, b64_expect(text, PAYLOAD, VerificationError, limit, empty=True)


def _payload_spelling(draw: Draw, env: dict[str, Any]) -> Mutated:
    env["payload"] = draw(st.sampled_from(b64_spellings(PAYLOAD)))
    return env, ACCEPTED


def _payload_bits(draw: Draw, env: dict[str, Any]) -> Mutated:
    flipped = flip_bit(PAYLOAD, draw(st.integers(0, len(PAYLOAD) * 8 - 1)))
    env["payload"] = draw(st.sampled_from(b64_spellings(flipped)))
    return env, VerificationError


def _payload_bytes(draw: Draw, env: dict[str, Any]) -> Mutated:
    data = draw(st.binary(max_size=300) | st.sampled_from([PAYLOAD[:-1], PAYLOAD + b" "]))
    assume(data != PAYLOAD)
    env["payload"] = base64.b64encode(data).decode()
    return env, VerificationError


_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _payload_unused_bits(draw: Draw, env: dict[str, Any]) -> Mutated:
    # The last character before the padding has bits no byte uses; set, they give the
    # same bytes another spelling, which is refused.
    text = PAYLOAD_B64.rstrip("=")
    spare = 0b1111 if PAYLOAD_B64.endswith("==") else 0b11
    changed = _B64_ALPHABET[_B64_ALPHABET.index(text[-1]) | draw(st.integers(1, spare))]
    env["payload"] = text[:-1] + changed + PAYLOAD_B64[len(text) :] * draw(st.booleans())
    return env, FormatError


def _payload_type(draw: Draw, env: dict[str, Any]) -> Mutated:
    value = draw(TEXT | SURROGATE_TEXT | st.just("x" * 100_000))
    assume(value != INTOTO)
    env["payloadType"] = value
    return env, FormatError if not value or _HAS_SURROGATE.search(value) else VerificationError


def _keyid(draw: Draw, env: dict[str, Any]) -> Mutated:
    # A key id is an unauthenticated hint: any text does, but text must be Unicode.
    env["signatures"][0]["keyid"] = value = draw(TEXT | SURROGATE_TEXT | st.just("k" * 100_000))
    return env, FormatError if _HAS_SURROGATE.search(value) else ACCEPTED


def _sig_text(draw: Draw, env: dict[str, Any]) -> Mutated:
    sig0 = env["signatures"][0]
    sig0["sig"] = draw(b64_edits(sig0["sig"]))
    return env, b64_expect(sig0["sig"], SIG, VerificationError, 1024)


def _sig_bits(draw: Draw, env: dict[str, Any]) -> Mutated:
    flipped = flip_bit(SIG, draw(st.integers(0, 511)))
    env["signatures"][0]["sig"] = draw(st.sampled_from(b64_spellings(flipped)))
    return env, VerificationError


def _sig_bytes(draw: Draw, env: dict[str, Any]) -> Mutated:
    data = draw(st.binary(min_size=1, max_size=1100))
    assume(data != SIG)
    env["signatures"][0]["sig"] = base64.b64encode(data).decode()
    return env, FormatError if len(data) > 1024 else VerificationError


def _sig_other_key(draw: Draw, env: dict[str, Any]) -> Mutated:
    env["signatures"] = records.sign(STATEMENT, INTOTO, OTHER_KEY)["signatures"]
    return env, VerificationError


_JUNK_SIGNATURE = st.builds(
    lambda sig, keyid: {"keyid": keyid, "sig": base64.b64encode(sig).decode()},
    st.binary(min_size=1, max_size=80),
    TEXT,
)


def _signature_list(draw: Draw, env: dict[str, Any]) -> Mutated:
    # The valid signature among others, or none of it: any valid one suffices.
    sigs = draw(st.lists(_JUNK_SIGNATURE, max_size=20))
    keep = draw(st.booleans())
    if keep:
        sigs.insert(draw(st.integers(0, len(sigs))), env["signatures"][0])
    env["signatures"] = sigs
    if not sigs or len(sigs) > dsse.MAX_SIGNATURES:
        return env, FormatError
    return env, ACCEPTED if keep else VerificationError


ENVELOPE_MUTATIONS: list[Callable[[Draw, dict[str, Any]], Mutated]] = [
    _drop,
    _add_or_rename,
    _retype,
    _payload_text,
    _payload_spelling,
    _payload_bits,
    _payload_bytes,
    _payload_unused_bits,
    _payload_type,
    _keyid,
    _sig_text,
    _sig_bits,
    _sig_bytes,
    _sig_other_key,
    _signature_list,
]


@st.composite
def envelope_mutations(draw: st.DrawFn) -> Mutated:
    """One mutation of the valid envelope, and what opening it must give."""
    mutation: Callable[[Draw, dict[str, Any]], Mutated] = draw(st.sampled_from(ENVELOPE_MUTATIONS))
    return mutation(draw, copy.deepcopy(ENVELOPE))


@fuzz(800)
@given(envelope_mutations())
def test_every_envelope_mutation_is_refused_or_harmless(case: Mutated) -> None:
    envelope, expect = case
    check(lambda: records.open_payload(envelope, KEY_TEXT, INTOTO), expect)
    opened = outcome(lambda: records.open_envelope(envelope, KEY_TEXT, INTOTO))
    if isinstance(expect, Accept):
        assert opened == (STATEMENT, KEY.keyid)
    else:
        assert isinstance(opened, expect)
    # The one-pass envelope reader and the general one agree on every mutation.
    usual = outcome(lambda: dsse.Envelope.from_json(envelope))
    general = outcome(lambda: dsse.Envelope.parse(envelope))
    if isinstance(general, GitcoopError):
        assert isinstance(usual, FormatError) and isinstance(general, FormatError)
    else:
        assert usual == general


@fuzz(300)
@given(st.lists(envelope_mutations(), min_size=2, max_size=4))
def test_stacked_envelope_mutations_never_escape(cases: list[Mutated]) -> None:
    # Several mutations at once: the first one's envelope, with the later ones' fields
    # spliced in. Whatever comes out is gitcoop's error or the untouched payload.
    envelope: Any = cases[0][0]
    for other, _ in cases[1:]:
        if isinstance(envelope, dict) and isinstance(other, dict):
            envelope = {**envelope, **other}
    got = outcome(lambda: records.open_payload(envelope, KEY_TEXT, INTOTO))
    assert isinstance(got, FormatError | VerificationError) or got == ACCEPTED.value


def test_the_valid_envelope_opens() -> None:
    assert records.open_payload(ENVELOPE, KEY_TEXT, INTOTO) == (PAYLOAD, KEY.keyid)
    assert records.open_envelope(ENVELOPE, KEY_TEXT, INTOTO) == (STATEMENT, KEY.keyid)
    payload, _ = records.open_payload(ENVELOPE, KEY_TEXT, INTOTO)
    assert records.attestation_from_bytes(payload) == ATT


KEY_BLOB = base64.b64decode(KEY_TEXT.split()[1])


@st.composite
def key_mutations(draw: st.DrawFn) -> tuple[str, Expect]:
    kind = draw(st.sampled_from(["comment", "space", "prefix", "blob-bits", "blob-size", "text"]))
    token = KEY_TEXT.split()[1]
    if kind == "comment":
        return f"{KEY_TEXT} {draw(TEXT)}", ACCEPTED
    if kind == "space":
        return draw(st.sampled_from(["", " ", "\t", "\n"])) + KEY_TEXT + "\n", ACCEPTED
    if kind == "prefix":
        prefix = draw(st.sampled_from(["ssh-rsa", "SSH-ED25519", "ssh-ed25519x", "", "ecdsa"]))
        return f"{prefix} {token}", VerificationError
    if kind == "blob-bits":
        bit = draw(st.integers(0, len(KEY_BLOB) * 8 - 1))
        blob = flip_bit(KEY_BLOB, bit)
        return "ssh-ed25519 " + base64.b64encode(blob).decode(), VerificationError
    if kind == "blob-size":
        blob = draw(st.sampled_from([KEY_BLOB[:-1], KEY_BLOB + b"\0", KEY_BLOB[:19]]))
        return "ssh-ed25519 " + base64.b64encode(blob).decode(), VerificationError
    # "ssh-ed25519 <base64> [comment]", split on whitespace: the same blob is the same key.
    key_text = "ssh-ed25519 " + draw(b64_edits(token))
    parts = key_text.split()
    try:
        blob = base64.b64decode(parts[1], validate=True) if len(parts) > 1 else b""
    except ValueError:
        blob = b""
    same_but_length = len(blob) == 51 and blob[:15] + blob[19:] == KEY_BLOB[:15] + KEY_BLOB[19:]
    assume(blob == KEY_BLOB or not same_but_length)  # bug G
    same = blob == KEY_BLOB
    return key_text, ACCEPTED if same else VerificationError


@fuzz(300)
@given(key_mutations())
def test_every_key_text_mutation_is_refused_or_harmless(case: tuple[str, Expect]) -> None:
    key_text, expect = case
    check(lambda: records.open_payload(ENVELOPE, key_text, INTOTO), expect)


@fuzz(300)
@given(st.text(max_size=120) | st.binary(max_size=90).map(lambda b: "ssh-ed25519 " + b.hex()))
def test_arbitrary_key_text_is_a_verification_error(key_text: str) -> None:
    assume(key_text.split()[:2] != KEY_TEXT.split())
    check(lambda: records.open_payload(ENVELOPE, key_text, INTOTO), VerificationError)


# =========================================================================== 2. statements


def canonical_decimal_ok(text: object) -> bool:
    """The documented score form: plain decimal, no trailing fractional zeros, no -0, at
    most 40 digits."""
    return (
        isinstance(text, str)
        and re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?", text) is not None
        and text != "-0"
        and sum(c.isdigit() for c in text) <= 40
    )


DECIMAL_TEXT = st.one_of(
    st.sampled_from(["0", "1", "-1", "0.5", "1" * 40, "-" + "9" * 40, "0." + "0" * 38 + "1"]),
    st.builds(
        lambda i, places: decimals.decimal_text(Decimal(i).scaleb(-places)),
        st.integers(-(10**30), 10**30),
        st.integers(0, 9),
    ),
).filter(canonical_decimal_ok)
DECIMALS = DECIMAL_TEXT.map(Decimal)


@st.composite
def attestations(draw: st.DrawFn) -> records.Attestation:
    parent = draw(st.none() | hexes(40))
    return records.Attestation(
        commit=draw(hexes(40)),
        tree=draw(hexes(40)),
        challenge="sha256:" + draw(hexes(64)),
        origin=draw(hexes(64)),
        metric=draw(TEXT),
        direction=draw(st.sampled_from(["maximize", "minimize"])),
        split=draw(TEXT),
        score=draw(DECIMALS),
        parent=parent,
        parent_score=None if parent is None else draw(st.none() | DECIMALS),
        delta=draw(st.none() | DECIMALS),
        environment=draw(st.dictionaries(TEXT, TEXT, max_size=4)),
        duration_ms=draw(st.integers(0, MAX_SAFE)),
        time=draw(TEXT),
        signer=records.Signer(draw(TEXT), draw(TEXT), draw(TEXT)),
    )


def read_statement(data: bytes) -> records.Attestation:
    return records.attestation_from_bytes(data)


def general_statement(data: bytes) -> records.Attestation:
    return records.parse_attestation(canonical.decode(data))


@fuzz(200)
@given(attestations())
def test_attestations_round_trip_through_both_paths(att: records.Attestation) -> None:
    data = canonical.encode(att.statement())
    assert read_statement(data) == att
    assert general_statement(data) == att
    fast = records._usual_attestation(data)
    assert fast is None or fast == att


@fuzz(300)
@given(attestations(), st.data())
def test_statement_byte_mutations_fast_and_general_agree(
    att: records.Attestation, data: st.DataObject
) -> None:
    raw = mutate_bytes(canonical.encode(att.statement()), data.draw)
    got = outcome(lambda: read_statement(raw))
    general = outcome(lambda: general_statement(raw))
    fast = outcome(lambda: records._usual_attestation(raw))
    if isinstance(got, GitcoopError):
        assert isinstance(got, FormatError) and isinstance(general, FormatError)
    else:
        assert got == general
        assert canonical.encode(canonical.decode(raw)) == raw  # accepted bytes are canonical
    if isinstance(fast, GitcoopError):
        assert isinstance(fast, FormatError) and isinstance(general, FormatError)
    elif fast is not None:
        assert fast == general


@fuzz(100)
@given(attestations(), spellings, st.data())
def test_a_statement_in_other_bytes_is_refused(
    att: records.Attestation, how: Spelling, data: st.DataObject
) -> None:
    stmt = att.statement()
    assert respell(stmt, Spelling(), data.draw) == canonical.encode(stmt)  # the writer is right
    raw = respell(stmt, how, data.draw)
    assume(raw != canonical.encode(stmt))
    check(lambda: read_statement(raw), FormatError)
    check(lambda: records._usual_attestation(raw) or read_statement(raw), FormatError)


# The schema, as an oracle: each leaf's rule and what the attestation becomes.
Update = Callable[[records.Attestation, Any], records.Attestation]


def _is_str(v: object) -> bool:
    return isinstance(v, str)


def _matches(pattern: re.Pattern[str]) -> Callable[[object], bool]:
    return lambda v: isinstance(v, str) and pattern.fullmatch(v) is not None


def _count_ok(v: object) -> bool:
    return type(v) is int and v >= 0


def _opt_decimal(v: object) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def _parent_ok(v: object) -> bool:
    return v is None or (
        isinstance(v, dict)
        and {"commit", "score"} <= v.keys()
        and _matches(SHA1)(v["commit"])
        and (v["score"] is None or canonical_decimal_ok(v["score"]))
    )


def _env_ok(v: object) -> bool:
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


def _signer(a: records.Attestation, **kw: str) -> records.Attestation:
    return a._replace(signer=a.signer._replace(**kw))


LEAVES: dict[Path_, tuple[Callable[[object], bool], Update]] = {
    ("_type",): (lambda v: v == constants.STATEMENT_TYPE, lambda a, v: a),
    ("predicateType",): (lambda v: v == constants.PREDICATE_TYPE, lambda a, v: a),
    # The subject's name is never read: any value leaves the attestation as it was.
    ("subject", 0, "name"): (lambda v: True, lambda a, v: a),
    ("subject", 0, "digest", "gitCommit"): (_matches(SHA1), lambda a, v: a._replace(commit=v)),
    ("subject", 0, "digest", "gitTree"): (_matches(SHA1), lambda a, v: a._replace(tree=v)),
    ("predicate", "challenge", "digest"): (
        _matches(SHA256_DIGEST),
        lambda a, v: a._replace(challenge=v),
    ),
    ("predicate", "challenge", "origin"): (_matches(HEX64), lambda a, v: a._replace(origin=v)),
    ("predicate", "metric", "name"): (_is_str, lambda a, v: a._replace(metric=v)),
    ("predicate", "metric", "direction"): (
        lambda v: v in ("maximize", "minimize"),
        lambda a, v: a._replace(direction=v),
    ),
    ("predicate", "split"): (_is_str, lambda a, v: a._replace(split=v)),
    ("predicate", "time"): (_is_str, lambda a, v: a._replace(time=v)),
    ("predicate", "score"): (canonical_decimal_ok, lambda a, v: a._replace(score=Decimal(v))),
    ("predicate", "delta"): (
        lambda v: v is None or canonical_decimal_ok(v),
        lambda a, v: a._replace(delta=_opt_decimal(v)),
    ),
    ("predicate", "parent"): (
        _parent_ok,
        lambda a, v: (
            a._replace(parent=None, parent_score=None)
            if v is None
            else a._replace(parent=v["commit"], parent_score=_opt_decimal(v["score"]))
        ),
    ),
    ("predicate", "parent", "commit"): (_matches(SHA1), lambda a, v: a._replace(parent=v)),
    ("predicate", "parent", "score"): (
        lambda v: v is None or canonical_decimal_ok(v),
        lambda a, v: a._replace(parent_score=_opt_decimal(v)),
    ),
    ("predicate", "environment"): (_env_ok, lambda a, v: a._replace(environment=dict(v))),
    ("predicate", "durationMs"): (_count_ok, lambda a, v: a._replace(duration_ms=v)),
    ("predicate", "signer", "keyid"): (_is_str, lambda a, v: _signer(a, keyid=v)),
    ("predicate", "signer", "principal"): (_is_str, lambda a, v: _signer(a, principal=v)),
    ("predicate", "signer", "name"): (_is_str, lambda a, v: _signer(a, name=v)),
}
# Containers every statement needs, with the keys that make one acceptable.
CONTAINERS: dict[Path_, frozenset[str]] = {
    ("subject",): frozenset(),
    ("subject", 0): frozenset({"name", "digest"}),
    ("subject", 0, "digest"): frozenset({"gitCommit", "gitTree"}),
    ("predicate",): frozenset(
        {"challenge", "metric", "split", "score", "parent", "delta"}
        | {"environment", "durationMs", "time", "signer"}
    ),
    ("predicate", "challenge"): frozenset({"digest", "origin"}),
    ("predicate", "metric"): frozenset({"name", "direction"}),
    ("predicate", "signer"): frozenset({"keyid", "principal", "name"}),
}
ENV: Path_ = ("predicate", "environment")


def near_misses(original: object) -> st.SearchStrategy[Any]:
    """Values close to ``original``: one character off, other case, padded, a number
    spelled as a string, a boolean for a number..."""
    if isinstance(original, str) and original:
        return st.sampled_from(
            [
                original + "0",
                original[:-1],
                original.upper(),
                " " + original,
                original + "\n",
                "0x" + original,
                "",
                original.replace("0", "O"),
                "-0",
                "0.10",
                "1e3",
                "+1",
                "01",
                "1" * 41,
                "0." + "0" * 39 + "1",
                "NaN",
            ]
        )
    if isinstance(original, int) and not isinstance(original, bool):
        return st.sampled_from(
            [True, False, -1, original + 1, MAX_SAFE, str(original), [original], None]
        )
    return st.sampled_from(["", [], {}, None, 0])


Edited = tuple[dict[str, Any], Expect]


def _with_env(att: records.Attestation, key: object, value: object) -> Expect:
    # The environment is a map: its keys are part of the attestation, its values strings.
    if not isinstance(value, str):
        return FormatError
    return Accept(att._replace(environment={**att.environment, str(key): value}))


def _add_field(draw: st.DrawFn, att: records.Attestation, stmt: dict[str, Any]) -> Expect:
    where = draw(st.sampled_from(dict_paths(stmt)))
    target = get_at(stmt, where)
    key = draw(TEXT.filter(lambda k: k not in target))
    target[key] = value = draw(JSON_VALUES)
    return _with_env(att, key, value) if where == ENV else Accept(att)  # unknown: ignored


def _drop_field(draw: st.DrawFn, att: records.Attestation, stmt: dict[str, Any]) -> Expect:
    path = draw(st.sampled_from(all_paths(stmt)))
    drop_at(stmt, path)
    if path[:-1] != ENV:
        return FormatError  # every other field is required
    env = dict(att.environment)
    del env[str(path[-1])]
    return Accept(att._replace(environment=env))


def _replace_field(draw: st.DrawFn, att: records.Attestation, stmt: dict[str, Any]) -> Expect:
    path = draw(st.sampled_from(all_paths(stmt)))
    value = draw(JSON_VALUES | near_misses(get_at(stmt, path)))
    set_at(stmt, path, value)
    if path[:-1] == ENV:
        return _with_env(att, path[-1], value)
    if path in LEAVES:
        ok, update = LEAVES[path]
        return Accept(update(att, value)) if ok(value) else FormatError
    # A container: a random value that has what it needs is too unlikely to model.
    if path == ("subject",):
        assume(not (isinstance(value, list) and len(value) == 1))
    else:
        assume(not (isinstance(value, dict) and CONTAINERS[path] <= value.keys()))
    return FormatError


@st.composite
def statement_edits(draw: st.DrawFn) -> Edited:
    """One field-level edit of a valid statement and the attestation it must give."""
    att = draw(attestations())
    stmt = copy.deepcopy(att.statement())
    edit = draw(st.sampled_from([_add_field, _drop_field, _replace_field]))
    return stmt, edit(draw, att, stmt)


@fuzz(250)
@given(statement_edits())
def test_statement_field_edits_match_the_schema(case: Edited) -> None:
    stmt, expect = case
    check(lambda: records.parse_attestation(stmt), expect)
    check(lambda: read_statement(canonical.encode(stmt)), expect)


# --- reviews and events: generic edits -----------------------------------------------


@st.composite
def reviews(draw: st.DrawFn) -> dict[str, Any]:
    return records.Review(
        commit=draw(hexes(40)),
        tree=draw(hexes(40)),
        challenge="sha256:" + draw(hexes(64)),
        origin=draw(hexes(64)),
        reviewed="sha256:" + draw(hexes(64)),
        reviewed_keyid=draw(TEXT),
        reviewed_score=draw(DECIMALS),
        score=draw(DECIMALS),
        tolerance=draw(DECIMALS),
        result=draw(st.sampled_from([records.REPRODUCED, records.NOT_REPRODUCED])),
        duration_ms=draw(st.integers(0, MAX_SAFE)),
        time=draw(TEXT),
        signer=records.Signer(draw(TEXT), draw(TEXT), draw(TEXT)),
    ).statement()


def _event(kind: str, body: dict[str, Any], draw: st.DrawFn) -> dict[str, Any]:
    signer = records.Signer(draw(TEXT), draw(TEXT), draw(TEXT))
    return records.Event(kind, body, signer, draw(TEXT)).payload()


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(["genesis", "trust-update", "challenge-update", "anchor", "round-close"])
    )
    digest, origin = "sha256:" + draw(hexes(64)), draw(hexes(64))
    commit, count = draw(hexes(40)), draw(st.integers(0, MAX_SAFE))
    trust = draw(st.lists(TEXT, max_size=3))
    if kind == "genesis":
        body = records.genesis_body(draw(TEXT), digest, commit, trust)
    elif kind == "trust-update":
        body = records.trust_update_body(digest, origin, trust, count, commit)
    elif kind == "challenge-update":
        body = records.challenge_update_body(draw(TEXT), digest, origin, count, count, commit)
    elif kind == "round-close":
        body = records.round_close_body(digest, origin, draw(TEXT), commit, draw(hexes(64)))
    else:
        body = {
            "origin": origin,
            "chain": count,
            "tx": "0x" + draw(hexes(64)),
            "from": "0x" + draw(hexes(40)),
            "block": {"number": count, "hash": "0x" + draw(hexes(64))},
            "anchored": {"seq": count, "head": draw(hexes(64))},
        }
    return _event(kind, body, draw)


BODY_READERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "genesis": lambda b: (records.genesis_fields(b), records.genesis_trust(b)),
    "trust-update": records.trust_update_fields,
    "challenge-update": records.challenge_update_fields,
    "anchor": records.anchor_fields,
    "round-close": records.round_close_fields,
}


def read_event(obj: object, kind: str) -> object:
    """What an event says (its body as the body reader returns it, unknown fields left
    out)."""
    event = records.parse_event(obj, kind)
    return event.kind, event.signer, event.time, BODY_READERS[kind](event.body)


def read_review(obj: object) -> object:
    return records.parse_review(obj)


# Paths that must be present but whose value is never read (a statement's subject name,
# a trust update's source path), so any value there is harmless.
FREE = {("subject", 0, "name"), ("body", "source", "path")}


@st.composite
def generic_edits(
    draw: st.DrawFn, records_: st.SearchStrategy[dict[str, Any]], read: Callable[..., object]
) -> tuple[dict[str, Any], Callable[[], object], Expect]:
    """Drop a field, give a field a value of another JSON type, or add an unknown field:
    the first two are refused, the last changes nothing."""
    obj = draw(records_)
    kind = obj.get("kind")

    def reader(o: object) -> Callable[[], object]:
        return (lambda: read(o, kind)) if isinstance(kind, str) else (lambda: read(o))

    before = reader(copy.deepcopy(obj))()
    action = draw(st.sampled_from(["drop", "retype", "add"]))
    if action == "add":
        where = draw(st.sampled_from(dict_paths(obj)))
        target = get_at(obj, where)
        target[draw(TEXT.filter(lambda k: k not in target))] = draw(JSON_VALUES)
        return obj, reader(obj), Accept(before)
    paths = [p for p in all_paths(obj) if p not in FREE and not isinstance(p[-1], int)]
    path = draw(st.sampled_from(paths))
    if action == "drop":
        drop_at(obj, path)
    else:
        set_at(obj, path, draw(_non(json_type(get_at(obj, path)))))
    return obj, reader(obj), FormatError


@fuzz(300)
@given(generic_edits(reviews(), read_review) | generic_edits(events(), read_event))
def test_review_and_event_edits_are_refused_or_ignored(
    case: tuple[dict[str, Any], Callable[[], object], Expect],
) -> None:
    _, read, expect = case
    check(read, expect)


@fuzz(300)
@given(reviews() | events(), st.data())
def test_review_and_event_byte_mutations_are_format_errors(
    obj: dict[str, Any], data: st.DataObject
) -> None:
    raw = mutate_bytes(canonical.encode(obj), data.draw)
    kind = obj.get("kind")
    got = outcome(
        lambda: (
            read_event(canonical.decode(raw), kind)
            if isinstance(kind, str)
            else read_review(canonical.decode(raw))
        )
    )
    assert not isinstance(got, GitcoopError) or isinstance(got, FormatError)


@fuzz(200)
@given(JSON_VALUES, st.sampled_from(sorted(BODY_READERS)))
def test_arbitrary_values_are_not_events_or_statements(value: object, kind: str) -> None:
    for read in (
        lambda: read_event(value, kind),
        lambda: read_review(value),
        lambda: records.parse_attestation(value),
    ):
        check(read, FormatError)
    if isinstance(value, dict):
        check(lambda: BODY_READERS[kind](value), FormatError)


# =========================================================================== 3. canonical


def strict_equal(a: object, b: object) -> bool:
    """Equal and of the same JSON types all the way down (True is not 1)."""
    if json_type(a) != json_type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(map(strict_equal, a, b))
    return a == b


CANON_KEYS = st.text(
    st.characters(codec="utf-8") | st.sampled_from(["\ufb33", "\U0001f600", "\x00", "\x7f"]),
    max_size=4,
)
CANON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | SAFE_INTS | st.text(),
    lambda c: st.lists(c, max_size=5) | st.dictionaries(CANON_KEYS, c, max_size=5),
    max_leaves=25,
)


@fuzz(300)
@given(CANON_VALUES)
def test_canonical_round_trip(value: object) -> None:
    data = canonical.encode(value)
    assert data == rfc8785.dumps(value)  # type: ignore[arg-type]
    assert strict_equal(canonical.decode(data), value)


@fuzz(500)
@given(st.binary(max_size=200) | st.text(max_size=100).map(str.encode))
def test_canonical_decode_of_any_bytes(data: bytes) -> None:
    got = outcome(lambda: canonical.decode(data))
    if isinstance(got, GitcoopError):
        assert isinstance(got, FormatError)
    else:
        assert canonical.encode(got) == data


@fuzz(300)
@given(CANON_VALUES, st.data())
def test_canonical_decode_of_mutated_bytes(value: object, data: st.DataObject) -> None:
    raw = mutate_bytes(canonical.encode(value), data.draw)
    got = outcome(lambda: canonical.decode(raw))
    if isinstance(got, GitcoopError):
        assert isinstance(got, FormatError)
    else:
        assert canonical.encode(got) == raw


@fuzz(200)
@given(CANON_VALUES, spellings, st.data())
def test_canonical_refuses_every_other_spelling(
    value: object, how: Spelling, data: st.DataObject
) -> None:
    raw = respell(value, how, data.draw)
    assume(raw != canonical.encode(value))
    check(lambda: canonical.decode(raw), FormatError)


@pytest.mark.parametrize("depth", [63, 64, 65, 1000])
@pytest.mark.parametrize("as_object", [False, True])
def test_canonical_depth_limit(depth: int, as_object: bool) -> None:
    opening, closing = (b'{"a":', b"}") if as_object else (b"[", b"]")
    data = opening * depth + b"0" + closing * depth
    check(
        lambda: canonical.decode(data),
        Accept(nested(depth, as_object=as_object)) if depth <= 64 else FormatError,
    )


# =========================================================================== 4. entries

ENTRY = ledger.Entry(1, "f" * 64, "attestation", "sha256:" + "c" * 64, "d" * 64, KEY_TEXT, ENVELOPE)
ENTRY_RULES: dict[str, Callable[[object], bool]] = {
    "version": lambda v: type(v) is int and v == constants.ENTRY_VERSION,
    "seq": _count_ok,
    "prev": lambda v: v is None or _matches(HEX64)(v),
    "origin": lambda v: v is None or _matches(HEX64)(v),
    "kind": lambda v: isinstance(v, str) and v in ledger.KINDS,
    # What the parser promises: a string that starts "sha256:" (verify checks the rest).
    "challenge": lambda v: isinstance(v, str) and v.startswith("sha256:"),
    "key": _is_str,
    "envelope": lambda v: isinstance(v, dict),
}


@st.composite
def entries(draw: st.DrawFn) -> ledger.Entry:
    return ledger.Entry(
        seq=draw(st.integers(0, MAX_SAFE)),
        prev=draw(st.none() | hexes(64)),
        kind=draw(st.sampled_from(ledger.KINDS)),
        challenge="sha256:" + draw(hexes(64)),
        origin=draw(st.none() | hexes(64)),
        key=draw(st.just(KEY_TEXT) | TEXT),
        envelope=draw(st.just(ENVELOPE) | st.dictionaries(TEXT, JSON_VALUES, max_size=3)),
    )


@fuzz(200)
@given(entries())
def test_entries_round_trip_through_both_paths(entry: ledger.Entry) -> None:
    data = entry.to_bytes()
    assert ledger.Entry.from_bytes(data) == entry
    assert ledger.Entry.parse(data) == entry


@st.composite
def entry_edits(draw: st.DrawFn) -> tuple[bytes, Expect]:
    entry = draw(entries())
    obj = entry.to_json()
    action = draw(st.sampled_from(["replace", "drop", "add"]))
    if action == "drop":
        del obj[draw(st.sampled_from(sorted(obj)))]
        return canonical.encode(obj), FormatError
    if action == "add":
        obj[draw(TEXT.filter(lambda k: k not in obj))] = draw(JSON_VALUES)
        return canonical.encode(obj), FormatError
    field = draw(st.sampled_from(sorted(obj)))
    extra = [f"{k}x" for k in ledger.KINDS] + ["Genesis", "sha256:", "sha256", "SHA256:" + HEX]
    value = draw(JSON_VALUES | near_misses(obj[field]) | st.sampled_from(extra))
    obj[field] = value
    if not ENTRY_RULES[field](value):
        return canonical.encode(obj), FormatError
    fields = {k: v for k, v in obj.items() if k != "version"}
    return canonical.encode(obj), Accept(ledger.Entry(**fields))


@fuzz(300)
@given(entry_edits())
def test_entry_field_edits_match_the_schema(case: tuple[bytes, Expect]) -> None:
    data, expect = case
    check(lambda: ledger.Entry.from_bytes(data), expect)
    check(lambda: ledger.Entry.parse(data), expect)


@fuzz(300)
@given(entries(), st.data())
def test_entry_byte_mutations_fast_and_general_agree(
    entry: ledger.Entry, data: st.DataObject
) -> None:
    raw = mutate_bytes(entry.to_bytes(), data.draw)
    got = outcome(lambda: ledger.Entry.from_bytes(raw))
    general = outcome(lambda: ledger.Entry.parse(raw))
    if isinstance(got, GitcoopError):
        assert isinstance(got, FormatError) and isinstance(general, FormatError)
    else:
        assert got == general
        assert got.to_bytes() == raw  # an accepted entry is exactly its canonical bytes


@fuzz(300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_no_entry(data: bytes) -> None:
    check(lambda: ledger.Entry.from_bytes(data), FormatError)


@pytest.mark.parametrize("key", ["seq", "kind", "envelope", "payload", "sig", "keyid"])
def test_an_entry_with_a_duplicate_key_is_refused(key: str) -> None:
    # Duplicate keys in the raw JSON text, the entry's own or its envelope's.
    text = ENTRY.to_bytes().decode()
    m = re.search(rf'"{key}":("[^"]*"|[0-9]+|\{{.*?\}}\]\}}|\[.*?\])', text)
    assert m is not None
    doubled = text[: m.start()] + m.group(0) + "," + text[m.start() :]
    check(lambda: ledger.Entry.from_bytes(doubled.encode()), FormatError)


# =========================================================================== 5. challenge.yaml

DOC_FULL = """\
version: 1
name: digits
branch: main
metric:
  command: python evaluate.py --split public
  name: accuracy
  direction: maximize
  timeout: 600
  output_limit: 16777216
protect:
  - evaluate.py
  - eval/*.py
  - data/**
data:
  data/test.csv: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
credit:
  min_delta: "0.001"
  require: ci
  tolerance: "0.002"
  lineage: "0.25"
hook:
  on_error: refuse
rounds:
  - name: week-1
    start: 2027-01-04T00:00:00Z
    end: 2027-01-11T00:00:00Z
  - {name: week-2, start: "2027-01-11T00:00:00Z", end: "2027-01-18T00:00:00Z"}
rewards: {pool: 100000, unit: USDC-cents, rule: proportional}
private:
  command: python evaluate.py --split private
  digest: "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
"""
DOC_SMALL = """\
version: 1
name: digits
metric:
  command: python evaluate.py
  direction: maximize
"""


def _documented_files() -> list[str]:
    """The complete challenge files docs/challenge-yaml.md shows (blocks with a version)."""
    text = (Path(__file__).parent.parent / "docs" / "challenge-yaml.md").read_text("utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    return [b for b in blocks if b.startswith("version:")]


DOCS = [DOC_FULL, DOC_SMALL, *_documented_files()]


def test_the_seed_files_are_valid() -> None:
    assert len(DOCS) > 2
    for doc in DOCS:
        challenge_ok(challenge.parse_challenge(doc))


def challenge_ok(c: challenge.Challenge) -> None:
    """What every accepted challenge must satisfy."""
    assert challenge.Challenge.from_json(c.to_json()) == c
    canonical.encode(c.to_json())  # it can be hashed and signed
    assert challenge.IMPLICIT_PROTECT in c.protect
    assert c.metric.command and c.metric.command[0]


# Characters YAML carries in any scalar (no controls, no line or paragraph separators).
YAML_CHARS = st.characters(categories=["L", "N", "P", "S", "Zs"], exclude_characters="\ufeff")
YAML_TEXT = st.text(YAML_CHARS, max_size=12)
NAME = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True).filter(lambda n: n not in (".", ".."))
SEGMENT = st.from_regex(r"[a-z0-9_-]{1,6}", fullmatch=True)
GLOB_SEGMENT = st.just("**") | st.builds(str.__add__, SEGMENT, st.sampled_from(["", "*", "?"]))
TIMES = st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2099, 1, 1)).map(
    lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
)


Doc = dict[str, Any]
Part = Callable[[st.DrawFn, Doc, challenge.Challenge], challenge.Challenge]


def _metric_part(draw: st.DrawFn, doc: Doc, c: challenge.Challenge) -> challenge.Challenge:
    m = c.metric
    section = doc["metric"]
    if draw(st.booleans()):
        millis = draw(st.integers(1, 86_400_000))
        seconds = Decimal(millis).scaleb(-3)
        section["timeout"] = int(seconds) if seconds % 1 == 0 else float(seconds)
        m = replace(m, timeout=millis / 1000)
    if draw(st.booleans()):
        section["output_limit"] = draw(st.integers(1, 2**30))
        m = replace(m, output_limit=section["output_limit"])
    if draw(st.booleans()):
        section["name"] = draw(YAML_TEXT.filter(bool))
        m = replace(m, name=section["name"])
    return replace(c, metric=m)


def _paths_part(draw: st.DrawFn, doc: Doc, c: challenge.Challenge) -> challenge.Challenge:
    patterns = draw(st.lists(st.lists(GLOB_SEGMENT, min_size=1, max_size=3), max_size=3))
    protect = ["/".join(p) + draw(st.sampled_from(["", "/"])) for p in patterns]
    always: bool = draw(st.booleans())
    if protect or always:
        doc["protect"] = protect
    digests = st.builds(
        lambda h, up: "sha256:" + (h.upper() if up else h), hexes(64), st.booleans()
    )
    paths = st.lists(SEGMENT, min_size=1, max_size=3).map("/".join)
    data = draw(st.dictionaries(paths, digests, max_size=2))
    if data:
        doc["data"] = data
    return replace(
        c,
        protect=tuple(sorted({challenge.IMPLICIT_PROTECT, *protect})),
        data=tuple(sorted((k, v.lower()) for k, v in data.items())),
    )


def _credit_part(draw: st.DrawFn, doc: Doc, c: challenge.Challenge) -> challenge.Challenge:
    credit: dict[str, str] = {}
    values: dict[str, Any] = {}
    fractions = st.integers(0, 99).map(lambda i: Decimal(i).scaleb(-2))
    amounts = DECIMALS.filter(lambda d: d >= 0)
    for key, values_ in (
        ("min_delta", amounts),
        ("tolerance", amounts),
        ("lineage", fractions),
    ):
        value = draw(st.none() | values_)
        if value is not None:
            credit[key], values[key] = format(value, "f"), value
    require = draw(st.none() | st.sampled_from(challenge.ASSURANCE_LEVELS))
    if require is not None:
        credit["require"] = values["require"] = require
    if credit:
        doc["credit"] = credit
    return replace(c, **values)


def _rounds_part(draw: st.DrawFn, doc: Doc, c: challenge.Challenge) -> challenge.Challenge:
    times = sorted(draw(st.sets(TIMES, max_size=6)))
    names = draw(st.lists(NAME, min_size=len(times) // 2, max_size=3, unique=True))
    rounds = tuple(
        challenge.Round(name, times[2 * i], times[2 * i + 1])
        for i, name in enumerate(names[: len(times) // 2])
    )
    if rounds:
        doc["rounds"] = [{"name": r.name, "start": r.start, "end": r.end} for r in rounds]
    return replace(c, rounds=rounds)


def _other_parts(draw: st.DrawFn, doc: Doc, c: challenge.Challenge) -> challenge.Challenge:
    branch = draw(
        st.none() | st.from_regex(r"[a-z][a-z0-9-]{0,8}(/[a-z][a-z0-9-]{0,8})?", fullmatch=True)
    )
    if branch is not None:
        doc["branch"] = branch
        c = replace(c, branch=branch)
    on_error = draw(st.none() | st.sampled_from(["refuse", "warn"]))
    if on_error is not None:
        doc["hook"] = {"on_error": on_error}
        c = replace(c, on_error=on_error)
    if draw(st.booleans()):
        rules = st.sampled_from(challenge.REWARD_RULES)
        w = challenge.Rewards(draw(st.integers(1, 10**30 - 1)), draw(NAME), draw(rules))
        doc["rewards"] = {"pool": w.pool, "unit": w.unit, "rule": w.rule}
        c = replace(c, rewards=w)
    if draw(st.booleans()):
        digest = draw(st.none() | hexes(64).map(lambda h: "sha256:" + h))
        doc["private"] = {"command": list(c.metric.command)}  # a copy: no YAML alias
        if digest is not None:
            doc["private"]["digest"] = digest
        c = replace(c, private=challenge.Private(c.metric.command, digest))
    return c


@st.composite
def challenge_docs(draw: st.DrawFn) -> tuple[Doc, challenge.Challenge]:
    """A challenge as the plain data a YAML file holds, and the Challenge it must give."""
    argv = draw(st.lists(YAML_TEXT, min_size=1, max_size=4).filter(lambda a: bool(a[0])))
    direction = draw(st.sampled_from(["maximize", "minimize"]))
    doc: Doc = {"version": 1, "name": draw(NAME)}
    doc["metric"] = {
        "command": list(argv) if draw(st.booleans()) else shlex.join(argv),
        "direction": direction,
    }
    c = challenge.Challenge(
        version=1,
        name=doc["name"],
        branch="main",
        metric=challenge.MetricConfig(tuple(argv), "score", direction, 600.0, 16 * MIB),
        protect=(challenge.IMPLICIT_PROTECT,),
        data=(),
        min_delta=Decimal(0),
        on_error="refuse",
    )
    parts: list[Part] = [_metric_part, _paths_part, _credit_part, _rounds_part, _other_parts]
    for part in parts:
        c = part(draw, doc, c)
    return doc, c


def dump_yaml(doc: object, draw: Draw) -> str:
    return yaml.safe_dump(
        doc,
        default_flow_style=draw(st.sampled_from([False, True, None])),
        allow_unicode=draw(st.booleans()),
        sort_keys=draw(st.booleans()),
        width=draw(st.sampled_from([80, 10**6])),
    )


@fuzz(100)
@given(challenge_docs(), st.data())
def test_generated_challenges_parse_as_written(
    case: tuple[dict[str, Any], challenge.Challenge], data: st.DataObject
) -> None:
    doc, expected = case
    text = dump_yaml(doc, data.draw)
    got = challenge.parse_challenge(text)
    assert got == expected
    challenge_ok(got)
    assert challenge.parse_challenge_bytes(b"\xef\xbb\xbf" + text.encode()) == expected


YAML_NOISE = [
    ":",
    ": ",
    "-",
    "- ",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "!!str ",
    "!!binary ",
    "!!python/object:os.system ",
    "? ",
    "'",
    '"',
    "#",
    "|",
    ">",
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    "<<: ",
    "~",
    "null",
    "yes",
    "0x10",
    "0o7",
    "1_000",
    ".inf",
    ".nan",
    "1e999",
    "-0",
    "9" * 80,
    "\x00",
    "\x85",
    "\u2028",
    "\ufeff",
    "\\ud800",
    '"\\ud800"',
    "\U0001f600",
]


def mutate_text(text: str, draw: Draw) -> str:
    for _ in range(draw(st.integers(1, 4))):
        lines = text.split("\n")
        action = draw(st.sampled_from(["put", "insert", "drop", "line-dup", "line-drop", "indent"]))
        if action in ("line-dup", "line-drop", "indent"):
            i = draw(st.integers(0, len(lines) - 1))
            if action == "line-dup":
                lines.insert(i, lines[i])
            elif action == "line-drop":
                del lines[i]
            else:
                lines[i] = draw(st.sampled_from(["", " ", "  ", "    ", "\t"])) + lines[i]
            text = "\n".join(lines)
            continue
        at = draw(st.integers(0, len(text)))
        noise = draw(st.sampled_from(YAML_NOISE) | st.text(max_size=3))
        if action == "put":
            text = text[:at] + noise + text[at + 1 :]
        elif action == "insert":
            text = text[:at] + noise + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 10)) :]
    return text


def challenge_outcome(call: Callable[[], challenge.Challenge]) -> None:
    got = outcome(call)
    if isinstance(got, GitcoopError):
        assert isinstance(got, ConfigError)
        assert "\n" not in str(got)  # one line
    else:
        challenge_ok(got)


@fuzz(400)
@given(st.sampled_from(DOCS), st.data())
def test_mutated_challenge_files_are_config_errors(doc: str, data: st.DataObject) -> None:
    text = mutate_text(doc, data.draw)
    challenge_outcome(lambda: challenge.parse_challenge(text))
    challenge_outcome(lambda: challenge.parse_challenge_bytes(text.encode()))


@fuzz(100)
@given(challenge_docs(), st.data())
def test_swapped_challenge_values_are_config_errors(
    case: tuple[dict[str, Any], challenge.Challenge], data: st.DataObject
) -> None:
    doc = case[0]
    path = data.draw(st.sampled_from([p for p in all_paths(doc) if p]))
    odd = st.sampled_from(
        [1.5, float("inf"), float("nan"), dt.date(2026, 1, 1), b"\x00bytes", {1: 2}, [[[]]]]
    )
    set_at(doc, path, data.draw(JSON_VALUES | odd))
    challenge_outcome(lambda: challenge.parse_challenge(dump_yaml(doc, data.draw)))


KNOWN_KEYS = {
    *("version", "name", "branch", "metric", "protect", "data", "credit", "hook"),
    *("rounds", "rewards", "private", "command", "direction", "timeout", "output_limit"),
    *("min_delta", "require", "tolerance", "lineage", "on_error", "start", "end"),
    *("pool", "unit", "rule", "digest"),
}


@fuzz(100)
@given(challenge_docs(), st.data())
def test_challenge_key_edits_are_config_errors(
    case: tuple[dict[str, Any], challenge.Challenge], data: st.DataObject
) -> None:
    doc = case[0]
    sections = [p for p in dict_paths(doc) if p[:1] != ("data",)]
    where = data.draw(st.sampled_from(sections))
    target = get_at(doc, where)
    required: dict[Path_, set[str]] = {
        (): {"version", "name", "metric"},
        ("metric",): {"command", "direction"},
        ("rewards",): {"pool"},
        ("private",): {"command"},
    }
    droppable = sorted(set(target) & required.get(where, {"name", "start", "end"}))
    drop: bool = data.draw(st.booleans())
    if droppable and drop:
        del target[data.draw(st.sampled_from(droppable))]  # a required key gone
    else:
        target[data.draw(YAML_TEXT.filter(lambda k: k not in KNOWN_KEYS))] = 1  # an unknown one
    check(lambda: challenge.parse_challenge(dump_yaml(doc, data.draw)), ConfigError)


@fuzz(300)
@given(st.text(max_size=300) | st.text(st.sampled_from("{}[]:-,&*!|>'\"#? \n\tab1"), max_size=80))
def test_arbitrary_text_is_a_config_error(text: str) -> None:
    challenge_outcome(lambda: challenge.parse_challenge(text))


@fuzz(300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_a_config_error(data: bytes) -> None:
    challenge_outcome(lambda: challenge.parse_challenge_bytes(data))


# =========================================================================== 6. metric output


def in_bounds(value: Decimal) -> bool:
    """The documented score range: finite, at most 40 significant digits, magnitude
    between 1e-100 and 1e+100 (or zero)."""
    if not value.is_finite():
        return False
    if value.is_zero():
        return True
    digits = "".join(map(str, value.as_tuple().digits)).strip("0")
    return len(digits) <= 40 and abs(value.adjusted()) <= 100


def literals(value: Decimal) -> list[str]:
    """Ways to print ``value`` as a JSON number."""
    out = [format(value, "e"), str(value), format(value, "E")]
    if abs(value.adjusted()) < 400:  # plain notation of 1e999999 would be a megabyte
        out.append(format(value, "f"))
    grammar = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
    return [t for t in out if grammar.fullmatch(t)]


SCORES = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.builds(
        lambda digits, exp, neg: Decimal(f"{'-' if neg else ''}{digits}e{exp}"),
        st.integers(0, 10**45),
        st.integers(-160, 160),
        st.booleans(),
    ),
)
PREFIXES = st.binary(max_size=60).map(lambda b: b + b"\n") | st.just(b"")
SUFFIXES = st.sampled_from([b"", b"\n", b"\r\n", b"\n \t\n", b"   ", b"\n\n\n"])


def score_of(value: Decimal) -> Expect:
    return Accept(value) if in_bounds(value) else MetricError


@fuzz(400)
@given(SCORES, st.data())
def test_a_printed_number_is_read_exactly_or_refused(value: Decimal, data: st.DataObject) -> None:
    forms = literals(value)
    assume(forms)
    text = data.draw(st.sampled_from(forms))
    prefix, suffix = data.draw(PREFIXES), data.draw(SUFFIXES)
    bare = prefix + text.encode() + suffix
    expect = score_of(value) if len(text) <= 200 else MetricError
    got = check(lambda: metric.parse_metric_output(bare, "score"), expect)
    if not isinstance(got, GitcoopError):  # one representation per value
        assert isinstance(got, Decimal)
        assert got.as_tuple() == Decimal(decimals.decimal_text(value)).as_tuple()
    name = data.draw(st.text(min_size=1, max_size=8))
    others = data.draw(st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
    others.pop(name, None)
    pairs = [f"{json.dumps(name)}: {text}"] + [f"{json.dumps(k)}: {v}" for k, v in others.items()]
    line = "{" + ", ".join(data.draw(st.permutations(pairs))) + "}"
    obj = prefix + line.encode() + suffix
    check(lambda: metric.parse_metric_output(obj, name), score_of(value))
    detected = outcome(lambda: metric.detect_metric_name(obj))
    assert detected == name if not others else isinstance(detected, MetricError)


BAD_VALUES = st.sampled_from(
    [
        "true",
        "false",
        "null",
        '"0.5"',
        "[0.5]",
        '{"x": 0.5}',
        "NaN",
        "Infinity",
        "-Infinity",
        "1e999999999999999999999",
        "1" * 41,
        "0." + "0" * 100 + "1",
        "01",
        ".5",
        "+1",
        "0x10",
        "1.",
        "- 1",
        "[" * 5000 + "]" * 5000,
    ]
)


@fuzz(200)
@given(st.text(min_size=1, max_size=8), BAD_VALUES, st.data())
def test_a_bad_score_value_is_a_metric_error(name: str, bad: str, data: st.DataObject) -> None:
    assume(bad != "{" + json.dumps(name) + ": 0.5}")  # that one is a good line on its own
    prefix, suffix = data.draw(PREFIXES), data.draw(SUFFIXES)
    line = "{" + json.dumps(name) + ": " + bad + "}"
    check(lambda: metric.parse_metric_output(prefix + line.encode() + suffix, name), MetricError)
    check(lambda: metric.parse_metric_output(prefix + bad.encode() + suffix, name), MetricError)
    good = "{" + json.dumps(name + "x") + ": 0.5}"  # the wrong key
    check(lambda: metric.parse_metric_output(good.encode(), name), MetricError)
    dup = "{" + json.dumps(name) + ": 0.5, " + json.dumps(name) + ": 0.5}"
    check(lambda: metric.parse_metric_output(dup.encode(), name), MetricError)


def score_ok(got: object) -> None:
    if isinstance(got, GitcoopError):
        assert isinstance(got, MetricError)
    else:
        assert isinstance(got, Decimal) and in_bounds(got)
        assert got.as_tuple() == Decimal(decimals.decimal_text(got)).as_tuple()


@fuzz(400)
@given(
    st.binary(max_size=200)
    | JSON_VALUES.map(lambda v: json.dumps(v).encode())
    | st.text(st.sampled_from('0123456789.-+eE{}[]":, nNaIif\n'), max_size=60).map(str.encode),
    st.text(min_size=1, max_size=6) | st.just("score"),
)
def test_arbitrary_output_is_a_score_or_a_metric_error(stdout: bytes, name: str) -> None:
    score_ok(outcome(lambda: metric.parse_metric_output(stdout, name)))
    detected = outcome(lambda: metric.detect_metric_name(stdout))
    assert isinstance(detected, str | MetricError)
    parsed = outcome(lambda: decimals.parse_decimal(stdout.decode("utf-8", "replace")))
    assert isinstance(parsed, Decimal | FormatError)


# =========================================================================== 7. size bombs


@dataclass
class Measured:
    result: object
    peak: int  # bytes allocated above what was allocated before the call
    seconds: float


def measure(call: Callable[[], object]) -> Measured:
    """Run ``call`` under tracemalloc; inputs built before are not counted."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        result = outcome(call)
        seconds = time.monotonic() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return Measured(result, peak, seconds)


def bomb(
    call: Callable[[], object], error: type[GitcoopError], size: int, *, seconds: float = 5.0
) -> Measured:
    m = measure(call)
    assert isinstance(m.result, error), _short(m.result)
    assert m.seconds < seconds, f"took {m.seconds:.1f}s"
    # 20x: the worst measured is about 12x, canonical's depth scan splitting a
    # megabyte of '{"a":' into strings; inputs are capped at 1 MiB before that.
    assert m.peak < max(20 * size, 4 * MIB), f"peak {m.peak / MIB:.1f} MiB for {size} bytes"
    assert m.peak < 512 * MIB
    return m


def _payload_envelope(payload_b64: str) -> dict[str, Any]:
    return {"payload": payload_b64, "payloadType": INTOTO, "signatures": ENVELOPE["signatures"]}


def test_a_50_mb_json_string_payload_is_refused() -> None:
    b64 = base64.b64encode(b'"' + b"a" * (50 * MIB) + b'"').decode()
    env = _payload_envelope(b64)
    bomb(lambda: records.open_payload(env, KEY_TEXT, INTOTO), FormatError, len(b64))
    bomb(lambda: records.open_envelope(env, KEY_TEXT, INTOTO), FormatError, len(b64))


def test_a_50_mb_json_array_payload_is_refused() -> None:
    # URL-safe and unpadded: the general reader's way.
    raw = b"[" + b"0," * (25 * MIB) + b"0]"
    b64 = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert len(b64) % 4  # unpadded: the one-pass reader declines it
    env = _payload_envelope(b64)
    bomb(lambda: records.open_payload(env, KEY_TEXT, INTOTO), FormatError, len(b64))
    m = bomb(lambda: canonical.decode(raw), FormatError, 0)  # the size first: no parse
    assert m.peak < 4 * MIB


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        canonical.encode(STATEMENT).replace(
            b'"environment":{', b'"environment":{"x":' + b"[" * 100_000 + b"]" * 100_000 + b","
        ),
        b'"' + b'\\"' * 400_000 + b"[" * 100_000,  # an unterminated string of escapes
    ],
    ids=["array", "object", "in-statement", "hostile-string"],
)
def test_a_statement_nested_100k_deep_is_refused(data: bytes) -> None:
    bomb(lambda: records.attestation_from_bytes(data), FormatError, len(data))
    bomb(lambda: canonical.decode(data), FormatError, len(data))
    bomb(lambda: ledger.Entry.from_bytes(data), FormatError, len(data))


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        "{a: " * 60_000,
        "- " * 100_000,
        "metric:\n" + "".join(" " * i + "- \n" for i in range(600)),
        "a: &a [x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [" + ", ".join([f"*{p}"] * 9) + "]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "version: 1\n" + "#" * (300 * 1024),
    ],
    ids=["flow-seq", "flow-map", "block-seq", "indent", "alias-bomb", "300kb"],
)
def test_challenge_bombs_are_refused(text: str) -> None:
    bomb(lambda: challenge.parse_challenge(text), ConfigError, len(text))
    data = text.encode()
    bomb(lambda: challenge.parse_challenge_bytes(data), ConfigError, len(data))


TAIL = 64 * 1024  # run_metric hands the parser the last 64 KiB of what was printed


@pytest.mark.parametrize(
    "stdout",
    [
        b"9" * TAIL,
        b"\n" * TAIL,
        b'{"score": 1' + b"0" * TAIL + b"}",
        b'{"score": ' + b"[" * TAIL,
        b"\xff" * TAIL,
        b"1e" + b"9" * TAIL,
    ],
    ids=["digits", "newlines", "long-number", "deep", "not-utf8", "exponent"],
)
def test_metric_output_bombs_are_refused(stdout: bytes) -> None:
    bomb(lambda: metric.parse_metric_output(stdout, "score"), MetricError, len(stdout))


def test_a_key_blob_declaring_a_gigabyte_is_refused() -> None:
    blob = (1 << 30).to_bytes(4, "big") + b"ssh-ed25519" + (1 << 30).to_bytes(4, "big") + b"\0" * 32
    key_text = "ssh-ed25519 " + base64.b64encode(blob).decode()
    bomb(lambda: records.open_payload(ENVELOPE, key_text, INTOTO), VerificationError, len(key_text))


_CHILD = r"""
import json, resource, sys
from gitcoop import canonical, challenge, metric, records
from gitcoop.errors import GitcoopError

def vm_bytes():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))

letters = "abcdefghijklmnopqrstuvwxyz"
cases = [
    ("yaml-flow", challenge.parse_challenge, lambda: "[" * 250_000),
    ("yaml-map", challenge.parse_challenge, lambda: "{a: " * 60_000),
    ("yaml-block", challenge.parse_challenge, lambda: "- " * 120_000),
    ("yaml-alias", challenge.parse_challenge, lambda: "a: &a [x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}]\n" for p, c in zip(letters, letters[1:]))),
    ("json-deep", canonical.decode, lambda: b"[" * (1 << 20)),
    ("statement-deep", records.attestation_from_bytes, lambda: b'{"a":' * 200_000),
    ("metric-deep", lambda s: metric.parse_metric_output(s, "score"),
     lambda: b'{"score":' + b"[" * 65_000),
]
budget = int(sys.argv[1])
out = {}
for name, call, make in cases:
    data = make()
    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + budget, resource.RLIM_INFINITY))
    try:
        call(data)
        out[name] = "accepted"
    except GitcoopError as exc:
        out[name] = type(exc).__name__
    except MemoryError:
        out[name] = "MemoryError"
    except BaseException as exc:
        out[name] = "!" + type(exc).__name__
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    del data
print(json.dumps(out))
"""


def test_bombs_stay_within_an_address_space_limit() -> None:
    # Counts what tracemalloc cannot see: libyaml's and the C JSON scanner's own memory.
    budget = 64 * MIB
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(budget)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    got = json.loads(done.stdout)
    assert got == {
        "yaml-flow": "ConfigError",
        "yaml-map": "ConfigError",
        "yaml-block": "ConfigError",
        "yaml-alias": "ConfigError",
        "json-deep": "FormatError",
        "statement-deep": "FormatError",
        "metric-deep": "MetricError",
    }


# =========================================================================== known bugs


@pytest.mark.parametrize("key", ["version", "output_limit", "pool"])
def test_a_very_long_integer_in_challenge_yaml_is_a_config_error(key: str) -> None:
    digits = "1" * 4301
    text = {
        "version": DOC_SMALL.replace("version: 1", f"version: {digits}"),
        "output_limit": DOC_SMALL + f"  output_limit: {digits}\n",
        "pool": DOC_SMALL + f"rewards:\n  pool: {digits}\n",
    }[key]
    with pytest.raises(ConfigError):
        challenge.parse_challenge(text)


def test_a_lone_surrogate_in_challenge_text_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        challenge.parse_challenge(DOC_SMALL + "# \ud800\n")


@pytest.mark.parametrize(("field", "value"), [("seq", True), ("seq", False), ("version", True)])
def test_entry_counts_are_not_booleans(field: str, value: bool) -> None:
    obj = ENTRY.to_json()
    obj[field] = value
    with pytest.raises(FormatError):
        ledger.Entry.from_bytes(canonical.encode(obj))


@pytest.mark.parametrize("record", ["entry", "statement"])
def test_a_record_over_a_mebibyte_is_refused_by_both_paths(record: str) -> None:
    if record == "entry":
        obj = ENTRY.to_json()
        obj["envelope"] = _payload_envelope(base64.b64encode(b"\0" * (3 * MIB)).decode())
        data = canonical.encode(obj)
        check(lambda: ledger.Entry.parse(data), FormatError)
        check(lambda: ledger.Entry.from_bytes(data), FormatError)
    else:
        data = canonical.encode(ATT._replace(time="t" * (2 * MIB)).statement())
        check(lambda: general_statement(data), FormatError)
        check(lambda: records.attestation_from_bytes(data), FormatError)


@pytest.mark.parametrize("url_safe", [False, True], ids=["one-pass", "general"])
def test_a_huge_payload_is_refused_before_it_is_copied(url_safe: bool) -> None:
    data = b"\0" * (50 * MIB + 2)  # base64 with "==", or unpadded: not a multiple of 4
    b64 = base64.urlsafe_b64encode(data).rstrip(b"=") if url_safe else base64.b64encode(data)
    envelope = _payload_envelope(b64.decode())  # built before measuring: not the reader's
    m = measure(lambda: dsse.Envelope.from_json(envelope))
    assert isinstance(m.result, FormatError)
    assert m.peak < 4 * MIB, f"peak {m.peak / MIB:.0f} MiB"


def test_a_protect_pattern_cannot_hang_is_protected() -> None:
    code = (
        "from gitcoop import challenge\n"
        "c = challenge.parse_challenge(%r)\n"
        "print(c.is_protected('a' * 60))\n"
    ) % (DOC_SMALL + 'protect:\n  - "' + "*a" * 10 + 'b"\n')
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=2)
    assert done.returncode == 0


@pytest.mark.parametrize("declared", [0, 31, 33, 1 << 30])
def test_a_key_blob_with_a_wrong_key_length_is_refused(declared: int) -> None:
    blob = KEY_BLOB[:15] + declared.to_bytes(4, "big") + KEY_BLOB[19:]
    key_text = "ssh-ed25519 " + base64.b64encode(blob).decode()
    with pytest.raises(VerificationError):
        records.open_payload(ENVELOPE, key_text, INTOTO)


@pytest.mark.parametrize("key", ["min_delta", "tolerance", "lineage"])
def test_credit_decimals_are_read_exactly(key: str) -> None:
    written = "0." + "1234567890" * 3 + "1"  # 31 significant digits
    c = challenge.parse_challenge(DOC_SMALL + f'credit:\n  {key}: "{written}"\n')
    assert getattr(c, key) == Decimal(written)
