"""Scoring worktrees: what a metric leaves behind never reaches the next commit's run, and
git clean runs only when there is something to remove."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from testing.world import World

from gitcoop import _gitcli, workspace
from gitcoop.git import FileEntry
from gitcoop.session import open_session

TRACKED = [FileEntry("a/b/c.txt", "0" * 40, False), FileEntry("d.txt", "0" * 40, False)]


def _tree(root: Path) -> Path:
    (root / "a/b").mkdir(parents=True)
    (root / "a/b/c.txt").write_text("c")
    (root / "d.txt").write_text("d")
    (root / ".git").write_text("gitdir: elsewhere\n")
    return root


def test_a_worktree_holding_only_tracked_files_needs_no_clean(tmp_path: Path) -> None:
    assert not workspace._untracked(_tree(tmp_path), TRACKED)


@pytest.mark.parametrize(
    "leave",
    [
        lambda r: (r / "stray.txt").write_text("x"),
        lambda r: (r / "a/b/stray.pyc").write_text("x"),
        lambda r: (r / "a/empty").mkdir(),
        lambda r: (r / "a/.git").mkdir(),
        lambda r: ((r / "d.txt").unlink(), (r / "d.txt").mkdir()),
        lambda r: (os.rename(r / "a", r / "real"), (r / "a").symlink_to(r / "real")),
    ],
    ids=["file", "nested-file", "empty-dir", "nested-git", "dir-for-file", "symlink-for-dir"],
)
def test_anything_else_calls_for_git_clean(tmp_path: Path, leave) -> None:
    root = _tree(tmp_path / "wt")
    leave(root)
    assert workspace._untracked(root, TRACKED)


def test_git_clean_runs_only_after_a_metric_left_something(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = world.maintainer()
    first, second = m.commit_score("0.6"), m.commit_score("0.7")
    cleaned: list[Path] = []
    real = _gitcli.worktree_clean
    monkeypatch.setattr(_gitcli, "worktree_clean", lambda p: (cleaned.append(p), real(p)))
    s = open_session(m.repo)
    with workspace.worktree(s.repo) as path:
        workspace.prepare(s.repo, path, first, s.pinned)
        assert cleaned == []
        (path / "out").mkdir()
        (path / "out/run.log").write_text("left by a metric")
        workspace.prepare(s.repo, path, second, s.pinned)
        assert cleaned == [path]
        assert not (path / "out").exists()


LITTERING = textwrap.dedent(
    """\
    import json, pathlib, sys
    litter = ("out/run.log", "pkg/__pycache__/m.pyc", "pkg/new")
    left = [p for p in litter if pathlib.Path(p).exists()]
    if left:
        sys.exit(f"left over from an earlier run: {left}")
    pathlib.Path("out").mkdir()
    pathlib.Path("out/run.log").write_text("x")
    pathlib.Path("pkg/__pycache__").mkdir()
    pathlib.Path("pkg/__pycache__/m.pyc").write_text("x")
    pathlib.Path("pkg/new").mkdir()
    print(json.dumps({"accuracy": float(pathlib.Path("score.txt").read_text())}))
    """
)


def test_files_a_metric_leaves_never_reach_the_next_run(world: World) -> None:
    m = world.maintainer(init_args=None)
    (m.repo / "evaluate.py").write_text(LITTERING)
    (m.repo / ".gitignore").write_text("out/\n__pycache__/\n")
    (m.repo / "pkg").mkdir()
    (m.repo / "pkg/m.py").write_text("")
    m.git("add", ".")
    m.git("commit", "-qm", "a metric that litters")
    m.coop(
        "init",
        "--metric",
        "python evaluate.py",
        "--direction",
        "maximize",
        "--protect",
        "evaluate.py",
    )
    commits = [m.commit_score(f"0.{i}") for i in range(1, 4)]
    out = json.loads(m.coop("evaluate", "--json", *commits).stdout)
    assert [o["score"] for o in out] == ["0.1", "0.2", "0.3"]
    assert all(o["attested"] for o in out)
