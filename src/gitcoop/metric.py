"""A challenge's metric: how to run it (``MetricSpec``) and how to read a score from what
it prints or writes. Running it, sandboxed, is ``gitcoop.sandbox``."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NoReturn

from gitcoop.decimals import Rejected, in_range, literal, shown
from gitcoop.errors import ConfigError, MetricError

AUTO_NAME = "*"  # a spec name meaning: take the name from the metric's own output
DEFAULT_OUTPUT_LIMIT = 16 * 1024 * 1024  # bytes of stdout+stderr a metric may print

_EXPECTED = 'expected a number such as 0.91 or a JSON object such as {"accuracy": 0.91}'


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
    memory_mb: int | None = None  # RLIMIT_DATA of each process, in MiB (None: no limit)
    cpu_seconds: int | None = None  # RLIMIT_CPU of each process (None: no limit)

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
    for what, value in (("memory limit", spec.memory_mb), ("CPU time limit", spec.cpu_seconds)):
        if value is not None and (type(value) is not int or value <= 0):
            return f"the {what} must be a positive whole number, not {value!r}"
    return ""


# --- metric output -----------------------------------------------------------------------


def parse_metric_output(stdout: bytes, name: str) -> Decimal:
    """Return the score printed on the last non-empty line of ``stdout``.

    The line is either a bare number (``0.91``, ``-3``, ``1e-3``) or a JSON object whose
    ``name`` key holds a number. Raises MetricError, in one line saying what was printed and
    what is expected, for anything else: no output, text, non-finite or out-of-range values,
    booleans, strings, nested values, or an object without ``name``.
    """
    line = last_line(stdout)
    if not line:
        raise MetricError(
            "metric printed nothing on stdout; it must print its score as the last line"
        )
    if line.startswith("{"):
        return _score_from_object(line, name)
    try:
        return literal(line)
    except Rejected as exc:
        raise MetricError(
            f"metric's last line {shown(line)} is not a score: {exc}; {_EXPECTED}"
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
        return literal(repr(value) if isinstance(value, float) else str(value))
    except Rejected as exc:
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
        return literal(group.strip())
    except Rejected as exc:
        raise MetricError(
            f"metric.regex captured {shown(group)}, which is not a score: {exc}"
        ) from None


def detect_metric_name(stdout: bytes) -> str:
    """The metric's name as its output shows it: the only key of a JSON object last line,
    or ``score`` for a bare number. Raises MetricError when an object has several keys."""
    line = last_line(stdout)
    if not line.startswith("{"):
        return "score"
    keys = list(_json_object(line))
    if len(keys) != 1:
        raise MetricError(
            f"metric's last line {shown(line)} has keys {keys}; name the score's key with "
            "--metric-name (metric.name in .coop/challenge.yaml)"
        )
    return keys[0]


def last_line(output: bytes) -> str:
    lines = output.decode("utf-8", errors="replace").splitlines()
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def _score_from_object(line: str, name: str) -> Decimal:
    obj = _json_object(line)
    if name not in obj:
        keys = ", ".join(repr(key) for key in obj) or "none"
        raise MetricError(
            f"metric's last line {shown(line)} has no key {name!r} (its keys: {keys}); "
            f'expected an object such as {{"{name}": 0.91}}'
        )
    value = obj[name]
    # JSON true/false, strings and containers never pass through parse_float/parse_int.
    if not isinstance(value, Decimal):
        raise MetricError(
            f"metric's last line {shown(line)} gives {name!r} as {_json_kind(value)}; "
            "expected a JSON number"
        )
    try:
        return in_range(value)
    except Rejected as exc:
        raise MetricError(
            f"metric's last line {shown(line)}: {name!r} is unusable: {exc}"
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
    except Rejected as exc:
        raise MetricError(
            f"metric's last line {shown(line)} is not a score: {exc}; {_EXPECTED}"
        ) from None
    except (ValueError, RecursionError):
        raise MetricError(
            f"metric's last line {shown(line)} is not valid JSON; {_EXPECTED}"
        ) from None
    if not isinstance(obj, dict):
        raise MetricError(f"metric's last line {shown(line)} is not a JSON object; {_EXPECTED}")
    return obj


def _json_number(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:  # exponent too large even for the decimal module
        raise Rejected("it holds a number whose exponent is out of range") from None


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a nested value"


def _reject_constant(constant: str) -> NoReturn:
    raise Rejected(f"it holds the non-finite constant {constant}")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # Duplicate keys would make the score depend on which one a reader keeps.
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise Rejected(f"it repeats the key {key!r}")
        obj[key] = value
    return obj
