"""`git coop ci github` on pull_request events, run as a workflow step would run it: the
documented runner variables, real event payloads (same-repository and fork), and GitHub's
REST API played by a local server that records each call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testing.fakegithub import FakeGitHub, serving
from testing.world import Player, World, run

from gitcoop.ci.rest import MARKER

FIXTURES = Path(__file__).parent / "fixtures" / "github"


@pytest.fixture
def pr(world: World) -> tuple[Player, str, str]:
    """The maintainer's clone as the CI checkout of Ada's pull request: (clone, head, base)."""
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    world.accept(ada)
    base = ada.head()
    ada.git("checkout", "-q", "-b", "ada")
    ada.commit_score("0.4", "a worse idea")
    head = ada.commit_score("0.8", "a better model")
    ada.git("push", "-q", "origin", "ada")
    m.git("fetch", "-q", "origin", "ada")
    return m, head, base


def _step(
    m: Player, tmp: Path, fake: FakeGitHub, payload: str, head: str, base: str, **env: str
) -> tuple[object, str, str]:
    """Run the step; return (process, job summary, outputs)."""
    event = json.loads((FIXTURES / payload).read_text())
    event["pull_request"]["head"]["sha"], event["pull_request"]["base"]["sha"] = head, base
    (tmp / "event.json").write_text(json.dumps(event))
    summary, output = tmp / "summary.md", tmp / "output.txt"
    for f in (summary, output):
        f.write_text("")
    variables = {
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(tmp / "event.json"),
        "GITHUB_REPOSITORY": "octo/toy",
        "GITHUB_SHA": head,
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_TOKEN": "ghs_secret_token_value",
        "GITHUB_API_URL": fake.url,
        **env,
    }
    proc = run(m.repo, "git", "coop", "ci", "github", env={**m.env, **variables}, check=False)
    assert "ghs_secret_token_value" not in proc.stdout + proc.stderr
    return proc, summary.read_text(), output.read_text()


def _calls(fake: FakeGitHub) -> list[tuple[str, str]]:
    return [(c.method, c.path) for c in fake.calls]


COMMENTS = "/repos/octo/toy/issues/5/comments"


def test_a_pull_request_gets_a_summary_outputs_and_one_sticky_comment(
    pr: tuple[Player, str, str], tmp_path: Path
) -> None:
    m, head, base = pr
    with serving(FakeGitHub()) as fake:
        proc, summary, output = _step(m, tmp_path, fake, "pull_request.json", head, base)
        assert proc.returncode == 0, proc.stderr
        assert _calls(fake) == [("GET", f"{COMMENTS}?per_page=100"), ("POST", COMMENTS)]
        assert all(c.auth == "Bearer ghs_secret_token_value" for c in fake.calls)
        assert output == "score=0.8\ndelta=0.3\n"
        assert "| this pull request | `" + head[:12] + "` | **0.8** |" in summary
        assert "| merge base | `" + base[:12] + "` | 0.5 |" in summary
        assert "Projected place: **1** of 3." in summary
        assert "| 1 | **this pull request** | 0.8 |" in summary
        assert "| 2 | maint@example.org | 0.5 |" in summary  # the baseline
        assert "| 3 | ada@example.org | 0.5 |" in summary  # her join, scored the same
        assert "```mermaid\nxychart-beta" in summary and "line [0.5, 0.5, 0.8]" in summary
        posted = fake.calls[1].body["body"]
        assert posted.startswith(MARKER) and summary.strip() in posted

        fake.calls.clear()  # the next run of the job updates the same comment
        proc, _, _ = _step(m, tmp_path, fake, "pull_request.json", head, base)
        assert proc.returncode == 0, proc.stderr
        assert _calls(fake) == [
            ("GET", f"{COMMENTS}?per_page=100"),
            ("PATCH", "/repos/octo/toy/issues/comments/100"),
        ]
        assert len(fake.comments) == 1 and "updated the report comment (100)" in proc.stderr


def test_the_comment_is_found_on_a_later_page_and_transient_failures_are_retried(
    pr: tuple[Player, str, str], tmp_path: Path
) -> None:
    m, head, base = pr
    others = [{"id": i, "body": f"comment {i}"} for i in range(1, 101)]
    fake = FakeGitHub(comments=[*others, {"id": 500, "body": f"{MARKER}\nold report"}])
    fake.fail = {"GET": [(502, {})], "PATCH": [(429, {"Retry-After": "0"})]}
    with serving(fake):
        proc, _, _ = _step(m, tmp_path, fake, "pull_request.json", head, base)
    assert proc.returncode == 0, proc.stderr
    assert _calls(fake) == [
        ("GET", f"{COMMENTS}?per_page=100"),  # 502: retried
        ("GET", f"{COMMENTS}?per_page=100"),
        ("GET", f"{COMMENTS}?per_page=100&page=2"),
        ("PATCH", "/repos/octo/toy/issues/comments/500"),  # 429: retried
        ("PATCH", "/repos/octo/toy/issues/comments/500"),
    ]
    assert "0.8" in fake.comments[-1]["body"] and len(fake.comments) == 101


def test_a_fork_with_a_read_only_token_gets_the_summary_only(
    pr: tuple[Player, str, str], tmp_path: Path
) -> None:
    m, head, base = pr
    fake = FakeGitHub(fail={"POST": [(403, {})]})
    with serving(fake):
        proc, summary, output = _step(m, tmp_path, fake, "pull_request_fork.json", head, base)
    assert proc.returncode == 0, proc.stderr
    assert "token is read-only" in proc.stderr and "job summary only" in proc.stderr
    assert "**0.8**" in summary and output == "score=0.8\ndelta=0.3\n"
    assert json.loads(m.coop("show", head, "--json").stdout)["attestations"] == []  # unsigned


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"GITHUB_TOKEN": ""}, "GITHUB_TOKEN is not set"),
        ({"GITHUB_EVENT_NAME": ""}, "GITHUB_EVENT_NAME is not set"),
        ({"GITHUB_EVENT_PATH": "/nonexistent/event.json"}, "GITHUB_EVENT_PATH names no file"),
        ({"GITHUB_EVENT_NAME": "schedule"}, "does not handle 'schedule' events"),
    ],
)
def test_bad_runner_input_is_one_clear_line(
    pr: tuple[Player, str, str], tmp_path: Path, env: dict[str, str], says: str
) -> None:
    m, head, base = pr
    with serving(FakeGitHub()) as fake:
        proc, _, _ = _step(m, tmp_path, fake, "pull_request.json", head, base, **env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and says in lines[0], proc.stderr
    assert fake.calls == []


def test_a_malformed_payload_is_named(pr: tuple[Player, str, str], tmp_path: Path) -> None:
    m, head, base = pr
    with serving(FakeGitHub()) as fake:
        (tmp_path / "bad.json").write_text('{"pull_request": {"number": 5}}')
        proc, _, _ = _step(
            m, tmp_path, fake, "pull_request.json", head, base,
            GITHUB_EVENT_PATH=str(tmp_path / "bad.json"),
        )  # fmt: skip
    assert proc.returncode == 2 and "payload lacks a valid head" in proc.stderr, proc.stderr


@pytest.mark.parametrize("ref", ["refs/heads/main", "refs/heads/ada"])
def test_a_push_is_planned_for_the_scoring_matrix(
    pr: tuple[Player, str, str], tmp_path: Path, ref: str
) -> None:
    m, _, _ = pr
    event = json.loads((FIXTURES / "push.json").read_text())
    event["ref"], event["after"] = ref, m.head()
    (tmp_path / "push.json").write_text(json.dumps(event))
    output = tmp_path / "output.txt"
    output.write_text("")
    variables = {
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_EVENT_PATH": str(tmp_path / "push.json"),
        "GITHUB_REPOSITORY": "octo/toy",
        "GITHUB_OUTPUT": str(output),
    }
    proc = run(m.repo, "git", "coop", "ci", "github", env={**m.env, **variables}, check=False)
    assert proc.returncode == 0, proc.stderr
    matrix, count = output.read_text().splitlines()
    plan = json.loads(matrix.removeprefix("matrix="))
    commits = [c for shard in plan["include"] for c in shard["commits"].split()]
    if ref == "refs/heads/main":  # nobody with the evaluator role scored anything yet
        assert count == f"count={len(commits)}" and m.head() in commits and len(commits) == 2
    else:
        assert (plan, count) == ({"include": []}, "count=0")
        assert "not the challenge branch" in proc.stderr


def test_a_name_cannot_inject_markup_into_the_pull_request_comment() -> None:
    from decimal import Decimal

    from gitcoop.ci.github import Report, markdown

    hostile = "x](https://evil.example) ![img](https://evil.example/i.png) | <b>|"
    report = Report(
        7,
        "a" * 40,
        "b" * 40,
        "accuracy",
        Decimal("0.9"),
        Decimal("0.8"),
        Decimal("0.1"),
        2,
        [(hostile, Decimal("0.95"), "c" * 40)],
        [Decimal("0.8")],
    )
    text = markdown(report)
    (row,) = [ln for ln in text.splitlines() if ln.startswith("| 1 |")]
    assert row.replace("\\|", "").count("|") == 5  # the name did not add a column
    assert "](" not in row.replace("\\](", "")  # every link bracket is escaped
    assert "<b>" not in row and "https://" not in row
    assert "| 2 | **this pull request** |" in text


def test_a_pull_request_sees_scores_rounded_to_min_delta() -> None:
    from decimal import Decimal

    from gitcoop.ci.github import Report, public

    raw = Report(
        3,
        "a" * 40,
        "b" * 40,
        "accuracy",
        Decimal("0.81234"),
        Decimal("0.80111"),
        Decimal("0"),
        0,
        [("ada@example.org", Decimal("0.8149"), "c" * 40)],
        [Decimal("0.8011"), Decimal("0.8149")],
    )
    seen = public(raw, Decimal("0.01"), maximize=True)
    assert (seen.score, seen.base_score, seen.delta) == (
        Decimal("0.81"),
        Decimal("0.80"),
        Decimal("0.01"),
    )
    assert seen.board[0][1] == Decimal("0.81") and seen.history == [
        Decimal("0.80"),
        Decimal("0.81"),
    ]
    assert seen.place == 2  # equal after rounding: who got there first keeps the place
    exact = public(raw, Decimal("0"), maximize=True)
    assert exact.score == Decimal("0.81234") and exact.place == 2
    assert public(raw, Decimal("0"), maximize=False).place == 1


def test_pull_request_target_is_refused(pr: tuple[Player, str, str], tmp_path: Path) -> None:
    m, _, _ = pr
    event = tmp_path / "event.json"
    event.write_text("{}")
    out = run(
        m.repo,
        "git",
        "coop",
        "ci",
        "github",
        env={
            **m.env,
            "GITHUB_EVENT_NAME": "pull_request_target",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_REPOSITORY": "o/r",
        },
        check=False,
    )
    assert out.returncode == 2 and "secrets and a write token" in out.stderr
