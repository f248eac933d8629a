"""Turn a repository into a challenge: challenge file, trust list, key, hook, genesis, baseline."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from gitcoop import _fs, _gitcli, constants, hooks, keys, ledger, pinned, records, resources
from gitcoop.bridges import Request
from gitcoop.challenge import parse_challenge, render_template
from gitcoop.commands import evaluate as evaluate_mod
from gitcoop.errors import ConfigError, GitcoopError, MetricError
from gitcoop.git import Repo, open_repo
from gitcoop.keys import SigningKey
from gitcoop.metric import AUTO_NAME
from gitcoop.session import fetch_first, open_session, signer_for
from gitcoop.workspace import local_dir


@dataclass(frozen=True)
class InitOptions:
    """What ``git coop init`` was asked to do."""

    metric: str | None = None
    direction: str | None = None
    name: str | None = None
    timeout: int = 600
    protect: tuple[str, ...] = ()
    branch: str | None = None
    metric_name: str | None = None
    hooks: bool = True
    commit: bool = True


@dataclass(frozen=True)
class InitResult:
    """What init did: ``created``, ``joined`` (a clone of an existing challenge) or ``exists``."""

    status: str
    name: str
    baseline: str | None = None
    score: str | None = None
    key_created: bool = False
    hook: Path | None = None
    notes: tuple[str, ...] = ()  # what a bridge wants the user to know


def _workdir(repo: Repo) -> Path:
    if repo.workdir is None:
        raise ConfigError(
            "cannot init a challenge in a bare repository",
            hint="run it in a clone with a work tree",
        )
    return repo.workdir


def _default_name(root: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", root.name)[:64].strip("-") or "challenge"


def _signers_text(email: str, key: SigningKey) -> str:
    return (
        "# gitcoop trust list, OpenSSH allowed_signers format: principal, options, key.\n"
        "# Edits take effect only through a ledger entry signed by a maintainer.\n"
        "# Roles are namespaces: gitcoop (contributor), gitcoop-evaluator, gitcoop-maintainer.\n"
        f"{keys.signers_line(email, key.public_openssh, 'gitcoop,gitcoop-maintainer')}\n"
    )


def _current_branch(repo: Repo, root: Path) -> str:
    try:
        return _gitcli.git(root, "symbolic-ref", "--short", "-q", "HEAD") or "main"
    except GitcoopError:
        return "main"


def _write_challenge(
    root: Path,
    repo: Repo,
    opts: InitOptions,
    email: str,
    key: SigningKey,
    metric_name: str = "score",
) -> list[Path]:
    if not opts.metric or not opts.direction:
        raise ConfigError(
            "a new challenge needs --metric and --direction",
            hint='e.g. git coop init --metric "python evaluate.py" --direction maximize',
        )
    text = render_template(
        name=opts.name or _default_name(root),
        command=opts.metric,
        direction=opts.direction,
        branch=opts.branch or _current_branch(repo, root),
        timeout=opts.timeout,
        protect=list(opts.protect),
        metric_name=opts.metric_name or metric_name,
        template_text=resources.read_text("templates", "challenge.yaml"),
    )
    parse_challenge(text, source=constants.CHALLENGE_FILE)  # fail before writing anything
    coop = root / constants.COOP_DIR
    coop.mkdir(exist_ok=True)
    written = [root / constants.CHALLENGE_FILE, root / constants.SIGNERS_FILE]
    try:
        _fs.atomic_write(written[0], text.encode("utf-8"))
        _fs.atomic_write(written[1], _signers_text(email, key).encode("utf-8"))
    except OSError:
        _undo(root, written)  # not half a challenge: init refuses to start from one
        raise
    return written


def _undo(root: Path, written: list[Path]) -> None:
    for path in written:
        path.unlink(missing_ok=True)
    coop = root / constants.COOP_DIR
    if coop.exists() and not any(coop.iterdir()):
        shutil.rmtree(coop)


def _genesis(
    repo: Repo,
    pin: pinned.Pinned,
    baseline: str,
    key: SigningKey,
    signer: records.Signer,
    trust: list[str],
) -> None:
    body = records.genesis_body(pin.challenge.name, pin.digest, baseline, trust)
    event = records.Event("genesis", body, signer, records.now())
    envelope = records.sign(event.payload(), constants.EVENT_PAYLOAD_TYPE, key)
    entry = ledger.Entry(0, None, "genesis", pin.digest, None, key.public_openssh, envelope)
    ledger.create_genesis(repo, entry, pin.tree)


def _trust_lines(root: Path) -> list[str]:
    text = (root / constants.SIGNERS_FILE).read_text(encoding="utf-8")
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def _score_baseline(repo: Repo, pin: pinned.Pinned, commit: str, *, probe: bool) -> str:
    if probe:  # learn the metric's name from what it prints
        metric = dataclasses.replace(pin.challenge.metric, name=AUTO_NAME)
        pin = dataclasses.replace(pin, challenge=dataclasses.replace(pin.challenge, metric=metric))
    got = evaluate_mod.score_commit(repo, local_dir(repo), pin, commit)
    if got.error:
        raise MetricError(
            f"the baseline {commit[:12]} could not be scored: {got.error}",
            hint="fix the metric command; nothing was changed",
        )
    return got.name


def _create(repo: Repo, root: Path, opts: InitOptions, *, adopt: bool = False) -> InitResult:
    if opts.hooks:
        hooks.hooks_dir(root)  # refuse a moved hooks directory before writing anything
    key, signer, created = signer_for(repo, root)
    if adopt:  # a hand-written challenge file: keep it, add the trust list if it lacks one
        written = (
            [] if (root / constants.SIGNERS_FILE).exists() else [root / constants.SIGNERS_FILE]
        )
        for path in written:
            _fs.atomic_write(path, _signers_text(signer.principal, key).encode("utf-8"))
    else:
        written = _write_challenge(root, repo, opts, signer.principal, key)
    try:
        start = repo.head_commit()
        probe = not adopt and opts.metric_name is None
        name = _score_baseline(repo, pinned.from_workdir(repo, root), start, probe=probe)
        if probe and name != "score":
            _write_challenge(root, repo, opts, signer.principal, key, name)
        if opts.commit and _gitcli.git(root, "status", "--porcelain", "--", constants.COOP_DIR):
            _gitcli.commit_paths(root, [constants.COOP_DIR], "coop: init challenge")
    except BaseException:
        _undo(root, written)
        raise
    baseline = repo.head_commit()
    pin = (
        pinned.from_tree(repo, repo.commit(baseline).tree, "HEAD")
        if opts.commit
        else pinned.from_workdir(repo, root)
    )
    _genesis(repo, pin, baseline, key, signer, _trust_lines(root))
    hook = hooks.install(root) if opts.hooks else None
    outcome = evaluate_mod.evaluate(open_session(root), [baseline], key, signer)[0]
    return InitResult(
        "created",
        pin.challenge.name,
        baseline,
        None if outcome.score is None else str(outcome.score),
        created,
        hook,
    )


def _join(repo: Repo, root: Path, opts: InitOptions) -> InitResult:
    # A clone of an existing challenge: take the ledger from a remote and set up this clone;
    # with no ledger anywhere, the committed challenge file starts a new one.
    if fetch_first(repo) is None:
        if (root / constants.SIGNERS_FILE).exists() and not _started_here(root):
            raise ConfigError(
                "this challenge's ledger was not found on any remote",
                hint="ask its maintainer to publish it: git push origin refs/coop/ledger",
            )
        return _create(repo, root, opts, adopt=True)
    _key, _signer, created = signer_for(repo, root)
    hook = hooks.install(root) if opts.hooks and not hooks.installed(root) else None
    session = open_session(root)
    return InitResult("joined", session.pinned.challenge.name, key_created=created, hook=hook)


def _started_here(root: Path) -> bool:
    """Whether the trust list names the user's own key as a maintainer: then this is the
    clone where ``init`` committed the challenge and stopped before the ledger's first
    entry (a full disk, a crash), and running it again starts the ledger."""
    try:
        public = keys.load(keys.gitcoop_home()).public_openssh.split()
    except GitcoopError:
        return False
    for line in _trust_lines(root):
        fields = line.split()
        at = [i for i in range(len(fields)) if fields[i : i + 2] == public]
        if at and "gitcoop-maintainer" in " ".join(fields[: at[0]]):
            return True
    return False


def init(path: str | Path, opts: InitOptions) -> InitResult:
    """Create the challenge in the repository at ``path``, or set up a clone of one.

    Running it again changes nothing. Raises ConfigError, MetricError or NotARepository.
    """
    repo = open_repo(path)
    root = _workdir(repo)
    repo.head_commit()
    if ledger.head(repo) is not None:
        hook = hooks.install(root) if opts.hooks and not hooks.installed(root) else None
        name = open_session(root).pinned.challenge.name
        return InitResult("exists", name, hook=hook)
    if not (root / constants.CHALLENGE_FILE).exists():
        return _create(repo, root, opts)
    if opts.metric:
        raise ConfigError(
            f"{constants.CHALLENGE_FILE} already exists",
            hint="run `git coop init` without --metric to set up this clone",
        )
    return _join(repo, root, opts)


def from_bridge(path: str | Path, kind: str, request: Request, opts: InitOptions) -> InitResult:
    """Write and commit what the bridge ``kind`` proposes (the challenge file and its
    files), then start the challenge from it; when that fails, the commit is taken back.
    Raises ConfigError when the repository already has a challenge or a proposed file
    exists."""
    from gitcoop import bridges

    repo = open_repo(path)
    root = _workdir(repo)
    repo.head_commit()
    if (root / constants.CHALLENGE_FILE).exists() or ledger.head(repo) is not None:
        raise ConfigError(
            f"{constants.CHALLENGE_FILE} already exists",
            hint="a bridge starts a new challenge; run git coop init without --from",
        )
    proposal = bridges.propose(kind, dataclasses.replace(request, root=root))
    parse_challenge(proposal.challenge, source=constants.CHALLENGE_FILE)  # before writing
    targets = {constants.CHALLENGE_FILE: proposal.challenge.encode("utf-8"), **proposal.files}
    clash = [rel for rel in targets if (root / rel).exists()]
    if clash:
        raise ConfigError(
            f"{clash[0]} exists; the bridge would write it", hint="move it aside and run again"
        )
    written = [root / rel for rel in targets]
    for target, data in zip(written, targets.values(), strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        _fs.atomic_write(target, data)
    try:
        # -f: a bundle's data may match the user's .gitignore (*.csv) and must be committed.
        _gitcli.git(root, "add", "-f", "--", *targets)
        _gitcli.commit_paths(root, list(targets), f"coop: a challenge from {kind}")
    except GitcoopError:
        _undo(root, written)
        raise
    try:
        result = init(path, dataclasses.replace(opts, metric=None))  # the file says it now
    except BaseException:
        # The challenge did not start: take the commit back, leaving the user's work alone.
        _gitcli.git(root, "reset", "--quiet", "--soft", "HEAD~1")
        _gitcli.git(root, "reset", "--quiet", "--", *targets)
        _undo(root, written)
        raise
    return dataclasses.replace(result, notes=tuple(proposal.notes))


def github_workflow(path: str | Path) -> tuple[Path, bool]:
    """Write ``.github/workflows/coop.yml`` for the challenge branch from the template;
    return (its path, whether it was written: an existing file is left as it is)."""
    s = open_session(path)
    root = _workdir(s.repo)
    target = root / ".github" / "workflows" / "coop.yml"
    if target.exists():
        return target, False
    text = resources.read_text("templates", "github", "coop.yml")
    branch = s.pinned.challenge.branch
    target.parent.mkdir(parents=True, exist_ok=True)
    # JSON's double-quoted string is YAML's too: the branch name stays one literal.
    _fs.atomic_write(target, text.replace("__BRANCH__", json.dumps(branch)).encode("utf-8"))
    return target, True
