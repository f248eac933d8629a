"""Attacks on signed records, each refused with its reason: a bit flipped in any signed or
signing field, one record kind's signature presented as another's, and a valid
attestation replayed into another challenge's ledger or appended a second time. Each
forged entry is appended on top of a verified ledger, as a push would bring it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from testing.tamper import append_entry, read_ledger
from testing.world import Player, World, make_world


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
    _refused(scored, "ledger entry #4 unexpected payload type")


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
