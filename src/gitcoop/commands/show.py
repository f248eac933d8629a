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
    statement = e.kind in ("attestation", "review")
    pred = obj.get("predicate") if statement else obj
    if isinstance(pred, dict):
        out["signer"] = pred.get("signer")
        out["time"] = pred.get("time")
    if statement and isinstance(pred, dict):
        out["commit"] = obj["subject"][0]["digest"]["gitCommit"]
        out["score"] = pred.get("score")
    if e.kind == "attestation" and isinstance(pred, dict):
        out["delta"] = pred.get("delta")
        out["metric"] = pred.get("metric", {}).get("name")
    if e.kind == "review" and isinstance(pred, dict):
        out["result"] = pred.get("result")
        out["reviewed"] = pred.get("reviewed")
    return out


def log(path: str | Path = ".", *, limit: int | None = None) -> list[dict[str, Any]]:
    """Ledger entries newest first, as summaries (unverified: run verify for trust)."""
    s = open_session(path)
    commits = ledger.chain(s.repo, s.head.commit)
    commits.reverse()
    picked = commits if limit is None else commits[:limit]
    return [_summary(ledger.read_record(s.repo, c)) for c in picked]


def show(path: str | Path, rev: str) -> dict[str, Any]:
    """Every attestation and review of one commit, with the statement and the envelope."""
    s = open_session(path)
    commit = s.repo.resolve(rev)
    found: dict[str, list[dict[str, Any]]] = {"attestation": [], "review": []}
    for rec in ledger.records(s.repo, s.head.commit):
        if rec.entry.kind not in found:
            continue
        summary = _summary(rec)
        if summary.get("commit") == commit:
            summary["envelope"] = rec.entry.envelope
            summary["key"] = rec.entry.key
            found[rec.entry.kind].append(summary)
    out: dict[str, Any] = {
        "commit": commit,
        "attestations": found["attestation"],
        "reviews": found["review"],
    }
    out["assurance"] = _assurance(path, commit) if found["attestation"] else None
    return out


def _assurance(path: str | Path, commit: str) -> dict[str, Any]:
    from gitcoop.commands.credit import assurance

    try:
        return assurance(path, commit)
    except GitcoopError as exc:  # show reads a ledger that may not verify; verify says why
        return {"level": None, "counts": False, "reason": f"the ledger does not verify: {exc}"}
