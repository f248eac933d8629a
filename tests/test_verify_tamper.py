"""A tampered ledger (edited, removed, reordered) fails verify and names the entry."""

from __future__ import annotations

import pytest
from testing.tamper import edit_payload, rewrite
from testing.world import Player, World


@pytest.fixture
def scored(world: World) -> Player:
    m = world.maintainer()
    for v in ("0.6", "0.7", "0.8"):
        m.commit_score(v)
    m.coop("evaluate", "HEAD~2", "HEAD~1", "HEAD")
    assert m.coop("verify").returncode == 0  # pins the head
    return m


def _raise_score(entries, k: int):
    data, tree = entries[k]

    def edit(stmt: dict) -> None:
        stmt["predicate"]["score"] = "0.99"

    entries[k] = (edit_payload(data, edit), tree)
    return entries


CASES = {
    "edited": (lambda e: _raise_score(e, 3), "#3 bad signature"),
    "removed": (lambda e: e[:3] + e[4:], "#3 has seq 4"),
    "reordered": (lambda e: [*e[:3], e[4], e[3]], "#3 has seq 4"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_tampering_fails_full_verify_naming_the_entry(scored: Player, case: str) -> None:
    change, message = CASES[case]
    rewrite(scored.repo, change)
    out = scored.coop("verify", "--full", check=False)
    assert out.returncode in (1, 3), out.stderr
    assert message in out.stderr, out.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_tampering_behind_the_pin_is_a_security_error(scored: Player, case: str) -> None:
    change, message = CASES[case]
    rewrite(scored.repo, change)
    out = scored.coop("verify", check=False)
    assert out.returncode == 3
    assert "rewritten" in out.stderr and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_tampering_without_pin_exits_1(scored: Player) -> None:
    (scored.repo / ".git/coop/verified.json").unlink()
    rewrite(scored.repo, lambda e: _raise_score(e, 2))
    out = scored.coop("verify", check=False)
    assert out.returncode == 1
    assert "ledger entry #2 bad signature" in out.stderr


def test_an_unreadable_pin_is_said_and_verify_starts_from_genesis(scored: Player) -> None:
    (scored.repo / ".git/coop/verified.json").write_text("{half a pin")
    out = scored.coop("verify")
    assert "5 entries, 5 checked now" in out.stdout
    assert "verified.json was unreadable" in out.stdout + out.stderr
    out = scored.coop("verify")  # the pin is whole again
    assert "0 checked now" in out.stdout and "unreadable" not in out.stdout + out.stderr


def test_verify_is_incremental(scored: Player) -> None:
    scored.commit_score("0.9")
    scored.coop("evaluate")
    out = scored.coop("verify")
    assert "6 entries, 1 checked now" in out.stdout
    out = scored.coop("verify", "--full")
    assert "6 entries, 6 checked now" in out.stdout


def test_subject_replay_is_caught(scored: Player) -> None:
    other = scored.head("HEAD~1")
    tree_of_other = scored.git("rev-parse", "HEAD~1^{tree}").stdout.strip()

    def retarget(entries):
        data, tree = entries[4]

        def edit(stmt: dict) -> None:
            stmt["subject"][0]["digest"]["gitTree"] = tree_of_other

        entries[4] = (edit_payload(data, edit), tree)
        return entries

    assert other
    rewrite(scored.repo, retarget)
    out = scored.coop("verify", "--full", check=False)
    assert out.returncode != 0 and "#4" in out.stderr


def test_validly_signed_lies_are_caught(scored: Player, monkeypatch) -> None:
    """A signer who attests a wrong tree or parent is caught by recomputing from git."""
    from gitcoop import constants, keys, ledger, records
    from gitcoop.git import open_repo

    monkeypatch.setenv("GITCOOP_HOME", str(scored.home))
    repo = open_repo(scored.repo)
    key = keys.load(scored.home)
    entry = ledger.read_record(repo, repo.ref("refs/coop/ledger")).entry
    obj, _ = records.open_envelope(entry.envelope, entry.key, constants.INTOTO_PAYLOAD_TYPE)
    honest = records.parse_attestation(obj)
    lies = {
        "names parent": honest._replace(parent="0" * 40),
        "subject digest mismatch": honest._replace(tree="1" * 40),
    }
    for message, att in lies.items():
        before = repo.ref("refs/coop/ledger")
        env = records.sign(att.statement(), constants.INTOTO_PAYLOAD_TYPE, key)
        ledger.append(repo, "attestation", key.public_openssh, env)
        out = scored.coop("verify", check=False)
        assert out.returncode == 1 and "#5" in out.stderr and message in out.stderr
        scored.git("update-ref", "refs/coop/ledger", before)


def test_a_lie_about_a_commit_that_arrives_later_is_caught_when_it_arrives(
    scored: Player, monkeypatch
) -> None:
    """An attestation verified while its commit was absent is checked once the commit is
    here: a wrong tree then fails credit, naming the entry, instead of counting."""
    from gitcoop import constants, keys, ledger, records
    from gitcoop.git import open_repo

    monkeypatch.setenv("GITCOOP_HOME", str(scored.home))
    late = scored.commit_score("0.95")
    loose = scored.repo / ".git/objects" / late[:2] / late[2:]
    kept = loose.read_bytes()
    loose.unlink()  # the commit is not in this clone yet; its tree and blob are
    repo = open_repo(scored.repo)
    key = keys.load(scored.home)
    entry = ledger.read_record(repo, repo.ref("refs/coop/ledger")).entry
    obj, _ = records.open_envelope(entry.envelope, entry.key, constants.INTOTO_PAYLOAD_TYPE)
    honest = records.parse_attestation(obj)
    lie = honest._replace(commit=late, parent=honest.commit, tree="1" * 40)
    env = records.sign(lie.statement(), constants.INTOTO_PAYLOAD_TYPE, key)
    ledger.append(repo, "attestation", key.public_openssh, env)
    out = scored.coop("verify")
    assert "is not in this repository yet" in out.stderr
    loose.write_bytes(kept)  # the commit arrives
    out = scored.coop("credit", "--json", check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "#5" in out.stderr and "has another tree or first parent" in out.stderr
    assert scored.coop("verify", "--full", check=False).returncode == 1
