"""Every command has help and a section in docs/cli.md; the README opens with the two commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gitcoop.cli import (
    anchor_contract_app,
    app,
    challenge_app,
    ci_app,
    hook_app,
    key_app,
    round_app,
    server_app,
)

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    names = [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    names += [f"key {c.name}" for c in key_app.registered_commands]
    names += [f"hook {c.name}" for c in hook_app.registered_commands]
    names += [f"server {c.name}" for c in server_app.registered_commands]
    names += [f"challenge {c.name}" for c in challenge_app.registered_commands]
    names += [f"ci {c.name}" for c in ci_app.registered_commands]
    names += [f"round {c.name}" for c in round_app.registered_commands]
    names += [f"anchor-contract {c.name}" for c in anchor_contract_app.registered_commands]
    return names


def test_every_command_is_documented() -> None:
    text = (ROOT / "docs/cli.md").read_text()
    for name in _commands():
        top = name.split()[0]
        assert f"## git coop {top}" in text, name
        assert f"git coop {name}" in text, name


@pytest.mark.parametrize("name", _commands())
def test_every_command_has_help(name: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gitcoop", *name.split(), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout


def test_readme_opens_with_the_two_commands() -> None:
    lines = [ln for ln in (ROOT / "README.md").read_text().splitlines() if ln.strip()]
    block = lines[lines.index("```sh") + 1 : lines.index("```sh") + 3]
    assert [ln.split()[:2] for ln in block] == [["make", "demo"], ["make", "test"]]


def test_the_threat_model_names_only_tests_that_exist() -> None:
    text = (ROOT / "docs/threat-model.md").read_text()
    named = set(re.findall(r"`(tests/test_\w+\.py)::(\w+)`", text))
    assert len(named) > 50  # the table names its tests this way
    missing = [
        f"{path}::{name}"
        for path, name in sorted(named)
        if not (ROOT / path).exists()
        or not re.search(rf"^def {name}\(", (ROOT / path).read_text(), flags=re.M)
    ]
    assert not missing, missing
