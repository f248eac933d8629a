"""A remote's ledger on its way in: the namespace a sync fetches into, and the fetch.

Light on imports on purpose: ``git coop sync`` starts its fetch here before the CLI
framework and the verification code load, so the transfer overlaps the interpreter's
start instead of following it.
"""

from __future__ import annotations

import atexit
import hashlib
import re
from pathlib import Path

from gitcoop import _gitcli, constants
from gitcoop.errors import GitOperationError

GUARD = {constants.HOOK_GUARD_ENV: "1"}  # a fetch or push of ours never runs our hooks

_early: dict[str, _gitcli.Running] = {}


def safe_name(remote: str) -> str:
    """The remote's name as one ref and file name component; a name that had to change
    gets a digest of the original, so ``a/b`` and ``a_b`` never share a pin."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", remote)[:100].lstrip(".") or "remote"
    if safe == remote:
        return safe
    return f"{safe}-{hashlib.sha256(remote.encode()).hexdigest()[:12]}"


def staging_ref(remote: str) -> str:
    """The remote's ledger head as this clone last verified it (a remote-tracking ref)."""
    return f"refs/coop-remote/{safe_name(remote)}/ledger"


def prefix(remote: str) -> str:
    """Where the remote's ``refs/coop/*`` land until the sync has verified them."""
    return f"refs/coop-incoming/{safe_name(remote)}/"


def start_fetch(workdir: Path, remote: str) -> _gitcli.Running:
    """Start fetching the remote's ledger into the incoming namespace, for ``sync`` to
    finish (the hook loads its key and scoring code meanwhile)."""
    return _gitcli.fetch_refs(workdir, remote, "refs/coop/*", prefix(remote) + "*", GUARD)


def start_early(argv: list[str]) -> None:
    """Given the arguments after ``sync``, start its fetch now when they are the plain
    ``[REMOTE] [--retrust]`` form; anything else is left to the CLI to parse (and refuse)."""
    words = [a for a in argv if not a.startswith("-")]
    if len(words) > 1 or any(a.startswith("-") and a != "--retrust" for a in argv):
        return
    remote = words[0] if words else constants.DEFAULT_REMOTE
    try:
        running = start_fetch(Path.cwd(), remote)
    except (GitOperationError, OSError):
        return  # no git to run, or no directory to run it in: the sync itself says so
    _early[remote] = running
    # A sync that never takes it (refused arguments, no repository) still waits for it:
    # no git process outlives gitcoop.
    atexit.register(running.__exit__)


def take_early(remote: str) -> _gitcli.Running | None:
    """The fetch ``start_early`` began for ``remote``, once; None when there is none."""
    return _early.pop(remote, None)
