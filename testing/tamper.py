"""Rewrite a ledger the way an attacker with write access to the repository could."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pygit2

from gitcoop import canonical, records
from gitcoop.keys import SigningKey

Entries = list[tuple[bytes, pygit2.Oid]]  # (entry.json bytes, pinned tree id), oldest first


def read_ledger(repo_path: Path, ref: str = "refs/coop/ledger") -> Entries:
    """The ledger's entries and pinned trees, oldest first."""
    repo = pygit2.Repository(str(repo_path))
    out: Entries = []
    commit = repo.revparse_single(ref)
    while True:
        assert isinstance(commit, pygit2.Commit)
        tree = commit.tree
        out.append((bytes(repo[tree["entry.json"].id].data), tree["challenge"].id))
        if not commit.parents:
            break
        commit = commit.parents[0]
    out.reverse()
    return out


def write_ledger(repo_path: Path, entries: Entries, ref: str = "refs/coop/ledger") -> str:
    """Replace the ledger ref with a chain built from ``entries``; returns the new head."""
    repo = pygit2.Repository(str(repo_path))
    sig = pygit2.Signature("gitcoop", "gitcoop@localhost", 0, 0)
    parent: list[pygit2.Oid] = []
    for data, pinned in entries:
        tb = repo.TreeBuilder()
        tb.insert("entry.json", repo.create_blob(data), pygit2.enums.FileMode.BLOB)
        tb.insert("challenge", pinned, pygit2.enums.FileMode.TREE)
        oid = repo.create_commit(None, sig, sig, "tampered\n", tb.write(), parent)
        parent = [oid]
    repo.references.create(ref, parent[0], force=True)
    return str(parent[0])


def rewrite(repo_path: Path, change: Callable[[Entries], Entries]) -> str:
    """Read, transform and write back the ledger."""
    return write_ledger(repo_path, change(read_ledger(repo_path)))


def edit_payload(data: bytes, edit: Callable[[dict], None]) -> bytes:
    """Change the signed statement inside an entry without re-signing it."""
    entry = json.loads(data)
    payload = json.loads(base64.b64decode(entry["envelope"]["payload"]))
    edit(payload)
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    entry["envelope"]["payload"] = base64.b64encode(raw).decode()
    return json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()


def resign_payload(data: bytes, edit: Callable[[dict], None], key: SigningKey) -> bytes:
    """Change the statement inside an entry and sign it again with ``key``: a lie told by
    someone who holds a trusted key."""
    entry = json.loads(data)
    payload = json.loads(base64.b64decode(entry["envelope"]["payload"]))
    edit(payload)
    entry["envelope"] = records.sign(payload, entry["envelope"]["payloadType"], key)
    return canonical.encode(entry)


def relinked(entries: Entries) -> Entries:
    """The chain renumbered with every ``prev`` recomputed: a rewrite that hides its seams."""
    out: Entries = []
    prev = None
    for seq, (data, pinned) in enumerate(entries):
        entry = json.loads(data)
        entry["seq"] = seq
        if seq > 0:
            entry["prev"] = prev
        raw = canonical.encode(entry)
        prev = canonical.sha256_hex(raw)
        out.append((raw, pinned))
    return out


def rewrite_tip(
    repo_path: Path, edit: Callable[[bytes], bytes], ref: str = "refs/coop/ledger"
) -> str:
    """Replace the newest entry by ``edit(its bytes)``, on the same parent: to a remote that
    has the parent, pushing it is a fast-forward."""
    repo = pygit2.Repository(str(repo_path))
    tip = repo.revparse_single(ref)
    assert isinstance(tip, pygit2.Commit)
    data = bytes(repo[tip.tree["entry.json"].id].data)
    tb = repo.TreeBuilder()
    tb.insert("entry.json", repo.create_blob(edit(data)), pygit2.enums.FileMode.BLOB)
    tb.insert("challenge", tip.tree["challenge"].id, pygit2.enums.FileMode.TREE)
    sig = pygit2.Signature("gitcoop", "gitcoop@localhost", 0, 0)
    oid = repo.create_commit(None, sig, sig, "tampered\n", tb.write(), tip.parent_ids)
    repo.references.create(ref, oid, force=True)
    return str(oid)


def append_entry(
    repo_path: Path, make: Callable[[dict], dict], ref: str = "refs/coop/ledger"
) -> str:
    """Append ``make(a copy of the newest entry, already linked after it)`` on top of the
    ledger, as a client that writes entries by hand could; returns the new head."""
    repo = pygit2.Repository(str(repo_path))
    tip = repo.revparse_single(ref)
    assert isinstance(tip, pygit2.Commit)
    data = bytes(repo[tip.tree["entry.json"].id].data)
    entry = json.loads(data)
    entry["seq"] += 1
    entry["prev"] = canonical.sha256_hex(data)
    tb = repo.TreeBuilder()
    tb.insert(
        "entry.json", repo.create_blob(canonical.encode(make(entry))), pygit2.enums.FileMode.BLOB
    )
    tb.insert("challenge", tip.tree["challenge"].id, pygit2.enums.FileMode.TREE)
    sig = pygit2.Signature("gitcoop", "gitcoop@localhost", 0, 0)
    oid = repo.create_commit(None, sig, sig, "appended by hand\n", tb.write(), [tip.id])
    repo.references.create(ref, oid, force=True)
    return str(oid)
