"""Each clone pins the remote ledger head it verified: a remote that stops extending it
(rolled back, rewritten, deleted) is a security error that changes nothing locally."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testing.tamper import read_ledger, relinked, resign_payload, write_ledger
from testing.world import Player, World, run

from gitcoop import keys
from gitcoop.git import open_repo
from gitcoop.sync import remote_pin


def _coop_refs(p: Player) -> dict[str, str]:
    out = p.git(
        "for-each-ref", "--format=%(refname) %(objectname)", "refs/coop", "refs/coop-remote"
    )
    return dict(line.split() for line in out.stdout.splitlines())


def _local_state(p: Player) -> dict[str, object]:
    coop = p.repo / ".git" / "coop"
    files = {f.name: f.read_bytes() for f in coop.glob("*.json*")}
    files |= {f"remotes/{f.name}": f.read_bytes() for f in (coop / "remotes").glob("*")}
    return {"refs": _coop_refs(p), "files": files}


@pytest.fixture
def pinned(world: World) -> tuple[Player, Player]:
    """A maintainer who published three attestations, and a contributor who synced them."""
    m = world.maintainer()
    for v in ("0.61", "0.62", "0.63"):
        m.commit_score(v)
    m.coop("evaluate")
    m.git("push", "-q", "origin", "HEAD")
    ada = world.contributor("ada", "Ada", "ada@example.org")
    ada.coop("sync", "origin")
    return m, ada


def _force_remote(world: World, commit: str) -> None:
    run(world.remote, "git", "update-ref", "refs/coop/ledger", commit)


def test_first_sync_pins_the_remote_head(pinned: tuple[Player, Player], world: World) -> None:
    _m, ada = pinned
    pin = remote_pin(open_repo(ada.repo), "origin")
    head = run(world.remote, "git", "rev-parse", "refs/coop/ledger").stdout.strip()
    assert pin is not None and pin.commit == head and pin.seq == 4


def test_rollback_is_a_security_error_that_changes_nothing(
    pinned: tuple[Player, Player], world: World
) -> None:
    _m, ada = pinned
    before = _local_state(ada)
    older = run(world.remote, "git", "rev-parse", "refs/coop/ledger~2").stdout.strip()
    _force_remote(world, older)
    out = ada.coop("sync", "origin", check=False)
    assert out.returncode == 3 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()[:1]
    assert "origin rewrote its ledger" in line and "verified #4" in line
    assert "rolled back to #2" in line and older[:12] in line
    assert _local_state(ada) == before
    evidence = json.loads(Path(line.split("evidence in ")[1].split()[0].rstrip(";")).read_text())
    assert evidence["pinned"]["seq"] == 4 and evidence["remote_head"]["seq"] == 2


def test_rewritten_middle_entry_resigned_by_the_same_key_is_caught(
    pinned: tuple[Player, Player], world: World
) -> None:
    m, ada = pinned
    before = _local_state(ada)
    key = keys.load(m.home)
    entries = read_ledger(world.remote)

    def lower(stmt: dict) -> None:
        stmt["predicate"]["score"] = "0.1"

    data, tree = entries[2]
    entries[2] = (resign_payload(data, lower, key), tree)
    write_ledger(world.remote, relinked(entries))  # every link and signature still valid
    out = ada.coop("sync", "origin", check=False)
    assert out.returncode == 3
    assert "entry #2 differs" in out.stderr and "does not extend it" in out.stderr
    assert _local_state(ada) == before
    evidence_file = out.stderr.split("evidence in ")[1].split(";")[0].split()[0]
    diff = json.loads(Path(evidence_file).read_text())["first_difference"]
    assert diff["seq"] == 2 and diff["pinned"]["entry"] != diff["remote"]["entry"]
    assert all('"seq":2' in diff[side]["entry"] for side in ("pinned", "remote"))


def test_deleted_remote_ledger_is_a_security_error(
    pinned: tuple[Player, Player], world: World
) -> None:
    _m, ada = pinned
    run(world.remote, "git", "update-ref", "-d", "refs/coop/ledger")
    out = ada.coop("sync", "origin", check=False)
    assert out.returncode == 3 and "it has no ledger any more" in out.stderr


def test_retrust_accepts_the_remote_and_keeps_this_clones_attestations(
    pinned: tuple[Player, Player], world: World
) -> None:
    m, ada = pinned
    older = run(world.remote, "git", "rev-parse", "refs/coop/ledger~2").stdout.strip()
    _force_remote(world, older)
    assert ada.coop("sync", "origin", check=False).returncode == 3
    out = ada.coop("sync", "origin", "--retrust")
    assert out.stdout.strip() == "fetched 0, re-linked 0, pushed"  # the dropped two, again
    remote = run(world.remote, "git", "rev-parse", "refs/coop/ledger").stdout.strip()
    assert remote == ada.ref("refs/coop/ledger")
    assert ada.coop("verify").returncode == 0
    assert ada.coop("sync", "origin").stdout.startswith("fetched 0")
    assert m.coop("sync", "origin").returncode == 0  # the maintainer's pin is extended again


def test_an_older_head_never_replaces_a_newer_pin(pinned: tuple[Player, Player]) -> None:
    from gitcoop import ledger, sync
    from gitcoop.commands.verify import position

    _m, ada = pinned
    repo = open_repo(ada.repo)
    newer = remote_pin(repo, "origin")
    assert newer is not None
    older = position(ledger.read_record(repo, repo.parent_ids(newer.commit)[0]))
    sync._advance_remote_pin(repo, "origin", older, None)
    assert remote_pin(repo, "origin") == newer


def test_an_unreadable_pin_is_not_silently_replaced(pinned: tuple[Player, Player]) -> None:
    _m, ada = pinned
    pin = next((ada.repo / ".git" / "coop" / "remotes").glob("origin.json"))
    pin.write_text("{not json")
    out = ada.coop("sync", "origin", check=False)
    assert out.returncode == 3 and "unreadable" in out.stderr and "--retrust" in out.stderr
    assert pin.read_text() == "{not json"


def test_retrust_after_a_rewrite_puts_the_changed_attestation_back_on_top(
    pinned: tuple[Player, Player], world: World
) -> None:
    _m, ada = pinned
    entries = read_ledger(world.remote)
    dropped = entries.pop(3)
    write_ledger(world.remote, relinked(entries))  # #3 removed, the rest re-linked
    assert ada.coop("sync", "origin", check=False).returncode == 3
    out = ada.coop("sync", "origin", "--retrust")
    assert out.stdout.strip() == "fetched 4, re-linked 1, pushed"
    assert ada.coop("verify").returncode == 0 and ada.coop("verify", "--full").returncode == 0
    now = read_ledger(world.remote)
    assert (
        len(now) == 5 and json.loads(now[-1][0])["envelope"] == json.loads(dropped[0])["envelope"]
    )


def test_remote_names_that_clean_up_alike_keep_apart() -> None:
    from gitcoop.incoming import safe_name

    assert safe_name("origin") == "origin"
    assert safe_name("a/b") != safe_name("a_b") and safe_name("a/b").startswith("a_b-")
    assert safe_name("..x") != safe_name("x")
