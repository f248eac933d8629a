"""Scale-out CI scoring: `ci plan` cuts the commits no evaluator scored into a matrix,
`ci score` measures a shard with no key at hand, and `ci sign`, the only step holding the
evaluator's key, checks each result against the repository and signs it without running
any contributor code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testing.world import Player, World, add_evaluator, run


@pytest.fixture
def ci(world: World, tmp_path: Path) -> tuple[Player, Player, str]:
    """The maintainer, a key-less CI checkout, and the evaluator's private key (a secret)
    whose public key the trust list names with the evaluator role."""
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    world.accept(ada)
    ada.commit_score("0.7")
    ada.commit_score("0.8")
    ada.git("push", "-q", "origin", "HEAD:main")
    secret = add_evaluator(m)
    runner = world.contributor("runner", "CI", "ci@example.org", join=False)
    return m, runner, secret


def _plan(runner: Player, tmp: Path, shards: str) -> tuple[dict, str]:
    output = tmp / "output.txt"
    output.write_text("")
    out = run(runner.repo, "git", "coop", "ci", "plan", "--shards", shards,
              env={**runner.env, "GITHUB_OUTPUT": str(output)})  # fmt: skip
    return json.loads(out.stdout), output.read_text()


def test_plan_score_sign_attests_every_commit_once(
    ci: tuple[Player, Player, str], tmp_path: Path
) -> None:
    m, runner, secret = ci
    matrix, output = _plan(runner, tmp_path, "2")
    shards = [entry["commits"].split() for entry in matrix["include"]]
    # Every commit from the baseline on (the one before `init` predates the challenge).
    branch = str(int(runner.git("rev-list", "--count", "HEAD").stdout) - 1)
    assert len(shards) == 2 and sum(map(len, shards)) == int(branch)
    assert output == f"matrix={json.dumps(matrix, separators=(',', ':'))}\ncount={branch}\n"

    files = []
    for i, commits in enumerate(shards):
        files.append(str(tmp_path / f"r{i}.json"))
        runner.coop("ci", "score", *commits, "--out", files[-1])
    assert not (runner.home / "keys").exists()  # scoring needed no key
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").write_text(f"#!/bin/sh\ntouch {tmp_path}/metric-ran\nexit 1\n")
    (fake / "python").chmod(0o755)
    env = {**runner.env, "GITCOOP_EVALUATOR_KEY": secret, "PATH": f"{fake}:{runner.env['PATH']}"}
    out = run(runner.repo, "git", "coop", "ci", "sign", *files, env=env)
    assert f"signed {branch}, already signed 0, failed 0 and published" in out.stdout
    assert not (tmp_path / "metric-ran").exists()  # signing ran no metric

    again = run(runner.repo, "git", "coop", "ci", "sign", *files, env=env)
    assert f"signed 0, already signed {branch}" in again.stdout
    assert _plan(runner, tmp_path, "2")[0] == {"include": []}
    m.coop("sync", "origin")
    report = json.loads(m.coop("credit", "--json").stdout)
    assert [c["email"] for c in report["contributors"]] == ["ada@example.org"]  # not the CI
    shown = json.loads(m.coop("show", "main", "--json").stdout)["attestations"]
    assert {a["signer"]["principal"] for a in shown} == {"maint@example.org", "ci@example.org"}


def test_sign_refuses_results_that_do_not_match_the_repository(
    ci: tuple[Player, Player, str], tmp_path: Path
) -> None:
    _, runner, secret = ci
    matrix, _ = _plan(runner, tmp_path, "1")
    results = tmp_path / "r.json"
    runner.coop("ci", "score", *matrix["include"][0]["commits"].split(), "--out", str(results))
    doc = json.loads(results.read_text())
    doc["results"][-1]["tree"] = doc["results"][0]["tree"]  # a result claimed for another tree
    results.write_text(json.dumps(doc))
    before = runner.ref("refs/coop/ledger")
    env = {**runner.env, "GITCOOP_EVALUATOR_KEY": secret}
    out = run(runner.repo, "git", "coop", "ci", "sign", str(results), env=env, check=False)
    assert out.returncode == 1 and "names another tree than the commit's" in out.stderr
    assert runner.ref("refs/coop/ledger") == before  # nothing signed

    doc["challenge"] = "sha256:" + "0" * 64
    results.write_text(json.dumps(doc))
    out = run(runner.repo, "git", "coop", "ci", "sign", str(results), env=env, check=False)
    assert out.returncode == 2 and "another challenge version" in out.stderr
    out = run(runner.repo, "git", "coop", "ci", "sign", str(results), env=runner.env, check=False)
    assert out.returncode == 2 and "GITCOOP_EVALUATOR_KEY is not set" in out.stderr
    bad_key = {**runner.env, "GITCOOP_EVALUATOR_KEY": "not a key"}
    out = run(runner.repo, "git", "coop", "ci", "sign", str(results), env=bad_key, check=False)
    assert out.returncode == 2 and "$GITCOOP_EVALUATOR_KEY is not" in out.stderr
    assert "not a key" not in out.stderr
