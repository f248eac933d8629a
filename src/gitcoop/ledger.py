"""The ledger: a linear chain of entries on refs/coop/ledger, one git commit per entry.

Each commit's tree holds ``entry.json`` (the entry's canonical bytes) and ``challenge/``
(the evaluator snapshot in force). ``prev`` is the SHA-256 of the previous entry's bytes,
so the chain is checkable without trusting git's SHA-1 object ids.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from gitcoop import _faults, canonical, constants
from gitcoop.errors import FormatError, GitOperationError, LedgerConflict, VerificationError
from gitcoop.git import Repo

KINDS = (
    "genesis",
    "attestation",
    "challenge-update",
    "trust-update",
    "anchor",
    "review",
    "round-close",
)
_FIELDS = {"version", "seq", "prev", "kind", "challenge", "origin", "key", "envelope"}
_PATIENCE = 10.0  # seconds a writer keeps retrying a lost compare-and-swap


class Entry(NamedTuple):
    """One ledger entry. ``envelope`` is the DSSE envelope JSON; ``key`` the signer's key."""

    seq: int
    prev: str | None
    kind: str
    challenge: str
    origin: str | None
    key: str
    envelope: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """Return the entry as a plain JSON object."""
        return {
            "version": constants.ENTRY_VERSION,
            "seq": self.seq,
            "prev": self.prev,
            "kind": self.kind,
            "challenge": self.challenge,
            "origin": self.origin,
            "key": self.key,
            "envelope": self.envelope,
        }

    def payload(self) -> Any:
        """The envelope's payload, decoded but not verified: for reading entries a
        verification has already proved. Raises GitcoopError, KeyError or ValueError."""
        return canonical.decode(base64.b64decode(self.envelope["payload"]))

    def to_bytes(self) -> bytes:
        """Return the entry's canonical bytes (what ``prev`` of the next entry hashes)."""
        return canonical.encode(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes) -> Entry:
        """Parse canonical entry bytes; raises FormatError naming what is wrong."""
        return _usual_entry(data) or cls.parse(data)

    @classmethod
    def parse(cls, data: bytes) -> Entry:
        """``from_bytes`` the general way, for any canonical form."""
        obj = canonical.decode(data)
        if not isinstance(obj, dict) or set(obj) != _FIELDS:
            got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
            raise FormatError(f"entry fields are {got}, expected {sorted(_FIELDS)}")
        # type() is, not isinstance: JSON true is a bool, which Python counts as the int 1.
        version, seq = obj["version"], obj["seq"]
        _check(type(version) is int and version == constants.ENTRY_VERSION, "unsupported version")
        _check(type(seq) is int and seq >= 0, "seq is not a count")
        _check(obj["kind"] in KINDS, f"unknown entry kind {obj['kind']!r}")
        _check(_is_hex(obj["prev"]) or obj["prev"] is None, "prev is not a sha256 digest")
        _check(_is_hex(obj["origin"]) or obj["origin"] is None, "origin is not a sha256 digest")
        _check(
            isinstance(obj["challenge"], str) and obj["challenge"].startswith("sha256:"),
            "challenge is not a sha256 digest",
        )
        _check(
            isinstance(obj["key"], str) and isinstance(obj["envelope"], dict),
            "key or envelope has the wrong type",
        )
        return cls(
            obj["seq"],
            obj["prev"],
            obj["kind"],
            obj["challenge"],
            obj["origin"],
            obj["key"],
            obj["envelope"],
        )


# The canonical bytes of an entry as gitcoop writes it (one signature, ASCII text, no
# escapes), matched in one pass: verify reads one entry per signature check, and parsing
# plus re-encoding to prove canonical form would cost a third as much as the check itself.
# Anything else takes the general path, which accepts or names the problem.
_TEXT = r"[\x20\x21\x23-\x5b\x5d-\x7e]*"
_B64 = r"[A-Za-z0-9+/]*={0,2}"
_USUAL = re.compile(
    r'\{"challenge":"(?P<challenge>sha256:[0-9a-f]{64})",'
    r'"envelope":\{"payload":"(?P<payload>' + _B64 + r')",'
    r'"payloadType":"(?P<type>' + _TEXT + r')",'
    r'"signatures":\[\{"keyid":"(?P<keyid>' + _TEXT + r')","sig":"(?P<sig>' + _B64 + r')"\}\]\},'
    r'"key":"(?P<key>' + _TEXT + r')","kind":"(?P<kind>[a-z-]{1,32})",'
    r'"origin":(?:null|"(?P<origin>[0-9a-f]{64})"),"prev":(?:null|"(?P<prev>[0-9a-f]{64})"),'
    r'"seq":(?P<seq>0|[1-9][0-9]{0,14}),"version":' + str(constants.ENTRY_VERSION) + r"\}"
)


def _usual_entry(data: bytes) -> Entry | None:
    """The entry when the bytes are one as gitcoop writes it; None sends them the general
    way."""
    if len(data) > canonical.DEFAULT_MAX_BYTES:
        return None  # the general way refuses it, naming the limit
    m = _USUAL.fullmatch(data.decode("ascii")) if data.isascii() else None
    if m is None:
        return None
    challenge, payload, ptype, keyid, sig, key, kind, origin, prev, seq = m.groups()
    if kind not in KINDS:
        return None
    envelope = {
        "payload": payload,
        "payloadType": ptype,
        "signatures": [{"keyid": keyid, "sig": sig}],
    }
    return Entry(int(seq), prev, kind, challenge, origin, key, envelope)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise FormatError(message)


_HEX64 = re.compile(r"[0-9a-f]{64}")


def _is_hex(value: object) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def entry_hash(data: bytes) -> str:
    """SHA-256 hex of an entry's canonical bytes."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Head:
    """The ledger's newest entry and where it lives."""

    commit: str
    entry: Entry
    hash: str
    pinned_tree: str

    @property
    def origin(self) -> str:
        """The genesis hash that names this ledger."""
        return self.entry.origin or self.hash


class Record(NamedTuple):
    """An entry read back from the chain, with its commit and its exact bytes."""

    commit: str
    entry: Entry
    data: bytes
    pinned_tree: str
    parents: tuple[str, ...]


def read_record(repo: Repo, commit: str) -> Record:
    """Read one ledger commit; raises FormatError when its shape is not an entry's."""
    try:
        data, pinned, parents = repo.entry_commit(
            commit, (constants.ENTRY_FILE, constants.PINNED_TREE)
        )
    except GitOperationError as exc:
        raise FormatError(exc.message) from None
    return Record(commit, Entry.from_bytes(data), data, pinned, parents)


def head(repo: Repo, ref: str = constants.LEDGER_REF) -> Head | None:
    """Return the ledger head, or None when there is no ledger yet."""
    commit = repo.ref(ref)
    return None if commit is None else head_at(repo, commit)


def head_at(repo: Repo, commit: str) -> Head:
    """The entry at ``commit`` as a head to append to; raises FormatError."""
    rec = read_record(repo, commit)
    return Head(commit, rec.entry, entry_hash(rec.data), rec.pinned_tree)


def chain(repo: Repo, tip: str, stop: str | None = None) -> list[str]:
    """Ledger commits from just after ``stop`` (or genesis) to ``tip``, oldest first.

    Raises VerificationError when the chain branches or never reaches ``stop``.
    """
    out: list[str] = []
    oid: str | None = tip
    while oid is not None and oid != stop:
        out.append(oid)
        parents = repo.parent_ids(oid)
        if len(parents) > 1:
            raise VerificationError(f"ledger commit {oid[:12]} has {len(parents)} parents")
        oid = parents[0] if parents else None
    if stop is not None and oid != stop:
        raise VerificationError(f"ledger does not contain commit {stop[:12]}")
    out.reverse()
    return out


@dataclass(frozen=True)
class Segment:
    """A run of consecutive ledger commits as a walk found them: the raw ids of each
    commit and its tree (40 bytes a commit, newest first), and the commit the oldest one
    follows (None at genesis)."""

    pairs: bytes
    before: str | None

    @property
    def length(self) -> int:
        """How many entries the run holds."""
        return len(self.pairs) // 40

    def records(self, repo: Repo) -> list[Record | FormatError]:
        """The run's entries, oldest first; an unreadable one is the error that says why."""
        out: list[Record | FormatError] = []
        names = (constants.ENTRY_FILE, constants.PINNED_TREE)
        for item in repo.entry_run(self.pairs, self.before, names):
            if isinstance(item, GitOperationError):
                out.append(FormatError(item.message))
                continue
            commit, data, pinned, parents = item
            try:
                out.append(Record(commit, Entry.from_bytes(data), data, pinned, parents))
            except FormatError as exc:
                out.append(exc)
        return out


def genesis(repo: Repo, tip: str) -> Record:
    """The first entry of the chain ending at ``tip``, found by a walk over commits alone
    (no entry is read on the way). Raises VerificationError when the chain branches."""
    try:
        pairs, _, branching = repo.first_parents(tip, None)
    except GitOperationError as exc:
        raise VerificationError(exc.message) from None
    if branching is not None:
        raise VerificationError(f"ledger commit {branching[:12]} has more than one parent")
    return read_record(repo, pairs[-40:-20].hex())


def walk_runs(repo: Repo, tip: str, stop: str | None, size: int) -> Iterator[Segment]:
    """The chain after ``stop`` up to ``tip`` in runs of ``size``, newest first, each as
    soon as it is walked; 40 bytes an entry, and no entry held twice.

    Raises VerificationError when the chain branches, misses a commit, or never reaches
    ``stop``.
    """
    cursor: str | None = tip
    while cursor is not None and cursor != stop:
        try:
            pairs, cursor, branching = repo.first_parents(cursor, stop, size)
        except GitOperationError as exc:
            raise VerificationError(exc.message) from None
        if branching is not None:
            raise VerificationError(f"ledger commit {branching[:12]} has more than one parent")
        yield Segment(bytes(pairs), cursor)
    if stop is not None and cursor != stop:
        raise VerificationError(f"ledger does not contain commit {stop[:12]}")


def records(repo: Repo, tip: str, stop: str | None = None) -> Iterator[Record]:
    """Read the entries after ``stop`` up to ``tip``, oldest first."""
    for commit in chain(repo, tip, stop):
        yield read_record(repo, commit)


def _commit_entry(repo: Repo, entry: Entry, pinned_tree: str, parent: str | None) -> str:
    blob = repo.write_blob(entry.to_bytes())
    tree = repo.write_flat_tree(
        {constants.ENTRY_FILE: (blob, False), constants.PINNED_TREE: (pinned_tree, True)}
    )
    message = f"coop: {entry.kind} #{entry.seq}\n"
    return repo.write_commit(tree, [parent] if parent else [], message)


def create_genesis(repo: Repo, entry: Entry, pinned_tree: str) -> Head:
    """Write the first entry; raises LedgerConflict when a ledger already exists."""
    commit = _commit_entry(repo, entry, pinned_tree, None)
    repo.cas_ref(constants.LEDGER_REF, commit, None, "coop: genesis")
    return Head(commit, entry, entry_hash(entry.to_bytes()), pinned_tree)


def link(entry: Entry, after: Head) -> Entry:
    """Return ``entry`` positioned right after ``after`` (its content untouched). Every
    entry names the challenge in force, except a challenge-update, which names its own."""
    return entry._replace(
        seq=after.entry.seq + 1,
        prev=after.hash,
        origin=after.origin,
        challenge=entry.challenge if entry.kind == "challenge-update" else after.entry.challenge,
    )


def stack(repo: Repo, after: Head, entries: list[tuple[Entry, str]]) -> Head:
    """Write ``entries`` (each with its pinned tree, which only a challenge-update changes)
    as commits on top of ``after``, each re-linked, content untouched, without moving any
    ref; return the new head. The caller moves the ref once."""
    head = after
    for e, own_tree in entries:
        entry = link(e, head)
        tree = own_tree if e.kind == "challenge-update" else head.pinned_tree
        commit = _commit_entry(repo, entry, tree, head.commit)
        head = Head(commit, entry, entry_hash(entry.to_bytes()), tree)
    return head


def append(
    repo: Repo,
    kind: str,
    key: str,
    envelope: dict[str, Any],
    *,
    pinned_tree: str | None = None,
    challenge: str = "",
    after: Head | None = None,
) -> Head:
    """Append one entry with a compare-and-swap ref update, re-linking on races.

    ``after`` is the head the caller believes current (the previous append's result):
    right, it saves reading the head back; wrong, the swap fails and the entry is re-linked.
    Raises LedgerConflict when the ref stays contended (or locked) too long, and
    GitOperationError when there is no ledger.
    """
    deadline = time.monotonic() + _PATIENCE
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        current = after if attempt == 1 and after is not None else head(repo)
        if current is None:
            raise GitOperationError("there is no ledger to append to", hint="run: git coop init")
        entry = link(Entry(0, None, kind, challenge, None, key, envelope), current)
        tree = pinned_tree or current.pinned_tree
        commit = _commit_entry(repo, entry, tree, current.commit)
        _faults.hit("append", "before-ref")  # objects written, unreachable: the old head
        try:
            repo.cas_ref(constants.LEDGER_REF, commit, current.commit, f"coop: {kind}")
        except LedgerConflict:
            import random  # only on a lost race: the idle pre-push hook never loads it

            time.sleep(random.uniform(0, min(0.05, 0.002 * attempt)))  # noqa: S311 - jitter
            continue
        _faults.hit("append", "after-ref")  # the new head, nothing derived from it yet
        return Head(commit, entry, entry_hash(entry.to_bytes()), tree)
    lock = repo.common_dir / (constants.LEDGER_REF + ".lock")
    raise LedgerConflict(
        f"could not update {constants.LEDGER_REF} for {_PATIENCE:.0f}s; nothing was changed",
        hint=f"if no other git or gitcoop process is running, remove {lock}"
        if lock.exists()
        else "another process keeps writing it; try again",
    )
