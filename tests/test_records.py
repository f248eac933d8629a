"""Golden bytes for a gitcoop attestation entry, and strict parsing of records."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gitcoop import canonical, constants, ledger, records
from gitcoop.errors import FormatError, VerificationError
from gitcoop.keys import SigningKey

VECTOR = Path(__file__).parent / "vectors" / "attestation_entry.json"
SEED = bytes(range(32))


def _key() -> SigningKey:
    return SigningKey.from_private(Path("/nonexistent"), Ed25519PrivateKey.from_private_bytes(SEED))


def _attestation(key: SigningKey) -> records.Attestation:
    return records.Attestation(
        commit="a" * 40,
        tree="b" * 40,
        challenge="sha256:" + "c" * 64,
        origin="d" * 64,
        metric="accuracy",
        direction="maximize",
        split="public",
        score=Decimal("0.91"),
        parent="e" * 40,
        parent_score=Decimal("0.875"),
        delta=Decimal("0.035"),
        environment={"gitcoop": "0.1.0", "python": "3.11.7"},
        duration_ms=1234,
        time="2026-01-01T00:00:00Z",
        signer=records.Signer(key.keyid, "ada@example.org", "Ada Lovelace"),
    )


def _entry() -> ledger.Entry:
    key = _key()
    envelope = records.sign(_attestation(key).statement(), constants.INTOTO_PAYLOAD_TYPE, key)
    return ledger.Entry(
        1, "f" * 64, "attestation", "sha256:" + "c" * 64, "d" * 64, key.public_openssh, envelope
    )


def test_entry_matches_golden_bytes() -> None:
    vector = json.loads(VECTOR.read_text())
    data = _entry().to_bytes()
    assert data.decode() == vector["entry"]
    assert ledger.entry_hash(data) == vector["sha256"]
    assert rfc8785.dumps(json.loads(data)) == data  # independently canonical
    payload = base64.b64decode(json.loads(data)["envelope"]["payload"])
    assert rfc8785.dumps(json.loads(payload)) == payload


def test_golden_entry_parses_and_verifies() -> None:
    vector = json.loads(VECTOR.read_text())
    entry = ledger.Entry.from_bytes(vector["entry"].encode())
    obj, keyid = records.open_envelope(entry.envelope, entry.key, constants.INTOTO_PAYLOAD_TYPE)
    att = records.parse_attestation(obj)
    assert att == _attestation(_key())
    assert keyid == att.signer.keyid


def test_an_event_is_not_an_attestation() -> None:
    key = _key()
    event = records.Event("genesis", {"x": 1}, records.Signer(key.keyid, "a", "b"), "t")
    env = records.sign(event.payload(), constants.EVENT_PAYLOAD_TYPE, key)
    with pytest.raises(VerificationError, match="payload type"):
        records.open_envelope(env, key.public_openssh, constants.INTOTO_PAYLOAD_TYPE)
    # even under the right payload type, an event's body is not a statement
    env2 = records.sign(event.payload(), constants.INTOTO_PAYLOAD_TYPE, key)
    obj, _ = records.open_envelope(env2, key.public_openssh, constants.INTOTO_PAYLOAD_TYPE)
    with pytest.raises(FormatError):
        records.parse_attestation(obj)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("predicate", "score"), "0.910"),  # not canonical decimal text
        (("predicate", "score"), 0.91),
        (("predicate", "score"), "NaN"),
        (("subject",), []),
        (("predicateType",), "https://example.com/other/v1"),
        (("predicate", "challenge", "digest"), "sha1:abc"),
        (("predicate", "durationMs"), -1),
        (("predicate", "metric", "direction"), "up"),
    ],
)
def test_malformed_statements_are_rejected(path: tuple[str, ...], value: object) -> None:
    stmt = _attestation(_key()).statement()
    target = stmt
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(FormatError):
        records.parse_attestation(stmt)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.pop("key"),
        lambda e: e.update(seq=-1),
        lambda e: e.update(kind="payout"),
        lambda e: e.update(prev="xyz"),
        lambda e: e.update(extra=1),
        lambda e: e.update(version=2),
    ],
)
def test_malformed_entries_are_rejected(mutate) -> None:
    obj = _entry().to_json()
    mutate(obj)
    with pytest.raises(FormatError):
        ledger.Entry.from_bytes(canonical.encode(obj))


def test_non_canonical_entry_bytes_are_rejected() -> None:
    data = _entry().to_bytes()
    spaced = json.dumps(json.loads(data), indent=1).encode()
    with pytest.raises(FormatError, match="non-canonical"):
        ledger.Entry.from_bytes(spaced)
