"""The workflow that releases gitcoop itself: on a v* tag it builds, tests, checks the tag
against the version built and publishes by trusted publishing; it passes actionlint."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from testing.actionlint import findings

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / ".github" / "workflows" / "release.yml"


def _workflow() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(RELEASE.read_text())
    return doc


def test_the_release_workflow_passes_actionlint() -> None:
    assert findings(RELEASE) == []


def test_it_runs_on_version_tags_only() -> None:
    assert _workflow()[True] == {"push": {"tags": ["v*"]}}  # YAML reads the key `on` as True


def test_only_the_publish_job_may_mint_an_oidc_token() -> None:
    doc = _workflow()
    assert doc["permissions"] == {"contents": "read"}
    jobs = doc["jobs"]
    for name, job in jobs.items():
        if name != "publish":
            assert "id-token" not in str(job.get("permissions", {})), name
    publish = jobs["publish"]
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi"
    assert set(publish["needs"]) == {"build", "test"}
    assert any("pypa/gh-action-pypi-publish@" in s.get("uses", "") for s in publish["steps"])
    assert "password" not in RELEASE.read_text()  # trusted publishing: no API token


def test_it_builds_tests_and_checks_the_tag() -> None:
    jobs = _workflow()["jobs"]
    build = "\n".join(s.get("run", "") for s in jobs["build"]["steps"])
    assert "python -m build" in build and "twine check --strict" in build
    assert "${TAG#v}" in build and "dist/gitcoop-$version-py3-none-any.whl" in build
    assert any(s.get("run") == "make test" for s in jobs["test"]["steps"])


def test_actions_are_pinned_and_scripts_take_expressions_through_env() -> None:
    steps = [s for job in _workflow()["jobs"].values() for s in job["steps"]]
    uses = [s["uses"] for s in steps if "uses" in s]
    assert all(re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", u) for u in uses), uses
    for step in steps:
        assert "${{" not in step.get("run", ""), step
