"""``git coop challenge update`` and ``git coop rescore``: change the challenge (a new
metric, data or protected files) as a new signed version, and score history under it as a
series of its own, the old version's credit staying as it was."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitcoop import _gitcli, constants, ledger, pinned, records, trust, versions
from gitcoop.commands import verify as verify_mod
from gitcoop.commands.evaluate import OnProgress, Outcome, Report, evaluate
from gitcoop.errors import ConfigError
from gitcoop.session import Session, open_session, signer_for


@dataclass(frozen=True)
class Updated:
    """What ``challenge update`` did: the version in force afterwards, and the entry that
    pinned it (None: the commit holds the challenge in force, nothing appended)."""

    version: int
    seq: int | None
    digest: str
    source: str


def update(path: str | Path = ".", rev: str | None = None) -> Updated:
    """Pin the challenge at ``rev`` (default: the challenge branch) as the next version,
    with a ``challenge-update`` entry the user's key signs, which must be a maintainer's.
    Raises ConfigError when it is not, or when ``rev`` holds no valid challenge."""
    report = verify_mod.verify(path)
    s = open_session(path)
    key, signer, _ = signer_for(s.repo, s.repo.workdir)
    trust.require(trust.Timeline(report.trust), key.keyid, "changes the challenge")
    source = s.repo.resolve(rev or f"refs/heads/{s.pinned.challenge.branch}")
    pin = pinned.from_tree(s.repo, s.repo.commit(source).tree, source[:12])
    current = versions.numbered(report.versions, None)
    if pin.digest == current.digest:
        return Updated(current.number, None, pin.digest, source)
    body = records.challenge_update_body(
        pin.challenge.name, pin.digest, s.head.origin, current.seq, current.number + 1, source
    )
    event = records.Event("challenge-update", body, signer, records.now())
    envelope = records.sign(event.payload(), constants.EVENT_PAYLOAD_TYPE, key)
    head = ledger.append(
        s.repo,
        "challenge-update",
        key.public_openssh,
        envelope,
        pinned_tree=pin.tree,
        challenge=pin.digest,
        after=s.head,
    )
    return Updated(current.number + 1, head.entry.seq, pin.digest, source)


def rescore(
    s: Session,
    version: int | None,
    *,
    jobs: int = 1,
    report: Report | None = None,
    on_progress: OnProgress | None = None,
) -> tuple[int, list[Outcome]]:
    """Score the challenge branch's first-parent history, from the baseline, under the
    version in force (``version`` must name it); return (that version, the outcomes).
    Commits this key already attested under it are left alone."""
    verified = verify_mod.verify(s.repo.common_dir)
    current = versions.numbered(verified.versions, None)
    if version is not None and version != current.number:
        raise ConfigError(
            f"only the challenge version in force ({current.number}) can be scored; "
            f"version {version} stays as it was scored",
            hint=f"git coop rescore --metric-version {current.number}, or git coop credit "
            f"--metric-version {version} to read it",
        )
    key, signer, _ = signer_for(s.repo, s.repo.workdir)
    tip = s.repo.resolve(f"refs/heads/{s.pinned.challenge.branch}")
    listed = _gitcli.git(s.repo.common_dir, "rev-list", "--first-parent", "--reverse", tip)
    commits = listed.split()
    if s.baseline not in commits:
        raise ConfigError(
            f"{tip[:12]} does not descend from the challenge baseline {s.baseline[:12]} "
            "along first parents",
            hint="rescore the branch that grew from the challenge",
        )
    commits = commits[commits.index(s.baseline) :]
    outcomes = evaluate(
        s,
        commits,
        key,
        signer,
        jobs=jobs,
        report=report or (lambda _: None),
        on_progress=on_progress or (lambda _done, _total, _commit: None),
    )
    return current.number, outcomes
