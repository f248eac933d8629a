#!/usr/bin/env python3
"""Benchmark gitcoop against baselines measured in the same run (see bench/README.md).

Every gitcoop number is compared with a baseline timed in the same run, trials of the
variants are interleaved (the order rotates every trial) and medians are reported, so
a noisy machine shifts both sides alike.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import synth
from synth import INIT, BenchError, Shell, dump_signatures, new_repo

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
BIN = Path(sys.executable).parent  # the venv's bin, not resolved: `git coop` lives there

PUSH_BAR_MS = 250.0
RATIO_BAR = 1.5
SPEEDUP_BAR = 1.6
WARMUP = 2  # dropped trials per variant in (1) and (2)

IMPORT_HOOK_DEPS = (
    "import pygit2; from cryptography.hazmat.primitives.asymmetric.ed25519 "
    "import Ed25519PublicKey"
)
SHELL_LOOP = (
    'wt=$1; shift; for sha in "$@"; do '
    'git -C "$wt" checkout --detach -f -q "$sha" && git -C "$wt" clean -ffdxq '
    '&& (cd "$wt" && python evaluate.py) || exit 1; done'
)
VERIFY_LOOP = (
    "import sys\n"
    "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey\n"
    "data = open(sys.argv[1], 'rb').read()\n"
    "keys = {}\n"
    "i = 0\n"
    "while i < len(data):\n"
    "    raw, sig = data[i:i + 32], data[i + 32:i + 96]\n"
    "    size = int.from_bytes(data[i + 96:i + 100], 'big')\n"
    "    key = keys.get(raw) or keys.setdefault(raw, Ed25519PublicKey.from_public_bytes(raw))\n"
    "    key.verify(sig, data[i + 100:i + 100 + size])\n"
    "    i += 100 + size\n"
)


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    section: str
    name: str
    median: str = ""
    spread: str = ""
    result: str = ""
    target: str = ""
    verdict: str = ""


# --- statistics and table --------------------------------------------------------------

Samples = dict[str, list[float]]


def interleave(
    variants: dict[str, Callable[[], float]],
    trials: int,
    *,
    warmup: int = 0,
    before: Callable[[], None] | None = None,
    budget: float | None = None,
) -> Samples:
    """Run every variant once per trial, rotating the order; warmup trials are dropped.
    With ``budget`` (seconds), no new trial starts once that much time has passed (at
    least one trial runs)."""
    names = list(variants)
    samples: Samples = {n: [] for n in names}
    start = time.perf_counter()
    for i in range(warmup + trials):
        if budget is not None and i > warmup and time.perf_counter() - start > budget:
            break
        if before is not None:
            before()
        k = i % len(names)
        for name in names[k:] + names[:k]:
            seconds = variants[name]()
            if i >= warmup:
                samples[name].append(seconds)
    return samples


def med(values: list[float]) -> float:
    """Median."""
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """Interquartile range (or range, for few trials) in ms and the trial count."""
    if len(values) < 4:
        return f"range {fmt(min(values) * 1000)}-{fmt(max(values) * 1000)} ms, n={len(values)}"
    q = statistics.quantiles(values, n=4)
    return f"IQR {fmt((q[2] - q[0]) * 1000)} ms, n={len(values)}"


def fmt(value: float) -> str:
    """A number with sensible precision."""
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:.{digits}f}"


def ms(seconds: float) -> str:
    """Seconds as ``123 ms``."""
    return f"{fmt(seconds * 1000)} ms"


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


def timing_row(section: str, name: str, values: list[float]) -> Row:
    """A row showing a median time and its spread."""
    return Row(section, name, ms(med(values)), spread(values))


HEADERS = ("#", "Measurement", "Median", "Spread", "Result", "Target", "Verdict")


def cells(row: Row) -> tuple[str, ...]:
    """The row's cells in header order."""
    return (row.section, row.name, row.median, row.spread, row.result, row.target, row.verdict)


def text_table(rows: list[Row]) -> str:
    """Fixed-width table for the terminal."""
    table = [HEADERS, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(rows: list[Row]) -> str:
    """GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(r)) + " |" for r in rows]
    return "\n".join(lines)


# --- repositories ------------------------------------------------------------------------


def hermetic_env(root: Path) -> dict[str, str]:
    """Environment with its own HOME, keys, identity and bytecode cache, and the venv's
    bin first on PATH."""
    home = root / "home"
    home.mkdir()
    drop = ("GIT_", "GITCOOP_", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        {
            # Byte-compile once, as an installed package would, without touching src/.
            "PYTHONPYCACHEPREFIX": str(root / "pycache"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "GITCOOP_HOME": str(home / "gitcoop"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Bench",
            "GIT_AUTHOR_EMAIL": "bench@example.org",
            "GIT_COMMITTER_NAME": "Bench",
            "GIT_COMMITTER_EMAIL": "bench@example.org",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return env


def new_challenge(sh: Shell, path: Path, remotes: Sequence[str] = ()) -> Path:
    """``new_repo`` plus bare remotes, made a challenge with ``git coop init``."""
    new_repo(sh, path)
    for name in remotes:
        bare = path.parent / f"{path.name}-{name}.git"
        sh.git(path.parent, "init", "-q", "--bare", str(bare))
        sh.git(path, "remote", "add", name, str(bare))
    sh.git(path, *INIT, "--protect", "evaluate.py")
    return path


def commit_score(sh: Shell, repo: Path, value: str) -> None:
    """Commit a new ``score.txt``."""
    (repo / "score.txt").write_text(f"{value}\n")
    sh.git(repo, "commit", "-q", "-a", "-m", f"score {value}")


def add_commits(sh: Shell, repo: Path, count: int) -> list[str]:
    """Append ``count`` commits with distinct scores (so distinct trees) in one fast-import."""
    stamp = f"Bench <bench@example.org> {int(time.time())} +0000"
    stream = bytearray()
    for i in range(count):
        data, message = f"0.{100000 + i}\n".encode(), f"score {i}\n".encode()
        stream += f"commit refs/heads/main\ncommitter {stamp}\n".encode()
        stream += f"data {len(message)}\n".encode() + message
        stream += b"from refs/heads/main^0\n" if i == 0 else b""
        stream += f"M 100644 inline score.txt\ndata {len(data)}\n".encode() + data + b"\n"
    sh.run(["git", "fast-import", "--quiet"], repo, stdin=bytes(stream))
    sh.git(repo, "reset", "-q", "--hard")
    return sh.git(repo, "rev-list", "--reverse", f"HEAD~{count}..HEAD").split()


def ledger_size(sh: Shell, repo: Path) -> int:
    """Number of ledger entries."""
    return int(sh.git(repo, "rev-list", "--count", "refs/coop/ledger"))


# --- 1. push overhead --------------------------------------------------------------------


def bench_push(sh: Shell, root: Path, trials: int) -> list[Row]:
    """(a) push through the hook vs (b) the same commit pushed --no-verify to a twin
    remote vs (c) the metric alone; overhead = a - b - c."""
    repo = new_challenge(sh, root / "push", remotes=("origin", "twin"))
    sh.git(repo, "push", "-q", "-u", "origin", "main")
    sh.git(repo, "push", "-q", "--no-verify", "twin", "main")
    before_entries = ledger_size(sh, repo)
    values = itertools.count(1)

    def new_commit() -> None:
        commit_score(sh, repo, f"0.{200000 + next(values)}")

    samples = interleave(
        {
            "a": lambda: sh.time(["git", "push", "-q", "origin", "main"], repo),
            "b": lambda: sh.time(["git", "push", "-q", "--no-verify", "twin", "main"], repo),
            "c": lambda: sh.time(["python", "evaluate.py"], repo),
        },
        trials,
        warmup=WARMUP,
        before=new_commit,
    )
    scored = ledger_size(sh, repo) - before_entries
    if scored != trials + WARMUP:
        raise BenchError(f"the hook attested {scored} pushes, expected {trials + WARMUP}")
    a, b, c = (med(samples[k]) for k in "abc")
    overhead = (a - b - c) * 1000
    return [
        timing_row("1", "push through the hook (a)", samples["a"]),
        timing_row("1", "push --no-verify, twin remote (b)", samples["b"]),
        timing_row("1", "metric alone (c)", samples["c"]),
        Row("1", "hook overhead a - b - c", result=f"{overhead:.1f} ms",
            target=f"<= {PUSH_BAR_MS:.0f} ms", verdict=verdict(overhead <= PUSH_BAR_MS)),
    ]


# --- 2. idle hook and --help -------------------------------------------------------------


def bench_idle(sh: Shell, root: Path, trials: int) -> list[Row]:
    """The hook with nothing to score, and ``git coop --help``, against their imports."""
    repo = new_challenge(sh, root / "idle", remotes=("origin",))
    sh.git(repo, "push", "-q", "-u", "origin", "main")
    head = sh.git(repo, "rev-parse", "HEAD")
    url = sh.git(repo, "remote", "get-url", "origin")
    stdin = f"refs/heads/main {head} refs/heads/main {head}\n".encode()
    entries = ledger_size(sh, repo)
    hook = ["python", "-m", "gitcoop", "hook-impl", "pre-push", "origin", url]
    samples = interleave(
        {
            "hook": lambda: sh.time(hook, repo, stdin),
            "deps": lambda: sh.time(["python", "-c", IMPORT_HOOK_DEPS], repo),
            "help": lambda: sh.time(["git", "coop", "-h"], repo),
            "typer": lambda: sh.time(["python", "-c", "import typer"], repo),
        },
        trials,
        warmup=WARMUP,
    )
    if ledger_size(sh, repo) != entries:
        raise BenchError("the idle hook changed the ledger: it was not idle")
    hook_ratio = med(samples["hook"]) / med(samples["deps"])
    help_ratio = med(samples["help"]) / med(samples["typer"])
    return [
        timing_row("2", "idle hook (hook-impl, nothing new)", samples["hook"]),
        timing_row("2", "baseline: import pygit2 + ed25519", samples["deps"]),
        Row("2", "idle hook / baseline", result=f"{hook_ratio:.2f}x",
            target=f"<= {RATIO_BAR}x", verdict=verdict(hook_ratio <= RATIO_BAR)),
        timing_row("2", "git coop -h (the --help path)", samples["help"]),
        timing_row("2", "baseline: python -c 'import typer'", samples["typer"]),
        Row("2", "-h / baseline", result=f"{help_ratio:.2f}x", verdict="info"),
    ]


# --- 3. scoring N commits ----------------------------------------------------------------


class Scratch:
    """Numbered fresh directories under one root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def next(self, label: str) -> Path:
        """A new, not yet existing path."""
        self.count += 1
        return self.root / f"{label}-{self.count}"


def evaluate_trial(sh: Shell, scratch: Scratch, commits: int, jobs: int) -> Callable[[], float]:
    """A trial: a fresh challenge with ``commits`` new commits, scored by one evaluate."""

    def trial() -> float:
        repo = new_challenge(sh, scratch.next(f"eval-j{jobs}"))
        shas = add_commits(sh, repo, commits)
        entries = ledger_size(sh, repo)
        seconds = sh.time(["git", "coop", "evaluate", "--jobs", str(jobs), *shas], repo)
        if ledger_size(sh, repo) != entries + commits:
            raise BenchError(f"evaluate --jobs {jobs} did not attest all {commits} commits")
        shutil.rmtree(repo)
        return seconds

    return trial


def loop_trial(sh: Shell, scratch: Scratch, commits: int, ways: int) -> Callable[[], float]:
    """A trial: the same commits in a fresh repository, scored by ``ways`` shell loops at
    once, each switching its own reused worktree to each of its commits and running the
    metric there. One loop is the baseline; two show what the machine gives in parallel."""

    def trial() -> float:
        repo = new_repo(sh, scratch.next(f"loop{ways}"))
        shas = add_commits(sh, repo, commits)
        trees = [repo.parent / f"{repo.name}-wt{i}" for i in range(ways)]
        for wt in trees:
            sh.git(repo, "worktree", "add", "-q", "--detach", str(wt), "HEAD")
        seconds = sh.time_all(
            [["sh", "-c", SHELL_LOOP, "sh", str(wt), *shas[i::ways]] for i, wt in
             enumerate(trees)],
            repo,
        )
        for path in [repo, *trees]:
            shutil.rmtree(path)
        return seconds

    return trial


def bench_evaluate(sh: Shell, root: Path, commits: int, rounds: int) -> list[Row]:
    """``git coop evaluate`` of N commits (-j1, -j2) against the shell-loop baseline."""
    scratch = Scratch(root)
    samples = interleave(
        {
            "loop": loop_trial(sh, scratch, commits, 1),
            "j1": evaluate_trial(sh, scratch, commits, 1),
            "loop2": loop_trial(sh, scratch, commits, 2),
            "j2": evaluate_trial(sh, scratch, commits, 2),
        },
        rounds,
    )
    loop, loop2, j1, j2 = (med(samples[k]) for k in ("loop", "loop2", "j1", "j2"))
    ratio, speedup = j1 / loop, j1 / j2
    return [
        timing_row("3", f"shell loop, {commits} commits (baseline)", samples["loop"]),
        timing_row("3", f"git coop evaluate --jobs 1, {commits} commits", samples["j1"]),
        Row("3", "evaluate -j1 / shell loop", result=f"{ratio:.2f}x",
            target=f"<= {RATIO_BAR}x", verdict=verdict(ratio <= RATIO_BAR)),
        Row("3", "gitcoop cost per commit (-j1 minus loop)",
            result=ms((j1 - loop) / commits), verdict="info"),
        timing_row("3", f"git coop evaluate --jobs 2, {commits} commits", samples["j2"]),
        Row("3", "speedup -j2 vs -j1", result=f"{speedup:.2f}x",
            target=f">= {SPEEDUP_BAR}x", verdict=verdict(speedup >= SPEEDUP_BAR)),
        timing_row("3", "2 shell loops in parallel, half each", samples["loop2"]),
        Row("3", "machine's speedup: 2 loops vs 1", result=f"{loop / loop2:.2f}x",
            verdict="info"),
    ]


# --- 4. verify --full --------------------------------------------------------------------


def build_ledger(sh: Shell, repo: Path, entries: int) -> float:
    """Score ``entries`` new commits with one ``git coop evaluate``; return its seconds."""
    shas = add_commits(sh, repo, entries)
    before = ledger_size(sh, repo)
    seconds = sh.time(["git", "coop", "evaluate", *shas], repo)
    if ledger_size(sh, repo) != before + entries:
        raise BenchError(f"evaluate did not attest all {entries} commits")
    return seconds


def bench_verify(sh: Shell, root: Path, entries: int, trials: int) -> list[Row]:
    """Build an M-entry ledger with one evaluate call (its append rate), then time
    ``git coop verify --full`` against a bare loop over the same signatures. A fresh
    challenge (2 entries) and its 2 signatures give each side's fixed cost, so the
    per-entry rates exclude interpreter start and imports."""
    big, small = new_challenge(sh, root / "verify"), new_challenge(sh, root / "verify-small")
    build = build_ledger(sh, big, entries)
    n_big, n_small = ledger_size(sh, big), ledger_size(sh, small)
    sigs_big, sigs_small = root / "big.sigs", root / "small.sigs"
    s_big, s_small = dump_signatures(sh, big, sigs_big), dump_signatures(sh, small, sigs_small)
    verify = ["git", "coop", "verify", "--full"]
    loop = ["python", "-c", VERIFY_LOOP]
    samples = interleave(
        {
            "verify": lambda: sh.time(verify, big),
            "loop": lambda: sh.time([*loop, str(sigs_big)], big),
            "verify0": lambda: sh.time(verify, small),
            "loop0": lambda: sh.time([*loop, str(sigs_small)], small),
        },
        trials,
        warmup=1,
    )
    v, lp, v0, lp0 = (med(samples[k]) for k in ("verify", "loop", "verify0", "loop0"))
    return [
        Row("4", f"append rate: one evaluate of {entries} commits",
            median=f"{build:.2f} s", spread="n=1",
            result=f"{entries / build:.1f} entries/s", verdict="info"),
        timing_row("4", f"git coop verify --full, {n_big} entries", samples["verify"]),
        timing_row("4", f"baseline: Ed25519 loop, {s_big} signatures", samples["loop"]),
        Row("4", "whole-process throughput, verify vs loop",
            result=throughput(n_big, v, s_big, lp), verdict="info"),
        timing_row("4", f"git coop verify --full, {n_small} entries (fixed cost)",
                   samples["verify0"]),
        timing_row("4", f"baseline: Ed25519 loop, {s_small} signatures (fixed cost)",
                   samples["loop0"]),
        Row("4", "per-entry throughput (fixed cost removed)",
            result=throughput(n_big - n_small, v - v0, s_big - s_small, lp - lp0),
            verdict="info"),
    ]


def throughput(done: int, seconds: float, base_done: int, base_seconds: float) -> str:
    """``A/s vs B/s (ratio)``; differences of noisy medians can come out non-positive."""
    if seconds <= 0 or base_seconds <= 0:
        return "n/a (too noisy: raise --entries)"
    a, b = done / seconds, base_done / base_seconds
    return f"{a:.0f}/s vs {b:.0f}/s = {a / b:.2f}x"


# --- 5-9. large scale, on synthetic data (bench/synth.py) -------------------------------

VERIFY_BAR = 0.8  # verify --full throughput over a one-core Ed25519 loop's
CORES_BAR = 1.6  # verify --full free to use both cores over pinned to one
INCREMENTAL_BAR = 1.0  # seconds, verify after 10 new entries
CREDIT_BAR = 5.0  # credit --json over git shortlog -sn
RSS_BAR_MB = 250.0
APPEND_BAR = 500.0  # entries/s
NEW_ENTRIES = 10  # appended before the incremental verify
BANNED = ("eth_account", "requests")

PINNED_LOOP = (
    "import os, sys, time\n"
    "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey\n"
    "data = open(sys.argv[1], 'rb').read()\n"
    "keys, work, i = {}, [], 0\n"
    "while i < len(data):\n"
    "    raw, sig = data[i:i + 32], data[i + 32:i + 96]\n"
    "    size = int.from_bytes(data[i + 96:i + 100], 'big')\n"
    "    key = keys.get(raw) or keys.setdefault(raw, Ed25519PublicKey.from_public_bytes(raw))\n"
    "    work.append((key.verify, sig, data[i + 100:i + 100 + size]))\n"
    "    i += 100 + size\n"
    "os.sched_setaffinity(0, {0})\n"
    "start = time.perf_counter()\n"
    "for verify, sig, message in work:\n"
    "    verify(sig, message)\n"
    "print(time.perf_counter() - start, len(work))\n"
)
# Runs argv as a fresh child; prints its wall seconds, the largest max RSS of any process
# of its tree (getrusage RUSAGE_CHILDREN, KiB), and the peak over time of the summed PSS
# and anonymous PSS of the whole tree (KiB, polled from /proc every 0.2 s).
RSS_PROBE = r"""
import os, resource, subprocess, sys, time
def children():
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(d)
    return kids
def pss(root):
    kids, todo, total, anon = children(), [str(root)], 0, 0
    while todo:
        pid = todo.pop()
        todo += kids.get(int(pid), [])
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                    elif line.startswith("Pss_Anon:"):
                        anon += int(line.split()[1])
        except OSError:
            pass
    return total, anon
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
peak = peak_anon = 0
while proc.poll() is None:
    total, anon = pss(proc.pid)
    peak, peak_anon = max(peak, total), max(peak_anon, anon)
    time.sleep(0.2)
seconds = time.perf_counter() - start
if proc.returncode:
    sys.exit(proc.returncode)
print(seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, peak, peak_anon)
"""
# What one appended entry costs at least: one process writes a blob, a two-name tree and
# a commit, signs about an entry's worth of bytes with Ed25519 and moves a ref by
# compare-and-swap (with its reflog), N times, as gitcoop's ledger.append does.
APPEND_FLOOR = (
    "import os, sys, pygit2\n"
    "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey\n"
    "repo, n, name = pygit2.Repository(sys.argv[1]), int(sys.argv[2]), 'refs/coop/ledger'\n"
    "key, who = Ed25519PrivateKey.generate(), pygit2.Signature('gitcoop', 'gitcoop@localhost')\n"
    "tip = repo.references.get(name).target\n"
    "pinned = repo[tip].tree['challenge'].id\n"
    "body = os.urandom(1200)\n"
    "for i in range(n):\n"
    "    data = body + b'%d' % i\n"
    "    blob = repo.create_blob(data + key.sign(data))\n"
    "    tb = repo.TreeBuilder()\n"
    "    tb.insert('challenge', pinned, pygit2.enums.FileMode.TREE)\n"
    "    tb.insert('entry.json', blob, pygit2.enums.FileMode.BLOB)\n"
    "    new = repo.create_commit(None, who, who, 'floor #%d\\n' % i, tb.write(), [tip])\n"
    "    ref = repo.references.get(name)\n"
    "    assert ref.target == tip\n"
    "    ref.set_target(new, 'floor')\n"
    "    tip = new\n"
)
OK_LINE = re.compile(r"ledger OK: (\d+) entries, (\d+) checked now")


class Scale:
    """The large-scale sections' shared state: options, datasets and the big repository."""

    def __init__(self, sh: Shell, root: Path, args: argparse.Namespace) -> None:
        self.sh, self.root, self.args = sh, root, args
        self.datasets: list[synth.Dataset] = []
        self.generation = 0.0  # seconds spent generating datasets in this run
        self._big: Path | None = None

    def dataset(self, commits: int, entries: int) -> synth.Dataset:
        """A cached dataset (generated when missing); remembered for the report."""
        start = time.perf_counter()
        ds = synth.obtain(synth.Spec(commits, entries), self.sh, regenerate=self.args.regenerate,
                          log=lambda line: print(f"bench: {line}", file=sys.stderr))
        if ds.generated:
            self.generation += time.perf_counter() - start
            print(f"bench: generated {ds.path.name} in {time.perf_counter() - start:.1f} s",
                  file=sys.stderr)
        if all(d.path != ds.path for d in self.datasets):
            self.datasets.append(ds)
        return ds

    def shell(self, ds: synth.Dataset) -> Shell:
        """The bench environment, signing with the dataset's maintainer key."""
        return Shell({**self.sh.env, "GITCOOP_HOME": str(ds.home / "gitcoop")})

    def big(self) -> tuple[synth.Dataset, Path]:
        """The ledger dataset of (5) and (6), and this run's private copy of it."""
        ds = self.dataset(self.args.ledger, self.args.ledger)
        if self._big is None:
            self._big = synth.copy_repo(ds, self.root / "big")
        return ds, self._big


def coop_state(repo: Path) -> Path:
    """gitcoop's local directory (pin, verified index, caches) of a repository."""
    return repo / ".git" / "coop"


def save_state(repo: Path, to: Path) -> None:
    """Copy gitcoop's local state (all but the scoring worktrees) to ``to``."""
    shutil.rmtree(to, ignore_errors=True)
    shutil.copytree(coop_state(repo), to, ignore=shutil.ignore_patterns("worktrees"))


def restore_state(repo: Path, saved: Path) -> None:
    """Put back what ``save_state`` saved (scoring worktrees untouched)."""
    for child in coop_state(repo).iterdir():
        if child.name != "worktrees":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.copytree(saved, coop_state(repo), dirs_exist_ok=True)


def checked_run(sh: Shell, argv: Sequence[str], repo: Path, entries: int,
                checked: int) -> float:
    """Time a verify; check it reports ``entries`` entries and ``checked`` checked now."""
    start = time.perf_counter()
    out = sh.run(argv, repo)
    seconds = time.perf_counter() - start
    got = OK_LINE.search(out)
    if got is None or (int(got[1]), int(got[2])) != (entries, checked):
        raise BenchError(f"`{' '.join(argv)}` said {out.strip()[:300]!r}, expected "
                         f"{entries} entries, {checked} checked now")
    return seconds


def bench_scale_verify(sx: Scale) -> list[Row]:
    """``verify --full`` of the big ledger, on both cores and pinned to one, against a
    loop of Ed25519 checks of the same signatures pinned to one core."""
    ds, repo = sx.big()
    sh, n = sx.shell(ds), ds.ledger_entries
    sigs_file = ds.sigs
    if not sigs_file.exists():  # large datasets keep none: read them back from the ledger
        sigs_file = sx.root / "big.sigs"
        dump_signatures(sh, repo, sigs_file)
    pin = coop_state(repo) / "verified.json"
    full = ["git", "coop", "verify", "--full"]

    def verify(argv: list[str]) -> Callable[[], float]:
        def trial() -> float:
            pin.unlink(missing_ok=True)
            return checked_run(sh, argv, repo, n, n)

        return trial

    loops: list[int] = []

    def loop() -> float:
        seconds, count = sh.run(["python", "-c", PINNED_LOOP, str(sigs_file)], repo).split()
        loops.append(int(count))
        return float(seconds)

    samples = interleave(
        {"all": verify(full), "one": verify(["taskset", "-c", "0", *full]), "loop": loop},
        sx.args.big_trials, budget=sx.args.big_budget,
    )
    sigs = loops[0]
    v2, v1 = (n / med(samples[k]) for k in ("all", "one"))
    lp = sigs / med(samples["loop"])
    speedup = med(samples["one"]) / med(samples["all"])
    return [
        timing_row("5", f"git coop verify --full, {n} entries, both cores", samples["all"]),
        timing_row("5", f"taskset -c 0 git coop verify --full, {n} entries", samples["one"]),
        timing_row("5", f"baseline: Ed25519 loop on core 0, {sigs} signatures (loop only)",
                   samples["loop"]),
        Row("5", "verify --full (core 0 only) vs loop, throughput",
            result=f"{v1:.0f}/s vs {lp:.0f}/s = {v1 / lp:.2f}x", target=f">= {VERIFY_BAR}x",
            verdict=verdict(v1 / lp >= VERIFY_BAR)),
        Row("5", "verify --full (both cores) vs loop, throughput",
            result=f"{v2:.0f}/s vs {lp:.0f}/s = {v2 / lp:.2f}x", verdict="info"),
        Row("5", "verify --full speedup, both cores vs one", result=f"{speedup:.2f}x",
            target=f">= {CORES_BAR}x", verdict=verdict(speedup >= CORES_BAR)),
    ]


def bench_scale_incremental(sx: Scale) -> list[Row]:
    """Append entries for new commits with ``git coop evaluate``, then time ``git coop
    verify`` from the pin before them, against ``verify`` with nothing new."""
    ds, repo = sx.big()
    sh = sx.shell(ds)
    sh.git(repo, "coop", "verify")  # the pin (and whatever verify keeps) at the head
    before, after = sx.root / "state-before", sx.root / "state-after"
    save_state(repo, before)
    n = ledger_size(sh, repo)
    shas = synth.add_scored_commits(sh, repo, ds.meta["commits"] + 1, NEW_ENTRIES)
    sh.run(["git", "coop", "evaluate", *shas], repo)
    if ledger_size(sh, repo) != n + NEW_ENTRIES:
        raise BenchError(f"evaluate did not append {NEW_ENTRIES} entries")
    total = n + NEW_ENTRIES
    checked_run(sh, ["git", "coop", "verify"], repo, total, NEW_ENTRIES)  # warm-up
    save_state(repo, after)

    def run(saved: Path, checked: int) -> Callable[[], float]:
        def trial() -> float:
            restore_state(repo, saved)
            return checked_run(sh, ["git", "coop", "verify"], repo, total, checked)

        return trial

    samples = interleave({"new": run(before, NEW_ENTRIES), "none": run(after, 0)},
                         sx.args.verify_trials)
    restore_state(repo, after)
    new = med(samples["new"])
    return [
        timing_row("5", f"git coop verify, {NEW_ENTRIES} new entries on {n}", samples["new"]),
        timing_row("5", "baseline: git coop verify, nothing new", samples["none"]),
        Row("5", f"incremental verify of {NEW_ENTRIES} new entries", result=ms(new),
            target=f"< {INCREMENTAL_BAR:.0f} s", verdict=verdict(new < INCREMENTAL_BAR)),
    ]


def bench_scale_credit(sx: Scale) -> list[Row]:
    """``git coop credit --json`` of the big history, its ledger verified, against
    ``git shortlog -sn HEAD`` of the same repository."""
    ds, repo = sx.big()
    sh = sx.shell(ds)
    sh.git(repo, "coop", "verify")
    commits = int(sh.git(repo, "rev-list", "--count", "HEAD"))
    outputs: list[str] = []

    def credit() -> float:
        start = time.perf_counter()
        outputs.append(sh.run(["git", "coop", "credit", "--json"], repo))
        return time.perf_counter() - start

    cold = credit()  # the first after verify: builds whatever gitcoop keeps for credit
    samples = interleave(
        {"credit": credit,
         "shortlog": lambda: sh.time(["git", "shortlog", "-sn", "HEAD"], repo)},
        sx.args.big_trials, budget=sx.args.big_budget,
    )
    report = json.loads(outputs[0])
    tip = sh.git(repo, "rev-parse", "HEAD")
    scored = sum(int(c["commits"]) for c in report["contributors"])
    if (report["best"] or {}).get("commit") != tip or scored != commits - 2:
        raise BenchError(f"credit --json looks wrong: best {report['best']}, {scored} "
                         f"commits credited of {commits - 2}")
    shortlog = med(samples["shortlog"])
    ratio = med(samples["credit"]) / shortlog
    return [
        Row("6", f"git coop credit --json, {commits - 2} attested commits, first run",
            median=ms(cold), spread="n=1", result=f"{cold / shortlog:.2f}x shortlog",
            verdict="info"),
        timing_row("6", "git coop credit --json, later runs", samples["credit"]),
        timing_row("6", "baseline: git shortlog -sn HEAD", samples["shortlog"]),
        Row("6", "credit (later runs) / shortlog", result=f"{ratio:.2f}x",
            target=f"<= {CREDIT_BAR:.0f}x", verdict=verdict(ratio <= CREDIT_BAR)),
    ]


def rss_probe(sh: Shell, argv: Sequence[str], repo: Path) -> tuple[float, float, float, float]:
    """(seconds, max RSS MB of the largest process, peak PSS MB of the process tree,
    peak anonymous PSS MB of the tree) of one run of ``argv`` in a fresh child."""
    seconds, rss, pss, anon = sh.run(["python", "-c", RSS_PROBE, *argv], repo).split()
    return float(seconds), int(rss) / 1024, int(pss) / 1024, int(anon) / 1024


def bench_scale_memory(sx: Scale) -> list[Row]:
    """Peak memory of ``verify --full`` of the 1M-entry ledger, measured once, against
    the same on a fresh 2-entry ledger (the fixed cost)."""
    ds = sx.dataset(sx.args.memory_commits or sx.args.memory, sx.args.memory)
    start = time.perf_counter()
    repo = synth.copy_repo(ds, sx.root / "memory")
    copy = time.perf_counter() - start
    sh, n = sx.shell(ds), ds.ledger_entries
    small = new_challenge(sx.sh, sx.root / "memory-small")
    verify = ["git", "coop", "verify", "--full"]
    s0, rss0, pss0, _ = rss_probe(sx.sh, verify, small)
    seconds, rss, pss, anon = rss_probe(sh, verify, repo)
    if ds.meta["cycling"]:
        what = f"{n} entries over {ds.meta['commits']} commits, cycling"
    else:
        what = f"{n} entries, one per commit"
    shutil.rmtree(repo)
    per_entry = (rss - rss0) * 1024 * 1024 / n
    return [
        Row("7", f"git coop verify --full, {what}: max RSS", median=f"{rss:.0f} MB",
            spread="n=1", result=f"{seconds:.1f} s, {n / seconds:.0f} entries/s",
            target=f"<= {RSS_BAR_MB:.0f} MB", verdict=verdict(rss <= RSS_BAR_MB)),
        Row("7", "same run: peak PSS of the whole process tree (of which anonymous)",
            median=f"{pss:.0f} MB", spread="n=1", result=f"{anon:.0f} MB anonymous",
            verdict="info"),
        Row("7", "baseline: verify --full of a 2-entry ledger: max RSS (peak tree PSS)",
            median=f"{rss0:.0f} MB", spread="n=1",
            result=f"{pss0:.0f} MB, {ms(s0)}", verdict="info"),
        Row("7", "max RSS growth per entry", result=f"{per_entry:.0f} bytes",
            verdict="info"),
        Row("7", "setup: copying the dataset to the scratch directory (not timed above)",
            median=f"{copy:.1f} s", spread="n=1", verdict="info"),
    ]


def prefill_scores(repo: Path, shas: list[str], first: int) -> None:
    """Put each commit's score into gitcoop's score cache, keyed by its effective tree and
    the challenge digest, as a metric run would (through gitcoop's own ScoreCache)."""
    from gitcoop import cache, pinned
    from gitcoop.session import open_session

    s = open_session(repo)
    scores = cache.ScoreCache(s.local)
    for k, commit in enumerate(shas, first):
        tree = pinned.effective_tree(s.repo, s.repo.commit(commit).tree, s.pinned.challenge)
        scores.put(tree, s.pinned.digest, Decimal(synth.score_text(k)), 23)


def count_objects(sh: Shell, repo: Path) -> str:
    """``count-objects -v``: loose count and size, packs and their size."""
    got = dict(line.split(": ") for line in sh.git(repo, "count-objects", "-v").splitlines())
    return (f"{got['count']} loose ({got['size']} KiB), {got['packs']} packs "
            f"({got['size-pack']} KiB)")


def bench_scale_append(sx: Scale) -> list[Row]:
    """One ``git coop evaluate`` appending K entries whose scores are all in the score
    cache, against a pygit2 + Ed25519 floor doing the same writes; object counts after."""
    k, sh = sx.args.appends, sx.sh
    repo = new_challenge(sh, sx.root / "append")
    shas = synth.add_scored_commits(sh, repo, 1, k)
    prefill_scores(repo, shas, 1)
    before = ledger_size(sh, repo)
    start = time.perf_counter()
    out = sh.run(["git", "coop", "evaluate", "--json", f"HEAD~{k}..HEAD"], repo)
    seconds = time.perf_counter() - start
    outcomes = json.loads(out)
    attested = sum(o["attested"] for o in outcomes)
    cached = sum(o["cached"] for o in outcomes)
    if attested != k or ledger_size(sh, repo) != before + k:
        raise BenchError(f"evaluate attested {attested} of {k} commits")
    loose = count_objects(sh, repo)
    # In the foreground, so the counts after it show its effect (users get it detached).
    gc = sh.time(["git", "-c", "gc.autoDetach=false", "gc", "--auto", "--quiet"], repo)
    packed = count_objects(sh, repo)
    floor_repo = new_challenge(sh, sx.root / "append-floor")
    floor = sh.time(["python", "-c", APPEND_FLOOR, str(floor_repo), str(k)], floor_repo)
    rate, floor_rate = k / seconds, k / floor
    return [
        Row("8", f"git coop evaluate of {k} commits, scores cached ({cached} hits)",
            median=f"{seconds:.2f} s", spread="n=1", result=f"{rate:.0f} entries/s",
            target=f">= {APPEND_BAR:.0f}/s", verdict=verdict(rate >= APPEND_BAR)),
        Row("8", f"baseline: pygit2 + Ed25519 floor, {k} entries (one process)",
            median=f"{floor:.2f} s", spread="n=1", result=f"{floor_rate:.0f} entries/s",
            verdict="info"),
        Row("8", "evaluate vs floor, throughput", result=f"{rate / floor_rate:.2f}x",
            verdict="info"),
        Row("8", "objects after evaluate (count-objects -v)", result=loose, verdict="info"),
        Row("8", "objects after git gc --auto (in the foreground)", median=ms(gc),
            spread="n=1", result=packed, verdict="info"),
    ]


def imported(sh: Shell, argv: Sequence[str], cwd: Path) -> set[str]:
    """Top-level names of every module ``python -X importtime`` reports for ``argv``."""
    proc = subprocess.run(["python", "-X", "importtime", *argv], cwd=cwd, env=sh.env,
                          capture_output=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"`python -X importtime {' '.join(argv)}` exited {proc.returncode}:\n"
                         f"{proc.stderr.decode(errors='replace')[-2000:]}")
    names = set()
    for line in proc.stderr.decode(errors="replace").splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name)
    return names


def bench_scale_imports(sx: Scale) -> list[Row]:
    """Neither the help path nor ``credit --json`` imports eth_account or requests."""
    repo = new_challenge(sx.sh, sx.root / "imports")
    typer_count = len(imported(sx.sh, ["-c", "import typer"], repo))
    rows = []
    for label, argv in (("python -m gitcoop -h", ["-m", "gitcoop", "-h"]),
                        ("python -m gitcoop credit --json", ["-m", "gitcoop", "credit",
                                                            "--json"])):
        names = imported(sx.sh, argv, repo)
        bad = sorted({n.split(".")[0] for n in names} & set(BANNED))
        rows.append(Row("9", f"{label}: imports {' or '.join(BANNED)}?",
                        result=f"{'yes: ' + ', '.join(bad) if bad else 'no'} "
                               f"({len(names)} modules; import typer alone: {typer_count})",
                        target="no", verdict=verdict(not bad)))
    return rows


# --- report ------------------------------------------------------------------------------


def machine(sh: Shell) -> str:
    """One line describing the machine and the software measured."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = sh.run(
        ["python", "-c", "import gitcoop, pygit2, cryptography, typer; print(gitcoop.__version__,"
         " pygit2.__version__, cryptography.__version__, typer.__version__)"], ROOT,
    ).split()
    git = sh.run(["git", "--version"], ROOT).split()[-1]
    optional = sh.run(["python", "-c", OPTIONAL_VERSIONS], ROOT).strip()
    return (
        f"{os.cpu_count()} x {cpu}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, git {git}, gitcoop {versions[0]} "
        f"(pygit2 {versions[1]}, cryptography {versions[2]}, typer {versions[3]}"
        f"{', ' + optional if optional else ''})"
    )


OPTIONAL_VERSIONS = (
    "import importlib.metadata as m\n"
    "found = []\n"
    "for name in ('PyNaCl',):\n"
    "    try:\n"
    "        found.append(f'{name} {m.version(name)}')\n"
    "    except m.PackageNotFoundError:\n"
    "        pass\n"
    "print(', '.join(found))\n"
)


def docs_text(result: Result, args: argparse.Namespace, about: str, date: str,
              tmp: Path, runtime: float) -> str:
    """The Markdown page: what, how, where, when, then the table."""
    what = (
        "**What is measured.** (1) The extra time a `git push` of one new commit to the "
        "challenge branch takes because of the pre-push hook, against the product's bar of "
        f"{PUSH_BAR_MS:.0f} ms beyond the metric itself. (2) The hook when there is nothing "
        "to score, against the bare import of its dependencies (target <= "
        f"{RATIO_BAR}x), and the CLI's help against `import typer` (as `git coop -h`: git "
        "turns `git coop --help` into `git help coop`, a man-page lookup). (3) `git coop "
        f"evaluate` of {args.commits} commits against a shell loop that switches one reused "
        "worktree to each commit (`checkout --detach -f`, `clean -ffdxq`) and runs the "
        f"metric there (target <= {RATIO_BAR}x), and the `--jobs 2` speedup over `--jobs 1` "
        f"(target >= {SPEEDUP_BAR}x), next to what two such loops in parallel gain on this "
        f"machine. (4) The append rate of one `evaluate` call scoring {args.entries} commits "
        "into a ledger, and `git coop verify --full` of that ledger against a bare Python "
        "loop of `cryptography` Ed25519 verifications of the same signatures, per whole "
        "process and per entry (each side's fixed cost, measured on a fresh 2-entry ledger, "
        "subtracted)."
    )
    scale = (
        "**At scale** (synthetic data, below). (5) `git coop verify --full` of a ledger of "
        f"{args.ledger:,} attestations, one per commit, free to use both cores and under "
        "`taskset -c 0`, against a loop of `cryptography` Ed25519 verifications of the same "
        "signatures on core 0, timed inside that process around the loop alone (target: "
        f"verify's whole-process throughput on core 0 >= {VERIFY_BAR}x the loop's; both cores >= "
        f"{CORES_BAR}x one core); then {NEW_ENTRIES} more entries appended by `git coop "
        "evaluate` and `git coop verify` timed from the pin before them, against `verify` "
        f"with nothing new (target < {INCREMENTAL_BAR:.0f} s). (6) `git coop credit --json` "
        "of that history, its ledger verified, against `git shortlog -sn HEAD` (target <= "
        f"{CREDIT_BAR:.0f}x for the runs after the first, which builds what gitcoop keeps "
        "for credit and is shown apart). (7) Peak memory of `git coop verify --full` of a "
        f"{args.memory:,}-entry ledger, run once in a fresh child: the largest max RSS of "
        "any of its processes (`getrusage(RUSAGE_CHILDREN)`, target <= "
        f"{RSS_BAR_MB:.0f} MB) and, polled from `/proc`, the peak PSS of the whole process "
        "tree, next to a 2-entry ledger. (8) One `git coop evaluate` appending "
        f"{args.appends:,} entries whose scores are already in gitcoop's score cache, so "
        "it measures scoring from the cache, signing and one compare-and-swap ref update "
        f"per entry (target >= {APPEND_BAR:.0f} entries/s over the whole process), against "
        "a pygit2 + Ed25519 floor doing the same object writes, signatures and ref updates "
        "in one process; then `git count-objects -v` before and after `git gc --auto`. "
        f"(9) `python -X importtime` of `python -m gitcoop -h` and of `credit --json`: "
        f"neither may import {' or '.join(BANNED)}. (10) `git coop sync` taking "
        f"{SYNC_NEW:,} new entries from a remote (fetch, verify, fast-forward, notes index), "
        "minus the same sync with nothing new, against a loop of `cryptography` Ed25519 "
        "verifications of those entries' signatures on core 0 (target <= "
        f"{SYNC_BAR}x): the ratio of each trial's three runs, whose median is the result; "
        "each trial's clone is made before its runs, outside the timings."
    )
    how = (
        "**How.** Each gitcoop number has a baseline measured in the same run; trials of the "
        "variants are interleaved (the order rotates every trial) and the table shows "
        "medians, with the interquartile range as spread, so machine noise shifts both sides "
        "alike. The metric is a one-line Python script printing `score.txt` as JSON: one "
        f"interpreter start. Everything runs in a temporary directory under `{tmp.parent}` "
        "with its own `HOME`, signing key, git config and bytecode cache (as an installed "
        "package has). In (1) each trial commits a new score, then pushes that same commit "
        "through the hook to `origin` (a), with `--no-verify` to a twin bare remote (b: the "
        "same objects over the same transport), and runs `python evaluate.py` (c); overhead "
        "= a - b - c. In (3) every trial uses a fresh repository, and every commit a "
        "distinct score, so no score cache helps. Trials per variant after a warm-up: "
        f"{args.trials} in (1) and (2), {args.rounds} in (3), {args.verify_trials} in (4) and "
        f"the incremental verify of (5); in (5) and (6) up to {args.big_trials}, no warm-up, "
        f"none started after {args.big_budget:.0f} s (n in the table); {SYNC_TRIALS} in "
        f"(10), no warm-up; (7) and (8) run once. Whole run: {runtime:.0f} s, of which "
        f"{result.scale.generation:.0f} s generating synthetic data."
    )
    paragraphs = [
        "Generated by `PATH=.venv/bin:$PATH .venv/bin/python bench/run.py --write-docs`; "
        "do not edit by hand (see `bench/README.md`).",
        what,
        scale,
        how,
        synth_text(result.scale),
        f"**Machine.** {about}.",
        f"**Date.** {date}.",
        "**Sections** (wall time, generation excluded): "
        + ", ".join(f"{label} {seconds:.0f} s" for label, seconds in result.sections) + ".",
        *missed_text(result.rows),
    ]
    prose = "\n\n".join(textwrap.fill(text, 90, break_on_hyphens=False) for text in paragraphs)
    return (f"# Performance\n\n{prose}\n\n{markdown_table(result.rows)}\n\n"
            f"Synthetic datasets:\n\n{datasets_table(result.scale)}\n")


# Why a target this machine misses is missed, and what would change it, by section.
WHY_MISSED = {
    "10": (
        "**Why (10) misses.** A sync pays for three things the bare loop does not: git "
        "moving the entries, verification beyond the signature, and the notes index. git "
        "moves three objects an entry (commit, tree, `entry.json`): the remote's "
        "pack-objects, index-pack here and the connectivity check cost about 65 µs an entry, "
        "0.6x the loop by themselves, and no fetch option removes them. Verification costs "
        "about 1.2x the loop per entry on one core (signature, three object reads, two "
        "documents to match; see (5)); a sync of 1,000 entries splits it over both cores, "
        "which forking the workers partly eats. Writing 1,000 notes through one `git "
        "fast-import` adds about 30 ms (their lines come from the verification, not a "
        "second read). Within the ledger's format (one git commit per entry, part of the "
        "contract) the remaining gap is git's transfer; entries batched several to a "
        "commit would cut it, and would be a format change."
    ),
}


def missed_text(rows: list[Row]) -> list[str]:
    """The explanation of each section with a failing target."""
    failed = dict.fromkeys(r.section for r in rows if r.verdict == "FAIL")
    return [WHY_MISSED[s] for s in failed if s in WHY_MISSED]


def synth_text(sx: Scale) -> str:
    """How the synthetic data is made (and where it is kept)."""
    return (
        "**Synthetic data** (`bench/synth.py`), generated once and cached in "
        "`$XDG_CACHE_HOME/gitcoop-bench` (default `~/.cache/gitcoop-bench`) by format "
        "version and size: `git coop init` of the same "
        "metric, then N commits on `main` in one `git fast-import`, each setting "
        "`score.txt` to a distinct value, then one attestation per commit built with "
        "gitcoop's own record code as `git coop evaluate` builds it (same fields, challenge "
        "digest and origin from the ledger head, parent score and delta, environment, "
        "signer), signed with the maintainer's key, linked as `ledger.append` links entries "
        "and written as ledger commits (`entry.json` plus the pinned `challenge` tree) by a "
        "second `git fast-import`. Each run works on a copy. At generation the ledger is "
        f"checked by `git coop verify --full` up to {synth.FULL_CHECK_MAX:,} entries and, "
        "above, by gitcoop's verification code on windows of 200 entries (the first, 20 "
        "random ones, the last)."
    )


def datasets_table(sx: Scale) -> str:
    """One line per dataset used: sizes, generation time, check, disk use."""
    lines = ["| Dataset | Commits | Ledger entries | Generated | Seconds | Check | Size |",
             "|---|---|---|---|---|---|---|"]
    for ds in sx.datasets:
        m = ds.meta
        when = f"{m['created']}{' (this run)' if ds.generated else ''}"
        cycling = " (cycling)" if m["cycling"] else ""
        lines.append(f"| `{ds.path.name}` | {m['commits']:,}{cycling} | "
                     f"{m['ledgerEntries']:,} | {when} | {m['generationSeconds']} | "
                     f"{m['check']} | {m['bytes'] / 1e6:.0f} MB |")
    return "\n".join(lines)


def scratch_root() -> Path:
    """Temp dir on tmpfs when there is one."""
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="gitcoop-bench-", dir=base))


FULL = {"commits": 200, "entries": 300, "trials": 21, "rounds": 7, "verify_trials": 11,
        "ledger": 100_000, "memory": 1_000_000, "appends": 10_000, "big_trials": 3}
QUICK = {"commits": 10, "entries": 100, "trials": 5, "rounds": 3, "verify_trials": 3,
         "ledger": 2_000, "memory": 10_000, "appends": 2_000, "big_trials": 2}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; unset sizes and counts come from FULL, or QUICK."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="small sizes and few trials, for a smoke run")
    p.add_argument("--commits", type=int, help="commits per evaluate trial (3); 200")
    p.add_argument("--entries", type=int, help="ledger entries to verify (4); 300")
    p.add_argument("--trials", type=int,
                   help="trials per variant in (1) and (2); 21")
    p.add_argument("--rounds", type=int, help="trials per variant in (3); 7")
    p.add_argument("--verify-trials", type=int,
                   help="trials per variant in (4) and the incremental verify (5); 11")
    p.add_argument("--ledger", type=int,
                   help="attestations (one per commit) verified and credited in (5), (6); "
                        "100000")
    p.add_argument("--memory", type=int,
                   help="attestations of the ledger whose verify memory (7) measures; 1000000")
    p.add_argument("--memory-commits", type=int,
                   help="commits under the (7) ledger (default: one per attestation; fewer: "
                        "the attestations cycle over them)")
    p.add_argument("--appends", type=int, help="entries one evaluate appends in (8); 10000")
    p.add_argument("--big-trials", type=int, help="most trials per variant in (5), (6); 3")
    p.add_argument("--big-budget", type=float, default=120.0,
                   help="seconds after which (5) and (6) start no new trial; 120")
    p.add_argument("--only", help="comma-separated sections to run, e.g. 5,6,9")
    p.add_argument("--regenerate", action="store_true",
                   help="generate the synthetic datasets again even when cached")
    p.add_argument("--write-docs", action="store_true", help=f"also write {DOCS}")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in (*FULL, "memory_commits"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.ledger < 10:
        p.error("--ledger must be at least 10")
    return args


def warm_up(sh: Shell, root: Path) -> list[Row]:
    """Run every measured code path once, so bytecode and page caches are warm."""
    repo = new_challenge(sh, root / "warm-up", remotes=("origin",))
    sh.git(repo, "push", "-q", "-u", "origin", "main")
    commit_score(sh, repo, "0.7")
    sh.git(repo, "push", "-q", "origin", "main")
    sh.git(repo, "coop", "evaluate", "--jobs", "2", *add_commits(sh, repo, 2))
    sh.git(repo, "coop", "verify", "--full")
    sh.git(repo, "coop", "-h")
    sh.run(["python", "-c", f"import typer; {IMPORT_HOOK_DEPS}"], repo)
    shutil.rmtree(repo)
    return []


@dataclass
class Result:
    """What a run produced: the table's rows, each section's time, the datasets used."""

    rows: list[Row]
    sections: list[tuple[str, float]]
    scale: Scale


# --- 10. sync ---------------------------------------------------------------------------

SYNC_NEW = 1000  # entries a sync takes from the remote
SYNC_BAR = 1.5  # sync's cost per new entry over the bare loop's per signature
SYNC_BASE = 2000  # the dataset whose ledger the remote holds
SYNC_TRIALS = 15  # trials per variant: the difference of two timings needs more than one


def tail_signatures(src: Path, dst: Path, count: int) -> None:
    """Keep the last ``count`` records of a signature dump (the loop's input format)."""
    data, records, i = src.read_bytes(), [], 0
    while i < len(data):
        size = int.from_bytes(data[i + 96 : i + 100], "big")
        records.append(data[i : i + 100 + size])
        i += 100 + size
    dst.write_bytes(b"".join(records[-count:]))


def bench_sync(sx: Scale) -> list[Row]:
    """``git coop sync`` taking ``SYNC_NEW`` new entries from a remote (fetch, verify,
    fast-forward, notes), against the same sync with nothing new, and against a loop of
    Ed25519 checks of those entries' signatures; the three back to back in every trial."""
    ds = sx.dataset(SYNC_BASE, SYNC_BASE)
    sh = sx.shell(ds)
    root = sx.root / "sync"
    root.mkdir()
    new, old = root / "new.git", root / "old.git"
    sh.git(root, "clone", "-q", "--mirror", str(ds.path / "repo"), str(new))
    sh.git(root, "clone", "-q", "--mirror", str(new), str(old))
    sh.git(old, "update-ref", "refs/coop/ledger", f"refs/coop/ledger~{SYNC_NEW}")
    sh.git(old, "gc", "-q", "--prune=now")  # the old remote keeps only what it references
    sigs = root / "new.sigs"
    tail_signatures(ds.sigs, sigs, SYNC_NEW)
    clones = iter(range(10_000))

    def fresh() -> Path:
        # A clone of the old remote, its ledger verified, then pointed at the new one.
        clone = root / f"clone-{next(clones)}"
        sh.git(root, "clone", "-q", "--no-checkout", str(old), str(clone))
        sh.run(["git", "coop", "sync", "origin"], clone)
        sh.git(clone, "coop", "verify")
        sh.git(clone, "remote", "set-url", "origin", str(new))
        return clone

    def sync(clone: Path) -> float:
        start = time.perf_counter()
        sh.run(["git", "coop", "sync", "origin"], clone)
        return time.perf_counter() - start

    ready: list[Path] = []

    def prepare() -> None:
        # Outside the timed calls: each trial's sync takes the entries into a new clone.
        ready.append(fresh())

    def taking() -> float:
        clone = ready.pop()
        seconds = sync(clone)
        if ledger_size(sh, clone) != ledger_size(sh, new):
            raise BenchError("sync did not take the remote's entries")
        shutil.rmtree(clone)
        return seconds

    settled = fresh()
    sync(settled)

    def nothing() -> float:
        return sync(settled)

    loops: list[float] = []

    def loop() -> float:
        start = time.perf_counter()
        inside, count = sh.run(["python", "-c", PINNED_LOOP, str(sigs)], root).split()
        if int(count) != SYNC_NEW:
            raise BenchError(f"the loop checked {count} signatures")
        loops.append(float(inside))
        return time.perf_counter() - start

    samples = interleave(
        {"new": taking, "none": nothing, "loop": loop}, SYNC_TRIALS, before=prepare
    )
    # Each trial's three runs are seconds apart: pairing them cancels the machine's drift.
    ratios = [
        (n - z) / b for n, z, b in zip(samples["new"], samples["none"], loops, strict=True)
    ]
    ratio = med(ratios)
    q = statistics.quantiles(ratios, n=4)
    marginal = med(samples["new"]) - med(samples["none"])
    return [
        timing_row("10", f"git coop sync taking {SYNC_NEW} new entries", samples["new"]),
        timing_row("10", "baseline: git coop sync, nothing new", samples["none"]),
        timing_row("10", f"baseline: Ed25519 loop process, {SYNC_NEW} signatures",
                   samples["loop"]),
        timing_row("10", f"loop alone, {SYNC_NEW} signatures (inside its process)", loops),
        Row("10", f"sync cost of {SYNC_NEW} entries (new - nothing new) / loop, per trial",
            result=f"{ratio:.2f}x", spread=f"IQR {q[2] - q[0]:.2f}x, n={len(ratios)}",
            target=f"<= {SYNC_BAR}x", verdict=verdict(ratio <= SYNC_BAR)),
        Row("10", "the same from the medians", verdict="info",
            result=f"{ms(marginal)} / {ms(med(loops))} = {marginal / med(loops):.2f}x"),
        Row("10", "whole processes: sync taking them vs loop process",
            result=f"{med(samples['new']) / med(samples['loop']):.2f}x", verdict="info"),
    ]


def run_all(sh: Shell, tmp: Path, args: argparse.Namespace) -> Result:
    """The selected benchmarks, in order, with progress on stderr; rows sorted by section."""
    sx = Scale(sh, tmp, args)
    steps: list[tuple[str, str, Callable[[], list[Row]]]] = [
        ("1", "push overhead", lambda: bench_push(sh, tmp, args.trials)),
        ("2", "idle hook", lambda: bench_idle(sh, tmp, args.trials)),
        ("3", "evaluate", lambda: bench_evaluate(sh, tmp, args.commits, args.rounds)),
        ("4", "verify", lambda: bench_verify(sh, tmp, args.entries, args.verify_trials)),
        ("9", "imports", lambda: bench_scale_imports(sx)),
        ("5", "verify --full at scale", lambda: bench_scale_verify(sx)),
        ("6", "credit at scale", lambda: bench_scale_credit(sx)),
        ("5", "incremental verify", lambda: bench_scale_incremental(sx)),
        ("7", "verify memory", lambda: bench_scale_memory(sx)),
        ("8", "append rate", lambda: bench_scale_append(sx)),
        ("10", "sync", lambda: bench_sync(sx)),
    ]
    only = set(args.only.split(",")) if args.only else None
    rows: list[Row] = []
    sections: list[tuple[str, float]] = []
    warm_up(sh, tmp)
    for section, label, step in steps:
        if only is not None and section not in only:
            continue
        start, generating = time.perf_counter(), sx.generation
        rows += step()
        seconds = time.perf_counter() - start - (sx.generation - generating)
        sections.append((f"({section}) {label}", seconds))
        print(f"bench: ({section}) {label} done in {seconds:.1f} s", file=sys.stderr)
    rows.sort(key=lambda r: int(r.section))
    return Result(rows, sections, sx)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; print the table; optionally write docs/performance.md."""
    args = parse_args(argv)
    tmp = scratch_root()
    sh = Shell(hermetic_env(tmp))
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    try:
        sh.run(["git", "coop", "--version"], tmp)
        about = machine(sh)
        result = run_all(sh, tmp, args)
    except BenchError as exc:
        print(f"bench: failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"bench: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    runtime = time.perf_counter() - start
    # Other work on the machine skews every ratio: say how busy it was (1-minute load
    # averages; this benchmark alone keeps one to two cores busy).
    about += f"; load average {load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    times = "\n".join(f"  {label}: {seconds:.1f} s" for label, seconds in result.sections)
    print(f"\n{about}\n\n{text_table(result.rows)}\n\nsections (generation excluded):\n"
          f"{times}\nsynthetic data:\n{datasets_table(result.scale)}\n\n"
          f"total {runtime:.0f} s, of which {result.scale.generation:.0f} s generating data")
    if args.write_docs:
        date = subprocess.run(["date"], capture_output=True, text=True, check=True).stdout.strip()
        DOCS.write_text(docs_text(result, args, about, date, tmp, runtime))
        print(f"wrote {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
