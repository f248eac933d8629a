"""Tests for gitcoop.metric: running untrusted metric commands and parsing their scores."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import pytest

from gitcoop.decimals import decimal_text, parse_decimal
from gitcoop.errors import ConfigError, FormatError, MetricError
from gitcoop.metric import DEFAULT_OUTPUT_LIMIT, MetricResult, MetricSpec, parse_metric_output
from gitcoop.sandbox import run_metric, scrubbed_env


def _script(tmp_path: Path, body: str, name: str = "metric.py") -> tuple[str, ...]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return (sys.executable, str(path))


def _run(tmp_path: Path, body: str, **spec_args: object) -> MetricResult:
    spec_args.setdefault("timeout", 10.0)
    spec = MetricSpec(argv=_script(tmp_path, body), name="accuracy", **spec_args)  # type: ignore[arg-type]
    return run_metric(spec, tmp_path)


def _is_gone(pid: int) -> bool:
    """Whether ``pid`` has died; zombies count, since some containers never reap orphans."""
    give_up = time.monotonic() + 3.0
    while time.monotonic() < give_up:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat[stat.rfind(")") + 2] in "ZX":
            return True
        time.sleep(0.02)
    return False


def _wait_for_file(path: Path) -> int:
    assert path.exists(), f"the metric never wrote {path.name}"
    return int(path.read_text())


# --- parse_metric_output -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        (b'{"accuracy": 0.91}\n', "0.91"),
        (b'{"loss": 3, "accuracy": 0.910, "notes": "ok"}', "0.91"),
        (b"0.91\n", "0.91"),
        (b"-3", "-3"),
        (b"1e-3\n", "0.001"),
        (b"1E+2", "100"),
        (b"-0.0", "0"),
        (b"epoch 1: 0.5\nepoch 2: 0.7\n0.75\n", "0.75"),  # last line wins
        (b"0.1\n0.2\n", "0.2"),
        (b"0.42\n\n   \n\t\n", "0.42"),  # trailing blank lines ignored
        (b"  0.42  \r\n", "0.42"),
        (b"\xff\xfe junk\n0.5\n", "0.5"),  # undecodable earlier output is harmless
    ],
)
def test_parse_metric_output_accepts(stdout: bytes, expected: str) -> None:
    value = parse_metric_output(stdout, "accuracy")
    assert value == Decimal(expected)
    assert decimal_text(value) == expected


def test_parse_metric_output_uses_no_floats() -> None:
    value = parse_metric_output(b'{"accuracy": 0.1000000000000000055511151231257827}', "accuracy")
    assert value == Decimal("0.1000000000000000055511151231257827")


@pytest.mark.parametrize(
    ("stdout", "fragment"),
    [
        (b"", "printed nothing on stdout"),
        (b"\n  \n\n", "printed nothing on stdout"),
        (b"accuracy is high", "is not a number"),
        (b"0.91 accuracy", "is not a number"),
        (b".5", "is not a number"),
        (b"+0.5", "is not a number"),
        (b"007", "is not a number"),
        (b"NaN", "is not finite"),
        (b"nan", "is not finite"),
        (b"-Infinity", "is not finite"),
        (b"inf", "is not finite"),
        (b'{"accuracy": NaN}', "non-finite constant NaN"),
        (b'{"accuracy": Infinity}', "non-finite constant Infinity"),
        (b'{"accuracy": -Infinity}', "non-finite constant -Infinity"),
        (b'{"accuracy": "nan"}', "as a string"),
        (b'{"accuracy": "0.5"}', "as a string"),
        (b'{"accuracy": true}', "as a boolean"),
        (b'{"accuracy": null}', "as null"),
        (b'{"accuracy": {"value": 0.5}}', "as a nested value"),
        (b'{"accuracy": [0.5]}', "as a nested value"),
        (b'{"loss": 0.5, "f1": 0.7}', "has no key 'accuracy' (its keys: 'loss', 'f1')"),
        (b"{}", "its keys: none"),
        (b'{"accuracy": 0.5', "not valid JSON"),
        (b'{"accuracy": 0.5, "accuracy": 0.9}', "repeats the key 'accuracy'"),
        (b"1e999999", "magnitude is outside"),
        (b"1e-101", "magnitude is outside"),
        (b"1e99999999999999999999999", "exponent is out of range"),
        (b'{"accuracy": 1e999999}', "magnitude is outside"),
        (b'{"accuracy": 0.5, "x": 1e99999999999999999999999}', "exponent is out of range"),
        (b"1." + b"1" * 45, "more than 40 significant digits"),
        (b"1" * 300, "longer than 200 characters"),
    ],
)
def test_parse_metric_output_rejects(stdout: bytes, fragment: str) -> None:
    with pytest.raises(MetricError) as info:
        parse_metric_output(stdout, "accuracy")
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_parse_metric_output_message_shows_truncated_line_and_expectation() -> None:
    with pytest.raises(MetricError) as info:
        parse_metric_output(b"the model scored " + b"very " * 50 + b"well", "accuracy")
    message = str(info.value)
    assert "'the model scored very" in message
    assert "...'" in message
    assert "very " * 30 not in message
    assert 'expected a number such as 0.91 or a JSON object such as {"accuracy": 0.91}' in message


def test_parse_metric_output_survives_deep_nesting() -> None:
    with pytest.raises(MetricError, match="not valid JSON"):
        parse_metric_output(b'{"accuracy": ' + b"[" * 50_000, "accuracy")


def test_trailing_zeros_beyond_digit_limit_are_not_significant() -> None:
    assert parse_metric_output(b"0.5" + b"0" * 60, "accuracy") == Decimal("0.5")


# --- decimals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.910", "0.91"),
        ("1E+2", "100"),
        ("1.0", "1"),
        ("-0.00", "0"),
        ("-0", "0"),
        ("0E-5", "0"),
        ("1e-7", "0.0000001"),
        ("-1.50E+3", "-1500"),
        ("123.456", "123.456"),
        ("10", "10"),
        ("100.00100", "100.001"),
        ("-2.5E-3", "-0.0025"),
    ],
)
def test_decimal_text(value: str, expected: str) -> None:
    assert decimal_text(Decimal(value)) == expected


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_decimal_text_rejects_non_finite(value: str) -> None:
    with pytest.raises(ValueError, match="not a finite decimal"):
        decimal_text(Decimal(value))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", "0"), ("-1.25", "-1.25"), ("0.910", "0.91"), ("1e-3", "0.001"), ("2E+3", "2000")],
)
def test_parse_decimal_accepts(text: str, expected: str) -> None:
    value = parse_decimal(text)
    assert value.is_finite()
    assert decimal_text(value) == expected


@pytest.mark.parametrize(
    "text", ["", " 1", "1 ", "+1", "01", ".5", "1.", "1e", "NaN", "Infinity", "1e999999", "0x10"]
)
def test_parse_decimal_rejects(text: str) -> None:
    with pytest.raises(FormatError) as info:
        parse_decimal(text)
    assert repr(text) in str(info.value)


# --- environment -------------------------------------------------------------------------


def test_scrubbed_env_removes_credentials_and_keeps_the_rest() -> None:
    base = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "GIT_DIR": "/repo/.git",
        "GIT_INDEX_FILE": "/repo/.git/index",
        "GITCOOP_ETH_KEY": "secret",
        "GITHUB_TOKEN": "ghs_x",
        "ACTIONS_RUNTIME_TOKEN": "t",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t",
        "ACTIONS_ID_TOKEN_REQUEST_URL": "https://x",
        "GITHUB_SHA": "abc",  # not a credential
    }
    env = scrubbed_env(base, {"METRIC_SEED": "1"})
    assert env == {"PATH": "/usr/bin", "HOME": "/home/u", "GITHUB_SHA": "abc", "METRIC_SEED": "1"}
    assert "GIT_DIR" in base  # the input is not modified


def test_scrubbed_env_extra_wins() -> None:
    assert scrubbed_env({"A": "1"}, {"A": "2", "GIT_X": "3"}) == {"A": "2", "GIT_X": "3"}
    assert scrubbed_env({"A": "1"}) == {"A": "1"}


def test_metric_does_not_see_git_or_gitcoop_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_DIR", "/nonexistent/.git")
    monkeypatch.setenv("GITCOOP_ETH_KEY", "secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secret")
    body = """
        import os
        leaked = [k for k in ("GIT_DIR", "GITCOOP_ETH_KEY", "GITHUB_TOKEN") if k in os.environ]
        print(-1 if leaked else os.environ["METRIC_SEED"])
    """
    spec = MetricSpec(argv=_script(tmp_path, body), name="accuracy", timeout=10)
    result = run_metric(spec, tmp_path, extra_env={"METRIC_SEED": "42"})
    assert result.value == Decimal(42)


# --- spec --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"argv": ()}, "command is empty"),
        ({"argv": ("python", "")}, "empty or NUL"),
        ({"argv": ("py\0thon",)}, "empty or NUL"),
        ({"name": ""}, "name is empty"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"output_limit": 0}, "output limit"),
    ],
)
def test_metric_spec_rejects_bad_values(changes: dict[str, object], fragment: str) -> None:
    fields: dict[str, object] = {"argv": ("python",), "name": "accuracy", "timeout": 1.0}
    fields.update(changes)
    with pytest.raises(ConfigError, match=fragment):
        MetricSpec(**fields)  # type: ignore[arg-type]


def test_metric_spec_freezes_argv_and_has_default_limit() -> None:
    spec = MetricSpec(argv=["python", "m.py"], name="accuracy", timeout=1)  # type: ignore[arg-type]
    assert spec.argv == ("python", "m.py")
    assert spec.output_limit == DEFAULT_OUTPUT_LIMIT == 16 * 1024 * 1024
    assert hash(spec) == hash(MetricSpec(("python", "m.py"), "accuracy", 1))


# --- run_metric: success ------------------------------------------------------------------


def test_run_metric_json_object(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        """
        import json, sys
        print("training...", file=sys.stderr)
        print("epoch 1")
        print(json.dumps({"loss": 0.3, "accuracy": 0.910}))
        """,
    )
    assert result.value == Decimal("0.91")
    assert result.text == "0.91"
    assert isinstance(result.duration_ms, int)
    assert 0 <= result.duration_ms < 10_000


def test_run_metric_bare_number_runs_in_cwd_without_stdin(tmp_path: Path) -> None:
    (tmp_path / "score.txt").write_text("7e-1", encoding="utf-8")
    result = _run(
        tmp_path,
        """
        import sys
        assert sys.stdin.read() == ""
        print(open("score.txt").read())
        """,
    )
    assert (result.value, result.text) == (Decimal("0.7"), "0.7")


def test_run_metric_keeps_last_line_of_long_output(tmp_path: Path) -> None:
    # Far more than the kept tail, far less than the limit.
    result = _run(
        tmp_path,
        """
        import sys
        for i in range(3000):
            print("noise " * 20)
            print("warning " * 20, file=sys.stderr)
        print(0.25)
        """,
    )
    assert result.text == "0.25"


def test_run_metric_measures_duration(tmp_path: Path) -> None:
    result = _run(tmp_path, "import time\ntime.sleep(0.3)\nprint(1)\n")
    assert result.value == 1
    assert 300 <= result.duration_ms < 5_000


# --- run_metric: failures -----------------------------------------------------------------


def test_run_metric_nonzero_exit_quotes_last_stderr_line(tmp_path: Path) -> None:
    body = """
        import sys
        print("0.9")
        print("Traceback (most recent call last):", file=sys.stderr)
        print("ValueError: labels missing", file=sys.stderr)
        print("", file=sys.stderr)
        sys.exit(3)
    """
    with pytest.raises(MetricError) as info:
        _run(tmp_path, body)
    assert str(info.value) == "metric exited with status 3: ValueError: labels missing"


def test_run_metric_nonzero_exit_truncates_stderr_line(tmp_path: Path) -> None:
    with pytest.raises(MetricError) as info:
        _run(tmp_path, "import sys\nsys.stderr.write('E' * 5000)\nsys.exit(1)\n")
    message = str(info.value)
    assert message.startswith("metric exited with status 1: EEE")
    assert message.endswith("...")
    assert len(message) < 300


def test_run_metric_nonzero_exit_without_stderr(tmp_path: Path) -> None:
    with pytest.raises(MetricError, match=r"status 2 \(nothing on stderr\)"):
        _run(tmp_path, "import sys\nsys.exit(2)\n")


def test_run_metric_killed_by_signal(tmp_path: Path) -> None:
    body = """
        import os, signal, sys
        print("about to crash", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """
    with pytest.raises(MetricError) as info:
        _run(tmp_path, body)
    assert str(info.value) == "metric was killed by SIGKILL: about to crash"


@pytest.mark.parametrize(
    ("stdout", "fragment"),
    [("", "printed nothing on stdout"), ("the score is good", "is not a number")],
)
def test_run_metric_without_a_score(tmp_path: Path, stdout: str, fragment: str) -> None:
    with pytest.raises(MetricError, match=fragment):
        _run(tmp_path, f"print({stdout!r})")


def test_run_metric_huge_exponent(tmp_path: Path) -> None:
    with pytest.raises(MetricError, match="magnitude is outside"):
        _run(tmp_path, "print('1e999999')")


_SPAWN_CHILD = """
    import pathlib, signal, subprocess, sys, time
    {setup}
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], {child_args}
    )
    pathlib.Path("child.pid").write_text(str(child.pid))
    {finish}
"""


@pytest.mark.parametrize(
    "setup", ["", "signal.signal(signal.SIGTERM, signal.SIG_IGN)"], ids=["sleeps", "ignores-term"]
)
def test_run_metric_timeout_kills_the_whole_group(tmp_path: Path, setup: str) -> None:
    # The child inherits SIG_IGN, so in the second case only SIGKILL can end either process.
    body = _SPAWN_CHILD.format(setup=setup, child_args="", finish="time.sleep(60)")
    started = time.monotonic()
    with pytest.raises(MetricError) as info:
        _run(tmp_path, body, timeout=1.0)
    elapsed = time.monotonic() - started
    assert str(info.value).startswith("metric timed out after 1s")
    assert elapsed < 6
    assert _is_gone(_wait_for_file(tmp_path / "child.pid"))


def test_run_metric_timeout_after_closing_its_pipes(tmp_path: Path) -> None:
    body = """
        import os, time
        os.close(1)
        os.close(2)
        time.sleep(60)
    """
    with pytest.raises(MetricError, match=r"metric timed out after 0\.8s"):
        _run(tmp_path, body, timeout=0.8)


@pytest.mark.parametrize(
    "child_args",
    ["", "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL"],
    ids=["child-holds-pipes", "child-detached-from-pipes"],
)
def test_run_metric_rejects_leftover_children(tmp_path: Path, child_args: str) -> None:
    body = _SPAWN_CHILD.format(setup="", child_args=child_args, finish="print(0.5)")
    started = time.monotonic()
    with pytest.raises(MetricError) as info:
        _run(tmp_path, body)
    assert time.monotonic() - started < 5  # did not wait for the child's pipes to close
    assert str(info.value) == (
        "metric left processes running (killed them); wait for its children before exiting"
    )
    assert _is_gone(_wait_for_file(tmp_path / "child.pid"))


def test_run_metric_accepts_children_that_were_waited_for(tmp_path: Path) -> None:
    body = """
        import subprocess, sys
        subprocess.run([sys.executable, "-c", "print('child output')"], check=True)
        print(0.5)
    """
    assert _run(tmp_path, body).text == "0.5"


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_run_metric_output_limit(tmp_path: Path, stream: str) -> None:
    body = f"""
        import sys
        while True:
            sys.{stream}.write("x" * 1000 + "\\n")
    """
    with pytest.raises(MetricError) as info:
        _run(tmp_path, body, output_limit=10_000)
    assert str(info.value).startswith("metric printed more than 10000 bytes")


def test_run_metric_output_limit_counts_both_streams(tmp_path: Path) -> None:
    body = """
        import sys
        sys.stdout.write("o" * 6000 + "\\n")
        sys.stderr.write("e" * 6000)
        print(0.5)
    """
    with pytest.raises(MetricError, match="more than 10000 bytes"):
        _run(tmp_path, body, output_limit=10_000)
    assert _run(tmp_path, body, output_limit=20_000).text == "0.5"


def test_run_metric_missing_program(tmp_path: Path) -> None:
    spec = MetricSpec(argv=("gitcoop-no-such-metric", "x"), name="accuracy", timeout=5)
    with pytest.raises(MetricError, match="'gitcoop-no-such-metric'"):
        run_metric(spec, tmp_path)


def test_run_metric_program_not_executable(tmp_path: Path) -> None:
    program = tmp_path / "metric.sh"
    program.write_text("#!/bin/sh\necho 1\n", encoding="utf-8")
    program.chmod(0o644)
    spec = MetricSpec(argv=(str(program),), name="accuracy", timeout=5)
    with pytest.raises(MetricError) as info:
        run_metric(spec, tmp_path)
    assert str(program) in str(info.value)
    assert "ermission denied" in str(info.value)


def test_run_metric_missing_working_directory(tmp_path: Path) -> None:
    spec = MetricSpec(argv=(sys.executable, "-c", "print(1)"), name="accuracy", timeout=5)
    with pytest.raises(MetricError, match="cannot run metric in"):
        run_metric(spec, tmp_path / "missing")


def test_run_metric_leaves_no_zombie_or_open_pipe(tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").exists() else 0
    for _ in range(3):
        _run(tmp_path, "print(1)")
    with pytest.raises(MetricError):
        _run(tmp_path, "import sys; sys.exit(1)")
    after = len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").exists() else 0
    assert after <= before
    try:
        reaped = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:  # no children at all: every metric process was reaped
        reaped = (0, 0)
    assert reaped == (0, 0)
