"""Exchange the ledger with a remote: fetch into staging, verify, fast-forward or re-link,
then push as a compare-and-swap (never a forced overwrite)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitcoop import _gitcli, constants, ledger
from gitcoop.errors import GitOperationError, SecurityError
from gitcoop.git import Repo

if TYPE_CHECKING:
    from gitcoop.commands import verify as verify_mod

_GUARD = {constants.HOOK_GUARD_ENV: "1"}


def _staging_prefix(remote: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", remote)[:100].lstrip(".") or "remote"
    return f"refs/coop-remote/{safe}/"


def staging_ref(remote: str) -> str:
    """Where a remote's ledger is fetched before it is verified."""
    return _staging_prefix(remote) + "ledger"


@dataclass(frozen=True)
class SyncResult:
    """What a sync did: entries taken from the remote, entries re-linked, whether pushed."""

    fetched: int = 0
    relinked: int = 0
    pushed: bool = False


def start_fetch(workdir: Path, remote: str) -> _gitcli.Running:
    """Start fetching the remote ledger into staging, for ``fetch`` or ``sync`` to finish."""
    into = _staging_prefix(remote) + "*"
    return _gitcli.fetch_refs(workdir, remote, "refs/coop/*", into, _GUARD)


def fetch(
    repo: Repo, workdir: Path, remote: str, started: _gitcli.Running | None = None
) -> str | None:
    """Fetch the remote ledger into staging (or finish the ``started`` fetch); return its
    head or None when it has none."""
    (started or start_fetch(workdir, remote)).wait()
    return repo.ref(staging_ref(remote))


def _verify_incoming(repo: Repo, remote_tip: str) -> verify_mod.Position | None:
    # Imported here: a hook whose remote has nothing new never verifies anything.
    from gitcoop.commands import verify as verify_mod

    start = verify_mod.read_pin(repo)
    if start is not None and not (
        repo.has_object(start.commit) and repo.is_ancestor(start.commit, remote_tip)
    ):
        start = None
    return verify_mod.advance(repo, remote_tip, start, verify_mod.Report())


def _relink(repo: Repo, local_tip: str, remote_tip: str) -> int:
    base = repo.merge_base(local_tip, remote_tip)
    if base is None:
        raise SecurityError(
            "the remote ledger has another genesis than the local one",
            hint="this clone and the remote hold different challenges",
        )
    # Only what either side added since they parted can collide; the rest is shared.
    theirs = {_identity(r) for r in ledger.records(repo, remote_tip, base)}
    ours = [r for r in ledger.records(repo, local_tip, base) if _identity(r) not in theirs]
    repo.cas_ref(constants.LEDGER_REF, remote_tip, local_tip, "coop: sync")
    head = None
    for rec in ours:
        head = ledger.append(repo, rec.entry.kind, rec.entry.key, rec.entry.envelope, after=head)
    return len(ours)


def _identity(rec: ledger.Record) -> tuple[str, str]:
    # Attestations carry no position: the envelope identifies an entry across re-links.
    return rec.entry.key, str(rec.entry.envelope.get("payload"))


def sync(
    repo: Repo,
    workdir: Path,
    remote: str,
    *,
    push: bool = True,
    started: _gitcli.Running | None = None,
) -> SyncResult:
    """Bring the local ledger and the remote's into one chain and publish it; ``started``
    is a fetch already under way (``start_fetch``).

    Raises VerificationError for bad incoming entries, SecurityError for a foreign ledger,
    GitOperationError when the remote cannot be reached or refuses the push.
    """
    remote_tip = fetch(repo, workdir, remote, started)
    local_tip = repo.ref(constants.LEDGER_REF)
    fetched = relinked = 0
    if remote_tip is not None and remote_tip != local_tip:
        _verify_incoming(repo, remote_tip)
        if local_tip is None or repo.is_ancestor(local_tip, remote_tip):
            fetched = len(ledger.chain(repo, remote_tip, local_tip))
            repo.cas_ref(constants.LEDGER_REF, remote_tip, local_tip, "coop: fast-forward")
        elif not repo.is_ancestor(remote_tip, local_tip):
            relinked = _relink(repo, local_tip, remote_tip)
    local_tip = repo.ref(constants.LEDGER_REF)
    if not push or local_tip is None or local_tip == remote_tip:
        return SyncResult(fetched, relinked, False)
    try:
        _gitcli.push_ref(workdir, remote, constants.LEDGER_REF, expect=remote_tip, env=_GUARD)
    except GitOperationError as exc:
        raise GitOperationError(
            f"could not publish the ledger to {remote}: {exc.message}", hint="run: git coop sync"
        ) from None
    repo.cas_ref(staging_ref(remote), local_tip, remote_tip, "coop: published")
    return SyncResult(fetched, relinked, True)


def publish(repo: Repo, workdir: Path, remote: str) -> bool:
    """Push the local ledger over the remote head fetched last; on a lost race, sync again.

    Returns whether anything was pushed.
    """
    local, known = repo.ref(constants.LEDGER_REF), repo.ref(staging_ref(remote))
    if local is None or local == known:
        return False
    try:
        _gitcli.push_ref(workdir, remote, constants.LEDGER_REF, expect=known, env=_GUARD)
    except GitOperationError:
        return sync(repo, workdir, remote).pushed
    repo.cas_ref(staging_ref(remote), local, known, "coop: published")
    return True
