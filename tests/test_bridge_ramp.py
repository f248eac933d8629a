"""`git coop init --from ramp`: a tiny RAMP kit (a classifier workflow, a few dozen rows)
in a real git repository, end to end, and the proposals and refusals of the bridge."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from testing.world import Player, World, run

from gitcoop.bridges import Request, propose, ramp_run
from gitcoop.challenge import parse_challenge
from gitcoop.errors import ConfigError

PROBLEM = textwrap.dedent(
    """\
    import os

    import pandas as pd
    import rampwf as rw
    from sklearn.model_selection import StratifiedShuffleSplit

    problem_title = "Toy classification"
    Predictions = rw.prediction_types.make_multiclass(label_names=["a", "b"])
    workflow = rw.workflows.Classifier()
    score_types = [
        rw.score_types.Accuracy(name="acc"),
        rw.score_types.NegativeLogLikelihood(name="nll", precision=3),
    ]


    def get_cv(X, y):
        return StratifiedShuffleSplit(n_splits=2, test_size=0.25, random_state=57).split(X, y)


    def _read(path, f_name):
        data = pd.read_csv(os.path.join(path, "data", f_name))
        return data.drop(columns=["y"]).values, data["y"].values


    def get_train_data(path="."):
        return _read(path, "train.csv")


    def get_test_data(path="."):
        return _read(path, "test.csv")
    """
)
# Predicts the class prior: every row is a tie, so the bagged test accuracy is 0.5.
STARTING_KIT = textwrap.dedent(
    """\
    from sklearn.base import BaseEstimator
    from sklearn.dummy import DummyClassifier


    class Classifier(BaseEstimator):
        def fit(self, X, y):
            self.clf = DummyClassifier(strategy="prior").fit(X, y)

        def predict_proba(self, X):
            return self.clf.predict_proba(X)
    """
)
BETTER = STARTING_KIT.replace(
    "sklearn.dummy import DummyClassifier", "sklearn.linear_model import LogisticRegression"
).replace('DummyClassifier(strategy="prior")', "LogisticRegression()")


def _rows(n: int) -> str:
    # Two classes, separated by x1: a linear model gets them all right.
    lines = ["x1,x2,y"]
    for i in range(n):
        y = i % 2
        lines.append(f"{2 * y + ((i * 7) % 10 - 4.5) / 5:.2f},{(i * 3) % 10 / 10},{'ab'[y]}")
    return "\n".join(lines) + "\n"


KIT = {
    "problem.py": PROBLEM,
    "data/train.csv": _rows(40),
    "data/test.csv": _rows(20),
    "submissions/starting_kit/classifier.py": STARTING_KIT,
}


# What the bridge reads of problem.py, without the seconds rampwf, pandas and scikit-learn
# take to import: score types are read by their attributes alone.
LIGHT_PROBLEM = textwrap.dedent(
    """\
    class Score:
        def __init__(self, name, lower, precision=2):
            self.name, self.is_lower_the_better, self.precision = name, lower, precision


    score_types = [Score("acc", False), Score("nll", True, 3)]
    """
)
LIGHT = {**KIT, "problem.py": LIGHT_PROBLEM}


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def _kit(p: Player, files: dict[str, str] = KIT) -> None:
    """Replace the player's toy metric with the RAMP kit, committed."""
    p.git("rm", "-q", "score.txt", "evaluate.py")
    _write(p.repo, files)
    p.git("add", "-A")
    p.git("commit", "-qm", "a RAMP kit")


@pytest.mark.slow
def test_a_ramp_kit_becomes_a_challenge_and_credits_a_better_model(world: World) -> None:
    m = world.maintainer(init_args=None)
    _kit(m)
    out = m.coop("init", "--from", "ramp", "--name", "ramp-toy")
    assert "scored 0.5" in out.stdout
    assert (
        "note: the score is the bagged test acc (higher is better) of submissions/starting_kit"
        in out.stdout
    )
    challenge = parse_challenge((m.repo / ".coop/challenge.yaml").read_text())
    assert challenge.metric.command == (
        "python",
        ".coop/ramp_score.py",
        "--submission",
        "starting_kit",
        "--score",
        "acc",
    )
    assert (challenge.metric.name, challenge.metric.direction) == ("acc", "maximize")
    assert set(challenge.protect) == {".coop/**", "problem.py", "data/**"}
    assert (m.repo / ".coop/ramp_score.py").read_bytes() == Path(ramp_run.__file__).read_bytes()
    assert m.git("status", "--porcelain").stdout == ""  # nothing left behind by problem.py
    m.git("push", "-q", "-u", "origin", "main")

    ada = world.contributor("ada", "Ada", "ada@example.org")
    world.accept(ada)
    (ada.repo / "submissions/starting_kit/classifier.py").write_text(BETTER)
    ada.git("commit", "-qam", "a linear model")
    ada.git("push", "-q", "origin", "main")

    m.git("pull", "-q", "origin", "main")
    m.coop("sync", "origin")
    report = json.loads(m.coop("credit", "--json").stdout)
    rows = {r["email"]: r for r in report["contributors"]}
    assert rows["ada@example.org"]["gain"] == "0.5"
    assert report["best"]["score"] == "1"


def _repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir()
    run(root, "git", "init", "-q", "-b", "main")
    _write(root, files)
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "kit")
    return root


def test_the_score_can_be_chosen_and_a_lower_is_better_score_minimizes(tmp_path: Path) -> None:
    proposal = propose("ramp", Request(_repo(tmp_path / "kit", LIGHT), metric_name="nll"))
    c = parse_challenge(proposal.challenge)
    assert (c.metric.name, c.metric.direction) == ("nll", "minimize")
    assert c.metric.command[-2:] == ("--score", "nll")
    assert any("RAMP shows nll to 3 decimals" in n for n in proposal.notes)
    assert list(proposal.files) == [".coop/ramp_score.py"]


def test_the_only_submission_is_taken_when_there_is_no_starting_kit(tmp_path: Path) -> None:
    files = {k.replace("starting_kit", "forest"): v for k, v in LIGHT.items()}
    proposal = propose("ramp", Request(_repo(tmp_path / "kit", files)))
    assert parse_challenge(proposal.challenge).metric.command[2:4] == ("--submission", "forest")


def test_a_given_command_replaces_the_runner(tmp_path: Path) -> None:
    proposal = propose("ramp", Request(_repo(tmp_path / "kit", LIGHT), metric="python score.py"))
    assert parse_challenge(proposal.challenge).metric.command == ("python", "score.py")
    assert proposal.files == {}


def test_the_runner_reads_the_largest_bag_of_the_chosen_step(tmp_path: Path) -> None:
    scores = tmp_path / "bagged_scores.csv"
    scores.write_text(
        "step,n_bag,acc,nll\nvalid,0,0.5,0.69\nvalid,1,0.47058823529411764,0.68\n"
        "test,0,0.5,0.7\ntest,1,0.75,nan\n"
    )
    assert ramp_run.read_score(scores, "acc", "test") == 0.75
    assert ramp_run.read_score(scores, "acc", "valid") == 0.47058823529411764
    with pytest.raises(ramp_run.Failed, match="has no score 'auc' \\(it has: acc, nll\\)"):
        ramp_run.read_score(scores, "auc", "test")
    with pytest.raises(ramp_run.Failed, match="the bagged test nll is 'nan', not a number"):
        ramp_run.read_score(scores, "nll", "test")
    with pytest.raises(ramp_run.Failed, match="ramp-test saved no"):
        ramp_run.read_score(tmp_path / "none.csv", "acc", "test")


BROKEN = "import os\nraise ValueError('no data here')\n"


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({"README": ""}, (), "no problem.py in "),
        ({**KIT, "problem.py": BROKEN}, (), "problem.py fails to import: ValueError: no data here"),
        ({**KIT, "problem.py": "x = 1\n"}, (), "problem.py declares no score types"),
        (LIGHT, ("--metric-name", "auc"), "problem.py has no score named 'auc'"),
        (LIGHT, ("--direction", "minimize"), "problem.py says a higher acc is better"),
        (
            {"problem.py": LIGHT_PROBLEM, "submissions/a/x.py": "", "submissions/b/x.py": ""},
            (),
            "the kit has several submissions and no starting_kit: a, b",
        ),
        ({"problem.py": LIGHT_PROBLEM}, (), "the kit has no submission in submissions/"),
    ],
)
def test_bad_input_is_refused_in_one_line_and_writes_nothing(
    world: World, files: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    m = world.maintainer(init_args=None)
    _kit(m, files)
    out = m.coop("init", "--from", "ramp", *args, check=False)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("gitcoop: error: ")
    assert message in out.stderr
    assert m.ref("refs/coop/ledger") is None
    assert m.git("status", "--porcelain").stdout == ""


def test_data_that_is_not_committed_is_refused(world: World) -> None:
    m = world.maintainer(init_args=None)
    _kit(m, LIGHT)
    (m.repo / ".gitignore").write_text("data/extra.csv\n")
    (m.repo / "data/extra.csv").write_text("x\n")
    m.git("add", ".gitignore")
    m.git("commit", "-qm", "ignore a data file")
    out = m.coop("init", "--from", "ramp", check=False)
    assert out.returncode == 2
    assert "data/extra.csv is not committed" in out.stderr
    assert m.ref("refs/coop/ledger") is None


def test_a_source_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="takes no source directory"):
        propose("ramp", Request(tmp_path, source=tmp_path))
