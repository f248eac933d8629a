"""The man pages: rendered from the command tree, committed under man/man1 and never stale,
escaped for roff, free of groff warnings; and --help shows no type after a flag."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gitcoop import manpage
from gitcoop.cli import app, command_tree

ROOT = Path(__file__).resolve().parents[1]
MAN1 = ROOT / "man" / "man1"
PAGES = manpage.pages(command_tree())


def test_the_committed_pages_are_what_the_generator_renders_now() -> None:
    committed = {p.name: p.read_text(encoding="utf-8") for p in MAN1.glob("*.1")}
    stale = sorted(n for n in PAGES.keys() | committed.keys() if PAGES.get(n) != committed.get(n))
    assert not stale, f"man pages out of date: {stale}; run make man and commit man/"


def test_every_command_has_a_page_that_names_its_options() -> None:
    for path, cmd in manpage.walk(command_tree()):
        text = PAGES[f"{manpage.page_name(path)}.1"]
        for param in cmd.params:
            for opt in (*param.opts, *param.secondary_opts):
                if opt.startswith("-"):
                    assert manpage.escape(opt) in text, (path, opt)
        if not hasattr(cmd, "commands"):
            assert (
                f"(see \\fB{manpage.escape(manpage.page_name(path))}\\fR(1))" in PAGES["git-coop.1"]
            )
    main = PAGES["git-coop.1"]
    for section in ("SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "ENVIRONMENT"):
        assert f".SH {section}" in main
    assert "GITCOOP_HOME" in main and "\\fB3\\fR" in main


def test_hidden_commands_get_no_page() -> None:
    demo = typer.Typer()

    @demo.command()
    def shown() -> None:
        """Shown."""

    @demo.command("secret", hidden=True)
    def secret() -> None:
        """Hidden."""

    names = manpage.pages(typer.main.get_command(demo))
    assert "git-coop-shown.1" in names and "git-coop-secret.1" not in names
    assert "secret" not in names["git-coop.1"]


def test_roff_escaping() -> None:
    assert manpage.escape("a-b \\ c") == "a\\-b \\e c"
    assert manpage.escape("score ≤ 1 — λ") == "score \\[u2264] 1 \\[u2014] \\[u03BB]"
    assert manpage.line(".hidden request") == "\\&.hidden request"
    assert manpage.line("'quoted request") == "\\&'quoted request"
    assert manpage.line("plain") == "plain"
    demo = typer.Typer()

    @demo.command()
    def other() -> None:
        """A second command, so that the app is a group."""

    @demo.command()
    def tricky(
        flag: bool = typer.Option(False, "--dry-run", help=".starts with a dot \\ and - dash"),
    ) -> None:
        """'Quoted first line.

        .second paragraph"""

    page = manpage.pages(typer.main.get_command(demo))["git-coop-tricky.1"]
    assert "\\&.starts with a dot \\e and \\- dash" in page
    assert "\\&.second paragraph" in page
    assert not [ln for ln in page.splitlines() if ln.startswith(("'", ". ", ".s"))]


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff (from man-db) is not here")
def test_pages_render_without_groff_warnings(tmp_path: Path) -> None:
    for name, text in PAGES.items():
        page = tmp_path / name
        page.write_text(text, encoding="utf-8")
        out = subprocess.run(
            ["groff", "-man", "-ww", "-z", str(page)], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0 and out.stderr == "", (name, out.stderr)


def test_help_shows_no_type_after_a_flag() -> None:
    runner = CliRunner()
    for path, _ in [((), None), *manpage.walk(command_tree())]:
        out = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"}, prog_name="git coop")
        assert out.exit_code == 0, out.output
        assert "<bool>" not in out.output, (path, out.output)
    credit = runner.invoke(app, ["credit", "--help"], env={"COLUMNS": "200"}).output
    assert "--json  " in credit
    assert "table|json|csv|markdown" in credit  # an option that takes a value keeps its type
