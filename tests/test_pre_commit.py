"""Users of the pre-commit framework get gitcoop's pre-push stage from the hook manifest
`.pre-commit-hooks.yaml`: the real framework runs it on `git push` and the new commit is
scored, signed and published."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from testing.world import World, run

ROOT = Path(__file__).resolve().parents[1]


def test_the_pre_commit_framework_runs_the_pre_push_stage(world: World) -> None:
    m = world.maintainer(init_args=None)
    m.coop("init", "--metric", "python evaluate.py", "--direction", "maximize", "--no-hooks")
    (manifest,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = {k: manifest[k] for k in ("id", "entry", "stages", "pass_filenames", "always_run")}
    # The manifest's hook, as a local one: the same command, without installing gitcoop
    # into an environment of pre-commit's own.
    config = {"repos": [{"repo": "local", "hooks": [{**hook, "name": "gitcoop",
                                                      "language": "system"}]}]}  # fmt: skip
    (m.repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    m.git("add", ".pre-commit-config.yaml")
    m.git("commit", "-qm", "use pre-commit")
    env = {**m.env, "PRE_COMMIT_HOME": str(world.root / "pre-commit-home")}
    run(m.repo, "pre-commit", "install", "--hook-type", "pre-push", env=env)
    m.git("push", "-q", "-u", "origin", "main")
    better = m.commit_score("0.7")
    pushed = run(m.repo, "git", "push", "origin", "main", env=env)
    assert "gitcoop" in pushed.stdout + pushed.stderr  # pre-commit names the hook it ran
    m.git("fetch", "-q", "origin", "+refs/coop/ledger:refs/coop/ledger")
    shown = json.loads(m.coop("show", better, "--json").stdout)["attestations"]
    assert [a["score"] for a in shown] == ["0.7"]
    remote = run(world.root, "git", "--git-dir", str(world.remote), "rev-parse", "refs/coop/ledger")
    assert remote.stdout.strip() == m.ref("refs/coop/ledger")  # published


def test_the_framework_stage_without_its_variables_is_a_usage_error(world: World) -> None:
    m = world.maintainer()
    out = run(m.repo, "git-coop", "hook-impl", "pre-commit", env=m.env, check=False)
    assert out.returncode == 2 and "PRE_COMMIT_* variables are missing" in out.stderr
