"""Score one submission of a RAMP kit and print the score as the last line of stdout.

It runs ramp-test (ramp-workflow's own command, in this process) with ``--save-output``
and reads the chosen score from the bagged scores ramp-test saves: by default the *test*
score of the bag of all cross-validation folds' models, the number RAMP ranks
submissions by on its private leaderboard (``--step valid`` takes the bagged
cross-validation score of its public leaderboard instead). ramp-test's own output goes
to stderr; stdout gets one line, ``{"<score>": <value>}``, with every digit ramp-test
saved.

``git coop init --from ramp`` copies this file to ``.coop/ramp_score.py``. It needs
ramp-workflow and what the kit itself needs, not gitcoop.

    python .coop/ramp_score.py --submission starting_kit --score acc [--step test]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import json
import math
import sys
from pathlib import Path

BAGGED = "bagged_scores.csv"  # ramp-test --save-output: step,n_bag,<score>,...


class Failed(Exception):
    """Why no score can be printed; the message is the last line on stderr."""


def main(argv: list[str] | None = None) -> int:
    """Run ramp-test for the submission and print the chosen score; 0 on success, 1
    when ramp-test saved no usable score (the reason is the last line on stderr)."""
    args = _parser().parse_args(argv)
    output = Path("submissions", args.submission, "training_output", BAGGED)
    try:
        output.unlink(missing_ok=True)  # a committed copy must never pass for this run's
        _ramp_test(args.submission)
        value = read_score(output, args.score, args.step)
    except Failed as exc:
        sys.stderr.write(f"ramp_score: error: {exc}\n")
        return 1
    sys.stdout.write(json.dumps({args.score: value}) + "\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ramp_score", description=__doc__.splitlines()[0])
    parser.add_argument("--submission", required=True, help="a folder of submissions/")
    parser.add_argument("--score", required=True, help="a score type's name in problem.py")
    parser.add_argument(
        "--step",
        choices=("test", "valid"),
        default="test",
        help="bagged test score (default) or bagged cross-validation score",
    )
    return parser


def _ramp_test(submission: str) -> None:
    try:
        testing = importlib.import_module("rampwf.utils.cli.testing")
    except ImportError as exc:
        raise Failed(f"ramp-workflow is not installed ({exc}): pip install ramp-workflow") from None
    with contextlib.redirect_stdout(sys.stderr):
        testing.main.main(
            args=["--submission", submission, "--save-output"],
            prog_name="ramp-test",
            standalone_mode=False,
        )


def read_score(path: Path, score: str, step: str) -> float:
    """The score ``score`` of the largest bag of ``step`` in ramp-test's bagged scores
    file; raises Failed when the file, the step or the score is missing or not finite."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise Failed(f"ramp-test saved no {path}") from None
    bags = [r for r in rows if r.get("step") == step]
    if not bags:
        raise Failed(f"{path} has no {step} scores")
    last = max(bags, key=lambda r: int(r.get("n_bag") or 0))
    if score not in last:
        names = [k for k in last if k not in ("step", "n_bag")]
        raise Failed(f"{path} has no score {score!r} (it has: {', '.join(names)})")
    try:
        value = float(last[score])
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise Failed(f"the bagged {step} {score} is {last[score]!r}, not a number")
    return value


if __name__ == "__main__":
    sys.exit(main())
