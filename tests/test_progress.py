"""The progress bar of ``evaluate`` and ``rescore``: drawn on a terminal (a real
pseudo-terminal here) and cleared, never mixed into the lines printed around it, silent
when piped, in CI, on a dumb terminal or with --no-progress; and its line formatting."""

from __future__ import annotations

import fcntl
import io
import os
import re
import select
import struct
import subprocess
import termios
import time
import tty
from pathlib import Path

import pytest
from testing.world import Player, World

from gitcoop.progress import Progress, bar_text, elapsed_text, line_text, wanted

COLUMNS = 64
FRAME = re.compile(r"\r(scoring [^\r\n]*)")


def _env(p: Player, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in p.env.items() if k not in ("CI", "TERM", "COLUMNS")}
    return {**env, "TERM": "xterm", **extra}


def _on_terminal(p: Player, *args: str, env: dict[str, str]) -> tuple[str, str]:
    """Run ``git coop ARGS`` with stderr on a pseudo-terminal COLUMNS wide; return (stdout,
    everything written to the terminal)."""
    master, slave = os.openpty()
    tty.setraw(slave)  # no "\n" -> "\r\n" translation: every "\r" read is the program's
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, COLUMNS, 0, 0))
    try:
        proc = subprocess.Popen(
            ["git", "coop", *args],
            cwd=p.repo,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
        )
    finally:
        os.close(slave)
    seen = bytearray()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.05)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the last writer closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
    stdout = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0, (stdout, seen.decode())
    return stdout, seen.decode()


def _piped(p: Player, *args: str, env: dict[str, str]) -> tuple[str, str]:
    out = subprocess.run(
        ["git", "coop", *args], cwd=p.repo, env=env, capture_output=True, check=False
    )
    assert out.returncode == 0, out
    return out.stdout.decode(), out.stderr.decode()


def _screen(text: str) -> list[str]:
    """The lines a terminal shows after ``text`` ("\\r" back to the line's start, later
    characters over earlier ones), trailing blanks dropped."""
    lines: list[str] = []
    row: list[str] = []
    col = 0
    for ch in text + "\n":
        if ch == "\n":
            lines.append("".join(row).rstrip())
            row, col = [], 0
        elif ch == "\r":
            col = 0
        else:
            row[col : col + 1] = [ch]
            col += 1
    return [ln for ln in lines if ln]


def _commits(p: Player, *values: str) -> tuple[str, list[str]]:
    """Commit ``values`` as scores; return the range naming them and the expected stderr
    lines of evaluating it."""
    base = p.head()
    commits = [p.commit_score(v) for v in values]
    return f"{base}..{commits[-1]}", [
        f"scored {c[:12]}: {v}" for c, v in zip(commits, values, strict=True)
    ]


def test_bar_on_a_terminal_is_drawn_fitted_and_cleared(world: World) -> None:
    m = world.maintainer()
    revs, lines = _commits(m, "0.6", "0.7", "0.65")
    stdout, seen = _on_terminal(m, "evaluate", revs, env=_env(m))
    frames = FRAME.findall(seen)
    assert frames and "3/3" in frames[-1] and "100%" in frames[-1], seen
    assert all(len(f) <= COLUMNS - 1 for f in frames), frames  # fits, never wraps
    assert any("[" in f and "]" in f for f in frames)
    # Cleared at the end, and each result line whole on a line of its own.
    assert seen.endswith("\r"), repr(seen[-80:])
    assert _screen(seen) == lines
    assert stdout.count("attested") == 3


def test_parallel_runs_keep_every_line_whole(world: World) -> None:
    m = world.maintainer()
    revs, lines = _commits(m, "0.6", "0.7", "0.65", "0.8")
    _, seen = _on_terminal(m, "evaluate", "-j", "2", revs, env=_env(m))
    assert "4/4" in FRAME.findall(seen)[-1]
    assert sorted(_screen(seen)) == sorted(lines)


def test_quiet_when_piped_in_ci_on_a_dumb_terminal_or_told(world: World) -> None:
    m = world.maintainer()
    cases = {
        "piped": lambda revs: _piped(m, "evaluate", revs, env=_env(m))[1],
        "CI=true": lambda revs: _on_terminal(m, "evaluate", revs, env=_env(m, CI="true"))[1],
        "TERM=dumb": lambda revs: _on_terminal(m, "evaluate", revs, env=_env(m, TERM="dumb"))[1],
        "--no-progress": lambda revs: _on_terminal(
            m, "evaluate", "--no-progress", revs, env=_env(m)
        )[1],
    }
    for i, (case, evaluate) in enumerate(cases.items()):
        revs, lines = _commits(m, f"0.{i}1", f"0.{i}2")
        seen = evaluate(revs)
        assert "\r" not in seen and "scoring" not in seen, case
        assert seen.splitlines() == lines, case


def test_progress_option_draws_when_piped_for_evaluate_and_rescore(world: World) -> None:
    m = world.maintainer()
    revs, lines = _commits(m, "0.6", "0.7")
    _, err = _piped(m, "evaluate", "--progress", revs, env=_env(m))
    assert "2/2" in FRAME.findall(err)[-1]
    assert _screen(err) == lines
    # Unscored commits on the challenge branch (no hook ran: nothing was pushed).
    _, lines = _commits(m, "0.8", "0.9")
    _, err = _piped(m, "rescore", "--progress", env=_env(m, CI="true"))
    assert "2/2" in FRAME.findall(err)[-1]
    assert _screen(err) == lines
    _, err = _piped(m, "rescore", "--progress", env=_env(m))
    assert err == ""  # nothing left to score: no bar at all


def test_only_the_cli_imports_the_display() -> None:
    # The pre-push hook scores through commands.evaluate: it must not pay for the display.
    src = Path(__file__).resolve().parents[1] / "src" / "gitcoop"
    users = {p.name for p in src.rglob("*.py") if "gitcoop.progress" in p.read_text()}
    assert users == {"cli.py"}


# -- formatting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("done", "total", "inner", "expected"),
    [
        (0, 4, 8, "[>       ]"),
        (1, 4, 8, "[==>     ]"),
        (3, 4, 8, "[======> ]"),
        (4, 4, 8, "[========]"),
        (9, 4, 8, "[========]"),  # more done than counted: full, not past the end
        (1, 0, 8, "[>       ]"),  # unknown total
    ],
)
def test_bar_text(done: int, total: int, inner: int, expected: str) -> None:
    assert bar_text(done, total, inner) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "0.0s"), (12.34, "12.3s"), (59.94, "59.9s"), (65, "1m05s"), (7384, "2h03m")],
)
def test_elapsed_text(seconds: float, expected: str) -> None:
    assert elapsed_text(seconds) == expected


COMMIT = "a1b2c3d4e5f6a7b8c9d0" * 2


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        # The bar stops at MAX_BAR (40) however wide the terminal is.
        (
            200,
            "scoring   37/120 [============>                           ]  30%  12.3s  a1b2c3d4e5f6",
        ),
        (80, "scoring   37/120 [==========>                       ]  30%  12.3s  a1b2c3d4e5f6"),
        (51, "scoring   37/120 [=>   ]  30%  12.3s  a1b2c3d4e5f6"),
        # Narrower, whole parts go from the right: the bar, the commit, the time, the %.
        (50, "scoring   37/120  30%  12.3s  a1b2c3d4e5f6"),
        (40, "scoring   37/120  30%  12.3s"),
        (24, "scoring   37/120  30%"),
        (20, "scoring   37/120"),
        (10, "scoring  "),
        (1, ""),
        (0, ""),
    ],
)
def test_line_text_fits_the_width(width: int, expected: str) -> None:
    assert line_text("scoring", 37, 120, 12.34, COMMIT, width) == expected
    assert len(expected) <= max(width - 1, 0)


@pytest.mark.parametrize(
    ("done", "total", "expected"),
    [
        (0, 0, "scoring  0  0.5s  a1b2c3d4e5f6"),  # nothing counted yet
        (5, 0, "scoring  5  0.5s  a1b2c3d4e5f6"),  # total unknown: the count alone
        (0, 1, "scoring  0/1  0.5s  a1b2c3d4e5f6"),  # one commit: no bar
        (1, 1, "scoring  1/1  0.5s  a1b2c3d4e5f6"),
        (0, 2, "scoring  0/2 [>                                      ]   0%  0.5s  a1b2c3d4e5f6"),
    ],
)
def test_line_text_without_a_bar(done: int, total: int, expected: str) -> None:
    assert line_text("scoring", done, total, 0.5, COMMIT, 80) == expected


# -- the display -----------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("env", "tty_", "expected"),
    [
        ({"TERM": "xterm"}, True, True),
        ({}, True, True),
        ({"TERM": "xterm"}, False, False),
        ({"TERM": "xterm", "CI": "true"}, True, False),
        ({"TERM": "xterm", "CI": "1"}, True, False),
        ({"TERM": "xterm", "CI": "false"}, True, True),
        ({"TERM": "xterm", "CI": ""}, True, True),
        ({"TERM": "dumb"}, True, False),
    ],
)
def test_wanted(env: dict[str, str], tty_: bool, expected: bool) -> None:
    stream = Terminal() if tty_ else io.StringIO()
    assert wanted(stream, env) is expected


def test_wanted_on_a_closed_stream() -> None:
    with open(os.devnull, "w") as stream:
        pass
    assert wanted(stream, {}) is False  # isatty raises ValueError


def _display(stream: io.StringIO, clock: Clock, enabled: bool | None = True) -> Progress:
    # A long interval: only the updates draw, never the background thread.
    return Progress("scoring", stream=stream, enabled=enabled, interval=1000, clock=clock)


def test_disabled_writes_the_lines_and_nothing_else() -> None:
    stream, clock = Terminal(), Clock()
    with _display(stream, clock, enabled=False) as bar:
        bar.update(0, 3, COMMIT)
        bar.write("scored a1b2c3d4e5f6: 0.5")
        bar.update(3, 3, COMMIT)
    assert stream.getvalue() == "scored a1b2c3d4e5f6: 0.5\n"


def test_auto_follows_the_stream() -> None:
    assert Progress("x", stream=io.StringIO()).enabled is False


def test_throttled_but_the_last_count_is_drawn_and_then_cleared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    stream, clock = io.StringIO(), Clock()
    with _display(stream, clock) as bar:
        bar.update(0, 3, "c0")  # first: drawn
        clock.now += 0.05
        bar.update(1, 3, "c1")  # too soon: not drawn
        bar.update(2, 3, "c2")
        bar.update(3, 3, "c2")  # the last count: drawn
        drawn = FRAME.findall(stream.getvalue())
        assert [f.split()[1] for f in drawn] == ["0/3", "3/3"]
    out = stream.getvalue()
    assert out.endswith("\r" + " " * len(drawn[-1]) + "\r")
    assert _screen(out) == []
    assert all(len(f) <= 59 for f in drawn)


def test_updates_after_close_draw_nothing() -> None:
    stream, clock = io.StringIO(), Clock()
    bar = _display(stream, clock)
    bar.update(1, 3, "c1")
    bar.close()
    bar.update(3, 3, "c3")  # a worker thread finishing late
    bar.write("scored c3: 0.5")
    bar.close()
    assert _screen(stream.getvalue()) == ["scored c3: 0.5"]
    assert "3/3" not in stream.getvalue()


def test_write_clears_the_bar_and_redraws_it() -> None:
    stream, clock = io.StringIO(), Clock()
    with _display(stream, clock) as bar:
        bar.write("before any update")  # no bar yet: the line alone
        bar.update(1, 4, "c1")
        bar.write("scored c1: 0.5")
        assert stream.getvalue().endswith(
            "scored c1: 0.5\n\r" + FRAME.findall(stream.getvalue())[-1]
        )
    assert _screen(stream.getvalue()) == ["before any update", "scored c1: 0.5"]


def test_a_shorter_frame_blanks_the_rest_of_a_longer_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    stream, clock = io.StringIO(), Clock()
    with _display(stream, clock) as bar:
        bar.update(1, 4, "c" * 12)
        clock.now += 2
        bar.update(4, 4, "")
        assert _screen(stream.getvalue())[-1] == line_text("scoring", 4, 4, 2, "", 80)


def test_background_redraws_keep_the_time_moving() -> None:
    stream = io.StringIO()
    with Progress("scoring", stream=stream, enabled=True, interval=0.01) as bar:
        bar.update(0, 2, "c0")
        deadline = time.monotonic() + 5
        while len(FRAME.findall(stream.getvalue())) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(FRAME.findall(stream.getvalue())) >= 3
    assert _screen(stream.getvalue()) == []
