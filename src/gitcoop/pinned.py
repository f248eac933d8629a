"""The pinned challenge: a snapshot tree of .coop/ and the protected evaluator files.

Every ledger commit carries the snapshot in force, so the evaluator that scores a commit
comes from the ledger, never from the commit being scored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gitcoop import _fs, canonical, constants
from gitcoop.challenge import Challenge, parse_challenge
from gitcoop.errors import ConfigError
from gitcoop.git import FileEntry, Repo


@dataclass(frozen=True)
class Pinned:
    """A challenge with the snapshot tree it was read from and that tree's digest."""

    challenge: Challenge
    tree: str
    digest: str


def digest(repo: Repo, challenge: Challenge, files: list[FileEntry]) -> str:
    """SHA-256 over the parsed challenge and the content of every pinned file."""
    listing = {
        f.path: "sha256:"
        + hashlib.sha256(repo.read_blob(f.blob)).hexdigest()
        + (":x" if f.executable else "")
        for f in files
    }
    body = {"challenge": challenge.to_json(), "files": listing}
    return "sha256:" + hashlib.sha256(canonical.encode(body)).hexdigest()


def _challenge_in(repo: Repo, files: list[FileEntry], source: str) -> Challenge:
    for f in files:
        if f.path == constants.CHALLENGE_FILE:
            text = repo.read_blob(f.blob).decode("utf-8", errors="replace")
            return parse_challenge(text, source=source)
    raise ConfigError(
        f"{source} has no {constants.CHALLENGE_FILE}",
        hint="run: git coop init --metric CMD --direction maximize|minimize",
    )


def from_tree(repo: Repo, tree: str, source: str) -> Pinned:
    """Snapshot the challenge and protected files of a commit's tree."""
    everything = list(repo.files(tree))
    challenge = _challenge_in(repo, everything, source)
    files = [f for f in everything if challenge.is_protected(f.path)]
    return Pinned(challenge, repo.write_tree(files), digest(repo, challenge, files))


def from_workdir(repo: Repo, root: Path) -> Pinned:
    """Snapshot the challenge and protected files as they are on disk (uncommitted)."""
    challenge = parse_challenge(
        (root / constants.CHALLENGE_FILE).read_text(encoding="utf-8"),
        source=constants.CHALLENGE_FILE,
    )
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            full = Path(dirpath, name)
            rel = full.relative_to(root).as_posix()
            if challenge.is_protected(rel) and full.is_file():
                blob = repo.write_blob(full.read_bytes())
                files.append(FileEntry(rel, blob, os.access(full, os.X_OK)))
    files.sort(key=lambda f: f.path)
    return Pinned(challenge, repo.write_tree(files), digest(repo, challenge, files))


def load(repo: Repo, tree: str, known_digest: str, cache_dir: Path | None = None) -> Pinned:
    """Read the challenge from a snapshot tree whose digest the ledger already records.

    With ``cache_dir``, the parsed challenge is kept there as JSON by tree id, so the hook
    need not load a YAML parser on every push.
    """
    cached = cache_dir / f"{tree}.json" if cache_dir else None
    raw = _fs.read_or_none(cached) if cached else None
    if raw:
        try:
            return Pinned(Challenge.from_json(json.loads(raw)), tree, known_digest)
        except (KeyError, TypeError, ValueError, ArithmeticError):
            pass  # a stale or foreign cache entry: parse the YAML again
    challenge = _challenge_in(repo, list(repo.files(tree)), "pinned challenge")
    if cached:
        with contextlib.suppress(OSError):
            _fs.atomic_write(cached, json.dumps(challenge.to_json()).encode())
    return Pinned(challenge, tree, known_digest)


def effective_tree(repo: Repo, tree: str, challenge: Challenge) -> str:
    """A digest of what a metric effectively sees: the tree minus the protected paths the
    snapshot replaces. Two commits differing only in protected files share it, so they
    share a cached score. Nothing is written to the object store."""
    return effective_digest(repo.files(tree), challenge)


def effective_digest(files: Iterable[FileEntry], challenge: Challenge) -> str:
    """``effective_tree`` of a tree whose file listing the caller already has."""
    h = hashlib.sha256()
    for f in files:
        if not challenge.is_protected(f.path):
            h.update(f"{f.path}\0{f.blob}\0{int(f.executable)}\n".encode())
    return h.hexdigest()
