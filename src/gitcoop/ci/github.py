"""``git coop ci github``: gitcoop as a GitHub Actions step.

It reads the documented runner environment and the event payload. On a pull request it
scores the head against the merge base without signing anything (contributor code runs
here), writes the job summary and the step outputs ``score`` and ``delta``, and keeps one
sticky comment on the pull request up to date. A fork's pull request has a read-only token:
its report stays in the job summary.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from gitcoop import _gitcli
from gitcoop.ci.batch import append, object_id, plan, write_outputs
from gitcoop.commands.credit import CreditReport, credit
from gitcoop.commands.evaluate import Scorer
from gitcoop.commands.leaderboard import rounded
from gitcoop.decimals import decimal_text
from gitcoop.errors import ConfigError, MetricError
from gitcoop.render import inert_markdown
from gitcoop.session import Session, open_session

_REQUIRED = ("GITHUB_EVENT_NAME", "GITHUB_EVENT_PATH", "GITHUB_REPOSITORY")
_CHART_POINTS = 50  # the newest scores the chart shows


@dataclass(frozen=True)
class Runner:
    """The GitHub Actions runner environment gitcoop reads."""

    event_name: str
    event_path: Path
    repository: str
    sha: str
    summary: Path | None
    output: Path | None
    token: str | None
    api_url: str

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        return f"Runner({self.event_name!r}, {self.repository!r}, {self.sha[:12]!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Runner:
        """Read the variables; raises ConfigError naming the first one missing."""
        for name in _REQUIRED:
            if not env.get(name):
                raise ConfigError(
                    f"{name} is not set: git coop ci github runs inside a GitHub Actions job",
                    hint="run it as a workflow step, or set the runner variables it names",
                )
        return cls(
            env["GITHUB_EVENT_NAME"],
            Path(env["GITHUB_EVENT_PATH"]),
            env["GITHUB_REPOSITORY"],
            env.get("GITHUB_SHA", ""),
            Path(env["GITHUB_STEP_SUMMARY"]) if env.get("GITHUB_STEP_SUMMARY") else None,
            Path(env["GITHUB_OUTPUT"]) if env.get("GITHUB_OUTPUT") else None,
            env.get("GITHUB_TOKEN") or None,
            env.get("GITHUB_API_URL") or "https://api.github.com",
        )

    def event(self) -> dict[str, Any]:
        """The event payload; raises ConfigError when it is missing or not a JSON object."""
        try:
            obj = json.loads(self.event_path.read_bytes())
        except FileNotFoundError:
            raise ConfigError(f"GITHUB_EVENT_PATH names no file: {self.event_path}") from None
        except (OSError, ValueError):
            raise ConfigError(
                f"GITHUB_EVENT_PATH ({self.event_path}) is not a JSON event payload"
            ) from None
        if not isinstance(obj, dict):
            raise ConfigError(f"GITHUB_EVENT_PATH ({self.event_path}) is not a JSON object")
        return obj


@dataclass(frozen=True)
class PullRequest:
    """What the event says about the pull request."""

    number: int
    head: str
    base: str
    from_fork: bool

    @classmethod
    def from_event(cls, event: dict[str, Any], repository: str) -> PullRequest:
        """Raises ConfigError naming the field the payload lacks."""
        try:
            pr = event["pull_request"]
            head_repo = (pr["head"].get("repo") or {}).get("full_name")
            return cls(
                int(pr["number"]),
                object_id(pr["head"]["sha"]),
                object_id(pr["base"]["sha"]),
                head_repo != repository,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(
                f"the pull_request payload lacks a valid {exc.args[0] if exc.args else 'field'}",
                hint="run on pull_request events; the payload is GitHub's",
            ) from None


@dataclass(frozen=True)
class Report:
    """The pull request's scores and where they would place it."""

    number: int
    commit: str
    base: str
    metric: str
    score: Decimal
    base_score: Decimal
    delta: Decimal  # positive is better, whatever the direction
    place: int
    board: list[tuple[str, Decimal, str]]  # (who, best score, commit), best first
    history: list[Decimal]  # the challenge branch's counted scores, oldest first


def run(path: str | Path, env: Mapping[str, str], say: Callable[[str], None]) -> int:
    """Do what the event asks; return the exit code."""
    runner = Runner.from_env(env)
    event = runner.event()
    if runner.event_name == "pull_request_target":
        raise ConfigError(
            "pull_request_target runs with the base repository's secrets and a write token: "
            "scoring the pull request's code there would hand them to it",
            hint="run git coop ci github on pull_request events",
        )
    if runner.event_name == "pull_request":
        return pull_request(path, runner, PullRequest.from_event(event, runner.repository), say)
    if runner.event_name == "push":
        return push(path, runner, event, say)
    raise ConfigError(
        f"git coop ci github does not handle {runner.event_name!r} events",
        hint="run it on pull_request and push",
    )


def push(
    path: str | Path, runner: Runner, event: dict[str, Any], say: Callable[[str], None]
) -> int:
    """Plan the scoring of a push to the challenge branch: the outputs ``matrix`` and
    ``count`` feed a matrix of ``git coop ci score`` jobs (nothing runs or signs here)."""
    s = open_session(path)
    branch = f"refs/heads/{s.pinned.challenge.branch}"
    if not isinstance(event.get("ref"), str):
        raise ConfigError("the push payload lacks a valid ref", hint="run on push events")
    cut = plan(s, 4) if event["ref"] == branch else []
    count = sum(map(len, cut))
    write_outputs(runner.output, cut)
    say(
        f"gitcoop: {count} commits to score in {len(cut)} shards"
        if event["ref"] == branch
        else f"gitcoop: {event['ref']} is not the challenge branch {branch}; nothing to score"
    )
    return 0


def pull_request(
    path: str | Path, runner: Runner, pr: PullRequest, say: Callable[[str], None]
) -> int:
    """Score the pull request, report it, and keep its sticky comment up to date."""
    if runner.token is None:
        raise ConfigError(
            "GITHUB_TOKEN is not set: the report cannot be posted on the pull request",
            hint="add to the step: env: GITHUB_TOKEN: ${{ github.token }}",
        )
    s = open_session(path)
    report = _score(s, pr)
    text = markdown(report)
    append(runner.summary, text + "\n")
    append(
        runner.output,
        f"score={decimal_text(report.score)}\ndelta={decimal_text(report.delta)}\n",
    )
    from gitcoop.ci import rest

    api = rest.Api(runner.api_url, runner.token, runner.repository)
    try:
        how, cid = api.sticky_comment(pr.number, text)
        say(f"gitcoop: {how} the report comment ({cid}) on pull request #{pr.number}")
    except rest.ReadOnly as exc:
        say(f"gitcoop: warning: {exc.message}: the report is in the job summary only")
    say(
        f"gitcoop: {report.commit[:12]} scores {decimal_text(report.score)} "
        f"({_signed(report.delta)} over the merge base), place {report.place}"
    )
    return 0


def _score(s: Session, pr: PullRequest) -> Report:
    base = _gitcli.git(s.repo.common_dir, "merge-base", pr.base, pr.head)
    done = credit(s.repo.common_dir)
    with contextlib.closing(Scorer(s.repo, s.local, s.pinned)) as scorer:
        head = _measure(scorer, pr.head)
        known = done.scores.get(base)
        base_score = known.score if known is not None else _measure(scorer, base)
    history = [done.scores[c].score for c in done.mainline if c in done.scores]
    ch = s.pinned.challenge
    board = _board(done)
    return public(
        Report(pr.number, pr.head, base, ch.metric.name, head, base_score, head, 0, board, history),
        ch.min_delta,
        ch.maximize,
    )


def public(r: Report, step: Decimal, maximize: bool) -> Report:
    """The report as a pull request may see it: every score rounded to ``step`` (the
    challenge's min_delta), so a stream of pull requests cannot probe the test set finer
    than credit counts, and the place among equal scores after those who got there
    first."""

    def q(value: Decimal) -> Decimal:
        return rounded(value, step)

    head, base = q(r.score), q(r.base_score)
    board = [(who, q(best), commit) for who, best, commit in r.board]
    sign = 1 if maximize else -1
    place = 1 + sum((best - head) * sign >= 0 for _, best, _ in board)
    delta = head - base if maximize else base - head
    history = [q(v) for v in r.history]
    return Report(r.number, r.commit, r.base, r.metric, head, base, delta, place, board, history)


def _measure(scorer: Scorer, commit: str) -> Decimal:
    got = scorer.score(commit)
    if got.score is None:
        raise MetricError(f"metric failed on {commit[:12]}: {got.error}")
    return got.score


def _board(done: CreditReport) -> list[tuple[str, Decimal, str]]:
    """Each contributor's best counted score on the challenge branch, best first."""
    maximize = done.direction == "maximize"
    best: dict[str, tuple[Decimal, str]] = {}
    for commit in done.mainline:
        got = done.scores.get(commit)
        if got is None:
            continue
        who = got.contributor.email
        old = best.get(who)
        if old is None or (got.score > old[0] if maximize else got.score < old[0]):
            best[who] = (got.score, commit)
    rows = [(who, score, commit) for who, (score, commit) in best.items()]
    rows.sort(key=lambda r: r[1], reverse=maximize)
    return rows


def _signed(value: Decimal) -> str:
    text = decimal_text(value)
    return text if text.startswith("-") else f"+{text}"


def markdown(r: Report) -> str:
    """The report as GitHub-flavoured Markdown: scores, the leaderboard with the pull
    request's projected place, and the score along the branch as a Mermaid chart."""
    lines = [
        f"### gitcoop: pull request #{r.number}",
        "",
        f"| | commit | {inert_markdown(r.metric)} |",
        "|---|---|---|",
        f"| this pull request | `{r.commit[:12]}` | **{decimal_text(r.score)}** |",
        f"| merge base | `{r.base[:12]}` | {decimal_text(r.base_score)} |",
        f"| change (positive is better) | | {_signed(r.delta)} |",
        "",
        f"Projected place: **{r.place}** of {len(r.board) + 1}. Scored on this runner, "
        "not signed: the challenge's evaluator signs once the pull request is merged.",
        "",
        "| place | contributor | best | commit |",
        "|---|---|---|---|",
    ]
    rows = [(inert_markdown(who), score, f"`{commit[:12]}`") for who, score, commit in r.board]
    rows.insert(r.place - 1, ("**this pull request**", r.score, f"`{r.commit[:12]}`"))
    for i, (who, score, commit) in enumerate(rows, 1):
        lines.append(f"| {i} | {who} | {decimal_text(score)} | {commit} |")
    points = [*r.history[-(_CHART_POINTS - 1) :], r.score]
    lines += [
        "",
        "```mermaid",
        "xychart-beta",
        f'    title "{_label(r.metric)} along the challenge branch, then this pull request"',
        f"    x-axis [{', '.join(str(i) for i in range(1, len(points) + 1))}]",
        f'    y-axis "{_label(r.metric)}"',
        f"    line [{', '.join(decimal_text(p) for p in points)}]",
        "```",
    ]
    return "\n".join(lines)


def _label(text: str) -> str:
    return "".join(c for c in text if c.isalnum() or c in " ._-")[:40] or "score"
