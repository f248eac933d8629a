"""`git coop sync` starts its fetch before the CLI framework loads, uses that fetch and no
other, and starts none for arguments the CLI will refuse."""

from __future__ import annotations

import subprocess
import sys

import pytest
from testing.world import Player

# Runs gitcoop's entry point with a spy on the fetch: how many, and whether typer was
# already loaded when each one started.
PROBE = (
    "import runpy, sys\n"
    "from gitcoop import _gitcli\n"
    "calls = []\n"
    "real = _gitcli.fetch_refs\n"
    "def spy(*args, **kwargs):\n"
    "    calls.append('typer' in sys.modules)\n"
    "    return real(*args, **kwargs)\n"
    "_gitcli.fetch_refs = spy\n"
    "sys.argv = ['git-coop'] + sys.argv[1:]\n"
    "code = 0\n"
    "try:\n    runpy.run_module('gitcoop', run_name='__main__')\n"
    "except SystemExit as exc:\n    code = exc.code\n"
    "print('FETCHES', ' '.join(map(str, calls)) or '-', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _sync(p: Player, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "sync", *args],
        cwd=p.repo,
        env=p.env,
        capture_output=True,
        text=True,
        check=False,
    )
    line = next(ln for ln in out.stderr.splitlines() if ln.startswith("FETCHES"))
    return out, [w for w in line.split()[1:] if w != "-"]


@pytest.mark.parametrize("args", [(), ("origin",), ("origin", "--retrust"), ("--retrust",)])
def test_the_early_fetch_is_the_only_one(behind: tuple[Player, Player], args: tuple[str]) -> None:
    m, ada = behind
    out, fetches = _sync(ada, *args)
    assert out.returncode == 0, out.stderr
    assert fetches == ["False"]  # one fetch, started before typer was imported
    assert "fetched 1, re-linked 1, pushed" in out.stdout
    assert m.git("ls-remote", "origin", "refs/coop/ledger").stdout.split()[0] == ada.ref(
        "refs/coop/ledger"
    )


@pytest.mark.parametrize("args", [("origin", "extra"), ("--bogus",), ("--help",)])
def test_arguments_the_cli_refuses_start_no_fetch(
    behind: tuple[Player, Player], args: tuple[str]
) -> None:
    _m, ada = behind
    before = ada.ref("refs/coop/ledger")
    out, fetches = _sync(ada, *args)
    assert fetches == []
    assert (out.returncode == 0) == (args == ("--help",))
    assert ada.ref("refs/coop/ledger") == before
    assert ada.git("for-each-ref", "refs/coop-incoming/").stdout == ""


def test_an_unknown_remote_is_one_clear_line(behind: tuple[Player, Player]) -> None:
    _m, ada = behind
    out, fetches = _sync(ada, "nowhere")
    assert fetches == ["False"] and out.returncode != 0
    (line,) = [ln for ln in out.stderr.splitlines() if not ln.startswith("FETCHES")]
    assert "git fetch failed" in line and "nowhere" in line
