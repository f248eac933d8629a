"""Attacks on signed records, each refused with its reason: a bit flipped in any signed or
signing field, one record kind's signature presented as another's, and a valid
attestation replayed into another challenge's ledger or appended a second time. Each
forged entry is appended on top of a verified ledger, as a push would bring it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from testing.tamper import append_entry, read_ledger
from testing.world import Player, World, make_world

from gitcoop import constants, keys, records


@pytest.fixture
def scored(world: World) -> Player:
    m = world.maintainer()
    for v in ("0.6", "0.7"):
        m.commit_score(v)
    m.coop("evaluate", "HEAD~1", "HEAD")  # entries #0 (genesis) to #3
    assert m.coop("verify").returncode == 0  # pins #3
    return m


def _flip(raw: bytes, where: str) -> bytes:
    i = 0 if where == "first" else len(raw) - 1
    return raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]


def _b64(text: str, where: str) -> str:
    return base64.b64encode(_flip(base64.b64decode(text), where)).decode()


def _flipper(field: str, where: str) -> Callable[[dict], dict]:
    def make(entry: dict) -> dict:
        env = entry["envelope"]
        if field == "payload":
            env["payload"] = _b64(env["payload"], where)
        elif field == "payloadType":
            env["payloadType"] = _flip(env["payloadType"].encode(), where).decode()
        elif field == "sig":
            env["signatures"][0]["sig"] = _b64(env["signatures"][0]["sig"], where)
        else:  # the signer's public key: the first or last of its 32 bytes
            kind, blob = entry["key"].split()[:2]
            raw = base64.b64decode(blob)
            at = len(raw) - (32 if where == "first" else 1)
            raw = raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1 :]
            entry["key"] = f"{kind} {base64.b64encode(raw).decode()}"
        return entry

    return make


REASONS = {
    "payload": "bad signature",
    "payloadType": "unexpected payload type",
    "sig": "bad signature",
    "key": "bad signature",  # another key, or no valid point: the signature fails either way
}


@pytest.mark.parametrize("where", ["first", "last"])
@pytest.mark.parametrize("field", ["payload", "payloadType", "sig", "key"])
def test_a_flipped_bit_is_refused_with_its_reason(scored: Player, field: str, where: str) -> None:
    before = scored.coop("credit", "--json").stdout
    append_entry(scored.repo, _flipper(field, where))
    out = scored.coop("verify", check=False)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1, out.stderr
    assert lines[0].startswith("gitcoop: error: ledger entry #4 "), lines[0]
    assert REASONS[field] in lines[0]
    credit = scored.coop("credit", "--json", check=False)
    assert credit.returncode == 1 and credit.stdout == ""  # nothing is credited from it
    assert before  # the honest ledger was credited


def _carrying(record: dict) -> Callable[[dict], dict]:
    """A new entry that carries ``record``'s signed envelope and key."""

    def make(entry: dict) -> dict:
        entry["envelope"], entry["key"] = record["envelope"], record["key"]
        return entry

    return make


def _refused(p: Player, reason: str) -> None:
    out = p.coop("verify", check=False)
    assert out.returncode == 1 and reason in out.stderr, out.stderr


def test_an_event_signature_presented_as_an_attestation_is_refused(scored: Player) -> None:
    genesis = json.loads(read_ledger(scored.repo)[0][0])
    append_entry(scored.repo, _carrying(genesis))
    _refused(scored, "ledger entry #4 unexpected payload type")


def test_an_attestation_presented_as_a_genesis_is_refused(scored: Player) -> None:
    def make(entry: dict) -> dict:
        entry["kind"] = "genesis"
        return entry

    append_entry(scored.repo, make)
    _refused(scored, "ledger entry #4 is a second genesis entry")


def test_an_attestation_replayed_into_another_challenge_is_refused(
    scored: Player, tmp_path: Path
) -> None:
    stolen = json.loads(read_ledger(scored.repo)[-1][0])
    (tmp_path / "other").mkdir()
    other = make_world(tmp_path / "other").maintainer(score="0.4")
    other.commit_score("0.45")
    other.coop("evaluate")

    append_entry(other.repo, _carrying(stolen))
    _refused(other, "attests under another challenge or ledger")


def test_an_attestation_appended_twice_counts_once(scored: Player) -> None:
    before = json.loads(scored.coop("credit", "--json").stdout)
    append_entry(scored.repo, lambda entry: entry)  # the same signed record, a new seq
    assert scored.coop("verify").returncode == 0  # a valid record, validly linked
    after = json.loads(scored.coop("credit", "--json").stdout)
    assert after == before


def test_a_second_genesis_is_refused(scored: Player) -> None:
    genesis = json.loads(read_ledger(scored.repo)[0][0])

    def make(entry: dict) -> dict:
        entry["kind"] = "genesis"
        return _carrying(genesis)(entry)

    append_entry(scored.repo, make)
    _refused(scored, "ledger entry #4 is a second genesis entry")


def _signed_by_maintainer(p: Player, statement: dict, payload_type: str) -> Callable[[dict], dict]:
    key = keys.load(p.home)
    envelope = records.sign(statement, payload_type, key)

    def make(entry: dict) -> dict:
        entry["envelope"], entry["key"] = envelope, key.public_openssh
        return entry

    return make


def _review_of(p: Player, entry: dict) -> dict:
    key = keys.load(p.home)
    commit = p.head()
    return records.Review(
        commit, p.git("rev-parse", "HEAD^{tree}").stdout.strip(), entry["challenge"],
        entry["origin"], "sha256:" + "0" * 64, key.keyid, Decimal("0.7"), Decimal("0.7"),
        Decimal(0), records.REPRODUCED, 1, records.now(),
        records.Signer(key.keyid, p.email, p.name),
    ).statement()  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("attestation", "not a gitcoop metric-delta statement"),
        ("review", "ledger entry #4 subject digest mismatch"),  # a review of HEAD~1, not HEAD
    ],
)
def test_a_review_is_read_only_as_a_review(scored: Player, kind: str, reason: str) -> None:
    last = json.loads(read_ledger(scored.repo)[-1][0])
    statement = _review_of(scored, last)
    if kind == "review":  # sign it for a commit whose tree it does not name
        statement["subject"][0]["digest"]["gitCommit"] = scored.head("HEAD~1")
    make = _signed_by_maintainer(scored, statement, constants.INTOTO_PAYLOAD_TYPE)

    def as_kind(entry: dict) -> dict:
        entry["kind"] = kind
        return make(entry)

    append_entry(scored.repo, as_kind)
    _refused(scored, reason)


def test_an_attestation_presented_as_a_review_is_refused(scored: Player) -> None:
    def make(entry: dict) -> dict:
        entry["kind"] = "review"
        return entry

    append_entry(scored.repo, make)
    _refused(scored, "not a gitcoop review statement")


def test_a_genesis_presented_as_a_trust_update_is_refused(scored: Player) -> None:
    genesis = json.loads(read_ledger(scored.repo)[0][0])

    def make(entry: dict) -> dict:
        entry["kind"] = "trust-update"
        return _carrying(genesis)(entry)

    append_entry(scored.repo, make)
    _refused(scored, "payload is a 'genesis' event, expected 'trust-update'")


def test_a_trust_update_for_another_ledger_is_refused(scored: Player) -> None:
    last = json.loads(read_ledger(scored.repo)[-1][0])
    key = keys.load(scored.home)
    body = records.trust_update_body(
        "sha256:" + "1" * 64, last["origin"], [], 0, scored.head()
    )  # another challenge's digest, signed by this challenge's maintainer
    event = records.Event(
        "trust-update", body, records.Signer(key.keyid, scored.email, scored.name), "t"
    )
    make = _signed_by_maintainer(scored, event.payload(), constants.EVENT_PAYLOAD_TYPE)

    def as_update(entry: dict) -> dict:
        entry["kind"] = "trust-update"
        return make(entry)

    append_entry(scored.repo, as_update)
    _refused(scored, "updates the trust list of another challenge or ledger")
