"""Text renderings of command results (tables, CSV, Markdown). No I/O."""

from __future__ import annotations

import csv
import io
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


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain, aligned text table."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""

    def cell(s: str) -> str:
        return s.replace("|", "\\|")

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """RFC 4180 CSV with a header row."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buf.getvalue().rstrip("\n")


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
