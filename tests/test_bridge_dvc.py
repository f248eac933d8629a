"""`git coop init --from dvc`: a real DVC pipeline in a real git repository, end to end,
and the proposals and refusals of the bridge."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from testing.world import Player, World, run

from gitcoop.bridges import Request, propose
from gitcoop.challenge import parse_challenge
from gitcoop.errors import ConfigError

PARAMS = "train:\n  weight: 0.5\n"
TRAIN = textwrap.dedent(
    """\
    import json, yaml
    weight = yaml.safe_load(open("params.yaml"))["train"]["weight"]
    json.dump({"weight": weight}, open("model.json", "w"))
    """
)
# The test accuracy peaks at weight 0.8; the file holds one number, so the bridge finds it.
EVALUATE = textwrap.dedent(
    """\
    import json
    weight = json.load(open("model.json"))["weight"]
    json.dump({"test": {"acc": round(1 - abs(weight - 0.8), 6)}}, open("metrics.json", "w"))
    """
)
PIPELINE = textwrap.dedent(
    """\
    stages:
      train:
        cmd: python train.py
        deps: [train.py]
        params: [train.weight]
        outs: [model.json]
      evaluate:
        cmd: python evaluate.py
        deps: [evaluate.py, model.json]
        metrics:
          - metrics.json:
              cache: false
    """
)


@pytest.fixture
def dvc_world(world: World, tmp_path: Path) -> World:
    """The world, with DVC kept quiet and inside the test's directory."""
    world.base_env.update(
        {
            "DVC_NO_ANALYTICS": "1",
            "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site"),
            "DVC_SYSTEM_CONFIG_DIR": str(tmp_path / "dvc-system"),
        }
    )
    return world


def _pipeline(p: Player, *, repro: bool = True) -> None:
    """Turn the player's repository into the two-stage DVC pipeline, run and committed."""
    p.git("rm", "-q", "score.txt")
    for name, text in {
        "params.yaml": PARAMS,
        "train.py": TRAIN,
        "evaluate.py": EVALUATE,
        "dvc.yaml": PIPELINE,
    }.items():
        (p.repo / name).write_text(text)
    run(p.repo, "dvc", "init", "-q", env=p.env)
    if repro:
        run(p.repo, "dvc", "repro", "-q", env=p.env)
    p.git("add", "-A")
    p.git("commit", "-qm", "a DVC pipeline")


@pytest.mark.slow
def test_a_dvc_pipeline_becomes_a_challenge_and_credits_a_better_param(dvc_world: World) -> None:
    m = dvc_world.maintainer(init_args=None)
    _pipeline(m)
    out = m.coop("init", "--from", "dvc", "--direction", "maximize", "--name", "dvc-toy")
    assert "scored 0.7" in out.stdout
    assert "note: the score is test.acc in metrics.json, written by stage evaluate" in out.stdout
    challenge = parse_challenge((m.repo / ".coop/challenge.yaml").read_text())
    assert challenge.metric.command == ("dvc", "repro", "--force", "evaluate")
    assert (challenge.metric.file, challenge.metric.key) == ("metrics.json", "test.acc")
    assert set(challenge.protect) >= {"dvc.yaml", "evaluate.py"}
    assert not {"params.yaml", "dvc.lock", "metrics.json", "train.py"} & set(challenge.protect)
    m.git("push", "-q", "-u", "origin", "main")

    ada = dvc_world.contributor("ada", "Ada", "ada@example.org")
    dvc_world.accept(ada)
    (ada.repo / "params.yaml").write_text("train:\n  weight: 0.7\n")
    run(ada.repo, "dvc", "repro", "-q", env=ada.env)  # as DVC users do: commit what it made
    # ...and a committed metrics file is never taken for the score: the stage rewrites it.
    (ada.repo / "metrics.json").write_text('{"test": {"acc": 0.99}}')
    ada.git("add", "params.yaml", "dvc.lock", "metrics.json")
    ada.git("commit", "-qm", "a better weight")
    ada.git("push", "-q", "origin", "main")

    m.git("pull", "-q", "origin", "main")
    m.coop("sync", "origin")
    shown = json.loads(m.coop("show", ada.head(), "--json").stdout)
    assert [a["score"] for a in shown["attestations"]] == ["0.9"]
    report = json.loads(m.coop("credit", "--json").stdout)
    rows = {r["email"]: r for r in report["contributors"]}
    assert rows["ada@example.org"]["gain"] == "0.2"


def _repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir()
    run(root, "git", "init", "-q", "-b", "main")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "pipeline")
    return root


def _propose(root: Path, **options: str) -> tuple[dict[str, object], list[str]]:
    proposal = propose("dvc", Request(root, direction="maximize", **options))
    c = parse_challenge(proposal.challenge)
    metric = {"command": " ".join(c.metric.command), "file": c.metric.file, "key": c.metric.key}
    return {**metric, "protect": sorted(set(c.protect) - {".coop/**"})}, proposal.notes


ONE_STAGE = textwrap.dedent(
    """\
    stages:
      fit:
        cmd: python fit.py --out eval
        deps: [fit.py, data.csv]
        metrics: [eval/scores.yaml]
    """
)


def test_a_stage_that_needs_no_other_runs_its_own_cmd_without_dvc(tmp_path: Path) -> None:
    scores = "loss: 0.25\nsteps: 10\n"
    root = _repo(
        tmp_path / "r",
        {"dvc.yaml": ONE_STAGE, "fit.py": "", "data.csv": "", "eval/scores.yaml": scores},
    )
    got, notes = _propose(root, metric_name="loss")
    assert got == {
        "command": "python fit.py --out eval",
        "file": "eval/scores.yaml",
        "key": "loss",
        "protect": ["dvc.yaml"],  # fit.py is the model here: contributors change it
    }
    assert any("trains and scores in one" in n for n in notes)


@pytest.mark.parametrize(
    ("cmd", "why"),
    [
        ("python fit.py && python report.py", "needs a shell"),
        ("python fit.py > log.txt", "needs a shell"),
        ("python fit.py ${train.epochs}", "needs a shell"),
        ("[python fit.py, python report.py]", "runs its commands"),
    ],
)
def test_a_cmd_that_needs_a_shell_runs_through_dvc_repro(
    tmp_path: Path, cmd: str, why: str
) -> None:
    pipeline = ONE_STAGE.replace("python fit.py --out eval", cmd)
    root = _repo(tmp_path / "r", {"dvc.yaml": pipeline, "fit.py": "", "data.csv": ""})
    got, notes = _propose(root, metric_name="loss")
    assert got["command"] == "dvc repro --force fit"
    assert why in notes[0]


def test_in_a_pipeline_only_the_scoring_stages_own_inputs_are_protected(tmp_path: Path) -> None:
    pipeline = textwrap.dedent(
        """\
        stages:
          prepare:
            cmd: python src/prepare.py
            deps: [src/prepare.py, src/common.py, data/raw.csv]
            outs: [data/features]
          train:
            cmd: python src/train.py
            deps: [src/train.py, data/features, src/common.py]
            params: [train]
            outs: [model.pkl]
          evaluate:
            cmd: python src/evaluate.py
            deps: [src/evaluate.py, src/common.py, model.pkl, data/features, data/test.csv]
            params: [{eval.yaml: [threshold]}]
            metrics:
              - eval/metrics.json:
                  cache: false
        """
    )
    files = {f"src/{n}.py": "" for n in ("prepare", "train", "evaluate", "common")}
    files |= {"dvc.yaml": pipeline, "data/raw.csv": "", "data/test.csv": "", "params.yaml": ""}
    files |= {"eval.yaml": "", "eval/metrics.json": '{"auc": 0.5, "bad": "x", "n": true}'}
    got, notes = _propose(_repo(tmp_path / "r", files))
    assert got == {
        "command": "dvc repro --force evaluate",
        "file": "eval/metrics.json",
        "key": "auc",  # the only number: strings and booleans are not scores
        "protect": ["data/test.csv", "dvc.yaml", "src/evaluate.py"],
    }
    assert "runs it after the stages it needs (prepare, train)" in notes[0]
    assert "src/common.py (also read by prepare, train)" in notes[1]


def test_an_uncommitted_metrics_file_is_read_from_the_work_tree(tmp_path: Path) -> None:
    root = _repo(tmp_path / "r", {"dvc.yaml": ONE_STAGE, "fit.py": "", "data.csv": ""})
    (root / "eval").mkdir()
    (root / "eval/scores.yaml").write_text("test:\n  rmse: 1.5\n")
    got, _ = _propose(root)
    assert got["key"] == "test.rmse"


def test_top_level_metrics_belong_to_the_stage_that_writes_them(tmp_path: Path) -> None:
    pipeline = textwrap.dedent(
        """\
        stages:
          train:
            cmd: python train.py
            deps: [train.py]
            outs: [dvclive]
        metrics:
          - dvclive/metrics.json
        """
    )
    root = _repo(tmp_path / "r", {"dvc.yaml": pipeline, "train.py": ""})
    got, _ = _propose(root, metric_name="acc")
    assert (got["file"], got["key"]) == ("dvclive/metrics.json", "acc")


TWO_METRIC_STAGES = textwrap.dedent(
    """\
    stages:
      a:
        cmd: python a.py
        metrics: [a.json]
      b:
        cmd: python b.py
        metrics: [b.json]
    """
)


M = ("--direction", "maximize")


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({"README": ""}, M, "no dvc.yaml in "),
        ({"dvc.yaml": "stages:\n  a:\n    cmd: python a.py\n"}, M, "no stage of dvc.yaml writes"),
        ({"dvc.yaml": "stages: {}\n"}, M, "dvc.yaml has no stages"),
        ({"dvc.yaml": "stages: [\n"}, M, "dvc.yaml is not valid YAML"),
        ({"dvc.yaml": TWO_METRIC_STAGES}, M, "several stages of dvc.yaml write metrics: a, b"),
        ({"dvc.yaml": TWO_METRIC_STAGES}, (*M, "--stage", "c"), "dvc.yaml has no stage 'c'"),
        (
            {"dvc.yaml": TWO_METRIC_STAGES, "a.json": '{"x": 1, "y": {"z": 2}}'},
            (*M, "--stage", "a"),
            "stage a's metrics hold 2 numbers (a.json: x, y.z)",
        ),
        (
            {"dvc.yaml": TWO_METRIC_STAGES, "a.json": '{"x": 1}'},
            (*M, "--stage", "a", "--metric-name", "q"),
            "stage a's metrics have no number at 'q'",
        ),
        ({"dvc.yaml": TWO_METRIC_STAGES}, (*M, "--stage", "a"), "a.json is not in the repository"),
        (
            {"dvc.yaml": ONE_STAGE.replace("eval/scores.yaml", "m.toml")},
            M,
            "stage fit's metrics (m.toml) are not JSON or YAML",
        ),
        (
            {"dvc.yaml": ONE_STAGE, "fit.py": "", "eval/scores.yaml": "loss: 1\n"},
            M,
            "stage fit reads data.csv, which is not committed",
        ),
        (
            {"dvc.yaml": TWO_METRIC_STAGES, "a.json": '{"x": 1}'},
            ("--stage", "a"),
            "DVC does not say whether a higher x is better",
        ),
    ],
)
def test_bad_input_is_refused_in_one_line_and_writes_nothing(
    world: World, files: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    m = world.maintainer(init_args=None)
    for name, text in files.items():
        (m.repo / name).parent.mkdir(parents=True, exist_ok=True)
        (m.repo / name).write_text(text)
    m.git("add", "-A")
    m.git("commit", "-qm", "the pipeline")
    out = m.coop("init", "--from", "dvc", *args, check=False)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("gitcoop: error: ")
    assert message in out.stderr
    assert m.ref("refs/coop/ledger") is None
    assert m.git("status", "--porcelain").stdout == ""


def test_a_source_directory_is_refused(tmp_path: Path) -> None:
    root = _repo(tmp_path / "r", {"dvc.yaml": ONE_STAGE})
    with pytest.raises(ConfigError, match="takes no source directory"):
        propose("dvc", Request(root, source=tmp_path, direction="maximize"))
