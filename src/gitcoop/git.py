"""The pygit2 boundary: objects, refs and history walks. pygit2 quirks stay in here."""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pygit2

from gitcoop import _faults
from gitcoop.errors import (
    ConfigError,
    GitcoopError,
    GitOperationError,
    LedgerConflict,
    NotARepository,
    disk_error_code,
    write_failed,
)

ZERO = "0" * 40

# gitcoop reads most objects once (a ledger walk, a history walk), so libgit2's object cache
# only costs: filling and evicting it made each commit lookup of a walk take twice as long.
# The default pack windows (1 GiB each, 8 GiB in all) keep whole packs resident; bounded,
# a million-entry verify stays near 200 MB per process.
pygit2.settings.enable_caching(False)
pygit2.settings.mwindow_size = 16 * 1024 * 1024
pygit2.settings.mwindow_mapped_limit = 48 * 1024 * 1024
_HEX = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_BLOB = pygit2.enums.FileMode.BLOB
_EXEC = pygit2.enums.FileMode.BLOB_EXECUTABLE
_TREE_TYPE = int(pygit2.enums.ObjectType.TREE)
_BLOB_TYPE = int(pygit2.enums.ObjectType.BLOB)
_NOTHING_MOVED = "no ref moved"


@dataclass(frozen=True)
class CommitInfo:
    """What gitcoop needs to know of a commit."""

    id: str
    tree: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    time: int


@dataclass(frozen=True)
class FileEntry:
    """A regular file in a tree: path, blob id and whether it is executable."""

    path: str
    blob: str
    executable: bool


class Repo:
    """A repository opened through pygit2."""

    def __init__(self, repo: pygit2.Repository) -> None:
        self._repo = repo
        self._trees: dict[str, pygit2.Tree] = {}

    @property
    def workdir(self) -> Path | None:
        """The work tree root, or None for a bare repository."""
        wd = self._repo.workdir
        return Path(wd) if wd else None

    @property
    def git_dir(self) -> Path:
        """The repository's git directory (per worktree)."""
        return Path(self._repo.path)

    @property
    def common_dir(self) -> Path:
        """The directory shared by all worktrees (where refs and objects live)."""
        gitdir = self.git_dir
        marker = gitdir / "commondir"
        if marker.exists():
            return (gitdir / marker.read_text().strip()).resolve()
        return gitdir

    def config_get(self, name: str) -> str | None:
        """Return a git config value, or None when unset."""
        try:
            return str(self._repo.config[name])
        except KeyError:
            return None

    def head_commit(self) -> str:
        """Return HEAD's commit id; raises ConfigError when the repository has no commits."""
        if self._repo.head_is_unborn:
            raise ConfigError("this repository has no commits yet", hint="commit your code first")
        return str(self._repo.head.target)

    def resolve(self, rev: str) -> str:
        """Return the full commit id a revision names; raises ConfigError when unknown."""
        try:
            obj = self._repo.revparse_single(rev)
            commit = obj.peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            raise ConfigError(
                f"unknown revision {rev!r}", hint="name a commit, branch or tag"
            ) from None
        return str(commit.id)

    def resolve_many(self, rev: str) -> list[str]:
        """Commits a revision or an ``A..B`` range names, parents first.

        Raises ConfigError when a side of it is unknown.
        """
        if ".." not in rev or "..." in rev:
            return [self.resolve(rev)]
        left, right = rev.split("..", 1)
        tip = self.resolve(right or "HEAD")
        return self.new_commits(tip, [self.resolve(left or "HEAD")])

    def has_object(self, oid: str) -> bool:
        """Whether the object exists locally."""
        return bool(_HEX.fullmatch(oid)) and _oid(oid) in self._repo

    def entry_commit(self, oid: str, names: tuple[str, str]) -> tuple[bytes, str, tuple[str, ...]]:
        """Read a ledger commit in one pass: (blob ``names[0]``, tree ``names[1]``, parents).

        Raises GitOperationError when the commit's tree holds anything else.
        """
        c = self._commit(oid)
        parents = tuple(str(p) for p in c.parent_ids)
        # Verify reads one of these per entry: the usual tree is matched raw, byte for
        # byte, because Tree and TreeEntry objects cost more than the reads themselves.
        pattern, blob_group, tree_group = _flat_tree(*names)
        raw = self._raw(c.tree_id, _TREE_TYPE)
        m = None if raw is None else pattern.fullmatch(raw)
        data = None if m is None else self._raw(pygit2.Oid(raw=m[blob_group]), _BLOB_TYPE)
        if m is not None and data is not None:
            return data, m[tree_group].hex(), parents
        data, sub = self._entry_commit_slow(c, oid, names)
        return data, sub, parents

    def _entry_commit_slow(
        self, c: pygit2.Commit, oid: str, names: tuple[str, str]
    ) -> tuple[bytes, str]:
        try:
            tree = c.tree
            if len(tree) != 2:
                raise GitOperationError(
                    f"ledger commit {oid[:12]} holds {len(tree)} entries, not 2"
                )
            blob, sub = tree[names[0]], tree[names[1]]
            if blob.type_str != "blob" or sub.type_str != "tree":
                raise GitOperationError(f"ledger commit {oid[:12]} has entries of the wrong type")
            data = bytes(cast(pygit2.Blob, self._repo[blob.id]).data)
        except (KeyError, pygit2.GitError):
            raise GitOperationError(f"ledger commit {oid[:12]} lacks {names}") from None
        return data, str(sub.id)

    def tree_and_parents(self, oid: str) -> tuple[str, tuple[str, ...]] | None:
        """A commit's tree and parents (one lookup), or None when it is not here."""
        try:
            obj = self._repo[_oid(oid)]
        except (KeyError, ValueError):
            return None
        if obj.type_str != "commit":  # a string compare: ``type`` builds an enum per call
            return None
        c = cast(pygit2.Commit, obj)
        return str(c.tree_id), tuple(str(p) for p in c.parent_ids)

    def commit(self, oid: str) -> CommitInfo:
        """Return a commit's metadata; raises GitOperationError when it is missing."""
        c = self._commit(oid)
        return CommitInfo(
            str(c.id),
            str(c.tree_id),
            tuple(str(p) for p in c.parent_ids),
            c.author.name,
            c.author.email,
            c.commit_time,
        )

    def commit_signature(self, oid: str) -> tuple[bytes, bytes] | None:
        """A signed commit's (signature, signed bytes), as git verifies them; None when
        the commit is not signed."""
        signature, signed = self._commit(oid).gpg_signature
        return None if signature is None or signed is None else (signature, signed)

    def _commit(self, oid: str) -> pygit2.Commit:
        try:
            obj = self._repo[_oid(oid)]
        except (KeyError, ValueError):
            raise GitOperationError(f"commit {oid} is not in this repository") from None
        if obj.type != pygit2.enums.ObjectType.COMMIT:
            raise GitOperationError(f"{oid} is not a commit")
        return cast(pygit2.Commit, obj)

    def read_blob(self, oid: str) -> bytes:
        """Return a blob's bytes; raises GitOperationError when missing."""
        try:
            blob = self._repo[_oid(oid)]
        except (KeyError, ValueError):
            raise GitOperationError(f"object {oid} is missing") from None
        if not isinstance(blob, pygit2.Blob):
            raise GitOperationError(f"{oid} is not a blob")
        return bytes(blob.data)

    def files(self, tree: str, prefix: str = "") -> Iterator[FileEntry]:
        """Yield every regular file (and symlink) below a tree, depth first."""
        t = self._repo[_oid(tree)]
        assert isinstance(t, pygit2.Tree)
        for e in t:
            path = prefix + (e.name or "")
            if e.type_str == "tree":
                yield from self.files(str(e.id), path + "/")
            elif e.type_str == "blob":
                yield FileEntry(path, str(e.id), e.filemode == _EXEC)

    def blob_at(self, commit: str, path: str) -> bytes | None:
        """The file at ``path`` in ``commit``'s tree, or None when there is none."""
        try:
            obj = self._commit(commit).tree[path]
        except (KeyError, GitOperationError):
            return None
        return bytes(cast(pygit2.Blob, obj).data) if obj.type_str == "blob" else None

    def write_blob(self, data: bytes) -> str:
        """Store bytes as a blob and return its id."""
        with self._writing_objects():
            return str(self._repo.create_blob(data))

    def write_tree(self, files: Iterable[FileEntry]) -> str:
        """Build a (nested) tree from file entries and return its id."""
        index = pygit2.Index()
        for f in files:
            mode = _EXEC if f.executable else _BLOB
            index.add(pygit2.IndexEntry(f.path, pygit2.Oid(hex=f.blob), mode))
        with self._writing_objects():
            return str(index.write_tree(self._repo))

    def write_flat_tree(self, entries: dict[str, tuple[str, bool]]) -> str:
        """Build a one-level tree of ``name -> (id, is_tree)`` and return its id."""
        builder = self._repo.TreeBuilder()
        for name, (oid, is_tree) in sorted(entries.items()):
            mode = pygit2.enums.FileMode.TREE if is_tree else _BLOB
            builder.insert(name, pygit2.Oid(hex=oid), mode)
        with self._writing_objects():
            return str(builder.write())

    def write_commit(self, tree: str, parents: list[str], message: str) -> str:
        """Create a commit object without moving any ref; return its id."""
        sig = pygit2.Signature("gitcoop", "gitcoop@localhost")
        parent_ids = [pygit2.Oid(hex=p) for p in parents]
        with self._writing_objects():
            oid = self._repo.create_commit(
                None, sig, sig, message, pygit2.Oid(hex=tree), parent_ids
            )
        return str(oid)

    @contextlib.contextmanager
    def _writing_objects(self) -> Iterator[None]:
        """Turn a failed object write into LocalIOError (a disk error) or GitOperationError.
        An object written before the failure is unreachable: harmless, and git's gc drops
        it."""
        try:
            _faults.io("object", "objects")
            yield
        except (pygit2.GitError, OSError) as exc:
            where = self.common_dir / "objects"
            if disk_error_code(exc) is None:
                raise GitOperationError(f"could not write a git object in {where}: {exc}") from exc
            raise write_failed(exc, f"a git object in {where}", after=_NOTHING_MOVED) from exc

    def ref(self, name: str) -> str | None:
        """Return the commit a ref points to, or None when it does not exist."""
        ref = self._repo.references.get(name)
        return None if ref is None else str(ref.target)

    def set_ref(self, name: str, target: str, message: str) -> None:
        """Point ``name`` at ``target``, whatever it held (local bookkeeping refs only)."""
        try:
            _faults.io("ref", name)
            self._repo.create_reference_direct(name, pygit2.Oid(hex=target), True, message=message)
        except (pygit2.GitError, OSError) as exc:
            raise self._ref_failed(name, exc) from exc

    def delete_refs(self, prefix: str) -> None:
        """Delete every ref whose name starts with ``prefix``."""
        for name in self._repo.listall_references():
            if name.startswith(prefix):
                try:
                    _faults.io("ref", name)
                    self._repo.references.delete(name)
                except (pygit2.GitError, OSError) as exc:
                    raise self._ref_failed(name, exc) from exc

    def refs_with_prefix(self, prefix: str) -> list[str]:
        """Return the targets of every direct ref whose name starts with ``prefix``."""
        out = []
        for name in self._repo.listall_references():
            if name.startswith(prefix):
                ref = self._repo.references.get(name)
                if ref is not None and ref.type == pygit2.enums.ReferenceType.DIRECT:
                    out.append(str(ref.target))
        return out

    def cas_ref(self, name: str, new: str, old: str | None, message: str) -> None:
        """Move ``name`` to ``new`` only if it still points to ``old`` (None: absent).

        Raises LedgerConflict when the ref moved in between; git's lock files are honoured.
        """
        target = pygit2.Oid(hex=new)
        try:
            _faults.io("ref", name)
            if old is None:
                self._repo.create_reference_direct(name, target, False, message=message)
                return
            ref = self._repo.references.get(name)
            if ref is None or str(ref.target) != old:
                raise LedgerConflict(f"{name} moved while writing")
            ref.set_target(target, message)
        except pygit2.AlreadyExistsError:
            raise LedgerConflict(f"{name} was created while writing") from None
        except (pygit2.GitError, OSError) as exc:
            # libgit2 reports a held lock file as OSError ("failed to lock file"), which a
            # retry may get past; a disk error is no race, and retrying only hides it.
            if disk_error_code(exc) is not None:
                raise self._ref_failed(name, exc) from exc
            lock = self.common_dir / f"{name}.lock"
            raise LedgerConflict(
                f"{name} could not be updated: {exc}",
                hint=f"if no other git or gitcoop process is running, remove {lock}"
                if lock.exists()
                else "try again",
            ) from None

    def _ref_failed(self, name: str, exc: Exception) -> GitcoopError:
        if disk_error_code(exc) is None:
            return GitOperationError(f"could not update {name}: {exc}")
        return write_failed(exc, f"{name} in {self.common_dir}", after=f"{name} did not move")

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether ``ancestor`` is reachable from ``descendant`` (or equal to it)."""
        if ancestor == descendant:
            return True
        return bool(self._repo.descendant_of(pygit2.Oid(hex=descendant), pygit2.Oid(hex=ancestor)))

    def merge_base(self, a: str, b: str) -> str | None:
        """The best common ancestor of two commits, or None when they share no history."""
        base = self._repo.merge_base(_oid(a), _oid(b))
        return None if base is None else str(base)

    def new_commits(self, tip: str, hide: Iterable[str]) -> list[str]:
        """Commits reachable from ``tip`` but not from ``hide``, parents before children."""
        walker = self._repo.walk(
            pygit2.Oid(hex=tip), pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE
        )
        for oid in hide:
            if self.has_object(oid):
                walker.hide(pygit2.Oid(hex=oid))
        return [str(c.id) for c in walker]

    def first_parents(
        self, tip: str, stop: str | None, limit: int | None = None
    ) -> tuple[bytearray, str | None, str | None]:
        """Walk first parents from ``tip`` until ``stop`` (excluded), the root, or ``limit``
        commits.

        Returns the raw ids of each commit walked and of its tree, 40 bytes per commit,
        newest first; where the walk ended (the next commit, None at the root); and the
        first commit found with more than one parent, if any (the walk ends there).
        Raises GitOperationError when a commit is missing.
        """
        pairs = bytearray()
        target = None if stop is None else _oid(stop)
        oid: pygit2.Oid | None = _oid(tip)
        walked = 0
        while oid is not None and oid != target and (limit is None or walked < limit):
            try:
                c = cast(pygit2.Commit, self._repo[oid])
            except KeyError:
                raise GitOperationError(f"ledger commit {oid} is missing") from None
            pairs += oid.raw
            pairs += c.tree_id.raw
            walked += 1
            parents = c.parent_ids
            if len(parents) > 1:
                return pairs, None, str(oid)
            oid = parents[0] if parents else None
        return pairs, None if oid is None else str(oid), None

    def entry_run(
        self, pairs: bytes | bytearray, before: str | None, names: tuple[str, str]
    ) -> list[tuple[str, bytes, str, tuple[str, ...]] | GitOperationError]:
        """Read the ledger commits ``pairs`` names (from ``first_parents``, newest first;
        ``before`` is the commit the oldest one follows), oldest first: (commit, blob
        ``names[0]``, tree id ``names[1]``, parents) for each, or the error that made it
        unreadable.

        Objects are read kind by kind, newest first: pack deltas run from newer objects to
        older ones, so each read starts from a base libgit2 still holds. Reading entry by
        entry, oldest first, costs about twice as much.
        """
        count = len(pairs) // 40
        ids = [pairs[i * 40 : i * 40 + 20].hex() for i in range(count)]
        pattern, blob_group, tree_group = _flat_tree(*names)
        trees = [
            self._raw(pygit2.Oid(raw=bytes(pairs[i * 40 + 20 : i * 40 + 40])), _TREE_TYPE)
            for i in range(count)
        ]
        matches = [None if t is None else pattern.fullmatch(t) for t in trees]
        blobs = [
            None if m is None else self._raw(pygit2.Oid(raw=m[blob_group]), _BLOB_TYPE)
            for m in matches
        ]
        out: list[tuple[str, bytes, str, tuple[str, ...]] | GitOperationError] = []
        for i in reversed(range(count)):
            parent = ids[i + 1] if i + 1 < count else before
            parents = () if parent is None else (parent,)
            m, data = matches[i], blobs[i]
            if m is not None and data is not None:
                out.append((ids[i], data, m[tree_group].hex(), parents))
                continue
            try:
                slow = self._entry_commit_slow(self._commit(ids[i]), ids[i], names)
            except GitOperationError as exc:
                out.append(exc)
                continue
            out.append((ids[i], *slow, parents))
        return out

    def _raw(self, oid: pygit2.Oid, kind: int) -> bytes | None:
        """An object's raw content when it exists and is of ``kind``, else None."""
        try:
            found, data = self._repo.odb.read(oid)
        except (KeyError, pygit2.GitError):
            return None
        return data if found == kind else None

    def parent_ids(self, oid: str) -> list[str]:
        """Return a commit's parent ids (fast path for chain walks)."""
        return [str(p) for p in self._commit(oid).parent_ids]

    def changed_under(self, old_tree: str, new_tree: str, prefixes: tuple[str, ...]) -> list[str]:
        """Paths that differ between two trees, looking only below ``prefixes``.

        A prefix ``""`` means the whole tree. Comparing the ids at each prefix first makes
        the common case (nothing under it changed) two lookups instead of a diff.
        """
        if "" in prefixes:
            return self.changed_paths(old_tree, new_tree)
        old, new = self._tree(old_tree), self._tree(new_tree)
        out: list[str] = []
        for prefix in prefixes:
            a, b = _entry(old, prefix), _entry(new, prefix)
            if (a and a.id) == (b and b.id):
                continue
            if a is None or b is None or a.type_str != "tree" or b.type_str != "tree":
                out.append(prefix)
                continue
            sub = self.changed_paths(str(a.id), str(b.id))
            out.extend(f"{prefix}/{p}" for p in sub)
        return out

    def _tree(self, oid: str) -> pygit2.Tree:
        # Walking a mainline compares each tree with the next: keep the last two loaded.
        cache = self._trees
        tree = cache.get(oid)
        if tree is None:
            tree = cast(pygit2.Tree, self._repo[_oid(oid)])
            if len(cache) > 1:
                cache.clear()
            cache[oid] = tree
        return tree

    def changed_paths(self, old_tree: str | None, new_tree: str) -> list[str]:
        """Paths that differ between two trees (added, removed or modified)."""
        if old_tree is None:
            return [f.path for f in self.files(new_tree)]
        old = cast(pygit2.Tree, self._repo[_oid(old_tree)])
        diff = old.diff_to_tree(cast(pygit2.Tree, self._repo[_oid(new_tree)]))
        paths: set[str] = set()
        for delta in diff.deltas:
            paths.add(delta.old_file.path)
            paths.add(delta.new_file.path)
        return sorted(paths)

    def read_files(self, tree: str, paths: Iterable[str]) -> dict[str, bytes]:
        """The blobs at ``dir/name`` paths below ``tree``, by path; paths with no blob there
        are left out. Each directory is loaded once, however many paths it holds.

        Raises GitOperationError when ``tree`` is missing.
        """
        try:
            root = cast(pygit2.Tree, self._repo[_oid(tree)])
        except KeyError:
            raise GitOperationError(f"tree {tree} is missing") from None
        by_dir: dict[str, list[str]] = {}
        for path in paths:
            folder, _, name = path.rpartition("/")
            by_dir.setdefault(folder, []).append(name)
        out: dict[str, bytes] = {}
        for folder, names in by_dir.items():
            sub = _entry(root, folder) if folder else root
            if sub is None or sub.type_str != "tree":
                continue
            for name in names:
                found = _entry(cast(pygit2.Tree, sub), name)
                if found is not None and found.type_str == "blob":
                    data = self._raw(found.id, _BLOB_TYPE)
                    if data is not None:
                        out[f"{folder}/{name}" if folder else name] = data
        return out


@functools.lru_cache(maxsize=4)
def _flat_tree(blob: str, tree: str) -> tuple[re.Pattern[bytes], int, int]:
    """The raw form of a tree holding exactly file ``blob`` and subtree ``tree``: a pattern
    capturing both ids, and which group holds which."""
    # git orders a subtree as if its name ended in "/".
    order = sorted([(blob, b"100644"), (tree + "/", b"40000")])
    pattern = b"".join(
        mode + b" " + re.escape(name.removesuffix("/").encode()) + b"\\x00(.{20})"
        for name, mode in order
    )
    blob_group = 1 if order[0][0] == blob else 2
    return re.compile(pattern, re.DOTALL), blob_group, 3 - blob_group


def _entry(tree: pygit2.Tree, path: str) -> pygit2.Object | None:
    try:
        return tree[path]
    except KeyError:
        return None


def _oid(hex_id: str) -> pygit2.Oid:
    # An Oid is an exact lookup; a hex string makes libgit2 search by prefix (much slower).
    try:
        return pygit2.Oid(hex=hex_id)
    except ValueError:
        raise GitOperationError(f"{hex_id[:50]!r} is not an object id") from None


def global_config_get(name: str) -> str | None:
    """A value of the user's own git configuration (outside any repository), or None."""
    try:
        return str(pygit2.Config.get_global_config()[name])
    except (KeyError, OSError, pygit2.GitError):
        return None


def open_repo(path: str | Path = ".") -> Repo:
    """Open the repository containing ``path``; raises NotARepository."""
    found = pygit2.discover_repository(str(path))
    if found is None:
        raise NotARepository(
            "not a git repository (or any parent directory)",
            hint="run this inside a git repository, or create one with: git init",
        )
    try:
        repo = pygit2.Repository(found)
    except pygit2.GitError as exc:
        raise GitOperationError(f"cannot open repository: {exc}") from None
    # Inside a server's pre-receive hook the pushed objects wait in a quarantine directory
    # that git names here; libgit2 does not read git's environment, so it is told.
    quarantine = os.environ.get("GIT_QUARANTINE_PATH")
    if quarantine:
        repo.odb.add_disk_alternate(quarantine)
    return Repo(repo)
