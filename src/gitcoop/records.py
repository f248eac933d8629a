"""Signed records: the metric-delta attestation (in-toto Statement v1) and ledger events.

Numbers travel as decimal strings; payload bytes are RFC 8785 canonical JSON.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from gitcoop import canonical, constants, dsse
from gitcoop.decimals import decimal_text
from gitcoop.errors import FormatError
from gitcoop.keys import SigningKey, public_with_fingerprint

_SHA1 = re.compile(r"[0-9a-f]{40}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MAX_DIGITS = 40


class Signer(NamedTuple):
    """Who signed: key fingerprint plus the principal and name they gave."""

    keyid: str
    principal: str
    name: str

    def to_json(self) -> dict[str, str]:
        """Plain JSON form."""
        return {"keyid": self.keyid, "principal": self.principal, "name": self.name}

    @classmethod
    def from_json(cls, obj: object) -> Signer:
        """Parse; raises FormatError."""
        d = _dict(obj, "signer", {"keyid", "principal", "name"})
        return cls(_str(d, "keyid"), _str(d, "principal"), _str(d, "name"))


class Attestation(NamedTuple):
    """The verified content of a metric-delta statement."""

    commit: str
    tree: str
    challenge: str
    origin: str
    metric: str
    direction: str
    split: str
    score: Decimal
    parent: str | None
    parent_score: Decimal | None
    delta: Decimal | None
    environment: dict[str, str]
    duration_ms: int
    time: str
    signer: Signer

    def statement(self) -> dict[str, Any]:
        """Return the in-toto Statement v1 as a plain JSON object."""
        return _statement(
            self.commit,
            self.tree,
            constants.PREDICATE_TYPE,
            {
                "challenge": {"digest": self.challenge, "origin": self.origin},
                "metric": {"name": self.metric, "direction": self.direction},
                "split": self.split,
                "score": decimal_text(self.score),
                "parent": None
                if self.parent is None
                else {
                    "commit": self.parent,
                    "score": None if self.parent_score is None else decimal_text(self.parent_score),
                },
                "delta": None if self.delta is None else decimal_text(self.delta),
                "environment": self.environment,
                "durationMs": self.duration_ms,
                "time": self.time,
                "signer": self.signer.to_json(),
            },
        )


def _statement(
    commit: str, tree: str, predicate_type: str, predicate: dict[str, Any]
) -> dict[str, Any]:
    """An in-toto Statement v1 about one commit, as a plain JSON object."""
    return {
        "_type": constants.STATEMENT_TYPE,
        "subject": [
            {"name": f"git+commit:{commit}", "digest": {"gitCommit": commit, "gitTree": tree}}
        ],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def now() -> str:
    """The current UTC time as RFC 3339 with seconds precision."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(obj: dict[str, Any], payload_type: str, key: SigningKey) -> dict[str, Any]:
    """Sign a JSON object's canonical bytes as a DSSE envelope; return the envelope JSON."""
    return dsse.sign(payload_type, canonical.encode(obj), key).to_json()


def open_payload(envelope: object, key_text: str, payload_type: str) -> tuple[bytes, str]:
    """Verify an entry's envelope under its key; return (payload bytes, key fingerprint).

    Raises FormatError for malformed input and VerificationError for bad signatures.
    """
    public, keyid = public_with_fingerprint(key_text)
    payload = dsse.verify(dsse.Envelope.from_json(envelope), public, payload_type=payload_type)
    return payload, keyid


def open_envelope(envelope: object, key_text: str, payload_type: str) -> tuple[Any, str]:
    """Like ``open_payload``, with the payload decoded from canonical JSON."""
    payload, keyid = open_payload(envelope, key_text, payload_type)
    return canonical.decode(payload), keyid


def attestation_from_bytes(payload: bytes) -> Attestation:
    """Parse verified statement bytes (canonical JSON); raises FormatError."""
    usual = _usual_attestation(payload)
    return usual if usual is not None else parse_attestation(canonical.decode(payload))


def _usual_attestation(payload: bytes) -> Attestation | None:
    """The attestation when the bytes are a statement as gitcoop writes it; None sends
    them the general way. Raises FormatError for a score out of bounds."""
    if len(payload) > canonical.DEFAULT_MAX_BYTES:
        return None  # the general way refuses it, naming the limit
    m = _usual_statement().fullmatch(payload.decode("ascii")) if payload.isascii() else None
    env = None if m is None else _usual_environment(m["env"])
    if m is None or env is None:
        return None
    # The groups in pattern order (cheaper than looking each one up by name).
    (challenge, origin, delta, ms, _env, direction, metric, parent, parent_score, score) = (
        m.groups()[:10]
    )
    keyid, name, principal, split, time, commit, tree = m.groups()[10:]
    return Attestation(
        commit,
        tree,
        challenge,
        origin,
        metric,
        direction,
        split,
        _bounded_decimal(score),
        parent,
        None if parent_score is None else _bounded_decimal(parent_score),
        None if delta is None else _bounded_decimal(delta),
        env,
        int(ms),
        time,
        Signer(keyid, principal, name),
    )


# The canonical bytes of a metric-delta statement as gitcoop writes it (ASCII text, no
# escapes), matched in one pass instead of parsing, re-encoding to prove canonical form,
# and walking the object: verify reads one per signature check. Anything else takes the
# general path, which accepts or names the problem.
_T = r"[\x20\x21\x23-\x5b\x5d-\x7e]*"
# decimal_text's output: plain notation, no trailing fractional zeros; with no "-0" and
# at most 40 digits (the metric parser's limit), checked after the pattern.
_DEC = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]*[1-9])?"
_CANONICAL_DECIMAL = re.compile(_DEC)
_PAIR = r'"' + _T + r'":"' + _T + r'"'


@functools.cache
def _usual_statement() -> re.Pattern[str]:
    # Compiled on first use (about a millisecond): the idle hook never reads a statement.
    return re.compile(
        r'\{"_type":"' + re.escape(constants.STATEMENT_TYPE) + r'",'
        r'"predicate":\{"challenge":\{"digest":"(?P<challenge>sha256:[0-9a-f]{64})",'
        r'"origin":"(?P<origin>[0-9a-f]{64})"\},'
        r'"delta":(?:null|"(?P<delta>' + _DEC + r')"),"durationMs":(?P<ms>0|[1-9][0-9]{0,14}),'
        r'"environment":\{(?P<env>(?:' + _PAIR + r"(?:," + _PAIR + r")*)?)\},"
        r'"metric":\{"direction":"(?P<direction>maximize|minimize)",'
        r'"name":"(?P<metric>' + _T + r')"\},'
        r'"parent":(?:null|\{"commit":"(?P<parent>[0-9a-f]{40})",'
        r'"score":(?:null|"(?P<pscore>' + _DEC + r')")\}),'
        r'"score":"(?P<score>' + _DEC + r')",'
        r'"signer":\{"keyid":"(?P<keyid>' + _T + r')","name":"(?P<name>' + _T + r')",'
        r'"principal":"(?P<principal>' + _T + r')"\},'
        r'"split":"(?P<split>' + _T + r')","time":"(?P<time>' + _T + r')"\},'
        r'"predicateType":"' + re.escape(constants.PREDICATE_TYPE) + r'",'
        r'"subject":\[\{"digest":\{"gitCommit":"(?P<commit>[0-9a-f]{40})",'
        r'"gitTree":"(?P<tree>[0-9a-f]{40})"\},"name":"' + _T + r'"\}\]\}'
    )


_PAIRS = re.compile(r'"(' + _T + r')":"(' + _T + r')"')


def _usual_environment(text: str) -> dict[str, str] | None:
    """The environment map, or None when its keys are not in strictly increasing order
    (not canonical, or a duplicate: the general path names which)."""
    pairs = _environment_pairs(text)
    return None if pairs is None else dict(pairs)


@functools.lru_cache(maxsize=64)
def _environment_pairs(text: str) -> tuple[tuple[str, str], ...] | None:
    # One evaluator signs the same environment again and again: parse each text once.
    pairs = tuple(_PAIRS.findall(text))
    keys = [k for k, _ in pairs]
    return pairs if keys == sorted(set(keys)) else None


def _statement_parts(
    obj: object, predicate_type: str, what: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the statement, its one subject's digest) when ``obj`` is an in-toto statement of
    ``predicate_type``; raises FormatError naming ``what`` it should have been."""
    d = _dict(obj, "statement", {"_type", "subject", "predicateType", "predicate"})
    if d["_type"] != constants.STATEMENT_TYPE or d["predicateType"] != predicate_type:
        raise FormatError(f"not a gitcoop {what} statement ({d['predicateType']!r})")
    subjects = d["subject"]
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise FormatError(f"a {what} statement names exactly one subject")
    digest = _dict(
        _dict(subjects[0], "subject", {"name", "digest"})["digest"],
        "digest",
        {"gitCommit", "gitTree"},
    )
    return d, digest


def parse_attestation(obj: object) -> Attestation:
    """Parse a verified statement object; raises FormatError when it is not a metric-delta."""
    d, digest = _statement_parts(obj, constants.PREDICATE_TYPE, "metric-delta")
    p = _dict(
        d["predicate"],
        "predicate",
        {
            "challenge",
            "metric",
            "split",
            "score",
            "parent",
            "delta",
            "environment",
            "durationMs",
            "time",
            "signer",
        },
    )
    ch = _dict(p["challenge"], "challenge", {"digest", "origin"})
    metric = _dict(p["metric"], "metric", {"name", "direction"})
    parent, parent_score = _parent(p["parent"])
    return Attestation(
        commit=_match(digest, "gitCommit", _SHA1),
        tree=_match(digest, "gitTree", _SHA1),
        challenge=_match(ch, "digest", _DIGEST),
        origin=_match(ch, "origin", _HEX64),
        metric=_str(metric, "name"),
        direction=_choice(metric, "direction"),
        split=_str(p, "split"),
        score=_decimal(p["score"]),
        parent=parent,
        parent_score=parent_score,
        delta=None if p["delta"] is None else _decimal(p["delta"]),
        environment=_str_map(p["environment"]),
        duration_ms=_int(p, "durationMs"),
        time=_str(p, "time"),
        signer=Signer.from_json(p["signer"]),
    )


def _parent(obj: object) -> tuple[str | None, Decimal | None]:
    if obj is None:
        return None, None
    d = _dict(obj, "parent", {"commit", "score"})
    score = None if d["score"] is None else _decimal(d["score"])
    return _match(d, "commit", _SHA1), score


REPRODUCED = "reproduced"
NOT_REPRODUCED = "failed-to-reproduce"


class Review(NamedTuple):
    """The verified content of a review statement: someone re-ran the metric on a commit
    and compares their score with an attestation's."""

    commit: str
    tree: str
    challenge: str
    origin: str
    reviewed: str  # "sha256:" digest of the reviewed attestation's statement bytes
    reviewed_keyid: str
    reviewed_score: Decimal
    score: Decimal
    tolerance: Decimal
    result: str
    duration_ms: int
    time: str
    signer: Signer

    def statement(self) -> dict[str, Any]:
        """Return the in-toto Statement v1 as a plain JSON object."""
        return _statement(
            self.commit,
            self.tree,
            constants.REVIEW_PREDICATE_TYPE,
            {
                "challenge": {"digest": self.challenge, "origin": self.origin},
                "reviewed": {
                    "statement": self.reviewed,
                    "keyid": self.reviewed_keyid,
                    "score": decimal_text(self.reviewed_score),
                },
                "score": decimal_text(self.score),
                "tolerance": decimal_text(self.tolerance),
                "result": self.result,
                "durationMs": self.duration_ms,
                "time": self.time,
                "signer": self.signer.to_json(),
            },
        )


def parse_review(obj: object) -> Review:
    """Parse a verified review statement; raises FormatError when it is not one."""
    d, digest = _statement_parts(obj, constants.REVIEW_PREDICATE_TYPE, "review")
    p = _dict(
        d["predicate"],
        "predicate",
        {"challenge", "reviewed", "score", "tolerance", "result", "durationMs", "time", "signer"},
    )
    ch = _dict(p["challenge"], "challenge", {"digest", "origin"})
    reviewed = _dict(p["reviewed"], "reviewed", {"statement", "keyid", "score"})
    result = _str(p, "result")
    if result not in (REPRODUCED, NOT_REPRODUCED):
        raise FormatError(f"result must be {REPRODUCED} or {NOT_REPRODUCED}")
    return Review(
        commit=_match(digest, "gitCommit", _SHA1),
        tree=_match(digest, "gitTree", _SHA1),
        challenge=_match(ch, "digest", _DIGEST),
        origin=_match(ch, "origin", _HEX64),
        reviewed=_match(reviewed, "statement", _DIGEST),
        reviewed_keyid=_str(reviewed, "keyid"),
        reviewed_score=_decimal(reviewed["score"]),
        score=_decimal(p["score"]),
        tolerance=_decimal(p["tolerance"]),
        result=result,
        duration_ms=_int(p, "durationMs"),
        time=_str(p, "time"),
        signer=Signer.from_json(p["signer"]),
    )


@dataclass(frozen=True)
class Event:
    """A signed ledger event other than an attestation (genesis, updates, anchors)."""

    kind: str
    body: dict[str, Any]
    signer: Signer
    time: str

    def payload(self) -> dict[str, Any]:
        """Return the event as the JSON object that gets signed."""
        return {
            "_type": constants.EVENT_TYPE,
            "kind": self.kind,
            "body": self.body,
            "signer": self.signer.to_json(),
            "time": self.time,
        }


def parse_event(obj: object, kind: str) -> Event:
    """Parse a verified event payload of the expected kind; raises FormatError."""
    d = _dict(obj, "event", {"_type", "kind", "body", "signer", "time"})
    if d["_type"] != constants.EVENT_TYPE or d["kind"] != kind:
        raise FormatError(f"payload is a {d['kind']!r} event, expected {kind!r}")
    body = d["body"]
    if not isinstance(body, dict):
        raise FormatError("event body is not an object")
    return Event(kind, body, Signer.from_json(d["signer"]), _str(d, "time"))


def genesis_body(name: str, digest: str, baseline: str, trust: list[str]) -> dict[str, Any]:
    """The body of a genesis event: challenge identity, baseline commit and trust list."""
    return {"challenge": {"name": name, "digest": digest}, "baseline": baseline, "trust": trust}


def genesis_fields(body: dict[str, Any]) -> tuple[str, str, str]:
    """Return (name, digest, baseline) from a genesis body; raises FormatError."""
    ch = _dict(body.get("challenge"), "challenge", {"name", "digest"})
    d = _dict(body, "genesis", {"challenge", "baseline", "trust"})
    if not isinstance(d["trust"], list) or not all(isinstance(t, str) for t in d["trust"]):
        raise FormatError("genesis trust list is not a list of strings")
    return _str(ch, "name"), _match(ch, "digest", _DIGEST), _match(d, "baseline", _SHA1)


def genesis_trust(body: dict[str, Any]) -> tuple[str, ...]:
    """The trust list a genesis body pins (after ``genesis_fields`` accepted it)."""
    return tuple(body["trust"])


def trust_update_body(
    challenge: str, origin: str, trust: list[str], replaces: int, source: str
) -> dict[str, Any]:
    """The body of a trust-update event: the whole new list, the seq of the list it
    replaces, and the commit its lines were read from; bound to one ledger."""
    return {
        "challenge": {"digest": challenge, "origin": origin},
        "trust": trust,
        "replaces": replaces,
        "source": {"commit": source, "path": constants.SIGNERS_FILE},
    }


def trust_update_fields(body: dict[str, Any]) -> tuple[str, str, tuple[str, ...], int, str]:
    """(challenge digest, origin, lines, replaced seq, source commit) of a trust-update
    body; raises FormatError."""
    d = _dict(body, "trust-update", {"challenge", "trust", "replaces", "source"})
    ch = _dict(d["challenge"], "challenge", {"digest", "origin"})
    trust = d["trust"]
    if not isinstance(trust, list) or not all(isinstance(t, str) for t in trust):
        raise FormatError("trust list is not a list of strings")
    source = _dict(d["source"], "source", {"commit", "path"})
    return (
        _match(ch, "digest", _DIGEST),
        _match(ch, "origin", _HEX64),
        tuple(trust),
        _int(d, "replaces"),
        _match(source, "commit", _SHA1),
    )


def challenge_update_body(
    name: str, digest: str, origin: str, replaces: int, version: int, source: str
) -> dict[str, Any]:
    """The body of a challenge-update event: the new challenge's name and digest (its
    snapshot is the entry's pinned tree), the seq of the version it replaces, its version
    number and the commit it was read from; bound to one ledger."""
    return {
        "challenge": {"name": name, "digest": digest},
        "origin": origin,
        "replaces": replaces,
        "version": version,
        "source": {"commit": source},
    }


def challenge_update_fields(body: dict[str, Any]) -> tuple[str, str, int, int]:
    """(digest, origin, replaced seq, version) of a challenge-update body; raises
    FormatError."""
    d = _dict(body, "challenge-update", {"challenge", "origin", "replaces", "version", "source"})
    ch = _dict(d["challenge"], "challenge", {"name", "digest"})
    _str(ch, "name")
    _match(_dict(d["source"], "source", {"commit"}), "commit", _SHA1)
    return (
        _match(ch, "digest", _DIGEST),
        _match(d, "origin", _HEX64),
        _int(d, "replaces"),
        _int(d, "version"),
    )


def round_close_body(digest: str, origin: str, name: str, tip: str, result: str) -> dict[str, Any]:
    """The body of a round-close event: the round, the challenge branch's commit it was
    closed at, and the SHA-256 of its canonical credit result; bound to one ledger."""
    return {
        "challenge": {"digest": digest, "origin": origin},
        "round": name,
        "tip": tip,
        "result": result,
    }


def round_close_fields(body: dict[str, Any]) -> tuple[str, str, str, str, str]:
    """(challenge digest, origin, round, tip, result) of a round-close body; raises
    FormatError."""
    d = _dict(body, "round-close", {"challenge", "round", "tip", "result"})
    ch = _dict(d["challenge"], "challenge", {"digest", "origin"})
    return (
        _match(ch, "digest", _DIGEST),
        _match(ch, "origin", _HEX64),
        _str(d, "round"),
        _match(d, "tip", _SHA1),
        _match(d, "result", _HEX64),
    )


_HEXHASH = re.compile(r"0x[0-9a-fA-F]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class Anchor(NamedTuple):
    """The body of an anchor event: where on which chain the ledger head was put."""

    origin: str
    chain: int
    tx: str
    sender: str
    block_number: int
    block_hash: str
    seq: int  # the anchored entry
    head: str  # its hash
    contract: str | None = None  # the anchor contract it was sent to; None: to the sender


def anchor_fields(body: dict[str, Any]) -> Anchor:
    """Parse an anchor body; raises FormatError."""
    d = _dict(body, "anchor", {"origin", "chain", "tx", "from", "block", "anchored"})
    block = _dict(d["block"], "block", {"number", "hash"})
    anchored = _dict(d["anchored"], "anchored", {"seq", "head"})
    contract = None if "contract" not in d else _match(d, "contract", _ADDRESS)
    return Anchor(
        _match(d, "origin", _HEX64),
        _int(d, "chain"),
        _match(d, "tx", _HEXHASH),
        _match(d, "from", _ADDRESS),
        _int(block, "number"),
        _match(block, "hash", _HEXHASH),
        _int(anchored, "seq"),
        _match(anchored, "head", _HEX64),
        contract,
    )


def score_of(text: str) -> Decimal:
    """A score written as gitcoop writes it (canonical decimal text); raises FormatError."""
    return _decimal(text)


def _dict(obj: object, what: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise FormatError(f"{what} is not an object")
    missing = keys - set(obj)
    if missing:
        raise FormatError(f"{what} lacks {sorted(missing)}")
    return obj


def _str(d: dict[str, Any], key: str) -> str:
    value = d[key]
    if not isinstance(value, str):
        raise FormatError(f"{key} is not a string")
    return value


def _int(d: dict[str, Any], key: str) -> int:
    value = d[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FormatError(f"{key} is not a non-negative integer")
    return value


def _match(d: dict[str, Any], key: str, pattern: re.Pattern[str]) -> str:
    value = _str(d, key)
    if not pattern.fullmatch(value):
        raise FormatError(f"{key} is malformed: {value[:80]!r}")
    return value


def _choice(d: dict[str, Any], key: str) -> str:
    value = _str(d, key)
    if value not in ("maximize", "minimize"):
        raise FormatError(f"{key} must be maximize or minimize")
    return value


def _decimal(value: object) -> Decimal:
    if not isinstance(value, str):
        raise FormatError("a score is not a decimal string")
    if not _CANONICAL_DECIMAL.fullmatch(value):
        raise _not_canonical(value)
    return _bounded_decimal(value)


def _bounded_decimal(value: str) -> Decimal:
    """A decimal already in the canonical pattern, once its sign and size are checked."""
    if value == "-0" or len(value) - value.startswith("-") - ("." in value) > _MAX_DIGITS:
        raise _not_canonical(value)
    return Decimal(value)


def _not_canonical(value: str) -> FormatError:
    return FormatError(f"score {value[:60]!r} is not in canonical decimal form")


def _str_map(obj: object) -> dict[str, str]:
    if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
        raise FormatError("environment is not a map of strings")
    return dict(obj)
