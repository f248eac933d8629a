"""``git coop credit``: who improved the challenge and by how much, from a verified ledger."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from gitcoop import history, scoring, vindex
from gitcoop.commands import verify as verify_mod
from gitcoop.errors import ConfigError
from gitcoop.metric import decimal_text
from gitcoop.session import Session, open_session


@dataclass
class CreditReport:
    """The credit table plus what the table alone does not say."""

    challenge: str
    direction: str
    credit: scoring.Credit
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The documented ``credit --json`` object: every number is a decimal string."""
        c = self.credit

        def point(p: tuple[str, Any] | None) -> dict[str, str] | None:
            return None if p is None else {"commit": p[0], "score": decimal_text(p[1])}

        return {
            "challenge": self.challenge,
            "direction": self.direction,
            "baseline": point(c.baseline),
            "best": point(c.best),
            "contributors": [_row_json(r) for r in c.rows],
            "uncredited": [{"commit": u.commit, "reason": u.reason} for u in c.uncredited],
            "notes": self.notes,
        }


def _row_json(r: scoring.Row) -> dict[str, Any]:
    d = scoring.decimal_string
    who = r.contributor
    return {
        "name": who.name,
        "email": who.email,
        "keyid": who.keyid,
        "commits": str(r.commits),
        "improvements": str(r.improvements),
        "gain": d(r.gain),
        "loss": d(r.loss),
        "net": d(r.net),
        "share": d(r.share, 6),
        "records": str(r.records),
    }


def _scores(rows: Iterator[vindex.Row], digest: str) -> dict[str, scoring.Scored]:
    people: dict[str, scoring.Contributor] = {}
    first: dict[str, tuple[str, str]] = {}
    for row in rows:
        if row.challenge != digest:
            continue
        people[row.keyid] = scoring.Contributor(row.keyid, row.name, row.principal)
        first.setdefault(row.commit, (row.score, row.keyid))
    return {c: scoring.Scored(Decimal(score), people[k]) for c, (score, k) in first.items()}


def _search_prefixes(patterns: tuple[str, ...]) -> tuple[str, ...]:
    # The literal directories a protect pattern can match under ("" when it starts with a
    # wildcard), so unchanged subtrees are skipped without a diff.
    out = []
    for pattern in (".coop/**", *patterns):
        parts = pattern.rstrip("/").split("/")
        literal = []
        for part in parts:
            if any(ch in part for ch in "*?["):
                break
            literal.append(part)
        out.append("/".join(literal))
    return tuple(sorted(set(out)))


def _fact(s: Session, prefixes: tuple[str, ...], commit: str) -> history.Fact:
    info = s.repo.commit(commit)
    if not info.parents:
        return history.Fact(None, info.author_email, False, ())
    first = info.parents[0]
    merged: list[tuple[str, str | None]] = []
    if len(info.parents) > 1:
        for m in s.repo.new_commits(info.parents[1], [first]):
            ps = s.repo.commit(m).parents
            merged.append((m, ps[0] if ps else None))
    changed = s.repo.changed_under(s.repo.commit(first).tree, info.tree, prefixes)
    protected = any(map(s.pinned.challenge.is_protected, changed))
    return history.Fact(first, info.author_email, protected, tuple(merged))


def _mainline(s: Session, tip: str) -> tuple[list[scoring.Node], dict[str, str | None], list[str]]:
    baseline = s.baseline
    prefixes = _search_prefixes(s.pinned.challenge.protect)
    chain = history.walk(
        history.path_for(s.local, s.pinned.digest), tip, baseline, lambda c: _fact(s, prefixes, c)
    )
    if chain[0][0] != baseline:
        raise ConfigError(
            f"{tip[:12]} does not descend from the challenge baseline "
            f"{baseline[:12]} along first parents",
            hint="credit a branch that grew from the challenge",
        )
    nodes = [scoring.Node(baseline)]
    side_parent: dict[str, str | None] = {}
    for commit, fact in chain[1:]:
        side_parent.update(fact.merged)
        nodes.append(scoring.Node(commit, tuple(m for m, _ in fact.merged), fact.protected))
    return nodes, side_parent, [fact.author for _, fact in chain]


def _mismatches(
    nodes: list[scoring.Node], authors: list[str], scores: dict[str, scoring.Scored]
) -> list[str]:
    notes = []
    for n, author in zip(nodes[1:], authors[1:], strict=True):
        got = scores.get(n.commit)
        if got and author.lower() != got.contributor.email.lower():
            notes.append(
                f"{n.commit[:12]} names author {author} but was signed by "
                f"{got.contributor.email}: credited to the signer"
            )
    return notes


def credit(path: str | Path = ".", *, rev: str | None = None) -> CreditReport:
    """Verify the ledger (incrementally), then compute credit along the challenge branch.

    Raises VerificationError/SecurityError when the ledger does not verify, ConfigError
    for a revision that is not part of the challenge.
    """
    head = verify_mod.verify(path).head
    s = open_session(path)
    assert head is not None
    ch = s.pinned.challenge
    tip = s.repo.resolve(rev or f"refs/heads/{ch.branch}")
    nodes, side_parent, authors = _mainline(s, tip)
    scores = _scores(verify_mod.verified_rows(s.repo, head), s.pinned.digest)
    result = scoring.compute(
        nodes, scores, side_parent, maximize=ch.maximize, min_delta=ch.min_delta
    )
    notes = _mismatches(nodes, authors, scores)
    return CreditReport(ch.name, ch.metric.direction, result, notes)
