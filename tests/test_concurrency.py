"""Two evaluate processes at once lose nothing: every attestation lands, the chain holds."""

from __future__ import annotations

import json
import subprocess

from testing.world import World


def test_parallel_evaluate_processes_lose_nothing(world: World) -> None:
    m = world.maintainer()
    commits = [m.commit_score(f"0.{i}", f"c{i}") for i in range(1, 9)]
    groups = [commits[0::2], commits[1::2]]
    procs = [
        subprocess.Popen(
            ["git", "coop", "evaluate", *g],
            cwd=m.repo,
            env=m.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for g in groups
    ]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    entries = json.loads(m.coop("log", "--json").stdout)
    attested = [e["commit"] for e in entries if e["kind"] == "attestation"]
    assert sorted(attested) == sorted([*commits, m.head("HEAD~8")])
    assert [e["seq"] for e in entries] == list(range(len(entries) - 1, -1, -1))
    assert m.coop("verify", "--full").returncode == 0


def test_jobs_option_scores_in_parallel(world: World) -> None:
    m = world.maintainer()
    commits = [m.commit_score(f"0.{i}", f"c{i}") for i in range(1, 5)]
    out = json.loads(m.coop("evaluate", "--jobs", "2", "--json", *commits).stdout)
    assert [o["score"] for o in out] == ["0.1", "0.2", "0.3", "0.4"]
    assert all(o["attested"] for o in out)
    deltas = [
        json.loads(m.coop("show", c, "--json").stdout)["attestations"][0]["delta"] for c in commits
    ]
    assert deltas == ["-0.4", "0.1", "0.1", "0.1"]
