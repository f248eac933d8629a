"""``git coop log`` and ``git coop show``: read the ledger as people and scripts want it."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from gitcoop import canonical, ledger
from gitcoop.errors import GitcoopError
from gitcoop.session import open_session


def _summary(rec: ledger.Record) -> dict[str, Any]:
    e = rec.entry
    out: dict[str, Any] = {
        "seq": e.seq,
        "kind": e.kind,
        "hash": ledger.entry_hash(rec.data),
        "ledgerCommit": rec.commit,
    }
    try:
        obj = canonical.decode(base64.b64decode(e.envelope.get("payload", "")))
    except (GitcoopError, ValueError):
        return out
    if not isinstance(obj, dict):
        return out
    pred = obj.get("predicate") if e.kind == "attestation" else obj
    if isinstance(pred, dict):
        out["signer"] = pred.get("signer")
        out["time"] = pred.get("time")
    if e.kind == "attestation" and isinstance(pred, dict):
        out["commit"] = obj["subject"][0]["digest"]["gitCommit"]
        out["score"], out["delta"] = pred.get("score"), pred.get("delta")
        out["metric"] = pred.get("metric", {}).get("name")
    return out


def log(path: str | Path = ".", *, limit: int | None = None) -> list[dict[str, Any]]:
    """Ledger entries newest first, as summaries (unverified: run verify for trust)."""
    s = open_session(path)
    commits = ledger.chain(s.repo, s.head.commit)
    commits.reverse()
    picked = commits if limit is None else commits[:limit]
    return [_summary(ledger.read_record(s.repo, c)) for c in picked]


def show(path: str | Path, rev: str) -> dict[str, Any]:
    """Every attestation of one commit, with the statement and the envelope."""
    s = open_session(path)
    commit = s.repo.resolve(rev)
    found = []
    for rec in ledger.records(s.repo, s.head.commit):
        if rec.entry.kind != "attestation":
            continue
        summary = _summary(rec)
        if summary.get("commit") == commit:
            summary["envelope"] = rec.entry.envelope
            summary["key"] = rec.entry.key
            found.append(summary)
    return {"commit": commit, "attestations": found}
