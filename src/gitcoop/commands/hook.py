"""The pre-push hook: score what the push brings to the challenge branch, then publish."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitcoop import cache, constants, hooks, ledger
from gitcoop.errors import ExitCode, GitcoopError, os_failure
from gitcoop.git import ZERO, Repo, open_repo
from gitcoop.session import Session, open_session, signer_for

Report = Callable[[str], None]


@dataclass(frozen=True)
class PushLine:
    """One line of git's pre-push input."""

    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str


def parse_lines(data: bytes) -> list[PushLine]:
    """Parse pre-push stdin (``<local ref> <local sha> <remote ref> <remote sha>`` lines)."""
    return [PushLine(*fields) for fields in hooks.input_lines(data, 4)]


def _run_legacy(git_dir: Path, argv: list[str], stdin: bytes) -> int:
    legacy = hooks.legacy_hook(git_dir)
    if legacy is None:
        return 0
    import subprocess  # here: the idle hook (no foreign hook kept) starts no process

    env = {**os.environ, constants.HOOK_GUARD_ENV: ""}
    return subprocess.run([str(legacy), *argv], input=stdin, env=env, check=False).returncode


def commits_to_score(s: Session, remote: str, lines: list[PushLine]) -> list[str]:
    """New commits this push brings to the challenge branch, parents first."""
    branch = f"refs/heads/{s.pinned.challenge.branch}"
    hide = [*s.repo.refs_with_prefix(f"refs/remotes/{remote}/"), s.baseline]
    out: list[str] = []
    for line in lines:
        if line.remote_ref != branch or line.local_sha == ZERO:
            continue
        known = [line.remote_sha] if line.remote_sha != ZERO else []
        out.extend(c for c in s.repo.new_commits(line.local_sha, hide + known) if c not in out)
    return out


def _pending_publish(repo: Repo, remote: str) -> bool:
    # incoming, not sync: the idle path must not load verification to name a ref
    from gitcoop.incoming import staging_ref

    local = repo.ref(constants.LEDGER_REF)
    return local is not None and local != repo.ref(staging_ref(remote))


def _unattested(s: Session, commits: list[str]) -> list[str]:
    index = cache.load_index(s.repo, s.local)
    return [c for c in commits if index.score(c, s.pinned.digest) is None]


def pre_push(remote: str, url: str, stdin: bytes, report: Report) -> int:
    """Run the hook; return the exit code git should see (non-zero refuses the push)."""
    repo = open_repo(".")
    code = _run_legacy(repo.git_dir, [remote, url], stdin)
    if code != 0 or ledger.head(repo) is None:
        return code
    s = open_session(".")
    lines = parse_lines(stdin)
    commits = commits_to_score(s, remote, lines)
    branch = f"refs/heads/{s.pinned.challenge.branch}"
    touches = any(ln.remote_ref == branch and ln.local_sha != ZERO for ln in lines)
    if not _unattested(s, commits) and not (touches and _pending_publish(repo, remote)):
        return 0  # the idle path: no network, no signing key
    # Only now the modules a real push needs: the idle path above stays light.
    from gitcoop import incoming, notes, sync

    workdir = repo.workdir or repo.common_dir
    try:
        # Take the remote's entries first: parents scored by others need no second run.
        # The signing key and the scoring code load while the fetch is on the wire.
        with incoming.start_fetch(workdir, remote) as fetching:
            score = _scorer(s, report) if commits else None
            taken = sync.sync(repo, workdir, remote, push=False, started=fetching)
        if taken.dropped:
            report(
                f"gitcoop: warning: dropped {taken.dropped} local entries made under a "
                "challenge version the remote has replaced (git coop evaluate scores them again)"
            )
        if score is not None:
            s = open_session(".")
            failed = score(s, _unattested(s, commits))
            if failed is not None:
                return failed
        pushed = sync.publish(repo, workdir, remote)
    except GitcoopError as exc:
        report(f"gitcoop: {exc}")
        return int(exc.exit_code)
    finally:
        # The ledger may have moved (fetched, scored, re-linked), even when the push stops.
        notes.warn_on_failure(repo, s.local, report)
    if pushed:
        report(f"gitcoop: published the ledger to {remote}")
    return 0


def _scorer(s: Session, report: Report) -> Callable[[Session, list[str]], int | None]:
    """Load the signing key and the scoring code; return what scores commits and says
    which exit code refuses the push (None: go ahead)."""
    from gitcoop.commands.evaluate import evaluate, first_error

    key, signer, _ = signer_for(s.repo, s.repo.workdir)

    def score(s: Session, commits: list[str]) -> int | None:
        error = first_error(evaluate(s, commits, key, signer, report=report))
        if error is None:
            return None
        if s.pinned.challenge.on_error == "warn":
            report(f"gitcoop: warning: {error.message}; pushing unscored (hook.on_error: warn)")
            return None
        report(f"gitcoop: {error.message}")
        report(
            "gitcoop: push refused; fix the metric, or skip scoring once with "
            "`git push --no-verify` (or set hook.on_error: warn)"
        )
        return int(ExitCode.CHECK_FAILED)

    return score


def _from_pre_commit() -> tuple[list[str], bytes] | None:
    """The pre-push arguments and input the pre-commit framework passes as environment
    variables (it reads git's input itself), or None when they are not all there."""
    names = ("REMOTE_NAME", "REMOTE_URL", "LOCAL_BRANCH", "REMOTE_BRANCH", "TO_REF", "FROM_REF")
    got = [os.environ.get(f"PRE_COMMIT_{n}", "") for n in names]
    if not all(got[:4]):
        return None
    remote, url, local_ref, remote_ref, local_sha, remote_sha = got
    if not local_sha:  # a push of the whole history: the framework names no range
        local_sha = _git("rev-parse", "--verify", "-q", f"{local_ref}^{{commit}}") or ZERO
    if not remote_sha or set(remote_sha) == {"0"} or not _is_remote_tip(remote_sha):
        remote_sha = ZERO  # pre-commit names a base of its own for a new branch
    line = f"{local_ref} {local_sha} {remote_ref} {remote_sha}\n"
    return ["pre-push", remote, url], line.encode()


def _is_remote_tip(sha: str) -> bool:
    # Only a commit the remote-tracking refs know is what the remote holds.
    return bool(_git("for-each-ref", "--format=%(objectname)", "--points-at", sha, "refs/remotes/"))


def _git(*args: str) -> str:
    import subprocess

    out = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    return out.stdout.strip()


def main(argv: list[str]) -> int:
    """Entry point of ``python -m gitcoop hook-impl pre-push REMOTE URL``, and of
    ``hook-impl pre-commit`` (the pre-commit framework's pre-push stage)."""
    if os.environ.get(constants.HOOK_GUARD_ENV):
        return 0
    stdin = b""
    if argv[:1] == ["pre-commit"]:
        framework = _from_pre_commit()
        if framework is None:
            print(
                "gitcoop: hook-impl pre-commit runs in the pre-commit framework's pre-push "
                "stage (stages: [pre-push]); its PRE_COMMIT_* variables are missing",
                file=sys.stderr,
            )
            return int(ExitCode.USAGE)
        argv, stdin = framework
    elif len(argv) < 3 or argv[0] != "pre-push":
        print("gitcoop: usage: hook-impl pre-push REMOTE URL", file=sys.stderr)
        return int(ExitCode.USAGE)
    else:
        stdin = sys.stdin.buffer.read()
    for name in [k for k in os.environ if k.startswith("GIT_") and k in _HOOK_VARS]:
        del os.environ[name]  # git exports these to hooks; they must not leak into worktrees

    def report(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    return _reported(lambda: pre_push(argv[1], argv[2], stdin, report), report)


def _reported(hook: Callable[[], int], report: Report) -> int:
    """Run ``hook``; a failure is one line through ``report`` and the exit code git sees."""
    try:
        return hook()
    except GitcoopError as exc:
        report(f"gitcoop: {exc}")
        return int(exc.exit_code)
    except OSError as exc:  # one no write site named: the disk's reason, not "internal"
        if os.environ.get("GITCOOP_DEBUG"):
            raise
        failure = os_failure(exc)
        report(f"gitcoop: {failure}")
        return int(failure.exit_code)
    except Exception as exc:
        if os.environ.get("GITCOOP_DEBUG"):
            raise
        report(
            f"gitcoop: internal error: {type(exc).__name__}: {exc}; push with --no-verify "
            "to skip scoring, and please report it (GITCOOP_DEBUG=1 shows the traceback)"
        )
        return int(ExitCode.CHECK_FAILED)


_HOOK_VARS = frozenset(
    {
        "GIT_DIR",
        "GIT_INDEX_FILE",
        "GIT_WORK_TREE",
        "GIT_PREFIX",
        "GIT_OBJECT_DIRECTORY",
        "GIT_QUARANTINE_PATH",
    }
)
