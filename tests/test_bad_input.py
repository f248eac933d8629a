"""Bad input: one clear line, a non-zero exit, and refs and files left as they were."""

from __future__ import annotations

import os
import textwrap

import pytest
from testing.world import Player, World, run


def _state(p: Player) -> tuple[str | None, str | None, str]:
    return p.ref("refs/coop/ledger"), p.ref("HEAD"), p.git("status", "--porcelain").stdout


def _one_line_error(out, code: int) -> str:
    assert out.returncode == code, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


def test_not_a_git_repository(tmp_path) -> None:
    out = run(tmp_path, "git", "coop", "verify", check=False)
    assert "not a git repository" in _one_line_error(out, 2)


def test_no_commits(tmp_path) -> None:
    run(tmp_path, "git", "init", "-q")
    out = run(
        tmp_path, "git", "coop", "init", "--metric", "true", "--direction", "maximize", check=False
    )
    assert "no commits" in _one_line_error(out, 2)


def test_init_needs_metric_and_direction(world: World) -> None:
    m = world.maintainer(init_args=None)
    out = m.coop("init", check=False)
    assert "--metric and --direction" in _one_line_error(out, 2)
    assert not (m.repo / ".coop").exists()


def test_bad_direction_is_a_usage_error(world: World) -> None:
    m = world.maintainer(init_args=None)
    out = m.coop("init", "--metric", "python evaluate.py", "--direction", "up", check=False)
    assert out.returncode == 2
    assert not (m.repo / ".coop").exists()


METRICS = {
    "exits non-zero": ("import sys; sys.exit(3)", "exited with status 3"),
    "prints nothing": ("pass", "printed nothing"),
    "prints NaN": ("print('NaN')", "NaN"),
    "prints Infinity": ("print('{\"score\": Infinity}')", "Infinity"),
    "prints text": ("print('great model!')", "not a score"),
    "runs past its timeout": ("import time; time.sleep(30)", "timed out"),
    "leaves children behind": (
        "import subprocess; subprocess.Popen(['sleep', '30']); print(0.5)",
        "left processes",
    ),
}


@pytest.mark.parametrize("case", sorted(METRICS))
def test_init_with_a_broken_metric_changes_nothing(world: World, case: str) -> None:
    m = world.maintainer(init_args=None)
    (m.repo / "metric.py").write_text(METRICS[case][0] + "\n")
    m.git("add", "metric.py")
    m.git("commit", "-qm", "metric")
    before = _state(m)
    out = m.coop(
        "init",
        "--metric",
        "python metric.py",
        "--direction",
        "maximize",
        "--timeout",
        "2",
        check=False,
    )
    line = _one_line_error(out, 1)
    assert METRICS[case][1] in line and "could not be scored" in line
    assert _state(m) == before
    assert not (m.repo / ".coop").exists()


@pytest.mark.parametrize("case", sorted(METRICS))
def test_evaluate_with_a_broken_metric_appends_nothing(world: World, case: str) -> None:
    m = world.maintainer(init_args=None)
    (m.repo / "metric.py").write_text(
        textwrap.dedent(f"""\
        import pathlib
        if pathlib.Path("broken").exists():
            {METRICS[case][0]}
        else:
            print(0.5)
        """)
    )
    m.git("add", "metric.py")
    m.git("commit", "-qm", "metric")
    m.coop("init", "--metric", "python metric.py", "--direction", "maximize", "--timeout", "2")
    (m.repo / "broken").write_text("")
    m.git("add", "broken")
    m.git("commit", "-qm", "break it")
    before = _state(m)
    out = m.coop("evaluate", check=False)
    assert out.returncode == 1
    assert METRICS[case][1] in out.stderr and "Traceback" not in out.stderr
    assert _state(m) == before


def test_group_readable_key_is_refused(world: World) -> None:
    m = world.maintainer()
    key = m.home / "keys/id_ed25519"
    os.chmod(key, 0o640)
    m.commit_score("0.6")
    before = _state(m)
    out = m.coop("evaluate", check=False)
    line = _one_line_error(out, 2)
    assert "UNPROTECTED PRIVATE KEY FILE" in line and "chmod 600" in line
    assert _state(m) == before


def test_unreadable_key_is_refused(world: World) -> None:
    m = world.maintainer()
    key = m.home / "keys/id_ed25519"
    key.write_text("not a key")
    os.chmod(key, 0o600)
    m.commit_score("0.6")
    out = m.coop("evaluate", check=False)
    assert "not an unencrypted OpenSSH Ed25519 private key" in _one_line_error(out, 2)


def test_key_inside_work_tree_is_refused(world: World) -> None:
    m = world.maintainer()
    m.env["GITCOOP_HOME"] = str(m.repo / "keys-here")
    m.commit_score("0.6")
    out = m.coop("evaluate", check=False)
    assert "inside the work tree" in _one_line_error(out, 2)
    assert not (m.repo / "keys-here").exists()


def test_unknown_revision(world: World) -> None:
    m = world.maintainer()
    out = m.coop("evaluate", "no-such-branch", check=False)
    assert "unknown revision" in _one_line_error(out, 2)


def test_commands_without_a_ledger(world: World) -> None:
    m = world.maintainer(init_args=None)
    for cmd in (("evaluate",), ("credit",), ("log",), ("show",), ("verify",)):
        out = m.coop(*cmd, check=False)
        assert "no gitcoop ledger" in _one_line_error(out, 2), cmd


def test_malformed_challenge_file_names_key_and_line(world: World) -> None:
    m = world.maintainer(init_args=None)
    (m.repo / ".coop").mkdir()
    (m.repo / ".coop/challenge.yaml").write_text(
        "version: 1\nname: toy\nmetric:\n  command: python evaluate.py\n"
        "  direction: maximize\n  comand: oops\n"
    )
    m.git("add", ".coop")
    m.git("commit", "-qm", "challenge")
    before = _state(m)
    out = m.coop("init", check=False)
    line = _one_line_error(out, 2)
    assert ".coop/challenge.yaml:6" in line and "comand" in line
    assert _state(m) == before


_BROKEN_IMPORT = """
import sys
class Truncated:  # what importlib raises for a truncated .pyc
    def find_spec(self, name, path=None, target=None):
        if name == "gitcoop.commands.key":
            raise EOFError("marshal data too short")
sys.meta_path.insert(0, Truncated())
from gitcoop.__main__ import main
sys.argv = ["git-coop", "key", "generate"]
sys.exit(main())
"""


def test_an_eof_outside_a_prompt_is_named_not_taken_for_an_abort(tmp_path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _BROKEN_IMPORT], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 1, out.stderr
    # (the blank line before it is the command-line framework's, written for a prompt)
    assert out.stderr.strip() == (
        "gitcoop: internal error: EOFError: marshal data too short "
        "(please report it; GITCOOP_DEBUG=1 shows the traceback)"
    )
