"""One version everywhere: `git coop --version`, `gitcoop --version`, the installed
metadata, the package and the newest release in CHANGELOG.md."""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib.metadata import entry_points, version
from pathlib import Path

import gitcoop

ROOT = Path(__file__).resolve().parents[1]


def _newest_release() -> str:
    headings = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    releases = [h for h in headings if h != "Unreleased"]
    assert headings[0] == "Unreleased" and releases, headings
    return releases[0]


def test_every_place_names_the_same_version() -> None:
    expected = version("gitcoop")
    assert gitcoop.__version__ == expected
    assert _newest_release() == expected
    for argv in (["git", "coop", "--version"], ["gitcoop", "--version"]):
        out = subprocess.run(argv, capture_output=True, text=True, check=True)
        assert out.stdout == f"gitcoop {expected}\n", argv


def test_both_programs_are_the_same_entry_point() -> None:
    scripts = {e.name: e.value for e in entry_points(group="console_scripts") if e.dist}
    mine = {n: v for n, v in scripts.items() if v.startswith("gitcoop.")}
    assert mine == {"git-coop": "gitcoop.__main__:main", "gitcoop": "gitcoop.__main__:main"}
    assert shutil.which("gitcoop") is not None


def test_the_changelog_keeps_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "Keep a Changelog" in text and "semantic versioning" in text
    for heading in re.findall(r"^## \[(\d[^\]]*)\] - (.*)$", text, re.M):
        assert re.fullmatch(r"\d+\.\d+\.\d+", heading[0]) and re.fullmatch(
            r"\d{4}-\d{2}-\d{2}", heading[1]
        ), heading
    assert "[Unreleased]: " in text and f"[{_newest_release()}]: " in text
