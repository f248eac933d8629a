"""Verification in runs (in parallel on several cores, or on one core from a single walk)
finds the same first bad entry as a serial pass."""

from __future__ import annotations

import json

import pytest
from testing.tamper import edit_payload, resign_payload, rewrite
from testing.world import Player, World

from gitcoop import keys
from gitcoop.commands import verify
from gitcoop.errors import VerificationError
from gitcoop.git import open_repo


@pytest.fixture
def long_ledger(world: World) -> Player:
    m = world.maintainer()
    commits = [m.commit_score(f"0.{i:02d}", f"c{i}") for i in range(1, 14)]
    m.coop("evaluate", *commits)
    return m  # genesis, baseline and 13 attestations: 15 entries


@pytest.fixture(params=["two cores", "one core"])
def small_chunks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    cores = {0, 1} if request.param == "two cores" else {0}
    monkeypatch.setattr(verify, "_CHUNK", 4)
    monkeypatch.setattr(verify, "_PARALLEL_MIN", 8)
    monkeypatch.setattr(verify.os, "sched_getaffinity", lambda _pid: cores)
    return str(request.param)


def test_runs_agree_with_serial(
    long_ledger: Player, small_chunks: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_this_process: list[int] = []
    real = verify._check_run

    def spy(repo, commits, first_seq, notes):
        in_this_process.append(first_seq)  # only visible when it runs here, not in a worker
        return real(repo, commits, first_seq, notes)

    monkeypatch.setattr(verify, "_check_run", spy)
    repo = open_repo(long_ledger.repo)
    tip = repo.ref("refs/coop/ledger")
    report = verify.Report()
    pos = verify.verify_range(repo, tip, None, report)
    assert pos is not None and pos.seq == 14 and report.checked == 15
    (row,) = report.signers.values()
    assert row["entries"] == 15
    if small_chunks == "two cores":
        assert in_this_process == []  # every run went to a worker process
    else:
        assert in_this_process == [0, 3, 7, 11]  # one walk cut from the tip, checked oldest first
    rows = [r.seq for r in report.rows]
    assert rows == []  # rows go to the sink, not the report


def test_runs_hand_over_the_notes_lines_of_what_they_proved(
    long_ledger: Player, small_chunks: str
) -> None:
    from gitcoop import ledger, notes

    repo = open_repo(long_ledger.repo)
    tip = repo.ref("refs/coop/ledger")
    report = verify.Report(notes={})
    verify.verify_range(repo, tip, None, report)
    assert report.notes is not None and len(report.notes) == 15
    for rec in ledger.records(repo, tip):
        assert report.notes[rec.commit] == notes.note_line(rec.entry)  # None for genesis


@pytest.mark.parametrize("bad", [1, 4, 5, 9, 14])  # chunk edges and middles
def test_runs_name_the_first_bad_entry(long_ledger: Player, small_chunks: str, bad: int) -> None:
    def tamper(entries):
        data, tree = entries[bad]
        entries[bad] = (edit_payload(data, lambda s: s["predicate"].update(score="0.99")), tree)
        return entries

    tip = rewrite(long_ledger.repo, tamper)
    with pytest.raises(VerificationError, match=f"ledger entry #{bad} bad signature"):
        verify.verify_range(open_repo(long_ledger.repo), tip, None, verify.Report())


def test_runs_catch_a_removed_entry_at_a_chunk_edge(long_ledger: Player, small_chunks: str) -> None:
    tip = rewrite(long_ledger.repo, lambda e: e[:8] + e[9:])
    with pytest.raises(VerificationError, match="ledger entry #8 has seq 9"):
        verify.verify_range(open_repo(long_ledger.repo), tip, None, verify.Report())


@pytest.mark.parametrize("bad", [2, 6])  # first in its run, and in the middle of one
def test_a_bad_subject_comes_before_a_later_bad_signature(
    long_ledger: Player, small_chunks: str, bad: int
) -> None:
    """Subjects are checked after the run's signatures, yet the first failure is named."""
    key = keys.load(long_ledger.home)

    def lie(stmt: dict) -> None:
        stmt["subject"][0]["digest"]["gitTree"] = "0" * 40

    def tamper(entries):
        data, tree = entries[bad]
        entries[bad] = (resign_payload(data, lie, key), tree)
        later, tree = entries[bad + 1]
        entries[bad + 1] = (edit_payload(later, lambda s: s["predicate"].update(score="9")), tree)
        return entries

    tip = rewrite(long_ledger.repo, tamper)
    with pytest.raises(VerificationError, match=f"ledger entry #{bad} subject digest mismatch"):
        verify.verify_range(open_repo(long_ledger.repo), tip, None, verify.Report())


def test_rows_reach_the_sink_in_ledger_order(long_ledger: Player, small_chunks: str) -> None:
    seen: list[int] = []
    repo = open_repo(long_ledger.repo)
    tip = repo.ref("refs/coop/ledger")
    verify.verify_range(
        repo,
        tip,
        None,
        verify.Report(),
        lambda lines: seen.extend(json.loads(x)[0] for x in lines.splitlines()),
    )
    assert seen == list(range(1, 15))  # every attestation once, in order (0 is genesis)
