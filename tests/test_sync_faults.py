"""Faults during a sync: each a clear one-line error, nothing lost, and a retry that works."""

from __future__ import annotations

import shutil

from testing.world import Player, World, run


def _healthy(p: Player) -> None:
    assert p.git("fsck", "--no-dangling").returncode == 0
    assert p.coop("verify", "--full").returncode == 0


def _one_line(out) -> str:
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_a_stale_lock_is_named_and_a_retry_works(behind: tuple[Player, Player]) -> None:
    _m, ada = behind
    before = ada.ref("refs/coop/ledger")
    lock = ada.repo / ".git" / "refs" / "coop" / "ledger.lock"
    lock.write_text("")
    out = ada.coop("sync", "origin", check=False)
    assert out.returncode == 1 and str(lock) in _one_line(out)
    assert ada.ref("refs/coop/ledger") == before
    lock.unlink()
    assert "re-linked 1, pushed" in ada.coop("sync", "origin").stdout
    _healthy(ada)


def test_a_vanished_remote_changes_nothing_and_a_retry_works(
    behind: tuple[Player, Player], world: World
) -> None:
    _m, ada = behind
    before = ada.ref("refs/coop/ledger")
    moved = world.remote.with_name("moved.git")
    world.remote.rename(moved)
    try:
        out = ada.coop("sync", "origin", check=False)
        assert out.returncode != 0 and "git fetch failed" in _one_line(out)
        assert ada.ref("refs/coop/ledger") == before
    finally:
        moved.rename(world.remote)
    assert "pushed" in ada.coop("sync", "origin").stdout
    _healthy(ada)


def test_a_remote_ledger_with_a_corrupt_object_is_refused(
    behind: tuple[Player, Player], world: World
) -> None:
    m, ada = behind
    m.commit_score("0.63")
    m.coop("evaluate")
    m.coop("sync", "origin")
    head = run(world.remote, "git", "rev-parse", "refs/coop/ledger:entry.json").stdout.strip()
    run(world.remote, "git", "repack", "-adq")  # one pack; then write a bad loose copy ahead
    loose = world.remote / "objects" / head[:2] / head[2:]
    loose.parent.mkdir(exist_ok=True)
    loose.write_bytes(b"not zlib at all")
    for pack in (world.remote / "objects" / "pack").glob("*"):
        pack.unlink()
    before = ada.ref("refs/coop/ledger")
    out = ada.coop("sync", "origin", check=False)
    assert out.returncode != 0 and _one_line(out).startswith("gitcoop: error:")
    assert ada.ref("refs/coop/ledger") == before
    _healthy(ada)


def test_a_refused_push_keeps_the_moved_ledger_and_a_retry_works(
    behind: tuple[Player, Player], world: World
) -> None:
    _m, ada = behind
    hook = world.remote / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\necho 'closed for maintenance' >&2\nexit 1\n")
    hook.chmod(0o755)
    out = ada.coop("sync", "origin", check=False)
    line = _one_line(out)
    assert out.returncode == 1 and "could not publish the ledger to origin" in line
    assert "kept here" in line
    entries = ada.git("rev-list", "--count", "refs/coop/ledger").stdout.strip()
    assert entries == "4"  # genesis, baseline, the maintainer's and ada's: taken and re-linked
    _healthy(ada)
    hook.unlink()
    assert ada.coop("sync", "origin").stdout.strip() == "fetched 0, re-linked 0, pushed"
    remote = run(world.remote, "git", "rev-parse", "refs/coop/ledger").stdout.strip()
    assert remote == ada.ref("refs/coop/ledger")


def test_no_incoming_refs_stay_and_a_deleted_pin_is_taken_anew(
    behind: tuple[Player, Player],
) -> None:
    """The incoming namespace is emptied after each sync; a pin file that is gone (not
    damaged) reads as a first sync with that remote."""
    _m, ada = behind
    incoming = ada.git("for-each-ref", "refs/coop-incoming").stdout
    assert incoming == ""
    shutil.rmtree(ada.repo / ".git" / "coop" / "remotes", ignore_errors=True)
    assert ada.coop("sync", "origin").returncode == 0  # a lost pin is trusted anew, once
    _healthy(ada)
