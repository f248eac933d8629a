"""One exception root for gitcoop; the CLI renders it once and maps it to an exit code."""

from __future__ import annotations

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
