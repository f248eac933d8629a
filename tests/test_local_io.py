"""Local I/O helpers: background git commands are always collected, and cache writes stay
atomic without paying for a directory fsync."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitcoop import _fs, _gitcli
from gitcoop.errors import GitOperationError


def test_a_background_git_is_finished_even_when_the_caller_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), _gitcli.Running(tmp_path, ("init", "-q", "x"), None) as g:
        raise RuntimeError("the caller gave up")
    assert (tmp_path / "x/.git").is_dir()
    assert g.wait() == ""


def test_a_background_git_reports_git_s_complaint(tmp_path: Path) -> None:
    with pytest.raises(GitOperationError, match=r"git fetch failed: .*not a git repository"):
        _gitcli.Running(tmp_path, ("fetch", str(tmp_path / "gone")), None).wait()


@pytest.mark.parametrize("durable", [True, False])
def test_atomic_write_fsyncs_the_directory_only_when_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    synced: list[Path] = []
    monkeypatch.setattr(_fs, "fsync_dir", lambda path, **_: synced.append(path))
    target = tmp_path / "sub" / "entry.json"
    _fs.atomic_write(target, b"old")
    _fs.atomic_write(target, b"new", durable=durable)
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["entry.json"]
    assert len(synced) == (2 if durable else 1)
