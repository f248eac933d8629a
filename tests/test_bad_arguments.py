"""A bad command line on every command of the tree (walked, so a new command is covered):
an unknown option, one argument too many, and each restricted value made invalid. Each is
exit 2 with one error line on stderr naming the problem and no traceback, in a fresh
repository and outside any."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from gitcoop.cli import command_tree
from gitcoop.manpage import walk

# a couple of hundred short processes: about a minute on two cores
pytestmark = pytest.mark.slow

ROOT = command_tree()
COMMANDS = [((), ROOT), *walk(ROOT)]


def _is_argument(param: Any) -> bool:
    return param.param_type_name == "argument"


def _element(param: Any) -> Any:
    annotation = param.type_descriptor.annotation
    return getattr(annotation, "__args__", (annotation,))[0]


def _valid(param: Any) -> str:
    """A value the parameter accepts, to fill required places around the one under test."""
    desc = param.type_descriptor
    if desc.is_choice:
        first = desc.choices[0]
        return str(first.value if isinstance(first, Enum) else first)
    if _element(param) in (int, float):
        return str(max(param.min or 1, 1))
    return "x"


def _invalid(param: Any) -> list[str]:
    """Values the parameter's type refuses: not a number, under its minimum, not a choice,
    a path that must exist and does not."""
    desc = param.type_descriptor
    if desc.is_choice:
        return ["no-such-choice"]
    if _element(param) in (int, float):
        below = [] if param.min is None else [str(param.min - 1)]
        above = [] if param.max is None else [str(param.max + 1)]
        return ["not-a-number", *below, *above]
    if desc.is_path and desc.parameter_info.exists:
        return ["no/such/path"]
    return []


def _required_options(cmd: Any, but: Any = None) -> list[str]:
    words: list[str] = []
    for p in cmd.params:
        if not _is_argument(p) and p.required and p is not but:
            words += [p.opts[0], _valid(p)]
    return words


def _cases(path: tuple[str, ...], cmd: Any) -> list[tuple[list[str], str]]:
    """(argv after `git coop`, what the error line must name)."""
    words = list(path)
    cases = [([*words, "--no-such-option"], "--no-such-option")]
    if hasattr(cmd, "commands"):
        return [*cases, ([*words, "no-such-command"], "No such command")]
    arguments = [p for p in cmd.params if _is_argument(p)]
    if all(p.nargs == 1 for p in arguments):
        extra = [*words, *_required_options(cmd), *(_valid(p) for p in arguments), "extra"]
        cases.append((extra, "unexpected extra argument"))
    for p in cmd.params:
        for bad in _invalid(p):
            if _is_argument(p):
                cases.append(([*words, *_required_options(cmd), bad], f"'{p.name}'"))
            else:
                cases.append(([*words, p.opts[0], bad, *_required_options(cmd, p)], p.opts[0]))
    return cases


def _run(cwd: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitcoop", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    # `outside` must not be found inside some repository further up
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return [repo, outside]


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "git coop")
def test_a_bad_command_line_is_one_usage_error(path: tuple[str, ...], places: list[Path]) -> None:
    cmd = dict(COMMANDS)[path]
    jobs = [(where, argv, names) for where in places for argv, names in _cases(path, cmd)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        outs = list(pool.map(lambda job: _run(job[0], job[1]), jobs))
    for (where, argv, names), out in zip(jobs, outs, strict=True):
        said = f"git coop {' '.join(argv)} in {where.name}: {out.returncode}\n{out.stderr}"
        assert out.returncode == 2, said
        assert "Traceback" not in out.stderr + out.stdout, said
        lines = out.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("gitcoop: error: "), said
        assert names in lines[0], said


def test_every_kind_of_restricted_value_is_tried() -> None:
    # the walk must keep finding what it checks: numbers, ranges, choices (options and
    # arguments); a typer upgrade that hid these attributes would make the test vacuous
    tried = [(p, bad) for path, cmd in COMMANDS if path for p in cmd.params for bad in _invalid(p)]
    assert any(bad == "no-such-choice" and _is_argument(p) for p, bad in tried)
    assert any(bad == "no-such-choice" and not _is_argument(p) for p, bad in tried)
    assert any(_element(p) is float for p, _ in tried)
    assert any(bad == "0" for p, bad in tried)
    assert len(tried) > 30
