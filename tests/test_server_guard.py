"""`git coop server install` puts a pre-receive guard on the remote: ledger updates that
are not valid appends are refused, whatever the pushing client runs."""

from __future__ import annotations

import json

import pytest
from testing.tamper import edit_payload, read_ledger, relinked, rewrite_tip, write_ledger
from testing.world import Player, World, run

from gitcoop import canonical


@pytest.fixture
def guarded(world: World) -> Player:
    m = world.maintainer()
    out = m.coop("server", "install", str(world.remote))
    assert "pre-receive" in out.stdout
    return m


def _remote_ledger(world: World) -> str:
    return run(world.remote, "git", "rev-parse", "refs/coop/ledger").stdout.strip()


def _push_ledger(p: Player, *, force: bool = False) -> tuple[int, str]:
    spec = ("+" if force else "") + "refs/coop/ledger:refs/coop/ledger"
    out = p.git("push", "--no-verify", "origin", spec, check=False)
    return out.returncode, out.stderr


def test_a_valid_append_goes_through(guarded: Player, world: World) -> None:
    guarded.commit_score("0.61")
    guarded.coop("evaluate")
    code, err = _push_ledger(guarded)
    assert code == 0, err
    assert _remote_ledger(world) == guarded.ref("refs/coop/ledger")


def test_a_rewrite_is_refused(guarded: Player, world: World) -> None:
    before = _remote_ledger(world)
    entries = read_ledger(guarded.repo)
    write_ledger(guarded.repo, relinked(entries[:-1]))
    code, err = _push_ledger(guarded, force=True)
    assert code != 0 and "not a fast-forward" in err
    assert _remote_ledger(world) == before


def test_a_bad_signature_is_refused(guarded: Player, world: World) -> None:
    guarded.commit_score("0.61")
    guarded.coop("evaluate")
    before = _remote_ledger(world)
    rewrite_tip(guarded.repo, lambda d: edit_payload(d, lambda s: s["predicate"].update(score="1")))
    code, err = _push_ledger(guarded)
    assert code != 0 and "ledger entry #2 bad signature" in err
    assert _remote_ledger(world) == before


def test_a_broken_link_is_refused(guarded: Player, world: World) -> None:
    guarded.commit_score("0.61")
    guarded.coop("evaluate")

    def unlink(data: bytes) -> bytes:
        entry = json.loads(data)
        entry["prev"] = "0" * 64
        return canonical.encode(entry)

    rewrite_tip(guarded.repo, unlink)
    code, err = _push_ledger(guarded)
    assert code != 0 and "prev hash mismatch" in err


def test_an_unknown_key_is_refused_until_the_trust_list_names_it(
    guarded: Player, world: World
) -> None:
    ada = world.contributor("ada", "Ada", "ada@example.org")
    ada.coop("evaluate", ada.commit_score("0.63"))
    code, err = _push_ledger(ada)
    assert code != 0 and "a key this challenge does not know" in err
    key = ada.coop("key", "show").stdout.splitlines()[0]
    with (guarded.repo / ".coop" / "allowed_signers").open("a") as fh:
        fh.write(f'ada@example.org namespaces="gitcoop" {key}\n')
    guarded.git("commit", "-qam", "trust ada")
    guarded.git("push", "-q", "--no-verify", "origin", "main")
    code, err = _push_ledger(ada)
    assert code == 0, err


def test_deleting_the_ledger_and_unknown_refs_are_refused(guarded: Player, world: World) -> None:
    out = guarded.git("push", "--no-verify", "origin", ":refs/coop/ledger", check=False)
    assert out.returncode != 0 and "cannot be deleted" in out.stderr
    out = guarded.git(
        "push", "--no-verify", "origin", "refs/coop/ledger:refs/coop/other", check=False
    )
    assert out.returncode != 0 and "keeps nothing but refs/coop/ledger" in out.stderr
    branch = guarded.git("push", "-q", "--no-verify", "origin", "HEAD:refs/heads/elsewhere")
    assert branch.returncode == 0  # other refs are not the guard's business


def test_a_foreign_pre_receive_hook_is_kept_and_runs_first(world: World) -> None:
    m = world.maintainer()
    hooks = world.remote / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "pre-receive").write_text("#!/bin/sh\necho legacy ran >&2\nexit 0\n")
    (hooks / "pre-receive").chmod(0o755)
    m.coop("server", "install", str(world.remote))
    assert (hooks / "pre-receive.legacy").exists()
    m.commit_score("0.61")
    m.coop("evaluate")
    code, err = _push_ledger(m)
    assert code == 0 and "legacy ran" in err


def test_the_guard_remembers_the_genesis_and_walks_when_that_does_not_fit(
    guarded: Player, world: World
) -> None:
    seen = world.remote / "coop" / "guard.json"
    genesis = run(world.remote, "git", "rev-list", "--max-parents=0", "refs/coop/ledger")
    for attempt, planted in enumerate([None, "tip", "garbage"]):
        if planted == "tip":  # names a commit that is no genesis: not taken as one
            tip = _remote_ledger(world)
            seen.write_text(json.dumps({"tip": tip, "genesis": tip}))
        elif planted == "garbage":
            seen.write_text("{not json")
        guarded.commit_score(f"0.{61 + attempt}")
        guarded.coop("evaluate")
        code, err = _push_ledger(guarded)
        assert code == 0, err
        remembered = json.loads(seen.read_text())
        assert remembered == {"tip": _remote_ledger(world), "genesis": genesis.stdout.strip()}
