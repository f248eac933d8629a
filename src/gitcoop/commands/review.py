"""``git coop review REV --reproduce``: re-run the metric on someone else's attested commit
and append a signed verdict, so credit can tell a reproduced result from a claim."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from gitcoop import constants, ledger, records, trust, vindex
from gitcoop.commands import verify as verify_mod
from gitcoop.commands.evaluate import Scorer
from gitcoop.errors import ConfigError, MetricError
from gitcoop.session import Session, open_session, signer_for


@dataclass(frozen=True)
class Reviewed:
    """What a review found and where it was recorded."""

    commit: str
    score: Decimal  # the reviewer's
    theirs: Decimal
    by: str  # the reviewed attestation's principal
    tolerance: Decimal
    result: str
    seq: int

    @property
    def reproduced(self) -> bool:
        """Whether the scores agreed within the tolerance."""
        return self.result == records.REPRODUCED

    def to_json(self) -> dict[str, object]:
        """The documented ``review --json`` object."""
        return {
            "commit": self.commit,
            "result": self.result,
            "score": str(self.score),
            "reviewed": {"score": str(self.theirs), "principal": self.by},
            "tolerance": str(self.tolerance),
            "seq": self.seq,
        }


def review(path: str | Path, rev: str) -> Reviewed:
    """Re-run the metric on ``rev`` in an isolated worktree (never from the score cache),
    compare with the first trusted attestation of it signed by another key, and append a
    signed ``review`` entry either way.

    Raises ConfigError when nobody else attested ``rev``, MetricError when the metric
    fails (nothing appended), VerificationError/SecurityError when the ledger does not
    verify."""
    report = verify_mod.verify(path)
    s = open_session(path)
    assert report.head is not None
    commit = s.repo.resolve(rev)
    key, signer, _ = signer_for(s.repo, s.repo.workdir)
    target = _reviewed(s, report, commit, key.keyid)
    with contextlib.closing(Scorer(s.repo, s.local, s.pinned, reuse=False)) as scorer:
        got = scorer.score(commit)
    if got.score is None:
        raise MetricError(
            f"metric failed on {commit[:12]}: {got.error}", hint="nothing was appended"
        )
    theirs = Decimal(target.score)
    tolerance = s.pinned.challenge.agreement
    result = records.REPRODUCED if abs(got.score - theirs) <= tolerance else records.NOT_REPRODUCED
    statement = records.Review(
        commit=commit,
        tree=s.repo.commit(commit).tree,
        challenge=s.pinned.digest,
        origin=s.head.origin,
        reviewed=_statement_digest(s, report.head, target.seq),
        reviewed_keyid=target.keyid,
        reviewed_score=theirs,
        score=got.score,
        tolerance=tolerance,
        result=result,
        duration_ms=got.duration_ms,
        time=records.now(),
        signer=signer,
    ).statement()
    envelope = records.sign(statement, constants.INTOTO_PAYLOAD_TYPE, key)
    head = ledger.append(s.repo, "review", key.public_openssh, envelope, after=s.head)
    return Reviewed(commit, got.score, theirs, target.principal, tolerance, result, head.entry.seq)


def _reviewed(s: Session, report: verify_mod.Report, commit: str, mine: str) -> vindex.Row:
    assert report.head is not None
    timeline = trust.Timeline(report.trust)
    for row in verify_mod.verified_rows(s.repo, report.head):
        if (
            row.commit == commit
            and not row.review
            and row.keyid != mine
            and row.challenge == s.pinned.digest
            and timeline.member(row.keyid, row.seq) is not None
        ):
            return row
    raise ConfigError(
        f"{commit[:12]} has no attestation by another trusted signer to review",
        hint="git coop show REV lists its attestations; a review checks someone else's",
    )


def _statement_digest(s: Session, head: verify_mod.Position, seq: int) -> str:
    # The reviewed entry by walking down from the verified head: the statement bytes
    # name it across re-links, where the entry's own hash (which covers seq) would not.
    _, at, _ = s.repo.first_parents(head.commit, None, head.seq - seq)
    assert at is not None
    rec = ledger.read_record(s.repo, at)
    payload, _ = records.open_payload(
        rec.entry.envelope, rec.entry.key, constants.INTOTO_PAYLOAD_TYPE
    )
    return "sha256:" + hashlib.sha256(payload).hexdigest()
