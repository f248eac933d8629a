"""Man pages for ``git coop``, rendered in roff from the CLI's own command tree.

``make man`` writes them to ``man/man1/`` (``python -m gitcoop.manpage man/man1``);
tests/test_manpages.py fails when the committed pages differ from what this renders now,
so a new command or option cannot leave them stale. The wheel installs them into
``<prefix>/share/man/man1/``, where ``man git-coop`` and ``git help coop`` find them.

This module reads the tree by attribute only (``commands``, ``params``, ``opts``, …): the
CLI framework stays behind cli.py.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

from gitcoop import __version__
from gitcoop.errors import ExitCode

MANUAL = "gitcoop manual"

EXIT_STATUS = {
    ExitCode.OK: "Success.",
    ExitCode.CHECK_FAILED: (
        "A check failed: a bad ledger entry, a metric that failed, an internal error."
    ),
    ExitCode.USAGE: (
        "Usage or configuration error, a bad command line included: the message names the fix."
    ),
    ExitCode.SECURITY: (
        "Security error: evidence that the ledger was rewritten (both heads are printed)."
    ),
}

ENVIRONMENT = (
    ("GITCOOP_HOME", "Where your keys live (default: $XDG_CONFIG_HOME/gitcoop)."),
    ("XDG_CONFIG_HOME", "The base of the default GITCOOP_HOME (default: ~/.config)."),
    (
        "GITCOOP_EVALUATOR_KEY",
        "The evaluator's private key (an unencrypted OpenSSH Ed25519 key), read by "
        "ci sign and round close --evaluator; never written to disk.",
    ),
    ("GITCOOP_PRIVATE_DATA", "The private split's data file (default of --private-data)."),
    ("GITCOOP_ETH_KEY", "The sending account's key for anchor, when --key-file is not given."),
    ("SSH_AUTH_SOCK", "The ssh-agent that signs for a key imported with a passphrase."),
    (
        "CI, TERM",
        "The progress line of evaluate and rescore is off when CI is set or TERM is dumb.",
    ),
    (
        "GITHUB_EVENT_NAME, GITHUB_EVENT_PATH, GITHUB_REPOSITORY, GITHUB_TOKEN, "
        "GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_API_URL",
        "Read by the ci commands in a GitHub Actions job.",
    ),
    ("GITCOOP_DEBUG", "When set, an internal error shows its traceback."),
    (
        "GITCOOP_FAULT",
        "AREA:POINT makes gitcoop kill itself at that point, for the crash tests.",
    ),
)

FILES = (
    (".coop/challenge.yaml", "The challenge: metric, protected files, credit rules."),
    (".coop/allowed_signers", "The proposed trust list (the ledger holds the one in force)."),
    ("refs/coop/ledger", "The hash-chained ledger of signed entries."),
    ("refs/notes/coop", "Each attested commit's scores, for git log --notes=coop."),
    (".git/coop/", "This clone's caches, pins and journals."),
)

SEE_ALSO = ("git(1)", "git-push(1)", "githooks(5)", "ssh-keygen(1)")

DESCRIPTION = (
    "gitcoop turns a git repository into an open data-science challenge without a server. "
    "Every push to the challenge branch is scored by the challenge's own metric; the score "
    "is signed (Ed25519, a DSSE envelope around an in-toto statement) and appended to a "
    "SHA-256 hash-chained ledger that lives in the repository's refs and travels with push "
    "and fetch. Anyone with a clone can verify the record and recompute who improved the "
    "model, and by how much.",
    "git finds the git-coop program on PATH and runs it as git coop; python -m gitcoop "
    "works the same way. -h or --help after any command prints its help; git help coop "
    "and git coop --help show this page.",
)


def escape(text: str) -> str:
    """Return ``text`` as roff text: backslashes and hyphens escaped, non-ASCII as ``\\[uXXXX]``.

    A line that would start with ``.`` or ``'`` (a roff request) is protected by ``line``.
    """
    out = text.replace("\\", "\\e").replace("-", "\\-")
    return "".join(c if ord(c) < 128 else f"\\[u{ord(c):04X}]" for c in out)


def line(text: str) -> str:
    """Return one roff text line, protected when it starts like a request."""
    return "\\&" + text if text[:1] in (".", "'") else text


def _bold(text: str) -> str:
    return f"\\fB{escape(text)}\\fR"


def _italic(text: str) -> str:
    return f"\\fI{escape(text)}\\fR"


def _paragraphs(text: str | None) -> list[str]:
    """Help text as paragraphs: lines joined, click's ``\\b`` markers dropped."""
    if not text:
        return []
    blocks = text.replace("\b", "").strip().split("\n\n")
    return [" ".join(b.split()) for b in blocks if b.strip()]


def _summary(cmd: Any) -> str:
    parts = _paragraphs(getattr(cmd, "short_help", None) or cmd.help)
    return parts[0] if parts else ""


def _visible(group: Any) -> Iterator[tuple[str, Any]]:
    for name, cmd in getattr(group, "commands", {}).items():
        if not getattr(cmd, "hidden", False):
            yield name, cmd


def walk(root: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Yield ``(path, command)`` for every visible command and group under ``root``, in
    declaration order (``path`` is e.g. ``("ci", "score")``)."""

    def below(path: tuple[str, ...], group: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
        for name, cmd in _visible(group):
            yield (*path, name), cmd
            yield from below((*path, name), cmd)

    yield from below((), root)


def _is_argument(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "argument"


def _choices(param: Any) -> list[str] | None:
    desc = getattr(param, "type_descriptor", None)
    if desc is None or not desc.is_choice:
        return None
    return [str(c.value if isinstance(c, Enum) else c) for c in desc.choices]


def metavar(param: Any) -> str:
    """The placeholder shown after an option that takes a value (or for an argument)."""
    if param.metavar:
        return str(param.metavar)
    choices = _choices(param)
    if choices:
        return "|".join(choices)
    if _is_argument(param):
        return str(param.name).upper()
    desc = getattr(param, "type_descriptor", None)
    annotation = getattr(desc, "annotation", None)
    element = getattr(annotation, "__args__", (annotation,))[0]
    if desc is not None and desc.is_path:
        return "FILE"
    if element is int:
        return "N"
    if element is float:
        return "NUMBER"
    long = str(next((o for o in param.opts if o.startswith("--")), param.opts[0]))
    return long.lstrip("-").replace("-", "_").upper()


def _default(param: Any) -> str | None:
    value = param.default
    if param.is_flag:
        if param.secondary_opts and isinstance(value, bool):
            return str((param.opts if value else param.secondary_opts)[0])
        return None
    if value is None or value == [] or callable(value):
        return None
    return str(value.value if isinstance(value, Enum) else value)


def _range(param: Any) -> str | None:
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f"at least {low}"
    if high is not None:
        return f"at most {high}"
    return None


def _option_head(param: Any) -> str:
    opts = sorted(param.opts, key=lambda o: (o.startswith("--"), o))
    head = ", ".join(_bold(o) for o in [*opts, *param.secondary_opts])
    if not param.is_flag:
        head += " " + _italic(metavar(param))
    return head


def _option_text(param: Any) -> str:
    text = " ".join(_paragraphs(param.help))
    notes = []
    if param.required:
        notes.append("required")
    if getattr(param, "multiple", False) and "repeatable" not in text:
        notes.append("repeatable")
    for label, value in (("default", _default(param)), ("range", _range(param))):
        if value is not None:
            notes.append(f"{label}: {value}")
    if notes:
        text = f"{text} ({'; '.join(notes)})" if text else f"({'; '.join(notes)})"
    return text


def _usage(path: tuple[str, ...], cmd: Any) -> str:
    words = [_bold(" ".join(("git", "coop", *path)))]
    if hasattr(cmd, "commands"):
        words.append("[" + _italic("OPTIONS") + "]")
        words.append(_italic("COMMAND"))
        words.append("[" + _italic("ARGS") + "]...")
        return " ".join(words)
    if any(not _is_argument(p) and not p.hidden for p in cmd.params):
        words.append("[" + _italic("OPTIONS") + "]")
    for p in cmd.params:
        if not _is_argument(p):
            continue
        name = _italic(metavar(p)) + ("..." if p.nargs == -1 else "")
        words.append(name if p.required else f"[{name}]")
    return " ".join(words)


def page_name(path: tuple[str, ...]) -> str:
    """The man page name of a command: ``git-coop`` or e.g. ``git-coop-ci-score``."""
    return "-".join(("git", "coop", *path))


class _Page:
    def __init__(self, name: str, summary: str) -> None:
        self.lines = [
            f'.TH "{escape(name.upper())}" "1" "" "gitcoop {escape(__version__)}" '
            f'"{escape(MANUAL)}"',
            # command names and option lists read badly hyphenated or stretched
            ".nh",
            ".ad l",
            ".SH NAME",
            f"{escape(name)} \\- {escape(summary)}" if summary else escape(name),
        ]

    def section(self, title: str) -> None:
        self.lines.append(f".SH {title}")

    def text(self, paragraphs: list[str]) -> None:
        for i, para in enumerate(paragraphs):
            if i:
                self.lines.append(".PP")
            self.lines.append(line(escape(para)))

    def item(self, head: str, body: str) -> None:
        self.lines += [".TP", line(head)]
        if body:
            self.lines.append(line(escape(body)))

    def render(self) -> str:
        return "\n".join(self.lines) + "\n"


def _options(page: _Page, cmd: Any) -> None:
    params = [p for p in cmd.params if not getattr(p, "hidden", False)]
    arguments = [p for p in params if _is_argument(p)]
    if arguments:
        page.section("ARGUMENTS")
        for p in arguments:
            page.item(_italic(metavar(p)), " ".join(_paragraphs(getattr(p, "help", None))))
    page.section("OPTIONS")
    for p in params:
        if not _is_argument(p):
            page.item(_option_head(p), _option_text(p))
    page.item(f"{_bold('-h')}, {_bold('--help')}", "Show the help and exit.")


def _commands(page: _Page, cmd: Any, path: tuple[str, ...]) -> None:
    page.section("COMMANDS")
    for sub_path, sub in walk(cmd):
        if hasattr(sub, "commands"):
            continue
        full = (*path, *sub_path)
        head = f"{_bold(' '.join(full))} (see {_bold(page_name(full))}(1))"
        page.item(head, _summary(sub))


def _see_also(page: _Page, names: list[str]) -> None:
    page.section("SEE ALSO")
    page.lines.append(", ".join(_bold(n[: n.index("(")]) + n[n.index("(") :] for n in names))


def main_page(root: Any) -> str:
    """Render ``git-coop(1)``: synopsis, description, every command, exit status,
    environment, files and the other pages."""
    page = _Page("git-coop", _summary(root))
    page.section("SYNOPSIS")
    page.lines.append(f"{_usage((), root)}")
    page.lines.append(".br")
    page.lines.append(f"{_bold('python -m gitcoop')} [{_italic('OPTIONS')}] {_italic('COMMAND')}")
    page.section("DESCRIPTION")
    page.text(_paragraphs(root.help) + list(DESCRIPTION))
    _options(page, root)
    _commands(page, root, ())
    page.section("EXIT STATUS")
    for code, meaning in EXIT_STATUS.items():
        page.item(_bold(str(int(code))), meaning)
    page.item(_bold("130"), "Interrupted.")
    page.section("ENVIRONMENT")
    for name, meaning in ENVIRONMENT:
        page.item(_bold(name), meaning)
    page.section("FILES")
    for name, meaning in FILES:
        page.item(_italic(name), meaning)
    _see_also(page, [*SEE_ALSO, *(f"{page_name(p)}(1)" for p, _ in walk(root))])
    return page.render()


def command_page(path: tuple[str, ...], cmd: Any) -> str:
    """Render the page of one command or group, e.g. ``git-coop-ci-score(1)``."""
    page = _Page(page_name(path), _summary(cmd))
    page.section("SYNOPSIS")
    page.lines.append(_usage(path, cmd))
    page.section("DESCRIPTION")
    page.text(_paragraphs(cmd.help))
    if hasattr(cmd, "commands"):
        _commands(page, cmd, path)
    _options(page, cmd)
    page.section("EXIT STATUS")
    page.text(
        [
            "0 on success, 1 when a check failed, 2 for a usage or configuration error, "
            "3 for evidence that the ledger was rewritten; see git-coop(1)."
        ]
    )
    _see_also(page, ["git-coop(1)", *(f"{page_name(path[:i])}(1)" for i in range(1, len(path)))])
    return page.render()


def pages(root: Any) -> dict[str, str]:
    """Return every page as ``{file name: roff text}``, ``git-coop.1`` first."""
    rendered = {"git-coop.1": main_page(root)}
    for path, cmd in walk(root):
        rendered[f"{page_name(path)}.1"] = command_page(path, cmd)
    return rendered


def write(directory: Path, root: Any) -> list[str]:
    """Write every page into ``directory`` and delete ``git-coop*.1`` files no command
    renders any more; return the names written."""
    directory.mkdir(parents=True, exist_ok=True)
    rendered = pages(root)
    for stale in directory.glob("git-coop*.1"):
        if stale.name not in rendered:
            stale.unlink()
    for name, text in rendered.items():
        (directory / name).write_text(text, encoding="utf-8")
    return list(rendered)


def main(argv: list[str] | None = None) -> int:
    """``python -m gitcoop.manpage DIR``: write the pages into DIR; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m gitcoop.manpage DIR\n")
        return int(ExitCode.USAGE)
    from gitcoop.cli import command_tree

    names = write(Path(args[0]), command_tree())
    sys.stdout.write(f"wrote {len(names)} man pages to {args[0]}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
