"""Parse and validate `.coop/challenge.yaml` (schema version 1) into a frozen `Challenge`.

The file is read with `yaml.compose`, not `yaml.safe_load`: the node tree keeps a line number
for every error message, shows duplicate keys (which `safe_load` silently collapses), and keeps
the text of numbers as written, so `min_delta: 0.01` becomes `Decimal("0.01")` without a detour
through float. The schema is a table of field specs; each spec converts and checks one value.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import posixpath
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, Context, Decimal, localcontext
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from gitcoop.constants import CHALLENGE_FILE, CHALLENGE_VERSION, COOP_DIR
from gitcoop.errors import ConfigError

if TYPE_CHECKING:
    from yaml import CSafeLoader, SafeLoader
    from yaml.events import Event
    from yaml.nodes import Node

__all__ = [
    "IMPLICIT_PROTECT",
    "MAX_FILE_BYTES",
    "Challenge",
    "MetricConfig",
    "parse_challenge",
    "parse_challenge_bytes",
    "render_template",
]

MAX_FILE_BYTES: Final = 256 * 1024
# The challenge directory holds the evaluator's own configuration; a contributor must never
# be able to change it, whatever the challenge author listed.
IMPLICIT_PROTECT: Final = f"{COOP_DIR}/**"
# What an attested commit can show, weakest first: signed by a contributor about their
# own commit, by the challenge's evaluator (CI), or by two trusted signers who agree.
ASSURANCE_LEVELS: Final = ("self", "ci", "reproduced")

# Deep nesting is never valid in this schema, and libyaml's composer recurses on the C stack
# (a few hundred KiB of "[" crash the interpreter), so nesting is checked on the event stream
# before any node tree is built.
_MAX_DEPTH: Final = 16
_MAX_TIMEOUT: Final = Decimal(86400)
_DEFAULT_OUTPUT_LIMIT: Final = 16 * 1024 * 1024
# The output is held in memory; 1 GiB also stays far below canonical JSON's 2**53 integer cap.
_MAX_OUTPUT_LIMIT: Final = 1024 * 1024 * 1024
_MAX_MEMORY_MB: Final = 1024 * 1024  # 1 TiB
_MAX_CPU_SECONDS: Final = 100 * 86400  # CPU time adds up over threads: it may exceed the timeout
_MAX_NUMBER_TEXT: Final = 64  # characters; keeps Decimal exponents and canonical strings small
_YAML_TAG: Final = "tag:yaml.org,2002:"
_REQUIRED: Final = object()
_EMPTY_FILE: Final = 'file is empty; expected a mapping with "version", "name" and "metric"'

_NAME_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
_DIGEST_RE: Final = re.compile(r"sha256:[0-9a-fA-F]{64}")
# YAML 1.1 reads "010" as octal 8 and YAML 1.2 as decimal 10; refusing leading zeros removes
# the ambiguity instead of picking a side.
_INT_RE: Final = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_DECIMAL_RE: Final = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_IDENT_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TIME_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
# An amount must fit a uint256 to be claimed on chain; a pool this size is never real.
_MAX_POOL: Final = 10**30
_REF_FORBIDDEN_RE: Final = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


# --------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class MetricConfig:
    """How to run the metric: argv, the JSON key to read, which way is better, and limits."""

    command: tuple[str, ...]
    name: str
    direction: str
    timeout: float  # seconds, a whole number of milliseconds
    output_limit: int  # bytes
    file: str | None = None  # the score is read from this file the command writes
    key: str | None = None  # at this dotted path (default: name)
    regex: str | None = None  # or from the one group of this pattern's last match
    memory_mb: int | None = None  # per process, in MiB (None: no limit)
    cpu_seconds: int | None = None  # per process (None: no limit)

    def source(self) -> dict[str, str | None]:
        """Where the score is read when not from the last line: ``file`` and ``key``, or
        ``regex`` (all None: the last line)."""
        return {"file": self.file, "key": self.key, "regex": self.regex}

    def limits(self) -> dict[str, int | None]:
        """The resource limits of each metric process (None: no limit)."""
        return {"memory_mb": self.memory_mb, "cpu_seconds": self.cpu_seconds}

    @property
    def timeout_ms(self) -> int:
        """Return the timeout in whole milliseconds, rounded up (never 0 for a valid timeout)."""
        # repr() is the shortest text that round-trips, so 0.3 becomes 300, not 300.00000000000006.
        millis = (Decimal(repr(self.timeout)) * 1000).to_integral_value(rounding=ROUND_CEILING)
        return int(millis)


@dataclass(frozen=True)
class Round:
    """A time-boxed round: entries signed at or after ``start`` and before ``end`` (UTC,
    RFC 3339 as gitcoop writes times) compete in it."""

    name: str
    start: str
    end: str

    def holds(self, time: str) -> bool:
        """Whether an entry signed at ``time`` falls in the round."""
        return self.start <= time < self.end


@dataclass(frozen=True)
class Rewards:
    """What one payout distributes: ``pool`` whole units of ``unit``, by ``rule``."""

    pool: int
    unit: str
    rule: str


REWARD_RULES: Final = ("proportional", "records", "best")


@dataclass(frozen=True)
class Private:
    """The private split: the command that scores it, and the SHA-256 of the data it
    reads (None: not pinned). The data never enters the repository: the evaluator is
    handed a file, and the metric finds its path in ``COOP_PRIVATE_DATA``."""

    command: tuple[str, ...]
    digest: str | None = None


@dataclass(frozen=True)
class Challenge:
    """A validated challenge file; build it with `parse_challenge`."""

    version: int
    name: str
    branch: str
    metric: MetricConfig
    protect: tuple[str, ...]  # sorted, unique, always contains IMPLICIT_PROTECT
    data: tuple[tuple[str, str], ...]  # sorted (path, "sha256:<lowercase hex>")
    min_delta: Decimal
    on_error: str
    require: str = "self"  # the assurance an attestation needs to count
    tolerance: Decimal | None = None  # how far two reproductions may differ (None: min_delta)
    lineage: Decimal = Decimal(0)  # the part of an improvement passed to the one it built on
    rounds: tuple[Round, ...] = ()  # sorted by start, never overlapping
    rewards: Rewards | None = None
    private: Private | None = None

    def round(self, name: str) -> Round:
        """The round called ``name``; raises ConfigError naming the rounds there are."""
        for r in self.rounds:
            if r.name == name:
                return r
        known = ", ".join(r.name for r in self.rounds) or "none"
        raise ConfigError(
            f"the challenge has no round {name!r} (rounds: {known})",
            hint="rounds are listed under rounds: in .coop/challenge.yaml",
        )

    @property
    def agreement(self) -> Decimal:
        """How far apart two scores of one commit may be and still agree."""
        return self.min_delta if self.tolerance is None else self.tolerance

    @property
    def maximize(self) -> bool:
        """Return True when a larger metric value is better."""
        return self.metric.direction == "maximize"

    def to_json(self) -> dict[str, Any]:
        """Return a canonical plain dict (str, int, list, dict only; no float, no Decimal).

        The timeout becomes integer milliseconds under "timeout_ms" and min_delta a plain
        decimal string, so the dict can be hashed or signed byte-for-byte reproducibly.
        """
        metric = self.metric
        return {
            "version": self.version,
            "name": self.name,
            "branch": self.branch,
            "metric": {
                "command": list(metric.command),
                "name": metric.name,
                "direction": metric.direction,
                "timeout_ms": metric.timeout_ms,
                "output_limit": metric.output_limit,
                **{k: v for k, v in metric.source().items() if v is not None},
                # Left out when unset, so the digest of a challenge without them is unchanged.
                **{k: v for k, v in metric.limits().items() if v is not None},
            },
            "protect": list(self.protect),
            "data": dict(self.data),
            "credit": self._credit_json(),
            "hook": {"on_error": self.on_error},
            **self._rules_json(),
        }

    def _rules_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.rounds:
            out["rounds"] = [{"name": r.name, "start": r.start, "end": r.end} for r in self.rounds]
        if self.rewards is not None:
            w = self.rewards
            out["rewards"] = {"pool": str(w.pool), "unit": w.unit, "rule": w.rule}
        if self.private is not None:
            out["private"] = {"command": list(self.private.command), "digest": self.private.digest}
        return out

    def _credit_json(self) -> dict[str, str]:
        # Settings at their defaults are left out, so the digest of a challenge that
        # predates them is unchanged.
        out = {"min_delta": _plain_decimal(self.min_delta)}
        if self.require != "self":
            out["require"] = self.require
        if self.tolerance is not None:
            out["tolerance"] = _plain_decimal(self.tolerance)
        if self.lineage:
            out["lineage"] = _plain_decimal(self.lineage)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Challenge:
        """Rebuild a challenge from `to_json` output (a local cache, never user input).

        Raises KeyError, TypeError or ValueError when the object has another shape.
        """
        m = obj["metric"]
        metric = MetricConfig(
            tuple(str(a) for a in m["command"]),
            str(m["name"]),
            str(m["direction"]),
            int(m["timeout_ms"]) / 1000,
            int(m["output_limit"]),
            m.get("file"),
            m.get("key"),
            m.get("regex"),
            None if m.get("memory_mb") is None else int(m["memory_mb"]),
            None if m.get("cpu_seconds") is None else int(m["cpu_seconds"]),
        )
        challenge = cls(
            int(obj["version"]),
            str(obj["name"]),
            str(obj["branch"]),
            metric,
            tuple(obj["protect"]),
            tuple(sorted(obj["data"].items())),
            Decimal(obj["credit"]["min_delta"]),
            str(obj["hook"]["on_error"]),
            str(obj["credit"].get("require", "self")),
            None if "tolerance" not in obj["credit"] else Decimal(obj["credit"]["tolerance"]),
            Decimal(obj["credit"].get("lineage", "0")),
            tuple(Round(r["name"], r["start"], r["end"]) for r in obj.get("rounds", ())),
            None if "rewards" not in obj else _rewards_from_json(obj["rewards"]),
            None if "private" not in obj else _private_from_json(obj["private"]),
        )
        if challenge.to_json() != obj:
            raise ValueError("challenge cache does not round-trip")
        return challenge

    def is_protected(self, path: str) -> bool:
        """Return True if `path` matches a protect pattern or lies under `.coop/`.

        `path` is relative to the repository root and '/'-separated, as git prints it.
        Raises ValueError if it is empty, absolute, or climbs out of the repository.
        """
        clean = _normalize_repo_path(path)
        # The implicit pattern is checked even if a hand-built Challenge left it out.
        patterns = (IMPLICIT_PROTECT, *self.protect)
        return any(_glob_matcher(pattern)(clean) for pattern in patterns)


def _private_from_json(obj: Any) -> Private:
    digest = obj["digest"]
    return Private(tuple(str(a) for a in obj["command"]), None if digest is None else str(digest))


def _rewards_from_json(obj: Any) -> Rewards:
    return Rewards(int(obj["pool"]), str(obj["unit"]), str(obj["rule"]))


# --------------------------------------------------------------------------- public functions


def parse_challenge(text: str, *, source: str = CHALLENGE_FILE) -> Challenge:
    """Parse and validate the text of a challenge file.

    Returns the `Challenge`. Raises ConfigError for anything wrong with the file: size, YAML
    syntax, duplicate or unknown keys, missing keys, wrong types or values. The message starts
    with `<source>:<line>:` and names the key path, e.g. `metric.direction`.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        raise ConfigError(f"{source}: file is {size} bytes; the limit is {MAX_FILE_BYTES} bytes")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: no file holds one
        raise ConfigError(f"{source}: not valid UTF-8 text at character {exc.start}") from None
    try:
        root = _compose(text)
        if root is None or _kind(root) == "null":
            raise _Invalid(None, _EMPTY_FILE)
        values = _mapping_fields(root, "", _TOP_FIELDS)
        _check_metric(values, root)
    except _Invalid as exc:
        where = source if exc.line is None else f"{source}:{exc.line}"
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None
    return _build(values)


def parse_challenge_bytes(data: bytes, *, source: str = CHALLENGE_FILE) -> Challenge:
    """Parse a challenge file given as bytes (e.g. a git blob); it must be UTF-8.

    Returns the `Challenge`. Raises ConfigError like `parse_challenge`, and also when the
    bytes are not valid UTF-8. The size limit is checked before decoding.
    """
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            f"{source}: file is {len(data)} bytes; the limit is {MAX_FILE_BYTES} bytes"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not valid UTF-8 at byte {exc.start}") from None
    return parse_challenge(text, source=source)


def render_template(
    *,
    name: str,
    command: str,
    direction: str,
    branch: str,
    timeout: int,
    protect: list[str],
    template_text: str,
    metric_name: str = "score",
) -> str:
    """Fill the `templates/challenge.yaml` text for `init` and check the result.

    `metric_name` fills `$metric_name` (metric.name). Every string is written as a
    double-quoted YAML scalar, so any input stays one value.
    Returns the file text. Raises ConfigError if the template has an unknown placeholder or
    if the filled file does not pass `parse_challenge` (e.g. a bad name or direction).
    """
    from string import Template  # only `init` renders; keep it off the hook's import path

    values = {
        "name": _yaml_quote(name),
        "branch": _yaml_quote(branch),
        "command_yaml": _yaml_quote(command),
        "direction": _yaml_quote(direction),
        "timeout": str(timeout),
        "protect_yaml": _protect_yaml(protect),
        "metric_name": _yaml_quote(metric_name),
    }
    try:
        text = Template(template_text).substitute(values)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"challenge template is broken: bad placeholder {exc}") from None
    parse_challenge(text, source=CHALLENGE_FILE)
    return text


# --------------------------------------------------------------------------- YAML to nodes


class _Invalid(Exception):
    """A schema problem at a line; parse_challenge adds the file name and re-raises it."""

    def __init__(self, line: int | None, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class _Node:
    """A typed copy of a composed YAML node (PyYAML's own nodes are untyped)."""

    tag: str  # resolved tag, e.g. "tag:yaml.org,2002:int"
    line: int  # 1-based
    text: str = ""  # a scalar exactly as written, without quotes; "" for collections
    items: tuple[_Node, ...] = ()
    pairs: tuple[tuple[_Node, _Node], ...] = field(default=())


def _yaml_loader() -> type[CSafeLoader] | type[SafeLoader]:
    import yaml

    try:
        return yaml.CSafeLoader  # libyaml: several times faster
    except AttributeError:  # PyYAML built without libyaml
        return yaml.SafeLoader


def _compose(text: str) -> _Node | None:
    import yaml

    loader = _yaml_loader()
    try:
        _check_events(yaml.parse(text, Loader=loader))
        root = yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        line = _mark_line(exc.problem_mark)
        if "maximum nesting depth" in str(exc.problem):
            # libyaml's own limit (0.2.6 and later) can trip first: its scanner reads
            # ahead of the events _check_events counts.
            raise _Invalid(line, f"nesting deeper than {_MAX_DEPTH} levels") from None
        raise _Invalid(line, f"invalid YAML: {_yaml_problem(exc)}") from None
    except yaml.YAMLError as exc:
        raise _reader_error(exc, text) from None
    return None if root is None else _to_node(root)


def _check_events(events: Iterable[Event]) -> None:
    from yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent

    depth = 0
    for event in events:
        if isinstance(event, AliasEvent):
            # No field needs them, and refusing them rules out alias-expansion bombs.
            raise _Invalid(_mark_line(event.start_mark), "YAML aliases (*name) are not allowed")
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > _MAX_DEPTH:
                line = _mark_line(event.start_mark)
                raise _Invalid(line, f"nesting deeper than {_MAX_DEPTH} levels")
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def _mark_line(mark: Any) -> int | None:
    line = getattr(mark, "line", None)
    return line + 1 if isinstance(line, int) else None


def _yaml_problem(exc: Any) -> str:
    # PyYAML words some problems as the second half of a sentence ("but found ...").
    problem = str(exc.problem or "syntax error").removeprefix("but ")
    if exc.context:
        problem = f"{problem} ({exc.context})"
    return " ".join(str(problem).split())  # one line, whatever PyYAML put in it


def _reader_error(exc: Exception, text: str) -> _Invalid:
    # ReaderError (a forbidden character) has a character offset, not a mark.
    position = getattr(exc, "position", None)
    reason = getattr(exc, "reason", None) or str(exc)
    if not isinstance(position, int):
        return _Invalid(None, f"invalid YAML: {' '.join(str(reason).split())}")
    code = ord(text[position]) if position < len(text) else 0
    line = text.count("\n", 0, position) + 1
    return _Invalid(line, f"invalid YAML: {reason} (character U+{code:04X})")


def _to_node(node: Node) -> _Node:
    from yaml.nodes import MappingNode, SequenceNode

    line = node.start_mark.line + 1
    if isinstance(node, MappingNode):
        pairs = tuple((_to_node(key), _to_node(value)) for key, value in node.value)
        return _Node(node.tag, line, pairs=pairs)
    if isinstance(node, SequenceNode):
        return _Node(node.tag, line, items=tuple(_to_node(item) for item in node.value))
    return _Node(node.tag, line, text=str(node.value))


# --------------------------------------------------------------------------- node helpers

_KIND_NAMES: Final = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "null": "null",
    "map": "mapping",
    "seq": "list",
}


def _kind(node: _Node) -> str:
    # Explicit or unusual tags (!!timestamp, !!set, !custom) become their own kinds, so a
    # strict type check rejects them rather than guessing.
    short = node.tag.removeprefix(_YAML_TAG)
    return _KIND_NAMES.get(short, short)


def _show(text: str) -> str:
    clipped = text if len(text) <= 60 else text[:57] + "..."
    return json.dumps(clipped, ensure_ascii=False)


def _describe(node: _Node) -> str:
    kind = _kind(node)
    if kind in ("mapping", "list"):
        return f"a {kind}"
    if kind == "string":
        return _show(node.text)
    if kind == "null":
        return "null"
    if not node.text:  # a collection with an unusual tag, such as !!set or !!omap
        return f"a value tagged {node.tag}"
    text = " ".join(node.text.split())  # a block or folded scalar would span lines
    return f"{kind} {_show(text)}" if kind.startswith("!") else f"{kind} {text[:60]}"


def _child(path: str, key: str) -> str:
    if len(key) > 60 or not _IDENT_RE.fullmatch(key):
        return f"{path}[{_show(key)}]"
    return f"{path}.{key}" if path else key


def _ref(full: str) -> str:
    # Quote a key path for a message, unless it already quotes a key inside brackets.
    return full if full.endswith("]") else f'"{full}"'


def _wrong(node: _Node, path: str, expected: str, hint: str | None = None) -> _Invalid:
    return _Invalid(node.line, f"{path} must be {expected}, got {_describe(node)}", hint)


def _string(node: _Node, path: str) -> str:
    if _kind(node) == "string":
        return _unicode(node, path)
    scalar = _kind(node) not in ("mapping", "list")
    raise _wrong(node, path, "a string", "put the value in double quotes" if scalar else None)


def _unicode(node: _Node, path: str) -> str:
    # A "\ud800" escape yields a lone surrogate: not encodable as UTF-8, so the canonical
    # JSON of the challenge would fail much later, far from the cause.
    try:
        node.text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid(node.line, f"{path} contains a lone surrogate escape") from None
    return node.text


def _pairs(node: _Node, path: str) -> dict[str, tuple[_Node, _Node]]:
    """Return {key: (key node, value node)}; a null value (e.g. `hook:` alone) is empty."""
    kind = _kind(node)
    if kind == "null":
        return {}
    if kind != "mapping":
        raise _wrong(node, path or "the file", "a mapping")
    pairs: dict[str, tuple[_Node, _Node]] = {}
    for key_node, value_node in node.pairs:
        if _kind(key_node) != "string":
            raise _Invalid(key_node.line, f"keys must be strings, got {_describe(key_node)}")
        key = _unicode(key_node, _child(path, "<key>"))
        if key in pairs:
            first = pairs[key][0].line
            message = f"duplicate key {_ref(_child(path, key))} (first on line {first})"
            raise _Invalid(key_node.line, message)
        pairs[key] = (key_node, value_node)
    return pairs


# --------------------------------------------------------------------------- field table

_Converter = Callable[[_Node, str], Any]


@dataclass(frozen=True)
class _Field:
    convert: _Converter
    default: Any = _REQUIRED


def _mapping_fields(node: _Node, path: str, fields: Mapping[str, _Field]) -> dict[str, Any]:
    pairs = _pairs(node, path)
    for key, (key_node, _) in pairs.items():
        if key not in fields:
            raise _unknown_key(key_node, _child(path, key), key, fields)
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        if name in pairs:
            key_node, value_node = pairs[name]
            # Errors about a whole value point at its key: for a block mapping or list the
            # value node starts on the next line, which reads oddly in a message.
            values[name] = spec.convert(replace(value_node, line=key_node.line), _child(path, name))
        elif spec.default is _REQUIRED:
            raise _Invalid(node.line, f"missing required key {_ref(_child(path, name))}")
        else:
            values[name] = spec.default
    return values


def _unknown_key(key_node: _Node, full: str, key: str, fields: Mapping[str, _Field]) -> _Invalid:
    from difflib import get_close_matches  # error path only

    close = get_close_matches(key, list(fields), n=1)
    hint = f'did you mean "{close[0]}"?' if close else None
    message = f"unknown key {_ref(full)} (known: {', '.join(fields)})"
    return _Invalid(key_node.line, message, hint)


def _section(fields: Mapping[str, _Field]) -> _Converter:
    def convert(node: _Node, path: str) -> dict[str, Any]:
        return _mapping_fields(node, path, fields)

    return convert


def _section_defaults(fields: Mapping[str, _Field]) -> dict[str, Any]:
    return {name: spec.default for name, spec in fields.items()}


# --------------------------------------------------------------------------- scalar converters


def _integer(node: _Node, path: str) -> int:
    if _kind(node) != "integer":
        raise _wrong(node, path, "an integer")
    text = node.text.replace("_", "")
    if len(text) > _MAX_NUMBER_TEXT:  # before int(): Python refuses over 4300 digits
        raise _wrong(node, path, "an integer of reasonable size")
    if not _INT_RE.fullmatch(text):
        hint = "write a plain decimal integer without leading zeros"
        raise _wrong(node, path, "a decimal integer", hint)
    return int(text)


def _decimal(node: _Node, path: str, *, strings: bool) -> Decimal:
    kind = _kind(node)
    allowed = ("integer", "number", "string") if strings else ("integer", "number")
    if kind not in allowed:
        raise _wrong(node, path, "a number")
    # YAML allows "_" as a digit separator in numbers, not in strings.
    text = node.text if kind == "string" else node.text.replace("_", "")
    if len(text) > _MAX_NUMBER_TEXT or not _DECIMAL_RE.fullmatch(text):
        raise _wrong(node, path, "a finite decimal number")
    value = Decimal(text)
    if value and abs(value.adjusted()) > _MAX_NUMBER_TEXT:
        raise _wrong(node, path, "a decimal number of reasonable size")
    return value


def _version(node: _Node, path: str) -> int:
    version = _integer(node, path)
    if version != CHALLENGE_VERSION:
        hint = f"this gitcoop reads challenge schema version {CHALLENGE_VERSION}"
        raise _wrong(node, path, str(CHALLENGE_VERSION), hint)
    return version


def _name(node: _Node, path: str) -> str:
    name = _string(node, path)
    if not _NAME_RE.fullmatch(name) or name in (".", ".."):
        raise _wrong(node, path, "1-64 characters from A-Z a-z 0-9 . _ -")
    return name


# Git's check-ref-format rules for a branch name, as (violated?, reason) pairs.
_BRANCH_RULES: Final[tuple[tuple[Callable[[str], bool], str], ...]] = (
    (lambda b: not b, "it is empty"),
    (lambda b: b.startswith("refs/"), 'write the short name, without "refs/heads/"'),
    (
        lambda b: _REF_FORBIDDEN_RE.search(b) is not None,
        "no spaces, control characters or ~^:?*[\\",
    ),
    (
        lambda b: b.startswith(("-", "/")) or b.endswith(("/", ".")),
        "no - or / first, no / or . last",
    ),
    (lambda b: ".." in b or "//" in b or "@{" in b or b == "@", 'no "..", "//", "@{" or "@"'),
    (
        lambda b: any(p.startswith(".") or p.endswith(".lock") for p in b.split("/")),
        'no component may start with "." or end with ".lock"',
    ),
)


def _first_problem(value: str, rules: Iterable[tuple[Callable[[str], bool], str]]) -> str | None:
    return next((reason for broken, reason in rules if broken(value)), None)


def _branch(node: _Node, path: str) -> str:
    branch = _string(node, path)
    problem = _first_problem(branch, _BRANCH_RULES)
    if problem is not None:
        raise _wrong(node, path, "a valid git branch name", problem)
    return branch


def _command(node: _Node, path: str) -> tuple[str, ...]:
    if _kind(node) == "list":
        argv = tuple(_string(item, f"{path}[{i}]") for i, item in enumerate(node.items))
    elif _kind(node) == "string":
        try:
            argv = tuple(shlex.split(_string(node, path)))
        except ValueError as exc:  # unbalanced quotes
            raise _Invalid(node.line, f"{path} cannot be split into arguments: {exc}") from None
    else:
        raise _wrong(node, path, "a string or a list of strings")
    if not argv or not argv[0]:
        raise _wrong(node, path, "a non-empty command")
    if any("\x00" in arg for arg in argv):
        raise _Invalid(node.line, f"{path} must not contain NUL characters")
    return argv


def _metric_name(node: _Node, path: str) -> str:
    name = _string(node, path)
    if not name:
        raise _wrong(node, path, "a non-empty string")
    return name


def _choice(*options: str) -> _Converter:
    expected = " or ".join(f'"{option}"' for option in options)

    def convert(node: _Node, path: str) -> str:
        if _kind(node) != "string" or node.text not in options:
            raise _wrong(node, path, expected)
        return node.text

    return convert


def _timeout(node: _Node, path: str) -> float:
    seconds = _decimal(node, path, strings=False)
    if not 0 < seconds <= _MAX_TIMEOUT:
        raise _wrong(node, path, f"a number of seconds > 0 and <= {_MAX_TIMEOUT}")
    # Whole milliseconds, rounded up: to_json records "timeout_ms" and a positive timeout
    # must not round down to 0.
    with localcontext(_WIDE):
        millis = (seconds * 1000).to_integral_value(rounding=ROUND_CEILING)
    return float(millis) / 1000


def _output_limit(node: _Node, path: str) -> int:
    limit = _integer(node, path)
    if not 0 < limit <= _MAX_OUTPUT_LIMIT:
        raise _wrong(node, path, f"an integer number of bytes > 0 and <= {_MAX_OUTPUT_LIMIT}")
    return limit


def _resource_limit(unit: str, most: int) -> _Converter:
    def convert(node: _Node, path: str) -> int:
        value = _integer(node, path)
        if not 0 < value <= most:
            raise _wrong(node, path, f"an integer number of {unit} > 0 and <= {most}")
        return value

    return convert


def _min_delta(node: _Node, path: str) -> Decimal:
    delta = _decimal(node, path, strings=True)
    if delta < 0:
        raise _wrong(node, path, "a decimal number >= 0")
    return _canonical_decimal(delta)


def _lineage(node: _Node, path: str) -> Decimal:
    part = _decimal(node, path, strings=True)
    if not 0 <= part < 1:
        hint = "0 keeps lineage off; 0.25 passes a quarter of each improvement back"
        raise _wrong(node, path, "a decimal number >= 0 and < 1", hint)
    return _canonical_decimal(part)


def _time(node: _Node, path: str) -> str:
    # YAML reads an unquoted date-time as a timestamp: accepted, as written, when it is
    # the one spelling records use, so comparing two times is comparing two strings.
    if _kind(node) not in ("string", "timestamp") or not _TIME_RE.fullmatch(node.text):
        hint = 'write UTC with seconds, as in "2026-01-31T23:59:59Z"'
        raise _wrong(node, path, "a UTC time YYYY-MM-DDTHH:MM:SSZ", hint)
    try:
        dt.datetime.strptime(node.text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise _wrong(node, path, "a real date and time") from None
    return node.text


_ROUND_FIELDS: Final = {
    "name": _Field(_name),
    "start": _Field(_time),
    "end": _Field(_time),
}


def _rounds(node: _Node, path: str) -> tuple[Round, ...]:
    if _kind(node) == "null":
        return ()
    if _kind(node) != "list":
        raise _wrong(node, path, "a list of rounds, each with name, start and end")
    found: list[tuple[int, Round]] = []
    for index, item in enumerate(node.items):
        where = f"{path}[{index}]"
        v = _mapping_fields(item, where, _ROUND_FIELDS)
        r = Round(v["name"], v["start"], v["end"])
        if r.end <= r.start:
            raise _Invalid(item.line, f"{where} ({r.name}) ends before it starts")
        for _, other in found:
            if other.name == r.name:
                raise _Invalid(item.line, f"{where}: a second round named {r.name!r}")
        found.append((item.line, r))
    found.sort(key=lambda pair: pair[1].start)
    for (_, before), (line, after) in itertools.pairwise(found):
        if after.start < before.end:
            message = f"{path}: round {after.name!r} starts before round {before.name!r} ends"
            raise _Invalid(line, message, "rounds must not overlap")
    return tuple(r for _, r in found)


def _pool(node: _Node, path: str) -> int:
    pool = _integer(node, path) if _kind(node) == "integer" else None
    if pool is None or not 0 < pool < _MAX_POOL:
        hint = "the pool is a whole number of the smallest unit, e.g. cents"
        raise _wrong(node, path, "a positive integer", hint)
    return pool


def _unit(node: _Node, path: str) -> str:
    unit = _string(node, path)
    if not _NAME_RE.fullmatch(unit):
        raise _wrong(node, path, "1-64 characters from A-Z a-z 0-9 . _ -")
    return unit


_REWARD_FIELDS: Final = {
    "pool": _Field(_pool),
    "unit": _Field(_unit, "units"),
    "rule": _Field(_choice(*REWARD_RULES), "proportional"),
}


def _rewards(node: _Node, path: str) -> Rewards:
    v = _mapping_fields(node, path, _REWARD_FIELDS)
    return Rewards(v["pool"], v["unit"], v["rule"])


# --------------------------------------------------------------------------- paths and globs

# Checks shared by protect patterns and data paths, as (violated?, reason) pairs, applied to
# the path without a trailing "/".
_PATH_RULES: Final[tuple[tuple[Callable[[str], bool], str], ...]] = (
    (lambda p: not p, "it is empty"),
    (lambda p: p.startswith("/"), "paths are relative to the repository root: no leading /"),
    (lambda p: "\\" in p, "separate directories with /, not \\"),
    (lambda p: "\x00" in p, "it contains a NUL character"),
    (
        lambda p: any(s in ("", ".", "..") for s in p.split("/")),
        'no empty, "." or ".." path segments',
    ),
)
_GLOB_RULES: Final[tuple[tuple[Callable[[str], bool], str], ...]] = (
    *_PATH_RULES,
    (lambda p: "[" in p or "]" in p, "character classes [...] are not supported; use ?"),
    (
        lambda p: any("**" in s and s != "**" for s in p.split("/")),
        '"**" must be a whole path segment, as in "data/**" or "**/x.py"',
    ),
)


def _protect(node: _Node, path: str) -> tuple[str, ...]:
    if _kind(node) == "null":
        items: tuple[_Node, ...] = ()
    elif _kind(node) == "list":
        items = node.items
    else:
        raise _wrong(node, path, "a list of glob patterns")
    patterns = {IMPLICIT_PROTECT}
    for index, item in enumerate(items):
        item_path = f"{path}[{index}]"
        pattern = _string(item, item_path)
        problem = _first_problem(pattern.removesuffix("/"), _GLOB_RULES)
        if problem is not None:
            raise _wrong(item, item_path, "a relative glob pattern", problem)
        patterns.add(pattern)
    return tuple(sorted(patterns))


def _data(node: _Node, path: str) -> tuple[tuple[str, str], ...]:
    entries: list[tuple[str, str]] = []
    for key, (key_node, value_node) in _pairs(node, path).items():
        entry = _child(path, key)
        problem = (
            "name a file, not a directory"
            if key.endswith("/")
            else _first_problem(key, _PATH_RULES)
        )
        if problem is not None:
            raise _Invalid(key_node.line, f"{entry} must name a relative file path", problem)
        entries.append((key, _digest(value_node, entry)))
    return tuple(sorted(entries))


def _digest(node: _Node, path: str) -> str:
    if _kind(node) != "string" or not _DIGEST_RE.fullmatch(node.text):
        hint = "compute it with: sha256sum <file>"
        raise _wrong(node, path, '"sha256:" followed by 64 hex digits', hint)
    return node.text.lower()  # one spelling, so to_json is canonical


@lru_cache(maxsize=512)
def _glob_matcher(pattern: str) -> Callable[[str], bool]:
    """A function telling whether a normalized path matches a protect pattern. A compiled
    regex for the usual pattern; a matcher that cannot backtrack for one whose segments
    hold several "*" (a regex of those takes exponential time on a path chosen to)."""
    segments = pattern.removesuffix("/").split("/")
    tame = sum(s == "**" for s in segments) <= 1 and all(
        s == "**" or s.count("*") <= 1 for s in segments
    )
    if tame:
        return lambda path: _glob_regex(pattern).fullmatch(path) is not None
    return lambda path: _segments_match(segments, path.split("/"))


def _segments_match(pattern: list[str], path: list[str]) -> bool:
    """Whether ``pattern``'s segments match a leading run of ``path``'s (a directory
    protects everything under it), in time linear in their product."""
    ends = {0}  # how many path segments the pattern so far can have matched
    for i, seg in enumerate(pattern):
        if seg == "**":
            least = min(ends) + (1 if i == len(pattern) - 1 else 0)  # a last ** needs one
            ends = set(range(least, len(path) + 1))
        else:
            ends = {j + 1 for j in ends if j < len(path) and _segment_match(seg, path[j])}
        if not ends:
            return False
    return True


def _segment_match(pattern: str, name: str) -> bool:
    # The classic two-pointer wildcard match: on a mismatch, only the last "*" is retried
    # one character further, so no state is visited twice.
    i = j = 0
    star, mark = -1, 0
    while j < len(name):
        if i < len(pattern) and pattern[i] in ("?", name[j]):
            i, j = i + 1, j + 1
        elif i < len(pattern) and pattern[i] == "*":
            star, mark, i = i, j, i + 1
        elif star >= 0:
            i, mark = star + 1, mark + 1
            j = mark
        else:
            return False
    return all(c == "*" for c in pattern[i:])


@lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a protect pattern; the regex must fullmatch a normalized path."""
    segments = pattern.removesuffix("/").split("/")
    last = len(segments) - 1
    body = "".join(_segment_regex(segment, i == last) for i, segment in enumerate(segments))
    # A match on a leading directory protects everything under it.
    return re.compile(body + "(?:/.*)?", re.DOTALL)


def _segment_regex(segment: str, last: bool) -> str:
    if segment == "**":
        return ".*" if last else "(?:[^/]+/)*"  # any depth, including none
    translated = "".join(_GLOB_CHARS.get(char, re.escape(char)) for char in segment)
    return translated if last else translated + "/"


_GLOB_CHARS: Final = {"*": "[^/]*", "?": "[^/]"}


def _normalize_repo_path(path: str) -> str:
    clean = posixpath.normpath(path) if path else ""
    if clean in ("", ".") or clean.startswith(("/", "../")) or clean == "..":
        raise ValueError(f"not a path inside the repository: {path!r}")
    return clean


# --------------------------------------------------------------------------- assembly


def _metric_file(node: _Node, path: str) -> str:
    name = _string(node, path)
    problem = _first_problem(name, _PATH_RULES) or (
        None if name.endswith((".json", ".yaml", ".yml")) else "it must end in .json, .yaml or .yml"
    )
    if problem is not None:
        raise _wrong(node, path, "a relative path of a JSON or YAML file", problem)
    return name


def _metric_key(node: _Node, path: str) -> str:
    key = _string(node, path)
    if not key or any(not part for part in key.split(".")):
        raise _wrong(node, path, 'a dotted key such as "test.accuracy"')
    return key


def _metric_regex(node: _Node, path: str) -> str:
    pattern = _string(node, path)
    try:
        groups = re.compile(pattern).groups
    except re.error as exc:
        raise _wrong(node, path, "a valid regular expression", str(exc)) from None
    if groups != 1:
        hint = r'for example "accuracy: ([0-9.]+)"'
        raise _wrong(
            node, path, f"a pattern with exactly one capture group (it has {groups})", hint
        )
    return pattern


_METRIC_FIELDS: Final = {
    "command": _Field(_command),
    "name": _Field(_metric_name, "score"),
    "direction": _Field(_choice("maximize", "minimize")),
    "timeout": _Field(_timeout, 600.0),
    "output_limit": _Field(_output_limit, _DEFAULT_OUTPUT_LIMIT),
    "file": _Field(_metric_file, None),
    "key": _Field(_metric_key, None),
    "regex": _Field(_metric_regex, None),
    "memory_mb": _Field(_resource_limit("MiB", _MAX_MEMORY_MB), None),
    "cpu_seconds": _Field(_resource_limit("seconds", _MAX_CPU_SECONDS), None),
}
_CREDIT_FIELDS: Final = {
    "min_delta": _Field(_min_delta, Decimal(0)),
    "require": _Field(_choice(*ASSURANCE_LEVELS), "self"),
    "tolerance": _Field(_min_delta, None),
    "lineage": _Field(_lineage, Decimal(0)),
}
_PRIVATE_FIELDS: Final = {"command": _Field(_command), "digest": _Field(_digest, None)}


def _private(node: _Node, path: str) -> Private:
    v = _mapping_fields(node, path, _PRIVATE_FIELDS)
    return Private(v["command"], v["digest"])


_HOOK_FIELDS: Final = {"on_error": _Field(_choice("refuse", "warn"), "refuse")}
_TOP_FIELDS: Final = {
    "version": _Field(_version),
    "name": _Field(_name),
    "branch": _Field(_branch, "main"),
    "metric": _Field(_section(_METRIC_FIELDS)),
    "protect": _Field(_protect, (IMPLICIT_PROTECT,)),
    "data": _Field(_data, ()),
    "credit": _Field(_section(_CREDIT_FIELDS), _section_defaults(_CREDIT_FIELDS)),
    "hook": _Field(_section(_HOOK_FIELDS), _section_defaults(_HOOK_FIELDS)),
    "rounds": _Field(_rounds, ()),
    "rewards": _Field(_rewards, None),
    "private": _Field(_private, None),
}


def _check_metric(values: Mapping[str, Any], node: _Node) -> None:
    m = values["metric"]
    if m["file"] is not None and m["regex"] is not None:
        raise _Invalid(node.line, "metric.file and metric.regex exclude each other", "keep one")
    if m["key"] is not None and m["file"] is None:
        raise _Invalid(node.line, "metric.key needs metric.file", "add metric.file, or drop key")


def _build(values: Mapping[str, Any]) -> Challenge:
    return Challenge(
        version=values["version"],
        name=values["name"],
        branch=values["branch"],
        metric=MetricConfig(**values["metric"]),
        protect=values["protect"],
        data=values["data"],
        min_delta=values["credit"]["min_delta"],
        on_error=values["hook"]["on_error"],
        require=values["credit"]["require"],
        tolerance=values["credit"]["tolerance"],
        lineage=values["credit"]["lineage"],
        rounds=values["rounds"],
        rewards=values["rewards"],
        private=values["private"],
    )


def _canonical_decimal(value: Decimal) -> Decimal:
    # normalize() drops trailing zeros; zero is pinned to a plain, unsigned 0. It rounds to
    # the context's precision, so a context of its own: the digest must not depend on the
    # caller's, and no value is longer than _MAX_NUMBER_TEXT digits.
    with localcontext(_WIDE):
        return value.normalize() if value else Decimal(0)


_WIDE: Final = Context(prec=2 * _MAX_NUMBER_TEXT)


def _plain_decimal(value: Decimal) -> str:
    if not value.is_finite():  # only a hand-built Challenge can hold one
        raise ValueError(f"not a finite decimal: {value}")
    return format(_canonical_decimal(value), "f")  # "f": never an exponent


# --------------------------------------------------------------------------- rendering


def _yaml_quote(value: str) -> str:
    """Quote a string as a YAML double-quoted scalar that reads back as the same string."""
    return '"' + "".join(_quote_char(char) for char in value) + '"'


def _quote_char(char: str) -> str:
    if char in ('"', "\\"):
        return "\\" + char
    code = ord(char)
    if 0x20 <= code < 0x7F or (code >= 0xA0 and char.isprintable()):
        return char
    # Escape everything else: control characters, and the characters YAML treats as line
    # breaks (U+0085, U+2028, U+2029), which would otherwise be folded into spaces.
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _protect_yaml(patterns: list[str]) -> str:
    if not patterns:
        return " []"
    return "".join(f"\n  - {_yaml_quote(pattern)}" for pattern in patterns)
