"""Exchange the ledger with a remote: fetch into an incoming namespace, check it extends what
this clone last saw there (the remote pin), verify, fast-forward or re-link, then push as a
compare-and-swap (never a forced overwrite).

Local state moves in an order a crash cannot turn into a false alarm: the verified pin is
always an ancestor of the local ledger.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from gitcoop import _faults, _fs, _gitcli, constants, incoming, ledger, notes, vindex
from gitcoop.commands import verify as verify_mod
from gitcoop.commands.verify import Position
from gitcoop.errors import FormatError, GitOperationError, LedgerConflict, SecurityError
from gitcoop.git import Repo
from gitcoop.incoming import staging_ref
from gitcoop.workspace import local_dir

_GUARD = incoming.GUARD


@dataclass(frozen=True)
class SyncResult:
    """What a sync did: entries taken from the remote, entries re-linked, whether pushed."""

    fetched: int = 0
    relinked: int = 0
    pushed: bool = False
    dropped: int = 0  # local entries made under a challenge the remote replaced


class _Taken(NamedTuple):
    fetched: int = 0
    relinked: int = 0
    dropped: int = 0


# --- the remote pin ---------------------------------------------------------------------


def _pin_path(repo: Repo, remote: str) -> Path:
    return local_dir(repo) / "remotes" / f"{incoming.safe_name(remote)}.json"


def remote_pin(repo: Repo, remote: str) -> Position | None:
    """The remote's ledger head this clone last verified, or None before the first sync.

    Raises SecurityError when the pin file is unreadable: silently trusting the remote
    again would defeat it.
    """
    raw = _fs.read_or_none(_pin_path(repo, remote))
    if raw is None:
        return None
    try:
        return Position(**json.loads(raw))
    except (ValueError, TypeError):
        raise SecurityError(
            f"the pin of {remote}'s ledger ({_pin_path(repo, remote)}) is unreadable",
            hint=f"after checking the remote by other means: git coop sync {remote} --retrust",
        ) from None


def _write_remote_pin(repo: Repo, remote: str, pos: Position) -> None:
    _fs.atomic_write(_pin_path(repo, remote), json.dumps(pos.to_json()).encode())


def _advance_remote_pin(repo: Repo, remote: str, pos: Position, proven: Position | None) -> None:
    """Move the pin to ``pos``, forward only, under a lock: a concurrent sync that saw a
    newer head keeps it. ``proven`` is a pin already known to be an ancestor of ``pos``."""
    path = _pin_path(repo, remote)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _fs.locked(path.with_suffix(".lock")):
        old = remote_pin(repo, remote)
        if (
            old is None
            or old == proven
            or (old.seq < pos.seq and verify_mod.extends(repo, pos.commit, old))
        ):
            _write_remote_pin(repo, remote, pos)


def _position_at(repo: Repo, commit: str) -> Position:
    return verify_mod.position(ledger.read_record(repo, commit))


# --- evidence of a rewritten remote -----------------------------------------------------


def _parent_record(repo: Repo, rec: ledger.Record) -> ledger.Record | None:
    return ledger.read_record(repo, rec.parents[0]) if rec.parents else None


def _first_difference(
    repo: Repo, pinned: str, theirs: str
) -> tuple[int, ledger.Record, ledger.Record] | None:
    """The lowest seq at which the two chains hold different entries, with both, or None
    when every entry is the same. One walk down both chains, in step by seq."""
    a: ledger.Record | None = ledger.read_record(repo, pinned)
    b: ledger.Record | None = ledger.read_record(repo, theirs)
    found = None
    while a is not None and b is not None:
        if a.entry.seq != b.entry.seq:
            if a.entry.seq > b.entry.seq:
                a = _parent_record(repo, a)
            else:
                b = _parent_record(repo, b)
            continue
        if a.data != b.data:
            found = (a.entry.seq, a, b)
        a, b = _parent_record(repo, a), _parent_record(repo, b)
    return found


def _evidence(repo: Repo, remote: str, pin: Position, theirs: str | None) -> tuple[str, Path]:
    """A one-line account of how the remote departs from the pin, and a file holding both
    versions of the first entry that differs (for anyone to check offline)."""
    record: dict[str, object] = {"remote": remote, "pinned": pin.to_json(), "remote_head": None}
    if theirs is None:
        detail = "it has no ledger any more"
    else:
        now = _position_at(repo, theirs)
        record["remote_head"] = now.to_json()
        if now.seq < pin.seq and repo.is_ancestor(theirs, pin.commit):
            detail = f"rolled back to #{now.seq} (sha256 {now.hash[:16]}, commit {theirs[:12]})"
        else:
            detail = f"now at #{now.seq} (sha256 {now.hash[:16]}, commit {theirs[:12]}), which "
            diff = _first_difference(repo, pin.commit, theirs)
            if diff is None:
                detail += "holds the same entries in other commits"
            else:
                k, mine, other = diff
                detail += f"does not extend it: entry #{k} differs"
                record["first_difference"] = {
                    "seq": k,
                    "pinned": {
                        "commit": mine.commit,
                        "entry": mine.data.decode("utf-8", "replace"),
                    },
                    "remote": {
                        "commit": other.commit,
                        "entry": other.data.decode("utf-8", "replace"),
                    },
                }
    folder = local_dir(repo) / "evidence"
    folder.mkdir(parents=True, exist_ok=True)
    data = json.dumps(record, indent=2, sort_keys=True).encode() + b"\n"
    # Named by time and content: two reports in one second never overwrite each other.
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    digest = hashlib.sha256(data).hexdigest()[:8]
    path = folder / f"{incoming.safe_name(remote)}-{stamp}-{digest}.json"
    _fs.atomic_write(path, data)
    return detail, path


def _rewritten(repo: Repo, remote: str, pin: Position, theirs: str | None) -> SecurityError:
    detail, path = _evidence(repo, remote, pin, theirs)
    return SecurityError(
        f"{remote} rewrote its ledger: this clone verified #{pin.seq} there (sha256 "
        f"{pin.hash[:16]}, commit {pin.commit[:12]}); {detail}; nothing was changed here, "
        f"evidence in {path}",
        hint=f"compare with other clones; to accept the remote as it is now: "
        f"git coop sync {remote} --retrust",
    )


# --- fetch, check, merge ----------------------------------------------------------------


def fetch(
    repo: Repo, workdir: Path, remote: str, started: _gitcli.Running | None = None
) -> str | None:
    """Fetch the remote's ledger into the incoming namespace (or finish the ``started``
    fetch); return its head or None."""
    (started or incoming.start_fetch(workdir, remote)).wait()
    return repo.ref(incoming.prefix(remote) + "ledger")


def _drop_incoming(repo: Repo, remote: str) -> None:
    repo.delete_refs(incoming.prefix(remote))


def _check_pin(repo: Repo, remote: str, theirs: str | None, retrust: bool) -> Position | None:
    """The remote pin, once ``theirs`` is shown to extend it; raises SecurityError."""
    pin = None if retrust else remote_pin(repo, remote)
    if pin is None:
        return None
    if theirs is None or not verify_mod.extends(repo, theirs, pin):
        raise _rewritten(repo, remote, pin, theirs)
    return pin


def _start(repo: Repo, base: str | None) -> Position | None:
    """Where verifying the remote's chain can start: the local pin when the remote's chain
    holds it, else the point where the two chains part (below the pin, so verified), else
    genesis. The pin lies on the local chain, so comparing it with ``base`` suffices."""
    pin = verify_mod.read_pin(repo)
    if pin is None or base is None or not repo.has_object(pin.commit):
        return None
    if verify_mod.extends(repo, base, pin):
        return pin
    below = _position_at(repo, base)
    return below if verify_mod.extends(repo, pin.commit, below) else None


def _record(
    repo: Repo, start: Position | None, lines: list[str], end: Position, report: verify_mod.Report
) -> None:
    """Save what verifying ``start``..``end`` proved: index rows, then the pin."""
    path = local_dir(repo) / vindex.FILE
    if start is not None and not vindex.ends_at(path, start.seq, start.hash):
        return  # the index is not where the pin is; the next verify rebuilds both
    writer = vindex.Writer(path, append=start is not None)
    try:
        writer.write("".join(lines))
    except BaseException:
        writer.abort()
        raise
    verify_mod.seal(repo, writer, end, report)


def _retreat_pin(repo: Repo, base: Position) -> None:
    """Move the verified pin (and its index) back to ``base`` before the local chain past
    it is replaced, so a crash never leaves a pin the ledger no longer contains."""
    pin = verify_mod.read_pin(repo)
    if pin is None or pin.commit == base.commit:
        return
    rules = verify_mod.rules_upto(repo, base)
    path = local_dir(repo) / vindex.FILE
    if rules is not None and vindex.truncate(path, base.seq, base.hash, sealed=(pin.seq, pin.hash)):
        verify_mod.write_pin(repo, base, rules)
    else:
        verify_mod.clear_pin(repo)  # the next verify starts from genesis


def _take(repo: Repo, theirs: str) -> _Taken:
    """Verify the remote's chain and make the local ledger contain it; return the entries
    taken, and the local ones re-linked on top or dropped."""
    ours = repo.ref(constants.LEDGER_REF)
    base = None if ours is None else _fork_point(repo, ours, theirs)
    if base == theirs:
        return _Taken()  # the remote is behind: nothing to take
    if ours is not None and base is None and _foreign(repo, ours, theirs):
        raise SecurityError(
            "the remote ledger has another genesis than the local one",
            hint="this clone and the remote hold different challenges",
        )
    start = _start(repo, base)
    prior = None if start is None else verify_mod.rules_upto(repo, start)
    if prior is None:  # no rules saved to start from: verify from the genesis
        start, prior = None, verify_mod.Rules([], [], [])
    lines: list[str] = []
    report = verify_mod.Report(notes={} if _few(repo, theirs, start) else None)
    end = verify_mod.verify_range(repo, theirs, start, report, lines.append)
    if end is None:  # nothing after start: theirs is start itself
        return _Taken()
    verify_mod.settle(prior, report)
    if report.notes:
        notes.remember(report.notes)  # the notes refresh after sync need not read them again
    _faults.hit("sync", "after-verify")  # verified, nothing changed here yet
    shared = -1 if base is None else _position_at(repo, base).seq
    if ours is None or base == ours:
        repo.cas_ref(constants.LEDGER_REF, theirs, ours, "coop: fast-forward")
        _faults.hit("sync", "after-fast-forward")  # the pin still names an older entry
        _record(repo, start, lines, end, report)
        return _Taken(end.seq - shared)
    if start is not None:
        _retreat_pin(repo, start)
    else:
        verify_mod.clear_pin(repo)  # it named an entry this clone is about to replace
    relinked, dropped = _relink(repo, ours, theirs, base)
    _faults.hit("sync", "after-relink")  # the pin is at or below the fork point, or gone
    _record(repo, start, lines, end, report)
    verify_mod.advance(repo, repo.ref(constants.LEDGER_REF) or theirs, end, verify_mod.Report())
    return _Taken(end.seq - shared, relinked, dropped)


def _fork_point(repo: Repo, ours: str, theirs: str) -> str | None:
    """Where the two chains part. One usually extends the other: walking down the newer
    one settles it at the cost of the entries between (libgit2's merge base walks both
    chains whole)."""
    try:
        mine, other = _position_at(repo, ours), _position_at(repo, theirs)
    except FormatError:
        return repo.merge_base(ours, theirs)
    if verify_mod.lands_on(repo, theirs, mine):
        return ours
    if verify_mod.lands_on(repo, ours, other):
        return theirs
    return repo.merge_base(ours, theirs)


def _few(repo: Repo, theirs: str, start: Position | None) -> bool:
    # Entries taken in one go whose notes lines are worth keeping in memory.
    try:
        taken = ledger.read_record(repo, theirs).entry.seq - (-1 if start is None else start.seq)
    except FormatError:
        return False
    return taken <= notes.BATCH


def _foreign(repo: Repo, ours: str, theirs: str) -> bool:
    return ledger.head_at(repo, ours).origin != ledger.head_at(repo, theirs).origin


def _relink(repo: Repo, ours: str, theirs: str, base: str | None) -> tuple[int, int]:
    """Put this clone's unpublished entries on top of ``theirs``; return (re-linked,
    dropped)."""
    # Only what either side added since they parted can collide; the rest is shared.
    added = list(ledger.records(repo, theirs, base))
    known = {_identity(r) for r in added}
    mine = [r for r in ledger.records(repo, ours, base) if _identity(r) not in known]
    kept = _still_valid(mine, ledger.head_at(repo, theirs).entry.challenge, added)
    # The whole new chain is written first and the ref moved once: a crash leaves the old
    # chain in place, never a ledger that lost this clone's unpublished entries.
    new = ledger.stack(repo, ledger.head_at(repo, theirs), kept)
    repo.cas_ref(constants.LEDGER_REF, new.commit, ours, "coop: sync")
    return len(kept), len(mine) - len(kept)


def _still_valid(
    mine: list[ledger.Record], digest: str, theirs: list[ledger.Record]
) -> list[tuple[ledger.Entry, str]]:
    """The entries of ``mine`` that stay valid on top of the remote's chain: each is bound
    to the challenge in force where it was made. One made under a challenge the remote has
    since replaced, or a challenge update racing one of the remote's, would not verify
    there, so it is dropped (scores are made again under the new challenge)."""
    raced = any(r.entry.kind == "challenge-update" for r in theirs)
    kept: list[tuple[ledger.Entry, str]] = []
    for r in mine:
        if r.entry.kind == "challenge-update":
            if raced:
                digest = ""  # nothing made under it survives either
                continue
            digest = r.entry.challenge
        elif r.entry.challenge != digest:
            continue
        kept.append((r.entry, r.pinned_tree))
    return kept


def _identity(rec: ledger.Record) -> tuple[str, str]:
    # Attestations carry no position: the envelope identifies an entry across re-links.
    return rec.entry.key, str(rec.entry.envelope.get("payload"))


_ATTEMPTS = 8  # pushes lost to other clones before giving up


def _pull(
    repo: Repo, workdir: Path, remote: str, retrust: bool, started: _gitcli.Running | None
) -> tuple[str | None, Position | None, _Taken]:
    """Fetch, check against the pin, verify and take the remote's ledger: (its head, its
    position, what was taken)."""
    theirs = fetch(repo, workdir, remote, started)
    _faults.hit("sync", "after-fetch")  # left in the incoming namespace, unchecked
    try:
        proven = _check_pin(repo, remote, theirs, retrust)
        taken = _Taken() if theirs is None else _take(repo, theirs)
        pos = None if theirs is None else _seen(repo, remote, theirs, proven, retrust=retrust)
    finally:
        _drop_incoming(repo, remote)
    return theirs, pos, taken


def sync(
    repo: Repo,
    workdir: Path,
    remote: str,
    *,
    push: bool = True,
    retrust: bool = False,
    started: _gitcli.Running | None = None,
) -> SyncResult:
    """Bring the local ledger and the remote's into one chain and publish it; a push lost
    to another clone is retried on top of what that clone published (a few times).
    ``started``: a fetch already under way (``incoming.start_fetch``).

    Raises SecurityError (nothing changed locally) when the remote no longer extends what
    this clone verified there, or holds another challenge; VerificationError for bad
    incoming entries; GitOperationError when the remote cannot be reached or refuses.
    """
    fetched, dropped, refused, refused_over = 0, 0, None, None
    for attempt in range(_ATTEMPTS):
        first = attempt == 0
        theirs, pinned_at, taken = _pull(
            repo, workdir, remote, retrust and first, started if first else None
        )
        if refused is not None and theirs == refused_over:
            raise _kept(remote, refused)  # the remote did not move: it refused the push
        fetched, dropped = fetched + taken.fetched, dropped + taken.dropped
        relinked = taken.relinked
        ours = repo.ref(constants.LEDGER_REF)
        if not push or ours is None or ours == theirs:
            return SyncResult(fetched, relinked, False, dropped)
        _faults.hit("sync", "before-push")  # the local ledger is complete, unpublished
        try:
            _gitcli.push_ref(workdir, remote, constants.LEDGER_REF, expect=theirs, env=_GUARD)
        except GitOperationError as exc:
            # Lost to another clone, or refused: the next fetch tells which.
            refused, refused_over = exc, theirs
            time.sleep(random.uniform(0, 0.05 * (attempt + 1)))  # noqa: S311 - jitter
            continue
        _faults.hit("sync", "after-push")  # published; the remote pin still names the old head
        _seen(repo, remote, ours, pinned_at, retrust=False)  # ours contains theirs
        return SyncResult(fetched, relinked, True, dropped)
    raise LedgerConflict(
        f"other clones kept publishing to {remote} first ({_ATTEMPTS} tries); nothing was lost",
        hint="run: git coop sync",
    )


def _kept(remote: str, exc: GitOperationError) -> GitOperationError:
    return GitOperationError(
        f"could not publish the ledger to {remote}: {exc.message}; "
        "it is kept here, with everything it held",
        hint="run `git coop sync` again once the remote takes pushes",
    )


def _seen(
    repo: Repo, remote: str, head: str, proven: Position | None, *, retrust: bool
) -> Position:
    """Remember the remote's head as verified (the staging ref and the remote pin); return
    its position. ``proven``: the pin ``head`` is known to extend."""
    repo.set_ref(staging_ref(remote), head, "coop: fetched")
    pos = _position_at(repo, head)
    if retrust:
        _write_remote_pin(repo, remote, pos)
    else:
        _advance_remote_pin(repo, remote, pos, proven)
    return pos


def publish(repo: Repo, workdir: Path, remote: str) -> bool:
    """Push the local ledger over the remote head fetched last; on a lost race, sync again.

    Returns whether anything was pushed.
    """
    ours, known = repo.ref(constants.LEDGER_REF), repo.ref(staging_ref(remote))
    if ours is None or ours == known:
        return False
    _faults.hit("sync", "before-push")
    try:
        _gitcli.push_ref(workdir, remote, constants.LEDGER_REF, expect=known, env=_GUARD)
    except GitOperationError:
        return sync(repo, workdir, remote).pushed  # it names a refusal; a lost race, retried
    _faults.hit("sync", "after-push")
    _seen(repo, remote, ours, None, retrust=False)
    return True
