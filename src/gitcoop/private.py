"""The private split: held-out data that never enters the repository, scored by a trusted
evaluator only when a round closes.

Scores on the private split are not published while a round runs: a contributor who saw
them could probe the held-out data as they can the public split (Blum and Hardt's boosting
attack). When a round closes, the evaluator scores every commit of the challenge's history
that has no private score yet, with the challenge's pinned private command on the data
file whose SHA-256 the challenge pins, and appends those scores as attestations on the
``private`` split; the round is then credited on them. Anyone handed the data later can
recompute every one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from gitcoop import _gitcli, records, trust, vindex
from gitcoop.challenge import Challenge
from gitcoop.commands import verify as verify_mod
from gitcoop.errors import ConfigError, MetricError, VerificationError
from gitcoop.keys import SigningKey
from gitcoop.session import Session

DATA_ENV = "GITCOOP_PRIVATE_DATA"  # where the evaluator is handed the data file
METRIC_ENV = "COOP_PRIVATE_DATA"  # where the private command finds it
SPLIT = "private"


def data_file(ch: Challenge, given: Path | None) -> Path:
    """The private data file (``given``, else ``$GITCOOP_PRIVATE_DATA``), checked against
    the challenge's pinned digest. Raises ConfigError when there is none,
    VerificationError when it is not the pinned data."""
    assert ch.private is not None
    raw = given if given is not None else os.environ.get(DATA_ENV)
    if not raw:
        raise ConfigError(
            "this challenge is decided on a private split, and its data was not given",
            hint=f"pass --private-data FILE or set {DATA_ENV} (in CI: from a secret)",
        )
    path = Path(raw).resolve()
    if not path.is_file():
        raise ConfigError(f"the private data {path} is not a readable file", hint="check the path")
    if ch.private.digest is not None:
        with path.open("rb") as fh:
            got = "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()
        if got != ch.private.digest:
            raise VerificationError(
                f"the private data is {got}, not the {ch.private.digest} the challenge pins",
                hint="hand the evaluator the data the challenge was set up with",
            )
    return path


def scored(rows: Iterable[vindex.Row], digest: str, timeline: trust.Timeline) -> dict[str, Decimal]:
    """The private score of each commit: the first a trusted evaluator attested."""
    out: dict[str, Decimal] = {}
    for row in rows:
        if (
            row.split == SPLIT
            and row.challenge == digest
            and row.commit not in out
            and timeline.holds(row.keyid, row.seq, trust.EVALUATOR)
        ):
            out[row.commit] = Decimal(row.score)
    return out


def known(s: Session, verified: verify_mod.Report) -> dict[str, Decimal]:
    """The private scores the ledger ``verified`` reached holds (see ``scored``)."""
    assert verified.head is not None
    rows = verify_mod.verified_rows(s.repo, verified.head)
    return scored(rows, s.pinned.digest, trust.Timeline(verified.trust))


def history(s: Session, tip: str) -> list[str]:
    """The commits a round's credit can read up to ``tip``, parents first: the baseline
    and every commit descending from it (merged side commits included)."""
    baseline = s.baseline
    listed = _gitcli.git(
        s.repo.common_dir,
        "rev-list",
        "--reverse",
        "--topo-order",
        "--ancestry-path",
        f"{baseline}..{tip}",
    )
    return [baseline, *listed.split()]


def reveal(
    s: Session,
    key: SigningKey,
    signer: records.Signer,
    commits: list[str],
    data: Path,
    known: dict[str, Decimal],
) -> int:
    """Score ``commits`` (parents first) on the private split and append the scores as
    private attestations; return how many. Every commit is scored before anything is
    appended, so a metric failure appends nothing (MetricError)."""
    from gitcoop.commands.evaluate import Scorer, attest  # the metric machinery: reveal only

    ch = s.pinned.challenge
    assert ch.private is not None
    metric = dataclasses.replace(ch.metric, command=ch.private.command)
    pin = dataclasses.replace(s.pinned, challenge=dataclasses.replace(ch, metric=metric))
    results = []
    scorer = Scorer(s.repo, s.local, pin, reuse=False, extra_env={METRIC_ENV: str(data)})
    with contextlib.closing(scorer):
        for commit in commits:
            got = scorer.score(commit)
            if got.score is None:
                raise MetricError(
                    f"the private split of {commit[:12]} could not be scored: {got.error}",
                    hint="fix the private command or data; nothing was appended",
                )
            results.append((commit, got))
    scores = dict(known)
    head = s.head
    for commit, got in results:
        assert got.score is not None
        parents = s.repo.commit(commit).parents
        parent_score = scores.get(parents[0]) if parents else None
        head = attest(s, key, signer, commit, got, parent_score, head, split=SPLIT)
        scores[commit] = got.score
    return len(results)


def missing(s: Session, tip: str, known: dict[str, Decimal]) -> list[str]:
    """The commits up to ``tip`` that have no private score yet."""
    return [c for c in history(s, tip) if c not in known]
