"""Rewards as a pure function of credit: integer amounts that sum exactly to the pool.

Rules (``rewards.rule`` in the challenge):

- ``proportional``: by each contributor's net credit (earned gain plus loss) where it is
  positive. Net, not gain, so reverting an improvement and making it again earns nothing.
- ``records``: by the number of new best scores each contributor set.
- ``best``: the whole pool to whoever set the best score.

Remainder rule (largest remainder, Hamilton's method): each weight's exact quota of the
pool is rounded down, and the units left over go one each to the largest fractional
remainders; equal remainders go in ledger order (whose first counted entry came first).
Every amount is a non-negative integer and they sum to the pool. No floats: fractions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from gitcoop import scoring
from gitcoop.errors import VerificationError


@dataclass(frozen=True)
class Claim:
    """A contributor's weight under a rule, and where they stand in ledger order."""

    contributor: scoring.Contributor
    weight: Fraction


def claims(credit: scoring.Credit, rule: str) -> list[Claim]:
    """The weight each contributor has under ``rule``: only positive weights count."""
    if rule == "best":
        # Only a best set where credit is counted wins: in a round, a best from before it
        # is nobody's to win.
        last = credit.records[-1] if credit.records else None
        if last is None or credit.best is None or last[0] != credit.best[0]:
            return []
        winner = next(r for r in credit.rows if r.contributor.keyid == last[1])
        return [Claim(winner.contributor, Fraction(1))]
    if rule == "records":
        weights = [(r.contributor, Fraction(r.records)) for r in credit.rows]
    else:
        weights = [(r.contributor, r.net) for r in credit.rows]
    return [Claim(who, w) for who, w in weights if w > 0]


def allocate(pool: int, claims: Sequence[Claim]) -> list[tuple[scoring.Contributor, int]]:
    """Split ``pool`` units among ``claims`` by weight (largest remainder, ties by ledger
    order); the result lists every claim, in ledger order. Raises VerificationError when
    no claim has a positive weight: there is nobody to pay."""
    live = sorted((c for c in claims if c.weight > 0), key=_order)
    if pool < 0:
        raise ValueError("a pool is never negative")
    if not live:
        raise VerificationError(
            "nobody earned credit here: there is nothing to pay out",
            hint="git coop credit shows why each commit earned nothing",
        )
    total = sum((c.weight for c in live), Fraction(0))
    quotas = [c.weight * pool / total for c in live]
    amounts = [q.numerator // q.denominator for q in quotas]
    left = pool - sum(amounts)
    by_remainder = sorted(range(len(live)), key=lambda i: (-(quotas[i] - amounts[i]), i))
    for i in by_remainder[:left]:
        amounts[i] += 1
    return [(c.contributor, a) for c, a in zip(live, amounts, strict=True)]


def _order(c: Claim) -> tuple[int, str]:
    return (c.contributor.since, c.contributor.keyid)
