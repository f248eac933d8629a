"""One exception root for gitcoop; the CLI renders it once and maps it to an exit code."""

from __future__ import annotations

import errno
import os
from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    """Process exit codes, part of the CLI contract."""

    OK = 0
    CHECK_FAILED = 1  # a verification, evaluation or metric check failed
    USAGE = 2  # bad usage or configuration: the user can fix it
    SECURITY = 3  # evidence of tampering, forking or rollback


class GitcoopError(Exception):
    """Base of every error gitcoop raises on purpose; carries a hint naming the fix."""

    exit_code: ClassVar[ExitCode] = ExitCode.CHECK_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(GitcoopError):
    """The challenge, the repository or the command line is not usable as given."""

    exit_code = ExitCode.USAGE


class NotARepository(ConfigError):
    """The current directory is not inside a git repository."""


class KeyFileError(ConfigError):
    """A signing key is missing, unreadable or unsafely stored."""


class MetricError(GitcoopError):
    """The metric command failed, timed out, or printed no usable score."""


class FormatError(GitcoopError):
    """Bytes that should be a gitcoop record are malformed or not canonical."""


class VerificationError(GitcoopError):
    """A record failed a check: bad signature, broken link, wrong subject."""


class SecurityError(GitcoopError):
    """Evidence of rewriting: the ledger no longer extends what was verified before."""

    exit_code = ExitCode.SECURITY


class LedgerConflict(GitcoopError):
    """The ledger ref moved between read and write; the caller may retry."""


class GitOperationError(GitcoopError):
    """A git command or object operation failed."""


class LocalIOError(GitcoopError, OSError):
    """A local file, git object or ref could not be written: a full disk, a failing one, a
    read-only file system. The message names what and why, the hint the fix. Also an
    OSError, so code that may shrug off a failed cache write still does."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        code: int | None = None,
        filename: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.errno = code
        self.filename = filename


# What each error a disk gives means to the user, and the fix; others say what strerror says.
_DISK_ERRORS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on device", "free some space there, then run the command again"),
    errno.EDQUOT: ("disk quota exceeded", "free some of your quota, then run the command again"),
    errno.EIO: (
        "input/output error (the disk or file system failed)",
        "check the disk and its file system (dmesg, fsck) before you trust it, then run the "
        "command again",
    ),
    errno.EROFS: (
        "read-only file system",
        "remount it read-write or work in a clone on a writable disk, then run the command again",
    ),
    errno.EFBIG: (
        "file too large (a file size limit such as ulimit -f)",
        "raise the limit, then run the command again",
    ),
    errno.EACCES: ("permission denied", "make it writable for you, then run the command again"),
    errno.EPERM: (
        "operation not permitted",
        "make it writable for you, then run the command again",
    ),
}


def disk_error_code(exc: BaseException | str) -> int | None:
    """The errno behind an OSError, or behind a message that only quotes its text (libgit2
    and git say "...: No space left on device"); None when it names none of the errors a
    disk gives."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int):
        return code if code in _DISK_ERRORS else None
    text = str(exc)
    return next((c for c in _DISK_ERRORS if os.strerror(c) in text), None)


def disk_hint(text: str) -> str | None:
    """The fix for the disk error a message quotes, or None when it quotes none."""
    code = disk_error_code(text)
    return None if code is None else _DISK_ERRORS[code][1]


def write_failed(
    exc: BaseException, what: str | os.PathLike[str], *, after: str = ""
) -> LocalIOError:
    """The error to raise when writing ``what`` (a path, or words naming it) failed with
    ``exc``: one line with the reason and what was left (``after``, e.g. "it was left as it
    was"), and the fix. An error that is no disk error (a vanished directory) keeps its own
    words."""
    code = disk_error_code(exc) or getattr(exc, "errno", None)
    meaning, fix = _DISK_ERRORS.get(code or -1, ("", "fix that, then run the command again"))
    if not meaning:
        meaning = (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).lower()
    tail = f"; {after}" if after else ""
    name = os.fspath(what)
    return LocalIOError(f"{meaning} writing {name}{tail}", hint=fix, code=code, filename=name)


def os_failure(exc: OSError) -> GitcoopError:
    """An OSError no caller turned into a GitcoopError (reading or writing, it is not known
    which), as one line: the reason, the file, the fix."""
    code = exc.errno if isinstance(exc.errno, int) else None
    meaning, fix = _DISK_ERRORS.get(code or -1, ("", "fix that, then run the command again"))
    meaning = meaning or (exc.strerror or str(exc) or type(exc).__name__).lower()
    where = f": {os.fspath(exc.filename)}" if exc.filename else ""
    return LocalIOError(f"{meaning}{where}", hint=fix, code=code)
