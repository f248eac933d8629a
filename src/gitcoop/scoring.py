"""Credit as a pure function of verified scores and the commit graph (no I/O).

Rules (DESIGN.md section 7): mainline is the first-parent history of the challenge branch.
A mainline commit's delta is its score minus its first parent's, sign flipped for
``minimize`` so positive is better; with either unscored it earns nothing. A merge's delta
is shared among the commits it brings in, by their own positive deltas (equally when none
has one); a merge that brings in a commit without a verified score, or whose parent has
none, earns nothing. So dropping an attestation can never move credit to someone else: it
only takes credit away. ``min_delta`` (the Ladder's step): a delta smaller in size earns
nothing. Commits that modify protected paths earn nothing.

The best score follows the Ladder: any scored mainline commit that does not modify
protected paths and beats the best by at least ``min_delta`` (and by something) is the new
best, credited or not; a record is counted for a credited commit that sets one.

Lineage (``credit.lineage`` = λ, off at 0): each credited improvement passes the part λ of
what it holds (its own gain plus what later improvements passed to it) back to the
improvement before it on the mainline, which keeps 1 - λ and passes λ on; the first
improvement, when nothing is missing between it and the baseline, keeps the rest. Where a
commit without the scores credit needs (or, in a round, a commit outside it) lies between
two improvements, what is passed across it is paid to nobody: passing around the gap would
let a dropped attestation raise someone's share. Improvement i of a chain receives
λ^(j-i)(1 - λ) of each later gain j.

A window (a round) limits who earns to the commits in it; the others still serve as
parents and move the best score by the same rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal, Inexact, Overflow, Underflow, localcontext
from fractions import Fraction
from itertools import pairwise
from typing import NamedTuple


@dataclass(frozen=True)
class Contributor:
    """A signing identity: credit goes to keys, shown with the name and email they gave."""

    keyid: str
    name: str
    email: str
    since: int = field(default=-1, compare=False)  # the seq of its first counted entry


class Scored(NamedTuple):
    """A verified score of a commit and whom it is credited to (a tuple: credit makes one
    per attested commit)."""

    score: Decimal
    contributor: Contributor


@dataclass(frozen=True)
class Node:
    """A mainline commit: its first parent, the commits a merge brings in, protected edits."""

    commit: str
    merged: tuple[str, ...] = ()
    protected: bool = False


@dataclass
class Row:
    """One contributor's totals."""

    contributor: Contributor
    commits: int = 0
    improvements: int = 0
    gain: Fraction = Fraction(0)
    loss: Fraction = Fraction(0)
    records: int = 0
    share: Fraction = Fraction(0)
    # Whole deltas add up exactly as Decimals (see _EXACT), much faster than Fractions;
    # only the shares of merges need Fractions. _finish folds both into gain and loss.
    plain_gain: Decimal = Decimal(0)
    plain_loss: Decimal = Decimal(0)
    received: Fraction = Fraction(0)  # through lineage, from the improvements built on ours
    passed: Fraction = Fraction(0)  # through lineage, to the improvements ours built on

    @property
    def earned(self) -> Fraction:
        """Gain after lineage: own gain, plus what was received, less what was passed."""
        return self.gain + self.received - self.passed

    @property
    def net(self) -> Fraction:
        """Earned plus loss."""
        return self.earned + self.loss


@dataclass(frozen=True)
class Uncredited:
    """A commit that earned nothing, and why."""

    commit: str
    reason: str


@dataclass
class Credit:
    """The credit table with the baseline and the best score."""

    baseline: tuple[str, Decimal] | None
    best: tuple[str, Decimal] | None
    rows: list[Row] = field(default_factory=list)
    uncredited: list[Uncredited] = field(default_factory=list)
    # The commits that set a new best, and the keyid of whom each record is counted for.
    records: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Window:
    """Only ``commits`` earn (a round's)."""

    commits: frozenset[str]


# One improvement of the lineage chain: whom its gain is booked to, the gain, and whether
# it builds on the one before with nothing missing in between.
_Link = tuple[list[tuple[Contributor, Fraction]], Decimal, bool]


@dataclass
class _Walk:
    maximize: bool
    min_delta: Decimal
    scores: dict[str, Scored]
    side_parent: dict[str, str | None]
    rows: dict[str, Row] = field(default_factory=dict)
    uncredited: list[Uncredited] = field(default_factory=list)
    records: list[tuple[str, str]] = field(default_factory=list)
    chain: list[_Link] | None = None  # lineage
    lineage: Fraction = Fraction(0)
    linked: bool = True  # nothing missing since the last improvement (or the baseline)

    def better(self, new: Decimal, old: Decimal) -> Decimal:
        return new - old if self.maximize else old - new

    def row(self, who: Contributor) -> Row:
        return self.rows.setdefault(who.keyid, Row(who))

    def book(self, who: Contributor, amount: Fraction | Decimal) -> None:
        r = self.row(who)
        r.commits += 1
        positive = amount > 0
        r.improvements += positive
        if isinstance(amount, Decimal):
            if positive:
                r.plain_gain += amount
            else:
                r.plain_loss += amount
        elif positive:
            r.gain += amount
        else:
            r.loss += amount

    def earn(self, node: Node, got: Scored, delta: Decimal, shares: _Shares) -> None:
        """Book a credited delta to whom it goes."""
        if len(shares) == 1 and shares[0][1] == 1:
            self.book(shares[0][0], delta)
        else:
            for who, part in shares:
                self.book(who, Fraction(delta) * part)
        if self.chain is not None and delta > 0:
            self.chain.append((shares, delta, self.linked))
            self.linked = True

    def raises(self, best: tuple[str, Decimal], score: Decimal) -> bool:
        """Whether ``score`` is a new best by the Ladder's rule."""
        gained = self.better(score, best[1])
        return gained > 0 and gained >= self.min_delta

    def record(self, node: Node, shares: _Shares) -> None:
        holder = max(shares, key=lambda s: s[1])[0]
        self.row(holder).records += 1
        self.records.append((node.commit, holder.keyid))

    def own_delta(self, commit: str) -> Decimal | None:
        parent = self.side_parent.get(commit)
        me, base = self.scores.get(commit), self.scores.get(parent) if parent else None
        return None if me is None or base is None else self.better(me.score, base.score)

    def shares(self, node: Node, fallback: Contributor) -> _Shares | None:
        """Whom a mainline commit's delta goes to; None for a merge that brings in a
        commit (or a commit's parent) without a verified score."""
        if not node.merged:
            return [(fallback, Fraction(1))]
        scores, side_parent = self.scores, self.side_parent
        for c in node.merged:
            parent = side_parent.get(c)
            if c not in scores or (parent is not None and parent not in scores):
                return None
        weights = {c: max(self.own_delta(c) or Decimal(0), Decimal(0)) for c in node.merged}
        total = sum(weights.values(), Decimal(0))
        if total == 0:
            part = Fraction(1, len(node.merged))
            return [(scores[c].contributor, part) for c in node.merged]
        return [
            (scores[c].contributor, Fraction(weights[c]) / Fraction(total))
            for c in node.merged
            if weights[c] > 0
        ]


_Shares = list[tuple[Contributor, Fraction]]


def compute(
    mainline: list[Node],
    scores: dict[str, Scored],
    side_parent: dict[str, str | None],
    *,
    maximize: bool,
    min_delta: Decimal,
    unscored: Mapping[str, str] | None = None,
    lineage: Decimal = Decimal(0),
    window: Window | None = None,
) -> Credit:
    """Credit per contributor for ``mainline`` (oldest first, starting at the baseline).

    ``unscored`` says why a commit attested without a score in ``scores`` has none
    (an untrusted signer, too little assurance); ``lineage`` and ``window``: see above."""
    with localcontext(_EXACT):
        w = _Walk(maximize, min_delta, scores, side_parent)
        if lineage:
            w.chain, w.lineage = [], Fraction(lineage)
        return _compute(w, mainline, unscored or {}, window)


# Scores carry at most 40 significant digits, so sums of them need far fewer than this:
# Decimal arithmetic stays exact, and any overflow of it would raise, never round.
_EXACT = Context(prec=400, Emax=1000, Emin=-1000, traps=[Inexact, Overflow, Underflow])


def _compute(
    w: _Walk, mainline: list[Node], unscored: Mapping[str, str], window: Window | None
) -> Credit:
    scores, min_delta = w.scores, w.min_delta
    base = scores.get(mainline[0].commit) if mainline else None
    if base is None:
        return Credit(
            None,
            None,
            uncredited=[
                Uncredited(n.commit, _baseline_why(unscored.get(n.commit))) for n in mainline[:1]
            ],
        )
    baseline = best = (mainline[0].commit, base.score)
    for parent, node in pairwise(mainline):
        got, before = scores.get(node.commit), scores.get(parent.commit)
        moved = got is not None and not node.protected and w.raises(best, got.score)
        if moved:
            assert got is not None
            best = (node.commit, got.score)
        if window is not None and node.commit not in window.commits:
            w.linked = False
            continue
        if got is None or before is None:
            why = (
                unscored.get(node.commit, "no verified attestation")
                if got is None
                else "parent not scored"
            )
            w.uncredited.append(Uncredited(node.commit, why))
            w.linked = False
            continue
        delta = w.better(got.score, before.score)
        if node.protected:
            w.uncredited.append(Uncredited(node.commit, PROTECTED))
            continue
        if abs(delta) < min_delta or delta == 0:
            w.uncredited.append(
                Uncredited(node.commit, "delta below min_delta" if delta else "no change in score")
            )
            w.row(got.contributor).commits += 1
            continue
        shares = w.shares(node, got.contributor)
        if shares is None:
            w.uncredited.append(Uncredited(node.commit, _UNSCORED_MERGE))
            w.linked = False
            continue
        w.earn(node, got, delta, shares)
        if moved:
            w.record(node, shares)
    return _finish(w, baseline, best)


_UNSCORED_MERGE = "merges in a commit without a verified score"
PROTECTED = "modifies protected paths"


def _flow_back(w: _Walk, chain: list[_Link]) -> None:
    """Pass the lineage share of each improvement back along ``chain`` (oldest first), in
    one backward pass: what reaches an improvement from later ones is passed on with its
    own gain; across a gap, to nobody."""
    part, inflow = w.lineage, Fraction(0)
    for i in range(len(chain) - 1, -1, -1):
        shares, delta, linked = chain[i]
        held = Fraction(delta) + inflow
        root = i == 0 and linked  # builds on the baseline with nothing missing: keeps all
        passed = Fraction(0) if root else held * part
        for who, weight in shares:
            r = w.rows[who.keyid]
            r.received += inflow * weight
            r.passed += passed * weight
        inflow = passed if linked else Fraction(0)


def _baseline_why(reason: str | None) -> str:
    return "baseline not scored" + ("" if reason is None else f": {reason}")


def _finish(w: _Walk, baseline: tuple[str, Decimal], best: tuple[str, Decimal]) -> Credit:
    for r in w.rows.values():
        r.gain += Fraction(r.plain_gain)
        r.loss += Fraction(r.plain_loss)
    if w.chain:
        _flow_back(w, w.chain)
    total = sum((r.earned for r in w.rows.values()), Fraction(0))
    for r in w.rows.values():
        r.share = r.earned / total if total else Fraction(0)
    rows = sorted(w.rows.values(), key=lambda r: (-r.net, -r.gain, r.contributor.keyid))
    return Credit(baseline, best, rows, w.uncredited, w.records)


def decimal_string(value: Fraction, places: int = 12) -> str:
    """Render a fraction as a plain decimal string, rounded half-even to ``places``."""
    q = Decimal(value.numerator) / Decimal(value.denominator)
    text = format(q.quantize(Decimal(1).scaleb(-places)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
