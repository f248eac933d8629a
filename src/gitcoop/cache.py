"""Local, rebuildable caches under the git dir: metric scores and the attested-commit index.

Nothing here is trusted by ``verify``; losing it only costs recomputation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from gitcoop import _fs, constants, ledger
from gitcoop.decimals import decimal_text, parse_decimal
from gitcoop.errors import FormatError, GitcoopError
from gitcoop.git import Repo


class ScoreCache:
    """Scores by (tree, challenge digest): a commit whose tree and challenge are unchanged
    need not run the metric again."""

    def __init__(self, root: Path) -> None:
        self._root = root / "scores"

    def _path(self, tree: str, digest: str) -> Path:
        key = hashlib.sha256(f"{tree}\0{digest}".encode()).hexdigest()
        return self._root / key[:2] / key

    def get(self, tree: str, digest: str) -> tuple[Decimal, int] | None:
        """Return (score, duration in ms) or None when not cached or unreadable."""
        raw = _fs.read_or_none(self._path(tree, digest))
        try:
            obj = json.loads(raw) if raw else None
            return (parse_decimal(obj["score"]), int(obj["durationMs"])) if obj else None
        except (ValueError, KeyError, TypeError, FormatError):
            return None

    def put(self, tree: str, digest: str, score: Decimal, duration_ms: int) -> None:
        """Record a score (atomic write)."""
        data = json.dumps({"score": decimal_text(score), "durationMs": duration_ms}).encode()
        _fs.atomic_write(self._path(tree, digest), data, durable=False)


@dataclass
class AttestedIndex:
    """Which commits the ledger already attests, and their scores, as of ledger ``head``."""

    head: str | None = None
    scores: dict[str, dict[str, str]] = field(default_factory=dict)  # commit → digest → score
    signed: set[tuple[str, str, str]] = field(default_factory=set)  # (commit, digest, keyid)

    def score(self, commit: str, digest: str) -> Decimal | None:
        """The ledger's score of a commit under a challenge digest, if any."""
        text = self.scores.get(commit, {}).get(digest)
        return None if text is None else parse_decimal(text)

    def has(self, commit: str, digest: str, keyid: str) -> bool:
        """Whether this key already attested this commit under this challenge."""
        return (commit, digest, keyid) in self.signed

    def add(self, rec: ledger.Record) -> None:
        """Take one ledger record into the index (public-split attestations only)."""
        if rec.entry.kind != "attestation":
            return
        try:
            stmt = rec.entry.payload()
            commit = stmt["subject"][0]["digest"]["gitCommit"]
            pred = stmt["predicate"]
            if pred["split"] != "public":
                return  # a private-split score is not the score a delta or push uses
            digest, keyid = pred["challenge"]["digest"], pred["signer"]["keyid"]
            self.scores.setdefault(commit, {}).setdefault(digest, pred["score"])
            self.signed.add((commit, digest, keyid))
        except (GitcoopError, KeyError, TypeError, IndexError, ValueError):
            return  # malformed entries are verify's business, not the index's


def load_index(repo: Repo, root: Path) -> AttestedIndex:
    """Return the index brought up to the current ledger head (incrementally when possible)."""
    path = root / "index.json"
    index = _read_index(path)
    tip = repo.ref(constants.LEDGER_REF)
    if tip is None or tip == index.head:
        return index if tip else AttestedIndex()
    try:
        new = list(ledger.records(repo, tip, index.head))
    except GitcoopError:
        index, new = AttestedIndex(), list(ledger.records(repo, tip))
    for rec in new:
        index.add(rec)
    index.head = tip
    _write_index(path, index)
    return index


def _read_index(path: Path) -> AttestedIndex:
    raw = _fs.read_or_none(path)
    if not raw:
        return AttestedIndex()
    try:
        obj = json.loads(raw)
        return AttestedIndex(obj["head"], obj["scores"], {tuple(x) for x in obj["signed"]})
    except (ValueError, KeyError, TypeError):
        return AttestedIndex()


def _write_index(path: Path, index: AttestedIndex) -> None:
    obj = {"head": index.head, "scores": index.scores, "signed": sorted(index.signed)}
    try:
        _fs.atomic_write(path, json.dumps(obj, separators=(",", ":")).encode(), durable=False)
    except OSError:
        return  # a cache that cannot be written is rebuilt next time
