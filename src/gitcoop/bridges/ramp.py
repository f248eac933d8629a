"""The RAMP bridge: read a RAMP kit's ``problem.py`` (its score types, their names and
whether lower is better) and propose a challenge that scores one submission with
ramp-test, through the runner ``.coop/ramp_score.py`` (a copy of ``ramp_run.py``).

See docs/bridge-ramp.md for what is chosen and why.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from gitcoop import resources
from gitcoop.bridges import Proposal, Request, branch_of
from gitcoop.challenge import render_template
from gitcoop.errors import ConfigError
from gitcoop.git import open_repo
from gitcoop.sandbox import scrubbed_env

PROBLEM = "problem.py"
SUBMISSIONS = "submissions"
DEFAULT_SUBMISSION = "starting_kit"
RUNNER = ".coop/ramp_score.py"
DATA = "data"
_PROBE_TIMEOUT = 300  # seconds; problem.py imports rampwf, pandas and scikit-learn
_MARK = "gitcoop-ramp-probe "

# Run in the kit's root by a fresh interpreter (``-B``: no __pycache__ is left behind):
# import problem.py as ramp-test does and report its score types as one JSON line.
_PROBE = f"""
import importlib.util, json, os, sys
ext = os.path.join(os.getcwd(), "external_imports")
if os.path.isdir(ext):
    sys.path.append(ext)
spec = importlib.util.spec_from_file_location("problem", {PROBLEM!r})
problem = importlib.util.module_from_spec(spec)
spec.loader.exec_module(problem)
found = getattr(problem, "score_types", None)
types = []
for st in found if isinstance(found, (list, tuple)) else []:
    precision = getattr(st, "precision", None)
    types.append({{
        "name": getattr(st, "name", None),
        "lower": bool(getattr(st, "is_lower_the_better", False)),
        "precision": precision if isinstance(precision, int) else None,
    }})
print({_MARK!r} + json.dumps(types))
"""


@dataclass(frozen=True)
class ScoreType:
    """One of problem.py's score types, as the bridge needs it."""

    name: str
    lower_is_better: bool
    precision: int | None = None


def propose(request: Request) -> Proposal:
    """The challenge for the RAMP kit at the repository's root; raises ConfigError naming
    what is missing or wrong: problem.py, a submission, the score or the kit's files."""
    root = request.root
    if request.source is not None:
        raise ConfigError(
            "--from ramp reads the kit in the repository; it takes no source directory",
            hint="run git coop init --from ramp at the kit's root",
        )
    if request.stage is not None:
        raise ConfigError("--stage is for --from dvc", hint="leave it out with --from ramp")
    if not (root / PROBLEM).is_file():
        raise ConfigError(
            f"no {PROBLEM} in {root}: --from ramp needs a RAMP kit",
            hint="run it at the root of the kit, next to problem.py and submissions/",
        )
    tracked = _tracked(root)
    submission = choose_submission(root)
    _check_committed(root, tracked, submission)
    score = choose_score(score_types(root), request.metric_name)
    direction = _direction(score, request.direction)
    command = request.metric or shlex.join(
        ["python", RUNNER, "--submission", submission, "--score", score.name]
    )
    protect = [PROBLEM] + ([f"{DATA}/**"] if _has(tracked, DATA) else [])
    text = render_template(
        name=request.name or _default_name(root),
        command=command,
        direction=direction,
        branch=branch_of(request),
        timeout=request.timeout,
        protect=protect,
        metric_name=score.name,
        template_text=resources.read_text("templates", "challenge.yaml"),
    )
    files = {} if request.metric else {RUNNER: _runner_source()}
    return Proposal(text, files, _notes(score, submission, protect))


def choose_submission(root: Path) -> str:
    """``starting_kit`` when the kit has it, else its only submission. Raises ConfigError
    when there is none or several to choose from."""
    folder = root / SUBMISSIONS
    names = sorted(
        p.name for p in (folder.iterdir() if folder.is_dir() else ()) if _is_submission(p)
    )
    if DEFAULT_SUBMISSION in names:
        return DEFAULT_SUBMISSION
    if len(names) == 1:
        return names[0]
    if not names:
        raise ConfigError(
            f"the kit has no submission in {SUBMISSIONS}/",
            hint=f"add one, e.g. {SUBMISSIONS}/{DEFAULT_SUBMISSION}/, and commit it",
        )
    raise ConfigError(
        f"the kit has several submissions and no {DEFAULT_SUBMISSION}: {', '.join(names)}",
        hint=f"rename the one contributors start from to {SUBMISSIONS}/{DEFAULT_SUBMISSION}",
    )


def _is_submission(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith((".", "_"))


def score_types(root: Path) -> list[ScoreType]:
    """problem.py's score types, read by importing it in a fresh interpreter (the one the
    metric will use: ``python`` on PATH). Raises ConfigError when it fails to import or
    declares no score types."""
    env = scrubbed_env(os.environ)
    python = shutil.which("python", path=env.get("PATH")) or sys.executable
    try:
        proc = subprocess.run(
            [python, "-B", "-c", _PROBE],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_PROBE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{PROBLEM} took more than {_PROBE_TIMEOUT} s to import") from None
    if proc.returncode != 0:
        raise ConfigError(
            f"{PROBLEM} fails to import: {_last_line(proc.stderr) or f'exit {proc.returncode}'}",
            hint=f"run: {Path(python).name} -c 'import problem' in the kit, and fix what fails",
        )
    reported = [ln for ln in proc.stdout.splitlines() if ln.startswith(_MARK)]
    found = json.loads(reported[-1][len(_MARK) :]) if reported else []
    types = [
        ScoreType(t["name"], t["lower"], t["precision"])
        for t in found
        if isinstance(t.get("name"), str) and t["name"]
    ]
    if not types:
        raise ConfigError(
            f"{PROBLEM} declares no score types",
            hint="a RAMP problem.py sets score_types = [rw.score_types.Accuracy(name='acc'), ...]",
        )
    return types


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def choose_score(types: list[ScoreType], wanted: str | None) -> ScoreType:
    """The score type named ``wanted``, else the first one (RAMP's official score).
    Raises ConfigError naming the known scores when ``wanted`` is not one of them."""
    if wanted is None:
        return types[0]
    for t in types:
        if t.name == wanted:
            return t
    raise ConfigError(
        f"{PROBLEM} has no score named {wanted!r}",
        hint=f"its scores: {', '.join(t.name for t in types)}",
    )


def _direction(score: ScoreType, given: str | None) -> str:
    direction = "minimize" if score.lower_is_better else "maximize"
    if given is not None and given != direction:
        better = "lower" if score.lower_is_better else "higher"
        raise ConfigError(
            f"{PROBLEM} says a {better} {score.name} is better; --direction {given} contradicts it",
            hint=f"leave out --direction, or pass --direction {direction}",
        )
    return direction


def _check_committed(root: Path, tracked: frozenset[str], submission: str) -> None:
    # Commits are scored in a clean checkout: the kit's files must be in git.
    wanted = [PROBLEM, f"{SUBMISSIONS}/{submission}"]
    data = root / DATA
    if data.is_dir():
        wanted += [p.relative_to(root).as_posix() for p in sorted(data.rglob("*")) if p.is_file()]
    for rel in wanted:
        if not _has(tracked, rel):
            raise ConfigError(
                f"{rel} is not committed; commits are scored in a clean checkout",
                hint=f"commit the kit first: git add {rel} && git commit",
            )


def _has(tracked: frozenset[str], path: str) -> bool:
    prefix = path.rstrip("/") + "/"
    return path in tracked or any(p.startswith(prefix) for p in tracked)


def _tracked(root: Path) -> frozenset[str]:
    repo = open_repo(root)
    return frozenset(f.path for f in repo.files(repo.commit(repo.head_commit()).tree))


def _runner_source() -> bytes:
    return importlib.resources.files("gitcoop.bridges").joinpath("ramp_run.py").read_bytes()


def _notes(score: ScoreType, submission: str, protect: list[str]) -> list[str]:
    better = "lower" if score.lower_is_better else "higher"
    notes = [
        f"the score is the bagged test {score.name} ({better} is better) of "
        f"{SUBMISSIONS}/{submission}, from ramp-test run by {RUNNER}",
        f"protected: {', '.join(protect)}; contributors improve {SUBMISSIONS}/{submission}/",
    ]
    if score.precision is not None:
        notes.append(
            f"RAMP shows {score.name} to {score.precision} decimals; gitcoop keeps every digit "
            "(set credit.min_delta to ignore smaller changes)"
        )
    return notes


def _default_name(root: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", root.name)[:64].strip("-.") or "challenge"
