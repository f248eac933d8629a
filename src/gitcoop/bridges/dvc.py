"""The DVC bridge: read ``dvc.yaml``, find the stage that writes the metrics and propose a
challenge that runs it and reads the score from its metrics file (``metric.file`` and
``metric.key``). Proposing needs no DVC; scoring a pipeline of several stages does.

See docs/bridge-dvc.md for what is chosen and why.
"""

from __future__ import annotations

import dataclasses
import json
import math
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from gitcoop import resources
from gitcoop.bridges import Proposal, Request, branch_of
from gitcoop.challenge import render_template
from gitcoop.errors import ConfigError, GitcoopError
from gitcoop.git import Repo, open_repo

DVC_FILE = "dvc.yaml"
_FORMATS = (".json", ".yaml", ".yml")  # what metric.file reads; DVC also reads TOML
# What only a shell understands: a cmd with any of these runs through `dvc repro`.
_SHELL_RE = re.compile(r"[|&;<>()$`*?\[\]{}~#\n]|^\s*[A-Za-z_][A-Za-z0-9_]*=")
_PLAIN_PATH_RE = re.compile(r"[^*?\[\]\\\x00]+")


@dataclass(frozen=True)
class Stage:
    """One stage of dvc.yaml, its paths relative to the repository root."""

    name: str
    cmd: str | list[str] | None
    wdir: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]  # every output: outs, metrics and plots
    metrics: tuple[str, ...]
    params_files: tuple[str, ...]
    generated: bool = False  # foreach/matrix: DVC makes the real stages from it


@dataclass(frozen=True)
class _Repo:
    """What the bridge reads of the repository: the work tree and HEAD's files."""

    root: Path
    repo: Repo
    head: str
    tracked: frozenset[str]

    def has(self, path: str) -> bool:
        """Whether ``path`` is a committed file or a directory holding one."""
        prefix = path.rstrip("/") + "/"
        return path in self.tracked or any(p.startswith(prefix) for p in self.tracked)

    def read(self, path: str) -> str | None:
        """The file as it is in the work tree, else as committed, else None."""
        target = self.root / path
        if target.is_file():
            return target.read_text(encoding="utf-8", errors="replace")
        data = self.repo.blob_at(self.head, path)
        return None if data is None else data.decode("utf-8", errors="replace")


def propose(request: Request) -> Proposal:
    """The challenge for the repository's DVC pipeline; raises ConfigError naming what is
    missing: dvc.yaml, a stage with metrics, the stage (--stage), the key (--metric-name)
    or the direction (--direction)."""
    if request.source is not None:
        raise ConfigError(
            "--from dvc reads the repository itself; it takes no source directory",
            hint="run git coop init --from dvc at the repository's root",
        )
    repo = _open(request.root)
    stages = load_stages(request.root)
    if not repo.has(DVC_FILE):
        raise ConfigError(
            f"{DVC_FILE} is not committed; commits are scored with the committed pipeline",
            hint=f"git add {DVC_FILE} && git commit",
        )
    stage = choose_stage(stages, request.stage)
    path, key = choose_score(repo, stage, request.metric_name)
    direction = _direction(request.direction, key)
    upstream = needed_stages(stage, stages)
    if request.metric:
        command, why = request.metric, "the command given runs it"
    else:
        command, why = _command(stage, upstream)
        _check_committed(repo, [stage, *upstream])
    protect, notes = _protect(repo, stage, stages, pipeline=bool(upstream))
    text = _challenge_text(request, command, direction, path, key, protect)
    notes.insert(0, f"the score is {key} in {path}, written by stage {stage.name}; {why}")
    return Proposal(text, notes=notes)


# --- reading dvc.yaml --------------------------------------------------------------------


def load_stages(root: Path) -> dict[str, Stage]:
    """The stages of ``root/dvc.yaml`` by name, with the top-level ``metrics`` given to the
    stage whose outputs hold them. Raises ConfigError when the file is missing or is not a
    pipeline DVC could read."""
    target = root / DVC_FILE
    if not target.is_file():
        raise ConfigError(
            f"no {DVC_FILE} in {root}: --from dvc needs a DVC pipeline",
            hint="define the stages (dvc stage add), or use git coop init --metric",
        )
    try:
        doc = yaml.safe_load(target.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{DVC_FILE} is not valid YAML: {problem}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("stages"), dict) or not doc["stages"]:
        raise ConfigError(
            f"{DVC_FILE} has no stages", hint="a DVC pipeline lists its stages under stages:"
        )
    stages = {str(name): _stage(str(name), body) for name, body in doc["stages"].items()}
    return _attach_top_metrics(stages, _paths(doc.get("metrics"), ".", "metrics"))


def _stage(name: str, body: object) -> Stage:
    where = f"stage {name}"
    if not isinstance(body, dict):
        raise ConfigError(f"{DVC_FILE}: {where} is not a mapping")
    generated = "foreach" in body or "matrix" in body
    if "foreach" in body:
        do = body.get("do")
        body = do if isinstance(do, dict) else {}
    wdir = body.get("wdir", ".")
    if not isinstance(wdir, str):
        raise ConfigError(f"{DVC_FILE}: {where}: wdir must be a path")
    cmd = body.get("cmd")
    if not (cmd is None or isinstance(cmd, str) or _strings(cmd)):
        raise ConfigError(f"{DVC_FILE}: {where}: cmd must be a command or a list of commands")
    metrics = _paths(body.get("metrics"), wdir, f"{where}: metrics")
    outs = _paths(body.get("outs"), wdir, f"{where}: outs")
    plots = _paths(body.get("plots"), wdir, f"{where}: plots")
    return Stage(
        name,
        cmd,
        wdir,
        _paths(body.get("deps"), wdir, f"{where}: deps"),
        outs + metrics + plots,
        metrics,
        _params_files(body.get("params"), wdir),
        generated,
    )


def _strings(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _paths(items: object, wdir: str, where: str) -> tuple[str, ...]:
    # A list of paths, each a string or a one-key mapping {path: {cache: false, ...}}.
    if items is None:
        return ()
    if isinstance(items, dict):  # plots may be given as a mapping of path to options
        items = list(items)
    if not isinstance(items, list):
        raise ConfigError(f"{DVC_FILE}: {where} must be a list of paths")
    found: list[str] = []
    for item in items:
        if isinstance(item, dict) and len(item) == 1:
            item = next(iter(item))
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{DVC_FILE}: {where} must be a list of paths, got {item!r}")
        found.append(_join(wdir, item))
    return tuple(found)


def _params_files(items: object, wdir: str) -> tuple[str, ...]:
    # params: [key, ...] reads params.yaml; {file: [keys]} names another file.
    files: list[str] = []
    for item in items if isinstance(items, list) else []:
        names = list(item) if isinstance(item, dict) else ["params.yaml"]
        files += [_join(wdir, str(n)) for n in names]
    return tuple(dict.fromkeys(files))


def _join(wdir: str, path: str) -> str:
    if "://" in path or path.startswith("/"):
        return path
    return posixpath.normpath(posixpath.join(wdir, path))


def _attach_top_metrics(stages: dict[str, Stage], top: tuple[str, ...]) -> dict[str, Stage]:
    # DVC 3 lists files that DVCLive writes under a top-level metrics: key; the stage
    # that writes one is the stage with it (or its directory) among its outputs.
    for path in top:
        for name, stage in stages.items():
            if any(_overlaps(path, out) for out in stage.outs) and path not in stage.metrics:
                stages[name] = dataclasses.replace(stage, metrics=(*stage.metrics, path))
                break
    return stages


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


# --- choosing ----------------------------------------------------------------------------


def choose_stage(stages: Mapping[str, Stage], wanted: str | None) -> Stage:
    """The stage named ``wanted``, else the only stage with metrics. Raises ConfigError
    when there is none, several (listing them) or the named one is unknown."""
    with_metrics = [s.name for s in stages.values() if s.metrics]
    if wanted is not None:
        stage = stages.get(wanted)
        if stage is None:
            raise ConfigError(
                f"{DVC_FILE} has no stage {wanted!r}", hint=f"its stages: {', '.join(stages)}"
            )
        if not stage.metrics:
            raise ConfigError(
                f"stage {wanted} of {DVC_FILE} writes no metrics",
                hint=_stages_hint(with_metrics),
            )
    elif not with_metrics:
        raise ConfigError(
            f"no stage of {DVC_FILE} writes metrics (a metrics: list of files)",
            hint="declare the file the evaluation writes under the stage's metrics:",
        )
    elif len(with_metrics) > 1:
        raise ConfigError(
            f"several stages of {DVC_FILE} write metrics: {', '.join(with_metrics)}",
            hint="choose one with --stage",
        )
    else:
        stage = stages[with_metrics[0]]
    if stage.generated:
        raise ConfigError(
            f"stage {stage.name} is generated by foreach/matrix; the bridge reads plain stages",
            hint="write .coop/challenge.yaml by hand and run git coop init",
        )
    return stage


def _stages_hint(names: list[str]) -> str:
    return f"stages with metrics: {', '.join(names)}" if names else "add a metrics: list to it"


def choose_score(repo: _Repo, stage: Stage, wanted: str | None) -> tuple[str, str]:
    """(metrics file, dotted key) of the score: the key named ``wanted``, else the only
    number in the stage's metrics files as the repository has them. Raises ConfigError
    when no file can be read by gitcoop, or when the key is unknown or ambiguous."""
    files = [p for p in stage.metrics if p.endswith(_FORMATS)]
    if not files:
        raise ConfigError(
            f"stage {stage.name}'s metrics ({', '.join(stage.metrics)}) are not JSON or YAML",
            hint="have the stage write its metrics as .json or .yaml",
        )
    for path in files:
        if not _PLAIN_PATH_RE.fullmatch(path) or "${" in path or path.startswith(("/", "../")):
            raise ConfigError(f"stage {stage.name}'s metrics file {path} is not a plain path")
    found = {p: _numeric_keys(_load(repo.read(p), p)) for p in files}
    if wanted is not None:
        return _named_key(found, wanted, stage.name)
    candidates = [(p, k) for p, keys in found.items() for k in (keys or [])]
    if len(candidates) == 1:
        return candidates[0]
    if any(keys is None for keys in found.values()):
        missing = next(p for p, keys in found.items() if keys is None)
        raise ConfigError(
            f"{missing} is not in the repository, so the score's key is unknown",
            hint=f"run dvc repro {stage.name} first, or name the key with --metric-name",
        )
    listed = "; ".join(f"{p}: {', '.join(keys or ['none'])}" for p, keys in found.items())
    raise ConfigError(
        f"stage {stage.name}'s metrics hold {len(candidates)} numbers ({listed})",
        hint="name the score with --metric-name KEY (a dotted key)",
    )


def _named_key(found: Mapping[str, list[str] | None], wanted: str, stage: str) -> tuple[str, str]:
    hits = [p for p, keys in found.items() if keys is not None and wanted in keys]
    if len(hits) == 1:
        return hits[0], wanted
    unread = [p for p, keys in found.items() if keys is None]
    if not hits and len(found) == 1 and unread:  # nothing to check it against: trust it
        return unread[0], wanted
    if hits:
        raise ConfigError(f"{wanted} is in several metrics files of stage {stage}: {hits}")
    known = sorted({f"{k}" for keys in found.values() for k in keys or []})
    raise ConfigError(
        f"stage {stage}'s metrics have no number at {wanted!r}",
        hint=f"numeric keys: {', '.join(known)}" if known else "run dvc repro and check the file",
    )


def _load(text: str | None, path: str) -> object:
    if text is None:
        return None
    try:
        if path.endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError, RecursionError):
        raise ConfigError(f"the metrics file {path} is not valid {_kind(path)}") from None


def _kind(path: str) -> str:
    return "JSON" if path.endswith(".json") else "YAML"


def _numeric_keys(value: object, prefix: str = "") -> list[str] | None:
    """Dotted paths of the finite numbers in a metrics document; None for no document.
    Keys holding a dot cannot be named by metric.key and are left out."""
    if value is None and not prefix:
        return None
    if isinstance(value, dict):
        keys: list[str] = []
        for k, v in value.items():
            if isinstance(k, str) and k and "." not in k:
                keys += _numeric_keys(v, f"{prefix}{k}.") or []
        return keys
    if isinstance(value, bool) or not isinstance(value, int | float) or not prefix:
        return []
    return [prefix[:-1]] if math.isfinite(value) else []


def _direction(given: str | None, key: str) -> str:
    if given is None:
        raise ConfigError(
            f"DVC does not say whether a higher {key} is better",
            hint="pass --direction maximize or --direction minimize",
        )
    return given


# --- the command -------------------------------------------------------------------------


def needed_stages(stage: Stage, stages: Mapping[str, Stage]) -> list[Stage]:
    """The stages whose outputs ``stage`` needs, directly or through others."""
    needed: dict[str, Stage] = {}
    todo = [stage]
    while todo:
        current = todo.pop()
        for other in stages.values():
            if other.name in needed or other.name == stage.name:
                continue
            if any(_overlaps(dep, out) for dep in current.deps for out in other.outs):
                needed[other.name] = other
                todo.append(other)
    return list(needed.values())


def _command(stage: Stage, upstream: list[Stage]) -> tuple[str, str]:
    repro = shlex.join(["dvc", "repro", "--force", stage.name])
    if upstream:
        names = ", ".join(s.name for s in upstream)
        return repro, f"`{repro}` runs it after the stages it needs ({names})"
    cmd = stage.cmd[0] if isinstance(stage.cmd, list) and len(stage.cmd) == 1 else stage.cmd
    if isinstance(cmd, list) or cmd is None:
        return repro, f"`{repro}` runs its commands"
    if stage.wdir not in ("", "."):
        return repro, f"`{repro}` runs it in its wdir {stage.wdir}"
    if _needs_shell(cmd):
        return repro, f"its cmd needs a shell, so `{repro}` runs it"
    return cmd.strip(), "its cmd runs directly, without DVC"


def _needs_shell(cmd: str) -> bool:
    if _SHELL_RE.search(cmd):
        return True
    try:
        return not shlex.split(cmd)
    except ValueError:
        return True


def _check_committed(repo: _Repo, stages: Iterable[Stage]) -> None:
    # The metric runs in a clean checkout of each commit: what the stages read must be in
    # git or made by a stage. Inputs kept by DVC itself (.dvc files, remotes) are not.
    made = [out for s in stages for out in s.outs]
    for stage in stages:
        for path in (*stage.deps, *stage.params_files):
            if _outside(path) or any(_overlaps(path, out) for out in made) or repo.has(path):
                continue
            raise ConfigError(
                f"stage {stage.name} reads {path}, which is not committed; commits are "
                "scored in a clean checkout",
                hint=f"commit it with git, or pass --metric with a command that fetches it "
                f"(e.g. \"sh -c 'dvc pull && dvc repro --force {stage.name}'\")",
            )


def _within(paths: Iterable[str], top: str) -> bool:
    # Whether any of ``paths`` is ``top`` or below it.
    return any(p == top or p.startswith(top.rstrip("/") + "/") for p in paths)


def _outside(path: str) -> bool:
    return "://" in path or path.startswith(("/", "../")) or path == ".."


# --- protect -----------------------------------------------------------------------------


def _protect(
    repo: _Repo, stage: Stage, stages: Mapping[str, Stage], *, pipeline: bool
) -> tuple[list[str], list[str]]:
    """The protect list and what the user should know about it. In a pipeline, the scoring
    stage's own inputs are the evaluator (its code, its test data); the stage that both
    trains and scores gets nothing beyond dvc.yaml, since its code is the model."""
    protect = [DVC_FILE]
    notes: list[str] = []
    if not pipeline:
        notes.append(
            f"stage {stage.name} trains and scores in one: only {DVC_FILE} is protected; "
            "add its evaluation files to protect in .coop/challenge.yaml"
        )
        return protect, notes
    made = [out for s in stages.values() for out in s.outs]
    shared: list[str] = []
    for dep in stage.deps:
        if _outside(dep) or dep in stage.params_files or any(_overlaps(dep, o) for o in made):
            continue
        users = [s.name for s in stages.values() if s is not stage and _within(s.deps, dep)]
        if users:
            shared.append(f"{dep} (also read by {', '.join(users)})")
        elif repo.has(dep) and _PLAIN_PATH_RE.fullmatch(dep):
            protect.append(dep)
    if shared:
        notes.append(f"not protected, as other stages read them too: {'; '.join(shared)}")
    params = sorted({p for s in stages.values() for p in s.params_files})
    left = [*params, "dvc.lock", *stage.metrics]
    notes.append(f"protected: {', '.join(protect)}; not protected: {', '.join(left)}")
    return protect, notes


# --- the challenge file ------------------------------------------------------------------


def _challenge_text(
    request: Request, command: str, direction: str, path: str, key: str, protect: list[str]
) -> str:
    text = render_template(
        name=request.name or _default_name(request.root),
        command=command,
        direction=direction,
        branch=branch_of(request),
        timeout=request.timeout,
        protect=protect,
        metric_name=key,
        template_text=resources.read_text("templates", "challenge.yaml"),
    )
    name_line = f"  name: {json.dumps(key)}\n"
    if name_line not in text:
        raise GitcoopError("the challenge template has no metric.name line to follow")
    source = (
        f"{name_line}"
        "  # With `file`, the score is read there instead: the number at the dotted\n"
        "  # `key` of the JSON or YAML file the command writes (the stage's DVC metrics).\n"
        f"  file: {json.dumps(path)}\n"
        f"  key: {json.dumps(key)}\n"
    )
    return text.replace(name_line, source, 1)


def _default_name(root: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", root.name)[:64].strip("-.") or "challenge"


def _open(root: Path) -> _Repo:
    repo = open_repo(root)
    head = repo.head_commit()
    tracked = frozenset(f.path for f in repo.files(repo.commit(head).tree))
    return _Repo(root, repo, head, tracked)
