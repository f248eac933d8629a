"""The challenge schema: valid files, defaults, exact decimals, globs, and error messages
that name the file, the line and the key."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitcoop import challenge
from gitcoop.challenge import parse_challenge, parse_challenge_bytes, render_template
from gitcoop.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = (ROOT / "templates" / "challenge.yaml").read_text(encoding="utf-8")
DOCS = (ROOT / "docs" / "challenge-yaml.md").read_text(encoding="utf-8")
SRC = ".coop/challenge.yaml"
DIGEST = "sha256:" + "ab" * 32

FULL = f"""\
version: 1
name: digits
branch: dev/2024
metric:
  command: python "eval uate.py" --split public
  name: accuracy
  direction: minimize
  timeout: 1.5
  output_limit: 1_048_576
protect:
  - evaluate.py
  - data/**
  - evaluate.py
data:
  data/test.csv: "{DIGEST.upper().replace("SHA256", "sha256")}"
  a.csv: "{DIGEST}"
credit:
  min_delta: "0.0100"
hook:
  on_error: warn
"""

MINIMAL = """\
version: 1
name: digits
metric:
  command: python evaluate.py
  direction: maximize
"""


@pytest.fixture(params=["libyaml", "pure-python"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a test with both PyYAML front ends: their marks and messages must agree."""
    if request.param == "pure-python":
        monkeypatch.setattr(challenge, "_yaml_loader", lambda: yaml.SafeLoader)
    elif not yaml.__with_libyaml__:
        pytest.skip("PyYAML built without libyaml")


def with_metric(extra: str = "", **metric: str) -> str:
    """MINIMAL with metric keys replaced or added, then `extra` top-level text."""
    fields = {"command": "python evaluate.py", "direction": "maximize", **metric}
    body = "".join(f"  {key}: {value}\n" for key, value in fields.items())
    return f"version: 1\nname: digits\nmetric:\n{body}{extra}"


def error_of(text: str, source: str = SRC) -> str:
    with pytest.raises(ConfigError) as info:
        parse_challenge(text, source=source)
    message = str(info.value)
    assert "\n" not in message
    return message


def walk(value: Any) -> list[Any]:
    """Every value inside a JSON-like structure, containers included."""
    found = [value]
    children = value.values() if isinstance(value, dict) else value
    if isinstance(value, (dict, list)):
        for child in children:
            found.extend(walk(child))
    return found


# --------------------------------------------------------------------------- valid files


@pytest.mark.usefixtures("loader")
def test_full_file() -> None:
    ch = parse_challenge(FULL)
    assert ch.version == 1
    assert ch.name == "digits"
    assert ch.branch == "dev/2024"
    assert ch.metric == challenge.MetricConfig(
        command=("python", "eval uate.py", "--split", "public"),
        name="accuracy",
        direction="minimize",
        timeout=1.5,
        output_limit=1_048_576,
    )
    assert ch.protect == (".coop/**", "data/**", "evaluate.py")
    assert ch.data == (("a.csv", DIGEST), ("data/test.csv", DIGEST))
    assert ch.min_delta == Decimal("0.01")
    assert ch.on_error == "warn"
    assert not ch.maximize


def test_minimal_file_gets_defaults() -> None:
    ch = parse_challenge(MINIMAL)
    assert ch.branch == "main"
    assert ch.metric.command == ("python", "evaluate.py")
    assert (ch.metric.name, ch.metric.timeout, ch.metric.output_limit) == (
        "score",
        600.0,
        16 * 1024 * 1024,
    )
    assert ch.protect == (".coop/**",)
    assert ch.data == ()
    assert ch.min_delta == Decimal(0)
    assert ch.on_error == "refuse"
    assert ch.maximize


def test_defaults_written_out_equal_defaults_left_out() -> None:
    explicit = with_metric(
        'branch: main\nprotect: []\ndata: {}\ncredit: {min_delta: "0.000"}\n'
        "hook: {on_error: refuse}\n",
        name="score",
        timeout="600",
        output_limit="16777216",
    )
    assert parse_challenge(explicit).to_json() == parse_challenge(MINIMAL).to_json()


def test_empty_sections_and_lists_mean_defaults() -> None:
    ch = parse_challenge(MINIMAL + "protect:\ndata:\ncredit:\nhook:\n")
    assert ch.to_json() == parse_challenge(MINIMAL).to_json()


def test_command_as_list_is_kept_verbatim() -> None:
    ch = parse_challenge(with_metric(command='["python", "a b.py", "", "$HOME"]'))
    assert ch.metric.command == ("python", "a b.py", "", "$HOME")


def test_parse_bytes() -> None:
    assert parse_challenge_bytes(b"\xef\xbb\xbf" + MINIMAL.encode()).name == "digits"
    with pytest.raises(ConfigError, match=r"^x\.yaml: not valid UTF-8 at byte 13$"):
        parse_challenge_bytes(b"version: 1\nna\xffme: x\n", source="x.yaml")


# --------------------------------------------------------------------------- exact decimals


@pytest.mark.parametrize(
    ("written", "expected", "canonical"),
    [
        ('"0.01"', "0.01", "0.01"),
        ("0.01", "0.01", "0.01"),  # a YAML float: read from its text, not through float
        ("0.1", "0.1", "0.1"),
        ("0.010", "0.01", "0.01"),
        ('"1e-3"', "0.001", "0.001"),
        ("1.5e+3", "1500", "1500"),
        ("100", "100", "100"),
        ('"100.00"', "100", "100"),
        ("0", "0", "0"),
        ('"-0"', "0", "0"),
        ("1_000.000_1", "1000.0001", "1000.0001"),
    ],
)
def test_min_delta_is_exact(written: str, expected: str, canonical: str) -> None:
    ch = parse_challenge(with_metric(f"credit:\n  min_delta: {written}\n"))
    assert ch.min_delta == Decimal(expected)
    assert ch.to_json()["credit"]["min_delta"] == canonical


@pytest.mark.parametrize(("written", "millis"), [("0.3", 300), ("1.5", 1500), ("0.0001", 1)])
def test_timeout_is_whole_milliseconds(written: str, millis: int) -> None:
    ch = parse_challenge(with_metric(timeout=written))
    assert ch.metric.timeout_ms == millis
    assert ch.to_json()["metric"]["timeout_ms"] == millis


@pytest.mark.usefixtures("loader")
def test_resource_limits_are_off_unless_set_and_recorded_only_when_set() -> None:
    plain = parse_challenge(MINIMAL)
    assert (plain.metric.memory_mb, plain.metric.cpu_seconds) == (None, None)
    assert set(plain.to_json()["metric"]).isdisjoint({"memory_mb", "cpu_seconds"})
    limited = parse_challenge(with_metric(memory_mb="2_048", cpu_seconds="900"))
    assert (limited.metric.memory_mb, limited.metric.cpu_seconds) == (2048, 900)
    doc = limited.to_json()
    assert (doc["metric"]["memory_mb"], doc["metric"]["cpu_seconds"]) == (2048, 900)
    for ch in (plain, limited):
        assert challenge.Challenge.from_json(ch.to_json()) == ch


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("memory_mb", "0", "an integer number of MiB > 0 and <= 1048576, got integer 0"),
        ("memory_mb", "1048577", "an integer number of MiB > 0 and <= 1048576"),
        ("cpu_seconds", "-1", "an integer number of seconds > 0 and <= 8640000"),
        ("cpu_seconds", "1.5", "an integer, got number 1.5"),
        ("cpu_seconds", '"60"', 'an integer, got "60"'),
    ],
)
def test_resource_limits_must_be_positive_integers(key: str, value: str, expected: str) -> None:
    assert error_of(with_metric(**{key: value})).startswith(
        f"{SRC}:6: metric.{key} must be {expected}"
    )


@pytest.mark.usefixtures("loader")
def test_to_json_is_plain_and_canonical() -> None:
    doc = parse_challenge(FULL).to_json()
    for value in walk(doc):
        assert type(value) in (str, int, bool, list, dict, type(None)), repr(value)
    assert doc["metric"] == {
        "command": ["python", "eval uate.py", "--split", "public"],
        "name": "accuracy",
        "direction": "minimize",
        "timeout_ms": 1500,
        "output_limit": 1048576,
    }
    assert doc["data"] == {"a.csv": DIGEST, "data/test.csv": DIGEST}
    assert doc["credit"] == {"min_delta": "0.01"}


# --------------------------------------------------------------------------- template


@pytest.mark.parametrize("protect", [[], ["evaluate.py", "data/**", "eval/"]])
@pytest.mark.usefixtures("loader")
def test_rendered_template_round_trips(protect: list[str]) -> None:
    command = "python \"my eval.py\" --tag 'x: #1' \\\\ é 😀 \u2028"
    text = render_template(
        name="my.challenge-1",
        command=command,
        direction="minimize",
        branch="feature/x",
        timeout=45,
        protect=protect,
        template_text=TEMPLATE,
        metric_name="val accuracy",
    )
    ch = parse_challenge(text)
    assert ch.name == "my.challenge-1"
    assert ch.metric.name == "val accuracy"
    assert ch.branch == "feature/x"
    assert ch.metric.command == (
        ("python", "my eval.py", "--tag", "x: #1", "\\", "é", "😀", "\u2028")
    )
    assert ch.metric.direction == "minimize"
    assert ch.metric.timeout == 45
    assert ch.protect == tuple(sorted({".coop/**", *protect}))


def test_render_defaults_metric_name_to_score() -> None:
    text = render_template(
        name="x",
        command="python e.py",
        direction="maximize",
        branch="main",
        timeout=5,
        protect=[],
        template_text=TEMPLATE,
    )
    assert parse_challenge(text).metric.name == "score"
    assert "$" not in text


def test_rendered_strings_cannot_inject_keys() -> None:
    text = render_template(
        name="x",
        command="evil\nhook: {on_error: warn}\n#",
        direction="maximize",
        branch="main",
        timeout=5,
        protect=['a"\n  - b'],
        template_text=TEMPLATE,
    )
    ch = parse_challenge(text)
    assert ch.on_error == "refuse"
    assert ch.metric.command == ("evil", "hook:", "{on_error:", "warn}", "#")
    assert ch.protect == (".coop/**", 'a"\n  - b')


def test_template_comments_every_field() -> None:
    lines = TEMPLATE.splitlines()
    keys = [i for i, line in enumerate(lines) if re.match(r"\s*[a-z_]+:", line)]
    assert len(keys) == 16  # 13 fields and the metric, credit and hook sections
    for i in keys:
        if lines[i].rstrip().endswith(":"):
            continue  # a section header; its fields carry the comments
        assert lines[i - 1].lstrip().startswith("#"), lines[i]


def test_render_rejects_bad_values_and_templates() -> None:
    args: dict[str, Any] = {
        "name": "bad name",
        "command": "python e.py",
        "direction": "maximize",
        "branch": "main",
        "timeout": 5,
        "protect": [],
        "template_text": TEMPLATE,
    }
    with pytest.raises(ConfigError, match=r"^\.coop/challenge\.yaml:9: name must be 1-64"):
        render_template(**args)
    args.update(name="ok", template_text=TEMPLATE + "$nope\n")
    with pytest.raises(ConfigError, match=r"challenge template is broken"):
        render_template(**args)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            with_metric(comand="x"),
            f'{SRC}:6: unknown key "metric.comand" (known: command, name, direction, '
            "timeout, output_limit, file, key, regex, memory_mb, cpu_seconds) "
            '(did you mean "command"?)',
            id="unknown-nested-key",
        ),
        pytest.param(
            MINIMAL + "protekt: []\n",
            f'{SRC}:6: unknown key "protekt" (known: version, name, branch, metric, protect, '
            'data, credit, hook, rounds, rewards, private) (did you mean "protect"?)',
            id="unknown-top-key",
        ),
        pytest.param(
            MINIMAL + "hook:\n  on_error: warn\n  retries: 3\n",
            f'{SRC}:8: unknown key "hook.retries" (known: on_error)',
            id="unknown-key-no-suggestion",
        ),
        pytest.param(
            with_metric(direction="up"),
            f'{SRC}:5: metric.direction must be "maximize" or "minimize", got "up"',
            id="bad-direction",
        ),
        pytest.param(
            with_metric(timeout="-5"),
            f"{SRC}:6: metric.timeout must be a number of seconds > 0 and <= 86400, got integer -5",
            id="negative-timeout",
        ),
        pytest.param(
            with_metric(timeout="0.0"),
            f"{SRC}:6: metric.timeout must be a number of seconds > 0 and <= 86400, got number 0.0",
            id="zero-timeout",
        ),
        pytest.param(
            with_metric(timeout="86401"),
            f"{SRC}:6: metric.timeout must be a number of seconds > 0",
            id="huge-timeout",
        ),
        pytest.param(
            with_metric(timeout=".inf"),
            f"{SRC}:6: metric.timeout must be a finite decimal number, got number .inf",
            id="infinite-timeout",
        ),
        pytest.param(
            with_metric(timeout='"600"'),
            f'{SRC}:6: metric.timeout must be a number, got "600"',
            id="string-timeout",
        ),
        pytest.param(
            with_metric(timeout="yes"),
            f"{SRC}:6: metric.timeout must be a number, got boolean yes",
            id="boolean-timeout",
        ),
        pytest.param(
            with_metric(output_limit="0"),
            f"{SRC}:6: metric.output_limit must be an integer number of bytes > 0",
            id="zero-output-limit",
        ),
        pytest.param(
            with_metric(output_limit="1.5"),
            f"{SRC}:6: metric.output_limit must be an integer, got number 1.5",
            id="float-output-limit",
        ),
        pytest.param(
            MINIMAL + "data:\n  data/test.csv: md5:abc\n",
            f'{SRC}:7: data["data/test.csv"] must be "sha256:" followed by 64 hex digits, '
            'got "md5:abc" (compute it with: sha256sum <file>)',
            id="bad-digest",
        ),
        pytest.param(
            MINIMAL + f"data:\n  data/test.csv: sha256:{'a' * 63}\n",
            f'{SRC}:7: data["data/test.csv"] must be "sha256:" followed by 64 hex digits',
            id="short-digest",
        ),
        pytest.param(
            MINIMAL + f"data:\n  ../x.csv: {DIGEST}\n",
            f'{SRC}:7: data["../x.csv"] must name a relative file path',
            id="data-path-escapes",
        ),
        pytest.param(
            MINIMAL + f"data:\n  data/: {DIGEST}\n",
            f'{SRC}:7: data["data/"] must name a relative file path (name a file, not a dir',
            id="data-path-directory",
        ),
        pytest.param(
            MINIMAL + "protect:\n  - ok.py\n  - /etc/passwd\n",
            f'{SRC}:8: protect[1] must be a relative glob pattern, got "/etc/passwd" '
            "(paths are relative to the repository root: no leading /)",
            id="absolute-protect",
        ),
        pytest.param(
            MINIMAL + "protect:\n  - eval/../../x\n",
            f'{SRC}:7: protect[0] must be a relative glob pattern, got "eval/../../x" '
            '(no empty, "." or ".." path segments)',
            id="dotdot-protect",
        ),
        pytest.param(
            MINIMAL + 'protect: ["eval\\\\x.py"]\n',
            f'{SRC}:6: protect[0] must be a relative glob pattern, got "eval\\\\x.py" '
            "(separate directories with /, not \\)",
            id="backslash-protect",
        ),
        pytest.param(
            MINIMAL + "protect: [data**]\n",
            f'{SRC}:6: protect[0] must be a relative glob pattern, got "data**" '
            '("**" must be a whole path segment',
            id="partial-double-star",
        ),
        pytest.param(
            MINIMAL + "protect: ['[ab].py']\n",
            f"{SRC}:6: protect[0] must be a relative glob pattern",
            id="character-class",
        ),
        pytest.param(
            MINIMAL + "protect: evaluate.py\n",
            f'{SRC}:6: protect must be a list of glob patterns, got "evaluate.py"',
            id="protect-not-a-list",
        ),
        pytest.param(
            "version: 1\nname: digits\nmetric:\n  direction: maximize\n",
            f'{SRC}:3: missing required key "metric.command"',
            id="missing-nested",
        ),
        pytest.param(
            "# a comment\nversion: 1\nmetric:\n  command: x\n  direction: maximize\n",
            f'{SRC}:2: missing required key "name"',
            id="missing-top",
        ),
        pytest.param(
            "version: 1\nname: digits\n",
            f'{SRC}:1: missing required key "metric"',
            id="missing-section",
        ),
        pytest.param(
            with_metric(name="accuracy", direction="maximize", command="y").replace(
                "  name: accuracy\n", "  name: accuracy\n  name: loss\n"
            ),
            f'{SRC}:7: duplicate key "metric.name" (first on line 6)',
            id="duplicate-nested-key",
        ),
        pytest.param(
            MINIMAL + "name: other\n",
            f'{SRC}:6: duplicate key "name" (first on line 2)',
            id="duplicate-top-key",
        ),
        pytest.param(
            MINIMAL + f"data:\n  a.csv: {DIGEST}\n  a.csv: {DIGEST}\n",
            f'{SRC}:8: duplicate key data["a.csv"] (first on line 7)',
            id="duplicate-data-path",
        ),
        pytest.param(
            MINIMAL.replace("version: 1", "version: 2"),
            f"{SRC}:1: version must be 1, got integer 2 "
            "(this gitcoop reads challenge schema version 1)",
            id="version",
        ),
        pytest.param(
            MINIMAL.replace("version: 1", "version: 01"),
            f"{SRC}:1: version must be a decimal integer, got integer 01",
            id="octal-looking-integer",
        ),
        pytest.param(
            MINIMAL.replace("name: digits", "name: my digits"),
            f'{SRC}:2: name must be 1-64 characters from A-Z a-z 0-9 . _ -, got "my digits"',
            id="bad-name",
        ),
        pytest.param(
            MINIMAL.replace("name: digits", "name: 2024-01-01"),
            f"{SRC}:2: name must be a string, got timestamp 2024-01-01 "
            "(put the value in double quotes)",
            id="name-is-a-date",
        ),
        pytest.param(
            MINIMAL + "branch: refs/heads/main\n",
            f'{SRC}:6: branch must be a valid git branch name, got "refs/heads/main"',
            id="branch-full-ref",
        ),
        pytest.param(
            MINIMAL + "branch: a..b\n",
            f'{SRC}:6: branch must be a valid git branch name, got "a..b"',
            id="branch-dotdot",
        ),
        pytest.param(
            MINIMAL + "branch:\n",
            f"{SRC}:6: branch must be a string, got null",
            id="null-scalar",
        ),
        pytest.param(
            with_metric(command="[]"),
            f"{SRC}:4: metric.command must be a non-empty command, got a list",
            id="empty-command",
        ),
        pytest.param(
            with_metric(command="'python \"unclosed'"),
            f"{SRC}:4: metric.command cannot be split into arguments: No closing quotation",
            id="unbalanced-quotes",
        ),
        pytest.param(
            with_metric(command="[python, [x]]"),
            f"{SRC}:4: metric.command[1] must be a string, got a list",
            id="nested-command",
        ),
        pytest.param(
            "version: 1\nname: digits\nmetric: [python]\n",
            f"{SRC}:3: metric must be a mapping, got a list",
            id="section-not-mapping",
        ),
        pytest.param(
            MINIMAL + "credit:\n  min_delta: -0.5\n",
            f"{SRC}:7: credit.min_delta must be a decimal number >= 0, got number -0.5",
            id="negative-min-delta",
        ),
        pytest.param(
            MINIMAL + "credit:\n  min_delta: 'a lot'\n",
            f'{SRC}:7: credit.min_delta must be a finite decimal number, got "a lot"',
            id="text-min-delta",
        ),
        pytest.param(
            MINIMAL + "credit:\n  min_delta: '1e999999'\n",
            f"{SRC}:7: credit.min_delta must be a decimal number of reasonable size",
            id="huge-exponent",
        ),
        pytest.param(
            MINIMAL + "hook:\n  on_error: no\n",
            f'{SRC}:7: hook.on_error must be "refuse" or "warn", got boolean no',
            id="yaml-boolean",
        ),
        pytest.param(
            MINIMAL + "3: x\n",
            f"{SRC}:6: keys must be strings, got integer 3",
            id="non-string-key",
        ),
        pytest.param("", f'{SRC}: file is empty; expected a mapping with "version"', id="empty"),
        pytest.param("# only a comment\n", f"{SRC}: file is empty", id="comment-only"),
        pytest.param("- a\n- b\n", f"{SRC}:1: the file must be a mapping, got a list", id="list"),
        pytest.param(
            "just text\n", f'{SRC}:1: the file must be a mapping, got "just text"', id="scalar"
        ),
    ],
)
@pytest.mark.usefixtures("loader")
def test_error_names_file_line_and_key(text: str, message: str) -> None:
    assert error_of(text).startswith(message)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("version: 1\nname: [digits\nmetric: {}\n", 3, "expected ',' or ']'"),
        ("version: 1\n  name: x\n", 2, "mapping values are not allowed"),
        ("version: 1\nname: 'x\n", 3, "found unexpected end of stream"),
        ("a: 1\n---\nb: 2\n", 2, "found another document"),
        ("version: 1\nname: x\x01\n", 2, "not allowed (character U+0001)"),
        ("version: 1\nname: &n x\nbranch: *n\n", 3, "YAML aliases (*name) are not allowed"),
        ("version: 1\nx: " + "[" * 40 + "]" * 40 + "\n", 2, "nesting deeper than 16 levels"),
    ],
)
@pytest.mark.usefixtures("loader")
def test_yaml_errors_are_one_line_with_a_line_number(text: str, line: int, problem: str) -> None:
    message = error_of(text)
    assert message.startswith(f"{SRC}:{line}: ")
    assert problem in message


@pytest.mark.usefixtures("loader")
def test_deep_nesting_is_refused_quickly() -> None:
    # libyaml's composer would overflow the C stack on this, and parsing all of it is slow.
    assert "nesting deeper" in error_of("x: " + "[" * 100_000 + "]" * 100_000)
    assert "nesting deeper" in error_of("- " * 100_000 + "x")


def test_size_cap_comes_first() -> None:
    big = MINIMAL + "# " + "x" * challenge.MAX_FILE_BYTES + "\n"
    assert error_of(big).startswith(f"{SRC}: file is {len(big)} bytes; the limit is 262144")
    with pytest.raises(ConfigError, match="the limit is 262144 bytes"):
        parse_challenge_bytes(big.encode())


@pytest.mark.usefixtures("loader")
def test_lone_surrogate_escape_is_refused() -> None:
    # libyaml refuses the escape itself; the pure-Python reader lets it through.
    message = error_of(with_metric(command='"x\\ud800"'))
    assert message.startswith(f"{SRC}:4: ")


def test_source_names_the_file() -> None:
    assert error_of(with_metric(direction="up"), source="pinned challenge").startswith(
        "pinned challenge:5: metric.direction"
    )


# --------------------------------------------------------------------------- protect globs

GLOBS = parse_challenge(
    MINIMAL
    + """protect:
  - evaluate.py
  - data/**
  - eval/*.py
  - models/
  - lib
  - "**/secret.txt"
  - a/**/z.py
  - conf?.yaml
  - a+b (1).txt
"""
)


@pytest.mark.parametrize(
    ("path", "protected"),
    [
        (".coop/challenge.yaml", True),
        (".coop/allowed_signers", True),
        (".coop/sub/x", True),
        (".coopx/x", False),
        ("evaluate.py", True),
        ("sub/evaluate.py", False),
        ("evaluate.pyc", False),
        ("Evaluate.py", False),
        ("data/test.csv", True),
        ("data/a/b/c.csv", True),
        ("database/x.csv", False),
        ("eval/metric.py", True),
        ("eval/.hidden.py", True),
        ("eval/metric.txt", False),
        ("eval/sub/metric.py", False),
        ("eval/pkg.py/inner.txt", True),  # a directory the pattern names
        ("models", True),
        ("models/w.bin", True),
        ("models/deep/w.bin", True),
        ("modelsx/w.bin", False),
        ("lib", True),
        ("lib/util.py", True),
        ("library/util.py", False),
        ("secret.txt", True),
        ("x/y/secret.txt", True),
        ("x/notsecret.txt", False),
        ("a/z.py", True),
        ("a/b/c/z.py", True),
        ("b/a/z.py", False),
        ("conf1.yaml", True),
        ("conf12.yaml", False),
        ("conf/.yaml", False),
        ("a+b (1).txt", True),
        ("aab (1).txt", False),
        ("./evaluate.py", True),
        ("x/../evaluate.py", True),
        ("train.py", False),
    ],
)
def test_is_protected(path: str, protected: bool) -> None:
    assert GLOBS.is_protected(path) is protected


def test_coop_is_protected_even_without_patterns() -> None:
    ch = parse_challenge(MINIMAL)
    assert ch.is_protected(".coop/challenge.yaml")
    assert not ch.is_protected("evaluate.py")
    hand_built = dataclasses.replace(ch, protect=())
    assert hand_built.is_protected(".coop/challenge.yaml")


@pytest.mark.parametrize("path", ["", ".", "/etc/passwd", "../x", "a/../../x"])
def test_is_protected_refuses_paths_outside_the_repository(path: str) -> None:
    with pytest.raises(ValueError, match="not a path inside the repository"):
        GLOBS.is_protected(path)


# --------------------------------------------------------------------------- docs


@pytest.mark.parametrize(
    "key",
    [
        "version",
        "name",
        "branch",
        "metric.command",
        "metric.name",
        "metric.direction",
        "metric.timeout",
        "metric.output_limit",
        "metric.memory_mb",
        "metric.cpu_seconds",
        "protect",
        "data",
        "credit.min_delta",
        "hook.on_error",
    ],
)
def test_every_field_is_documented(key: str) -> None:
    assert f"### `{key}`" in DOCS
    assert f"| `{key}` |" in DOCS


def test_documented_examples_parse() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS, re.DOTALL)
    documents = [block for block in blocks if block.startswith("version:")]
    assert len(documents) == 2
    for block in documents:
        parse_challenge(block)
