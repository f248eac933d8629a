"""SIGKILL at random moments of an evaluate run: the ledger stays the old or a longer valid
chain, git fsck stays clean, nothing is attested twice, and the next run finishes the job."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time

from testing.world import World


def test_sigkill_during_evaluate_keeps_the_ledger_valid(world: World) -> None:
    m = world.maintainer()
    rng = random.Random(1234)
    commits: list[str] = []
    sizes = [int(m.git("rev-list", "--count", "refs/coop/ledger").stdout)]
    for round_ in range(8):
        commits += [m.commit_score(f"0.{round_}{i}", f"r{round_} c{i}") for i in range(5)]
        proc = subprocess.Popen(
            ["git", "coop", "evaluate", *commits],
            cwd=m.repo,
            env=m.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(0.1, 0.6))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        fsck = m.git("fsck", "--no-dangling", "--no-progress", check=False)
        assert fsck.returncode == 0, (fsck.stdout, fsck.stderr, sizes)
        verify = m.coop("verify", "--full", check=False)
        assert verify.returncode == 0, (verify.stderr, sizes)
        sizes.append(int(m.git("rev-list", "--count", "refs/coop/ledger").stdout))
        assert sizes[-1] >= sizes[-2]  # never shorter: the old head or a longer valid chain
    assert sizes[-1] < len(commits) + 2, sizes  # the kills really interrupted the work
    # A kill inside the ref update leaves git's lock file, as git itself does; the next
    # write names it (tests/test_sync_faults.py) and waits for the user to remove it.
    (m.repo / ".git/refs/coop/ledger.lock").unlink(missing_ok=True)
    m.coop("evaluate", *commits)
    entries = json.loads(m.coop("log", "--json").stdout)
    attested = [e["commit"] for e in entries if e["kind"] == "attestation"]
    assert sorted(attested) == sorted({*commits, m.head(f"HEAD~{len(commits)}")})  # once each
    assert m.coop("verify", "--full").returncode == 0


def test_broken_scoring_worktrees_are_rebuilt(world: World) -> None:
    m = world.maintainer()
    wt = m.repo / ".git/coop/worktrees/0"
    (wt / ".git").write_text("gitdir: /nonexistent\n")  # as if killed half-way
    m.commit_score("0.6")
    assert "0.6" in m.coop("evaluate").stdout
    shutil.rmtree(wt)  # registered and locked, but gone
    m.commit_score("0.7")
    assert "0.7" in m.coop("evaluate").stdout
    (wt / "stray.txt").write_text("left by a metric")
    m.commit_score("0.8")
    assert "0.8" in m.coop("evaluate").stdout
    assert not (wt / "stray.txt").exists()
