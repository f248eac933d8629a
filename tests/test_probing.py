"""Leaderboard probing (Blum and Hardt's boosting attack) against credit: a contributor who
keeps every random change that raises the public score climbs the public leaderboard and
earns nothing where the private split decides."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

from gitcoop import rewards, scoring
from gitcoop.commands.leaderboard import rounded

N = 2000  # items in each split
FLIPS = 20  # predictions one change flips
TRIES = 400


def _accuracy(predictions: list[int], labels: list[int]) -> Decimal:
    right = sum(p == y for p, y in zip(predictions, labels, strict=True))
    return Decimal(right) / Decimal(len(labels))


def _attack(seed: int, step: Decimal) -> tuple[list[Decimal], list[Decimal]]:
    """The scores (public, private) of each change the attacker kept, baseline first: a
    change is kept when the public score it is shown (rounded to ``step``) rises."""
    rng = random.Random(seed)
    public = [rng.randrange(2) for _ in range(N)]
    private = [rng.randrange(2) for _ in range(N)]
    model = [rng.randrange(2) for _ in range(2 * N)]  # knows nothing: random labels
    kept_public = [_accuracy(model[:N], public)]
    kept_private = [_accuracy(model[N:], private)]
    for _ in range(TRIES):
        trial = list(model)
        for i in rng.sample(range(2 * N), FLIPS):
            trial[i] ^= 1
        seen = rounded(_accuracy(trial[:N], public), step)
        if seen > rounded(kept_public[-1], step):
            model = trial
            kept_public.append(_accuracy(model[:N], public))
            kept_private.append(_accuracy(model[N:], private))
    return kept_public, kept_private


def _credit(scores: list[Decimal], min_delta: Decimal) -> scoring.Credit:
    who = scoring.Contributor("SHA256:attacker", "Mallory", "m@example.org", 1)
    nodes = [scoring.Node(f"{i:040x}") for i in range(len(scores))]
    got = {n.commit: scoring.Scored(s, who) for n, s in zip(nodes, scores, strict=True)}
    return scoring.compute(nodes, got, {}, maximize=True, min_delta=min_delta)


def _net(credit: scoring.Credit) -> Fraction:
    return sum((r.net for r in credit.rows), Fraction(0))


def test_chasing_the_public_score_overfits_it_and_earns_nothing_on_the_private_split() -> None:
    for seed in range(3):
        public, private = _attack(seed, Decimal(0))
        assert len(public) > 20  # the attacker kept many changes
        # Exact public scores let the attacker climb well above chance...
        assert _net(_credit(public, Decimal(0))) > Fraction(8, 100)
        # ...while the held-out split stays at chance: within the noise of N labels.
        assert abs(_net(_credit(private, Decimal(0)))) < Fraction(3, 100)


def test_the_ladder_step_leaves_the_attacker_almost_nothing_to_climb_on() -> None:
    step = Decimal("0.01")  # about the noise of 2,000 labels, as the Ladder suggests
    for seed in range(3):
        exact, _ = _attack(seed, Decimal(0))
        coarse, _ = _attack(seed, step)
        # Scores shown rounded to the step reveal far fewer "improvements" to keep.
        assert len(coarse) < len(exact) / 10
        # And credit counts no change smaller than the step.
        credited = _credit(coarse, step)
        small = [a - b for a, b in zip(coarse[1:], coarse, strict=False) if abs(a - b) < step]
        assert len(credited.uncredited) >= len(small)


def test_a_round_decided_on_the_private_split_pays_the_prober_nothing_it_did_not_earn() -> None:
    _, private = _attack(1, Decimal(0))
    honest_gain = Decimal("0.05")  # one real improvement, by someone else, on both splits
    mallory = scoring.Contributor("SHA256:mallory", "Mallory", "m@example.org", 1)
    ada = scoring.Contributor("SHA256:ada", "Ada", "a@example.org", 2)
    nodes = [scoring.Node(f"{i:040x}") for i in range(len(private) + 1)]
    scores = {n.commit: scoring.Scored(s, mallory) for n, s in zip(nodes, private, strict=False)}
    scores[nodes[-1].commit] = scoring.Scored(private[-1] + honest_gain, ada)
    credit = scoring.compute(nodes, scores, {}, maximize=True, min_delta=Decimal("0.01"))
    paid = dict(
        (who.keyid, amount)
        for who, amount in rewards.allocate(1000, rewards.claims(credit, "proportional"))
    )
    assert paid["SHA256:ada"] >= 900  # the real improvement takes (almost) the whole pool
    assert sum(paid.values()) == 1000
