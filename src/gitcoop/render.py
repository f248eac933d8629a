"""Text renderings of command results (tables, CSV, Markdown). No I/O."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Any

CREDIT_COLUMNS = (
    "name",
    "email",
    "keyid",
    "commits",
    "improvements",
    "gain",
    "loss",
    "net",
    "share",
    "records",
)


_MD_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "`": "\\`",
        "[": "\\[",
        "]": "\\]",
        "*": "\\*",
        "_": "\\_",
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
    }
)
# GitHub turns bare "http://…" and "www.…" into links; a backslash breaks the pattern.
_AUTOLINK = re.compile(r"(?i):(?=//)|(?<=www)\.")


def inert_markdown(text: str) -> str:
    """One line of inert Markdown text: a name a stranger chose cannot end a table cell,
    start markup, an HTML tag or a link."""
    escaped = " ".join(text.translate(_MD_ESCAPES).split())
    return _AUTOLINK.sub(lambda m: "\\" + m.group(0), escaped)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain, aligned text table."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(inert_markdown(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """RFC 4180 CSV with a header row; no cell a spreadsheet would run as a formula."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([spreadsheet_safe(c) for c in row] for row in rows)
    return buf.getvalue().rstrip("\n")


def spreadsheet_safe(cell: str) -> str:
    """``cell``, kept as text by a spreadsheet: names are chosen by contributors, and one
    starting ``=HYPERLINK(`` would run as a formula (so a leading ``'``, as OWASP advises)."""
    risky = cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not _NUMBER.fullmatch(cell)
    return "'" + cell if risky else cell


_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")  # a loss of "-0.05" stays a number


def credit_rows(report: dict[str, Any], *, short_keys: bool) -> list[list[str]]:
    """Rows of the credit table from the ``credit --json`` object."""
    rows = []
    for c in report["contributors"]:
        row = [str(c[k]) for k in CREDIT_COLUMNS]
        if short_keys:
            row[2] = row[2][:15]
        rows.append(row)
    return rows


def credit_text(report: dict[str, Any], fmt: str) -> str:
    """Render the credit report in ``table``, ``csv`` or ``markdown``."""
    if fmt == "csv":
        return csv_text(CREDIT_COLUMNS, credit_rows(report, short_keys=False))
    rows = credit_rows(report, short_keys=True)
    body = markdown(CREDIT_COLUMNS, rows) if fmt == "markdown" else table(CREDIT_COLUMNS, rows)
    version = report.get("version", 1)
    lines = [
        f"challenge {report['challenge']} ({report['direction']})"
        + (f", version {version}" if version != 1 else "")
    ]
    lines += _round_lines(report.get("round"))
    for label in ("baseline", "best"):
        p = report[label]
        if p:
            lines.append(f"{label}: {p['score']} at {p['commit'][:12]}")
    lines += ["", body if rows else "no contributions yet: push a commit to the challenge branch"]
    if report["uncredited"]:
        lines += ["", "earned nothing:"]
        lines += [f"  {u['commit'][:12]}  {u['reason']}" for u in report["uncredited"]]
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)


def _round_lines(r: dict[str, Any] | None) -> list[str]:
    if r is None:
        return []
    closed = r["closed"]
    state = (
        "open" if closed is None else f"closed by entry #{closed['seq']} at {closed['tip'][:12]}"
    )
    return [f"round {r['name']} ({r['start']} to {r['end']}): {state}"]


LEADERBOARD_COLUMNS = ("rank", "name", "score", "assurance", "commit", "commits")


def leaderboard_text(board: dict[str, Any], top: int | None) -> str:
    """The ``leaderboard --json`` object as two aligned tables: people, then commits."""
    step = board["rounded_to"]
    lines = [
        f"challenge {board['challenge']} ({board['direction']})"
        + (f", scores rounded to {step}" if step else ""),
        *_round_lines(board["round"]),
        "",
    ]

    def rows(places: list[dict[str, Any]], count: bool) -> list[list[str]]:
        return [
            [
                str(p["rank"]),
                p["name"],
                p["score"],
                p["assurance"],
                p["commit"][:12],
                str(p["commits"]) if count else "",
            ]
            for p in places
        ]

    if not board["commits"]:
        return "\n".join([*lines, "no scored commits yet"])
    lines += [table(LEADERBOARD_COLUMNS, rows(board["contributors"], True)), ""]
    shown = board["commits"][:top] if top else board["commits"]
    lines.append(f"top {len(shown)} of {len(board['commits'])} commits:")
    lines.append(table(LEADERBOARD_COLUMNS[:-1], [r[:-1] for r in rows(shown, False)]))
    lines += [f"note: {n}" for n in board["notes"]]
    return "\n".join(lines)


PAYOUT_COLUMNS = ("name", "keyid", "amount", "address")


def payout_text(report: dict[str, Any]) -> str:
    """The ``payout --json`` object as an aligned table."""
    head = f"pool {report['pool']} {report['unit']}, rule {report['rule']}"
    payees = sorted(report["payees"], key=lambda p: -int(p["amount"]))  # stable: ledger order
    rows = [[p["name"], p["keyid"][:15], p["amount"], p["address"] or "-"] for p in payees]
    lines = [head, *_round_lines(report["round"]), "", table(PAYOUT_COLUMNS, rows)]
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)
