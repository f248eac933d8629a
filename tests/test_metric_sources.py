"""Scores read from a metrics file the command writes (DVC style) or by a regex over its
output, end to end through the pre-push hook, and each way it can be wrong."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from testing.world import Player, World

from gitcoop.errors import MetricError
from gitcoop.metric import score_from_file, score_from_regex

WRITES_FILE = """\
import json, pathlib
text = pathlib.Path("score.txt").read_text().strip()
if text[0].isdigit():  # else it writes nothing, as a broken pipeline stage would
    score = float(text)
    pathlib.Path("metrics.json").write_text(json.dumps({"test": {"acc": score, "loss": 0}}))
print("done")
"""
PRINTS_LOG = """\
import pathlib
print("epoch 1 accuracy: 0.1")
print("final accuracy: " + pathlib.Path("score.txt").read_text().strip())
print("bye")
"""


def _challenge(world: World, script: str, metric: str) -> Player:
    m = world.maintainer(init_args=None)
    (m.repo / "evaluate.py").write_text(script)
    (m.repo / ".coop").mkdir()
    (m.repo / ".coop/challenge.yaml").write_text(
        "version: 1\nname: toy\nmetric:\n  command: python evaluate.py\n  name: accuracy\n"
        f"  direction: maximize\n{metric}protect: [evaluate.py]\n"
    )
    m.git("add", ".")
    m.git("commit", "-qm", "challenge by hand")
    m.coop("init")
    m.git("push", "-q", "origin", "main")
    return m


def _score(m: Player) -> str:
    return str(json.loads(m.coop("show", "HEAD", "--json").stdout)["attestations"][0]["score"])


def test_a_metrics_file_and_a_dotted_key(world: World) -> None:
    m = _challenge(world, WRITES_FILE, "  file: metrics.json\n  key: test.acc\n")
    assert _score(m) == "0.5"
    m.commit_score("0.75")
    m.git("push", "-q", "origin", "main")
    assert _score(m) == "0.75"


def test_a_regex_over_the_output_takes_its_last_match(world: World) -> None:
    m = _challenge(world, PRINTS_LOG, '  regex: "accuracy: ([0-9.]+)"\n')
    assert _score(m) == "0.5"


def test_a_metric_that_writes_no_file_refuses_the_push(world: World) -> None:
    m = _challenge(world, WRITES_FILE, "  file: metrics.json\n  key: test.acc\n")
    before = m.ref("refs/coop/ledger")
    (m.repo / "score.txt").write_text("oops\n")
    m.git("commit", "-qam", "broken")
    push = m.git("push", "origin", "main", check=False)
    assert push.returncode != 0 and "the metric wrote no metrics.json" in push.stderr
    assert m.ref("refs/coop/ledger") == before


@pytest.mark.parametrize(
    ("content", "name", "key", "message"),
    [
        (None, "metrics.json", "acc", "the metric wrote no metrics.json"),
        ('{"test": {"acc": 0.9}}', "metrics.json", "test.loss", "no key 'test.loss'"),
        ('{"test": 0.9}', "metrics.json", "test.acc", "nothing named 'acc' at test"),
        ('{"acc": NaN}', "metrics.json", "acc", "not valid JSON"),
        ('{"acc": "0.9"}', "metrics.json", "acc", "is a string, not a number"),
        ('{"acc": true}', "metrics.json", "acc", "is a boolean, not a number"),
        ("{not json", "metrics.json", "acc", "not valid JSON"),
        ("acc: .inf\n", "metrics.yaml", "acc", "not a usable score"),
        ("acc: [1, 2]\n", "metrics.yaml", "acc", "not a number"),
        ("acc: {a: [b\n", "metrics.yaml", "acc", "not valid YAML"),
    ],
)
def test_a_bad_metrics_file_is_named(
    tmp_path: Path, content: str | None, name: str, key: str, message: str
) -> None:
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(MetricError) as err:
        score_from_file(tmp_path, name, key, 1 << 20)
    assert message in err.value.message


def test_a_metrics_file_outside_the_checkout_or_too_big_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big.json").write_text('{"acc": 0.5}' + " " * 100)
    with pytest.raises(MetricError, match="limit"):
        score_from_file(tmp_path, "big.json", "acc", 50)
    (tmp_path / "link.json").symlink_to(tmp_path / "big.json")
    with pytest.raises(MetricError, match="outside"):
        score_from_file(tmp_path, "link.json", "acc", 1 << 20)
    assert score_from_file(tmp_path, "big.json", "acc", 1 << 20) == Decimal("0.5")


def test_yaml_and_exact_decimals(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("test:\n  acc: 0.1\n")
    assert score_from_file(tmp_path, "m.yaml", "test.acc", 1 << 20) == Decimal("0.1")
    (tmp_path / "m.json").write_text('{"acc": 0.12345678901234567890123}')
    assert str(score_from_file(tmp_path, "m.json", "acc", 1 << 20)) == "0.12345678901234567890123"


@pytest.mark.parametrize(
    ("out", "message"),
    [(b"nothing here\n", "matches metric.regex"), (b"accuracy: 1e999999\n", "not a score")],
)
def test_a_regex_that_finds_no_score_is_named(out: bytes, message: str) -> None:
    with pytest.raises(MetricError, match=message):
        score_from_regex(out, r"accuracy: (\S+)")
    assert score_from_regex(b"accuracy: 0.1\naccuracy: 0.7\n", r"accuracy: (\S+)") == Decimal("0.7")


def test_a_committed_metrics_file_never_passes_for_the_run(world: World) -> None:
    # The metric writes nothing for a non-number; a metrics.json committed beside it
    # claiming 0.99 must not be read as the score.
    m = _challenge(world, WRITES_FILE, "  file: metrics.json\n  key: test.acc\n")
    (m.repo / "metrics.json").write_text(json.dumps({"test": {"acc": 0.99}}))
    (m.repo / "score.txt").write_text("oops\n")
    m.git("add", "metrics.json", "score.txt")
    m.git("commit", "-qm", "a claimed score")
    push = m.git("push", "origin", "main", check=False)
    assert push.returncode != 0 and "the metric wrote no metrics.json" in push.stderr
