"""Two clones with their own new entries end up with one chain holding both, once each."""

from __future__ import annotations

import json

from testing.world import World, diverged, run


def _attested(p) -> list[str]:
    return [
        e["commit"]
        for e in json.loads(p.coop("log", "--json").stdout)
        if e["kind"] == "attestation"
    ]


def test_diverged_ledgers_are_relinked_without_resigning(world: World) -> None:
    m, ada, a, b = diverged(world)
    ada_envelope = json.loads(ada.coop("show", a, "--json").stdout)["attestations"][0]["envelope"]

    assert "pushed" in ada.coop("sync", "origin").stdout
    ada.git("push", "-q", "origin", "ada-try")  # so other clones can check the subject
    out = m.coop("sync", "origin").stdout
    assert "re-linked 1" in out and "pushed" in out
    m.git("fetch", "-q", "origin")
    assert ada.coop("sync", "origin").stdout.startswith("fetched 1")

    remote = run(world.remote, "git", "rev-parse", "refs/coop/ledger").stdout.strip()
    assert m.ref("refs/coop/ledger") == ada.ref("refs/coop/ledger") == remote
    for p in (m, ada):
        got = _attested(p)
        assert sorted(got) == sorted({a, b, got[-1]}) and len(got) == 3  # baseline + both
        assert p.coop("verify", "--full").returncode == 0
    relinked = json.loads(m.coop("show", a, "--json").stdout)["attestations"][0]
    assert relinked["envelope"] == ada_envelope  # same signature, new position


def test_sync_twice_changes_nothing(world: World) -> None:
    m = world.maintainer()
    m.commit_score("0.7")
    m.coop("evaluate")
    m.coop("sync", "origin")
    before = m.ref("refs/coop/ledger")
    assert m.coop("sync", "origin").stdout.strip() == "fetched 0, re-linked 0, nothing to push"
    assert m.ref("refs/coop/ledger") == before


def test_the_first_command_in_a_fresh_clone_takes_the_ledger(world: World) -> None:
    m = world.maintainer()
    m.commit_score("0.7")
    m.git("push", "-q", "origin", "main")  # the pre-push hook scores and publishes
    for first in (["credit"], ["verify"], ["log"]):
        ada = world.contributor(f"ada-{first[0]}", "Ada", "ada@example.org", join=False)
        assert ada.ref("refs/coop/ledger") is None
        out = ada.coop(*first)
        assert "took the challenge's ledger from the remote" in out.stderr
        assert ada.ref("refs/coop/ledger") == m.ref("refs/coop/ledger")
    assert "0.7" in out.stdout  # the log shows the maintainer's attestation
