"""``git coop init --from codalab``: CodaLab (v1.5) and Codabench (v2) bundles built as
their documentation describes them, scored end to end with real git, and each bad bundle
refused with the missing piece named."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from testing.world import Player, World

from gitcoop.bridges import Request
from gitcoop.bridges import codalab as bridge
from gitcoop.bridges import codalab_run as runner
from gitcoop.challenge import parse_challenge
from gitcoop.errors import ConfigError

# --------------------------------------------------------------------------- the bundles

# Accuracy of res/predictions.txt against ref/truth.txt, CodaLab style: argv is the input
# folder (holding ref/ and res/) and the output folder; the scores go to scores.txt.
SCORE_TXT = """\
import os, sys
input_dir, output_dir = sys.argv[1], sys.argv[2]
truth = open(os.path.join(input_dir, "ref", "truth.txt")).read().split()
pred = open(os.path.join(input_dir, "res", "predictions.txt")).read().split()
accuracy = sum(t == p for t, p in zip(truth, pred)) / len(truth)
print("scored", accuracy)
with open(os.path.join(output_dir, "scores.txt"), "w") as out:
    out.write("accuracy: %s\\nDuration: 0.1\\n" % accuracy)
"""

# The same, Codabench style: run from /app/program (its own folder), writing scores.json
# with the error rate. argv: the input folder, the predictions, the output folder.
SCORE_JSON = """\
import json, os, sys
truth = open(os.path.join(sys.argv[1], "ref", "truth.txt")).read().split()
pred = open(os.path.join(sys.argv[2], "predictions.txt")).read().split()
error = sum(t != p for t, p in zip(truth, pred)) / len(truth)
json.dump({"error": error, "duration": 1.5}, open(os.path.join(sys.argv[3], "scores.json"), "w"))
"""

# Imports the submission's model.py and writes its predictions for the input data.
INGESTION = """\
import os, sys
input_dir, output_dir, program_dir, submission_dir = sys.argv[1:5]
sys.path.insert(0, submission_dir)
import model
xs = open(os.path.join(input_dir, "test.txt")).read().split()
with open(os.path.join(output_dir, "predictions.txt"), "w") as out:
    out.write("\\n".join(model.predict(x) for x in xs) + "\\n")
print("ingested", len(xs), "inputs")
"""

TRUTH = "odd\neven\nodd\neven\n"
BASELINE = 'def predict(x):\n    return "odd"\n'  # half right
BETTER = 'def predict(x):\n    return "odd" if int(x) % 2 else "even"\n'

V1_YAML = """\
title: Parity
description: Tell odd numbers from even ones.
image: logo.png
has_registration: False
html:
  overview: overview.html
phases:
  1:
    phasenumber: 1
    label: "Development"
    start_date: 2026-01-01
    max_submissions: 100
    execution_time_limit: 120
    scoring_program: scoring_program.zip
    ingestion_program: ingestion_program.zip
    input_data: input_data.zip
    reference_data: reference_data.zip
  2:
    phasenumber: 2
    label: "Final"
    start_date: 2026-06-01
    scoring_program: scoring_program.zip
    reference_data: reference_data.zip
leaderboard:
  leaderboards:
    RESULTS: &RESULTS
      label: Results
      rank: 1
  columns:
    Duration:
      leaderboard: *RESULTS
      label: Duration
      rank: 2
      sort: asc
    accuracy:
      leaderboard: *RESULTS
      label: Accuracy
      rank: 1
      sort: desc
      numeric_format: 4
"""

V2_YAML = """\
version: 2
title: Parity bench
image: logo.png
terms: pages/terms.md
docker_image: codalab/codalab-legacy:py39
phases:
  - index: 0
    name: Development
    start: 2026-01-01
    execution_time_limit: 60
    tasks:
      - 0
tasks:
  - index: 0
    name: Parity task
    scoring_program: scoring_program/
    ingestion_program: ingestion_program/
    input_data: input_data/
    reference_data: reference_data/
leaderboards:
  - title: Results
    key: main
    columns:
      - title: Error
        key: error
        index: 0
        sorting: asc
      - title: Duration
        key: duration
        index: 1
        sorting: asc
"""


def _zip(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return root


def v1_parts(*, ingestion: bool = True, yaml_text: str = V1_YAML) -> dict[str, str | bytes]:
    """A CodaLab v1.5 bundle's files: competition.yaml and one zip per program or data set."""
    if not ingestion:  # a result submission: no ingestion program, no input data
        drop = (
            "    ingestion_program: ingestion_program.zip\n",
            "    input_data: input_data.zip\n",
        )
        for line in drop:
            yaml_text = yaml_text.replace(line, "")
    parts: dict[str, str | bytes] = {
        "competition.yaml": yaml_text,
        "logo.png": b"\x89PNG",
        "overview.html": "<p>Parity</p>",
        "scoring_program.zip": _zip(
            {
                "metadata": "command: python $program/score.py $input $output\n",
                "score.py": SCORE_TXT,
            }
        ),
        "reference_data.zip": _zip({"truth.txt": TRUTH}),
    }
    if ingestion:
        command = (
            "python $ingestion_program/ingestion.py $input $output $ingestion_program "
            "$submission_program"
        )
        # zipped with its folder, as the worker tolerates
        parts["ingestion_program.zip"] = _zip(
            {"ingestion/metadata": f"command: {command}\n", "ingestion/ingestion.py": INGESTION}
        )
        parts["input_data.zip"] = _zip({"test.txt": "1\n2\n3\n4\n"})
    return parts


def v2_parts() -> dict[str, str | bytes]:
    """A Codabench bundle's files, programs and data as folders, commands naming /app."""
    ingest = (
        "python /app/program/ingestion.py /app/input_data /app/output /app/program "
        "/app/ingested_program"
    )
    return {
        "competition.yaml": V2_YAML,
        "pages/terms.md": "Be nice.",
        "scoring_program/metadata.yaml": (
            "command: python score.py /app/input /app/input/res /app/output\n"
        ),
        "scoring_program/score.py": SCORE_JSON,
        "ingestion_program/metadata.yaml": f"command: {ingest}\n",
        "ingestion_program/ingestion.py": INGESTION,
        "input_data/test.txt": "1\n2\n3\n4\n",
        "reference_data/truth.txt": TRUTH,
    }


def _repo_with(m: Player, files: dict[str, str]) -> None:
    _write(m.repo, dict(files))
    m.git("add", ".")
    m.git("commit", "-qm", "the model")


def _score(p: Player, rev: str = "HEAD") -> Decimal:
    (att,) = json.loads(p.coop("show", rev, "--json").stdout)["attestations"]
    return Decimal(att["score"])


def _untouched(m: Player, head: str) -> None:
    assert m.head() == head
    assert m.ref("refs/coop/ledger") is None
    assert m.git("status", "--porcelain").stdout == ""
    assert not (m.repo / ".coop").exists() and not (m.repo / "evaluation").exists()


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_codalab_zip_bundle_end_to_end(world: World, tmp_path: Path) -> None:
    bundle = tmp_path / "parity.zip"
    bundle.write_bytes(_zip(v1_parts()))
    m = world.maintainer(init_args=None)
    _repo_with(m, {"model.py": BASELINE})
    out = m.coop("init", "--from", "codalab", str(bundle))
    assert "created challenge Parity" in out.stdout and "scored 0.5" in out.stdout
    assert "note: the score is the leaderboard column 'accuracy'" in out.stdout
    assert "the challenge scores phase 1 (Development)" in out.stdout

    challenge = parse_challenge((m.repo / ".coop/challenge.yaml").read_text())
    assert challenge.metric.command == ("python", "evaluation/codalab/run.py")
    assert (challenge.metric.name, challenge.metric.direction) == ("accuracy", "maximize")
    assert challenge.metric.timeout == 240  # 120 s for ingestion, 120 s for scoring
    assert "evaluation/codalab/**" in challenge.protect
    truth = "sha256:" + hashlib.sha256(TRUTH.encode()).hexdigest()
    assert dict(challenge.data) == {"evaluation/codalab/reference_data/truth.txt": truth}
    config = json.loads((m.repo / "evaluation/codalab/run.json").read_text())
    assert config["ingestion"][:2] == ["python", "$ingestion_program/ingestion.py"]
    assert (m.repo / "evaluation/codalab/ingestion_program/metadata").is_file()  # unwrapped
    assert m.git("status", "--porcelain").stdout == ""
    m.git("push", "-q", "-u", "origin", "main")

    ada = world.contributor("ada", "Ada", "ada@example.org")
    world.accept(ada)
    (ada.repo / "model.py").write_text(BETTER)
    ada.git("commit", "-qam", "ada tells even from odd")
    better = ada.head()
    ada.git("push", "-q", "origin", "main")
    assert _score(ada, better) == 1

    # Editing the copied reference data changes nothing: the pinned copy scores it and the
    # commit earns nothing.
    truth_file = ada.repo / "evaluation/codalab/reference_data/truth.txt"
    truth_file.write_text("odd\nodd\nodd\nodd\n")
    (ada.repo / "model.py").write_text(BASELINE)
    ada.git("commit", "-qam", "ada rewrites the answers")
    ada.git("push", "-q", "origin", "main")
    assert _score(ada) == Decimal("0.5")

    m.git("pull", "-q", "origin", "main")
    m.coop("sync", "origin")
    report = json.loads(m.coop("credit", "--json").stdout)
    rows = {r["email"]: r for r in report["contributors"]}
    assert Decimal(rows["ada@example.org"]["gain"]) == Decimal("0.5")
    assert {"commit": ada.head(), "reason": "modifies protected paths"} in report["uncredited"]
    assert m.coop("verify").returncode == 0


def test_codabench_folder_bundle_with_app_paths_and_scores_json(
    world: World, tmp_path: Path
) -> None:
    bundle = _write(tmp_path / "bench", v2_parts())
    m = world.maintainer(init_args=None)
    _repo_with(m, {"model.py": BASELINE})
    out = m.coop("init", "--from", "codalab", str(bundle), "--name", "parity")
    assert "created challenge parity" in out.stdout and "scored 0.5" in out.stdout
    assert "docker_image codalab/codalab-legacy:py39 is not used" in out.stdout
    challenge = parse_challenge((m.repo / ".coop/challenge.yaml").read_text())
    assert (challenge.metric.name, challenge.metric.direction) == ("error", "minimize")
    assert challenge.metric.timeout == 120
    assert json.loads((m.repo / "evaluation/codalab/run.json").read_text())["platform"] == (
        "codabench"
    )
    (m.repo / "model.py").write_text(BETTER)
    m.git("commit", "-qam", "better")
    m.git("push", "-q", "-u", "origin", "main")
    assert _score(m) == 0


def test_result_submission_scores_the_commits_files(world: World, tmp_path: Path) -> None:
    bundle = _write(tmp_path / "results", v1_parts(ingestion=False))
    m = world.maintainer(init_args=None)
    _repo_with(m, {"predictions.txt": "odd\nodd\nodd\neven\n"})
    out = m.coop("init", "--from", "codalab", str(bundle))
    assert "scored 0.75" in out.stdout
    assert "the commit's files are the result submission" in out.stdout
    challenge = parse_challenge((m.repo / ".coop/challenge.yaml").read_text())
    assert challenge.metric.timeout == 120


# --------------------------------------------------------------------------- bad bundles


def _bad_yaml(old: str, new: str) -> dict[str, str | bytes]:
    assert old in V1_YAML
    return v1_parts(yaml_text=V1_YAML.replace(old, new))


def _no_leaderboard() -> dict[str, str | bytes]:
    return v1_parts(yaml_text=V1_YAML[: V1_YAML.index("leaderboard:")])


def _traversal() -> bytes:
    buffer = io.BytesIO(_zip(v1_parts()))
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("../../escaped.txt", "x")
    return buffer.getvalue()


BAD = {
    "no scoring program": (
        lambda: _bad_yaml(
            "    scoring_program: scoring_program.zip\n    ingestion", "    ingestion"
        ),
        (),
        "the bundle has no scoring program (phase 1 (Development) has no scoring_program)",
    ),
    "no leaderboard": (_no_leaderboard, (), "competition.yaml has no leaderboard"),
    "no columns": (
        lambda: v1_parts(yaml_text=V1_YAML[: V1_YAML.index("  columns:")]),
        (),
        "competition.yaml's leaderboard has no columns",
    ),
    "no competition.yaml": (
        lambda: {k: v for k, v in v1_parts().items() if k != "competition.yaml"},
        (),
        "no competition.yaml in bundle",
    ),
    "unparseable yaml": (
        lambda: _bad_yaml("label: Results", "label: [Results"),
        (),
        "competition.yaml:",
    ),
    "program without metadata": (
        lambda: {**v1_parts(), "scoring_program.zip": _zip({"score.py": SCORE_TXT})},
        (),
        "the scoring program has no metadata file",
    ),
    "metadata without command": (
        lambda: {**v1_parts(), "scoring_program.zip": _zip({"metadata": "description: x\n"})},
        (),
        "the scoring program's metadata has no command",
    ),
    "unknown column": (
        v1_parts,
        ("--metric-name", "f1"),
        "the leaderboard has no column 'f1' (its columns: accuracy, Duration)",
    ),
    "no sorting": (
        lambda: _bad_yaml("      sort: desc\n", ""),
        (),
        "column 'accuracy' has no sorting",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_bundle_is_refused_and_nothing_is_written(
    world: World, tmp_path: Path, case: str
) -> None:
    make, args, message = BAD[case]
    bundle = _write(tmp_path / "bundle", make())
    m = world.maintainer(init_args=None)
    head = m.head()
    out = m.coop("init", "--from", "codalab", str(bundle), *args, check=False)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    _untouched(m, head)


def test_zip_with_path_traversal_is_refused(world: World, tmp_path: Path) -> None:
    bundle = tmp_path / "evil.zip"
    bundle.write_bytes(_traversal())
    m = world.maintainer(init_args=None)
    head = m.head()
    out = m.coop("init", "--from", "codalab", str(bundle), check=False)
    assert out.returncode == 2
    assert "the entry '../../escaped.txt' points outside the bundle (path traversal)" in out.stderr
    _untouched(m, head)
    assert not (tmp_path / "escaped.txt").exists()


# --------------------------------------------------------------------------- the proposal


def _propose(tmp_path: Path, parts: dict[str, str | bytes], **options: object) -> bridge.Proposal:
    bundle = _write(tmp_path / "bundle", parts)
    return bridge.propose(Request(tmp_path, bundle, **options))  # type: ignore[arg-type]


def test_proposal_lays_out_the_evaluation_folder(tmp_path: Path) -> None:
    proposal = _propose(tmp_path, v1_parts())
    names = set(proposal.files)
    assert {
        "evaluation/codalab/run.py",
        "evaluation/codalab/run.json",
        "evaluation/codalab/competition.yaml",
        "evaluation/codalab/scoring_program/score.py",
        "evaluation/codalab/scoring_program/metadata",
        "evaluation/codalab/ingestion_program/ingestion.py",
        "evaluation/codalab/ingestion_program/metadata",
        "evaluation/codalab/input_data/test.txt",
        "evaluation/codalab/reference_data/truth.txt",
    } == names
    runner_source = Path(runner.__file__).read_bytes()
    assert proposal.files["evaluation/codalab/run.py"] == runner_source
    assert '# Written by git coop init --from codalab from "bundle", phase 1' in proposal.challenge


def test_names_from_the_bundle_stay_in_their_comment(tmp_path: Path) -> None:
    yaml_text = V1_YAML.replace('label: "Development"', 'label: "Dev\\ncredit: {min_delta: 9}"')
    proposal = _propose(tmp_path, v1_parts(yaml_text=yaml_text))
    assert proposal.challenge.splitlines()[0].endswith("phase 1 (Dev credit: {min_delta: 9}).")
    assert parse_challenge(proposal.challenge).min_delta == 0


def test_sorting_key_direction_override_and_metric_name(tmp_path: Path) -> None:
    parts = v1_parts(yaml_text=V1_YAML.replace("sort: desc", "sorting: desc"))
    challenge = parse_challenge(_propose(tmp_path, parts).challenge)
    assert (challenge.metric.name, challenge.metric.direction) == ("accuracy", "maximize")
    proposal = _propose(tmp_path, v1_parts(), metric_name="Duration", direction="maximize")
    challenge = parse_challenge(proposal.challenge)
    assert (challenge.metric.name, challenge.metric.direction) == ("Duration", "maximize")
    assert "--direction maximize overrides the column's asc" in proposal.notes


def test_computed_column_is_refused_when_asked_for_and_skipped_by_default(
    tmp_path: Path,
) -> None:
    yaml_text = V2_YAML.replace(
        "      - title: Error\n",
        "      - title: Best\n        key: best\n        index: -1\n        sorting: asc\n"
        "        computation: min\n        computation_indexes: [0, 1]\n      - title: Error\n",
    )
    parts = {**v2_parts(), "competition.yaml": yaml_text}
    proposal = _propose(tmp_path, parts)
    assert parse_challenge(proposal.challenge).metric.name == "error"
    assert "the primary column 'best' is computed by the platform" in proposal.notes
    with pytest.raises(ConfigError, match="column 'best' is computed by the platform"):
        _propose(tmp_path, parts, metric_name="best")


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("python $program/score.py $input $output && echo done", "uses the shell's '&&'"),
        ("python $program/score.py $hidden $output", "$hidden, which the scoring step"),
        ("python /app/data/score.py", "/app/data, which the scoring step does not provide"),
        ("python 'score.py", "cannot be split into arguments"),
    ],
)
def test_unusable_commands_are_refused(tmp_path: Path, command: str, problem: str) -> None:
    parts = {**v2_parts(), "scoring_program/metadata.yaml": f"command: {command}\n"}
    if "$hidden" in command:  # $hidden is the scoring step's; the ingestion step lacks it
        parts["ingestion_program/metadata.yaml"] = f"command: {command}\n"
        problem = "$hidden, which the ingestion step does not provide (hidden data"
    with pytest.raises(ConfigError) as caught:
        _propose(tmp_path, parts)
    assert problem in caught.value.message


def test_bundle_zipped_with_its_folder_and_junk(tmp_path: Path) -> None:
    parts = {f"parity/{name}": data for name, data in v2_parts().items()}
    parts["__MACOSX/parity/._score.py"] = b"junk"
    parts["parity/reference_data/.DS_Store"] = b"junk"
    bundle = tmp_path / "parity.zip"
    bundle.write_bytes(_zip(parts))
    proposal = bridge.propose(Request(tmp_path, bundle))
    assert "evaluation/codalab/reference_data/.DS_Store" not in proposal.files
    assert "evaluation/codalab/reference_data/truth.txt" in proposal.files


def test_app_paths_in_program_code_are_pointed_out(tmp_path: Path) -> None:
    code = 'truth = open("/app/input/ref/truth.txt")\n'
    proposal = _propose(tmp_path, {**v2_parts(), "scoring_program/score.py": code})
    (note,) = [n for n in proposal.notes if "/app" in n]
    assert note.startswith("evaluation/codalab/scoring_program/score.py names Codabench's /app")
    assert not [n for n in _propose(tmp_path / "plain", v2_parts()).notes if "/app" in n]


def test_references_outside_the_bundle_or_absent_are_refused(tmp_path: Path) -> None:
    parts = {**v2_parts(), "competition.yaml": V2_YAML.replace("reference_data/", "../secret/")}
    with pytest.raises(ConfigError, match="points outside the bundle"):
        _propose(tmp_path, parts)
    parts = {**v2_parts(), "competition.yaml": V2_YAML.replace("reference_data/", "gone/")}
    with pytest.raises(ConfigError, match="reference_data 'gone/' is not in the bundle"):
        _propose(tmp_path, parts)
    with pytest.raises(ConfigError, match="needs the bundle"):
        bridge.propose(Request(tmp_path))


# --------------------------------------------------------------------------- the runner


def test_runner_placeholders_and_app_paths(tmp_path: Path) -> None:
    step = tmp_path / "step"
    assert runner.substitute("$program/score.py", "scoring", step) == f"{step}/program/score.py"
    assert runner.substitute("--in=/app/input/res/", "scoring", step) == f"--in={step}/input/res/"
    assert runner.substitute("$program", "ingestion", step) == f"{step}/ingestion_program"
    assert runner.substitute("/app/program", "ingestion", step) == f"{step}/ingestion_program"
    assert runner.substitute("$input_data", "ingestion", step) == f"{step}/input_data"
    assert runner.substitute("/x/app/input", "scoring", step) == "/x/app/input"
    assert runner.unknown_names(["$tmp", "$nope", "/app/data"], "scoring") == ["$nope", "/app/data"]


def test_runner_reads_scores_exactly(tmp_path: Path) -> None:
    (tmp_path / "scores.txt").write_text("# comment\nset1_score: 0.123456789012345678\nx: nan\n")
    assert runner.score(tmp_path, "set1_score") == "0.123456789012345678"
    with pytest.raises(runner.RunError, match=r"x in scores\.txt is NaN, not a finite number"):
        runner.score(tmp_path, "x")
    with pytest.raises(runner.RunError, match=r"has no key 'f1' \(its keys: set1_score, x\)"):
        runner.score(tmp_path, "f1")
    (tmp_path / "scores.json").write_text('{"acc": 1e-3, "ok": true}')  # json wins over txt
    assert runner.score(tmp_path, "acc") == "0.001"
    with pytest.raises(runner.RunError, match=r"ok in scores\.json is not a number"):
        runner.score(tmp_path, "ok")
    (tmp_path / "scores.json").unlink()
    (tmp_path / "scores.txt").unlink()
    with pytest.raises(runner.RunError, match=r"neither scores\.json nor scores\.txt"):
        runner.score(tmp_path, "acc")


def test_runner_step_failures_name_the_step(tmp_path: Path) -> None:
    fail = ["python", "-c", "import sys; print('working', file=sys.stderr); sys.exit('bad input')"]
    with pytest.raises(
        runner.RunError, match="the scoring program exited with status 1: bad input"
    ):
        runner.run_step("scoring", fail, tmp_path, tmp_path, 10)
    slow = ["python", "-c", "import time; time.sleep(30)"]
    with pytest.raises(runner.RunError, match=r"the ingestion program ran longer than its 0\.3 s"):
        runner.run_step("ingestion", slow, tmp_path, tmp_path, 0.3)
    with pytest.raises(runner.RunError, match="cannot start the scoring program 'no-such-prog'"):
        runner.run_step("scoring", ["no-such-prog"], tmp_path, tmp_path, 10)
