"""Two clones publishing to one remote at the same moment, round after round, lose nothing
and duplicate nothing, and end byte-identical on refs/coop/*."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from testing.tamper import read_ledger
from testing.world import Player, World, run

ROUNDS = 20


def _coop_refs(p: Player) -> str:
    return p.git("for-each-ref", "--format=%(refname) %(objectname)", "refs/coop").stdout


def _attested_commits(world: World) -> Counter[str]:
    out: Counter[str] = Counter()
    for data, _tree in read_ledger(world.remote):
        entry = json.loads(data)
        if entry["kind"] == "attestation":
            stmt = json.loads(base64.b64decode(entry["envelope"]["payload"]))
            out[stmt["subject"][0]["digest"]["gitCommit"]] += 1
    return out


@pytest.mark.slow
def test_two_clones_syncing_at_once_for_twenty_rounds(world: World) -> None:
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    ada.git("checkout", "-q", "-b", "ada")
    mine: dict[str, list[str]] = {"maint": [], "ada": []}
    gate = threading.Barrier(2)

    def play(key: str, p: Player, n: int) -> str:
        commit = p.commit_score(f"0.{n:02d}{1 if key == 'ada' else 2}", f"{key} round {n}")
        p.coop("evaluate", commit)
        mine[key].append(commit)
        gate.wait()  # both publish at the same moment
        return p.coop("sync", "origin").stdout

    relinked = 0
    with ThreadPoolExecutor(2) as pool:
        for n in range(ROUNDS):
            outs = list(pool.map(play, ("maint", "ada"), (m, ada), (n, n)))
            assert all(o.rstrip().endswith("pushed") for o in outs), outs
            relinked += sum(int(re.search(r"re-linked (\d+)", o)[1]) for o in outs)
    assert relinked >= 1  # the pushes did collide, and the loser re-linked its entry
    for p in (m, ada, m):  # each takes what the other published last
        p.coop("sync", "origin")

    counts = _attested_commits(world)
    assert set(mine["maint"]) | set(mine["ada"]) <= set(counts)
    assert max(counts.values()) == 1  # every attestation exactly once
    assert _coop_refs(m) == _coop_refs(ada)
    remote = run(world.remote, "git", "rev-parse", "refs/coop/ledger").stdout.strip()
    assert m.ref("refs/coop/ledger") == remote
    for p in (m, ada):
        assert p.coop("verify", "--full").returncode == 0
    seqs = [json.loads(d)["seq"] for d, _ in read_ledger(world.remote)]
    assert seqs == list(range(len(seqs))) and len(seqs) == 2 + 2 * ROUNDS


def test_two_pushes_through_the_hook_at_once(world: World) -> None:
    """The pre-push hook publishes the ledger the same way; git itself lets one branch
    update win, and the loser's rebased commit is a new, unscored commit."""
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    gate = threading.Barrier(2)

    def push(p: Player, value: str) -> tuple[str, int]:
        commit = p.commit_score(value, f"try {value}")
        gate.wait()
        return commit, p.git("push", "-q", "origin", "HEAD:main", check=False).returncode

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(push, (m, ada), ("0.71", "0.72")))
    assert sorted(code for _, code in results) in ([0, 0], [0, 1])
    for p in (m, ada, m):
        p.coop("sync", "origin")
    counts = _attested_commits(world)
    assert {c for c, _ in results} <= set(counts) and max(counts.values()) == 1
    assert _coop_refs(m) == _coop_refs(ada)
    assert m.coop("verify", "--full").returncode == 0
