"""Credit and rewards as pure functions, checked by their invariants (hypothesis): random
mainlines with merges, protected and unscored commits, equal and negative scores, the
Ladder's step, lineage and round windows; then the rewards rules and the leaderboard's
rounding. The last section pins the cases where these invariants once broke (decision 0016)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Context, Decimal, localcontext
from fractions import Fraction
from typing import NamedTuple

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from gitcoop import keys, rewards, trust, vindex
from gitcoop.challenge import parse_challenge
from gitcoop.commands.credit import Scores, _scores
from gitcoop.commands.leaderboard import rounded
from gitcoop.errors import VerificationError
from gitcoop.scoring import Contributor, Credit, Node, Scored, Window, compute

# No example database: hypothesis writes nothing into the tree others work in.
FEW = settings(max_examples=60, deadline=None, database=None)
SOME = settings(max_examples=100, deadline=None, database=None)  # for whole histories
MANY = settings(max_examples=200, deadline=None, database=None)

MIN_DELTAS = [Decimal(0), Decimal("0.001"), Decimal("0.01"), Decimal("0.1")]
LINEAGES = [Decimal(x) for x in ("0", "0.1", "0.25", "0.5", "0.9")]
RULES = ("proportional", "records", "best")
ZERO = (Decimal(0), Decimal(0), None)  # no step, no lineage, no window
EXACT = Context(prec=400)


# --- strategies -------------------------------------------------------------------------


def _values() -> st.SearchStrategy[Decimal]:
    """Scores: near each other (equal ones and deltas around the step), or far apart
    (negative, large), with up to 6 decimal places."""
    near = st.integers(-300, 300).map(lambda n: Decimal(n).scaleb(-3))
    far = st.builds(
        lambda n, places: Decimal(n).scaleb(-places),
        st.integers(-(10**20), 10**20),
        st.integers(0, 6),
    )
    return st.one_of(near, far)


@st.composite
def contributors(draw: st.DrawFn) -> list[Contributor]:
    """1-6 contributors: distinct keyids and distinct ``since``, in unrelated orders."""
    k = draw(st.integers(1, 6))
    ids = draw(
        st.lists(st.text("abcdef", min_size=1, max_size=3), min_size=k, max_size=k, unique=True)
    )
    since = draw(st.lists(st.integers(0, 1000), min_size=k, max_size=k, unique=True))
    return [
        Contributor(f"k-{i}", i.upper(), f"{i}@example.org", s)
        for i, s in zip(ids, since, strict=True)
    ]


def _rounds(nodes: list[Node]) -> st.SearchStrategy[set[str]]:
    """A round's commits: a stretch of the mainline, or any of its commits."""
    commits = [n.commit for n in nodes]
    stretch = st.tuples(st.integers(0, len(commits)), st.integers(0, len(commits)))
    return st.one_of(
        stretch.map(lambda ab: set(commits[min(ab) : max(ab)])),
        st.lists(st.booleans(), min_size=len(commits), max_size=len(commits)).map(
            lambda keep: {c for c, k in zip(commits, keep, strict=True) if k}
        ),
    )


@dataclass(frozen=True)
class History:
    """What ``compute`` takes: a mainline and the scores that count."""

    nodes: list[Node]
    scores: dict[str, Scored]
    side_parent: dict[str, str | None]
    maximize: bool
    min_delta: Decimal
    lineage: Decimal
    window: Window | None

    def credit(self) -> Credit:
        return compute(
            self.nodes,
            self.scores,
            self.side_parent,
            maximize=self.maximize,
            min_delta=self.min_delta,
            lineage=self.lineage,
            window=self.window,
        )

    def without(self, commit: str) -> History:
        """The same history with ``commit``'s attestation unverified."""
        return replace(self, scores={c: s for c, s in self.scores.items() if c != commit})


@st.composite
def histories(
    draw: st.DrawFn,
    *,
    merges: bool = True,
    lineage: bool = True,
    window: bool | None = None,
) -> History:
    """A baseline and up to 59 commits on the mainline; ``window``: None maybe one,
    True always one, False never."""
    people = draw(contributors())
    pool = draw(st.lists(_values(), min_size=1, max_size=4))
    score = st.one_of(st.sampled_from(pool), _values())
    scores: dict[str, Scored] = {}
    side_parent: dict[str, str | None] = {}
    nodes: list[Node] = []

    def attest(commit: str, unscored: int = 8) -> None:
        if draw(st.integers(1, unscored)) < unscored:  # one in eight stays unscored
            scores[commit] = Scored(draw(score), draw(st.sampled_from(people)))

    for i in range(draw(st.integers(1, 60))):
        merged: tuple[str, ...] = ()
        if merges and i and draw(st.integers(0, 4)) == 4:
            merged = tuple(f"s{i}.{j}" for j in range(draw(st.integers(1, 3))))
            for j, side in enumerate(merged):
                parents = [*(n.commit for n in nodes), *merged[:j]]  # None: a root, often
                side_parent[side] = draw(st.one_of(st.none(), st.sampled_from(parents)))
                attest(side)
        nodes.append(Node(f"m{i}", merged, protected=bool(i) and draw(st.integers(0, 9)) == 9))
        attest(f"m{i}", 8 if i else 32)  # an unscored baseline leaves nothing to check
    for i in range(draw(st.integers(0, 2))):  # attested elsewhere: never on this mainline
        attest(f"x{i}")
    if window is None:
        window = draw(st.booleans())
    inside = draw(_rounds(nodes)) if window else None
    return History(
        nodes,
        scores,
        side_parent,
        maximize=draw(st.booleans()),
        min_delta=draw(st.sampled_from(MIN_DELTAS)),
        lineage=draw(st.sampled_from(LINEAGES)) if lineage else Decimal(0),
        window=None if inside is None else Window(frozenset(inside)),
    )


class Line(NamedTuple):
    """A row's numbers, comparable as a whole."""

    commits: int
    improvements: int
    gain: Fraction
    loss: Fraction
    received: Fraction
    passed: Fraction
    share: Fraction
    records: int | None


def _table(credit: Credit, *, records: bool = True) -> dict[str, Line]:
    return {
        r.contributor.keyid: Line(
            r.commits,
            r.improvements,
            r.gain,
            r.loss,
            r.received,
            r.passed,
            r.share,
            r.records if records else None,
        )
        for r in credit.rows
    }


def _payout(credit: Credit, rule: str, pool: int) -> list[tuple[str, int, int]] | None:
    try:
        split = rewards.allocate(pool, rewards.claims(credit, rule))
    except VerificationError:
        return None
    return [(who.keyid, who.since, amount) for who, amount in split]


# --- 1. allocate: largest remainder ----------------------------------------------------

_WEIGHTS = st.one_of(
    st.sampled_from([Fraction(1), Fraction(1, 3), Fraction(7, 2)]),  # equal weights, often
    st.fractions(min_value=Fraction(1, 10**6), max_value=10**9, max_denominator=10**6),
)


@MANY
@given(
    pool=st.one_of(st.integers(1, 20), st.integers(1, 10**30)),
    people=contributors(),
    data=st.data(),
)
def test_allocate_splits_the_pool_exactly_by_largest_remainder(
    pool: int, people: list[Contributor], data: st.DataObject
) -> None:
    weights = data.draw(st.lists(_WEIGHTS, min_size=len(people), max_size=len(people)))
    given_order = data.draw(st.permutations(list(zip(people, weights, strict=True))))
    split = rewards.allocate(pool, [rewards.Claim(p, w) for p, w in given_order])

    ledger = sorted(zip(people, weights, strict=True), key=lambda pw: (pw[0].since, pw[0].keyid))
    assert [who for who, _ in split] == [who for who, _ in ledger]
    amounts = [a for _, a in split]
    assert all(type(a) is int and a >= 0 for a in amounts)
    assert sum(amounts) == pool
    total = sum(weights, Fraction(0))
    quotas = [w * pool / total for _, w in ledger]
    floors = [q.numerator // q.denominator for q in quotas]
    assert all(
        a in (f, f + 1) and abs(a - q) < 1 for a, f, q in zip(amounts, floors, quotas, strict=True)
    )
    # Hamilton: an extra unit goes to a larger remainder, or an equal one earlier in the ledger.
    rest = [q - f for q, f in zip(quotas, floors, strict=True)]
    extra = [a > f for a, f in zip(amounts, floors, strict=True)]
    for i, j in ((i, j) for i in range(len(rest)) for j in range(len(rest))):
        if extra[i] and not extra[j]:
            assert rest[i] > rest[j] or (rest[i] == rest[j] and i < j)
    # Equal weights: at most one unit apart, the extra one to the earlier `since`.
    for i in range(len(ledger)):
        for j in range(i + 1, len(ledger)):
            if ledger[i][1] == ledger[j][1]:
                assert amounts[i] - amounts[j] in (0, 1)


@FEW
@given(
    pool=st.integers(0, 10**30),
    people=contributors(),
    data=st.data(),
)
def test_allocate_refuses_when_nobody_has_a_positive_weight(
    pool: int, people: list[Contributor], data: st.DataObject
) -> None:
    weights = st.fractions(max_value=0, max_denominator=100)
    chosen = data.draw(
        st.lists(st.sampled_from(people), max_size=len(people), unique_by=lambda p: p.keyid)
    )
    claims = [rewards.Claim(p, data.draw(weights)) for p in chosen]
    with pytest.raises(VerificationError, match="nothing to pay out"):
        rewards.allocate(pool, claims)


# --- 2. determinism ----------------------------------------------------------------------


@SOME
@given(h=histories(), pool=st.integers(1, 10**30), data=st.data())
def test_credit_does_not_depend_on_the_order_of_the_scores(
    h: History, pool: int, data: st.DataObject
) -> None:
    first, again = h.credit(), h.credit()
    assert first == again  # every row, uncredited commit, record, baseline and best
    scores, sides = list(h.scores.items()), list(h.side_parent.items())
    for order in (
        (scores[::-1], sides[::-1]),
        (data.draw(st.permutations(scores)), data.draw(st.permutations(sides))),
    ):
        other = replace(h, scores=dict(order[0]), side_parent=dict(order[1])).credit()
        assert other == first
        assert [r.contributor.since for r in other.rows] == [
            r.contributor.since for r in first.rows
        ]
        for rule in RULES:
            assert _payout(other, rule, pool) == _payout(first, rule, pool)


# --- 3. a duplicate attestation --------------------------------------------------------

CHALLENGE = parse_challenge(
    "version: 1\nname: toy\nbranch: main\n"
    "metric:\n  command: python evaluate.py\n  name: accuracy\n  direction: maximize\n"
)
DIGEST = "sha256:" + "d" * 64
ROLES = ["gitcoop", "gitcoop-evaluator", "gitcoop,gitcoop-evaluator"]


def _public(i: int) -> tuple[str, str]:
    public = Ed25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32).public_key()
    return keys.public_openssh(public), keys.fingerprint(public)


KEYS = [_public(i) for i in range(4)]  # key 0 signs the genesis: a maintainer


@st.composite
def ledgers(draw: st.DrawFn) -> tuple[trust.Timeline, list[vindex.Row]]:
    """A trust list over four keys (some untrusted, in random roles) and up to 24
    verified attestations and reviews, some under another challenge version."""
    lines = tuple(
        keys.signers_line(f"p{i}@x", public, draw(st.sampled_from(ROLES)))
        for i, (public, _) in enumerate(KEYS)
        if i == 0 or draw(st.integers(0, 3))
    )
    timeline = trust.Timeline([trust.TrustRow(0, KEYS[0][1], lines, None)])
    entry = st.tuples(
        st.sampled_from(["c1", "c2", "c3", "c4", "c5"]),
        st.integers(0, 3),
        st.sampled_from(["0.5", "0.51", "0.6", "-2"]),
        st.integers(0, 5).map(lambda n: n == 0),  # a review, one in six
        st.integers(0, 5).map(lambda n: "sha256:" + "e" * 64 if n == 0 else DIGEST),
    )
    rows = [
        vindex.Row(10 * (k + 1), commit, score, KEYS[s][1], f"p{s}@x", f"N{s}", digest, review)
        for k, (commit, s, score, review, digest) in enumerate(
            draw(st.lists(entry, min_size=1, max_size=24))
        )
    ]
    return timeline, rows


def _counted(got: Scores) -> dict[str, tuple[object, ...]]:
    return {
        commit: (
            s.score,
            s.contributor.keyid,
            s.contributor.name,
            s.contributor.email,
            s.contributor.since,
        )
        for commit, s in got.counted.items()
    }


@MANY
@given(ledger=ledgers(), data=st.data())
def test_a_duplicate_attestation_changes_nothing(
    ledger: tuple[trust.Timeline, list[vindex.Row]], data: st.DataObject
) -> None:
    timeline, rows = ledger
    i = data.draw(st.integers(0, len(rows) - 1))
    j = data.draw(st.integers(i + 1, len(rows)))  # the copy goes anywhere after the original
    copy = rows[i]._replace(seq=rows[j - 1].seq + 5)  # a later entry, before rows[j]
    before = _scores(rows, CHALLENGE, DIGEST, timeline, {}, {})
    after = _scores([*rows[:j], copy, *rows[j:]], CHALLENGE, DIGEST, timeline, {}, {})
    assert _counted(after) == _counted(before)
    assert after.assurance == before.assurance
    assert after.dropped == before.dropped


def test_credit_sees_one_score_per_commit_however_often_it_was_listed() -> None:
    # compute takes a dict: a repeated (commit, Scored) pair collapses before it gets there.
    a, b = Contributor("k-a", "A", "a@x", 1), Contributor("k-b", "B", "b@x", 2)
    pairs = [("m0", Scored(Decimal("0.5"), a)), ("m1", Scored(Decimal("0.7"), b))]
    h = History([Node("m0"), Node("m1")], dict(pairs), {}, True, *ZERO)
    assert replace(h, scores=dict([*pairs, pairs[1], pairs[0]])).credit() == h.credit()


# --- merges ------------------------------------------------------------------------------


@SOME
@given(people=contributors(), maximize=st.booleans(), data=st.data())
def test_a_merge_shares_its_delta_by_the_positive_deltas_it_brings_in(
    people: list[Contributor], maximize: bool, data: st.DataObject
) -> None:
    sides = [f"s{j}" for j in range(data.draw(st.integers(1, 4)))]
    side_parent = {
        s: data.draw(st.one_of(st.none(), st.sampled_from(["m0", *sides[:j]])))
        for j, s in enumerate(sides)
    }
    attested = ["m0", "m1", *(s for s in sides if data.draw(st.integers(0, 3)))]
    scores = {c: Scored(data.draw(_values()), data.draw(st.sampled_from(people))) for c in attested}
    h = History([Node("m0"), Node("m1", tuple(sides))], scores, side_parent, maximize, *ZERO)

    def better(c: str, parent: str | None) -> Decimal | None:
        if c not in scores or parent not in scores:
            return None
        new, old = scores[c].score, scores[parent].score
        return new - old if maximize else old - new

    delta = better("m1", "m0")
    assert delta is not None
    parts: dict[str, Fraction] = {}
    known = all(s in scores and side_parent[s] in (None, *scores) for s in sides)
    if known:  # else the merge earns nothing: a missing score must not move a share
        weights = {s: max(better(s, side_parent[s]) or Decimal(0), Decimal(0)) for s in sides}
        total = sum(weights.values(), Decimal(0))
        parts = {
            s: Fraction(weights[s]) / Fraction(total) if total else Fraction(1, len(sides))
            for s in sides
        }
    expected: dict[str, Fraction] = {}
    for c, part in parts.items():
        who = scores[c].contributor.keyid
        expected[who] = expected.get(who, Fraction(0)) + Fraction(delta) * part
    got = {r.contributor.keyid: r.gain + r.loss for r in h.credit().rows}
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in expected.items() if v}


# --- 4. dropping an attestation --------------------------------------------------------


def _drop(h: History, data: st.DataObject) -> tuple[Credit, Credit]:
    commit = data.draw(st.sampled_from(sorted(h.scores)))
    return h.credit(), h.without(commit).credit()


@SOME
@given(h=histories(), data=st.data())
def test_dropping_an_attestation_never_credits_or_debits_anyone_more(
    h: History, data: st.DataObject
) -> None:
    # Merges and lineage included. Records are not in it: a record is relative to the best
    # verified before it, which a dropped attestation can lower.
    if not h.scores:
        return
    before, after = _drop(h, data)
    was_rows = {r.contributor.keyid: r for r in before.rows}
    for now in after.rows:
        was = was_rows[now.contributor.keyid]  # nobody without a row before has one after
        assert now.commits <= was.commits and now.improvements <= was.improvements
        assert now.gain <= was.gain and now.loss >= was.loss
        assert now.earned <= was.earned and now.received <= was.received


@SOME
@given(h=histories(), data=st.data())
def test_dropping_an_attestation_never_raises_the_total(h: History, data: st.DataObject) -> None:
    if not h.scores:
        return
    before, after = _drop(h, data)

    def total(credit: Credit, field: str) -> Fraction:
        return sum((getattr(r, field) for r in credit.rows), Fraction(0))

    assert total(after, "gain") <= total(before, "gain")
    assert total(after, "earned") <= total(before, "earned")
    assert total(after, "loss") >= total(before, "loss")


# --- 5. conservation ---------------------------------------------------------------------


@SOME
@given(h=histories())
def test_lineage_moves_credit_without_making_or_losing_any(h: History) -> None:
    credit = h.credit()
    rows = credit.rows
    total = sum((r.gain for r in rows), Fraction(0))
    earned = sum((r.earned for r in rows), Fraction(0))
    received = sum((r.received for r in rows), Fraction(0))
    passed = sum((r.passed for r in rows), Fraction(0))
    # What is passed across a gap (a commit without the scores credit needs) is paid to
    # nobody; with no gap, lineage only moves credit.
    assert earned <= total and received <= passed and total - earned == passed - received
    gapless = h.window is None and all(
        n.commit in h.scores
        and all(c in h.scores and h.side_parent.get(c) in (None, *h.scores) for c in n.merged)
        for n in h.nodes
    )
    if gapless:
        assert earned == total
    assert sum((r.share for r in rows), Fraction(0)) == (1 if earned else 0)
    for r in rows:
        assert r.gain >= 0 and r.loss <= 0 and r.received >= 0 and r.passed >= 0
        assert r.earned >= 0 and r.share >= 0
        assert r.improvements <= r.commits and (r.gain > 0) == (r.improvements > 0)
        if not h.lineage:
            assert r.received == r.passed == 0
    assert sum(r.records for r in rows) == len(credit.records)
    assert len({r.contributor.keyid for r in rows}) == len(rows)


# --- 6. windows ----------------------------------------------------------------------------


def _contributors_of(h: History, commits: Iterable[str]) -> set[str]:
    inside = set(commits)
    out = set()
    for node in h.nodes:
        if node.commit in inside:
            for c in (node.commit, *node.merged):
                if c in h.scores:
                    out.add(h.scores[c].contributor.keyid)
    return out


@SOME
@given(h=histories(window=True))
def test_a_window_credits_its_commits_as_if_the_others_changed_protected_paths(h: History) -> None:
    # Without lineage: a commit outside the window cuts the lineage chain (a gap), a
    # protected one does not.
    assert h.window is not None
    h = replace(h, lineage=Decimal(0))
    inside = h.window.commits
    windowed = h.credit()
    fenced = replace(
        h,
        window=None,
        nodes=[n if n.commit in inside else replace(n, protected=True) for n in h.nodes],
    ).credit()
    assert _table(windowed, records=False) == _table(fenced, records=False)
    baseline = h.nodes[0].commit  # an unscored baseline is named whatever the window
    shown = {*inside, baseline}
    assert windowed.uncredited == [u for u in fenced.uncredited if u.commit in shown]
    assert {r.contributor.keyid for r in windowed.rows} <= _contributors_of(h, inside)
    # A round's records are new bests ever: each one is a record of the whole history too.
    whole = replace(h, window=None).credit()
    assert set(windowed.records) <= {rec for rec in whole.records if rec[0] in inside}
    assert set(windowed.records) <= set(fenced.records)
    assert windowed.baseline == whole.baseline


# --- 7. rewards ----------------------------------------------------------------------------


@SOME
@given(h=histories(), pool=st.one_of(st.integers(1, 100), st.integers(1, 10**30)))
def test_every_rule_pays_the_whole_pool_or_refuses(h: History, pool: int) -> None:
    credit = h.credit()
    rows = {r.contributor.keyid: r for r in credit.rows}
    for rule in RULES:
        claims = rewards.claims(credit, rule)
        assert all(c.weight > 0 for c in claims)
        assert len({c.contributor.keyid for c in claims}) == len(claims)
        weights = {c.contributor.keyid: c.weight for c in claims}
        if rule == "proportional":
            assert weights == {k: r.net for k, r in rows.items() if r.net > 0}
        elif rule == "records":
            assert weights == {k: r.records for k, r in rows.items() if r.records}
            assert sum(weights.values()) == len(credit.records)
        else:
            best = None if credit.best is None else credit.best[0]
            wins = bool(credit.records) and credit.records[-1][0] == best
            # The best may be set by a commit that earned nothing (its parent unscored): then
            # nobody wins it.
            assert weights == ({credit.records[-1][1]: 1} if wins else {})
        paid = _payout(credit, rule, pool)
        if not claims:
            assert paid is None
            continue
        assert paid is not None
        assert sum(a for _, _, a in paid) == pool and all(a >= 0 for _, _, a in paid)
        if rule == "best":
            assert [(k, a) for k, _, a in paid] == [(credit.records[-1][1], pool)]


# --- 8. the leaderboard's rounding ---------------------------------------------------------

STEPS = [Decimal(s) for s in ("0.001", "0.01", "0.1", "0.05", "0.25", "1", "5")]


@MANY
@given(
    score=_values(),
    step=st.sampled_from(STEPS),
    tie=st.one_of(st.none(), st.integers(-(10**6), 10**6)),
)
def test_rounding_to_the_step_is_nearest_half_even_and_idempotent(
    score: Decimal, step: Decimal, tie: int | None
) -> None:
    if tie is not None:  # halfway between two multiples of the step
        score = (tie + Decimal("0.5")) * step
    shown = rounded(score, step)
    assert rounded(shown, step) == shown
    with localcontext(EXACT):
        units = shown / step
        assert units == units.to_integral_value()  # a multiple of the step
        off = abs(shown - score)
        assert off <= step / 2
        if off == step / 2:  # a tie goes to the even multiple
            assert units % 2 == 0


@FEW
@given(score=_values())
def test_no_step_shows_the_score_as_it_is(score: Decimal) -> None:
    assert rounded(score, Decimal(0)) is score


# --- where the invariants once broke (decision 0016) ---------------------------------------

ADA = Contributor("k-ada", "Ada", "ada@x", 1)
BOB = Contributor("k-bob", "Bob", "bob@x", 2)
MAINT = Contributor("k-maint", "Maint", "maint@x", 0)


def _line(*scores: str | None, people: tuple[Contributor, ...] = (MAINT, ADA, BOB)) -> History:
    got = {
        f"m{i}": Scored(Decimal(s), people[min(i, len(people) - 1)])
        for i, s in enumerate(scores)
        if s
    }
    nodes = [Node(f"m{i}") for i in range(len(scores))]
    return History(nodes, got, {}, True, *ZERO)


def test_dropping_a_side_commits_attestation_moves_no_credit() -> None:
    # m1 merges s1 (Ada, +0.1 over m0) and s2 (Bob, -0.1): the merge's +0.1 is Ada's. Once
    # Ada's attestation is not verified the merge brings in an unscored commit and earns
    # nothing, rather than going by "no positive delta" to Bob.
    h = History(
        [Node("m0"), Node("m1", ("s1", "s2"))],
        {
            "m0": Scored(Decimal("0.5"), MAINT),
            "m1": Scored(Decimal("0.6"), MAINT),
            "s1": Scored(Decimal("0.6"), ADA),
            "s2": Scored(Decimal("0.4"), BOB),
        },
        {"s1": "m0", "s2": "m0"},
        True,
        *ZERO,
    )
    before, after = _table(h.credit()), _table(h.without("s1").credit())
    assert "k-bob" not in before  # Bob earned nothing
    assert "k-bob" not in after  # and still earns nothing once Ada's attestation is dropped
    assert before["k-ada"].gain == Fraction(1, 10) and "k-ada" not in after


def test_a_regression_never_sets_a_record() -> None:
    # m1 unattested; m2 (Ada) scores 0.9 but has no countable delta; m3 (Bob) falls to 0.8:
    # a loss of 0.1, and yet the record and credit.best (0.8), though 0.9 was verified.
    credit = _line("0.5", None, "0.9", "0.8", people=(MAINT, MAINT, ADA, BOB)).credit()
    assert _table(credit)["k-bob"].loss == Fraction(-1, 10)
    assert credit.records == []


def test_a_regression_never_sets_a_record_with_a_step() -> None:
    # Ada creeps 0.5 -> 0.59 -> 0.68 -> 0.77 (each +0.09 < 0.1: not counted), then Bob
    # drops to 0.67: a loss of 0.1, and a record (0.67 - 0.5 >= 0.1), the only one.
    h = _line("0.5", "0.59", "0.68", "0.77", "0.67", people=(MAINT, ADA, ADA, ADA, BOB))
    credit = replace(h, min_delta=Decimal("0.1")).credit()
    assert _table(credit)["k-bob"].loss == Fraction(-1, 10)
    assert credit.records == []


def test_a_rounds_records_are_the_historys_records_in_it() -> None:
    # Step 0.1: Ada's 0.55 (outside the round) is below the step, so not a best in the whole
    # history, and Bob's 0.6 is a record there (0.6 - 0.5 >= 0.1); in the round Ada's 0.55
    # became the best and Bob's 0.6 is no record.
    h = replace(
        _line("0.5", "0.55", "0.45", "0.6", people=(MAINT, ADA, BOB, BOB)), min_delta=Decimal("0.1")
    )
    inside = frozenset({"m2", "m3"})
    whole = h.credit()
    windowed = replace(h, window=Window(inside)).credit()
    assert whole.records == [("m3", "k-bob")]
    assert windowed.records == whole.records


def test_since_is_the_contributors_first_counted_entry() -> None:
    # c1 is first attested by an evaluator (seq 10), then by Ada (seq 50), so credited to
    # Ada at seq 50; Ada's own c2 at seq 30 is her first counted entry. Bob's c3 is at 40,
    # so Bob now precedes Ada in ledger order (and wins remainder ties against her).
    lines = (
        keys.signers_line("p0@x", KEYS[0][0], "gitcoop-evaluator"),
        keys.signers_line("p1@x", KEYS[1][0]),
        keys.signers_line("p2@x", KEYS[2][0]),
    )
    timeline = trust.Timeline([trust.TrustRow(0, "genesis", lines, None)])
    rows = [
        vindex.Row(10, "c1", "0.5", KEYS[0][1], "p0@x", "CI", DIGEST),
        vindex.Row(30, "c2", "0.6", KEYS[1][1], "p1@x", "Ada", DIGEST),
        vindex.Row(40, "c3", "0.7", KEYS[2][1], "p2@x", "Bob", DIGEST),
        vindex.Row(50, "c1", "0.5", KEYS[1][1], "p1@x", "Ada", DIGEST),
    ]
    got = _scores(rows, CHALLENGE, DIGEST, timeline, {}, {})
    assert got.counted["c1"].contributor.keyid == KEYS[1][1]
    assert got.counted["c2"].contributor.since == 30


def test_rounding_keeps_within_half_a_step_for_every_score_a_metric_may_print() -> None:
    score = Decimal("1000000000000000000000000000.4999")  # 31 digits
    step = Decimal("0.001")
    assert abs(rounded(score, step) - score) <= step / 2
