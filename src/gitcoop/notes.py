"""``refs/notes/coop``: each attested commit's scores, for ``git log --notes=coop``.

A derived index, for display only: it is rebuilt from the ledger, nothing in gitcoop ever
reads it to decide anything, and it is neither pushed nor fetched (each clone derives its
own). Its lines come from the ledger's statements without checking their signatures; run
``git coop verify`` for trust. See docs/decisions/0009-notes-index.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gitcoop import _fs, _gitcli, constants, ledger, records
from gitcoop.decimals import decimal_text
from gitcoop.errors import FormatError, GitcoopError, GitOperationError
from gitcoop.git import Repo

STATE_FILE = "notes.json"
_LOCK_FILE = "notes.lock"
# fast-import writes to a ref of its own (unique per process), never under refs/coop/,
# which sync fetches and the server guard owns; refs/notes/coop then moves by CAS.
TMP_PREFIX = "refs/coop-tmp/notes-"
_RUN = 4096  # ledger entries per walk step
# Entries per fast-import process: its memory grows with the objects it writes (about
# 100 MB for 50,000 notes), so a larger build is written in steps, each on the last.
BATCH = 50_000
_LINE = re.compile(r"#(0|[1-9][0-9]*) ")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]+")
_COMMITTER = b"gitcoop <gitcoop@localhost>"
_MESSAGE = b"coop: notes index of refs/coop/ledger (derived, never authoritative)\n"
# glibc returns freed heap to the system, and faults it back in, at each of fast-import's
# zlib streams: four times slower for small objects (git 2.39, glibc 2.36). Keeping the heap
# costs at most a few MB.
_FAST_IMPORT_ENV = {"MALLOC_TRIM_THRESHOLD_": str(8 << 20)}

Lines = dict[str, list[str]]  # attested commit -> its note lines, in ledger order
Changes = dict[str, bytes | None]  # note path -> new content, or None to remove the note


@dataclass(frozen=True)
class Refreshed:
    """What a refresh did: ``how`` is ``none`` (no ledger), ``idle`` (already current),
    ``appended``, ``relinked`` or ``rebuilt``; ``notes`` counts the notes written or
    removed."""

    how: str
    notes: int = 0


@dataclass(frozen=True)
class _State:
    notes: str | None  # the notes commit gitcoop wrote last (None: it wrote no ref)
    ledger: str  # the ledger commit those notes reflect


@dataclass(frozen=True)
class _Plan:
    """How to get from the notes there are to the ledger's: start from ``tree`` (None: an
    empty one); in the first batch, keep only lines of seq <= ``keep_upto`` (when set) in
    the notes of ``dropped``; add the lines of each batch."""

    how: str
    tree: str | None
    batches: Iterator[Lines]
    dropped: Lines
    keep_upto: int | None = None


def refresh(repo: Repo, local: Path) -> Refreshed:
    """Bring ``refs/notes/coop`` up to the ledger's head; ``local`` is the clone's gitcoop
    directory (``.git/coop``), where the state of the last refresh is kept.

    When the notes ref and that state already match the ledger, this reads one small file
    and two refs. Raises GitcoopError or OSError when the notes cannot be written; the
    notes ref then holds its old value (or the new one), never anything in between.
    """
    tip = repo.ref(constants.LEDGER_REF)
    if tip is None:
        return Refreshed("none")
    if _read_state(local) == _State(repo.ref(constants.NOTES_REF), tip):
        return Refreshed("idle")
    with _fs.locked(local / _LOCK_FILE):  # one writer per clone; others wait, then find it done
        tip = repo.ref(constants.LEDGER_REF)
        if tip is None:
            return Refreshed("none")
        current, state = repo.ref(constants.NOTES_REF), _read_state(local)
        if state == _State(current, tip):
            return Refreshed("idle")
        plan = _plan(repo, tip, current, state)
        new, count = _apply(repo, tip, plan, current)
        if new != current:
            assert new is not None
            repo.cas_ref(constants.NOTES_REF, new, current, "coop: notes")
        _write_state(local, _State(new, tip))
    return Refreshed(plan.how, count)


def warn_on_failure(repo: Repo, local: Path, warn: Callable[[str], None]) -> Refreshed | None:
    """``refresh``, with any failure reported through ``warn`` as one line instead of
    raised: a command never fails because its notes could not be written."""
    try:
        return refresh(repo, local)
    except Exception as exc:  # display only: nothing may fail the command
        reason = exc.message if isinstance(exc, GitcoopError) else f"{type(exc).__name__}: {exc}"
        warn(
            f"gitcoop: warning: could not update {constants.NOTES_REF}: {reason}; "
            "it is rebuilt next time"
        )
        return None


# --- what to write ----------------------------------------------------------------------


def _plan(repo: Repo, tip: str, current: str | None, state: _State | None) -> _Plan:
    if state is not None and state.notes == current and repo.has_object(state.ledger):
        try:
            return _update(repo, tip, current, state.ledger)
        except GitcoopError:
            pass  # the old chain, or the notes, are not all readable: rebuild
    return _Plan("rebuilt", None, _batches(repo, tip, None), {})


def _update(repo: Repo, tip: str, current: str | None, reflected: str) -> _Plan:
    """The plan when the notes are gitcoop's own and reflect the ledger at ``reflected``;
    raises GitcoopError when they cannot be updated (the caller rebuilds them)."""
    tree = None if current is None else repo.commit(current).tree
    ahead = _entry_seq(repo, tip) - _entry_seq(repo, reflected)
    if ahead >= 0:
        runs = _walk(repo, tip, reflected, ahead)
        if runs is not None:  # the ledger grew on top of what the notes reflect
            return _Plan("appended", tree, _read_runs(repo, runs), {})
    fork = repo.merge_base(reflected, tip)
    if fork is None:
        raise GitOperationError("the ledger shares no history with the notes")
    # Sync re-linked entries: those after the fork point got new seqs (or left), so their
    # lines go, found by seq in the notes of the commits they attested.
    dropped = {c: lines for run in _batches(repo, reflected, fork) for c, lines in run.items()}
    seq = ledger.read_record(repo, fork).entry.seq
    return _Plan("relinked", tree, _batches(repo, tip, fork), dropped, seq)


def _apply(repo: Repo, tip: str, plan: _Plan, current: str | None) -> tuple[str | None, int]:
    """Write the plan's notes commits, one fast-import per batch, each on the last; return
    the final commit (``current`` when nothing changed) and how many notes changed."""
    tree, new, count = plan.tree, current, 0
    # A rebuild that finds no attestation still replaces whatever the ref holds.
    must = plan.tree is None and current is not None
    run = f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-"
    when = repo.commit(tip).time  # the ledger's time: equal notes give equal commits
    repo.delete_refs(TMP_PREFIX)  # left by a killed refresh (this one holds the lock)
    try:
        for i, added in enumerate(plan.batches):
            first = i == 0
            dropped, keep = (plan.dropped, plan.keep_upto) if first else ({}, None)
            changes = _merge(repo, tree, added, dropped, keep)
            if not changes and not (first and must):
                continue
            new = _write(repo, f"{run}{i}", when, tree, changes)
            tree, count = repo.commit(new).tree, count + len(changes)
    finally:
        repo.delete_refs(run)
    return new, count


def _merge(
    repo: Repo, tree: str | None, added: Lines, dropped: Lines, keep_upto: int | None
) -> Changes:
    """New contents of the notes ``added`` and ``dropped`` touch: the lines there now (only
    those of seq <= ``keep_upto``, when given), then the added ones."""
    paths = {commit: _path(commit) for commit in {**dropped, **added}}
    there = {} if tree is None or not paths else repo.read_files(tree, paths.values())
    out: Changes = {}
    for commit, path in paths.items():
        old = there.get(path)
        kept = [] if old is None else old.decode("utf-8", "replace").splitlines()
        if keep_upto is not None:
            kept = [ln for ln in kept if 0 <= _seq(ln) <= keep_upto]
        lines = kept + added.get(commit, [])
        out[path] = _content(lines) if lines else None
    return out


def _batches(repo: Repo, tip: str, stop: str | None) -> Iterator[Lines]:
    """The note lines of the attestations after ``stop`` up to ``tip``, by commit, in
    batches of about ``BATCH`` entries, oldest first; always at least one batch.

    The chain is walked first (40 bytes an entry), so a broken one raises
    VerificationError here, before anything is written.
    """
    return _read_runs(repo, list(ledger.walk_runs(repo, tip, stop, _RUN)))


def _entry_seq(repo: Repo, commit: str) -> int:
    return ledger.read_record(repo, commit).entry.seq


def _walk(repo: Repo, tip: str, stop: str, count: int) -> list[ledger.Segment] | None:
    """The runs after ``stop`` up to ``tip`` when ``stop`` lies ``count`` entries below
    ``tip``; None as soon as the walk goes further (``stop`` is not below it)."""
    runs, walked = [], 0
    try:
        for run in ledger.walk_runs(repo, tip, stop, _RUN):
            walked += run.length
            if walked > count:
                return None
            runs.append(run)
    except GitcoopError:
        return None
    return runs


def _read_runs(repo: Repo, runs: list[ledger.Segment]) -> Iterator[Lines]:
    """The note lines of the entries of ``runs`` (as walked, newest first), by commit, in
    batches of about ``BATCH`` entries, oldest first; always at least one batch."""
    runs = runs[::-1]  # walked newest first; each run reads oldest first

    def read() -> Iterator[Lines]:
        out: Lines = {}
        size, batches = 0, 0
        for run in runs:
            for found in _run_lines(repo, run):
                if found is not None:
                    out.setdefault(found[0], []).append(found[1])
            size += run.length
            if size >= BATCH:
                yield out
                out, size, batches = {}, 0, batches + 1
        if out or not batches:
            yield out

    return read()


def _run_lines(repo: Repo, run: ledger.Segment) -> list[tuple[str, str] | None]:
    """The notes line of each entry of ``run``, oldest first (None: no line); entries whose
    lines this process remembers are not read again."""
    ids = [run.pairs[i : i + 20].hex() for i in range(0, len(run.pairs), 40)]
    ids.reverse()
    if all(i in _KNOWN for i in ids):
        return [_KNOWN[i] for i in ids]
    out: list[tuple[str, str] | None] = []
    for rec in run.records(repo):
        if isinstance(rec, FormatError) or rec.entry.kind != "attestation":
            out.append(None)
        else:
            out.append(note_line(rec.entry))
    return out


def note_line(entry: ledger.Entry) -> tuple[str, str] | None:
    """(attested commit, its one-line summary) for an attestation entry, or None when the
    entry does not parse as one. The signature is not checked."""
    payload = entry.envelope.get("payload")
    if not isinstance(payload, str):
        return None
    try:
        att = records.attestation_from_bytes(base64.b64decode(payload, validate=True))
    except (GitcoopError, ValueError, binascii.Error):
        return None
    return att.commit, line_of(entry.seq, att)


def line_of(seq: int, att: records.Attestation) -> str:
    """The notes line of the attestation at ledger ``seq``."""
    if att.delta is not None:
        delta = decimal_text(att.delta)
        change = f"{'' if delta.startswith('-') else '+'}{delta} over {_short(att.parent)}"
    elif att.parent is None:
        change = "first score"
    else:
        change = f"parent {_short(att.parent)} unscored"
    return (
        f"#{seq} {_text(att.metric)} {decimal_text(att.score)} ({change}) "
        f"{_text(att.split)}, {_text(att.signer.principal)}"
    )


# Notes lines of ledger commits that this process verified (ledger commit -> attested
# commit and line, None for an entry that is no attestation): a refresh right after
# sync need not read those entries again. A ledger commit fixes its entry and seq, so a
# remembered line cannot go stale.
_KNOWN: dict[str, tuple[str, str] | None] = {}


def remember(lines: dict[str, tuple[str, str] | None]) -> None:
    """Keep the notes lines a verification produced, for the next refresh here."""
    _KNOWN.update(lines)


def _short(commit: str | None) -> str:
    return (commit or "")[:12]


def _text(value: str) -> str:
    # Statements are unverified here: a name must not start a line of its own.
    return _UNPRINTABLE.sub("?", value)[:200] or "?"


def _seq(line: str) -> int:
    m = _LINE.match(line)
    return -1 if m is None else int(m[1])  # -1: not a line gitcoop wrote


def _path(commit: str) -> str:
    return f"{commit[:2]}/{commit[2:]}"  # fan-out, as `git notes` lays out large trees


def _content(lines: list[str]) -> bytes:
    return "".join(f"{ln}\n" for ln in lines).encode()


# --- writing ----------------------------------------------------------------------------


def _write(repo: Repo, tmp: str, when: int, tree: str | None, changes: Changes) -> str:
    """Write a notes commit (no parent) with one ``git fast-import`` through the ref
    ``tmp``; return its id."""
    cwd = repo.workdir or repo.git_dir
    # Uncompressed: a note is a line, and zlib's setup per object cost as much as the rest
    # of fast-import's work; gc packs the index like any other object later.
    args = ("-c", "pack.compression=0", "fast-import", "--quiet", "--done")
    _gitcli.feed(cwd, args, _stream(tmp, when, tree, changes), env=_FAST_IMPORT_ENV)
    new = repo.ref(tmp)
    if new is None:
        raise GitOperationError("git fast-import wrote no notes commit")
    return new


def _stream(ref: str, when: int, tree: str | None, changes: Changes) -> Iterator[bytes]:
    yield b"commit %s\ncommitter %s %d +0000\n" % (ref.encode(), _COMMITTER, when)
    yield b"data %d\n%s" % (len(_MESSAGE), _MESSAGE)
    yield b"deleteall\n" if tree is None else b'M 040000 %s ""\n' % tree.encode()
    chunk = bytearray()
    # Sorted paths: fast-import fills each subtree in one go, several times faster.
    for path in sorted(changes):
        content = changes[path]
        if content is None:
            chunk += b"D %s\n" % path.encode()
        else:
            chunk += b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(content), content)
        if len(chunk) > 1 << 16:
            yield bytes(chunk)
            chunk.clear()
    yield bytes(chunk) + b"done\n"


# --- state ------------------------------------------------------------------------------


def _read_state(local: Path) -> _State | None:
    try:
        raw = _fs.read_or_none(local / STATE_FILE)
        obj = None if raw is None else json.loads(raw)
    except (OSError, ValueError):
        return None
    if not isinstance(obj, dict):
        return None
    notes, tip = obj.get("notes"), obj.get("ledger")
    if not (notes is None or isinstance(notes, str)) or not isinstance(tip, str):
        return None
    return _State(notes, tip)


def _write_state(local: Path, state: _State) -> None:
    data = json.dumps({"notes": state.notes, "ledger": state.ledger}).encode() + b"\n"
    _fs.atomic_write(local / STATE_FILE, data, durable=False)
