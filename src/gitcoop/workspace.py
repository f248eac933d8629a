"""Scoring worktrees: one reused, locked worktree per parallel job, switched per commit.

After the switch, the protected paths are replaced by the pinned snapshot, so the metric
always runs the challenge's own evaluator and data.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from gitcoop import _gitcli, constants
from gitcoop.errors import GitOperationError, MetricError
from gitcoop.git import FileEntry, Repo
from gitcoop.pinned import Pinned

_MAX_WORKTREES = 64


def local_dir(repo: Repo) -> Path:
    """Return (creating it) the repository-local gitcoop directory under the git dir."""
    path = repo.common_dir / constants.LOCAL_DIR
    path.mkdir(exist_ok=True)
    return path


@contextlib.contextmanager
def worktree(repo: Repo) -> Iterator[Path]:
    """Lend a scoring worktree that no other gitcoop process is using."""
    root = local_dir(repo) / "worktrees"
    root.mkdir(exist_ok=True)
    for i in range(_MAX_WORKTREES):
        lock = os.open(root / f"{i}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            continue
        try:
            path = root / str(i)
            with contextlib.suppress(OSError):  # no worktree there yet, or a broken one
                _drop_stale_index_lock(path)
            yield path
        finally:
            os.close(lock)
        return
    raise MetricError(f"all {_MAX_WORKTREES} scoring worktrees are busy", hint="try again")


def metric_home(path: Path) -> Path:
    """The home directory of metrics run in the worktree at ``path``: beside it, never in
    it (it would count as untracked files there), and held by the same lock."""
    return path.with_name(path.name + ".home")


def prepare(
    repo: Repo, path: Path, commit: str, pinned: Pinned, files: list[FileEntry] | None = None
) -> None:
    """Put ``commit`` into the worktree at ``path`` with the pinned evaluator over it.

    ``files`` is the commit's file listing when the caller already has it. Raises
    MetricError when a pinned data file is missing or does not match its digest.
    """
    tracked = list(repo.files(repo.commit(commit).tree)) if files is None else files
    source = repo.workdir or repo.common_dir
    try:
        if not (path / ".git").exists():
            raise GitOperationError("no worktree yet")
        _gitcli.worktree_checkout(path, commit)
        if _untracked(path, tracked):
            _gitcli.worktree_clean(path)
    except GitOperationError:
        # Missing, or half-made by a run that was killed: build it afresh.
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        _gitcli.worktree_add(source, path, commit)
        if _untracked(path, tracked):
            _gitcli.worktree_clean(path)
    _overlay(repo, path, tracked, pinned)
    _check_data(path, pinned)


def _untracked(root: Path, files: list[FileEntry]) -> bool:
    """Whether ``git clean -ffdx`` would find anything to remove: any entry that is not a
    tracked file or a directory on the way to one.

    Most metrics leave nothing behind, and a directory scan costs far less than a git
    process. When in doubt (an unreadable directory, a file where a directory belongs, a
    symlink in place of a directory, names the filesystem spells differently) it answers
    True, and git clean decides.
    """
    dirs: dict[str, set[str]] = {"": set()}
    for f in files:
        parent, _, name = f.path.rpartition("/")
        children = dirs.get(parent)
        if children is None:
            children = dirs[parent] = set()
            child = parent
            while child:
                up, _, base = child.rpartition("/")
                known = up in dirs
                dirs.setdefault(up, set()).add(base)
                if known:
                    break
                child = up
        children.add(name)
    try:
        return _strays(root, "", dirs)
    except OSError:
        return True


def _strays(root: Path, rel: str, dirs: dict[str, set[str]]) -> bool:
    wanted = dirs[rel]
    with os.scandir(root / rel if rel else root) as entries:
        for e in entries:
            if e.name not in wanted:
                if rel or e.name != ".git":  # the worktree's own link to the repository
                    return True
                continue
            sub = f"{rel}/{e.name}" if rel else e.name
            is_dir = e.is_dir(follow_symlinks=False)
            if sub in dirs:
                if not is_dir or _strays(root, sub, dirs):
                    return True
            elif is_dir:
                return True
    return False


def _drop_stale_index_lock(path: Path) -> None:
    # Called with this worktree's flock just taken: a leftover index.lock is from a killed
    # run of ours.
    pointer = (path / ".git").read_text(encoding="utf-8", errors="replace").strip()
    if pointer.startswith("gitdir:"):
        (Path(pointer.removeprefix("gitdir:").strip()) / "index.lock").unlink(missing_ok=True)


def _overlay(repo: Repo, path: Path, tracked: list[FileEntry], pinned: Pinned) -> None:
    for f in tracked:
        if pinned.challenge.is_protected(f.path):
            (path / f.path).unlink(missing_ok=True)
    for f in repo.files(pinned.tree):
        target = path / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(repo.read_blob(f.blob))
        os.chmod(target, 0o755 if f.executable else 0o644)


def _check_data(path: Path, pinned: Pinned) -> None:
    for rel, want in pinned.challenge.data:
        try:
            got = "sha256:" + _sha256_file(path / rel)
        except FileNotFoundError:
            raise MetricError(
                f"pinned data file {rel} is missing", hint="commit it or provide it before scoring"
            ) from None
        if got != want:
            raise MetricError(
                f"data file {rel} does not match its pinned digest",
                hint=f"expected {want}, found {got}",
            )


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
