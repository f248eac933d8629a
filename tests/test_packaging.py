"""The package as users get it: the sdist and the wheel built from a copy of the source,
checked by twine, then installed into a fresh virtual environment and with pipx, and used
from there alone: `git coop --version`, the man page through man and `git help`, and a
scored push to a bare remote through the installed hook."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from testing.world import World, make_world

import gitcoop

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
VERSION = gitcoop.__version__
# Read before the hermetic seal moves HOME: downloads go through the user's pip cache.
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")
DEV_BIN = str(Path(sys.executable).parent)


def _copy_source(to: Path) -> Path:
    """The files the sdist takes, and nothing built or cached."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = pyproject["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "*.egg-info")
    to.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", to)
    for name in wanted:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, to / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, to / name)
    return to


def _run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    out = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, env=env, cwd=cwd
    )
    assert out.returncode == 0, f"{args}: {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("build")
    source = _copy_source(work / "gitcoop")
    env = {**os.environ, "PIP_CACHE_DIR": PIP_CACHE}
    # without flags: the sdist first, then the wheel built from the sdist, so a file the
    # sdist forgets breaks the wheel
    _run(sys.executable, "-m", "build", "--outdir", work / "dist", source, env=env, cwd=work)
    built = {p.suffix: p for p in (work / "dist").iterdir()}
    assert sorted(p.name for p in built.values()) == [
        f"gitcoop-{VERSION}-py3-none-any.whl",
        f"gitcoop-{VERSION}.tar.gz",
    ]
    _run(sys.executable, "-m", "twine", "check", "--strict", *built.values(), env=env)
    return {"wheel": built[".whl"], "sdist": built[".gz"]}


def test_the_wheel_holds_the_data_and_complete_metadata(dists: dict[str, Path]) -> None:
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        names = set(wheel.namelist())
        info = f"gitcoop-{VERSION}.dist-info"
        metadata = Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    data = f"gitcoop-{VERSION}.data/data/share"
    pages = {f"{data}/man/man1/{p.name}" for p in (ROOT / "man" / "man1").glob("*.1")}
    assert f"{data}/man/man1/git-coop.1" in pages and pages <= names
    assert {
        "gitcoop/_data/hooks/pre-push",
        "gitcoop/_data/hooks/pre-receive",
        "gitcoop/_data/templates/challenge.yaml",
        "gitcoop/_data/templates/github/coop.yml",
        "gitcoop/_data/templates/completion/git-coop.bash",
        "gitcoop/_data/examples/digits/evaluate.py",
        "gitcoop/py.typed",
        f"{data}/bash-completion/completions/git-coop",
        f"{data}/zsh/site-functions/_git-coop",
        f"{data}/fish/vendor_completions.d/git-coop.fish",
        f"{info}/licenses/LICENSE",
    } <= names
    assert "git-coop = gitcoop.__main__:main" in entry_points
    assert "gitcoop = gitcoop.__main__:main" in entry_points
    urls = {u.split(",")[0] for u in metadata.get_all("Project-URL") or []}
    assert urls == {"Homepage", "Documentation", "Changelog", "Issues"}
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Requires-Python"] == ">=3.11"
    classifiers = set(metadata.get_all("Classifier") or [])
    assert {
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Operating System :: POSIX :: Linux",
        "Environment :: Console",
        "Intended Audience :: Science/Research",
    } <= classifiers
    import tarfile

    with tarfile.open(dists["sdist"]) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {"LICENSE", "CHANGELOG.md", "man/man1/git-coop.1", "pyproject.toml"} <= members


def _installed_env(bin_dir: Path, **extra: str) -> dict[str, str]:
    """The test's hermetic environment, with the installed programs on PATH instead of the
    checkout's virtual environment, and nothing that would find the source tree."""
    path = [p for p in os.environ["PATH"].split(os.pathsep) if p != DEV_BIN]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MANPATH")}
    env.update(PATH=os.pathsep.join([str(bin_dir), *path]), PIP_CACHE_DIR=PIP_CACHE, **extra)
    return env


def _scored_push(
    root: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], python: Path
) -> None:
    """`git coop init`, a commit and a push through the installed hook (which runs
    ``python``), then verify and log, all with the installed programs."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    root.mkdir()
    world: World = make_world(root)
    m = world.maintainer()  # init, then the first push publishes the ledger
    hook = (m.repo / ".git" / "hooks" / "pre-push").read_text()
    assert str(python) in hook
    commit = m.commit_score("0.75", "better")
    push = m.git("push", "-q", "origin", "main")
    assert "published the ledger" in push.stderr
    assert m.coop("verify").returncode == 0
    log = m.coop("log").stdout
    assert f"{commit[:12]} accuracy=0.75" in log and "attestation" in log


def test_a_wheel_in_a_fresh_virtual_environment_works_on_its_own(
    dists: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    elsewhere = tmp_path / "elsewhere"  # no source tree in sight
    elsewhere.mkdir()
    env = _installed_env(venv / "bin")
    _run(venv / "bin" / "python", "-m", "pip", "install", "-q", dists["wheel"], env=env)
    where = _run(
        venv / "bin" / "python",
        "-c",
        "import gitcoop; print(gitcoop.__file__)",
        env=env,
        cwd=elsewhere,
    )
    assert Path(where.strip()).is_relative_to(venv), where

    assert _run("git", "coop", "--version", env=env, cwd=elsewhere) == f"gitcoop {VERSION}\n"
    assert _run("gitcoop", "--version", env=env, cwd=elsewhere) == f"gitcoop {VERSION}\n"
    # man-db derives <prefix>/share/man from <prefix>/bin on PATH: no MANPATH needed
    page = _run("man", "-w", "git-coop", env=env, cwd=elsewhere).strip()
    assert page == str(venv / "share" / "man" / "man1" / "git-coop.1")
    shown = _run(
        "git", "help", "coop", env={**env, "MANPAGER": "cat", "PAGER": "cat"}, cwd=elsewhere
    )
    assert "GIT-COOP(1)" in shown and "No manual entry" not in shown
    bash = venv / "share" / "bash-completion" / "completions" / "git-coop"
    assert bash.read_text() == _run("git", "coop", "completion", "bash", env=env)

    _scored_push(tmp_path / "world", monkeypatch, env, venv / "bin" / "python")


def test_pipx_installs_a_working_git_coop(
    dists: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "local"  # as ~/.local: bin/ on PATH, share/man beside it
    env = _installed_env(
        local / "bin",
        PIPX_HOME=str(tmp_path / "pipx"),
        PIPX_BIN_DIR=str(local / "bin"),
        PIPX_MAN_DIR=str(local / "share" / "man"),
    )
    _run(sys.executable, "-m", "pipx", "install", dists["wheel"], env=env)
    assert _run("git", "coop", "--version", env=env, cwd=tmp_path) == f"gitcoop {VERSION}\n"
    # pipx links the pages into PIPX_MAN_DIR, which man finds from PIPX_BIN_DIR on PATH
    linked = local / "share" / "man" / "man1" / "git-coop.1"
    assert linked.is_file()
    page = _run("man", "-w", "git-coop", env=env, cwd=tmp_path).strip()
    assert Path(page).resolve() == linked.resolve()
    python = tmp_path / "pipx" / "venvs" / "gitcoop" / "bin" / "python"
    _scored_push(tmp_path / "world", monkeypatch, env, python)
