"""Credit rules as a pure function: table-driven, no git."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from gitcoop.scoring import Contributor, Node, Scored, compute, decimal_string

ADA = Contributor("k-ada", "Ada", "ada@example.org")
BOB = Contributor("k-bob", "Bob", "bob@example.org")
MAINT = Contributor("k-maint", "Maint", "maint@example.org")


def _scores(**values: tuple[str, Contributor]) -> dict[str, Scored]:
    return {c: Scored(Decimal(v), who) for c, (v, who) in values.items()}


def _rows(credit) -> dict[str, tuple[Fraction, Fraction, int, int, int]]:
    return {
        r.contributor.keyid: (r.gain, r.loss, r.commits, r.improvements, r.records)
        for r in credit.rows
    }


def test_linear_history_maximize() -> None:
    scores = _scores(b=("0.5", MAINT), c1=("0.6", ADA), c2=("0.55", BOB), c3=("0.9", BOB))
    credit = compute(
        [Node("b"), Node("c1"), Node("c2"), Node("c3")],
        scores,
        {},
        maximize=True,
        min_delta=Decimal(0),
    )
    rows = _rows(credit)
    assert rows["k-ada"] == (Fraction("0.1"), 0, 1, 1, 1)
    assert rows["k-bob"] == (Fraction("0.35"), Fraction("-0.05"), 2, 1, 1)
    assert credit.best == ("c3", Decimal("0.9"))
    assert credit.baseline == ("b", Decimal("0.5"))
    shares = {r.contributor.keyid: r.share for r in credit.rows}
    assert shares == {"k-ada": Fraction(2, 9), "k-bob": Fraction(7, 9)}


def test_minimize_flips_the_sign() -> None:
    scores = _scores(b=("2.0", MAINT), c1=("1.5", ADA), c2=("1.7", BOB))
    credit = compute(
        [Node("b"), Node("c1"), Node("c2")], scores, {}, maximize=False, min_delta=Decimal(0)
    )
    rows = _rows(credit)
    assert rows["k-ada"][0] == Fraction("0.5")
    assert rows["k-bob"][1] == Fraction("-0.2")


def test_min_delta_ladder() -> None:
    scores = _scores(b=("0.5", MAINT), c1=("0.505", ADA), c2=("0.52", BOB))
    credit = compute(
        [Node("b"), Node("c1"), Node("c2")], scores, {}, maximize=True, min_delta=Decimal("0.01")
    )
    assert [u.reason for u in credit.uncredited] == ["delta below min_delta"]
    rows = _rows(credit)
    assert rows["k-ada"] == (0, 0, 1, 0, 0)
    assert rows["k-bob"] == (Fraction("0.015"), 0, 1, 1, 1)


def test_merge_shares_by_positive_deltas() -> None:
    # side branch: s1 (ada, +0.2 over b), s2 (bob, +0.1 over s1); merge m brings both in
    scores = _scores(b=("0.5", MAINT), s1=("0.7", ADA), s2=("0.8", BOB), m=("0.8", MAINT))
    side = {"s1": "b", "s2": "s1"}
    credit = compute(
        [Node("b"), Node("m", merged=("s1", "s2"))],
        scores,
        side,
        maximize=True,
        min_delta=Decimal(0),
    )
    rows = _rows(credit)
    assert rows["k-ada"][0] == Fraction("0.3") * Fraction(2, 3)
    assert rows["k-bob"][0] == Fraction("0.3") * Fraction(1, 3)
    assert "k-maint" not in rows


def test_merge_without_positive_deltas_splits_equally() -> None:
    scores = _scores(b=("0.5", MAINT), s1=("0.4", ADA), s2=("0.4", BOB), m=("0.6", MAINT))
    side = {"s1": "b", "s2": "s1"}
    credit = compute(
        [Node("b"), Node("m", merged=("s1", "s2"))],
        scores,
        side,
        maximize=True,
        min_delta=Decimal(0),
    )
    rows = _rows(credit)
    assert rows["k-ada"][0] == rows["k-bob"][0] == Fraction("0.05")


def test_protected_and_unattested_commits_earn_nothing() -> None:
    scores = _scores(b=("0.5", MAINT), c1=("0.9", ADA), c3=("0.95", BOB))
    credit = compute(
        [Node("b"), Node("c1", protected=True), Node("c2"), Node("c3")],
        scores,
        {},
        maximize=True,
        min_delta=Decimal(0),
    )
    reasons = {u.commit: u.reason for u in credit.uncredited}
    assert reasons == {
        "c1": "modifies protected paths",
        "c2": "no verified attestation",
        "c3": "parent not scored",
    }
    assert "k-bob" not in _rows(credit)


def test_unscored_baseline() -> None:
    credit = compute([Node("b"), Node("c1")], {}, {}, maximize=True, min_delta=Decimal(0))
    assert credit.rows == [] and credit.uncredited[0].reason == "baseline not scored"


@pytest.mark.parametrize(
    ("value", "places", "text"),
    [
        (Fraction(1, 3), 12, "0.333333333333"),
        (Fraction(-1, 20), 12, "-0.05"),
        (Fraction(0), 12, "0"),
        (Fraction(2, 3), 6, "0.666667"),
        (Fraction(-1, 10**15), 12, "0"),
    ],
)
def test_decimal_string(value: Fraction, places: int, text: str) -> None:
    assert decimal_string(value, places) == text


def test_dropping_an_attestation_never_raises_anyones_credit() -> None:
    """Monotonic: removing data can only lower, never raise, a contributor's gain."""
    full = _scores(b=("0.5", MAINT), c1=("0.6", ADA), c2=("0.7", BOB), c3=("0.75", ADA))
    nodes = [Node("b"), Node("c1"), Node("c2"), Node("c3")]
    base = {
        r.contributor.keyid: r.gain
        for r in compute(nodes, full, {}, maximize=True, min_delta=Decimal(0)).rows
    }
    for drop in ("c1", "c2", "c3"):
        fewer = {k: v for k, v in full.items() if k != drop}
        got = {
            r.contributor.keyid: r.gain
            for r in compute(nodes, fewer, {}, maximize=True, min_delta=Decimal(0)).rows
        }
        for who, gain in got.items():
            assert gain <= base.get(who, 0), (drop, who)
