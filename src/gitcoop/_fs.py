"""Local files are replaced atomically: temp file, fsync, rename, fsync of the directory.

A write that fails raises :class:`~gitcoop.errors.LocalIOError` naming the file, the reason
and the fix, never a bare OSError; ``GITCOOP_FAULT=io:...`` injects such failures at each
step (gitcoop._faults).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from gitcoop import _faults
from gitcoop.errors import write_failed

KEPT = "it was left as it was"


def atomic_write(path: Path, data: bytes, mode: int = 0o644, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file.

    ``durable=False`` skips the directory fsync, for caches: a crash may then lose the
    rename, never leave a torn file. Raises LocalIOError on any write or fsync failure; the
    previous file is then untouched (but for a failing directory fsync, after the rename:
    the error then says the new file may not last).
    """
    import tempfile  # here: loading it costs the idle pre-push hook, which writes nothing

    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            _faults.io("write", path)
            fh.write(data)
            fh.flush()
            _faults.io("fsync", path)
            # One try only: after a failed fsync the kernel may have dropped the dirty
            # pages, and a second fsync that succeeds proves nothing (fsyncgate).
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        _faults.io("rename", path)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):  # the cause matters, not a failed clean-up
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise write_failed(exc, path, after=KEPT) from exc
        raise
    if durable:
        fsync_dir(path.parent, wrote=path)


def fsync_dir(path: Path, *, wrote: Path | None = None) -> None:
    """Make a rename or a new file in ``path`` durable (``wrote``: the file, for the error
    message). Raises LocalIOError when the directory cannot be synced."""
    try:
        dirfd = os.open(path, os.O_RDONLY)
        try:
            _faults.io("dirsync", path)
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
    except OSError as exc:
        after = "it holds the new content, which a crash may still undo"
        raise write_failed(exc, wrote or path, after=after if wrote else "") from exc


def read_or_none(path: Path) -> bytes | None:
    """Return a file's bytes, or None when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the block; the kernel
    drops it if the process dies, so a killed holder leaves nothing stale."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
