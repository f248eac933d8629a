"""Amended, rebased and cherry-picked commits are new commits: unscored until evaluated,
and nothing of the original's attestation carries over to them, not even a note git copied."""

from __future__ import annotations

import json

import pytest
from testing.world import Player, World


def _attestations(p: Player, commit: str) -> list[dict]:
    return json.loads(p.coop("show", commit, "--json").stdout)["attestations"]


def _note(p: Player, commit: str) -> list[str]:
    out = p.git("notes", "--ref", "coop", "show", commit, check=False)
    return out.stdout.splitlines() if out.returncode == 0 else []


@pytest.mark.parametrize("how", ["amend", "rebase", "cherry-pick"])
def test_a_rewritten_commit_is_unscored_until_evaluated(world: World, how: str) -> None:
    m = world.maintainer()
    m.git("config", "notes.rewriteRef", "refs/notes/coop")  # git copies notes on rewrites
    original = m.commit_score("0.7", "try")
    m.coop("evaluate")
    (line,) = _note(m, original)
    if how == "amend":
        m.git("commit", "-q", "--amend", "-m", "try, reworded")
    elif how == "rebase":
        m.git("checkout", "-q", "-b", "side", "HEAD~1")
        (m.repo / "notes.txt").write_text("side work\n")
        m.git("add", "notes.txt")
        m.git("commit", "-qm", "side work")
        m.git("checkout", "-q", "main")
        m.git("rebase", "-q", "side")
    else:
        m.git("checkout", "-q", "-b", "pick", "HEAD~1")
        (m.repo / "notes.txt").write_text("other work\n")
        m.git("add", "notes.txt")
        m.git("commit", "-qm", "other work")
        m.git("cherry-pick", original)
    copy = m.head()
    # git 2.39 copies notes on amend and rebase, never on cherry-pick (-x or not).
    assert _note(m, copy) == ([] if how == "cherry-pick" else [line])
    assert copy != original and _attestations(m, original)
    assert _attestations(m, copy) == []  # a copied note counts for nothing
    if how != "cherry-pick":  # on the challenge branch, credit names it and gives nothing
        uncredited = json.dumps(
            json.loads(m.coop("credit", "--format", "json").stdout)["uncredited"]
        )
        assert copy in uncredited and "no verified attestation" in uncredited
    m.coop("evaluate", copy)
    (att,) = _attestations(m, copy)
    assert att["score"] == "0.7"
    (own,) = _note(m, copy)  # the copied line is gone, the commit's own one is there
    assert own != line and own.startswith(f"#{att['seq']} accuracy 0.7 ")
    assert _note(m, original) == [line]
