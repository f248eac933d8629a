"""``git coop leaderboard``: the best score per contributor and per commit, ranked, from
verified attestations that count.

Public scores are shown rounded to ``credit.min_delta`` (the Ladder's step η, half-even):
finer digits would let a contributor probe the test set one prediction at a time, and
credit never counts a difference smaller than η anyway. Equal rounded scores rank in
ledger order: the first to reach a score keeps the place, as on Kaggle.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any

from gitcoop.commands import verify as verify_mod
from gitcoop.commands.credit import CreditReport, credit
from gitcoop.decimals import decimal_text
from gitcoop.git import open_repo
from gitcoop.scoring import PROTECTED


@dataclass(frozen=True)
class Place:
    """One ranked line: a commit and whose it is."""

    rank: int
    commit: str
    score: Decimal  # rounded to the step
    name: str
    email: str
    keyid: str
    assurance: str
    entries: int = 1  # for a contributor: how many of their commits count

    def to_json(self) -> dict[str, Any]:
        """A leaderboard line in ``leaderboard --json``."""
        return {
            "rank": self.rank,
            "commit": self.commit,
            "score": decimal_text(self.score),
            "name": self.name,
            "email": self.email,
            "keyid": self.keyid,
            "assurance": self.assurance,
            "commits": self.entries,
        }


@dataclass
class Leaderboard:
    """Ranked contributors and commits."""

    credit: CreditReport
    step: Decimal
    contributors: list[Place]
    commits: list[Place]

    def to_json(self) -> dict[str, Any]:
        """The documented ``leaderboard --json`` object."""
        c = self.credit
        return {
            "challenge": c.challenge,
            "version": c.version,
            "direction": c.direction,
            "round": None if c.round is None else c.round.to_json(),
            "rounded_to": decimal_text(self.step) if self.step else None,
            "contributors": [p.to_json() for p in self.contributors],
            "commits": [p.to_json() for p in self.commits],
            "notes": c.notes,
        }


def leaderboard(
    path: str | Path = ".",
    *,
    round_name: str | None = None,
    version: int | None = None,
    limit: int | None = None,
) -> Leaderboard:
    """Rank the commits whose attestations count (those of one round when given) and each
    contributor by their best; ``limit`` keeps the top commits only."""
    report = credit(path, version=version, round_name=round_name)
    ch = report.rules
    assert ch is not None
    step = ch.min_delta
    order = _ledger_order(path, report)
    inside = None if report.round is None else report.round.commits
    # The baseline is the start, nobody's entry; a commit that changes protected paths (a
    # trust-list join, an edited evaluator) is no entry either.
    left_out = {u.commit for u in report.credit.uncredited if u.reason == PROTECTED}
    left_out.update(report.mainline[:1])
    scored = [
        (commit, s)
        for commit, s in report.scores.items()
        if (inside is None or commit in inside) and commit in order and commit not in left_out
    ]
    sign = -1 if ch.maximize else 1
    scored.sort(key=lambda cs: (sign * rounded(cs[1].score, step), order[cs[0]]))
    commits = [
        Place(
            i + 1,
            commit,
            rounded(s.score, step),
            s.contributor.name,
            s.contributor.email,
            s.contributor.keyid,
            report.assurance.get(commit, "self"),
        )
        for i, (commit, s) in enumerate(scored)
    ]
    return Leaderboard(report, step, _people(commits), commits[:limit] if limit else commits)


def _people(commits: list[Place]) -> list[Place]:
    best: dict[str, Place] = {}
    counts: dict[str, int] = {}
    for p in commits:  # ranked: the first of each contributor is their best
        best.setdefault(p.keyid, p)
        counts[p.keyid] = counts.get(p.keyid, 0) + 1
    return [
        Place(i + 1, p.commit, p.score, p.name, p.email, p.keyid, p.assurance, counts[p.keyid])
        for i, p in enumerate(best.values())
    ]


def rounded(score: Decimal, step: Decimal) -> Decimal:
    """``score`` rounded half-even to a multiple of ``step`` (unchanged for a step of 0)."""
    if not step:
        return score
    with localcontext(_WIDE):  # scores have up to 40 digits: the default 28 would round
        return (score / step).to_integral_value(rounding=ROUND_HALF_EVEN) * step


_WIDE = Context(prec=200, traps=[InvalidOperation])


def _ledger_order(path: str | Path, report: CreditReport) -> dict[str, int]:
    """Each counted commit's first entry seq (the ledger order ties are broken by)."""
    repo = open_repo(path)
    head = verify_mod.read_pin(repo)
    assert head is not None  # credit verified the ledger
    order: dict[str, int] = {}
    for row in verify_mod.verified_rows(repo, head):
        if row.commit in report.scores:
            order.setdefault(row.commit, row.seq)
    return order
