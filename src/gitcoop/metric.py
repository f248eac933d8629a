"""Run a challenge's metric command and turn what it prints into an exact decimal score.

The metric is untrusted code from the challenge author or a participant, so it runs
without a shell, with a scrubbed environment, under a wall-clock limit and an output
limit, in its own process group so that nothing it starts can outlive it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, NoReturn

from gitcoop.errors import ConfigError, FormatError, MetricError

AUTO_NAME = "*"  # a spec name meaning: take the name from the metric's own output
DEFAULT_OUTPUT_LIMIT = 16 * 1024 * 1024  # bytes of stdout+stderr a metric may print

_TAIL_BYTES = 64 * 1024  # the score is on the last line; older output only costs memory
_READ_CHUNK = 64 * 1024
_POLL_SECONDS = 0.05  # how often to notice an exit while children still hold the pipes
_DRAIN_SECONDS = 0.2  # how long to keep reading after the main process has exited
_TERM_GRACE_SECONDS = 2.0  # time between SIGTERM and SIGKILL on timeout
_SETTLE_SECONDS = 0.1  # lets dying group members disappear before calling them leftovers

_MAX_ADJUSTED_EXPONENT = 100
_MAX_SIGNIFICANT_DIGITS = 40
_MAX_LITERAL_CHARS = 200  # longer than any in-range literal needs to be
_SHOW_CHARS = 80
_STDERR_CHARS = 200

_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NON_FINITE_RE = re.compile(r"[+-]?(?:s?nan[0-9]*|inf|infinity)", re.IGNORECASE)
_EXPECTED = 'expected a number such as 0.91 or a JSON object such as {"accuracy": 0.91}'

# Credentials a metric must never see: git's own variables could redirect it at the
# caller's repository, and CI tokens would let it act on the caller's behalf.
_SECRET_PREFIXES = ("GIT_", "GITCOOP_")
_SECRET_NAMES = frozenset(
    {
        "GITHUB_TOKEN",
        "ACTIONS_RUNTIME_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
    }
)


@dataclass(frozen=True)
class MetricSpec:
    """How to run one metric: the command (never run through a shell) and its limits."""

    argv: tuple[str, ...]
    name: str
    timeout: float
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    file: str | None = None  # the score is in this JSON or YAML file the command writes
    key: str | None = None  # its dotted path there (default: name)
    regex: str | None = None  # or: the one group of the last match over stdout

    def __post_init__(self) -> None:
        # Specs come from YAML, where the command is a list; freeze it so the spec stays hashable.
        object.__setattr__(self, "argv", tuple(self.argv))
        problem = _spec_problem(self)
        if problem:
            raise ConfigError(f"invalid metric spec: {problem}")


@dataclass(frozen=True)
class MetricResult:
    """A metric's score: the exact value, its canonical text, and how long it took."""

    value: Decimal
    text: str
    duration_ms: int
    name: str = ""


def _spec_problem(spec: MetricSpec) -> str:
    if not spec.argv:
        return "the metric command is empty"
    if not all(arg and "\0" not in arg for arg in spec.argv):
        return f"the metric command {list(spec.argv)!r} has an empty or NUL-containing argument"
    if not spec.name:
        return "the metric name is empty"
    if not (math.isfinite(spec.timeout) and spec.timeout > 0):
        return f"the timeout must be a positive number of seconds, not {spec.timeout!r}"
    if spec.output_limit <= 0:
        return f"the output limit must be a positive number of bytes, not {spec.output_limit!r}"
    if spec.file is not None and spec.regex is not None:
        return "the score comes from a file or from a regex, not both"
    return ""


# --- environment -------------------------------------------------------------------------


def scrubbed_env(base: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return a copy of ``base`` without git, gitcoop and CI credential variables, plus ``extra``.

    Keys starting with ``GIT_`` or ``GITCOOP_`` and the GitHub Actions token variables are
    dropped; ``extra`` is applied afterwards, so it may set any of them deliberately.
    """
    env = {key: value for key, value in base.items() if not _is_secret(key)}
    env.update(extra or {})
    return env


def _is_secret(key: str) -> bool:
    return key.startswith(_SECRET_PREFIXES) or key in _SECRET_NAMES


# --- decimals ----------------------------------------------------------------------------


class _Rejected(ValueError):
    """Why printed text is not an acceptable score; public callers re-raise their own error."""


def decimal_text(value: Decimal) -> str:
    """Return the canonical text of a finite Decimal.

    Plain notation (never an exponent), no trailing fractional zeros, no trailing point,
    and zero is always ``"0"``. Raises ValueError if ``value`` is NaN or infinite.
    """
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {value}")
    text = format(value, "f")  # "f" without a precision keeps every digit, exactly
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def parse_decimal(text: str) -> Decimal:
    """Return the finite Decimal written as ``text``, a plain JSON-style number literal.

    Accepts ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?`` with an optional exponent, within the range
    allowed for metric scores. Raises FormatError for anything else.
    """
    try:
        return _literal(text)
    except _Rejected as exc:
        raise FormatError(f"bad decimal {_show(text)}: {exc}") from None


def _literal(text: str) -> Decimal:
    if len(text) > _MAX_LITERAL_CHARS:
        raise _Rejected(f"it is longer than {_MAX_LITERAL_CHARS} characters")
    if _NON_FINITE_RE.fullmatch(text):
        raise _Rejected("it is not finite")
    if not _NUMBER_RE.fullmatch(text):
        raise _Rejected("it is not a number")
    try:
        value = Decimal(text)
    except InvalidOperation:  # exponent too large even for the decimal module
        raise _Rejected("its exponent is out of range") from None
    return _in_range(value)


def _in_range(value: Decimal) -> Decimal:
    """Return ``value`` canonicalised, or raise _Rejected if it could be a size bomb."""
    if not value.is_finite():
        raise _Rejected("it is not finite")
    if value.is_zero():
        return Decimal(0)
    if abs(value.adjusted()) > _MAX_ADJUSTED_EXPONENT:
        limit = _MAX_ADJUSTED_EXPONENT
        raise _Rejected(f"its magnitude is outside 1e-{limit}..1e+{limit}")
    digits = "".join(map(str, value.as_tuple().digits)).rstrip("0")
    if len(digits) > _MAX_SIGNIFICANT_DIGITS:
        raise _Rejected(f"it has more than {_MAX_SIGNIFICANT_DIGITS} significant digits")
    # Safe now: the plain text is short. Equal scores then always have equal representations.
    return Decimal(decimal_text(value))


# --- metric output -----------------------------------------------------------------------


def parse_metric_output(stdout: bytes, name: str) -> Decimal:
    """Return the score printed on the last non-empty line of ``stdout``.

    The line is either a bare number (``0.91``, ``-3``, ``1e-3``) or a JSON object whose
    ``name`` key holds a number. Raises MetricError, in one line saying what was printed and
    what is expected, for anything else: no output, text, non-finite or out-of-range values,
    booleans, strings, nested values, or an object without ``name``.
    """
    line = _last_line(stdout)
    if not line:
        raise MetricError(
            "metric printed nothing on stdout; it must print its score as the last line"
        )
    if line.startswith("{"):
        return _score_from_object(line, name)
    try:
        return _literal(line)
    except _Rejected as exc:
        raise MetricError(
            f"metric's last line {_show(line)} is not a score: {exc}; {_EXPECTED}"
        ) from None


def score_from_file(root: Path, path: str, key: str, limit: int) -> Decimal:
    """The number at dotted ``key`` in the JSON or YAML file ``path`` (relative to
    ``root``) the metric wrote, DVC style. Raises MetricError naming what is wrong: no
    file, too big, not JSON or YAML, no such key, or not a finite number."""
    target = root / path
    try:
        if target.is_symlink() or not target.resolve().is_relative_to(root.resolve()):
            raise MetricError(f"the metric file {path} points outside the checkout")
        size = target.stat().st_size
        if size > limit:
            raise MetricError(f"the metric file {path} is {size} bytes; the limit is {limit}")
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MetricError(
            f"the metric wrote no {path}", hint="the command must write its scores there"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MetricError(f"the metric file {path} cannot be read: {exc}") from None
    value: object = _load_scores(text, path)
    for i, part in enumerate(key.split(".")):
        if not isinstance(value, dict) or part not in value:
            where = ".".join(key.split(".")[:i]) or "the top level"
            raise MetricError(
                f"the metric file {path} has no key {key!r} (nothing named {part!r} at {where})",
                hint="set metric.key to the dotted path of the score",
            )
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float):
        raise MetricError(f"{key} in {path} is {_json_kind(value)}, not a number")
    try:
        # repr: the shortest text that reads back as the same float (YAML numbers).
        return _literal(repr(value) if isinstance(value, float) else str(value))
    except _Rejected as exc:
        raise MetricError(f"{key} in {path} is not a usable score: {exc}") from None


def _load_scores(text: str, path: str) -> object:
    if path.endswith((".yaml", ".yml")):
        import yaml

        try:
            return yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError):
            raise MetricError(f"the metric file {path} is not valid YAML") from None
    try:
        return json.loads(
            text, parse_float=Decimal, parse_int=Decimal, parse_constant=_reject_constant
        )
    except (ValueError, RecursionError) as exc:
        raise MetricError(f"the metric file {path} is not valid JSON: {exc}") from None


def score_from_regex(stdout: bytes, pattern: str) -> Decimal:
    """The score in the one capture group of the last match of ``pattern`` over stdout.
    Raises MetricError when nothing matches or the group is not a number."""
    text = stdout.decode("utf-8", errors="replace")
    found = [m for m in re.finditer(pattern, text, re.MULTILINE)]
    if not found:
        raise MetricError(
            f"nothing the metric printed matches metric.regex {pattern!r}",
            hint="check the pattern against the command's output",
        )
    group = found[-1].group(1) or ""
    try:
        return _literal(group.strip())
    except _Rejected as exc:
        raise MetricError(
            f"metric.regex captured {_show(group)}, which is not a score: {exc}"
        ) from None


def detect_metric_name(stdout: bytes) -> str:
    """The metric's name as its output shows it: the only key of a JSON object last line,
    or ``score`` for a bare number. Raises MetricError when an object has several keys."""
    line = _last_line(stdout)
    if not line.startswith("{"):
        return "score"
    keys = list(_json_object(line))
    if len(keys) != 1:
        raise MetricError(
            f"metric's last line {_show(line)} has keys {keys}; name the score's key with "
            "--metric-name (metric.name in .coop/challenge.yaml)"
        )
    return keys[0]


def _last_line(output: bytes) -> str:
    lines = output.decode("utf-8", errors="replace").splitlines()
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def _score_from_object(line: str, name: str) -> Decimal:
    obj = _json_object(line)
    if name not in obj:
        keys = ", ".join(repr(key) for key in obj) or "none"
        raise MetricError(
            f"metric's last line {_show(line)} has no key {name!r} (its keys: {keys}); "
            f'expected an object such as {{"{name}": 0.91}}'
        )
    value = obj[name]
    # JSON true/false, strings and containers never pass through parse_float/parse_int.
    if not isinstance(value, Decimal):
        raise MetricError(
            f"metric's last line {_show(line)} gives {name!r} as {_json_kind(value)}; "
            "expected a JSON number"
        )
    try:
        return _in_range(value)
    except _Rejected as exc:
        raise MetricError(
            f"metric's last line {_show(line)}: {name!r} is unusable: {exc}"
        ) from None


def _json_object(line: str) -> dict[str, object]:
    try:
        obj: object = json.loads(
            line,
            parse_float=_json_number,
            parse_int=_json_number,
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
        )
    except _Rejected as exc:
        raise MetricError(
            f"metric's last line {_show(line)} is not a score: {exc}; {_EXPECTED}"
        ) from None
    except (ValueError, RecursionError):
        raise MetricError(
            f"metric's last line {_show(line)} is not valid JSON; {_EXPECTED}"
        ) from None
    if not isinstance(obj, dict):
        raise MetricError(f"metric's last line {_show(line)} is not a JSON object; {_EXPECTED}")
    return obj


def _json_number(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:  # exponent too large even for the decimal module
        raise _Rejected("it holds a number whose exponent is out of range") from None


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a nested value"


def _reject_constant(constant: str) -> NoReturn:
    raise _Rejected(f"it holds the non-finite constant {constant}")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # Duplicate keys would make the score depend on which one a reader keeps.
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise _Rejected(f"it repeats the key {key!r}")
        obj[key] = value
    return obj


def _show(text: str) -> str:
    if len(text) > _SHOW_CHARS:
        text = text[: _SHOW_CHARS - 3] + "..."
    return repr(text)


# --- running -----------------------------------------------------------------------------


@dataclass
class _Output:
    """The last bytes of stdout and stderr, and how many bytes were printed in total."""

    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    total: int = 0

    def add(self, tail: bytearray, chunk: bytes) -> None:
        self.total += len(chunk)
        tail += chunk
        if len(tail) > _TAIL_BYTES:
            del tail[: len(tail) - _TAIL_BYTES]


def run_metric(
    spec: MetricSpec, cwd: Path, *, extra_env: Mapping[str, str] | None = None
) -> MetricResult:
    """Run the metric in ``cwd`` and return its score.

    The command gets a scrubbed environment (see ``scrubbed_env``) plus ``extra_env``, no
    stdin, and its own process group. Raises MetricError if it cannot be started, times
    out, prints more than ``spec.output_limit`` bytes, leaves processes running, exits
    unsuccessfully, or prints no usable score.
    """
    env = scrubbed_env(os.environ, extra_env)
    if spec.file is not None:
        # A copy committed with the code must never pass for this run's result.
        with contextlib.suppress(IsADirectoryError, NotADirectoryError):
            (cwd / spec.file).unlink(missing_ok=True)
    started = time.monotonic()
    proc = _start(spec.argv, cwd, env)
    try:
        output = _capture(proc, spec, started + spec.timeout)
        _reject_leftovers(proc.pid)
    except BaseException:
        # Also on KeyboardInterrupt or a bug here: nothing the metric started may outlive it.
        _kill_group(proc.pid)
        raise
    finally:
        _close(proc)
    duration_ms = int((time.monotonic() - started) * 1000)
    _check_status(proc.returncode, output.stderr)
    stdout = bytes(output.stdout)
    name = detect_metric_name(stdout) if spec.name == AUTO_NAME else spec.name
    if spec.file is not None:
        value = score_from_file(cwd, spec.file, spec.key or name, spec.output_limit)
    elif spec.regex is not None:
        value = score_from_regex(stdout, spec.regex)
    else:
        value = parse_metric_output(stdout, name)
    return MetricResult(value=value, text=decimal_text(value), duration_ms=duration_ms, name=name)


def _start(argv: tuple[str, ...], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # own process group: we can signal everything it starts
            close_fds=True,
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
        if exc.filename is not None and str(exc.filename) == str(cwd):
            raise MetricError(f"cannot run metric in {str(cwd)!r}: {exc.strerror}") from None
        raise MetricError(
            f"cannot run metric command {argv[0]!r}: {exc.strerror}",
            hint="check the metric command in the challenge and that the program is installed",
        ) from None
    except (OSError, ValueError) as exc:
        raise MetricError(f"cannot run metric command {argv[0]!r}: {exc}") from None


def _capture(proc: subprocess.Popen[bytes], spec: MetricSpec, deadline: float) -> _Output:
    """Read both pipes until EOF or shortly after exit; enforce the time and output limits."""
    output = _Output()
    with selectors.DefaultSelector() as selector:
        _register(selector, proc.stdout, output.stdout)
        _register(selector, proc.stderr, output.stderr)
        _pump(selector, proc, spec, deadline, output)
    _wait(proc, spec, deadline)
    return output


def _register(selector: selectors.BaseSelector, pipe: IO[bytes] | None, tail: bytearray) -> None:
    if pipe is not None:
        selector.register(pipe, selectors.EVENT_READ, tail)


def _pump(
    selector: selectors.BaseSelector,
    proc: subprocess.Popen[bytes],
    spec: MetricSpec,
    deadline: float,
    output: _Output,
) -> None:
    # Children may inherit the pipes and keep them open after the metric exits, so EOF is
    # not a reliable end: stop a little after the main process is gone.
    stop_at: float | None = None
    while selector.get_map():
        now = time.monotonic()
        if stop_at is None and proc.poll() is not None:
            stop_at = now + _DRAIN_SECONDS
        if stop_at is None and now >= deadline:
            _fail_timeout(proc, spec)
        if stop_at is not None and now >= stop_at:
            return
        until = deadline if stop_at is None else stop_at
        for key, _ in selector.select(min(until - now, _POLL_SECONDS)):
            _read(selector, key, output)
        if output.total > spec.output_limit:
            _kill_group(proc.pid)
            raise MetricError(
                f"metric printed more than {spec.output_limit} bytes",
                hint="print less, or write details to a file and only the score to stdout",
            )


def _read(selector: selectors.BaseSelector, key: selectors.SelectorKey, output: _Output) -> None:
    chunk = os.read(key.fd, _READ_CHUNK)
    if chunk:
        output.add(key.data, chunk)
    else:
        selector.unregister(key.fileobj)


def _wait(proc: subprocess.Popen[bytes], spec: MetricSpec, deadline: float) -> None:
    # The metric may have closed its pipes and still be running.
    try:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _fail_timeout(proc, spec)


def _fail_timeout(proc: subprocess.Popen[bytes], spec: MetricSpec) -> NoReturn:
    _stop_group(proc)
    raise MetricError(
        f"metric timed out after {spec.timeout:g}s",
        hint="make the metric faster or raise its timeout in the challenge",
    )


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Ask the whole group to terminate, then kill whatever is left after a grace period."""
    _signal_group(proc.pid, signal.SIGTERM)
    give_up = time.monotonic() + _TERM_GRACE_SECONDS
    while time.monotonic() < give_up:
        proc.poll()  # reap the leader so it stops counting as a member
        if not _group_alive(proc.pid):
            return
        time.sleep(0.02)
    _kill_group(proc.pid)


def _kill_group(pgid: int) -> None:
    _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    # Everyone may be gone already, or a member changed user and is beyond our reach.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _reject_leftovers(pgid: int) -> None:
    """Kill the group and raise MetricError if anything outlived the metric's main process."""
    settle_until = time.monotonic() + _SETTLE_SECONDS
    while _group_alive(pgid):
        if time.monotonic() >= settle_until:
            _kill_group(pgid)
            raise MetricError(
                "metric left processes running (killed them); wait for its children before exiting"
            )
        time.sleep(0.01)


def _group_alive(pgid: int) -> bool:
    """Return whether the process group has a member that is not a zombie."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for killpg; where no init reaps orphans (some containers) they
    # would never go away, so ask /proc whether a live member remains.
    return _live_member_in_proc(pgid)


def _live_member_in_proc(pgid: int) -> bool:
    proc_root = Path("/proc")
    if not (proc_root / "self" / "stat").exists():
        return True  # no /proc: trust killpg
    for entry in proc_root.iterdir():
        if entry.name.isdigit() and _is_live_member(entry / "stat", pgid):
            return True
    return False


def _is_live_member(stat_path: Path, pgid: int) -> bool:
    try:
        stat = stat_path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return False  # exited while we looked
    # The command name may contain spaces and parentheses; the fields after it cannot.
    fields = stat[stat.rfind(")") + 2 :].split()
    return len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X")


def _close(proc: subprocess.Popen[bytes]) -> None:
    proc.wait()  # at most a moment: the process has exited or its group was just killed
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _check_status(returncode: int, stderr: bytearray) -> None:
    if returncode == 0:
        return
    detail = _last_stderr_line(stderr)
    suffix = f": {detail}" if detail else " (nothing on stderr)"
    if returncode < 0:
        raise MetricError(f"metric was killed by {_signal_name(-returncode)}{suffix}")
    raise MetricError(f"metric exited with status {returncode}{suffix}")


def _last_stderr_line(stderr: bytearray) -> str:
    line = _last_line(bytes(stderr))
    if len(line) > _STDERR_CHARS:
        line = line[: _STDERR_CHARS - 3] + "..."
    return line


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
