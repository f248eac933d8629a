"""Architecture rules: each third-party library stays behind its one boundary module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gitcoop"

ALLOWED = {
    "typer": {"cli.py"},
    "pygit2": {"git.py"},
    "git": set(),  # GitPython: not used, see docs/decisions/0004
    # The bridges run the tools they bridge from (RAMP's kit, a CodaLab bundle's programs).
    "subprocess": {"_gitcli.py", "sandbox.py", "reaper.py", "hook.py", "ramp.py", "codalab_run.py"},
    "cryptography": {"keys.py", "dsse.py"},
    # Other formats' YAML: a metrics file, dvc.yaml, competition.yaml (which uses aliases).
    "yaml": {"challenge.py", "metric.py", "dvc.py", "codalab.py"},
    "nacl": {"dsse.py"},
    "requests": {"rest.py", "rpc.py"},
    "eth_account": {"eth.py"},
    "eth_utils": {"eth.py"},
    "click": set(),
}
PURE = {"scoring.py", "canonical.py", "render.py", "report.py", "rewards.py"}  # no I/O, no printing


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


MODULES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_libraries_stay_behind_their_boundaries(path: Path) -> None:
    used = _imports(path)
    for lib, allowed in ALLOWED.items():
        if lib in used:
            assert path.name in allowed, f"{path.name} imports {lib}"


@pytest.mark.parametrize("name", sorted(PURE))
def test_pure_modules_do_no_io(name: str) -> None:
    tree = ast.parse((SRC / name).read_text())
    calls = {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    assert not calls & {"open", "print", "input"}
    assert not _imports(SRC / name) & {"os", "subprocess", "pathlib", "shutil", "sys"}


def test_only_the_cli_and_the_hooks_print() -> None:
    for path in MODULES:
        if path.name in {"cli.py", "hook.py", "server.py"}:
            continue
        tree = ast.parse(path.read_text())
        prints = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"
        ]
        assert not prints, path
