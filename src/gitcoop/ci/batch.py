"""Scale-out scoring for CI: ``plan`` lists the commits no evaluator has scored and cuts them
into shards, ``score`` runs the metric on one shard's commits with no key at hand, and
``sign`` (the only step that holds the evaluator's key) checks each result against the
repository itself and signs it. The job that signs never runs contributor code.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitcoop import _fs, _gitcli, cache, keys, records, trust
from gitcoop.commands import verify as verify_mod
from gitcoop.commands.evaluate import Scored, Scorer, attest, environment
from gitcoop.errors import ConfigError, FormatError, GitcoopError
from gitcoop.metric import decimal_text
from gitcoop.session import Session, identity

FORMAT = "gitcoop-ci-results/1"
MAX_SHARDS = 256  # GitHub Actions runs at most this many jobs of one matrix
KEY_ENV = "GITCOOP_EVALUATOR_KEY"


def _branch_commits(s: Session) -> list[str]:
    """The challenge branch's commits from the baseline on, parents first."""
    tip = s.repo.resolve(f"refs/heads/{s.pinned.challenge.branch}")
    listed = _gitcli.git(
        s.repo.common_dir, "rev-list", "--reverse", "--topo-order", tip, f"^{s.baseline}"
    )
    return [s.baseline, *listed.split()]


def plan(s: Session, shards: int) -> list[list[str]]:
    """The challenge branch's commits that no evaluator-role key has attested under the
    challenge in force, dealt round-robin into at most ``shards`` non-empty shards."""
    report = verify_mod.verify(s.repo.common_dir)
    assert report.head is not None
    timeline = trust.Timeline(report.trust)
    done = set()
    for row in verify_mod.verified_rows(s.repo, report.head):
        member = timeline.member(row.keyid, row.seq)
        if row.challenge == s.pinned.digest and member and member.has(trust.EVALUATOR):
            done.add(row.commit)
    todo = [c for c in _branch_commits(s) if c not in done]
    n = max(1, min(shards, MAX_SHARDS, len(todo)))
    return [todo[i::n] for i in range(n)] if todo else []


@dataclass(frozen=True)
class Result:
    """One commit's measurement, as a scoring shard reports it."""

    commit: str
    tree: str
    score: str | None
    duration_ms: int
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {
            "commit": self.commit,
            "tree": self.tree,
            "score": self.score,
            "durationMs": self.duration_ms,
            "error": self.error,
        }


def score(s: Session, commits: list[str], out: Path) -> list[Result]:
    """Score ``commits`` in an isolated worktree with the pinned evaluator and write the
    results file (atomically); metric failures are results too."""
    results = []
    with contextlib.closing(Scorer(s.repo, s.local, s.pinned)) as scorer:
        for commit in dict.fromkeys(s.repo.resolve(c) for c in commits):
            got = scorer.score(commit)
            text = None if got.score is None else decimal_text(got.score)
            tree = s.repo.commit(commit).tree
            results.append(Result(commit, tree, text, got.duration_ms, got.error))
    doc = {
        "format": FORMAT,
        "challenge": s.pinned.digest,
        "metric": s.pinned.challenge.metric.name,
        "environment": environment(),
        "results": [r.to_json() for r in results],
    }
    _fs.atomic_write(out, json.dumps(doc, indent=1).encode())
    return results


def load_key(env: Mapping[str, str]) -> keys.SigningKey:
    """The evaluator's key from the ``GITCOOP_EVALUATOR_KEY`` secret (an unencrypted
    OpenSSH Ed25519 private key); raises ConfigError naming the secret."""
    text = env.get(KEY_ENV) or ""
    if not text.strip():
        raise ConfigError(
            f"{KEY_ENV} is not set: the evaluator's private key signs the results",
            hint=f"store it as a repository secret and pass it with env: {KEY_ENV}",
        )
    return keys.from_secret(text.encode(), KEY_ENV)


@dataclass(frozen=True)
class Signed:
    """What ``sign`` did with the results it was handed."""

    attested: list[str]
    already: list[str]
    failed: list[tuple[str, str]]  # (commit, the metric's error)


def sign(s: Session, files: list[Path], key: keys.SigningKey) -> Signed:
    """Check every result against the repository (the commit exists, its tree is the one
    reported, the challenge is the one in force) and sign the scored ones, parents first.
    Raises FormatError or ConfigError before signing anything when a file does not pass."""
    results = [r for path in files for r in _read(path, s.pinned.digest)]
    order = {c: i for i, c in enumerate(_branch_commits(s))}
    for r in results:
        if r.commit not in order:
            raise ConfigError(
                f"result for {r.commit[:12]}, which is not on the challenge branch",
                hint="sign only results of a plan made for this branch",
            )
        if s.repo.commit(r.commit).tree != r.tree:
            raise FormatError(f"result for {r.commit[:12]} names another tree than the commit's")
    results.sort(key=lambda r: order[r.commit])
    name, email = identity(s.repo)
    signer = records.Signer(key.keyid, email, name)
    index = cache.load_index(s.repo, s.local)
    attested, already, failed = [], [], []
    last = None
    for r in results:
        if r.score is None:
            failed.append((r.commit, r.error or "no score"))
        elif index.has(r.commit, s.pinned.digest, key.keyid) or r.commit in attested:
            already.append(r.commit)
        else:
            parents = s.repo.commit(r.commit).parents
            parent = index.score(parents[0], s.pinned.digest) if parents else None
            got = Scored(records.score_of(r.score), r.duration_ms, cached=False)
            last = attest(s, key, signer, r.commit, got, parent, last)
            index.scores.setdefault(r.commit, {}).setdefault(s.pinned.digest, r.score)
            attested.append(r.commit)
    return Signed(attested, already, failed)


def _read(path: Path, digest: str) -> list[Result]:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"no results file at {path}") from None
    except (OSError, ValueError):
        raise FormatError(f"{path} is not a gitcoop results file (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise FormatError(f"{path} is not a {FORMAT} file")
    if doc.get("challenge") != digest:
        raise ConfigError(
            f"{path} was scored under another challenge version than the one in force",
            hint="plan and score again",
        )
    out = []
    for item in doc.get("results") or []:
        try:
            out.append(
                Result(
                    object_id(item["commit"]),
                    object_id(item["tree"]),
                    None if item["score"] is None else str(item["score"]),
                    int(item["durationMs"]),
                    None if item.get("error") is None else str(item["error"])[:500],
                )
            )
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"{path} holds a malformed result") from None
    return out


def object_id(value: object) -> str:
    """``value`` when it is a full object id (40 lowercase hex digits); else ValueError."""
    text = str(value)
    if len(text) != 40 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError("not a full object id")
    return text


def matrix(cut: list[list[str]]) -> str:
    """The shards as a GitHub Actions matrix (compact JSON): one entry per shard."""
    shards = [{"shard": i, "commits": " ".join(c)} for i, c in enumerate(cut, 1)]
    return json.dumps({"include": shards}, separators=(",", ":"))


def write_outputs(path: Path | None, cut: list[list[str]]) -> None:
    """Append the step outputs ``matrix`` and ``count`` to ``GITHUB_OUTPUT`` (``path``)."""
    append(path, f"matrix={matrix(cut)}\ncount={sum(map(len, cut))}\n")


def append(path: Path | None, text: str) -> None:
    """Append ``text`` to a runner file (job summary, step outputs); nothing without one."""
    if path is None:
        return
    try:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise GitcoopError(f"cannot write {path}: {exc.strerror}") from None
