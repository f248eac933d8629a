"""The command-line reference as Markdown, generated from the command tree itself.

The input is the Click-style tree that typer builds from ``gitcoop.cli.app``
(``typer.main.get_command(app)``): a root group whose ``commands`` map names to commands
or groups, each with ``params``. This module reads that tree by attribute only, so it needs
neither typer nor click (only ``cli.py`` imports typer). Every fact comes from the code
(help strings, usage lines, defaults, ranges, environment variables), and the text of an
option's extras is the one ``git coop COMMAND -h`` prints, so the page and the help cannot
disagree. The documentation site builds the page with it (``docs/_hooks/cli_reference.py``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

PROG = "git coop"


@dataclass(frozen=True)
class Param:
    """One argument or option of a command, as the help shows it."""

    kind: str  # "argument" or "option"
    names: tuple[str, ...]  # an argument's name, or an option's flags (the negative form too)
    type: str  # "<int range>", "<maximize|minimize>"; "" for a flag
    help: str
    extras: tuple[str, ...]  # "default: 1", "x>=1", "required", "env var: NAME"


@dataclass(frozen=True)
class Command:
    """One command or group; ``path`` is empty for the root (``git coop`` itself)."""

    path: tuple[str, ...]
    usage: str
    help: str
    params: tuple[Param, ...]
    subcommands: tuple[tuple[str, str], ...]  # (name, first paragraph of its help)

    @property
    def name(self) -> str:
        """The command as typed: ``git coop key show``."""
        return " ".join((PROG, *self.path))


def walk(root: Any) -> list[Command]:
    """Every command of the tree that is not hidden, each group before its commands, in
    the order the help lists them."""
    ctx = root.make_context(PROG, [], resilient_parsing=True)
    return list(_walk(root, ctx, ()))


def _walk(cmd: Any, ctx: Any, path: tuple[str, ...]) -> Iterator[Command]:
    subs = getattr(cmd, "commands", {})
    visible = [(n, c) for n, c in subs.items() if not c.hidden]
    yield Command(
        path,
        cmd.get_usage(ctx).removeprefix("Usage:").strip(),
        _paragraphs(cmd.help or ""),
        tuple(_param(p, ctx) for p in cmd.params if not p.hidden),
        tuple((n, _paragraphs(c.help or "").split("\n\n")[0]) for n, c in visible),
    )
    for name, sub in visible:
        # resilient_parsing: a group that shows its help when called bare, or a command
        # with required options, must not stop the walk.
        sub_ctx = sub.make_context(name, [], parent=ctx, resilient_parsing=True)
        yield from _walk(sub, sub_ctx, (*path, name))


def _param(p: Any, ctx: Any) -> Param:
    decl, shown = p.get_help_record(ctx)
    help_text = _paragraphs(p.help or "")
    # The help record is the help text, then "  [extra; extra]"; the extras are what
    # ``-h`` shows about defaults, ranges, required options and environment variables.
    tail = shown[len(p.help or "") :].strip()
    extras = tuple(tail[1:-1].split("; ")) if tail.startswith("[") and tail.endswith("]") else ()
    found = re.search(r"\s*(<[^>]*>)$", decl)
    kind = "option" if p.param_type_name == "option" else "argument"
    # An argument is named as the usage line names it ("revs..."), the help record's start.
    if kind == "option":
        names = (*p.opts, *p.secondary_opts)
    else:
        names = (decl[: found.start()] if found else decl,)
    return Param(kind, names, found.group(1) if found else "", help_text, extras)


def _paragraphs(text: str) -> str:
    """A docstring's lines joined into paragraphs (blank lines kept as paragraph breaks)."""
    blocks = re.split(r"\n\s*\n", inspect.cleandoc(text))
    return "\n\n".join(" ".join(b.split()) for b in blocks if b.strip())


def section(path: tuple[str, ...], headings: Collection[str]) -> str | None:
    """The heading of the guide (docs/cli.md) that documents ``path``: ``git coop`` and
    the longest leading part of the path that has a heading of its own; for a group
    without one, the first heading of a command in it; else None."""
    for i in range(len(path), 0, -1):
        heading = " ".join((PROG, *path[:i]))
        if heading in headings:
            return heading
    inside = " ".join((PROG, *path, ""))
    return next((h for h in headings if path and h.startswith(inside)), None)


def slug(heading: str) -> str:
    """The anchor of a plain heading, as both GitHub and Python-Markdown make it."""
    return re.sub(r"[^a-z0-9_ -]", "", heading.lower()).strip().replace(" ", "-")


def markdown(commands: list[Command], guide: str = "", headings: Collection[str] = ()) -> str:
    """The reference page: one section per command, with its usage, help, arguments and
    options. With ``guide`` (the guide page's path) each section links to the guide's
    section for the command, found among ``headings``."""
    out = [
        "# Command reference",
        "",
        "Generated from the code when this site is built: the same facts as `git coop "
        "COMMAND -h`. Every command also takes `-h`/`--help`. "
        + (f"The [command guide]({guide}) explains what each one does." if guide else ""),
        "",
    ]
    for cmd in commands:
        out += _command(cmd, guide, headings)
    return "\n".join(out).rstrip() + "\n"


def _command(cmd: Command, guide: str, headings: Collection[str]) -> list[str]:
    lines = [f"## {cmd.name}", "", _escape(cmd.help), "", "```text", cmd.usage, "```", ""]
    where = section(cmd.path, headings) if guide else None
    if where is not None:
        lines += [f"Guide: [{where}]({guide}#{slug(where)}).", ""]
    for kind, title in (("argument", "Arguments"), ("option", "Options")):
        params = [p for p in cmd.params if p.kind == kind]
        if params:
            lines += [f"**{title}**", "", *(_item(p) for p in params), ""]
    if cmd.subcommands:
        lines += ["**Commands**", ""]
        for sub, summary in cmd.subcommands:
            name = f"{cmd.name} {sub}"
            lines.append(f"- [`{name}`](#{slug(name)}): {_escape(summary)}")
        lines.append("")
    return lines


def _item(p: Param) -> str:
    names = ", ".join(f"`{n}`" for n in p.names)
    kind = f" `{p.type}`" if p.type else ""
    extras = "".join(f" *{_extra(e)}.*" for e in p.extras)
    return f"- {names}{kind}: {_escape(p.help) or '(no help)'}{extras}"


def _escape(text: str) -> str:
    # Help strings are plain text: a "*" or "<" in them must not become emphasis or HTML.
    return re.sub(r"([\\`*_<>\[\]])", r"\\\1", text)


def _extra(text: str) -> str:
    label, sep, value = text.partition(": ")
    if sep and label in {"default", "env var"}:
        return f"{label.capitalize()}: `{value}`"
    return text.capitalize() if text == "required" else f"Range: `{text}`"
