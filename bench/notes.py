#!/usr/bin/env python3
"""The notes index's figures (docs/decisions/0009-notes-index.md); not part of run.py.

    PATH=$PWD/.venv/bin:$PATH .venv/bin/python bench/notes.py [--trials N] [--large]

(a) an incremental refresh adding one entry to an index of 10,000 notes, against pygit2's
``create_note`` on a flat notes tree of as many; (b) a full rebuild of 10,000 notes (and of
100,000 with ``--large``), each on a fresh copy so fast-import finds no object already
there; (c) the refresh inside a sync taking 1,000 new entries (set up as run.py's section
10), against that sync's own time. Uses the cached datasets of run.py (generating them
when missing), on tmpfs when there is one; nothing is pinned to a core.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import synth
from run import SYNC_BASE, SYNC_NEW, hermetic_env, scratch_root

# Each probe runs in a fresh interpreter in the repository and prints its timings (ms).
REFRESH = """
import json, time
from gitcoop import notes
from gitcoop.git import open_repo
from gitcoop.workspace import local_dir
repo = open_repo(".")
start = time.perf_counter()
done = notes.refresh(repo, local_dir(repo))
print(json.dumps({"ms": (time.perf_counter() - start) * 1000, "how": done.how, "n": done.notes}))
"""
APPEND_ONE = """
import json, sys, time
from gitcoop import constants, ledger, notes
from gitcoop.git import open_repo
from gitcoop.workspace import local_dir
repo = open_repo(".")
local = local_dir(repo)
tip = repo.ref(constants.LEDGER_REF)
older = ledger.read_record(repo, ledger.chain(repo, tip)[-int(sys.argv[1]) - 2])
out = []
for _ in range(int(sys.argv[1])):
    ledger.append(repo, "attestation", older.entry.key, older.entry.envelope)
    start = time.perf_counter()
    done = notes.refresh(repo, local)
    out.append((time.perf_counter() - start) * 1000)
    assert done.how == "appended" and done.notes == 1, done
print(json.dumps(out))
"""
FLAT = """
import json, subprocess, sys, time
import pygit2
repo = pygit2.Repository(".")
walk = subprocess.run(["git", "rev-list", "refs/coop/ledger"], capture_output=True, text=True)
subjects = subprocess.run(["git", "rev-list", "-n", "10000", "main"], capture_output=True,
                          text=True).stdout.split()
stream = bytearray(b"commit refs/notes/flat\\ncommitter b <b@b> 0 +0000\\ndata 0\\n")
for s in subjects:
    stream += b"M 100644 inline %s\\ndata 5\\nflat\\n\\n" % s.encode()
subprocess.run(["git", "fast-import", "--quiet"], input=bytes(stream), check=True)
sig = pygit2.Signature("b", "b@b")
out = []
for c in walk.stdout.split()[: int(sys.argv[1])]:  # ledger commits: not annotated yet
    start = time.perf_counter()
    repo.create_note("one line\\n", sig, sig, c, "refs/notes/flat", True)
    out.append((time.perf_counter() - start) * 1000)
print(json.dumps({"notes": len(subjects), "ms": out}))
"""
SYNC = """
import json, time
from gitcoop import notes, sync
from gitcoop.git import open_repo
from gitcoop.workspace import local_dir
repo = open_repo(".")
start = time.perf_counter()
took = sync.sync(repo, repo.workdir or repo.common_dir, "origin").fetched
middle = time.perf_counter()
done = notes.refresh(repo, local_dir(repo))
end = time.perf_counter()
print(json.dumps({"sync": (middle - start) * 1000, "notes": (end - middle) * 1000,
                  "fetched": took, "how": done.how, "n": done.notes}))
"""


def probe(sh: synth.Shell, code: str, cwd: Path, *args: str) -> object:
    return json.loads(sh.run([sys.executable, "-c", code, *args], cwd))


def fresh_copy(ds: synth.Dataset, root: Path, name: str) -> Path:
    dest = root / name
    shutil.rmtree(dest, ignore_errors=True)
    return synth.copy_repo(ds, dest)


def med(values: list[float]) -> str:
    return f"median {statistics.median(values):.1f} ms (min {min(values):.1f}, n={len(values)})"


def rebuild(sh: synth.Shell, root: Path, size: int, trials: int) -> None:
    ds = dataset(sh, size)
    times = []
    for i in range(trials):
        repo = fresh_copy(ds, root, f"rebuild-{size}-{i}")
        got = probe(sh, REFRESH, repo)
        assert isinstance(got, dict) and got["how"] == "rebuilt", got
        times.append(got["ms"])
        shutil.rmtree(repo)
    print(f"(b) full rebuild of {ds.ledger_entries - 1:,} notes: {med(times)}")


def dataset(sh: synth.Shell, size: int) -> synth.Dataset:
    return synth.obtain(synth.Spec(size, size), sh, regenerate=False, log=print)


def incremental(sh: synth.Shell, root: Path, trials: int) -> None:
    ds = dataset(sh, 10_000)
    repo = fresh_copy(ds, root, "incremental")
    probe(sh, REFRESH, repo)
    ours = probe(sh, APPEND_ONE, repo, str(trials))
    assert isinstance(ours, list)
    flat = probe(sh, FLAT, repo, str(trials))
    assert isinstance(flat, dict)
    print(f"(a) refresh adding 1 entry to {ds.ledger_entries - 1:,} notes: {med(ours)}")
    print(f"    pygit2 create_note on a flat tree of {flat['notes']:,} notes: {med(flat['ms'])}")


def inside_sync(sh: synth.Shell, root: Path, trials: int) -> None:
    ds = dataset(sh, SYNC_BASE)
    new, old = root / "new.git", root / "old.git"
    sh.git(root, "clone", "-q", "--mirror", str(ds.repo), str(new))
    sh.git(root, "clone", "-q", "--mirror", str(new), str(old))
    sh.git(old, "update-ref", "refs/coop/ledger", f"refs/coop/ledger~{SYNC_NEW}")
    sh.git(old, "gc", "-q", "--prune=now")
    syncs, refreshes = [], []
    for i in range(trials):
        clone = root / f"clone-{i}"
        sh.git(root, "clone", "-q", "--no-checkout", str(old), str(clone))
        sh.git(clone, "coop", "sync", "origin")  # its notes built here, for the old ledger
        sh.git(clone, "coop", "verify")
        sh.git(clone, "remote", "set-url", "origin", str(new))
        got = probe(sh, SYNC, clone)
        assert isinstance(got, dict) and got["fetched"] == SYNC_NEW, got
        assert got["how"] == "appended" and got["n"] == SYNC_NEW, got
        syncs.append(got["sync"])
        refreshes.append(got["notes"])
        shutil.rmtree(clone)
    print(f"(c) sync taking {SYNC_NEW} entries, in-process: {med(syncs)}")
    print(f"    then the notes refresh of those {SYNC_NEW}: {med(refreshes)}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--trials", type=int, default=7)
    p.add_argument("--large", action="store_true", help="also rebuild 100,000 notes")
    args = p.parse_args()
    tmp = scratch_root()
    sh = synth.Shell(hermetic_env(tmp))
    try:
        incremental(sh, tmp, args.trials * 3)
        rebuild(sh, tmp, 10_000, args.trials)
        if args.large:
            rebuild(sh, tmp, 100_000, 3)
        inside_sync(sh, tmp, args.trials)
    except (synth.BenchError, subprocess.CalledProcessError) as exc:
        print(f"bench: failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
