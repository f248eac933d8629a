"""Local I/O helpers: cache writes stay atomic without paying for a directory fsync."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitcoop import _fs


@pytest.mark.parametrize("durable", [True, False])
def test_atomic_write_fsyncs_the_directory_only_when_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    synced: list[Path] = []
    monkeypatch.setattr(_fs, "fsync_dir", synced.append)
    target = tmp_path / "sub" / "entry.json"
    _fs.atomic_write(target, b"old")
    _fs.atomic_write(target, b"new", durable=durable)
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["entry.json"]
    assert len(synced) == (2 if durable else 1)
