"""Hermetic git for every test (isolated HOME and config, fixed identity and dates), and
the one local Ethereum node the anchoring tests share."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from testing.anvil import Node, running
from testing.world import Player, World, make_world


@pytest.fixture(autouse=True)
def hermetic_seal(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path_factory.mktemp("home")
    templates = tmp_path_factory.mktemp("git-template")
    for name in [k for k in os.environ if k.startswith(("GIT_", "GITCOOP_"))]:
        monkeypatch.delenv(name)
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GITCOOP_HOME": str(home / "gitcoop"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TEMPLATE_DIR": str(templates),
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.org",
        "GIT_COMMITTER_NAME": "Test Author",
        "GIT_COMMITTER_EMAIL": "author@example.org",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
        "GIT_EDITOR": "false",
        "GIT_ALLOW_PROTOCOL": "file",
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)


_RECURSION_LIMIT = sys.getrecursionlimit()


@pytest.fixture(autouse=True)
def recursion_limit() -> Iterator[None]:
    """Each test starts with the interpreter's own recursion limit: eth-account (py_ecc)
    raises it to 100,000 when a test imports it, and the next test's deeply nested input
    would then crash the worker in C instead of raising RecursionError."""
    yield
    sys.setrecursionlimit(_RECURSION_LIMIT)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


@pytest.fixture
def behind(world: World) -> tuple[Player, Player]:
    """Ada's clone is one entry behind the remote and has one entry of her own."""
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    m.commit_score("0.61")
    m.coop("evaluate")
    m.coop("sync", "origin")
    ada.git("checkout", "-q", "-b", "ada")
    ada.coop("evaluate", ada.commit_score("0.62"))
    return m, ada


@pytest.fixture(scope="session")
def node() -> Iterator[Node]:
    """One real local Ethereum node (anvil) for the whole run."""
    with running() as started:
        yield started


@pytest.fixture
def anvil(node: Node) -> Iterator[Node]:
    """The node, with the chain put back as it was after the test (evm_snapshot/revert)."""
    snapshot = node.call("evm_snapshot")
    yield node
    node.call("evm_revert", snapshot)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many kills the crash tests survived (tests/test_crash.py), for the record."""
    from testing import crash

    if crash.kills:
        terminalreporter.write_line(crash.summary())


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist, a worker hands its crash tally to the controller."""
    from testing import crash

    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["crash"] = {"kills": dict(crash.kills), "locks": dict(crash.locks)}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """The controller adds up the tallies of the workers (pytest-xdist)."""
    from testing import crash

    got = getattr(node, "workeroutput", {}).get("crash", {})
    crash.kills.update(got.get("kills", {}))
    crash.locks.update(got.get("locks", {}))
