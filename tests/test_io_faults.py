"""Local writes that fail: a full disk (ENOSPC), a failing one (EIO), a read-only file
system (EROFS), injected with ``GITCOOP_FAULT=io:...`` at each step of a write (docs/cli.md,
"Fault injection") or made real (a file size limit, a full device, read-only and full
mounts).

Whatever fails, the command exits non-zero with one line naming the file, the reason and
the fix, and no traceback; the file it was writing is byte for byte what it was; the ledger
is its old head, or one it validly appended; and the same command without the fault then
succeeds. ``GITCOOP_SOAK=1`` (``make soak``) strikes every error at every step of every
command instead of one error per step.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import pytest
from testing.anvil import Node
from testing.world import Player, World, player_env, run

from gitcoop import _faults, _fs, cache, keys, vindex
from gitcoop.errors import LocalIOError, os_failure

# Read at import: the hermetic seal drops GITCOOP_* from the environment of each test.
SOAK = os.environ.get("GITCOOP_SOAK") == "1"
LEDGER = "refs/coop/ledger"
# What each error is called in the one line, and the words every fix ends with.
MEANING = {
    "enospc": "no space left on device",
    "eio": "input/output error",
    "erofs": "read-only file system",
}
FIX = "then run the command again"
Target = tuple[str, str | None]  # (step, name) of GITCOOP_FAULT=io:<errno>:<step>[:<name>]


def _faults_for(targets: list[Target], errors: Iterator[str]) -> list[str]:
    """The faults to strike: each target with the next error in turn (under SOAK: with
    every error)."""
    pairs = itertools.product(MEANING, targets) if SOAK else ((next(errors), t) for t in targets)
    return [":".join(["io", e, step, *([name] if name else [])]) for e, (step, name) in pairs]


# --- the switch and the write paths, in this process ------------------------------------


SetFault = Callable[[str | None], None]


@pytest.fixture
def fault(monkeypatch: pytest.MonkeyPatch) -> SetFault:
    def set_fault(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(_faults.ENV, raising=False)
        else:
            monkeypatch.setenv(_faults.ENV, value)

    return set_fault


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("step", ["write", "fsync", "rename"])
@pytest.mark.parametrize("error", sorted(MEANING))
def test_atomic_write_fails_loudly_and_keeps_the_old_file(
    tmp_path: Path, fault: SetFault, step: str, error: str
) -> None:
    target = tmp_path / "coop" / "verified.json"
    _fs.atomic_write(target, b"old")
    fault(f"io:{error}:{step}:verified.json")
    with pytest.raises(LocalIOError) as got:
        _fs.atomic_write(target, b"new")
    assert got.value.message.startswith(MEANING[error])
    assert got.value.message.endswith(f" writing {target}; it was left as it was")
    assert got.value.hint and got.value.hint.endswith(FIX)
    assert isinstance(got.value, OSError)  # a cache writer that shrugs OSError off still does
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []
    fault(None)
    _fs.atomic_write(target, b"new")
    assert target.read_bytes() == b"new"


def test_a_failed_directory_fsync_is_no_success(tmp_path: Path, fault: SetFault) -> None:
    """After the rename, a failing directory fsync leaves the new file, which a crash may
    still undo: an error, never a retry that then reports success."""
    target = tmp_path / "pin.json"
    _fs.atomic_write(target, b"old")
    fault("io:eio:dirsync")
    with pytest.raises(LocalIOError, match="holds the new content, which a crash may still"):
        _fs.atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    _fs.atomic_write(target, b"cache", durable=False)  # no directory fsync: no error


def test_the_switch_names_errors_steps_and_files(tmp_path: Path, fault: SetFault) -> None:
    fault("io:enospc:write:history")  # a directory on the path names every file in it
    with pytest.raises(LocalIOError, match="no space left on device"):
        _fs.atomic_write(tmp_path / "history" / "abc.json", b"x")
    _fs.atomic_write(tmp_path / "other" / "history.json", b"x")  # not a whole component
    _faults.io("fsync", tmp_path / "history" / "abc.json")  # another step
    fault("io:edquot")  # any errno name; every step and file
    with pytest.raises(OSError, match="quota"):
        _faults.io("ref", "refs/coop/ledger")
    for bad in ("io:enospace", "io:eio:flush"):
        fault(bad)
        with pytest.raises(ValueError, match="io:<errno name>"):
            _faults.io("write", tmp_path)
    fault("append:before-ref")  # a kill point is no I/O fault
    _faults.io("write", tmp_path)


def test_an_error_no_write_site_named_is_still_one_line() -> None:
    failure = os_failure(OSError(28, "No space left on device", "/x/y"))
    assert str(failure) == (
        "no space left on device: /x/y (free some space there, then run the command again)"
    )


def test_a_cache_that_cannot_be_written_fails_nothing(tmp_path: Path, fault: SetFault) -> None:
    """The attested-commit index is rebuilt from the ledger when next read; a command
    does not fail for it, and the old file stays."""
    path = tmp_path / "index.json"
    cache._write_index(path, cache.AttestedIndex("a" * 40))
    before = path.read_bytes()
    fault("io:enospc:write:index.json")
    cache._write_index(path, cache.AttestedIndex("b" * 40))
    assert path.read_bytes() == before


def _index(path: Path, rows: int) -> vindex.Writer:
    writer = vindex.Writer(path, append=path.exists())
    writer.write("".join(f'[{i},"c{i}","0.{i}","k","p","n","d"]\n' for i in range(rows)))
    return writer


@pytest.mark.parametrize("step", ["write", "fsync"])
def test_an_index_append_that_fails_is_put_back(tmp_path: Path, fault: SetFault, step: str) -> None:
    path = tmp_path / vindex.FILE
    _index(path, 2).finish(1, "h1")
    before = path.read_bytes()
    fault(f"io:eio:{step}:{vindex.FILE}")
    with pytest.raises(LocalIOError, match=r"input/output error.*left as it was"):
        _index(path, 3).finish(2, "h2")
    assert path.read_bytes() == before
    fault(None)
    writer = _index(path, 3)
    writer.finish(2, "h2")
    writer.undo()  # the pin after it could not be written: back where the pin is
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("step", ["write", "fsync", "rename"])
def test_key_creation_leaves_no_key_or_a_whole_one(
    tmp_path: Path, fault: SetFault, step: str
) -> None:
    fault(f"io:erofs:{step}:{keys.KEY_NAME}")
    with pytest.raises(LocalIOError, match=f"read-only file system writing .*{keys.KEY_NAME}; no"):
        keys.generate(tmp_path, comment="a@example.org")
    assert not (tmp_path / "keys" / keys.KEY_NAME).exists()
    assert _leftovers(tmp_path) == []
    fault(None)
    made = keys.generate(tmp_path, comment="a@example.org")  # nothing in the way
    assert keys.load(tmp_path).keyid == made.keyid


# --- real failures, no injection ---------------------------------------------------------

_LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
from gitcoop.__main__ import main
sys.argv = ["git-coop", *sys.argv[2:]]
sys.exit(main())
"""


def _limited(p: Player, limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    """``git coop args`` as ``p`` with files capped at ``limit`` bytes (ulimit -f): a real
    EFBIG (Python ignores SIGXFSZ). No bytecode is written: importlib writes a .pyc with one
    unchecked write, so under the cap it would leave a truncated one for every later run."""
    env = {**p.env, "PYTHONDONTWRITEBYTECODE": "1"}
    return run(p.repo, sys.executable, "-c", _LIMITED, str(limit), *args, env=env, check=False)


def test_a_file_size_limit_and_a_full_device_fail_writes_for_real(world: World) -> None:
    """Before: ``key generate`` took os.write's short write for success and left a torn key
    that every later command refused, and that nothing would replace; output to
    ``/dev/full`` ended in a traceback (the write failed outside any error handling)."""
    m = world.maintainer()
    m.coop("evaluate", m.commit_score("0.61"))
    m.coop("verify")
    coop = m.repo / ".git/coop"
    kept = {n: (coop / n).read_bytes() for n in (vindex.FILE, "verified.json")}
    out = _limited(m, 100, "verify", "--full")
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith("gitcoop: error: file too large") and FIX in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) == 1
    assert {n: (coop / n).read_bytes() for n in kept} == kept
    assert _leftovers(coop) == []

    home = world.root / "home-new"
    new = Player(m.name, m.email, home, m.repo, {**m.env, "GITCOOP_HOME": str(home)})
    out = _limited(new, 200, "key", "generate")
    assert out.returncode == 1 and "file too large" in out.stderr, out.stderr
    assert not (home / "keys" / keys.KEY_NAME).exists()
    assert "created" in new.coop("key", "generate").stdout
    assert new.coop("key", "show").returncode == 0

    with open("/dev/full", "w") as full:
        out = subprocess.run(
            ["git", "coop", "log", "--json"], cwd=m.repo, env=m.env, stdout=full,
            stderr=subprocess.PIPE, text=True, check=False,
        )  # fmt: skip
    assert out.returncode == 1
    assert out.stderr == (
        "gitcoop: error: no space left on device writing the standard output; the output is "
        "incomplete (fix: free some space there, then run the command again)\n"
    )


def _can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = 'd=$(mktemp -d) && mount -t tmpfs -o size=16k tmpfs "$d" && umount "$d" && rmdir "$d"'
    ok = subprocess.run(["unshare", "-m", "sh", "-c", probe], capture_output=True, check=False)
    return ok.returncode == 0


def _mounted(p: Player, setup: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``git coop args`` in a private mount namespace after the ``setup`` mounts, which
    vanish with it."""
    script = f'set -e\n{setup}\nexec git coop "$@"'
    return run(p.repo, "unshare", "-m", "sh", "-c", script, "sh", *args, env=p.env, check=False)


@pytest.mark.skipif(not _can_mount(), reason="needs root and mount namespaces (unshare -m)")
def test_read_only_and_full_file_systems_for_real(world: World) -> None:
    """libgit2's own failures: objects on a read-only mount, then on a full tmpfs, the
    refs on a read-only mount (before: retried for 10 s as a lock held by another process,
    then "another process keeps writing it")."""
    m = world.maintainer()
    c = m.commit_score("0.62")
    git = m.repo / ".git"
    head = m.ref(LEDGER)
    read_only = "mount --bind {0} {0} && mount -o remount,bind,ro {0}"
    full = (
        "cp -a {0} {0}.copy && mount -t tmpfs -o size=2m tmpfs {0} && "
        "cp -a {0}.copy/. {0}/ && rm -rf {0}.copy && "
        "(dd if=/dev/zero of={0}/fill bs=4k 2>/dev/null || true)"
    )
    cases = [
        (read_only.format(git / "objects"), "read-only file system", "objects"),
        (full.format(git / "objects"), "no space left on device", "objects"),
        (read_only.format(git / "refs"), "read-only file system", LEDGER),
    ]
    for setup, meaning, names in cases:
        started = time.monotonic()
        out = _mounted(m, setup, "evaluate", c)
        assert time.monotonic() - started < 10  # nothing retried the ref update
        assert out.returncode == 1, out.stderr
        (line,) = [ln for ln in out.stderr.splitlines() if ln.startswith("gitcoop:")]
        assert line.startswith(f"gitcoop: error: {meaning} writing") and names in line, line
        assert m.ref(LEDGER) == head
    m.coop("evaluate", c)
    assert m.coop("verify", "--full").returncode == 0
    assert m.git("fsck", "--no-dangling", "--no-progress").returncode == 0


# --- every command that writes locally ---------------------------------------------------


def _head(repo: Path, ref: str = LEDGER) -> str | None:
    out = run(repo, "git", "rev-parse", "-q", "--verify", ref, check=False)
    return out.stdout.strip() or None


def _bytes(paths: Iterable[Path]) -> dict[Path, bytes | None]:
    return {p: _fs.read_or_none(p) for p in paths}


class Strikes:
    """Runs a command under I/O faults and checks what each left; counts the cases."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.cases: list[str] = []
        self._errors = itertools.cycle(MEANING)
        self.struck: dict[Path, Player] = {}

    def refused(
        self,
        p: Player,
        argv: tuple[str, ...],
        targets: list[Target],
        *,
        keep: Sequence[Path] = (),
        moves: bool = False,
        env: dict[str, str] | None = None,
        again: tuple[str, ...] | None = None,
    ) -> None:
        """Strike ``argv`` (run as ``p``) with a fault at the first target (under SOAK: at
        each), each time from the same state, then run it (or ``again``) without: what
        ``keep`` names stays byte for byte; the ledger stays (``moves``: or grows validly,
        here and on the remote)."""
        back = _frozen(p, self.world.remote)
        for fault in _faults_for(targets if SOAK else targets[:1], self._errors):
            back()  # else an earlier strike's progress could spare this one the write
            self._one(p, argv, fault, keep, moves, env or p.env)
        done = run(p.repo, *(again or argv), env=env or p.env, check=False)
        assert done.returncode == 0, (argv, done.stderr)
        self.struck[p.repo] = p

    def sound(self) -> None:
        """Every clone struck: git fsck is clean and verify --full passes."""
        for p in self.struck.values():
            assert p.coop("verify", "--full", check=False).returncode == 0
            fsck = p.git("fsck", "--no-dangling", "--no-progress", check=False)
            assert fsck.returncode == 0, fsck.stderr

    def _one(
        self,
        p: Player,
        argv: tuple[str, ...],
        fault: str,
        keep: Sequence[Path],
        moves: bool,
        env: dict[str, str],
    ) -> None:
        remote, before = self.world.remote, _bytes(keep)
        heads = (_head(p.repo), _head(remote), _head(remote, "refs/heads/main"))
        started = time.monotonic()
        out = run(p.repo, *argv, env={**env, _faults.ENV: fault}, check=False)
        took = time.monotonic() - started
        what = (argv, fault, out.stderr)
        assert out.returncode not in (0, 137), what
        assert "Traceback" not in out.stderr and "internal error" not in out.stderr, what
        said = [ln for ln in out.stderr.splitlines() if ln.startswith("gitcoop:")]
        errors = [ln for ln in said if not ln.startswith("gitcoop: warning:")]
        assert len(errors) == 1, what
        error, meaning = errors[0], MEANING[fault.split(":")[1]]
        assert meaning in error and FIX in error, what
        step, name = [*fault.split(":"), ""][2:4]
        assert name in error, what
        if step == "dirsync":  # after the rename: the new file, which may not last
            assert "a crash may still undo" in error, what
        else:  # the file it was writing (any, for a fault that names none); others may move on
            named = {k: v for k, v in before.items() if not name or f"/{name}/" in f"/{k}/"}
            assert _bytes(list(named)) == named, what
        assert _leftovers(p.repo / ".git/coop") == [], what
        now = (_head(p.repo), _head(remote))
        # Grown: the old head or (a re-link) the remote's below the new one.
        grown = any(_reaches(p.repo, h, now[0]) for h in heads[:2] if h)
        assert now[0] == heads[0] or (moves and grown), what
        assert now[1] == heads[1] or (moves and _reaches(remote, heads[1], now[1])), what
        assert _head(remote, "refs/heads/main") == heads[2], what
        if step == "ref":  # a disk error is no race: not retried for ledger._PATIENCE (10 s)
            assert took < 10, what
        self.cases.append(f"{_name(argv)} {fault}")


_OURS = ("refs/coop/", "refs/coop-", "refs/notes/coop")


def _refs(repo: Path) -> dict[str, str]:
    listed = run(repo, "git", "for-each-ref", "--format=%(refname) %(objectname)").stdout
    pairs = (line.split() for line in listed.splitlines())
    return {name: oid for name, oid in pairs if name.startswith(_OURS) or name == "refs/heads/main"}


def _frozen(p: Player, remote: Path) -> Callable[[], None]:
    """What puts back, as they are now, ``p``'s gitcoop refs and files (its scoring
    worktrees aside) and branch, and the remote's ledger and branch."""
    local = p.repo / ".git/coop"
    files = {
        f: f.read_bytes()
        for f in local.rglob("*")
        if f.is_file() and "worktrees" not in f.parts and not f.name.endswith(".lock")
    }
    refs = {repo: _refs(repo) for repo in (p.repo, remote)}

    def back() -> None:
        for f in local.rglob("*"):
            if f.is_file() and f not in files and "worktrees" not in f.parts:
                f.unlink()
        for f, data in files.items():
            f.parent.mkdir(parents=True, exist_ok=True)
            if _fs.read_or_none(f) != data:
                f.write_bytes(data)
        for repo, want in refs.items():
            now = {k: v for k, v in _refs(repo).items() if k in want or k.startswith(_OURS)}
            script = [f"delete {k}" for k in now if k not in want]
            script += [f"update {k} {v}" for k, v in want.items() if now.get(k) != v]
            if script:
                run(repo, "git", "update-ref", "--stdin", input="\n".join(script).encode() + b"\n")
            main = "refs/heads/main"
            if repo == p.repo and main in want and now.get(main) != want[main]:
                run(repo, "git", "reset", "-q", "--hard")  # a commit the strike made: undone

    return back


def _reaches(repo: Path, old: str | None, new: str | None) -> bool:
    if old is None or new is None:
        return old == new
    return run(repo, "git", "merge-base", "--is-ancestor", old, new, check=False).returncode == 0


def _name(argv: tuple[str, ...]) -> str:
    return " ".join(a for a in argv[:4] if not a.startswith(("-q", "/")) and len(a) < 40)


def test_evaluate_push_sync_verify_credit_and_report(world: World) -> None:
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    strikes = Strikes(world)
    coop = m.repo / ".git/coop"

    c = m.commit_score("0.61")
    strikes.refused(
        m, ("git", "coop", "evaluate", c),
        [("ref", LEDGER), ("write", "scores"), ("object", None), ("fsync", "scores"),
         ("rename", "scores")],
    )  # fmt: skip
    m.commit_score("0.62")
    strikes.refused(
        m, ("git", "push", "-q", "origin", "main"),
        [("object", None), ("rename", "origin.json"), ("ref", LEDGER)],
        keep=[coop / "remotes/origin.json"],
    )  # fmt: skip

    ada.git("checkout", "-q", "-b", "ada")
    ada.coop("evaluate", ada.commit_score("0.63"))
    ada.git("fetch", "-q", "origin")
    m.commit_score("0.64")
    m.git("push", "-q", "origin", "main")  # the remote ahead: Ada's entry is re-linked
    ada_coop = ada.repo / ".git/coop"
    strikes.refused(
        ada, ("git", "coop", "sync"),
        [("write", "verified.json"), ("fsync", vindex.FILE), ("rename", "origin.json"),
         ("object", None), ("ref", LEDGER), ("dirsync", "remotes")],
        keep=[ada_coop / n for n in ("verified.json", vindex.FILE, "remotes/origin.json")],
        moves=True,
    )  # fmt: skip

    m.coop("sync")
    pins = [coop / "verified.json", coop / vindex.FILE]
    strikes.refused(
        m, ("git", "coop", "verify"),
        [("write", vindex.FILE), ("fsync", "verified.json"), ("rename", "verified.json"),
         ("dirsync", "coop")],
        keep=pins,
    )  # fmt: skip
    m.coop("evaluate", m.commit_score("0.65"))
    strikes.refused(
        m, ("git", "coop", "credit"), [("rename", "verified.json"), ("write", vindex.FILE)],
        keep=pins,
    )  # fmt: skip

    page = world.root / "report.html"
    page.write_text("the report of yesterday\n")
    strikes.refused(
        m, ("git", "coop", "report", "--html", str(page)),
        [("write", "report.html"), ("fsync", "report.html"), ("rename", "report.html")],
        keep=[page],
    )  # fmt: skip
    assert page.read_text().lower().startswith("<!doctype html>")
    _record(strikes)


ROUNDS = """\
version: 1
name: toy
metric:
  command: python evaluate.py
  name: accuracy
  direction: maximize
protect: [evaluate.py]
rounds:
  - {name: r1, start: 2026-01-01T00:00:00Z, end: 2026-02-01T00:00:00Z}
  - {name: r2, start: 2026-02-01T00:00:00Z, end: 2099-01-01T00:00:00Z}
rewards:
  pool: 100
"""


def _rounds_challenge(world: World) -> Player:
    """The maintainer of a challenge with an ended round, an open one, and a pool."""
    m = world.maintainer(init_args=None)
    (m.repo / ".coop").mkdir()
    (m.repo / ".coop/challenge.yaml").write_text(ROUNDS)
    m.git("add", ".coop")
    m.git("commit", "-qm", "a challenge with rounds")
    m.coop("init")
    m.git("push", "-q", "origin", "main")
    return m


def test_keys_join_accept_update_hooks_ci_and_rounds(world: World, tmp_path: Path) -> None:
    m = _rounds_challenge(world)
    strikes = Strikes(world)
    bob = world.contributor("bob", "Bob", "bob@example.org", join=False)
    strikes.refused(
        bob, ("git", "coop", "key", "generate"),
        [("write", keys.KEY_NAME), ("fsync", keys.KEY_NAME), ("rename", keys.KEY_NAME),
         ("dirsync", "keys")],
        keep=[bob.home / "keys" / keys.KEY_NAME],
    )  # fmt: skip

    bob.coop("verify")  # the ledger's first use in this clone said, not in a strike's output
    head = bob.head()
    strikes.refused(
        bob, ("git", "coop", "join"),
        [("rename", "allowed_signers"), ("write", "allowed_signers"), ("fsync", "allowed_signers")],
        keep=[bob.repo / ".coop/allowed_signers"],
    )  # fmt: skip
    assert bob.git("rev-parse", "HEAD~").stdout.strip() == head  # joined once
    bob.git("push", "-q", "origin", "HEAD:main")

    m.git("pull", "-q", "--ff-only", "origin", "main")
    secret = _with_evaluator(m)  # a second line to accept
    strikes.refused(
        m, ("git", "coop", "join", "--accept"),
        [("object", None), ("ref", LEDGER), ("write", "verified.json")],
    )  # fmt: skip

    m.commit_score("0.7")
    m.git("push", "-q", "origin", "main")  # scored by the hook: round 2's pool is earned
    with open("/dev/full", "w") as full:  # a real full disk under a redirection
        out = subprocess.run(
            ["git", "coop", "payout", "--round", "r2", "--csv"], cwd=m.repo, env=m.env,
            stdout=full, stderr=subprocess.PIPE, text=True, check=False,
        )  # fmt: skip
    assert out.returncode == 1 and out.stderr.startswith(
        "gitcoop: error: no space left on device writing the standard output"
    ), out.stderr
    assert m.coop("payout", "--round", "r2", "--csv").stdout.startswith("name,")
    strikes.cases.append("git coop payout --csv > /dev/full")

    spec = m.repo / ".coop/challenge.yaml"
    spec.write_text(spec.read_text().replace("pool: 100", "pool: 200"))
    m.git("commit", "-qam", "a larger pool")
    strikes.refused(
        m, ("git", "coop", "challenge", "update"),
        [("ref", LEDGER), ("object", None), ("fsync", "verified.json")],
    )  # fmt: skip
    m.git("push", "-q", "origin", "main")

    hook = m.repo / ".git/hooks/pre-push"
    hook.write_text(hook.read_text() + "# the hook as it was\n")
    strikes.refused(
        m, ("git", "coop", "hook", "install"),
        [("rename", "pre-push"), ("write", "pre-push"), ("fsync", "pre-push")],
        keep=[hook],
    )  # fmt: skip

    results = tmp_path / "results.json"
    score = ("git", "coop", "ci", "score", "--out", str(results), m.commit_score("0.71"))
    m.coop(*score[2:])
    results.write_text(results.read_text() + "\n")  # as it was: kept byte for byte
    strikes.refused(
        m, score,
        [("write", "results.json"), ("fsync", "results.json"), ("rename", "results.json")],
        keep=[results],
    )  # fmt: skip
    strikes.refused(
        m, ("git", "coop", "ci", "sign", "--no-push", str(results)),
        [("object", None), ("ref", LEDGER)],
        env={**m.env, "GITCOOP_EVALUATOR_KEY": secret},
    )  # fmt: skip
    strikes.refused(
        m, ("git", "coop", "round", "close", "r1"),
        [("ref", LEDGER), ("write", "verified.json"), ("object", None)],
    )  # fmt: skip
    _record(strikes)


def _with_evaluator(m: Player) -> str:
    """Commit a trust-list line giving a new key the evaluator role (not accepted yet);
    return the private key as the CI secret holds it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    public = keys.public_openssh(private.public_key())
    signers = m.repo / ".coop/allowed_signers"
    line = keys.signers_line("ci@example.org", public, "gitcoop,gitcoop-evaluator")
    signers.write_text(signers.read_text() + line + "\n")
    m.git("commit", "-qam", "the evaluator")
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


def test_init_stopped_at_any_write_starts_over(world: World) -> None:
    m = world.maintainer(init_args=None)
    strikes = Strikes(world)
    argv = ("git", "coop", "init", "--metric", "python evaluate.py", "--direction", "maximize")
    fresh = _newcomer(world, m, "fresh")
    strikes.refused(
        fresh, argv,
        [("write", "challenge.yaml"), ("rename", "allowed_signers"), ("object", None)],
        keep=[fresh.repo / ".coop/challenge.yaml", fresh.repo / ".coop/allowed_signers"],
    )  # fmt: skip
    # Stopped between committing the challenge and starting the ledger: init without
    # flags finishes (before: it took the clone for someone else's unpublished challenge).
    again = _newcomer(world, m, "again")
    strikes.refused(again, argv, [("ref", LEDGER)], again=("git", "coop", "init"))
    assert again.git("log", "-1", "--format=%s").stdout.strip() == "coop: init challenge"
    _record(strikes)


def test_an_anchor_journal_that_cannot_be_written_sends_nothing(world: World, anvil: Node) -> None:
    """The transaction is journaled before it is sent: a journal write that fails stops
    the run with nothing on the chain; the next run sends one transaction."""
    from eth_account import Account

    m = world.maintainer()
    sender = Account.from_key(anvil.keys[0]).address

    def sent() -> int:
        return int(anvil.call("eth_getTransactionCount", sender, "latest"), 16)

    before, strikes = sent(), Strikes(world)
    argv = ("git", "coop", "anchor", "--rpc", anvil.url, "--chain-id", "31337",
            "--confirmations", "1", "--wait", "10")  # fmt: skip
    journal = m.repo / ".git/coop/anchor.json"
    strikes.refused(
        m, argv,
        [("write", "anchor.json"), ("fsync", "anchor.json"), ("rename", "anchor.json"),
         ("dirsync", "coop")],
        keep=[journal], env={**m.env, "GITCOOP_ETH_KEY": anvil.keys[0]},
    )  # fmt: skip
    assert sent() - before == 1
    assert json.loads(journal.read_text())["state"] == "final"
    _record(strikes)


def _newcomer(world: World, m: Player, name: str) -> Player:
    """A repository with the test metric and no challenge yet, of someone new."""
    home, email = world.root / f"home-{name}", f"{name}@example.org"
    env = player_env(world.base_env, name, email, home)
    p = Player(name, email, home, world.root / name, env)
    p.repo.mkdir()
    p.git("init", "-q", "-b", "main")
    shutil.copy(m.repo / "evaluate.py", p.repo / "evaluate.py")
    (p.repo / "score.txt").write_text("0.5\n")
    p.git("add", ".")
    p.git("commit", "-qm", "baseline")
    return p


def _record(strikes: Strikes) -> None:
    """Check the clones, and keep the cases struck for the record (make soak prints them)."""
    strikes.sound()
    assert len(strikes.cases) == len(set(strikes.cases))
    print(f"\n{len(strikes.cases)} I/O fault cases:", *strikes.cases, sep="\n  ")
