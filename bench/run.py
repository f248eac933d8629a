#!/usr/bin/env python3
"""Benchmark gitcoop against baselines measured in the same run (see bench/README.md).

Every gitcoop number is compared with a baseline timed in the same run, trials of the
variants are interleaved (the order rotates every trial) and medians are reported, so
a noisy machine shifts both sides alike.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
BIN = Path(sys.executable).parent  # the venv's bin, not resolved: `git coop` lives there

PUSH_BAR_MS = 250.0
RATIO_BAR = 1.5
SPEEDUP_BAR = 1.6
WARMUP = 2  # dropped trials per variant in (1) and (2)

EVALUATE = (
    "import json, pathlib\n"
    'print(json.dumps({"score": float(pathlib.Path("score.txt").read_text())}))\n'
)
INIT = ("coop", "init", "--metric", "python evaluate.py", "--direction", "maximize")
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


class BenchError(Exception):
    """A benchmark step failed; the message says what ran and what it printed."""


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


# --- statistics and table --------------------------------------------------------------

Samples = dict[str, list[float]]


def interleave(
    variants: dict[str, Callable[[], float]],
    trials: int,
    *,
    warmup: int = 0,
    before: Callable[[], None] | None = None,
) -> Samples:
    """Run every variant once per trial, rotating the order; warmup trials are dropped."""
    names = list(variants)
    samples: Samples = {n: [] for n in names}
    for i in range(warmup + trials):
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


def new_repo(sh: Shell, path: Path) -> Path:
    """A repository on ``main`` with the trivial metric and one committed score."""
    path.mkdir(parents=True)
    sh.git(path, "init", "-q", "-b", "main")
    (path / "evaluate.py").write_text(EVALUATE)
    (path / "score.txt").write_text("0.1\n")
    sh.git(path, "add", "evaluate.py", "score.txt")
    sh.git(path, "commit", "-q", "-m", "baseline")
    return path


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
    return (
        f"{os.cpu_count()} x {cpu}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, git {git}, gitcoop {versions[0]} "
        f"(pygit2 {versions[1]}, cryptography {versions[2]}, typer {versions[3]})"
    )


def docs_text(rows: list[Row], args: argparse.Namespace, about: str, date: str,
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
        f"{args.trials} in (1) and (2), {args.rounds} in (3), {args.verify_trials} in (4). "
        f"Whole run: {runtime:.0f} s."
    )
    paragraphs = [
        "Generated by `PATH=.venv/bin:$PATH .venv/bin/python bench/run.py --write-docs`; "
        "do not edit by hand (see `bench/README.md`).",
        what,
        how,
        f"**Machine.** {about}.",
        f"**Date.** {date}.",
    ]
    prose = "\n\n".join(textwrap.fill(text, 90, break_on_hyphens=False) for text in paragraphs)
    return f"# Performance\n\n{prose}\n\n{markdown_table(rows)}\n"


def scratch_root() -> Path:
    """Temp dir on tmpfs when there is one."""
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="gitcoop-bench-", dir=base))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--commits", type=int, default=30, help="commits per evaluate trial (3)")
    p.add_argument("--entries", type=int, default=300, help="ledger entries to verify (4)")
    p.add_argument("--trials", type=int, default=21, help="trials per variant in (1) and (2)")
    p.add_argument("--rounds", type=int, default=9, help="trials per variant in (3)")
    p.add_argument("--verify-trials", type=int, default=11, help="trials per variant in (4)")
    p.add_argument("--write-docs", action="store_true", help=f"also write {DOCS}")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args(argv)
    for name in ("commits", "entries", "trials", "rounds", "verify_trials"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
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


def run_all(sh: Shell, tmp: Path, args: argparse.Namespace) -> list[Row]:
    """All four benchmarks, in order, with progress on stderr."""
    steps: list[tuple[str, Callable[[], list[Row]]]] = [
        ("warm-up", lambda: warm_up(sh, tmp)),
        ("push overhead", lambda: bench_push(sh, tmp, args.trials)),
        ("idle hook", lambda: bench_idle(sh, tmp, args.trials)),
        ("evaluate", lambda: bench_evaluate(sh, tmp, args.commits, args.rounds)),
        ("verify", lambda: bench_verify(sh, tmp, args.entries, args.verify_trials)),
    ]
    rows: list[Row] = []
    for label, step in steps:
        start = time.perf_counter()
        rows += step()
        print(f"bench: {label} done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; print the table; optionally write docs/performance.md."""
    args = parse_args(argv)
    tmp = scratch_root()
    sh = Shell(hermetic_env(tmp))
    start = time.perf_counter()
    try:
        sh.run(["git", "coop", "--version"], tmp)
        about = machine(sh)
        rows = run_all(sh, tmp, args)
    except BenchError as exc:
        print(f"bench: failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"bench: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    runtime = time.perf_counter() - start
    print(f"\n{about}\n\n{text_table(rows)}\n\ntotal {runtime:.0f} s")
    if args.write_docs:
        date = subprocess.run(["date"], capture_output=True, text=True, check=True).stdout.strip()
        DOCS.write_text(docs_text(rows, args, about, date, tmp, runtime))
        print(f"wrote {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
