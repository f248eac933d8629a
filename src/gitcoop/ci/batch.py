"""Scale-out scoring for CI: ``plan`` lists the commits no evaluator has scored and cuts them
into shards, ``score`` runs the metric on one shard's commits with no key at hand, and
``sign`` (the only step that holds the evaluator's key) checks each result against the
repository itself and signs it. The job that signs never runs contributor code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from gitcoop import _faults, _fs, _gitcli, cache, keys, private, records, trust
from gitcoop.challenge import Challenge
from gitcoop.commands import verify as verify_mod
from gitcoop.commands.evaluate import Scored, Scorer, attest, environment
from gitcoop.decimals import decimal_text
from gitcoop.errors import ConfigError, FormatError, write_failed
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


def score(
    s: Session,
    commits: list[str],
    out: Path,
    *,
    split: str = "public",
    data: Path | None = None,
    round_name: str | None = None,
) -> list[Result]:
    """Score ``commits`` in an isolated worktree with the pinned evaluator and write the
    results file (atomically); metric failures are results too. On the private split,
    with the data file ``data`` (or ``$GITCOOP_PRIVATE_DATA``), and by default every commit
    of the history up to the branch tip that has no trusted private score yet; a
    challenge with no private split writes an empty results file. Private scores are made
    only for ``round_name`` once it has ended (ConfigError before): a results file is an
    artifact others can read."""
    pin, extra = s.pinned, {}
    ch = pin.challenge
    if split == private.SPLIT:
        if ch.private is None:
            commits = []
        else:
            _ended(ch, round_name)
            extra = {private.METRIC_ENV: str(private.data_file(ch, data))}
            metric = dataclasses.replace(ch.metric, command=ch.private.command)
            pin = dataclasses.replace(pin, challenge=dataclasses.replace(ch, metric=metric))
            commits = commits or _unrevealed(s)
    results = []
    reuse = split != private.SPLIT  # the score cache holds public scores only
    with contextlib.closing(Scorer(s.repo, s.local, pin, reuse=reuse, extra_env=extra)) as scorer:
        for commit in dict.fromkeys(s.repo.resolve(c) for c in commits):
            got = scorer.score(commit)
            text = None if got.score is None else decimal_text(got.score)
            tree = s.repo.commit(commit).tree
            results.append(Result(commit, tree, text, got.duration_ms, got.error))
    doc = {
        "format": FORMAT,
        "challenge": s.pinned.digest,
        "metric": ch.metric.name,
        "split": split,
        "environment": environment(),
        "results": [r.to_json() for r in results],
    }
    _fs.atomic_write(out, json.dumps(doc, indent=1).encode())
    return results


def _ended(ch: Challenge, name: str | None) -> None:
    if name is None:
        raise ConfigError(
            "private scores are made only to close a round",
            hint="name the round that has ended: --round NAME",
        )
    r, now = ch.round(name), records.now()
    if now < r.end:
        raise ConfigError(
            f"round {name} ends at {r.end} (now {now}): its private scores stay unmade until then",
            hint="run it once the round has ended",
        )


def _unrevealed(s: Session) -> list[str]:
    known = private.known(s, verify_mod.verify(s.repo.common_dir))
    tip = s.repo.resolve(f"refs/heads/{s.pinned.challenge.branch}")
    return private.missing(s, tip, known)


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
    reported, the challenge is the one in force) and sign the scored ones, parents first,
    on the split each file was scored on. Raises FormatError or ConfigError before signing
    anything when a file does not pass."""
    read = [_read(path, s.pinned.digest) for path in files]
    order = {c: i for i, c in enumerate(_branch_commits(s))}
    for _, results in read:
        for r in results:
            if r.commit not in order:
                raise ConfigError(
                    f"result for {r.commit[:12]}, which is not on the challenge branch",
                    hint="sign only results of a plan made for this branch",
                )
            if s.repo.commit(r.commit).tree != r.tree:
                raise FormatError(
                    f"result for {r.commit[:12]} names another tree than the commit's"
                )
    name, email = identity(s.repo)
    signer = records.Signer(key.keyid, email, name)
    done = Signed([], [], [])
    for split in ("public", private.SPLIT):
        results = sorted(
            (r for got_split, rs in read if got_split == split for r in rs),
            key=lambda r: order[r.commit],
        )
        if results:
            _sign_split(s, key, signer, split, results, done)
    _faults.hit("ci", "after-sign")  # all appended; ci sign --push publishes next
    return done


def _sign_split(
    s: Session,
    key: keys.SigningKey,
    signer: records.Signer,
    split: str,
    results: list[Result],
    done: Signed,
) -> None:
    digest = s.pinned.digest
    on_private = split == private.SPLIT
    index = cache.load_index(s.repo, s.local)
    known: dict[str, Decimal] = {}
    if on_private:
        # Any trusted evaluator's private score stands: one per commit is revealed.
        known = private.known(s, verify_mod.verify(s.repo.common_dir))

    def signed_before(commit: str) -> bool:
        return commit in known if on_private else index.has(commit, digest, key.keyid)

    def score_of(commit: str) -> Decimal | None:
        return known.get(commit) if on_private else known.get(commit, index.score(commit, digest))

    last = None
    for r in results:
        if r.score is None:
            done.failed.append((r.commit, r.error or "no score"))
            continue
        if signed_before(r.commit) or r.commit in done.attested:
            done.already.append(r.commit)
            continue
        parents = s.repo.commit(r.commit).parents
        parent = score_of(parents[0]) if parents else None
        got = Scored(records.score_of(r.score), r.duration_ms, cached=False)
        last = attest(s, key, signer, r.commit, got, parent, last, split=split)
        _faults.hit("ci", "after-append")  # one result in the ledger, the next unsigned
        known[r.commit] = records.score_of(r.score)
        done.attested.append(r.commit)


def _read(path: Path, digest: str) -> tuple[str, list[Result]]:
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
    split = doc.get("split", "public")
    if split not in ("public", private.SPLIT):
        raise FormatError(f"{path} names an unknown split {str(split)[:40]!r}")
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
    return split, out


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
        raise write_failed(exc, path) from exc
