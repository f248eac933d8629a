"""The documentation site: every command and option has help and is in the guide, the site
builds with the generated command reference, every relative link resolves, and the
`git coop` lines the pages show use commands and options that exist."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer.main

from gitcoop import clidoc
from gitcoop.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GUIDE = DOCS / "cli.md"
QUICK_STARTS = [DOCS / "quickstart-owner.md", DOCS / "quickstart-contributor.md"]
GENERATED = {DOCS / "reference.md"}  # added by docs/_hooks/cli_reference.py at build time
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_hooks" not in p.parts)
FENCE = re.compile(r"^(```|~~~)")


@cache
def _tree() -> Any:
    return typer.main.get_command(app)


def _commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    def below(path: tuple[str, ...], cmd: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            if not sub.hidden:
                yield from below((*path, name), sub)

    return below((), _tree())


COMMANDS = list(_commands())
IDS = [" ".join(path) or "git coop" for path, _ in COMMANDS]


def _sections() -> dict[str, str]:
    """docs/cli.md by `## ` heading; the text before the first heading under ""."""
    out: dict[str, list[str]] = {"": []}
    current = ""
    for line in GUIDE.read_text().splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            out[current] = []
        else:
            out[current].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def _mentions(text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


# (a) the test that fails when a command or option is undocumented


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=IDS)
def test_every_command_argument_and_option_has_help(path: tuple[str, ...], cmd: Any) -> None:
    assert (cmd.help or "").strip(), f"git coop {' '.join(path)} has no help text"
    for p in cmd.params:
        if not p.hidden:
            assert (p.help or "").strip(), f"git coop {' '.join(path)}: {p.name} has no help"


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=IDS)
def test_every_option_is_in_the_guide_section_of_its_command(
    path: tuple[str, ...], cmd: Any
) -> None:
    sections = _sections()
    heading = clidoc.section(path, sections) if path else ""
    assert heading is not None, f"docs/cli.md has no '## git coop {path[0]}' section"
    text = sections[heading]
    for p in cmd.params:
        if p.hidden or p.param_type_name != "option":
            continue
        names = [*p.opts, *p.secondary_opts]
        # A long name is what a reader searches for; `-n` alone does not document
        # `--max-count`. Either form of a --x/--no-x pair will do.
        wanted = [n for n in names if n.startswith("--")] or names
        assert any(_mentions(text, n) for n in wanted), (
            f"{'/'.join(names)} of git coop {' '.join(path)} is not mentioned in "
            f"docs/cli.md under '## {heading or '(the introduction)'}'"
        )


def test_every_environment_variable_gitcoop_reads_is_in_the_guide() -> None:
    text = GUIDE.read_text()
    source = "".join(p.read_text() for p in (ROOT / "src" / "gitcoop").rglob("*.py"))
    names = set(re.findall(r"[\"'](GITCOOP_[A-Z0-9_]+|COOP_[A-Z0-9_]+)[\"']", source))
    assert names, "the search found no variable at all"
    assert not {n for n in names if f"`{n}`" not in text}


def test_a_command_finds_its_guide_section() -> None:
    headings = ["git coop key", "git coop challenge update", "Trust lists, roles and assurance"]
    assert clidoc.section(("key", "show"), headings) == "git coop key"
    assert clidoc.section(("challenge",), headings) == "git coop challenge update"
    assert clidoc.section(("credit",), headings) is None
    assert clidoc.slug("git coop key show") == "git-coop-key-show"


# (b) the site builds, strictly, with the reference generated from the code


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not (DOCS / "reference.md").exists(), "the reference is generated, not written"
    return out


def test_the_site_builds_and_its_reference_has_every_command(site: Path) -> None:
    page = (site / "reference" / "index.html").read_text()
    for path, _ in COMMANDS:
        name = " ".join(("git coop", *path))
        assert f'id="{clidoc.slug(name)}"' in page, name
        assert f">{name}<" in page, name
    for page_path in PAGES:
        rel = page_path.relative_to(DOCS).with_suffix("")
        built = site / (rel.parent if rel.name in {"index", "README"} else rel) / "index.html"
        assert built.exists(), f"{page_path.relative_to(ROOT)} was not built"


def test_the_reference_lists_each_option_with_its_help() -> None:
    text = re.sub(r"\\(.)", r"\1", clidoc.markdown(clidoc.walk(_tree())))  # Markdown escapes
    for path, cmd in COMMANDS:
        for p in cmd.params:
            if not p.hidden and p.param_type_name == "option":
                assert f"`{p.opts[0]}`" in text, (path, p.opts)
                assert " ".join(p.help.split()) in text, (path, p.opts)


# (c) relative links resolve, to files and to headings


def _without_fences(text: str) -> str:
    kept, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
        elif not fenced:
            kept.append(line)
    return "\n".join(kept)


def _prose(text: str) -> str:
    """The text outside fenced code blocks and code spans."""
    return re.sub(r"`[^`]*`", "", _without_fences(text))


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading (the site's build checks its own)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    if path in GENERATED:
        return {"", *(clidoc.slug(c.name) for c in clidoc.walk(_tree()))}
    seen: dict[str, int] = {}
    found = {""}
    for line in _without_fences(path.read_text()).splitlines():
        heading = re.match(r"#{1,6} (.+?)\s*#*\s*$", line)
        if heading:
            base = _slug(heading.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def _links(path: Path) -> Iterator[str]:
    text = _prose(path.read_text())
    yield from re.findall(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)
    yield from re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", text, flags=re.M)


@pytest.mark.parametrize("page", [*PAGES, ROOT / "README.md"], ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    for link in _links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", link):  # https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        dest = (page.parent / target).resolve() if target else page
        assert dest.exists() or dest in GENERATED, f"{page.name}: {link} (no {target})"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{page.name}: {link} (no heading #{anchor})"


def test_every_decision_is_listed() -> None:
    listed = (DOCS / "decisions" / "README.md").read_text()
    for record in sorted((DOCS / "decisions").glob("0*.md")):
        assert f"]({record.name})" in listed, record.name


# (d) the commands the pages show exist, with the options they use


def _code(path: Path, *, spans: bool) -> Iterator[str]:
    """Lines of fenced code blocks, and with ``spans`` the inline code spans."""
    text, fenced = path.read_text(), False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
        elif fenced:
            yield line.strip().removeprefix("$ ")
    if spans:
        for span in re.findall(r"`([^`]+)`", _without_fences(text)):
            yield " ".join(span.split())


def _invocations(line: str) -> Iterator[list[str]]:
    """Each command of a shell line that runs `git coop`, as its words after `git coop`
    (output lines that merely quote a command are left alone)."""
    line = re.sub(r"(^|\s)#.*$", "", line)
    for part in re.split(r"&&|\|\||;|\|", line):
        try:
            words = shlex.split(part)
        except ValueError:
            continue
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):  # VAR=value git coop
            words = words[1:]
        if words[:2] == ["git", "coop"]:
            yield words[2:]


def _problem(words: list[str]) -> str | None:
    """Why `git coop WORDS` names no command, or an option it does not take."""
    cmd = _tree()
    path: list[str] = []
    while getattr(cmd, "commands", None) and words and not words[0].startswith("-"):
        sub = cmd.commands.get(words[0])
        if sub is None or sub.hidden:
            return f"no command 'git coop {' '.join([*path, words[0]])}'"
        cmd, path, words = sub, [*path, words[0]], words[1:]
    known = {"-h", "--help"}
    for p in cmd.params:
        known.update(p.opts, p.secondary_opts)
    for word in words:
        flag = word.split("=", 1)[0]
        if flag.startswith("-") and flag != "-" and flag not in known:
            return f"'git coop {' '.join(path)}' takes no option {flag}"
    return None


@pytest.mark.parametrize(
    "page", [*PAGES, ROOT / "README.md"], ids=lambda p: str(p.relative_to(ROOT))
)
def test_the_git_coop_lines_of_the_pages_are_real(page: Path) -> None:
    spans = page in QUICK_STARTS
    problems = [
        f"{line!r}: {why}"
        for line in _code(page, spans=spans)
        for words in _invocations(line)
        if (why := _problem(words)) is not None
    ]
    assert not problems, "\n".join(problems)


def test_the_line_checker_catches_a_wrong_command_and_option() -> None:
    assert _problem(["credit", "--round", "week-1"]) is None
    assert _problem(["key", "import", "--from-git"]) is None
    assert _problem(["credits"]) == "no command 'git coop credits'"
    assert _problem(["credit", "--rounds", "w"]) == "'git coop credit' takes no option --rounds"
    assert list(_invocations("git pull && git coop join --accept   # then")) == [
        ["join", "--accept"]
    ]
