"""The git command-line boundary: porcelain that must behave like the user's own git.

Fetch, push, worktrees and hook configuration run the user's ``git`` binary with their
configuration, credential helpers and hooks. See docs/decisions/0004 for why this is a
direct ``subprocess`` call and not GitPython.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from gitcoop.errors import GitOperationError, disk_hint


def _clean_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    # Inside hooks git exports GIT_DIR, GIT_INDEX_FILE and friends; a nested git acting
    # on another worktree must not inherit them.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _KEEP}
    env.update(extra or {})
    return env


# Identity, protocol and config isolation chosen by the user still apply to nested git.
_KEEP = frozenset(
    {
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_AUTHOR_DATE",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_COMMITTER_DATE",
        "GIT_CONFIG_NOSYSTEM",
        "GIT_CONFIG_GLOBAL",
        "GIT_ALLOW_PROTOCOL",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_ASKPASS",
        "GIT_TERMINAL_PROMPT",
        "GIT_TEMPLATE_DIR",
    }
)


class Running:
    """A git command started in the background; ``wait`` collects it.

    As a context manager it is always waited for, so no git process outlives the caller.
    """

    def __init__(
        self,
        cwd: Path,
        args: tuple[str, ...],
        env: Mapping[str, str] | None,
        *,
        feed: bool = False,
    ) -> None:
        # Imported here: the idle pre-push hook loads this module and never runs git.
        import subprocess

        self._args = args
        try:
            self._proc = subprocess.Popen(
                ["git", *args],
                cwd=cwd,
                env=_clean_env(env),
                stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise GitOperationError(
                f"cannot run git: {exc.strerror}", hint="install git and put it on PATH"
            ) from None

    def wait(self) -> str:
        """Return the command's stdout (trailing newline stripped).

        Raises GitOperationError naming the subcommand and git's last line of complaint.
        """
        out, err = self._proc.communicate()
        if self._proc.returncode != 0:
            detail = err.decode("utf-8", errors="replace").strip().splitlines()
            # A server's own reason (its hooks speak as "remote: ...") says more than git's
            # closing "failed to push some refs".
            said = [ln.strip() for ln in detail if ln.startswith("remote:") and ln[7:].strip()]
            # git's own "fatal:" line names the problem; the lines after it are advice.
            said = said or [ln.strip() for ln in detail if ln.startswith("fatal:")][:1]
            # A lock left by a killed git: only this line names the file, the rest is advice.
            lock = [ln.strip() for ln in detail if ln.startswith("error: cannot lock ref")][:1]
            hint = None
            if lock and not said:
                said, hint = lock, "if no other git or gitcoop process runs, remove that lock file"
            last = (
                said or [ln.strip() for ln in detail] or [f"exit status {self._proc.returncode}"]
            )[-1]
            # A full or failing disk: git quotes strerror, and the fix is the disk's.
            hint = hint or disk_hint(err.decode("utf-8", errors="replace"))
            raise GitOperationError(f"git {_subcommand(self._args)} failed: {last}", hint=hint)
        return out.decode("utf-8", errors="replace").rstrip("\n")

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc.returncode is None:
            self._proc.communicate()


def _subcommand(args: tuple[str, ...]) -> str:
    # The first word after any ``-c name=value`` options.
    i = 0
    while i + 1 < len(args) and args[i] == "-c":
        i += 2
    return args[i] if i < len(args) else "?"


def git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run ``git args`` in ``cwd`` and return its stdout (trailing newline stripped).

    Raises GitOperationError naming the subcommand and git's last line of complaint.
    """
    return Running(cwd, args, env).wait()


def worktree_add(repo_dir: Path, path: Path, commit: str) -> None:
    """Register a detached worktree at ``path`` checked out at ``commit``."""
    git(repo_dir, "worktree", "prune")
    # Twice --force: the path may still be registered (and locked) by a killed run.
    git(repo_dir, "worktree", "add", "--detach", "--force", "--force", "--quiet", str(path), commit)
    git(repo_dir, "worktree", "lock", "--reason", "gitcoop scoring worktree", str(path))


def worktree_checkout(path: Path, commit: str) -> None:
    """Switch a scoring worktree to ``commit``, discarding changes to tracked files."""
    git(path, "checkout", "--detach", "--force", "--quiet", commit)


def worktree_clean(path: Path) -> None:
    """Remove every untracked or ignored file and directory from a worktree."""
    git(path, "clean", "-ffdxq")


def hooks_dir(repo_dir: Path) -> tuple[Path, str | None]:
    """Return the hooks directory git uses and the ``core.hooksPath`` value if one is set."""
    try:
        custom: str | None = git(repo_dir, "config", "--get", "core.hooksPath")
    except GitOperationError:
        custom = None
    path = git(repo_dir, "rev-parse", "--git-path", "hooks")
    return (repo_dir / path).resolve(), custom


def commit_paths(repo_dir: Path, paths: list[str], message: str) -> None:
    """Stage ``paths`` and commit them with ``message`` (the user's hooks run as usual)."""
    git(repo_dir, "add", "--", *paths)
    git(repo_dir, "commit", "--quiet", "-m", message, "--", *paths)


def push_ref(
    repo_dir: Path, remote: str, ref: str, *, expect: str | None, env: Mapping[str, str]
) -> None:
    """Push ``ref`` to ``remote`` as a compare-and-swap (never a forced overwrite)."""
    lease = f"--force-with-lease={ref}:{expect or ''}"
    argv = ["push", "--quiet", "--no-verify", "--atomic", lease, remote, f"{ref}:{ref}"]
    git(repo_dir, *argv, env=env)


def fetch_refs(
    repo_dir: Path, remote: str, pattern: str, into: str, env: Mapping[str, str]
) -> Running:
    """Start mirroring the remote's refs matching ``pattern`` (a ``refs/x/*`` glob) under
    ``into``; ``wait()`` on the result finishes it.

    One round trip; a remote without such refs is not an error, and refs it no longer has
    are pruned from ``into``. No automatic maintenance: this fetch brings only ledger
    objects, often in the middle of a push, and the user's own git commands still run it.
    """
    args = ("fetch", "--quiet", "--no-tags", "--prune", "--no-write-fetch-head", "--no-auto-gc")
    return Running(repo_dir, (*args, remote, f"+{pattern}:{into}"), env)


def run_hook(path: Path, argv: list[str], stdin: bytes) -> int:
    """Run a kept foreign hook with git's arguments and input; return its exit status."""
    import subprocess

    return subprocess.run([str(path), *argv], input=stdin, check=False).returncode


def feed(
    cwd: Path,
    args: tuple[str, ...],
    chunks: Iterable[bytes],
    env: Mapping[str, str] | None = None,
) -> str:
    """Run ``git args`` in ``cwd`` with ``chunks`` written to its standard input, in order
    and as they come (the whole input is never held at once); return its stdout. The
    command must say little before it has read everything (as ``fast-import --quiet``).

    Raises GitOperationError like ``git``, also when git exits before reading everything.
    """
    with Running(cwd, args, env, feed=True) as running:
        pipe = running._proc.stdin
        assert pipe is not None
        try:
            for chunk in chunks:
                pipe.write(chunk)
        except BrokenPipeError:
            pass  # git stopped reading: wait() reports why
        finally:
            with contextlib.suppress(BrokenPipeError):
                pipe.close()
            running._proc.stdin = None  # closed: Python 3.11's communicate() would flush it
        return running.wait()
