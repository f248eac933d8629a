"""Parallel verification finds the same first bad entry as a serial pass."""

from __future__ import annotations

import pytest
from testing.tamper import edit_payload, rewrite
from testing.world import Player, World

from gitcoop.commands import verify
from gitcoop.errors import VerificationError
from gitcoop.git import open_repo


@pytest.fixture
def long_ledger(world: World) -> Player:
    m = world.maintainer()
    commits = [m.commit_score(f"0.{i:02d}", f"c{i}") for i in range(1, 14)]
    m.coop("evaluate", *commits)
    return m  # genesis, baseline and 13 attestations: 15 entries


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "_CHUNK", 4)
    monkeypatch.setattr(verify, "_PARALLEL_MIN", 8)
    monkeypatch.setattr(verify.os, "sched_getaffinity", lambda _pid: {0, 1})


def test_parallel_runs_agree_with_serial(
    long_ledger: Player, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_this_process: list[int] = []
    real = verify._check_run

    def spy(repo, commits, first_seq):
        in_this_process.append(first_seq)  # only visible when it runs here, not in a worker
        return real(repo, commits, first_seq)

    monkeypatch.setattr(verify, "_check_run", spy)
    repo = open_repo(long_ledger.repo)
    tip = repo.ref("refs/coop/ledger")
    report = verify.Report()
    pos = verify.verify_range(repo, tip, None, report)
    assert pos is not None and pos.seq == 14 and report.checked == 15
    (row,) = report.signers.values()
    assert row["entries"] == 15
    assert in_this_process == []  # every run went to a worker process


@pytest.mark.parametrize("bad", [1, 4, 5, 9, 14])  # chunk edges and middles
def test_parallel_runs_name_the_first_bad_entry(
    long_ledger: Player, small_chunks: None, bad: int
) -> None:
    def tamper(entries):
        data, tree = entries[bad]
        entries[bad] = (edit_payload(data, lambda s: s["predicate"].update(score="0.99")), tree)
        return entries

    tip = rewrite(long_ledger.repo, tamper)
    with pytest.raises(VerificationError, match=f"ledger entry #{bad} bad signature"):
        verify.verify_range(open_repo(long_ledger.repo), tip, None, verify.Report())


def test_parallel_runs_catch_a_removed_entry_at_a_chunk_edge(
    long_ledger: Player, small_chunks: None
) -> None:
    tip = rewrite(long_ledger.repo, lambda e: e[:8] + e[9:])
    with pytest.raises(VerificationError, match="ledger entry #8 has seq 9"):
        verify.verify_range(open_repo(long_ledger.repo), tip, None, verify.Report())
