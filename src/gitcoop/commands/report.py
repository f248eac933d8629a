"""``git coop report``: the leaderboard, the score along history, credit, payout and the
verification status as one self-contained HTML page or as Markdown."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from gitcoop import records
from gitcoop.commands import verify as verify_mod
from gitcoop.commands.credit import CreditReport
from gitcoop.commands.leaderboard import leaderboard
from gitcoop.commands.payout import split
from gitcoop.decimals import decimal_text
from gitcoop.errors import GitcoopError


def data(
    path: str | Path = ".",
    *,
    round_name: str | None = None,
    version: int | None = None,
    rpc: str | None = None,
    rpc_timeout: float = 10.0,
) -> dict[str, Any]:
    """Everything the report shows, as the plain data ``gitcoop.report`` renders; with
    ``rpc``, each anchor is read back from that node (waiting ``rpc_timeout`` seconds for
    each answer)."""
    board = leaderboard(path, round_name=round_name, version=version)
    c = board.credit
    ch = c.rules
    assert ch is not None
    verified = verify_mod.verify(path)
    return {
        "challenge": c.challenge,
        "version": c.version,
        "direction": c.direction,
        "metric": ch.metric.name,
        "generated": records.now(),
        "round": _round(c),
        "leaderboard": [
            {
                "rank": p.rank,
                "name": p.name,
                "keyid": p.keyid,
                "best": decimal_text(p.score),
                "commit": p.commit,
                "assurance": p.assurance,
            }
            for p in board.contributors
        ],
        "history": _history(c),
        "credit": c.to_json(),
        "payout": _payout(c),
        "verification": {
            "ok": True,
            "entries": 0 if verified.head is None else verified.head.seq + 1,
            "head": None if verified.head is None else verified.head.hash,
            "warnings": [*verified.warnings, *c.notes],
            "anchors": _anchors(path, rpc, rpc_timeout),
        },
    }


def _round(c: CreditReport) -> dict[str, Any] | None:
    if c.round is None:
        return None
    r = c.round.round
    return {"name": r.name, "start": r.start, "end": r.end, "closed": c.round.close is not None}


def _history(c: CreditReport) -> list[dict[str, Any]]:
    """The scored mainline, oldest first: each commit's score, whose it is, its delta
    (positive is better), and whether it was a credited improvement or a record."""
    maximize = c.direction == "maximize"
    unearned = {u.commit for u in c.credit.uncredited}
    records_ = {commit for commit, _ in c.credit.records}
    inside = None if c.round is None else c.round.commits
    out: list[dict[str, Any]] = []
    before: Decimal | None = None
    for i, commit in enumerate(c.mainline):
        got = c.scores.get(commit)
        if got is None:
            before = None
            continue
        delta = None
        if before is not None and i:
            delta = got.score - before if maximize else before - got.score
        earned = (
            delta is not None
            and delta > 0
            and commit not in unearned
            and (inside is None or commit in inside)
        )
        out.append(
            {
                "commit": commit,
                "score": decimal_text(got.score),
                "contributor": got.contributor.name if i else None,
                "delta": None if delta is None else decimal_text(delta),
                "improvement": earned,
                "record": commit in records_,
            }
        )
        before = got.score
    return out


def _payout(c: CreditReport) -> dict[str, Any] | None:
    if c.rules is None or c.rules.rewards is None:
        return None
    w = c.rules.rewards
    try:
        table = split(c)
    except GitcoopError:  # nobody earned anything yet: a pool with no payees
        return {"pool": str(w.pool), "unit": w.unit, "rule": w.rule, "rows": []}
    return {
        "pool": str(w.pool),
        "unit": w.unit,
        "rule": w.rule,
        "rows": [
            {"name": p.name, "keyid": p.keyid, "amount": str(p.amount), "address": p.address}
            for p in table.rows
        ],
    }


def _anchors(path: str | Path, rpc: str | None, timeout: float) -> list[dict[str, Any]] | None:
    if rpc is None:
        return None  # not checked
    from gitcoop.chain.check import check

    return [
        {"seq": a.seq, "entry": a.entry, "tx": a.tx, "status": a.status, "detail": a.detail}
        for a in check(path, rpc, timeout=timeout)
    ]


def write(path: str | Path, out: Path, *, markdown: bool = False, **options: Any) -> None:
    """Render the report to ``out`` (written whole or not at all)."""
    from gitcoop import _fs, report

    d = data(path, **options)
    text = report.markdown(d) if markdown else report.html(d)
    _fs.atomic_write(out, text.encode("utf-8"))
