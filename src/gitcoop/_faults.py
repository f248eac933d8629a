"""Fault injection for the crash and I/O-fault tests (docs/cli.md, "Fault injection").

``GITCOOP_FAULT=<area>:<point>`` kills the process with SIGKILL when it reaches that named
point. ``GITCOOP_FAULT=io:<error>[:<step>[:<name>]]`` makes local writes fail as a disk
would: ``<error>`` is an errno name (``enospc``, ``eio``, ``erofs``...), ``<step>`` one of
:data:`IO_STEPS` (any step when left out) and ``<name>`` whole components of the file's
path or the ref's name (``verified.json``, ``scores``, ``refs/coop/ledger``; any file when
left out). The fault stays on for the whole run, as a full disk does.

Unset, a point costs one environment look-up. Nothing is imported here that the pre-push
hook does not already load.
"""

from __future__ import annotations

import os

ENV = "GITCOOP_FAULT"

# write: a file's data; fsync: the file's own; rename: a temp file onto its name; dirsync:
# the directory after a rename or a new file; object: a git object; ref: a git ref update.
IO_STEPS = ("write", "fsync", "rename", "dirsync", "object", "ref")


def hit(area: str, point: str) -> None:
    """Die here, as a crash would (nothing flushed, no ``finally`` run, no lock released
    by us), when ``GITCOOP_FAULT`` names ``area:point``; otherwise do nothing."""
    wanted = os.environ.get(ENV)
    if wanted is not None and wanted == f"{area}:{point}":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def io(step: str, target: str | os.PathLike[str]) -> None:
    """Raise the OSError ``GITCOOP_FAULT=io:...`` asks for when a local write of
    ``target`` (a path, or a ref's name) reaches ``step``; otherwise do nothing."""
    wanted = os.environ.get(ENV)
    if wanted is None or not wanted.startswith("io:"):
        return
    import errno

    _, name, *rest = wanted.split(":", 3)
    code = getattr(errno, name.upper(), None)
    if not isinstance(code, int) or (rest and rest[0] not in IO_STEPS):
        raise ValueError(f"{ENV}={wanted}: expected io:<errno name>[:<step>[:<name>]]")
    path = os.fspath(target)
    if rest and rest[0] != step:
        return
    if len(rest) > 1 and f"/{rest[1]}/" not in f"/{path}/":
        return
    raise OSError(code, os.strerror(code), path)
