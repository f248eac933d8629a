"""Score commits with the pinned metric, sign metric-delta attestations, append them."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from gitcoop import __version__, _faults, cache, constants, ledger, records
from gitcoop.decimals import decimal_text
from gitcoop.errors import GitcoopError, MetricError
from gitcoop.git import Repo, open_repo
from gitcoop.keys import SigningKey
from gitcoop.metric import MetricSpec
from gitcoop.pinned import Pinned, effective_digest
from gitcoop.sandbox import run_metric
from gitcoop.session import Session
from gitcoop.workspace import metric_home, prepare, worktree

Report = Callable[[str], None]
# on_progress(done, total, commit): called as ``commit`` starts scoring and again as it
# finishes, ``done`` of ``total`` metric runs finished; one call at a time, from the worker
# threads when scoring in parallel.
OnProgress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Outcome:
    """What happened to one commit: scored and attested, already attested, or failed."""

    commit: str
    score: Decimal | None = None
    delta: Decimal | None = None
    cached: bool = False
    attested: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Scored:
    """A metric run's result (or why it failed), and whether it came from the cache."""

    score: Decimal | None
    duration_ms: int
    cached: bool
    error: str | None = None
    name: str = ""


def environment() -> dict[str, str]:
    """Describe the evaluator environment, with a digest over the description."""
    # platform.python_version(), system() and machine(), without importing platform (a
    # few ms on every push).
    uname = os.uname()
    env = {
        "gitcoop": __version__,
        "python": sys.version.split()[0],
        "platform": f"{uname.sysname}-{uname.machine}".lower(),
    }
    blob = "\n".join(f"{k}={v}" for k, v in sorted(env.items())).encode()
    return {**env, "digest": "sha256:" + hashlib.sha256(blob).hexdigest()}


class Scorer:
    """Scores commits one after another, holding one scoring worktree from its first metric
    run until ``close``.

    ``repo`` must belong to the calling thread: pygit2 handles are not shared across threads.
    """

    def __init__(
        self,
        repo: Repo,
        local: Path,
        pin: Pinned,
        *,
        reuse: bool = True,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self._repo = repo
        self._pin = pin
        self._reuse = reuse  # False: always run the metric (a reproduction)
        self._extra_env = dict(extra_env or {})
        self._scores = cache.ScoreCache(local)
        self._held = contextlib.ExitStack()
        self._path: Path | None = None

    def score(self, commit: str) -> Scored:
        """Score one commit in the scoring worktree, or from the cache when its non-protected
        files and the challenge are unchanged. Metric failures come back in the result."""
        repo, pin = self._repo, self._pin
        files = list(repo.files(repo.commit(commit).tree))
        key = effective_digest(files, pin.challenge)
        hit = self._scores.get(key, pin.digest) if self._reuse else None
        if hit is not None:
            return Scored(hit[0], hit[1], cached=True)
        m = pin.challenge.metric
        try:
            if self._path is None:
                self._path = self._held.enter_context(worktree(repo))
            prepare(repo, self._path, commit, pin, files)
            result = run_metric(
                MetricSpec(
                    m.command,
                    m.name,
                    m.timeout,
                    m.output_limit,
                    **m.source(),
                    memory_mb=m.memory_mb,
                    cpu_seconds=m.cpu_seconds,
                ),
                self._path,
                extra_env={"COOP_COMMIT": commit, **self._extra_env},
                home=metric_home(self._path),
            )
        except GitcoopError as exc:
            return Scored(None, 0, cached=False, error=str(exc))
        self._scores.put(key, pin.digest, result.value, result.duration_ms)
        return Scored(result.value, result.duration_ms, cached=False, name=result.name)

    def close(self) -> None:
        """Hand the scoring worktree back."""
        self._held.close()


def score_commit(repo: Repo, local: Path, pin: Pinned, commit: str) -> Scored:
    """Score one commit (see ``Scorer.score``)."""
    with contextlib.closing(Scorer(repo, local, pin)) as scorer:
        return scorer.score(commit)


def _in_challenge(repo: Repo, baseline: str, commit: str) -> bool:
    return repo.is_ancestor(baseline, commit)


def _needed(s: Session, todo: list[str], index: cache.AttestedIndex, baseline: str) -> list[str]:
    need: list[str] = []
    for c in todo:
        parents = s.repo.commit(c).parents
        p = parents[0] if parents else None
        if (
            p
            and p not in todo
            and p not in need
            and index.score(p, s.pinned.digest) is None
            and _in_challenge(s.repo, baseline, p)
        ):
            need.append(p)
        need.append(c)
    return need


def _score_stream(
    s: Session, commits: list[str], jobs: int, report: Report, on_progress: OnProgress
) -> Iterator[tuple[str, Scored]]:
    """Scores in the order of ``commits`` as they complete, so attesting can start early.

    With ``jobs`` > 1, scoring runs on that many worker threads, each with its own
    repository handle and worktree. With one job it stays on the calling thread: a worker
    would only contend with the caller for the GIL at every process start.
    """
    inline = jobs <= 1 or len(commits) <= 1
    per_thread = threading.local()
    scorers: list[Scorer] = []
    finished, counting = 0, threading.Lock()

    def tick(c: str, step: int) -> None:
        nonlocal finished
        with counting:
            finished += step
            on_progress(finished, len(commits), c)

    def task(c: str) -> tuple[str, Scored]:
        tick(c, 0)
        scorer = getattr(per_thread, "scorer", None)
        if scorer is None:
            repo = s.repo if inline else open_repo(s.repo.common_dir)
            scorer = per_thread.scorer = Scorer(repo, s.local, s.pinned)
            scorers.append(scorer)
        out = scorer.score(c)
        what = out.error or f"{out.score}{' (cached)' if out.cached else ''}"
        tick(c, 1)
        report(f"scored {c[:12]}: {what}")
        return c, out

    try:
        if inline:
            yield from map(task, commits)
            return
        # Imported here: the hook scores on one job and need not pay for it.
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=jobs)
        try:
            yield from pool.map(task, commits)
        finally:
            pool.shutdown(cancel_futures=True)
    finally:
        for scorer in scorers:
            scorer.close()


def _parents_first(s: Session, commits: list[str]) -> list[str]:
    wanted, out, seen = set(commits), [], set()

    def visit(c: str) -> None:
        # Iterative on purpose: a long chain of requested commits must not hit recursion limits.
        stack = [c]
        while stack:
            top = stack[-1]
            parents = [p for p in s.repo.commit(top).parents[:1] if p in wanted and p not in seen]
            if parents:
                stack.append(parents[0])
                continue
            stack.pop()
            if top not in seen:
                seen.add(top)
                out.append(top)

    for c in commits:
        visit(c)
    return out


def _parent_score(
    s: Session, index: cache.AttestedIndex, parent: str | None, scored: dict[str, Scored]
) -> Decimal | None:
    if parent is None:
        return None
    known = index.score(parent, s.pinned.digest)
    if known is not None:
        return known
    got = scored.get(parent)
    return got.score if got else None


def _improvement(score: Decimal, parent: Decimal | None, maximize: bool) -> Decimal | None:
    if parent is None:
        return None
    return score - parent if maximize else parent - score


def attest(
    s: Session,
    key: SigningKey,
    signer: records.Signer,
    commit: str,
    score: Scored,
    parent_score: Decimal | None,
    after: ledger.Head | None,
    split: str = "public",
) -> ledger.Head:
    """Sign a metric-delta attestation of ``commit``'s score on ``split`` and append it
    (after the head ``after``, when the caller knows it); return the new head."""
    info = s.repo.commit(commit)
    assert score.score is not None
    ch = s.pinned.challenge
    att = records.Attestation(
        commit=commit,
        tree=info.tree,
        challenge=s.pinned.digest,
        origin=s.head.origin,
        metric=ch.metric.name,
        direction=ch.metric.direction,
        split=split,
        score=score.score,
        parent=info.parents[0] if info.parents else None,
        parent_score=parent_score,
        delta=_improvement(score.score, parent_score, ch.maximize),
        environment=environment(),
        duration_ms=score.duration_ms,
        time=records.now(),
        signer=signer,
    )
    envelope = records.sign(att.statement(), constants.INTOTO_PAYLOAD_TYPE, key)
    _faults.hit("evaluate", "after-sign")  # a signature nobody has seen: lost, signed again
    return ledger.append(s.repo, "attestation", key.public_openssh, envelope, after=after)


def evaluate(
    s: Session,
    commits: Iterable[str],
    key: SigningKey,
    signer: records.Signer,
    *,
    jobs: int = 1,
    report: Report = lambda _: None,
    on_progress: OnProgress = lambda _done, _total, _commit: None,
) -> list[Outcome]:
    """Score and attest ``commits`` (parents first); commits this key already attested
    under the current challenge are reported and left alone. Never raises for a metric
    failure: the outcome carries the error. ``on_progress`` follows the metric runs, which
    include parents scored for a delta."""
    index = cache.load_index(s.repo, s.local)
    digest = s.pinned.digest
    ordered = list(dict.fromkeys(commits))
    todo = _parents_first(s, [c for c in ordered if not index.has(c, digest, key.keyid)])
    done = {c: Outcome(c, index.score(c, digest)) for c in ordered if c not in todo}
    scored: dict[str, Scored] = {}
    wanted = set(todo)
    last: ledger.Head | None = None
    for c, got in _score_stream(s, _needed(s, todo, index, s.baseline), jobs, report, on_progress):
        scored[c] = got
        if c not in wanted:
            continue
        if got.score is None:
            done[c] = Outcome(c, error=got.error)
            continue
        _faults.hit("evaluate", "after-metric")  # scored (and cached), nothing signed
        parents = s.repo.commit(c).parents
        pscore = _parent_score(s, index, parents[0] if parents else None, scored)
        last = attest(s, key, signer, c, got, pscore, last)
        # In the ledger; the attested index and the notes catch up with it later.
        _faults.hit("evaluate", "after-append")
        index.scores.setdefault(c, {}).setdefault(digest, decimal_text(got.score))
        delta = _improvement(got.score, pscore, s.pinned.challenge.maximize)
        done[c] = Outcome(c, got.score, delta, got.cached, attested=True)
    return [done[c] for c in ordered]


def first_error(outcomes: list[Outcome]) -> MetricError | None:
    """The first failure among outcomes as a MetricError naming the commit, or None."""
    for o in outcomes:
        if o.error:
            return MetricError(f"metric failed on {o.commit[:12]}: {o.error}")
    return None
