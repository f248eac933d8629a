"""Score one commit the way CodaLab or Codabench would: run the bundle's ingestion program
on the commit's code (when there is one), then its scoring program on the predictions,
and print the leaderboard key's value from ``scores.json`` or ``scores.txt`` as the last
line, ``{"KEY": VALUE}``.

``git coop init --from codalab`` copies this file into the repository as
``evaluation/codalab/run.py`` next to ``run.json`` (what to run) and the bundle's programs
and data; the challenge runs it as ``python evaluation/codalab/run.py`` from the root of
the commit's checkout. It is a protected file, so the copy pinned in the challenge is the
one that runs. It needs only the Python standard library and imports nothing from gitcoop.

Each step gets a fresh directory laid out like the platform's, and the ``$name`` placeholders
and Codabench's ``/app/...`` paths in its command are rewritten to point into it. Everything
the programs print goes to standard error, so the score is the only line on standard
output. Any failure is one line on standard error and exit status 1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

CONFIG = "run.json"
CONFIG_VERSION = 1

# The folders copied from the bundle, next to this file.
SCORING, INGESTION = "scoring_program", "ingestion_program"
REFERENCE, INPUT = "reference_data", "input_data"

# What each ``$name`` placeholder means in each step, as a path inside the step's folder.
# CodaLab's worker and Codabench's (for legacy commands) substitute these names; $input_data
# is not theirs but reads naturally. Codabench's ingestion sees its own program at
# /app/program, CodaLab's at $program, so in ingestion "program" is the ingestion program.
PLACEHOLDERS = {
    "ingestion": {
        "program": INGESTION,
        "ingestion_program": INGESTION,
        "submission_program": "ingested_program",
        "input": INPUT,
        "input_data": INPUT,
        "output": "output",
        "predictions": "output",
        "shared": "shared",
        "tmp": "tmp",
    },
    "scoring": {
        "program": "program",
        "input": "input",
        "input_data": INPUT,
        "predictions": "input/res",
        "hidden": "input/ref",
        "output": "output",
        "shared": "shared",
        "tmp": "tmp",
    },
}
# Codabench mounts these folders under /app; its documented commands name them directly.
APP_DIRS = {
    "ingestion": {
        "program": INGESTION,
        "ingestion_program": INGESTION,
        "ingested_program": "ingested_program",
        "input_data": INPUT,
        "output": "output",
        "shared": "shared",
    },
    "scoring": {
        "program": "program",
        "input": "input",
        "input_data": INPUT,
        "output": "output",
        "shared": "shared",
    },
}
PLACEHOLDER_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
APP_RE = re.compile(r"(?<![\w./-])/app/([A-Za-z_]+)(?![\w.-])")


class RunError(Exception):
    """Why the commit could not be scored; printed as one line."""


def substitute(token: str, step: str, folder: Path) -> str:
    """``token`` with its placeholders and /app paths pointing into ``folder``; unknown
    names are left as they are (``git coop init`` refuses them before they get here)."""

    def placeholder(m: re.Match[str]) -> str:
        rel = PLACEHOLDERS[step].get(m.group(1))
        return m.group(0) if rel is None else str(folder / rel)

    def app(m: re.Match[str]) -> str:
        rel = APP_DIRS[step].get(m.group(1))
        return m.group(0) if rel is None else str(folder / rel)

    return APP_RE.sub(app, PLACEHOLDER_RE.sub(placeholder, token))


def unknown_names(argv: list[str], step: str) -> list[str]:
    """The placeholders and /app paths in ``argv`` that the ``step`` does not provide."""
    found = [f"${m.group(1)}" for t in argv for m in PLACEHOLDER_RE.finditer(t)]
    found = [name for name in found if name[1:] not in PLACEHOLDERS[step]]
    apps = [f"/app/{m.group(1)}" for t in argv for m in APP_RE.finditer(t)]
    return found + [name for name in apps if name[5:] not in APP_DIRS[step]]


def number_text(value: Any, where: str) -> str:
    """``value`` (a JSON number or the text after ``key:``) as JSON number text, exactly."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise RunError(f"{where} is not a number")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise RunError(f"{where} is not a number: {str(value)[:40]!r}") from None
    if not number.is_finite():
        raise RunError(f"{where} is {number}, not a finite number")
    return str(number)  # Decimal's text is valid JSON: 0.75, 1E+3, -0


def read_scores(output: Path) -> tuple[str, dict[str, Any]]:
    """The scores the scoring program wrote: ``scores.json`` if there is one (Codabench
    reads it first), else ``scores.txt`` (``key: value`` lines)."""
    for name in ("scores.json", "scores.txt"):
        path = output / name
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            return name, (_json_scores(text, name) if name.endswith(".json") else _txt_scores(text))
    raise RunError("the scoring program wrote neither scores.json nor scores.txt in $output")


def _json_scores(text: str, name: str) -> dict[str, Any]:
    def constant(word: str) -> Any:
        raise RunError(f"{name} holds {word}, not a finite number")

    try:
        scores = json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=constant)
    except ValueError as exc:
        raise RunError(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(scores, dict):
        raise RunError(f"{name} is not a JSON object of scores")
    return scores


def _txt_scores(text: str) -> dict[str, Any]:
    scores: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.lstrip().startswith("#"):
            scores[key.strip()] = value.strip().strip("'\"")
    return scores


def score(output: Path, key: str) -> str:
    """The value of ``key`` in the scores under ``output``, as JSON number text."""
    name, scores = read_scores(output)
    if key not in scores:
        keys = ", ".join(sorted(map(str, scores))) or "none"
        raise RunError(f"{name} has no key {key!r} (its keys: {keys})")
    return number_text(scores[key], f"{key} in {name}")


def _place(source: Path, target: Path, *, copy: bool) -> None:
    # Programs are copied, so that ../input from their folder is the step's input; data
    # is linked, being read only and possibly large. A missing folder is an empty one.
    target.parent.mkdir(parents=True, exist_ok=True)
    if not source.is_dir():
        target.mkdir()
    elif copy:
        shutil.copytree(source, target)
    else:
        target.symlink_to(source.resolve(), target_is_directory=True)


def lay_out(step: str, folder: Path, here: Path, res: Path, shared: Path) -> None:
    """Make the step's folder: its program, data, output, tmp and the shared folder;
    ``res`` is the submission (ingestion) or the predictions (scoring)."""
    for name in ("output", "tmp"):
        (folder / name).mkdir(parents=True)
    (folder / "shared").symlink_to(shared, target_is_directory=True)
    _place(here / INPUT, folder / INPUT, copy=False)
    if step == "ingestion":
        _place(here / INGESTION, folder / INGESTION, copy=True)
        _place(res, folder / "ingested_program", copy=False)
    else:
        _place(here / SCORING, folder / "program", copy=True)
        _place(here / REFERENCE, folder / "input" / "ref", copy=False)
        _place(res, folder / "input" / "res", copy=False)


def run_step(step: str, argv: list[str], folder: Path, cwd: Path, limit: float, **env: str) -> None:
    """Run one program in ``cwd`` with its placeholders filled and ``env`` added to its
    environment; its output goes to standard error. Raises RunError when it cannot start,
    exits unsuccessfully (quoting the last line it wrote on stderr) or runs longer than
    ``limit`` seconds."""
    args = [substitute(token, step, folder) for token in argv]
    sys.stderr.flush()
    try:
        # The step stays in this process group, so gitcoop's own limit stops it too.
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(os.environ, PYTHONUNBUFFERED="1", **env),
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        raise RunError(f"cannot start the {step} program {args[0]!r}: {exc.strerror}") from None
    last: list[str] = []
    pump = threading.Thread(target=_pass_on, args=(proc.stderr, last), daemon=True)
    pump.start()
    try:
        status = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pump.join(timeout=1.0)
        raise RunError(f"the {step} program ran longer than its {limit:g} s limit") from None
    pump.join(timeout=1.0)  # a child it left behind may hold the pipe open
    if status != 0:
        said = f": {last[0][:200]}" if last else ""
        raise RunError(f"the {step} program exited with status {status}{said}")


def _pass_on(pipe: IO[bytes], last: list[str]) -> None:
    # Copy a program's stderr to ours, keeping its last non-empty line for the message.
    with pipe:
        for line in pipe:
            sys.stderr.buffer.write(line)
            sys.stderr.flush()
            if line.strip():
                last[:] = [line.decode("utf-8", errors="replace").strip()]


def run(config: dict[str, Any], here: Path, checkout: Path, tmp: Path) -> str:
    """Run ingestion (if any) and scoring for the checkout; return the score's text."""
    submission = (checkout / config["submission"]).resolve()
    shared = tmp / "shared"
    shared.mkdir()
    limit = float(config["step_timeout"])
    codabench = config["platform"] == "codabench"  # it runs each program in its own folder
    res = submission  # a result submission: the commit's files are the predictions
    if config["ingestion"]:
        folder = tmp / "ingestion"
        lay_out("ingestion", folder, here, submission, shared)
        # CodaLab puts the submission on the ingestion program's PYTHONPATH.
        path = os.pathsep.join(p for p in (str(submission), os.environ.get("PYTHONPATH")) if p)
        cwd = folder / INGESTION if codabench else folder
        run_step("ingestion", config["ingestion"], folder, cwd, limit, PYTHONPATH=path)
        res = folder / "output"
    folder = tmp / "scoring"
    lay_out("scoring", folder, here, res, shared)
    cwd = folder / "program" if codabench else folder
    run_step("scoring", config["scoring"], folder, cwd, limit)
    return score(folder / "output", config["key"])


def load_config(path: Path) -> dict[str, Any]:
    """The runner's settings, written by ``git coop init --from codalab``."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {path.name}: {exc}") from None
    if not isinstance(config, dict) or config.get("version") != CONFIG_VERSION:
        raise RunError(f"{path.name} is not a version {CONFIG_VERSION} runner file")
    return config


def main() -> int:
    """Score the checkout in the current directory; return the exit status."""
    here = Path(__file__).resolve().parent
    tmp = Path(tempfile.mkdtemp(prefix="coop-codalab-"))
    try:
        config = load_config(here / CONFIG)
        value = run(config, here, Path.cwd(), tmp)
    except RunError as exc:
        sys.stderr.write(f"codalab: {exc}\n")
        return 1
    finally:  # what a program left read-only must not cost the score
        shutil.rmtree(tmp, ignore_errors=True)
    sys.stdout.write("{" + json.dumps(config["key"]) + ": " + value + "}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
