"""A CodaLab (competition.yaml v1.5) or Codabench (``version: 2``) competition bundle as a
gitcoop challenge.

The bundle's scoring program, ingestion program, reference data and input data are copied
into ``evaluation/codalab/`` with a small runner (``codalab_run.py``, copied as ``run.py``)
and its settings (``run.json``). The metric runs the ingestion program on the commit's code
(the repository root is the code submission), then the scoring program on its predictions,
and prints the chosen leaderboard column from ``scores.json`` or ``scores.txt``. With no
ingestion program the commit's files are the predictions (a result submission). The
evaluation folder is protected and every reference-data file is pinned by its SHA-256.

Only the first phase (CodaLab: the lowest ``phasenumber``; Codabench: the first phase's
first task) is scored; the notes say which.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import posixpath
import re
import shlex
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from gitcoop.bridges import Proposal, Request, branch_of
from gitcoop.bridges import codalab_run as runner
from gitcoop.errors import ConfigError

FOLDER = "evaluation/codalab"
COMMAND = f"python {FOLDER}/run.py"
_MAX_BYTES = 1 << 30  # all of it is committed: git is no store for more than this
_NAMES = ("competition.yaml", "competition.yml")
_SHELL = frozenset({"&&", "||", "|", ";", "&", ">", ">>", "<", "2>&1", "2>"})
_BAD_PATH = re.compile(r"[\[\]\\\x00-\x1f\x7f]")  # what a challenge file's data path cannot hold
_APP_IN_CODE = re.compile(
    rb"/app/(?:input(?:_data)?|output|(?:ingestion_|ingested_)?program|shared)\b"
)
_EXAMPLE = {
    "scoring": "python $program/score.py $input $output",
    "ingestion": "python $ingestion_program/ingestion.py $input $output "
    "$ingestion_program $submission_program",
}
_DIRECTION = {
    "desc": "maximize",
    "descending": "maximize",
    "asc": "minimize",
    "ascending": "minimize",
}

_Tree = dict[str, Callable[[], bytes]]  # path in the bundle -> its bytes, read when needed


@dataclass(frozen=True)
class _Task:
    """Where one phase's (or task's) programs and data are, as competition.yaml says."""

    where: str  # for messages: "phase 1 (Development)"
    scoring: Any
    ingestion: Any
    reference: Any
    input: Any
    time_limit: Any
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Column:
    """A leaderboard column: the key the scoring program writes and its sorting."""

    key: str
    sorting: Any
    computed: bool
    order: tuple[int, ...]  # its place among the columns; the smallest is the primary one


# --------------------------------------------------------------------------- the bundle


def _junk(name: str) -> bool:
    parts = name.split("/")
    return "__MACOSX" in parts or ".git" in parts or parts[-1] == ".DS_Store"


def _dir_tree(root: Path) -> _Tree:
    tree: _Tree = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if _junk(rel):
            continue
        if path.is_symlink():
            raise ConfigError(
                f"{rel} in the bundle is a symbolic link",
                hint="copy what it points to into the bundle",
            )
        if path.is_file():
            tree[rel] = path.read_bytes
    return tree


def _entry_name(name: str, label: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    traversal = name.startswith("/") or "\\" in name or "\0" in name or ".." in parts
    if traversal or re.match(r"[A-Za-z]:", name):
        raise ConfigError(
            f"{label}: the entry {name!r} points outside the bundle (path traversal)",
            hint="rebuild the zip with paths relative to its root",
        )
    return "/".join(parts)


def _zip_tree(source: Path | io.BytesIO, label: str) -> _Tree:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ConfigError(f"{label} is not a readable zip file: {exc}") from None
    tree: _Tree = {}
    total = 0
    for info in archive.infolist():
        name = _entry_name(info.filename, label)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ConfigError(f"{label}: the entry {name!r} is a symbolic link")
        if info.is_dir() or _junk(name) or not name:
            continue
        total += info.file_size
        if total > _MAX_BYTES:
            raise ConfigError(f"{label} unpacks to more than {_MAX_BYTES >> 20} MiB")
        tree[name] = partial(archive.read, info)
    return tree


def _open(source: Path | None) -> tuple[_Tree, str]:
    if source is None:
        raise ConfigError(
            "--from codalab needs the bundle", hint="git coop init --from codalab BUNDLE_DIR_OR_ZIP"
        )
    if source.is_dir():
        return _dir_tree(source), source.name
    if source.is_file():
        return _zip_tree(source, source.name), source.name
    raise ConfigError(f"no bundle at {source}", hint="give the bundle's folder or its .zip")


def _competition(tree: _Tree, label: str) -> tuple[str, bytes]:
    """The folder of competition.yaml in the bundle and its bytes: at the top, or in the
    one folder the bundle was zipped with."""
    found = [n for n in _NAMES if n in tree]
    found = found or sorted(n for n in tree if n.count("/") == 1 and n.split("/")[1] in _NAMES)
    if len(found) != 1:
        raise ConfigError(
            f"no competition.yaml in {label}"
            if not found
            else f"{label} holds several: {', '.join(found)}",
            hint="point --from codalab at the bundle: the folder or zip holding competition.yaml",
        )
    return posixpath.dirname(found[0]), tree[found[0]]()


def _load_yaml(data: bytes, where: str) -> Any:
    import yaml

    try:
        return yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}{line} is not valid YAML: {problem}") from None


# --------------------------------------------------------------------------- competition.yaml


def _dicts(value: Any) -> list[dict[str, Any]]:
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [item for item in items if isinstance(item, dict)]


def _shown(text: str) -> str:
    # Names from the bundle go into messages and a comment line of the challenge file.
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text)[:100]


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _first(items: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return min(enumerate(items), key=lambda pair: (_int(pair[1].get(key), pair[0]), pair[0]))[1]


def _v1_task(spec: dict[str, Any]) -> _Task:
    phases = _dicts(spec.get("phases"))
    if not phases:
        raise ConfigError(
            "competition.yaml has no phases",
            hint="a phase names the scoring_program and reference_data",
        )
    phase = _first(phases, "phasenumber")
    where = _shown(f"phase {phase.get('phasenumber', 1)} ({phase.get('label', 'unnamed')})")
    notes = (f"the bundle has {len(phases)} phases; the challenge scores {where}",)
    return _Task(
        where,
        phase.get("scoring_program"),
        phase.get("ingestion_program"),
        phase.get("reference_data"),
        phase.get("input_data"),
        phase.get("execution_time_limit"),
        notes if len(phases) > 1 else (),
    )


def _v2_task(spec: dict[str, Any]) -> _Task:
    tasks = _dicts(spec.get("tasks"))
    if not tasks:
        raise ConfigError(
            "competition.yaml has no tasks",
            hint="a Codabench task names the scoring_program and reference_data",
        )
    phases = _dicts(spec.get("phases"))
    phase = _first(phases, "index") if phases else {}
    named = phase.get("tasks")
    listed: list[Any] = named if isinstance(named, list) else []
    wanted = listed[0] if listed else _first(tasks, "index").get("index")
    task = next((t for t in tasks if t.get("index") == wanted), None)
    if task is None:
        raise ConfigError(f"the first phase names task {wanted!r}, which is not in tasks")
    where = _shown(f"task {wanted} ({task.get('name', 'unnamed')})")
    notes = []
    if len(phases) > 1:
        notes.append(f"the bundle has {len(phases)} phases; the challenge scores {where}")
    if len(listed) > 1:
        notes.append(f"the first phase has {len(listed)} tasks; the challenge scores {where}")
    if task.get("key") and not task.get("scoring_program"):
        raise ConfigError(
            f"{where} is a task kept on the Codabench server (key {task['key']})",
            hint="put its programs and data in the bundle",
        )
    if task.get("ingestion_only_during_scoring"):
        raise ConfigError(
            f"{where} runs its ingestion program alongside the scoring program "
            "(ingestion_only_during_scoring), which is not supported",
            hint="run ingestion before scoring: set ingestion_only_during_scoring: false",
        )
    return _Task(
        where,
        task.get("scoring_program"),
        task.get("ingestion_program"),
        task.get("reference_data"),
        task.get("input_data"),
        phase.get("execution_time_limit"),
        tuple(notes),
    )


def _v1_columns(spec: dict[str, Any]) -> list[_Column]:
    board = spec.get("leaderboard")
    if not isinstance(board, dict):
        raise ConfigError(
            "competition.yaml has no leaderboard",
            hint="add leaderboard: {leaderboards: ..., columns: ...} with the score's column "
            "and its sort (desc or asc)",
        )
    columns = board.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise ConfigError(
            "competition.yaml's leaderboard has no columns",
            hint="add the score's column under leaderboard.columns, keyed as in scores.txt",
        )
    found = []
    for i, (key, vals) in enumerate(columns.items()):
        vals = vals if isinstance(vals, dict) else {}
        board_of = vals.get("leaderboard")
        rank = _int(board_of.get("rank"), 0) if isinstance(board_of, dict) else 0
        place = (rank, 0 if vals.get("selection_default") else 1, _int(vals.get("rank"), i), i)
        sorting = vals.get("sort", vals.get("sorting"))  # CodaLab reads "sort"
        found.append(_Column(str(key), sorting, "computed" in vals, place))
    return found


def _v2_columns(spec: dict[str, Any]) -> list[_Column]:
    boards = _dicts(spec.get("leaderboards", spec.get("leaderboard")))
    if not boards:
        raise ConfigError(
            "competition.yaml has no leaderboards",
            hint="add leaderboards: [{title, key, columns: [{title, key, index, sorting}]}]",
        )
    found = []
    for b, board in enumerate(boards):
        for c, column in enumerate(_dicts(board.get("columns"))):
            key = column.get("key")
            if not isinstance(key, str) or not key:
                raise ConfigError(f"column {c} of leaderboard {board.get('title', b)!r} has no key")
            place = (_int(board.get("index"), b), b, _int(column.get("index"), c), c)
            found.append(
                _Column(key, column.get("sorting"), bool(column.get("computation")), place)
            )
    if not found:
        raise ConfigError(
            "competition.yaml's leaderboards have no columns",
            hint="add the score's column: {title, key, index: 0, sorting: desc}",
        )
    return found


def _column(columns: list[_Column], wanted: str | None) -> tuple[_Column, list[str]]:
    ordered = sorted(columns, key=lambda c: c.order)
    plain = [c.key for c in ordered if not c.computed]
    if wanted is not None:
        chosen = next((c for c in ordered if c.key == wanted), None)
        if chosen is None:
            keys = ", ".join(c.key for c in ordered)
            raise ConfigError(
                f"the leaderboard has no column {wanted!r} (its columns: {keys})",
                hint="name one of them with --metric-name",
            )
    else:
        chosen = next((c for c in ordered if not c.computed), ordered[0])
    if chosen.computed:
        raise ConfigError(
            f"column {chosen.key!r} is computed by the platform from other columns; "
            "the scoring program does not write it",
            hint=f"choose a column it writes with --metric-name ({', '.join(plain) or 'none'})",
        )
    notes = [f"the score is the leaderboard column {chosen.key!r}"]
    if wanted is None and ordered[0] is not chosen:
        notes.append(f"the primary column {ordered[0].key!r} is computed by the platform")
    return chosen, notes


def _direction(column: _Column, given: str | None) -> tuple[str, list[str]]:
    said = _DIRECTION.get(str(column.sorting).strip().lower()) if column.sorting else None
    if given:
        clash = said is not None and said != given
        return given, [
            f"--direction {given} overrides the column's {column.sorting}"
        ] if clash else []
    if column.sorting is None:
        raise ConfigError(
            f"column {column.key!r} has no sorting, so which way is better is not said "
            "(CodaLab and Codabench would assume desc: larger is better)",
            hint="give the column sort: desc|asc (CodaLab) or sorting: desc|asc (Codabench), "
            "or pass --direction maximize|minimize",
        )
    if said is None:
        raise ConfigError(
            f"column {column.key!r} has sorting {column.sorting!r}; expected desc or asc",
            hint="fix it, or pass --direction maximize|minimize",
        )
    return said, []


# --------------------------------------------------------------------------- programs, data


def _inside(base: str, rel: Any, what: str) -> str:
    if not isinstance(rel, str) or not rel.strip():
        raise ConfigError(f"{what} must be a path in the bundle, got {rel!r}")
    path = posixpath.normpath(posixpath.join(base, rel.strip()))
    if path == "." or path == ".." or path.startswith(("../", "/")):
        raise ConfigError(f"{what} {rel!r} points outside the bundle")
    return path


def _files(tree: _Tree, base: str, rel: Any, what: str) -> dict[str, bytes]:
    """The files of one component, by its path relative to competition.yaml: a folder, a
    zip inside the bundle (as CodaLab bundles have them) or a single file."""
    path = _inside(base, rel, what)
    if path in tree:
        if not path.lower().endswith(".zip"):
            return {posixpath.basename(path): tree[path]()}
        inner = _zip_tree(io.BytesIO(tree[path]()), f"{what} {rel}")
        return {name: read() for name, read in inner.items()}
    prefix = path + "/"
    found = {n[len(prefix) :]: read() for n, read in tree.items() if n.startswith(prefix)}
    if not found:
        raise ConfigError(
            f"{what} {rel!r} is not in the bundle",
            hint="paths are relative to competition.yaml; datasets kept on a CodaLab server "
            "are not fetched: put the files in the bundle",
        )
    return found


def _unwrap(files: dict[str, bytes]) -> dict[str, bytes]:
    # A program zipped with its folder: CodaLab's worker moves the one folder up too.
    tops = {name.split("/")[0] for name in files}
    if len(tops) == 1 and not ({"metadata", "metadata.yaml"} & files.keys()):
        top = tops.pop() + "/"
        if top + "metadata" in files or top + "metadata.yaml" in files:
            return {name[len(top) :]: data for name, data in files.items()}
    return files


def _argv(command: str, what: str, step: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"the {what}'s command cannot be split into arguments: {exc}") from None
    shell = [token for token in argv if token in _SHELL]
    if shell:
        raise ConfigError(
            f"the {what}'s command uses the shell's {shell[0]!r}; neither CodaLab nor gitcoop "
            "runs it through a shell",
            hint="put the steps in a script in the program and make the command run it",
        )
    unknown = runner.unknown_names(argv, step)
    if unknown:
        names = ", ".join(f"${n}" for n in runner.PLACEHOLDERS[step])
        what_it_is = "hidden data is not supported" if unknown[0] == "$hidden" else "unknown"
        raise ConfigError(
            f"the {what}'s command uses {unknown[0]}, which the {step} step does not "
            f"provide ({what_it_is})",
            hint=f"the {step} step provides {names} and Codabench's /app folders",
        )
    return argv


def _program(files: dict[str, bytes], what: str, step: str) -> tuple[dict[str, bytes], list[str]]:
    files = _unwrap(files)
    meta = next((files[n] for n in ("metadata.yaml", "metadata") if n in files), None)
    example = f"command: {_EXAMPLE[step]}"
    if meta is None:
        raise ConfigError(f"the {what} has no metadata file", hint=f"add one saying {example}")
    spec = _load_yaml(meta, f"the {what}'s metadata")
    command = spec.get("command") if isinstance(spec, dict) else None
    if isinstance(command, list) and len(command) == 1:
        command = command[0]
    if isinstance(command, list):
        raise ConfigError(f"the {what}'s metadata has {len(command)} commands; one is supported")
    if not isinstance(command, str) or not command.strip():
        raise ConfigError(f"the {what}'s metadata has no command", hint=f"add {example}")
    return files, _argv(command, what, step)


def _time_limit(task: _Task, default: int) -> int:
    limit = task.time_limit
    if limit is None:
        return default
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 < limit <= 86400:
        raise ConfigError(
            f"{task.where}'s execution_time_limit must be seconds (0 < s <= 86400), got {limit!r}"
        )
    return math.ceil(limit)


# --------------------------------------------------------------------------- the proposal


def _name(request: Request, spec: dict[str, Any]) -> str:
    if request.name:
        return request.name
    for text in (spec.get("title"), request.root.name):
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text or "")).strip("-.")[:64].strip("-.")
        if slug:
            return slug
    return "challenge"


@dataclass(frozen=True)
class _Plan:
    """What the challenge file says, besides the metric command."""

    name: str
    key: str
    direction: str
    timeout: int
    data: dict[str, str]  # reference-data path -> "sha256:..."
    origin: str  # the bundle and the phase, for the file's first comment


def _challenge_text(request: Request, plan: _Plan) -> str:
    q = partial(json.dumps, ensure_ascii=False)  # a JSON string is a YAML double-quoted one
    lines = [
        f"# Written by git coop init --from codalab from {plan.origin}.",
        f"# The metric runs the bundle's programs kept in {FOLDER}/ (see run.json there);",
        "# reference: docs/challenge-yaml.md and docs/bridge-codalab.md.",
        "version: 1",
        f"name: {q(plan.name)}",
        f"branch: {q(branch_of(request))}",
        "metric:",
        f"  command: {q(request.metric or COMMAND)}",
        f"  name: {q(plan.key)}",
        f"  direction: {q(plan.direction)}",
        f"  timeout: {plan.timeout}",
        "protect:",
        f"  - {q(FOLDER + '/**')}",
        "data:" + ("" if plan.data else " {}"),
        *(f"  {q(path)}: {q(digest)}" for path, digest in sorted(plan.data.items())),
    ]
    return "\n".join(lines) + "\n"


def _collect(tree: _Tree, base: str, task: _Task) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The files to write under FOLDER and the runner's program commands."""
    if task.scoring is None:
        raise ConfigError(
            f"the bundle has no scoring program ({task.where} has no scoring_program)",
            hint="add the scoring program to the bundle and name it in competition.yaml",
        )
    scoring, argv = _program(
        _files(tree, base, task.scoring, "scoring_program"), "scoring program", "scoring"
    )
    parts = {runner.SCORING: scoring}
    commands: dict[str, Any] = {"scoring": argv, "ingestion": None}
    if task.ingestion is not None:
        found = _files(tree, base, task.ingestion, "ingestion_program")
        parts[runner.INGESTION], commands["ingestion"] = _program(
            found, "ingestion program", "ingestion"
        )
    if task.reference is not None:
        parts[runner.REFERENCE] = _files(tree, base, task.reference, "reference_data")
    if task.input is not None:
        parts[runner.INPUT] = _files(tree, base, task.input, "input_data")
    files = {
        f"{FOLDER}/{sub}/{rel}": data for sub, got in parts.items() for rel, data in got.items()
    }
    return files, commands


def _pins(files: dict[str, bytes]) -> dict[str, str]:
    total = sum(len(data) for data in files.values())
    if total > _MAX_BYTES:
        raise ConfigError(
            f"the bundle's programs and data come to {total >> 20} MiB, all to be committed",
            hint=f"keep them under {_MAX_BYTES >> 20} MiB",
        )
    prefix = f"{FOLDER}/{runner.REFERENCE}/"
    pins = {
        p: "sha256:" + hashlib.sha256(d).hexdigest()
        for p, d in files.items()
        if p.startswith(prefix)
    }
    bad = next((path for path in pins if _BAD_PATH.search(path)), None)
    if bad is not None:
        raise ConfigError(
            f"the reference data file {bad[len(prefix) :]!r} has a character a challenge "
            "file cannot pin ([, ], \\ or a control character)",
            hint="rename it in the bundle",
        )
    return pins


def _notes(spec: dict[str, Any], commands: dict[str, Any], limit: int, timeout: int) -> list[str]:
    notes = [
        "the ingestion program runs the commit's code: the repository root is the code submission"
        if commands["ingestion"]
        else "no ingestion program: the commit's files are the result submission (the "
        "scoring program's input/res is the repository root)",
        f"each program may run {limit} s; the metric's timeout is {timeout} s",
    ]
    if spec.get("docker_image"):
        notes.append(
            f"docker_image {_shown(str(spec['docker_image']))} is not used: the programs run "
            "with what is "
            "on PATH (python and the packages they import)"
        )
    return notes


def _hard_coded(files: dict[str, bytes]) -> list[str]:
    # Codabench's own examples name /app/... in the programs' code; only the commands are
    # rewritten, so say which files will look for folders that exist only in its container.
    programs = (f"{FOLDER}/{runner.SCORING}/", f"{FOLDER}/{runner.INGESTION}/")
    code = [p for p in files if p.startswith(programs) and not p.endswith(("/metadata", ".yaml"))]
    found = [path for path in code if _APP_IN_CODE.search(files[path])]
    return [
        f"{path} names Codabench's /app folders in its code; they exist only in its "
        "container, so pass them to it as arguments in the metadata command"
        for path in found
    ]


def propose(request: Request) -> Proposal:
    """The challenge for the bundle at ``request.source`` (a folder or a zip). Raises
    ConfigError naming what is missing or unusable: competition.yaml, its leaderboard or
    columns, the scoring program, a program's metadata or command, the column asked for,
    the direction, a zip entry outside the bundle."""
    tree, label = _open(request.source)
    base, text = _competition(tree, label)
    spec = _load_yaml(text, "competition.yaml")
    if not isinstance(spec, dict):
        raise ConfigError("competition.yaml is not a mapping of settings")
    codabench = str(spec.get("version", "")).strip() in ("2", "2.0")
    task = _v2_task(spec) if codabench else _v1_task(spec)
    columns = _v2_columns(spec) if codabench else _v1_columns(spec)
    column, notes = _column(columns, request.metric_name)
    direction, said = _direction(column, request.direction)
    files, commands = _collect(tree, base, task)
    limit = _time_limit(task, request.timeout)
    timeout = min(86400, limit * (2 if commands["ingestion"] else 1))
    pins = _pins(files)
    config = {
        "version": runner.CONFIG_VERSION,
        "platform": "codabench" if codabench else "codalab",
        "task": task.where,
        "key": column.key,
        "submission": ".",
        "step_timeout": limit,
        **commands,
    }
    files[f"{FOLDER}/{runner.CONFIG}"] = (json.dumps(config, indent=2) + "\n").encode()
    files[f"{FOLDER}/run.py"] = (
        resources.files("gitcoop.bridges").joinpath("codalab_run.py").read_bytes()
    )
    files[f"{FOLDER}/competition.yaml"] = text
    origin = f"{json.dumps(label, ensure_ascii=False)}, {task.where}"
    plan = _Plan(_name(request, spec), column.key, direction, timeout, pins, origin)
    notes += [*task.notes, *said, *_notes(spec, commands, limit, timeout), *_hard_coded(files)]
    return Proposal(_challenge_text(request, plan), files, notes)
