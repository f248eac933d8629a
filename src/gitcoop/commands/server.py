"""The server-side guard: a pre-receive hook that refuses any update of ``refs/coop/*``
that is not a valid append to the challenge's ledger.

A push may only grow the ledger: a fast-forward whose new entries link, carry good
signatures, and are signed by keys the challenge knows (its genesis trust list, or
``.coop/allowed_signers`` on the challenge branch as this push leaves it).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitcoop import (
    _fs,
    _gitcli,
    canonical,
    constants,
    hooks,
    keys,
    ledger,
    pinned,
    records,
    trust,
)
from gitcoop.commands import verify as verify_mod
from gitcoop.errors import ExitCode, GitcoopError, VerificationError
from gitcoop.git import ZERO, Repo, open_repo
from gitcoop.workspace import local_dir

HOOK = "pre-receive"
Report = Callable[[str], None]


@dataclass(frozen=True)
class Update:
    """One line of git's pre-receive input."""

    old: str
    new: str
    ref: str


def parse_updates(data: bytes) -> list[Update]:
    """Parse pre-receive stdin (``<old> <new> <ref>`` lines)."""
    return [Update(*fields) for fields in hooks.input_lines(data, 3)]


def install(path: str | Path) -> Path:
    """Install the guard in the repository at ``path`` (a server's bare repository); a
    foreign pre-receive hook is kept as ``pre-receive.legacy`` and still runs first.

    Raises ConfigError when that would overwrite a kept hook, or ``path`` is no repository.
    """
    return hooks.install_shim(_hooks_dir(open_repo(path)), HOOK)


def _hooks_dir(repo: Repo) -> Path:
    """The directory git runs this repository's hooks from (``core.hooksPath`` honoured)."""
    return (
        repo.common_dir / _gitcli.git(repo.common_dir, "rev-parse", "--git-path", "hooks")
    ).resolve()


_SEEN = "guard.json"  # under the repository's gitcoop directory


def _genesis(repo: Repo, update: Update) -> ledger.Record:
    """The first entry of the chain ``update`` leaves, without walking to it when the
    update extends the tip this guard accepted last (a fast-forward keeps the genesis)."""
    raw = _fs.read_or_none(local_dir(repo) / _SEEN)
    try:
        seen = json.loads(raw) if raw else {}
        if seen.get("tip") == update.old != ZERO:
            rec = ledger.read_record(repo, str(seen["genesis"]))
            if rec.entry.seq == 0 and rec.entry.kind == "genesis" and not rec.parents:
                return rec
    except (ValueError, TypeError, KeyError, AttributeError, GitcoopError):
        pass  # a cache that does not help: walk
    return ledger.genesis(repo, update.new)


def _remember(repo: Repo, update: Update, genesis: ledger.Record) -> None:
    data = json.dumps({"tip": update.new, "genesis": genesis.commit}).encode()
    try:
        _fs.atomic_write(local_dir(repo) / _SEEN, data, durable=False)
    except OSError:
        return  # the next push walks again


def _trusted(
    repo: Repo, genesis: ledger.Record, tip: str, updates: list[Update], report: verify_mod.Report
) -> set[str]:
    """Fingerprints of the keys the challenge knows after this push: named by the genesis,
    by a trust update this push brings, or by the trust list on the challenge branch (a
    proposal: credit ignores such a key until a maintainer accepts it)."""
    obj = canonical.decode(
        records.open_payload(
            genesis.entry.envelope, genesis.entry.key, constants.EVENT_PAYLOAD_TYPE
        )[0]
    )
    event = records.parse_event(obj, "genesis")
    lines = [str(t) for t in event.body.get("trust", [])]
    lines += [ln for row in report.trust for ln in row.lines]
    head = ledger.read_record(repo, tip)
    challenge = pinned.load(repo, head.pinned_tree, head.entry.challenge).challenge
    branch = f"refs/heads/{challenge.branch}"
    moved = [u.new for u in updates if u.ref == branch and u.new != ZERO]
    commit = moved[0] if moved else repo.ref(branch)
    if commit is not None:
        blob = repo.blob_at(commit, constants.SIGNERS_FILE)
        if blob is not None:
            lines += blob.decode("utf-8", errors="replace").splitlines()
    return set(trust.parse(lines))


def check(repo: Repo, update: Update, updates: list[Update]) -> str | None:
    """Why ``update`` must be refused, or None when it is a valid append."""
    if update.ref != constants.LEDGER_REF:
        return f"gitcoop keeps nothing but {constants.LEDGER_REF} under refs/coop/"
    if update.new == ZERO:
        return "the ledger cannot be deleted"
    if update.old != ZERO and not repo.is_ancestor(update.old, update.new):
        return "not a fast-forward: the ledger only grows, and this push would rewrite it"
    start = None
    if update.old != ZERO:
        start = verify_mod.position(ledger.read_record(repo, update.old))
    try:
        report = verify_mod.Report()
        verify_mod.verify_range(repo, update.new, start, report)
        genesis = _genesis(repo, update)
        trusted = _trusted(repo, genesis, update.new, updates, report)
        if not set(report.signers) <= trusted:
            return _unknown_signer(repo, update, trusted)
        if any(v.replaces is not None for v in report.versions):
            _check_versions(repo, update.new)
    except GitcoopError as exc:
        return exc.message
    _remember(repo, update, genesis)
    return None


def _check_versions(repo: Repo, tip: str) -> None:
    """A challenge update must be a maintainer's, as the trust lists of the whole ledger
    say: checked as every clone will (a full verification, paid only by the rare push that
    changes the challenge), so no push can leave a ledger that clients refuse."""
    whole = verify_mod.Report()
    verify_mod.verify_range(repo, tip, None, whole)
    verify_mod.settle(verify_mod.Rules([], [], []), whole)


def _unknown_signer(repo: Repo, update: Update, trusted: set[str]) -> str:
    # Verification listed the signers; only a refusal reads the entries again, to name one.
    stop = None if update.old == ZERO else update.old
    for rec in ledger.records(repo, update.new, stop):
        _, keyid = keys.public_with_fingerprint(rec.entry.key)
        if keyid not in trusted:
            return (
                f"ledger entry #{rec.entry.seq} is signed by {keyid}, a key this "
                f"challenge does not know (add it to {constants.SIGNERS_FILE})"
            )
    raise VerificationError("the signers verification listed are not in the ledger")


def pre_receive(stdin: bytes, report: Report) -> int:
    """Run the guard; return the exit code git should see (non-zero refuses the push)."""
    repo = open_repo(".")
    legacy = _hooks_dir(repo) / f"{HOOK}.legacy"
    if legacy.exists() and os.access(legacy, os.X_OK):
        code = _gitcli.run_hook(legacy, [], stdin)
        if code != 0:
            return code
    updates = parse_updates(stdin)
    for update in updates:
        if not update.ref.startswith("refs/coop/"):
            continue
        problem = check(repo, update, updates)
        if problem is not None:
            report(f"gitcoop: refusing {update.ref}: {problem}")
            return int(ExitCode.CHECK_FAILED)
    return 0


def main(argv: list[str]) -> int:
    """Entry point of ``python -m gitcoop hook-impl pre-receive``."""
    del argv  # git passes the pre-receive hook no arguments

    def report(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        return pre_receive(sys.stdin.buffer.read(), report)
    except VerificationError as exc:
        report(f"gitcoop: refusing the push: {exc}")
    except GitcoopError as exc:
        report(f"gitcoop: cannot check this push: {exc}")
    return int(ExitCode.CHECK_FAILED)
