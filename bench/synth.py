"""Synthetic challenges for the large-scale figures of bench/run.py, cached outside the repo.

A dataset is a challenge made by ``git coop init`` (the bench metric, ``evaluate.py``
protected) plus N commits on ``main``, written by one ``git fast-import``, each setting
``score.txt`` to a distinct value, and a ledger of M attestations, one per commit
(cycling over the commits when M > N), built with gitcoop's own record code exactly as
``git coop evaluate`` builds them, signed with the maintainer's key and written by a
second ``git fast-import``. Datasets live in ``$XDG_CACHE_HOME/gitcoop-bench`` (or
``~/.cache/gitcoop-bench``), one directory per format version and size; they are reused
until ``--regenerate`` or a new ``FORMAT``. Runs copy a dataset before touching it.
"""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import contextlib
import itertools
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

FORMAT = 1  # bump when the recipe below changes: cached datasets of other versions are ignored

EVALUATE = (
    "import json, pathlib\n"
    'print(json.dumps({"score": float(pathlib.Path("score.txt").read_text())}))\n'
)
INIT = ("coop", "init", "--metric", "python evaluate.py", "--direction", "maximize")
NAME, EMAIL = "Bench", "bench@example.org"
FULL_CHECK_MAX = 10_000  # larger ledgers get a sampled check at generation time
SIGS_MAX = 200_000  # ledgers up to this size also get their signatures dumped (sigs.bin)
CHUNK = 500  # attestations per signing task
STAMP = 1_700_000_000  # commit times of generated commits (fixed: reproducible object ids)

Log = Callable[[str], None]


class BenchError(Exception):
    """A benchmark step failed; the message says what ran and what it printed."""


@dataclass(frozen=True)
class Shell:
    """Runs commands in a hermetic environment (own HOME, keys and git config)."""

    env: dict[str, str]

    def run(self, argv: Sequence[str], cwd: Path, stdin: bytes | None = None) -> str:
        """Run ``argv``; return its stdout; raise BenchError when it fails."""
        proc = subprocess.run(
            list(argv), cwd=cwd, env=self.env, input=stdin, capture_output=True, check=False
        )
        if proc.returncode != 0:
            out = (proc.stdout + proc.stderr).decode(errors="replace").strip()[-2000:]
            raise BenchError(f"`{' '.join(argv)[:200]}` in {cwd} exited {proc.returncode}:\n{out}")
        return proc.stdout.decode(errors="replace")

    def time(self, argv: Sequence[str], cwd: Path, stdin: bytes | None = None) -> float:
        """Wall-clock seconds of one successful run of ``argv``."""
        start = time.perf_counter()
        self.run(argv, cwd, stdin)
        return time.perf_counter() - start

    def time_all(self, argvs: Sequence[Sequence[str]], cwd: Path) -> float:
        """Wall-clock seconds until all of ``argvs``, started together, have succeeded."""
        start = time.perf_counter()
        procs = [
            subprocess.Popen(list(a), cwd=cwd, env=self.env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
            for a in argvs
        ]
        outputs = [proc.communicate()[0] for proc in procs]
        seconds = time.perf_counter() - start
        for argv, proc, out in zip(argvs, procs, outputs, strict=True):
            if proc.returncode != 0:
                text = out.decode(errors="replace").strip()[-2000:]
                raise BenchError(f"`{' '.join(argv)[:200]}` exited {proc.returncode}:\n{text}")
        return seconds

    def git(self, repo: Path, *args: str) -> str:
        """Run git in ``repo``; return stripped stdout."""
        return self.run(["git", *args], repo).strip()

    def with_home(self, root: Path) -> Shell:
        """The same environment with HOME and GITCOOP_HOME (the signing key) under ``root``."""
        home = root / "home"
        return Shell({**self.env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                      "GITCOOP_HOME": str(home / "gitcoop")})


def new_repo(sh: Shell, path: Path) -> Path:
    """A repository on ``main`` with the trivial metric and one committed score."""
    path.mkdir(parents=True)
    sh.git(path, "init", "-q", "-b", "main")
    (path / "evaluate.py").write_text(EVALUATE)
    (path / "score.txt").write_text("0.1\n")
    sh.git(path, "add", "evaluate.py", "score.txt")
    sh.git(path, "commit", "-q", "-m", "baseline")
    return path


def score_text(k: int) -> str:
    """The score of generated commit ``k`` (0 is the baseline, 0.1): 0.1 + k * 1e-7, as
    the metric prints it and gitcoop writes decimals (no trailing zeros)."""
    whole, frac = divmod(1_000_000 + k, 10_000_000)
    return f"{whole}.{frac:07d}".rstrip("0").rstrip(".")


def fast_import(sh: Shell, repo: Path, stream: Iterable[bytes], marks: Path | None = None) -> None:
    """Feed ``stream`` to one ``git fast-import``; raise BenchError when it fails."""
    argv = ["git", "fast-import", "--quiet"]
    # glibc returns freed heap to the kernel after every object, and brk is slow on some
    # VMs (7x the whole import here); a top pad keeps the heap. Generation only.
    env = {**sh.env, "MALLOC_TOP_PAD_": str(64 << 20)}
    if marks is not None:
        argv.append(f"--export-marks={marks}")
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, cwd=repo, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=err)
        assert proc.stdin is not None
        try:
            for chunk in stream:
                proc.stdin.write(chunk)
        except BrokenPipeError:
            pass  # fast-import died: its exit status and stderr say why
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        code = proc.wait()
        if code != 0:
            err.seek(0)
            text = err.read().decode(errors="replace").strip()[-2000:]
            raise BenchError(f"git fast-import in {repo} exited {code}:\n{text}")


def batched(stream: Iterable[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    """Join small pieces into writes of about ``size`` bytes."""
    buf = bytearray()
    for piece in stream:
        buf += piece
        if len(buf) >= size:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)


def main_stream(first: int, count: int, branch: str = "refs/heads/main") -> Iterator[bytes]:
    """fast-import commands for commits ``first`` .. ``first + count - 1`` on ``branch``,
    commit k setting score.txt to ``score_text(k)``; commit k gets mark ``:k``."""
    for k in range(first, first + count):
        data, message = f"{score_text(k)}\n".encode(), f"score {k}\n".encode()
        yield (
            b"commit %s\nmark :%d\ncommitter %s <%s> %d +0000\ndata %d\n%s%s"
            b"M 100644 inline score.txt\ndata %d\n%s\n"
            % (branch.encode(), k, NAME.encode(), EMAIL.encode(), STAMP + k, len(message),
               message, b"from %s^0\n" % branch.encode() if k == first else b"", len(data), data)
        )


def read_marks(path: Path) -> dict[int, str]:
    """Marks written by ``--export-marks``: mark number -> object id."""
    out = {}
    for line in path.read_text().splitlines():
        mark, oid = line.split()
        out[int(mark[1:])] = oid
    return out


def add_scored_commits(sh: Shell, repo: Path, first: int, count: int) -> list[str]:
    """Append commits ``first`` .. on main (see ``main_stream``); return their ids, oldest
    first, and check the work tree out at the new tip."""
    marks = repo.parent / f".{repo.name}.marks"
    fast_import(sh, repo, batched(main_stream(first, count)), marks)
    ids = read_marks(marks)
    marks.unlink()
    sh.git(repo, "reset", "-q", "--hard")
    return [ids[k] for k in range(first, first + count)]


# --- datasets -----------------------------------------------------------------------------


def cache_root() -> Path:
    """Where datasets are kept: ``$XDG_CACHE_HOME/gitcoop-bench`` or ``~/.cache/...``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitcoop-bench"


@dataclass(frozen=True)
class Spec:
    """A dataset's size: real commits on main, and attestations (cycling when larger)."""

    commits: int
    entries: int

    @property
    def key(self) -> str:
        """The cache directory name: format version, entry version and sizes."""
        from gitcoop import constants

        return f"v{FORMAT}.{constants.ENTRY_VERSION}-c{self.commits}-e{self.entries}"


@dataclass(frozen=True)
class Dataset:
    """A generated dataset and what its generation recorded (``meta.json``)."""

    path: Path
    meta: dict[str, Any]
    generated: bool  # in this run

    @property
    def repo(self) -> Path:
        """The challenge repository (copy it before changing anything)."""
        return self.path / "repo"

    @property
    def home(self) -> Path:
        """The HOME whose ``gitcoop`` directory holds the maintainer's key."""
        return self.path / "home"

    @property
    def sigs(self) -> Path:
        """Every ledger signature as ``key(32) sig(64) len(4) PAE`` records."""
        return self.path / "sigs.bin"

    @property
    def ledger_entries(self) -> int:
        """Entries in the ledger: genesis, the baseline's attestation, the generated ones."""
        return int(self.meta["ledgerEntries"])


def obtain(spec: Spec, sh: Shell, *, regenerate: bool, log: Log) -> Dataset:
    """The cached dataset for ``spec``, generated first when missing (or ``regenerate``)."""
    final = cache_root() / spec.key
    meta_path = final / "meta.json"
    if meta_path.exists() and not regenerate:
        return Dataset(final, json.loads(meta_path.read_text()), generated=False)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{spec.key}.tmp-*"):  # left by a killed generation
        if not alive(int(stale.name.rsplit("-", 1)[1])):
            shutil.rmtree(stale, ignore_errors=True)
    work = final.parent / f".{spec.key}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        meta = generate(spec, work, sh.with_home(work), log)
        (work / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Dataset(final, meta, generated=True)


def alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Context:
    """What every attestation of a dataset shares, and the commits it attests."""

    home: Path
    commits: list[str]
    trees: list[str]
    parents: list[str]
    digest: str
    origin: str
    metric: str
    direction: str
    environment: dict[str, str]
    time: str
    signer: Any  # records.Signer


_CTX: Context | None = None  # set before the signing workers fork
_KEY: Any = None  # the signing key, loaded in each worker


def _load_key() -> None:
    global _KEY
    from gitcoop import keys

    assert _CTX is not None
    _KEY = keys.load(_CTX.home)


def _envelope(j: int) -> dict[str, Any]:
    """The signed DSSE envelope of attestation ``j``, as ``evaluate._attest`` makes it."""
    from gitcoop import constants, records

    c = _CTX
    assert c is not None
    k = j % len(c.commits)  # commit k + 1 of the generated ones; its parent scored k
    score, parent_score = Decimal(score_text(k + 1)), Decimal(score_text(k))
    att = records.Attestation(
        commit=c.commits[k],
        tree=c.trees[k],
        challenge=c.digest,
        origin=c.origin,
        metric=c.metric,
        direction=c.direction,
        split="public",
        score=score,
        parent=c.parents[k],
        parent_score=parent_score,
        delta=score - parent_score,  # maximize
        environment=c.environment,
        duration_ms=23,
        time=c.time,
        signer=c.signer,
    )
    return records.sign(att.statement(), constants.INTOTO_PAYLOAD_TYPE, _KEY)


def _envelopes(span: tuple[int, int]) -> list[dict[str, Any]]:
    return [_envelope(j) for j in range(*span)]


def signed(total: int, workers: int) -> Iterator[dict[str, Any]]:
    """Envelopes 0 .. total-1 in order, signed by ``workers`` forked processes (a bounded
    number of chunks in flight, so memory stays flat)."""
    spans = [(i, min(i + CHUNK, total)) for i in range(0, total, CHUNK)]
    if workers <= 1:
        _load_key()
        for span in spans:
            yield from _envelopes(span)
        return
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx,
                                                initializer=_load_key) as pool:
        pending: collections.deque[concurrent.futures.Future[list[dict[str, Any]]]] = (
            collections.deque()
        )
        todo = iter(spans)
        for span in itertools.islice(todo, 4 * workers):
            pending.append(pool.submit(_envelopes, span))
        while pending:
            done = pending.popleft().result()
            for span in itertools.islice(todo, 1):
                pending.append(pool.submit(_envelopes, span))
            yield from done


def context(repo_path: Path, home: Path, commits: list[str]) -> tuple[Context, Any]:
    """The shared attestation fields, read through gitcoop's library; and the ledger head."""
    from gitcoop import keys, records
    from gitcoop.commands.evaluate import environment
    from gitcoop.session import identity, open_session

    s = open_session(repo_path)
    trees, parents = [], []
    for c in commits:
        info = s.repo.commit(c)
        trees.append(info.tree)
        parents.append(info.parents[0])
    key = keys.load(home)
    name, email = identity(s.repo)
    ch = s.pinned.challenge
    ctx = Context(home, commits, trees, parents, s.pinned.digest, s.head.origin,
                  ch.metric.name, ch.metric.direction, environment(), records.now(),
                  records.Signer(key.keyid, email, name))
    return ctx, s.head


def ledger_stream(head: Any, envelopes: Iterable[dict[str, Any]], public: str,
                  out: list[Any]) -> Iterator[bytes]:
    """fast-import commands for one ledger commit per envelope, linked after ``head``
    as ``ledger.append`` links them; entry j gets mark ``:j+1``. The last head is put in
    ``out``."""
    from gitcoop import ledger

    first = head.commit.encode()
    pinned = head.pinned_tree.encode()
    for j, envelope in enumerate(envelopes):
        entry = ledger.link(ledger.Entry(0, None, "attestation", "", None, public, envelope), head)
        data = entry.to_bytes()
        head = ledger.Head("", entry, ledger.entry_hash(data), head.pinned_tree)
        message = b"coop: attestation #%d\n" % entry.seq
        yield (
            b"commit refs/coop/ledger\nmark :%d\ncommitter gitcoop <gitcoop@localhost> %d +0000\n"
            b"data %d\n%s%sdeleteall\nM 100644 inline entry.json\ndata %d\n%s\n"
            b"M 040000 %s challenge\n"
            % (j + 1, STAMP, len(message), message, b"from %s\n" % first if j == 0 else b"",
               len(data), data, pinned)
        )
    out.append(head)


def generate(spec: Spec, root: Path, sh: Shell, log: Log) -> dict[str, Any]:
    """Build the dataset under ``root``; return its metadata (timings included)."""
    global _CTX
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now
        log(f"  {name}: {timings[name]:.1f} s")

    log(f"generating {spec.key} in {root}")
    repo = new_repo(sh, root / "repo")
    sh.git(repo, "config", "user.name", NAME)
    sh.git(repo, "config", "user.email", EMAIL)
    sh.git(repo, *INIT, "--protect", "evaluate.py", "--no-hooks")
    lap("git coop init")
    commits = add_scored_commits(sh, repo, 1, spec.commits)
    lap(f"{spec.commits} commits (fast-import)")
    ctx, head = context(repo, root / "home" / "gitcoop", commits)
    lap("commit trees and parents")
    _CTX = ctx
    try:
        from gitcoop import keys

        public = keys.load(ctx.home).public_openssh
        workers = min(2, os.cpu_count() or 1)
        envelopes = signed(spec.entries, workers)
        first = next(envelopes)  # the workers fork now, before fast-import holds a pipe
        last: list[Any] = []
        stream = ledger_stream(head, itertools.chain([first], envelopes), public, last)
        marks = root / "ledger.marks"
        fast_import(sh, repo, batched(stream), marks)
    finally:
        _CTX = None
    lap(f"{spec.entries} attestations signed and written (fast-import)")
    ledger_commits = check_tip(sh, repo, marks, spec.entries + 2)
    check = check_ledger(sh, repo, ledger_commits, log)
    lap(f"check ({check})")
    clean_worktrees(sh, repo)
    sigs = None
    if spec.entries + 2 <= SIGS_MAX:
        sigs = dump_signatures(sh, repo, root / "sigs.bin")
        lap("signatures dumped for the baseline loop")
    return {
        "format": FORMAT,
        "commits": spec.commits,
        "entries": spec.entries,
        "ledgerEntries": spec.entries + 2,
        "cycling": spec.entries > spec.commits,
        "signatures": sigs,
        "check": check,
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "timings": timings,
        "generationSeconds": round(sum(timings.values()), 1),
        "bytes": du(root),
        "python": sys.version.split()[0],
    }


def check_tip(sh: Shell, repo: Path, marks: Path, total: int) -> list[str]:
    """The ledger's commits, oldest first; checks the ref and the count."""
    ids = read_marks(marks)
    marks.unlink()
    tip = sh.git(repo, "rev-parse", "refs/coop/ledger")
    if tip != ids[max(ids)]:
        raise BenchError(f"refs/coop/ledger is at {tip}, not at the last imported entry")
    chain = sh.git(repo, "rev-list", "--reverse", "--first-parent", tip).split()
    if len(chain) != total:
        raise BenchError(f"the ledger has {len(chain)} entries, expected {total}")
    return chain


def check_ledger(sh: Shell, repo: Path, chain: list[str], log: Log,
                 windows: int = 20, width: int = 200) -> str:
    """``git coop verify --full`` for small ledgers; for larger ones, gitcoop's own
    verification code run on windows of ``width`` entries: the first, ``windows``
    random ones and the last (each starting from the verified position before it)."""
    if len(chain) <= FULL_CHECK_MAX + 2:
        return full_check(sh, repo, len(chain))
    try:
        return sampled_check(repo, chain, log, windows, width)
    except (AttributeError, TypeError, ImportError) as exc:  # gitcoop's internals moved
        log(f"  sampled check unavailable ({exc!r}): running git coop verify --full")
        return full_check(sh, repo, len(chain))


def full_check(sh: Shell, repo: Path, entries: int) -> str:
    """``git coop verify --full``, which must report ``entries`` entries."""
    out = sh.git(repo, "coop", "verify", "--full")
    if not out.startswith(f"ledger OK: {entries} entries"):
        raise BenchError(f"unexpected verify output: {out[:200]}")
    (repo / ".git" / "coop" / "verified.json").unlink(missing_ok=True)
    return "verify --full OK"


def sampled_check(repo: Path, chain: list[str], log: Log, windows: int, width: int) -> str:
    """Run gitcoop's ``verify_range`` on windows of the chain (see ``check_ledger``)."""
    from gitcoop import ledger
    from gitcoop.commands import verify as v
    from gitcoop.git import open_repo

    r = open_repo(repo)
    rng = random.Random(len(chain))
    starts = [None, *rng.sample(range(1, len(chain) - width), windows), len(chain) - 1 - width]
    checked = 0
    for s in starts:
        pos = None
        if s is not None:
            rec = ledger.read_record(r, chain[s])
            h = ledger.entry_hash(rec.data)
            pos = v.Position(rec.commit, rec.entry.seq, h, rec.entry.origin or h,
                             rec.entry.challenge, rec.pinned_tree)
        report = v.Report()
        v.verify_range(r, chain[(s or 0) + width], pos, report)
        checked += report.checked
    log(f"  sampled check: {checked} entries in {len(starts)} windows verified")
    return f"sampled: {checked} entries in {len(starts)} windows of {width} verified"


def clean_worktrees(sh: Shell, repo: Path) -> None:
    """Drop gitcoop's scoring worktrees: they record absolute paths, and copies of the
    dataset must not share them with the cache. gitcoop recreates them on demand."""
    for line in sh.git(repo, "worktree", "list", "--porcelain").splitlines():
        path = line.removeprefix("worktree ")
        if line.startswith("worktree ") and Path(path) != repo.resolve():
            sh.git(repo, "worktree", "remove", "-f", "-f", path)
    shutil.rmtree(repo / ".git" / "coop" / "worktrees", ignore_errors=True)
    sh.git(repo, "worktree", "prune")


def dump_signatures(sh: Shell, repo: Path, out: Path) -> int:
    """Write every ledger signature as ``key(32) sig(64) len(4) message`` records; the
    message is the DSSE pre-authentication encoding that was signed. Returns the count."""
    commits = sh.git(repo, "rev-list", "refs/coop/ledger").split()
    batch = "".join(f"{c}:entry.json\n" for c in commits).encode()
    raw = subprocess.run(
        ["git", "cat-file", "--batch"], cwd=repo, env=sh.env, input=batch,
        capture_output=True, check=True,
    ).stdout
    blob, pos, count = bytearray(), 0, 0
    while pos < len(raw):
        header_end = raw.index(b"\n", pos)
        size = int(raw[pos:header_end].split()[2])
        entry = json.loads(raw[header_end + 1 : header_end + 1 + size])
        pos = header_end + 1 + size + 1
        key = base64.b64decode(entry["key"].split()[1])[19:]
        env = entry["envelope"]
        ptype, payload = env["payloadType"].encode(), base64.b64decode(env["payload"])
        message = b"DSSEv1 %d %b %d %b" % (len(ptype), ptype, len(payload), payload)
        for sig in env["signatures"]:
            blob += key + base64.b64decode(sig["sig"]) + len(message).to_bytes(4, "big")
            blob += message
            count += 1
    out.write_bytes(bytes(blob))
    return count


def du(path: Path) -> int:
    """Bytes under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def copy_repo(dataset: Dataset, dest: Path) -> Path:
    """A private copy of the dataset's repository (``cp -a``), safe to change."""
    subprocess.run(["cp", "-a", str(dataset.repo), str(dest)], check=True)
    return dest
