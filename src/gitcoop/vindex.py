"""The verified-attestation index: what ``verify`` proved, in the shape ``credit`` reads fast.

One JSON array per attestation (and per review, marked by a trailing ``true``; a
private-split score, by a trailing review flag and ``"private"``), in ledger order, then a
trailer naming the entry the file covers. Only what verifies entries writes it
(``verify``, and ``sync`` for the entries it takes), right before moving the pin; a file
whose trailer does not match the pin (a crash in between, an edit) is rebuilt by a full
verify, never trusted.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from gitcoop import _faults, _fs
from gitcoop.errors import LocalIOError, write_failed

FILE = "attestations.jsonl"
_TRAILER = "#"


class Row(NamedTuple):
    """One verified attestation, as credit needs it."""

    seq: int
    commit: str
    score: str
    keyid: str
    principal: str
    name: str
    challenge: str
    review: bool = False  # a review's score: a reproduction, not a claim of authorship
    split: str = "public"  # "private": an evaluator's score on the held-out split
    # The subject still to check, for a commit not in the clone when its entry was
    # verified: "<tree>" (a review), "<tree>:<first parent>" or "<tree>:" (a root commit).
    pending: str = ""

    def line(self) -> str:
        """The row as one JSON line."""
        # Written once per attestation by a full verify: json.dumps per row cost more
        # than reading the entry did. The repeated texts are quoted once each.
        return (
            f"[{self.seq:d},{_quote(self.commit)},{_quote(self.score)},{_quote_again(self.keyid)},"
            f"{_quote_again(self.principal)},{_quote_again(self.name)},"
            f"{_quote_again(self.challenge)}{self._tail()}]\n"
        )

    def _tail(self) -> str:
        if self.pending:
            return (
                f",{'true' if self.review else 'false'},{_quote_again(self.split)},"
                f"{_quote(self.pending)}"
            )
        if self.split != "public":
            return f",{'true' if self.review else 'false'},{_quote_again(self.split)}"
        return ",true" if self.review else ""


_PLAIN = re.compile(r"[0-9A-Za-z.:+/=_-]*")  # text JSON writes as it is


def _quote(text: str) -> str:
    return f'"{text}"' if _PLAIN.fullmatch(text) else json.dumps(text)


_quote_again = functools.lru_cache(maxsize=256)(_quote)


def _trailer(seq: int, entry_hash: str) -> str:
    return json.dumps([_TRAILER, seq, entry_hash], separators=(",", ":")) + "\n"


def _last_line(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4096))
            tail = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    lines = tail.splitlines(keepends=True)
    return lines[-1] if lines and lines[-1].endswith("\n") else None


def ends_at(path: Path, seq: int, entry_hash: str) -> bool:
    """Whether the file is complete up to the entry ``seq`` with ``entry_hash``."""
    return _last_line(path) == _trailer(seq, entry_hash)


def truncate(path: Path, seq: int, entry_hash: str, *, sealed: tuple[int, str]) -> bool:
    """Cut a file sealed at ``sealed`` (seq, hash) back to the entry ``seq`` with
    ``entry_hash``, an earlier entry of the same chain (the caller knows it is); return
    False, changing nothing, when the file is not sealed there."""
    if sealed[0] < seq or not ends_at(path, *sealed):
        return False
    keep: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(f'["{_TRAILER}"') or int(line[1 : line.index(",")]) > seq:
                break
            keep.append(line)
    _fs.atomic_write(path, ("".join(keep) + _trailer(seq, entry_hash)).encode("utf-8"))
    return True


class Writer:
    """Writes rows for a verification in progress: a fresh file, or an append to one that
    ends where the verification starts.

    When a write fails (LocalIOError) or the verification stops, the file is put back as
    it was: a fresh one dropped, an append cut back to where it started and sealed again
    (should even that fail, it is left unsealed, which the next verify rebuilds).
    """

    def __init__(self, path: Path, *, append: bool) -> None:
        self._path = path
        self._append = append
        self._target = path if append else path.with_name(path.name + ".tmp")
        self._sealed: tuple[int, bytes] | None = None  # an append's start, its old trailer
        self._done = False
        try:
            _faults.io("write", self._target)
            self._fh = self._target.open("a" if append else "w", encoding="utf-8")
        except OSError as exc:
            raise write_failed(exc, self._path, after=_fs.KEPT) from exc
        if append:
            try:
                self._drop_trailer()
            except OSError as exc:
                raise self._failed(exc) from exc

    def _drop_trailer(self) -> None:
        last = _last_line(self._path)
        old = b"" if last is None else last.encode("utf-8")
        cut = self._path.stat().st_size - len(old)
        self._sealed = (cut, old)  # enough to put the file back byte for byte
        self._fh.truncate(cut)

    def write(self, lines: str) -> None:
        """Add rows (``Row.line`` texts, in ledger order)."""
        try:
            _faults.io("write", self._target)
            self._fh.write(lines)
        except OSError as exc:
            raise self._failed(exc) from exc

    def finish(self, seq: int, entry_hash: str) -> None:
        """Seal the file as covering the ledger up to ``seq``."""
        try:
            _faults.io("write", self._target)
            self._fh.write(_trailer(seq, entry_hash))
            self._fh.flush()
            _faults.io("fsync", self._target)
            os.fsync(self._fh.fileno())  # once: a retried fsync proves nothing (fsyncgate)
            self._fh.close()
            if not self._append:
                _faults.io("rename", self._path)
                os.replace(self._target, self._path)
        except OSError as exc:
            raise self._failed(exc) from exc
        self._done = True
        if not self._append:
            _fs.fsync_dir(self._path.parent, wrote=self._path)

    def abort(self) -> bool:
        """Give up: put the file back as it was; return whether it is (False: an append
        left unsealed, rebuilt later)."""
        if self._done:
            return True
        self._done = True
        with contextlib.suppress(OSError):  # rows not flushed yet are dropped anyway
            self._fh.close()
        if not self._append:
            with contextlib.suppress(OSError):
                self._target.unlink()
            return True
        return self._sealed is None or _reseal(self._path, *self._sealed)

    def undo(self) -> None:
        """After ``finish``, when what was to follow failed (the pin): cut an append back to
        where it started, where the pin still is. A fresh file stays; it did not match the
        pin anyway, and the next verify rebuilds it."""
        if self._append and self._sealed is not None:
            _reseal(self._path, *self._sealed)

    def _failed(self, exc: OSError) -> LocalIOError:
        kept = self.abort()
        return write_failed(exc, self._path, after=_fs.KEPT if kept else _UNSEALED)


_UNSEALED = "it is left unsealed, and the next verify rebuilds it"


def _reseal(path: Path, cut: int, trailer: bytes) -> bool:
    """Cut an append back to where it started and put its old trailer back."""
    try:
        with path.open("r+b") as fh:
            fh.truncate(cut)
            fh.seek(cut)
            fh.write(trailer)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError:
        return False
    return True


def read(path: Path, seq: int, entry_hash: str) -> Iterator[Row] | None:
    """The rows of a file sealed at exactly (``seq``, ``entry_hash``), or None."""
    if not ends_at(path, seq, entry_hash):
        return None
    return _rows(path)


def _rows(path: Path) -> Iterator[Row]:
    # One C parse of the whole file beats one json.loads call per line by about 5x.
    lines = path.read_text(encoding="utf-8").splitlines()
    items = json.loads("[" + ",".join(lines) + "]")
    # tuple.__new__ in C, with no Python frame a row; a public attestation's line leaves
    # the review flag and the split out, a review's the split.
    new, size = tuple.__new__, len(Row._fields)
    return (
        new(Row, item if len(item) == size else _filled(item))
        for item in items
        if item[0] != _TRAILER
    )


def _filled(item: list[object]) -> tuple[object, ...]:
    return (*item, *_DEFAULTS[len(item) - _FIRST_DEFAULT :])


_FIRST_DEFAULT = 7  # seq .. challenge are always written
_DEFAULTS = tuple(Row._field_defaults[name] for name in Row._fields[_FIRST_DEFAULT:])
