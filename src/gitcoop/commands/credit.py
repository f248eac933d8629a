"""``git coop credit``: who improved the challenge and by how much, from a verified ledger."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitcoop import constants, ledger, records, scoring
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


def verified_attestations(s: Session) -> Iterator[records.Attestation]:
    """Every attestation of the (already verified) ledger, in ledger order."""
    for rec in ledger.records(s.repo, s.head.commit):
        if rec.entry.kind == "attestation":
            obj, _ = records.open_envelope(
                rec.entry.envelope, rec.entry.key, constants.INTOTO_PAYLOAD_TYPE
            )
            yield records.parse_attestation(obj)


def _scores(s: Session) -> dict[str, scoring.Scored]:
    people: dict[str, scoring.Contributor] = {}
    first: dict[str, tuple[Any, str]] = {}
    for att in verified_attestations(s):
        if att.challenge != s.pinned.digest:
            continue
        people[att.signer.keyid] = scoring.Contributor(
            att.signer.keyid, att.signer.name, att.signer.principal
        )
        first.setdefault(att.commit, (att.score, att.signer.keyid))
    return {c: scoring.Scored(score, people[k]) for c, (score, k) in first.items()}


def _mainline(s: Session, tip: str) -> tuple[list[scoring.Node], dict[str, str | None]]:
    baseline = s.baseline
    chain = s.repo.first_parent_chain(tip, baseline)
    if chain[0] != baseline:
        raise ConfigError(
            f"{tip[:12]} does not descend from the challenge baseline "
            f"{baseline[:12]} along first parents",
            hint="credit a branch that grew from the challenge",
        )
    nodes, side_parent = [scoring.Node(baseline)], {}
    for c in chain[1:]:
        info = s.repo.commit(c)
        merged: tuple[str, ...] = ()
        if len(info.parents) > 1:
            merged = tuple(s.repo.new_commits(info.parents[1], [info.parents[0]]))
            for m in merged:
                ps = s.repo.commit(m).parents
                side_parent[m] = ps[0] if ps else None
        changed = s.repo.changed_paths(s.repo.commit(info.parents[0]).tree, info.tree)
        nodes.append(scoring.Node(c, merged, any(map(s.pinned.challenge.is_protected, changed))))
    return nodes, side_parent


def _mismatches(
    s: Session, nodes: list[scoring.Node], scores: dict[str, scoring.Scored]
) -> list[str]:
    notes = []
    for n in nodes[1:]:
        got = scores.get(n.commit)
        author = s.repo.commit(n.commit).author_email
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
    verify_mod.verify(path)
    s = open_session(path)
    ch = s.pinned.challenge
    tip = s.repo.resolve(rev or f"refs/heads/{ch.branch}")
    nodes, side_parent = _mainline(s, tip)
    scores = _scores(s)
    result = scoring.compute(
        nodes, scores, side_parent, maximize=ch.maximize, min_delta=ch.min_delta
    )
    return CreditReport(ch.name, ch.metric.direction, result, _mismatches(s, nodes, scores))
