"""Facts about commits that never change, remembered across runs of ``credit``.

A commit's first parent, its author, whether it touches the challenge's protected paths
and what a merge brings in are fixed once the commit exists (the protected flag also
depends on the challenge, so the file is per challenge digest). Like git's commit-graph,
this is a derived cache: losing it only costs recomputation.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from gitcoop import _fs


class Fact(NamedTuple):
    """What credit needs of one mainline commit (a tuple: a ledger of 100,000 commits
    builds 100,000 of them per credit run)."""

    parent: str | None
    author: str
    protected: bool
    merged: tuple[tuple[str, str | None], ...]  # (commit, its first parent) a merge brings in
    signed: str | None = None  # the ssh-ed25519 key of the commit's valid signature

    def to_json(self) -> list[object]:
        """Compact JSON form (an unsigned commit's without the fifth field)."""
        out: list[object] = [
            self.parent,
            self.author,
            int(self.protected),
            [list(m) for m in self.merged],
        ]
        return out if self.signed is None else [*out, self.signed]

    @classmethod
    def from_json(cls, item: list[object]) -> Fact:
        """Inverse of ``to_json``; raises ValueError/TypeError on another shape."""
        if len(item) == 4:
            (parent, author, protected, merged), signed = item, None
        else:
            parent, author, protected, merged, signed = item
        if not isinstance(author, str) or not isinstance(merged, list):
            raise TypeError("not a commit fact")
        return cls(
            None if parent is None else str(parent),
            author,
            bool(protected),
            tuple((str(m[0]), None if m[1] is None else str(m[1])) for m in merged)
            if merged
            else (),
            None if signed is None else str(signed),
        )


def path_for(local: Path, digest: str) -> Path:
    """Where the facts for one challenge digest live."""
    # ".2": facts learnt before commit signatures were read say nothing about them.
    return local / "history" / f"{digest.removeprefix('sha256:')[:32]}.2.json"


def walk(path: Path, tip: str, stop: str, compute: Callable[[str], Fact]) -> list[tuple[str, Fact]]:
    """First-parent history from ``tip`` back to ``stop`` (or the root), oldest first,
    computing only the facts the cache lacks and saving them for next time."""
    facts = _load(path)
    added = False
    out: list[tuple[str, Fact]] = []
    commit: str | None = tip
    while commit is not None:
        fact = facts.get(commit)
        if fact is None:
            fact = facts[commit] = compute(commit)
            added = True
        out.append((commit, fact))
        if commit == stop:
            break
        commit = fact.parent
    if added:
        with contextlib.suppress(OSError):
            data = {c: f.to_json() for c, f in facts.items()}
            _fs.atomic_write(path, json.dumps(data, separators=(",", ":")).encode())
    out.reverse()
    return out


def _load(path: Path) -> dict[str, Fact]:
    raw = _fs.read_or_none(path)
    if not raw:
        return {}
    try:
        return {c: Fact.from_json(item) for c, item in json.loads(raw).items()}
    except (ValueError, TypeError, AttributeError, IndexError):
        return {}  # a damaged cache is rebuilt, never trusted
