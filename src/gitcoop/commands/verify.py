"""Verify the ledger: chain links, signatures, subjects recomputed from the repository.

Remembers the last verified head (the pin) so later runs check only new entries; a ledger
that no longer contains the pinned head has been rewritten, which is a security error.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from gitcoop import (
    _faults,
    _forked,
    _fs,
    canonical,
    constants,
    dsse,
    ledger,
    pinned,
    records,
    rounds,
    trust,
    versions,
    vindex,
)
from gitcoop.decimals import decimal_text
from gitcoop.errors import (
    ConfigError,
    FormatError,
    GitcoopError,
    SecurityError,
    VerificationError,
    write_failed,
)
from gitcoop.git import Repo, open_repo
from gitcoop.notes import line_of
from gitcoop.workspace import local_dir

_KIND_TYPES = {
    "genesis": constants.EVENT_PAYLOAD_TYPE,
    "attestation": constants.INTOTO_PAYLOAD_TYPE,
    "trust-update": constants.EVENT_PAYLOAD_TYPE,
    "review": constants.INTOTO_PAYLOAD_TYPE,
    "challenge-update": constants.EVENT_PAYLOAD_TYPE,
    "anchor": constants.EVENT_PAYLOAD_TYPE,
    "round-close": constants.EVENT_PAYLOAD_TYPE,
}
_Proved = records.Attestation | records.Review


class Position(NamedTuple):
    """Where verification stands: the last verified entry and the rules then in force."""

    commit: str
    seq: int
    hash: str
    origin: str
    challenge: str
    pinned_tree: str

    def to_json(self) -> dict[str, object]:
        """Plain JSON form (the pin file)."""
        return dict(self._asdict())


@dataclass
class Report:
    """The result of a successful verification."""

    head: Position | None = None
    checked: int = 0
    signers: dict[str, dict[str, object]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    full: bool = False
    rows: list[vindex.Row] = field(default_factory=list)  # attestations proved, not yet saved
    # The trust lists signed entries set: those checked, and once the position is saved,
    # all of them up to it.
    trust: list[trust.TrustRow] = field(default_factory=list)
    versions: list[versions.Version] = field(default_factory=list)  # likewise
    closes: list[rounds.Close] = field(default_factory=list)  # likewise
    # When a dict: each checked entry's ledger commit -> (attested commit, its notes line),
    # or None for an entry that is no attestation; handed to the notes index.
    notes: dict[str, tuple[str, str] | None] | None = None

    def to_json(self) -> dict[str, object]:
        """The documented ``verify --json`` object."""
        h = self.head
        return {
            "ok": True,
            "full": self.full,
            "checked": self.checked,
            "entries": 0 if h is None else h.seq + 1,
            "head": None if h is None else {"seq": h.seq, "hash": h.hash, "commit": h.commit},
            "signers": [{"keyid": k, **v} for k, v in sorted(self.signers.items())],
            "warnings": self.warnings,
        }


def _fail(seq: int, what: str) -> VerificationError:
    return VerificationError(f"ledger entry #{seq} {what}")


def _check_link(rec: ledger.Record, pos: Position | None) -> None:
    e = rec.entry
    if pos is None:
        if e.seq != 0 or e.prev is not None or e.origin is not None or e.kind != "genesis":
            raise _fail(e.seq, "should be the genesis entry (seq 0, no prev, no origin)")
        return
    _check_position(rec, pos)
    if e.kind == "challenge-update":
        return  # the entry pins a new challenge: _check_challenge_update proves it
    if e.challenge != pos.challenge:
        raise _fail(e.seq, "names another challenge")
    if rec.pinned_tree != pos.pinned_tree:
        raise _fail(e.seq, "changes the pinned challenge without a challenge-update")


def _check_position(rec: ledger.Record, pos: Position) -> None:
    e = rec.entry
    if e.seq != pos.seq + 1:
        raise _fail(pos.seq + 1, f"has seq {e.seq}: an entry was removed or reordered")
    if e.kind == "genesis":
        raise _fail(e.seq, "is a second genesis entry")
    if e.prev != pos.hash:
        raise _fail(e.seq, "does not link to the entry before it (prev hash mismatch)")
    if rec.parents != (pos.commit,):
        raise _fail(e.seq, "is not a child of the entry before it")
    if e.origin != pos.origin:
        raise _fail(e.seq, "names another ledger")


def _check_snapshot(repo: Repo, rec: ledger.Record, digest: str) -> None:
    pin = pinned.load(repo, rec.pinned_tree, digest)
    files = list(repo.files(rec.pinned_tree))
    if pinned.digest(repo, pin.challenge, files) != digest or rec.entry.challenge != digest:
        raise _fail(rec.entry.seq, "pins a challenge snapshot that does not match its digest")


def _check_genesis(repo: Repo, rec: ledger.Record, obj: object, keyid: str, report: Report) -> None:
    event = records.parse_event(obj, "genesis")
    _name, digest, baseline = records.genesis_fields(event.body)
    report.trust.append(
        trust.TrustRow(rec.entry.seq, keyid, records.genesis_trust(event.body), None)
    )
    _check_snapshot(repo, rec, digest)
    report.versions.append(versions.Version(rec.entry.seq, keyid, digest, rec.pinned_tree, None, 1))
    if not repo.has_object(baseline):
        report.warnings.append(f"baseline commit {baseline[:12]} is not in this repository")


def _check_subjects(repo: Repo, atts: list[tuple[int, _Proved]], report: Report) -> None:
    """Check each attestation's (and review's) subject against the repository, in ledger
    order."""
    # Read newest first, like the entries: neighbouring commits share pack windows.
    shapes = [repo.tree_and_parents(att.commit) for _, att in reversed(atts)]
    shapes.reverse()
    for (seq, att), found in zip(atts, shapes, strict=True):
        if found is None:
            report.warnings.append(
                f"entry #{seq}: commit {att.commit[:12]} is not in this repository yet "
                "(its subject is checked when it arrives)"
            )
            report.rows.append(_row(seq, att, pending=_pending(att)))
            continue
        tree, parents = found
        if tree != att.tree:
            raise _fail(seq, f"subject digest mismatch: commit {att.commit[:12]} has another tree")
        if isinstance(att, records.Attestation) and att.parent != (parents[0] if parents else None):
            raise _fail(
                seq,
                f"names parent {str(att.parent)[:12]}, which is not the first "
                f"parent of {att.commit[:12]}",
            )
        report.rows.append(_row(seq, att))


def _row(seq: int, att: _Proved, pending: str = "") -> vindex.Row:
    s = att.signer
    return vindex.Row(
        seq,
        att.commit,
        decimal_text(att.score),
        s.keyid,
        s.principal,
        s.name,
        att.challenge,
        type(att) is records.Review,
        att.split if isinstance(att, records.Attestation) else "public",
        pending,
    )


def _pending(att: _Proved) -> str:
    """The subject of ``att`` still to check, as ``vindex.Row.pending`` keeps it."""
    if not isinstance(att, records.Attestation):
        return att.tree
    return f"{att.tree}:{att.parent or ''}"


def _arrived(repo: Repo, row: vindex.Row) -> vindex.Row | None:
    """A row whose commit was not in the clone when its entry was verified: checked now
    that it may be (None while it is still absent)."""
    found = repo.tree_and_parents(row.commit)
    if found is None:
        return None
    tree, parents = found
    want_tree, colon, want_parent = row.pending.partition(":")
    if tree != want_tree or (colon and want_parent != (parents[0] if parents else "")):
        raise VerificationError(
            f"ledger entry #{row.seq}: subject mismatch: commit {row.commit[:12]}, which "
            "arrived after the entry was verified, has another tree or first parent",
            hint="do not trust this entry; run git coop verify --full to see it named",
        )
    return row._replace(pending="")


def _checked(repo: Repo, rows: Iterator[vindex.Row]) -> Iterator[vindex.Row]:
    for row in rows:
        if row.pending:
            arrived = _arrived(repo, row)
            if arrived is None:
                continue
            row = arrived
        yield row


def _check_entry(repo: Repo, rec: ledger.Record, report: Report) -> _Proved | None:
    """Check one entry's signature and content; return its attestation or review, whose
    subject is left for ``_check_subjects``."""
    e = rec.entry
    payload_type = _KIND_TYPES.get(e.kind)
    if payload_type is None:
        raise _fail(e.seq, f"has kind {e.kind!r}, which this version cannot verify")
    payload, keyid = records.open_payload(e.envelope, e.key, payload_type)
    att: _Proved | None = None
    if e.kind == "review":
        att = records.parse_review(canonical.decode(payload))
        signer = att.signer
        _check_signer(e, signer, keyid)
        if att.challenge != e.challenge or att.origin != e.origin:
            raise _fail(e.seq, "reviews under another challenge or ledger")
    elif e.kind != "attestation":
        obj = canonical.decode(payload)
        signer = records.Signer.from_json(obj.get("signer") if isinstance(obj, dict) else None)
        _check_signer(e, signer, keyid)
        _EVENT_CHECKS[e.kind](repo, rec, obj, keyid, report)
    else:
        att = records.attestation_from_bytes(payload)
        signer = att.signer
        _check_signer(e, signer, keyid)
        if att.challenge != e.challenge or att.origin != e.origin:
            raise _fail(e.seq, "attests under another challenge or ledger")
    row = report.signers.get(keyid)
    if row is None:
        row = report.signers[keyid] = {
            "principal": signer.principal,
            "name": signer.name,
            "entries": 0,
        }
    row["entries"] = int(str(row["entries"])) + 1
    return att


def _check_trust_update(
    _repo: Repo, rec: ledger.Record, obj: object, keyid: str, report: Report
) -> None:
    e = rec.entry
    event = records.parse_event(obj, "trust-update")
    digest, origin, lines, replaces, _source = records.trust_update_fields(event.body)
    if digest != e.challenge or origin != e.origin:
        raise _fail(e.seq, "updates the trust list of another challenge or ledger")
    if replaces >= e.seq:
        raise _fail(e.seq, "replaces a trust list that is not before it")
    report.trust.append(trust.TrustRow(e.seq, keyid, lines, replaces))


def _check_challenge_update(
    repo: Repo, rec: ledger.Record, obj: object, keyid: str, report: Report
) -> None:
    e = rec.entry
    event = records.parse_event(obj, "challenge-update")
    digest, origin, replaces, number = records.challenge_update_fields(event.body)
    if origin != e.origin:
        raise _fail(e.seq, "updates the challenge of another ledger")
    if replaces >= e.seq:
        raise _fail(e.seq, "replaces a challenge version that is not before it")
    _check_snapshot(repo, rec, digest)
    report.versions.append(
        versions.Version(e.seq, keyid, digest, rec.pinned_tree, replaces, number)
    )


def _check_anchor(
    _repo: Repo, rec: ledger.Record, obj: object, _keyid: str, _report: Report
) -> None:
    # What the chain says is for verify --chain; here, that the record is whole and ours.
    e = rec.entry
    found = records.anchor_fields(records.parse_event(obj, "anchor").body)
    if found.origin != e.origin:
        raise _fail(e.seq, "anchors another ledger")
    if found.seq >= e.seq:
        raise _fail(e.seq, "anchors an entry that is not before it")


def _check_round_close(
    _repo: Repo, rec: ledger.Record, obj: object, keyid: str, report: Report
) -> None:
    # Whether the close counts (signer, time, a close before it) is for rounds.find.
    e = rec.entry
    event = records.parse_event(obj, "round-close")
    digest, origin, name, tip, result = records.round_close_fields(event.body)
    if digest != e.challenge or origin != e.origin:
        raise _fail(e.seq, "closes a round of another challenge or ledger")
    report.closes.append(rounds.Close(e.seq, keyid, digest, name, tip, result, event.time))


_EVENT_CHECKS: dict[str, Callable[[Repo, ledger.Record, object, str, Report], None]] = {
    "genesis": _check_genesis,
    "trust-update": _check_trust_update,
    "challenge-update": _check_challenge_update,
    "anchor": _check_anchor,
    "round-close": _check_round_close,
}


def _check_signer(e: ledger.Entry, signer: records.Signer, keyid: str) -> None:
    if signer.keyid != keyid:
        raise _fail(e.seq, "names a signer key other than the one that signed it")


_CHUNK = 4000  # entries per unit of parallel work, at most
_PARALLEL_MIN = 1000  # below this, starting worker processes costs more than it saves


@dataclass
class _Chunk:
    """What one run of consecutive entries proved, for stitching runs together in order."""

    first: ledger.Record | None = None
    last: Position | None = None
    report: Report = field(default_factory=Report)
    error: str | None = None
    rows: str = ""  # the proved attestations as index lines (a worker's: in a file)


def position(rec: ledger.Record) -> Position:
    """Where verification stands once ``rec`` is checked."""
    e, h = rec.entry, ledger.entry_hash(rec.data)
    return Position(rec.commit, e.seq, h, e.origin or h, e.challenge, rec.pinned_tree)


def _check_one(repo: Repo, rec: ledger.Record, report: Report) -> _Proved | None:
    try:
        return _check_entry(repo, rec, report)
    except FormatError as exc:
        raise _fail(rec.entry.seq, f"is malformed: {exc.message}") from None
    except VerificationError as exc:
        if exc.message.startswith("ledger entry"):
            raise
        raise _fail(rec.entry.seq, exc.message) from None


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    # A run allocates tens of thousands of short-lived, acyclic objects: reference counts
    # free them all, and the cycle collector only spends time (5% of a full verify) looking.
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _check_run(repo: Repo, segment: ledger.Segment, first_seq: int, notes: bool) -> _Chunk:
    """Check a run of consecutive entries; links inside the run, not into it. With
    ``notes``, the run's report also holds the notes lines of what it proved."""
    with _collector_paused():
        return _check_run_unpaused(repo, segment, first_seq, notes)


def _check_run_unpaused(repo: Repo, segment: ledger.Segment, first_seq: int, notes: bool) -> _Chunk:
    out = _Chunk()
    pos: Position | None = None
    atts: list[tuple[int, _Proved]] = []
    kinds: list[tuple[str, bool]] = []  # (ledger commit, an attestation?), for notes
    error: VerificationError | None = None
    try:
        for i, rec in enumerate(segment.records(repo)):
            if isinstance(rec, FormatError):
                raise _fail(first_seq + i, f"is malformed: {rec.message}")
            if i == 0:
                out.first = rec
            else:
                _check_link(rec, pos)
            att = _check_one(repo, rec, out.report)
            if att is not None:
                atts.append((rec.entry.seq, att))
            if notes:
                kinds.append((rec.commit, type(att) is records.Attestation))
            pos = position(rec)
            out.report.checked += 1
    except VerificationError as exc:
        error = exc
    try:
        # Only entries before the first failure are here, so a bad subject comes first.
        _check_subjects(repo, atts, out.report)
    except VerificationError as exc:
        error = exc
    out.error = None if error is None else error.message
    out.last = pos
    if notes and error is None:
        out.report.notes = _notes_lines(kinds, atts)
    return out


def _notes_lines(
    kinds: list[tuple[str, bool]], atts: list[tuple[int, _Proved]]
) -> dict[str, tuple[str, str] | None]:
    proved = ((seq, a) for seq, a in atts if type(a) is records.Attestation)
    out: dict[str, tuple[str, str] | None] = {}
    for commit, attested in kinds:
        if attested:
            seq, att = next(proved)
            out[commit] = (att.commit, line_of(seq, att))
        else:
            out[commit] = None
    return out


def _lines(rows: list[vindex.Row]) -> str:
    return "".join(r.line() for r in rows)


def _sequential(
    repo: Repo, tip: str, stop: str | None, first_seq: int, notes: bool
) -> Iterator[_Chunk]:
    # One walk first, its ids kept (40 bytes an entry), then the runs oldest first.
    runs = list(ledger.walk_runs(repo, tip, stop, _CHUNK))
    for seg in reversed(runs):
        run = _check_run(repo, seg, first_seq, notes)
        first_seq += seg.length
        run.rows = _lines(run.report.rows)
        run.report.rows = []
        yield run


def _worker(args: tuple[str, ledger.Segment, int, str, bool]) -> _Chunk:
    path, segment, first_seq, rows_file, notes = args
    run = _check_run(open_repo(path), segment, first_seq, notes)
    try:
        Path(rows_file).write_text(_lines(run.report.rows), encoding="utf-8")
    except OSError as exc:
        raise write_failed(exc, rows_file) from exc
    run.report.rows = []
    return run


class _Miscount(Exception):
    """The walk found another number of entries than the tip's entry claims."""


def _parallel(
    repo: Repo,
    tip: str,
    stop: str | None,
    first_seq: int,
    expected: int,
    cores: int,
    notes: bool,
) -> Iterator[_Chunk]:
    """Check the runs in forked workers while the chain is still being walked; yield
    them oldest first, each with its rows, once all are in.

    The walk goes newest first, so the runs are numbered from the count the tip's entry
    claims; raises _Miscount (before yielding anything) when the walk finds another count,
    for the sequential pass to name the problem. Workers write their rows to files, read
    back one at a time: no process holds the rows of the whole ledger. At most one run per
    core waits in memory for a worker.
    """
    import tempfile

    dsse.preload()  # once here, not once in every worker
    with (
        tempfile.TemporaryDirectory(dir=local_dir(repo), prefix="verify-") as tmp,
        _forked.Pool[_Chunk](Path(tmp), cores) as pool,
    ):
        walked, jobs = 0, 0
        # Short ranges are cut so that every core gets a share.
        size = min(_CHUNK, -(-expected // cores))
        for seg in ledger.walk_runs(repo, tip, stop, size):
            walked += seg.length
            start = first_seq + expected - walked
            job = (str(repo.common_dir), seg, start, f"{tmp}/{jobs}.rows", notes)
            jobs = pool.start(functools.partial(_worker, job)) + 1
        if walked != expected:
            raise _Miscount
        for number in reversed(range(jobs)):
            run = pool.result(number)
            if run.error is None:
                rows = Path(f"{tmp}/{number}.rows")
                run.rows = rows.read_text(encoding="utf-8")
                rows.unlink()
            yield run
            if run.error is not None:
                return


def _expected(repo: Repo, tip: str, first_seq: int) -> int:
    """How many entries the tip's entry says follow ``first_seq`` (a hint, checked later)."""
    try:
        return ledger.read_record(repo, tip).entry.seq - first_seq + 1
    except FormatError:
        return 0


def verify_range(
    repo: Repo,
    tip: str,
    start: Position | None,
    report: Report,
    sink: Callable[[str], None] | None = None,
) -> Position | None:
    """Check every entry after ``start`` up to ``tip``; return the new position.

    Long ranges are checked in parallel runs on every available core and stitched in
    order; each run's proved attestations go to ``sink`` (as index lines) once it is
    linked. When ``report.notes`` is a dict, it gathers the notes lines of every entry
    checked. Raises VerificationError naming the first bad entry.
    """
    first_seq = 0 if start is None else start.seq + 1
    stop = None if start is None else start.commit
    cores = len(os.sched_getaffinity(0))
    expected = _expected(repo, tip, first_seq)
    notes = report.notes is not None
    if cores >= 2 and expected >= _PARALLEL_MIN:
        try:
            return _stitch(
                _parallel(repo, tip, stop, first_seq, expected, cores, notes),
                start,
                report,
                sink,
            )
        except _Miscount:
            pass  # raised before any run was stitched: nothing to undo
    return _stitch(_sequential(repo, tip, stop, first_seq, notes), start, report, sink)


def _stitch(
    runs: Iterable[_Chunk],
    start: Position | None,
    report: Report,
    sink: Callable[[str], None] | None,
) -> Position | None:
    """Link the runs in order, raising the first failure; hand each run's rows to ``sink``."""
    pos = start
    for run in runs:
        if run.first is not None:
            _check_link(run.first, pos)
        if run.error is not None:
            raise VerificationError(run.error)
        if sink is not None:
            sink(run.rows)
        _merge(report, run.report)
        pos = run.last or pos
    return pos


def _merge(into: Report, part: Report) -> None:
    into.checked += part.checked
    into.warnings += part.warnings
    into.trust += part.trust
    into.versions += part.versions
    into.closes += part.closes
    if into.notes is not None and part.notes is not None:
        into.notes.update(part.notes)
    for keyid, row in part.signers.items():
        mine = into.signers.setdefault(keyid, {**row, "entries": 0})
        mine["entries"] = int(str(mine["entries"])) + int(str(row["entries"]))


def advance(repo: Repo, tip: str, start: Position | None, report: Report) -> Position | None:
    """Verify from ``start`` to ``tip``, then save what was proved: the attestation index
    first, the pin (with the rules in force) last, so a crash in between only costs a full
    verify next time."""
    path = local_dir(repo) / vindex.FILE
    prior = Rules([], [], [])
    if start is not None:
        saved = rules_upto(repo, start)
        if saved is None or not vindex.ends_at(path, start.seq, start.hash):
            start, report.full = None, True  # the index or rules are not at the pin: rebuild
        else:
            prior = saved
    writer = vindex.Writer(path, append=start is not None)
    try:
        pos = verify_range(repo, tip, start, report, writer.write)
        settle(prior, report)
    except BaseException:
        writer.abort()
        raise
    if pos is None:
        writer.abort()
        return None
    seal(repo, writer, pos, report)
    return pos


def seal(repo: Repo, writer: vindex.Writer, pos: Position, report: Report) -> None:
    """Save what a verification up to ``pos`` proved: seal the attestation index, then
    move the pin (with the rules in force). A crash in between leaves an index the pin does
    not name, which the next verify rebuilds."""
    writer.finish(pos.seq, pos.hash)
    _faults.hit("verify", "before-pin")
    try:
        write_pin(repo, pos, Rules(report.trust, report.versions, report.closes))
    except OSError:
        if read_pin(repo) != pos:  # (a failed directory fsync comes after the rename)
            writer.undo()  # the index back where the pin still is: no full rebuild next time
        raise


class Rules(NamedTuple):
    """The trust lists, challenge versions and round closes a ledger set, up to some
    entry."""

    trust: list[trust.TrustRow]
    versions: list[versions.Version]
    closes: list[rounds.Close]


def settle(prior: Rules, report: Report) -> None:
    """Check the challenge versions a verification found against ``prior`` (the rules up to
    where it started), then put ``prior`` in front of what the report found. Raises
    VerificationError for an update that does not count."""
    timeline = trust.Timeline([*prior.trust, *report.trust])
    versions.settle(prior.versions, report.versions, timeline)
    report.trust[:0] = prior.trust
    report.versions[:0] = prior.versions
    report.closes[:0] = prior.closes


def verified_rows(repo: Repo, pos: Position) -> Iterator[vindex.Row]:
    """The attestations ``verify`` proved up to ``pos``; raises VerificationError when the
    index does not match (run ``git coop verify --full``)."""
    rows = vindex.read(local_dir(repo) / vindex.FILE, pos.seq, pos.hash)
    if rows is None:
        raise VerificationError(
            "the verified-attestation index is missing or stale", hint="run: git coop verify --full"
        )
    # An attestation whose commit came after its entry counts once the commit is here and
    # is the one it names: credit does not depend on which arrived first.
    return _checked(repo, rows)


def _pin_path(repo: Repo) -> Path:
    return local_dir(repo) / "verified.json"


def _read_pin_file(repo: Repo) -> tuple[Position, Rules | None] | None:
    raw = _fs.read_or_none(_pin_path(repo))
    try:
        obj = json.loads(raw) if raw else None
        if not isinstance(obj, dict):
            return None
        rows = trust.loads(obj.pop("trust", None))
        pinned_versions = versions.loads(obj.pop("versions", None))
        # A pin written before rounds could be closed has no closes to keep.
        closes = rounds.loads(obj.pop("closes", []))
        rules = (
            None
            if rows is None or pinned_versions is None or closes is None
            else Rules(rows, pinned_versions, closes)
        )
        return Position(**obj), rules
    except (ValueError, TypeError):
        return None


def read_pin(repo: Repo) -> Position | None:
    """The last verified position, or None."""
    got = _read_pin_file(repo)
    return None if got is None else got[0]


def rules_upto(repo: Repo, pos: Position) -> Rules | None:
    """The rules the ledger set up to ``pos``, from those saved with the pin; ``pos`` must
    be the pin or an entry below it on its chain. None when the pin holds no rules."""
    got = _read_pin_file(repo)
    if got is None or got[1] is None or got[0].seq < pos.seq:
        return None
    rules = got[1]
    return Rules(
        [r for r in rules.trust if r.seq <= pos.seq],
        [v for v in rules.versions if v.seq <= pos.seq],
        [c for c in rules.closes if c.seq <= pos.seq],
    )


def write_pin(repo: Repo, pos: Position, rules: Rules) -> None:
    """Remember ``pos`` as verified, with the rules set up to it (atomic write)."""
    obj = {
        **pos.to_json(),
        "trust": trust.dumps(rules.trust),
        "versions": versions.dumps(rules.versions),
        "closes": rounds.dumps(rules.closes),
    }
    _fs.atomic_write(_pin_path(repo), json.dumps(obj).encode())


def clear_pin(repo: Repo) -> None:
    """Forget the verified position: the next verify checks the whole ledger."""
    try:
        _pin_path(repo).unlink(missing_ok=True)
    except OSError as exc:
        raise write_failed(exc, _pin_path(repo), after=_fs.KEPT) from exc
    _fs.fsync_dir(_pin_path(repo).parent)


def _rewritten(repo: Repo, tip: str, pin: Position) -> SecurityError:
    detail = ""
    try:
        verify_range(repo, tip, None, Report())
    except VerificationError as exc:
        detail = f"; first bad entry: {exc.message.removeprefix('ledger entry ')}"
    now = ledger.head(repo)
    seq = "?" if now is None else now.entry.seq
    return SecurityError(
        f"the ledger was rewritten: verified entry #{pin.seq} (sha256 {pin.hash[:16]}, "
        f"commit {pin.commit[:12]}) is no longer in {constants.LEDGER_REF}, now at "
        f"#{seq} (commit {tip[:12]}){detail}",
        hint="do not trust this ledger; compare with another clone",
    )


def verify(path: str | Path = ".", *, full: bool = False) -> Report:
    """Verify the repository's ledger, incrementally from the pin unless ``full``.

    Raises VerificationError (exit 1), SecurityError (exit 3) or ConfigError.
    """
    repo = open_repo(path)
    tip = repo.ref(constants.LEDGER_REF)
    if tip is None:
        from gitcoop.session import fetch_first

        tip = None if (got := fetch_first(repo)) is None else got.commit
    report = Report(full=full)
    if tip is None:
        raise ConfigError(
            "this repository has no gitcoop ledger",
            hint="run: git coop init (or git coop sync REMOTE in a clone)",
        )
    pin = read_pin(repo)
    if pin is None and _pin_path(repo).exists():
        report.warnings.append(
            f"{_pin_path(repo)} was unreadable: checked from the genesis entry, so a rewrite "
            "made before this run could not be told from the history this clone verified"
        )
    start = None if full else pin
    if start is not None and not lands_on(repo, tip, start):
        try:  # the exact walk, which also says when the chain branches
            ledger.chain(repo, tip, start.commit)
        except GitcoopError:
            raise _rewritten(repo, tip, start) from None
    if pin is not None and full and not extends(repo, tip, pin):
        verify_range(repo, tip, None, Report())  # a bad entry is named before the rewrite
        raise _rewritten(repo, tip, pin)
    report.head = advance(repo, tip, start, report) or start
    _trust_summary(report)
    return report


def _trust_summary(report: Report) -> None:
    """Name each signer's roles in the trust list in force, and warn about what a trust
    list makes not count among the entries checked now."""
    timeline = trust.Timeline(report.trust)
    first = -1 if report.head is None else report.head.seq - report.checked + 1
    for row, why in timeline.ignored:
        if row.seq >= first:
            report.warnings.append(f"trust update #{row.seq} does not count: {why}")
    names = timeline.names()
    unknown = 0
    for keyid, info in report.signers.items():
        member = names.get(keyid)
        info["roles"] = [] if member is None else sorted(member.roles)
        unknown += 0 if member else int(str(info["entries"]))
    if unknown:
        report.warnings.append(
            f"{unknown} of the entries checked are signed by keys the trust list in force "
            "does not name: they earn no credit (a maintainer accepts a key with "
            "git coop join --accept)"
        )


def extends(repo: Repo, tip: str, pin: Position) -> bool:
    """Whether the chain ending at ``tip`` holds the entry ``pin`` names."""
    if not repo.has_object(pin.commit):
        return False
    return lands_on(repo, tip, pin) or repo.is_ancestor(pin.commit, tip)


def lands_on(repo: Repo, tip: str, pin: Position) -> bool:
    """Whether walking down from ``tip`` as many entries as the seqs of ``tip`` and ``pin``
    differ lands on ``pin``: proof that the chain holds it, at the cost of the entries in
    between (libgit2's general ancestry test walks the whole ledger). False proves
    nothing: the tip's seq is only a claim until verified."""
    key = (tip, pin.commit, pin.seq)
    if key in _LANDED:
        return True
    try:
        steps = ledger.read_record(repo, tip).entry.seq - pin.seq
        landed = steps >= 0 and repo.first_parents(tip, None, steps)[1] == pin.commit
    except GitcoopError:
        return False
    if landed:
        _LANDED.add(key)
    return landed


# Walks that landed, as (tip, pin commit, pin seq). A commit id fixes its whole history,
# so what a walk proved once holds in every repository and for good; a sync asks the same
# question up to three times (pin check, fork point, remote pin).
_LANDED: set[tuple[str, str, int]] = set()
