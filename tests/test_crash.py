"""SIGKILL at every named fault point (``GITCOOP_FAULT``, listed in docs/cli.md) and at
random moments of ``evaluate``, ``git push`` through the hook and ``sync``.

After each kill: ``git fsck`` is clean in the clone and in the remote, ``verify --full``
passes, each ledger is its old head or one the finished run passes through (never
anything else), running the command again finishes the job, the clones converge, nothing
is attested twice, and cut caches rebuild themselves (``credit`` equals a fresh clone's).

``GITCOOP_SOAK=1`` (``make soak``) strikes hundreds of times instead of a few. Every kill is
tallied (testing/crash.py); pytest's summary line says how many the repositories survived.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pygit2
import pytest
from testing import crash
from testing.world import Player, World, add_evaluator, run

from gitcoop import incoming, keys
from gitcoop.errors import GitOperationError

ROOT = Path(__file__).resolve().parents[1]
LEDGER = "refs/coop/ledger"
# Read at import: the hermetic seal drops GITCOOP_* from the environment of each test.
SOAK = os.environ.get("GITCOOP_SOAK") == "1"
ROUNDS = 300 if SOAK else 3  # randomized kills
PASSES = 3 if SOAK else 1  # strikes at each named point
# The local caches (in .git/coop/) a kill may cut short; each must rebuild itself.
CACHES = ("index.json", "attestations.jsonl", "verified.json", "notes.json")
PUSH = ("git", "push", "-q", "origin", "HEAD:main")
SYNC = ("git", "coop", "sync", "origin")

Identity = tuple[str, str]  # (signer key, payload): an entry across re-links


# --- the points -------------------------------------------------------------------------


def _documented() -> set[str]:
    text = (ROOT / "docs/cli.md").read_text()
    section = text.split("\n## Fault injection", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z]+:[a-z-]+)` \|", section, re.MULTILINE))


def _in_code() -> set[str]:
    found = set()
    for path in (ROOT / "src/gitcoop").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            func = node.func if isinstance(node, ast.Call) else None
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "hit"
                and isinstance(func.value, ast.Name)
                and func.value.id == "_faults"
            ):
                assert isinstance(node, ast.Call)
                area, point = (ast.literal_eval(a) for a in node.args)  # names, not expressions
                found.add(f"{area}:{point}")
    return found


POINTS = sorted(_documented())


def _area(*areas: str) -> list[str]:
    return [p for p in POINTS if p.split(":")[0] in areas]


def test_every_fault_point_is_documented_and_in_the_code() -> None:
    assert _documented() == _in_code()
    areas = {"anchor", "append", "ci", "evaluate", "join", "round", "sync", "verify"}
    assert {p.split(":")[0] for p in POINTS} == areas
    killers = ("test_anchor.py", "test_anchor_contract.py")
    anchor_tests = "".join((ROOT / "tests" / name).read_text() for name in killers)
    assert all(f'"{p.split(":")[1]}"' in anchor_tests for p in _area("anchor"))  # killed there


# --- reading state ----------------------------------------------------------------------


def _head(repo: Path) -> str | None:
    out = run(repo, "git", "rev-parse", "-q", "--verify", LEDGER, check=False)
    return out.stdout.strip() or None


def _entries(repo: Path, tip: str | None) -> list[dict]:
    """The entries of the chain ending at ``tip``, oldest first."""
    if tip is None:
        return []
    r = pygit2.Repository(str(repo))
    commit, out = r[tip], []
    while True:
        out.append(json.loads(r[commit.tree["entry.json"].id].data))
        if not commit.parents:
            return out[::-1]
        commit = commit.parents[0]


def _identities(entries: list[dict]) -> list[Identity]:
    return [(e["key"], e["envelope"]["payload"]) for e in entries]


def _attested(e: dict) -> tuple[str, str, str, str] | None:
    """(commit, signer key, challenge, split) of an attestation entry; None for others."""
    if e["kind"] != "attestation":
        return None
    stmt = json.loads(base64.b64decode(e["envelope"]["payload"]))
    pred = stmt["predicate"]
    return (
        stmt["subject"][0]["digest"]["gitCommit"],
        e["key"],
        pred["challenge"]["digest"],
        pred["split"],
    )


def _reaches(repo: Path, old: str | None, new: str | None) -> bool:
    """Whether the chain ending at ``new`` holds ``old`` (None: no ledger)."""
    if old is None or old == new:
        return True
    if new is None:
        return False
    ok = run(repo, "git", "merge-base", "--is-ancestor", old, new, check=False)
    return ok.returncode == 0


def _ref_locks(repo: Path) -> list[Path]:
    """The lock files of git's ref updates. (Others, such as a scoring worktree's
    index.lock, are left for gitcoop to cope with; its own, under .git/coop/, are flocks
    the kernel drops.)"""
    git_dir = repo / ".git" if (repo / ".git").is_dir() else repo
    return [*git_dir.glob("refs/**/*.lock"), *git_dir.glob("packed-refs.lock")]


# --- striking ---------------------------------------------------------------------------


def _strike(p: Player, argv: tuple[str, ...], fault: str | None, after: float | None) -> bool:
    """Run ``argv`` in ``p``'s clone with ``GITCOOP_FAULT=fault``, or SIGKILL its whole
    process group ``after`` seconds in; return whether a kill struck."""
    env = p.env if fault is None else {**p.env, "GITCOOP_FAULT": fault}
    proc = subprocess.Popen(
        argv, cwd=p.repo, env=env, text=True, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _out, err = proc.communicate(timeout=after or 120)
    except subprocess.TimeoutExpired:
        if after is None:
            raise
        with contextlib.suppress(ProcessLookupError):  # all gone since
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return True
    # git says so of a hook, and exits 128 + 9 for a killed git-coop.
    return proc.returncode == 137 or "died of signal 9" in err


@contextlib.contextmanager
def _caches_kept(p: Player) -> Iterator[None]:
    """Put back the files ``verify`` rewrites, so the next command meets what the kill
    left."""
    local = p.repo / ".git/coop"
    kept = {n: (local / n).read_bytes() for n in CACHES if (local / n).exists()}
    yield
    for name in CACHES:
        if name in kept:
            (local / name).write_bytes(kept[name])
        else:
            (local / name).unlink(missing_ok=True)


def _cut_caches(p: Player, rng: random.Random) -> None:
    """Cut each local cache at a random byte, or delete it, as a kill while writing it by
    other means than an atomic rename might."""
    for name in CACHES:
        path = p.repo / ".git/coop" / name
        if path.exists() and rng.random() < 0.2:
            path.unlink()
        elif path.exists():
            path.write_bytes(path.read_bytes()[: rng.randrange(path.stat().st_size + 1)])


def _saved(p: Player) -> tuple[bytes, bytes]:
    """The verified-attestation index and the verified pin."""
    local = p.repo / ".git/coop"
    return (local / "attestations.jsonl").read_bytes(), (local / "verified.json").read_bytes()


def _credit(p: Player, rev: str) -> dict:
    return json.loads(p.coop("credit", "--json", "--rev", rev).stdout)


class _Heads(NamedTuple):
    local: str | None  # the clone's ledger head
    remote: str | None  # the remote's


@dataclass
class Harness:
    """Two clones of one remote; each strike is checked, tallied and finished."""

    world: World
    players: list[Player]
    rng: random.Random
    keys: dict[str, str] = field(default_factory=dict)  # player name -> public key
    durations: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        for p in self.players:
            self.keys[p.name] = p.coop("key", "show").stdout.splitlines()[0]
            # The remote's receive-pack in its own session, as a server's would be: a kill
            # of the pushing process group does not reach it.
            p.git("config", "remote.origin.receivepack", "setsid git-receive-pack")

    def strike(
        self, p: Player, argv: tuple[str, ...], *, fault: str | None = None,
        after: float | None = None, expect: tuple[str, ...] = (), exact: bool = False,
        env: dict[str, str] | None = None, signer: str | None = None,
        kinds: tuple[str, ...] = (),
    ) -> bool:  # fmt: skip
        """Run ``argv`` as ``p`` (with ``env``) and kill it (at ``fault`` or ``after``
        seconds), check what the kill left, run it again to the end and check that;
        ``expect``: the commits the command attests (signed by ``signer``, default ``p``'s
        key); ``kinds``: the other entries it appends, in order; ``exact``: the command
        moves each ledger once at most, so the kill leaves it old or new. Returns whether a
        kill struck."""
        p = Player(p.name, p.email, p.home, p.repo, env) if env else p
        old = _Heads(_head(p.repo), _head(self.world.remote))
        killed = _strike(p, argv, fault, after)
        self._unlock(p, named=fault is not None)
        crashed = self._sound(p)
        start = time.monotonic()
        again = run(p.repo, *argv, env=p.env, check=False)
        assert again.returncode == 0, (fault, again.stderr)
        self.durations[_name(argv)].append(time.monotonic() - start)
        new = _Heads(_head(p.repo), _head(self.world.remote))
        if exact:
            assert crashed.local in (old.local, new.local), "neither the old ledger nor the new"
            assert crashed.remote in (old.remote, new.remote), "neither the old nor the new"
        self._finished(p, argv, old, crashed, new, (expect, signer or self.keys[p.name], kinds))
        if killed:  # and survived
            crash.kills[f"{_name(argv)} at {fault or crash.RANDOM}"] += 1
        return killed

    def _unlock(self, p: Player, *, named: bool) -> None:
        """Remove the lock files a kill left inside a ref update, as the one-line error
        asks the user to; a named point is never inside one."""
        left = _ref_locks(p.repo)
        assert not (named and left), left
        self._remote_done()
        for lock in left:
            crash.locks[str(lock.relative_to(p.repo / ".git"))] += 1
            lock.unlink()

    def _remote_done(self) -> None:
        """Wait for a receive-pack the kill cut off to finish, as a server's would, and
        check that it left no lock."""
        remote = self.world.remote
        deadline = time.monotonic() + 10
        while _ref_locks(remote) or [*remote.glob("objects/incoming-*")]:
            assert time.monotonic() < deadline, _ref_locks(remote)
            time.sleep(0.05)

    def _sound(self, p: Player) -> _Heads:
        """git fsck is clean in the clone and the remote, and verify --full passes; return
        both ledger heads."""
        for repo in (p.repo, self.world.remote):
            fsck = run(repo, "git", "fsck", "--no-dangling", "--no-progress", check=False)
            assert fsck.returncode == 0, (repo, fsck.stdout, fsck.stderr)
        with _caches_kept(p):
            verify = p.coop("verify", "--full", check=False)
        assert verify.returncode == 0, verify.stderr
        return _Heads(_head(p.repo), _head(self.world.remote))

    def _finished(
        self, p: Player, argv: tuple[str, ...], old: _Heads, crashed: _Heads, new: _Heads,
        expect: tuple[tuple[str, ...], str, tuple[str, ...]],
    ) -> None:  # fmt: skip
        """The ledgers after the run that finished: the killed run's heads lie on the way
        to them, nothing is lost, duplicated or attested twice, and exactly ``expect`` is
        new: (the commits attested, by whose key, the kinds of the other entries)."""
        remote = self.world.remote
        assert crashed.local == old.local or _reaches(p.repo, crashed.local, new.local)
        assert _reaches(remote, old.remote, crashed.remote)  # the remote only moves forward
        assert _reaches(remote, crashed.remote, new.remote)
        before = {*_identities(_entries(p.repo, old.local))}
        if argv[1:2] == ("push",) or argv == SYNC:
            assert new.local == new.remote  # published
            before |= {*_identities(_entries(remote, old.remote))}  # taken on the way
        entries = _entries(p.repo, new.local)
        ids = _identities(entries)
        assert len(ids) == len(set(ids)) and before <= set(ids)  # nothing lost or doubled
        attested = Counter(a for a in map(_attested, entries) if a)
        assert max(attested.values(), default=1) == 1  # nothing attested twice
        commits, signer, kinds = expect
        fresh = [e for e, i in zip(entries, ids, strict=True) if i not in before]
        added = [_attested(e) for e in fresh]
        assert sorted(a[:2] for a in added if a) == sorted((c, signer) for c in commits)
        assert [e["kind"] for e, a in zip(fresh, added, strict=True) if not a] == list(kinds)

    def converge(self) -> None:
        """Sync until every clone holds the remote's ledger."""
        for p in (*self.players, self.players[0]):
            if _head(p.repo) != _head(self.world.remote):
                p.git("fetch", "-q", "origin")  # the commits before their entries (see below)
                p.coop("sync", "origin")
        heads = {_head(p.repo) for p in self.players}
        assert heads == {_head(self.world.remote)}, heads

    def caches_rebuild(self, rev: str) -> None:
        """Credit at ``rev`` is what a fresh clone says, with each clone's caches as the
        kills and the runs after them left them, and again with them cut; what verify
        saves (index and pin) is then byte for byte what it had saved before the cut."""
        self.world.players.pop("fresh", None)
        shutil.rmtree(self.world.root / "fresh", ignore_errors=True)
        fresh = self.world.contributor("fresh", "Fresh", "fresh@example.org", join=False)
        expected = _credit(fresh, rev)
        for p in self.players:
            p.git("fetch", "-q", "origin")
            assert _credit(p, rev) == expected, p.name
            saved = _saved(p)
            _cut_caches(p, self.rng)
            assert _credit(p, rev) == expected, p.name
            assert _saved(p) == saved, p.name

    def delay(self, argv: tuple[str, ...]) -> float:
        """A random moment within a usual run of ``argv``."""
        took = self.durations.get(_name(argv)) or [0.6]
        return self.rng.uniform(0.02, 1.2 * statistics.median(took))


def _name(argv: tuple[str, ...]) -> str:
    return " ".join(a for a in argv[:3] if not a.startswith("-"))


@pytest.fixture(scope="module", autouse=True)
def _tally(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    lines = [crash.summary(), *(f"{n:6d}  {how}" for how, n in sorted(crash.kills.items()))]
    (tmp_path_factory.getbasetemp() / "kills.txt").write_text("\n".join(lines) + "\n")


def _remote_main(world: World) -> str:
    return run(world.remote, "git", "rev-parse", "main").stdout.strip()


# --- every named point ------------------------------------------------------------------


def test_a_kill_at_each_append_and_evaluate_point(world: World) -> None:
    """Through the pre-push hook, by a real git push (``git coop evaluate`` is killed in
    the random rounds below)."""
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    h = Harness(world, [ada, m], random.Random(29))
    for n, point in enumerate(_area("append", "evaluate") * PASSES):
        c = ada.commit_score(f"0.{n + 10}", f"ada {n}")
        assert h.strike(ada, PUSH, fault=point, expect=(c,), exact=True), point
    h.converge()
    h.caches_rebuild(_remote_main(world))


def test_a_kill_at_each_sync_and_verify_point(world: World) -> None:
    """``git coop sync`` between two clones, each time with the remote ahead and (but for a
    fast-forward) an entry of the clone's own, verified every other time; then
    ``git coop verify``."""
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    ada.git("checkout", "-q", "-b", "ada")
    h = Harness(world, [ada, m], random.Random(31))
    for n, point in enumerate(_area("sync", "verify") * PASSES):
        m.commit_score(f"0.{n + 10}", f"maint {n}")
        m.git("push", "-q", "origin", "HEAD:main")  # scored and published by the hook
        assert _head(m.repo) == _head(world.remote)
        if point != "sync:after-fast-forward":
            ada.coop("evaluate", ada.commit_score(f"0.{n + 40}", f"ada {n}"))
        if n % 2:  # the pin on an entry the re-link replaces, or (else) on the fork point
            ada.coop("verify")
        ada.git("fetch", "-q", "origin")  # the commits before their entries (see below)
        assert h.strike(ada, SYNC, fault=point, exact=True), point
        assert _head(ada.repo) == _head(world.remote)
    ada.coop("evaluate", ada.commit_score("0.99", "ada, unverified"))
    assert h.strike(ada, ("git", "coop", "verify"), fault="verify:before-pin", exact=True)
    h.converge()
    h.caches_rebuild(_remote_main(world))


PRIVATE_EVAL = (
    "import json, os\n"
    "assert os.path.exists(os.environ['COOP_PRIVATE_DATA'])\n"
    "print(json.dumps({'accuracy': 0.5}))\n"
)


def _private_rounds(m: Player, data: Path, rounds: int) -> None:
    """Start a challenge decided on a private split (scored from ``data``), with
    ``rounds`` rounds that have all ended, and publish it."""
    import hashlib

    (m.repo / "private_eval.py").write_text(PRIVATE_EVAL)
    digest = "sha256:" + hashlib.sha256(data.read_bytes()).hexdigest()
    listed = "".join(
        f"  - {{name: r{i}, start: 2026-01-{i:02d}T00:00:00Z, end: 2026-01-{i:02d}T12:00:00Z}}\n"
        for i in range(1, rounds + 1)
    )
    (m.repo / ".coop").mkdir()
    (m.repo / ".coop/challenge.yaml").write_text(
        "version: 1\nname: toy\nmetric:\n  command: python evaluate.py\n  name: accuracy\n"
        "  direction: maximize\nprotect: [evaluate.py, private_eval.py]\n"
        f"private:\n  command: python private_eval.py\n  digest: '{digest}'\n"
        f"rounds:\n{listed}"
    )
    m.git("add", ".")
    m.git("commit", "-qm", "a challenge decided on a private split")
    m.coop("init")
    m.git("push", "-q", "origin", "main")


def test_a_kill_at_each_join_round_and_ci_point(world: World, tmp_path: Path) -> None:
    """``git coop join`` (the contributor's commit), ``join --accept``, ``round close``
    (with the private split scored first) and ``ci sign``, each killed at its own points
    (and, under GITCOOP_SOAK, at the append and verify points they pass too)."""
    data = tmp_path / "private.json"
    data.write_text("{}")  # every model scores 0.5 on the held-out split
    m = world.maintainer(init_args=None)
    own = ("join", "round", "ci")
    # Under SOAK also the points of the steps they share with other commands.
    appends = ["append:before-ref", "append:after-ref"] if SOAK else []
    verifies = ["verify:before-pin"] if SOAK else []
    accept_points = [p for p in _area("join") if p != "join:after-write"] + appends + verifies
    signs = ["evaluate:after-sign"] if SOAK else []  # each private score, each result
    close_points = _area("round") + appends + verifies + signs
    sign_points = _area("ci") + appends + signs
    _private_rounds(m, data, len(close_points) * PASSES + 1)
    ci = {**m.env, "GITCOOP_EVALUATOR_KEY": add_evaluator(m), "GITCOOP_PRIVATE_DATA": str(data)}
    evaluator = keys.from_secret(ci["GITCOOP_EVALUATOR_KEY"].encode(), "secret").public_openssh
    bob = world.contributor("bob", "Bob", "bob@example.org", join=False)
    bob.coop("key", "generate")
    h = Harness(world, [m, bob], random.Random(37))
    assert {p.split(":")[0] for p in _area(*own)} == set(own)

    bob.coop("verify")  # takes the ledger: the kill is in join, not in the first use
    for _ in range(PASSES):
        before = bob.head()
        assert h.strike(bob, ("git", "coop", "join"), fault="join:after-write", exact=True)
        assert bob.git("rev-parse", "HEAD~").stdout.strip() == before  # committed, once
        assert bob.git("status", "--porcelain").stdout == ""
        bob.git("reset", "-q", "--hard", before)  # for the next pass
    bob.coop("join")
    bob.git("push", "-q", "origin", "HEAD:main")
    m.git("pull", "-q", "--ff-only", "origin", "main")

    accept = ("git", "coop", "join", "--accept")
    for n, point in enumerate(accept_points * PASSES):
        if n:  # another line to accept
            signers = m.repo / ".coop/allowed_signers"
            line = keys.signers_line(f"k{n}@example.org", _new_key(), "gitcoop")
            signers.write_text(signers.read_text() + line + "\n")
            m.git("commit", "-qam", f"key {n}")
        assert h.strike(m, accept, fault=point, exact=True, kinds=("trust-update",)), point
    m.git("push", "-q", "origin", "main")

    close = ("git", "coop", "round", "close", "--evaluator")
    run(m.repo, *close[:4], "r1", close[4], env=ci)  # the history so far scored privately
    for n, point in enumerate(close_points * PASSES, start=2):
        c = m.commit_score(f"0.{n + 60}")  # unscored on the private split until a close
        m.git("push", "-q", "origin", "main")
        argv = (*close[:4], f"r{n}", close[4])
        assert h.strike(m, argv, fault=point, env=ci, signer=evaluator, expect=(c,),
                        kinds=("round-close",)), point  # fmt: skip

    for n, point in enumerate(sign_points * PASSES):
        commits = [m.commit_score(f"0.{n + 80}{i}") for i in range(2)]
        results = tmp_path / f"results-{n}.json"
        m.coop("ci", "score", "--out", str(results), *commits)
        argv = ("git", "coop", "ci", "sign", "--no-push", str(results))
        assert h.strike(m, argv, fault=point, env=ci, signer=evaluator, expect=(*commits,)), point


def _new_key() -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return keys.public_openssh(Ed25519PrivateKey.generate().public_key())


# --- random kills -----------------------------------------------------------------------

FAULTS_OF = {
    "evaluate": _area("append", "evaluate"),
    "push": _area("append", "evaluate", "sync", "verify"),
    "sync": _area("sync", "verify"),
}


def _prepare(
    p: Player, what: str, n: int, rng: random.Random
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Set ``p`` up for a round of ``what``: (the command, the commits it attests)."""
    p.git("fetch", "-q", "origin")  # the commits before their entries (see below)
    if what == "sync":
        return SYNC, ()
    if what == "push":  # on top of the remote's branch, which the other clone moves too
        p.git("checkout", "-q", "-B", "main", "origin/main")
    c = p.commit_score(f"0.{rng.randrange(100, 1000)}{n:04d}", f"{p.name} round {n}")
    return (PUSH if what == "push" else ("git", "coop", "evaluate", c)), (c,)


def test_random_kills_of_evaluate_push_and_sync(world: World) -> None:
    """Either clone, any of the three commands, killed at one of its points or at a random
    moment (its whole process group); now and then, converge and cut the caches."""
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    rng = random.Random(2029)
    h = Harness(world, [m, ada], rng)
    for n in range(ROUNDS):
        p, what = rng.choice(h.players), rng.choice(sorted(FAULTS_OF))
        argv, expect = _prepare(p, what, n, rng)
        fault = rng.choice(FAULTS_OF[what]) if rng.random() < 0.5 else None
        h.strike(p, argv, fault=fault, after=None if fault else h.delay(argv), expect=expect)
        if n % 25 == 24:
            h.converge()
            h.caches_rebuild(_remote_main(world))
    h.converge()
    h.caches_rebuild(_remote_main(world))


# --- evaluate at random moments, and its scoring worktree -------------------------------


def test_sigkill_during_evaluate_keeps_the_ledger_valid(world: World) -> None:
    m = world.maintainer()
    rng = random.Random(1234)
    commits: list[str] = []
    sizes = [int(m.git("rev-list", "--count", "refs/coop/ledger").stdout)]
    for round_ in range(8):
        commits += [m.commit_score(f"0.{round_}{i}", f"r{round_} c{i}") for i in range(5)]
        proc = subprocess.Popen(
            ["git", "coop", "evaluate", *commits],
            cwd=m.repo,
            env=m.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(0.1, 0.6))
        alive = proc.poll() is None
        with contextlib.suppress(ProcessLookupError):  # it finished in time
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        fsck = m.git("fsck", "--no-dangling", "--no-progress", check=False)
        assert fsck.returncode == 0, (fsck.stdout, fsck.stderr, sizes)
        verify = m.coop("verify", "--full", check=False)
        assert verify.returncode == 0, (verify.stderr, sizes)
        sizes.append(int(m.git("rev-list", "--count", "refs/coop/ledger").stdout))
        assert sizes[-1] >= sizes[-2]  # never shorter: the old head or a longer valid chain
        crash.kills[f"git coop evaluate at {crash.RANDOM}"] += alive
    assert sizes[-1] < len(commits) + 2, sizes  # the kills really interrupted the work
    # A kill inside the ref update leaves git's lock file, as git itself does; the next
    # write names it (tests/test_sync_faults.py) and waits for the user to remove it.
    (m.repo / ".git/refs/coop/ledger.lock").unlink(missing_ok=True)
    m.coop("evaluate", *commits)
    entries = json.loads(m.coop("log", "--json").stdout)
    attested = [e["commit"] for e in entries if e["kind"] == "attestation"]
    assert sorted(attested) == sorted({*commits, m.head(f"HEAD~{len(commits)}")})  # once each
    assert m.coop("verify", "--full").returncode == 0


def test_broken_scoring_worktrees_are_rebuilt(world: World) -> None:
    m = world.maintainer()
    wt = m.repo / ".git/coop/worktrees/0"
    (wt / ".git").write_text("gitdir: /nonexistent\n")  # as if killed half-way
    m.commit_score("0.6")
    assert "0.6" in m.coop("evaluate").stdout
    shutil.rmtree(wt)  # registered and locked, but gone
    m.commit_score("0.7")
    assert "0.7" in m.coop("evaluate").stdout
    (wt / "stray.txt").write_text("left by a metric")
    m.commit_score("0.8")
    assert "0.8" in m.coop("evaluate").stdout
    assert not (wt / "stray.txt").exists()


# --- found by the checks above ----------------------------------------------------------


def test_credit_does_not_depend_on_whether_the_ledger_or_the_commits_came_first(
    world: World,
) -> None:
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    ada.commit_score("0.61")
    ada.git("push", "-q", "origin", "HEAD:main")  # attested and published by the hook
    m.coop("sync", "origin")  # the ledger first: Ada's commit is not here yet
    m.git("fetch", "-q", "origin")  # now it is
    rev = _remote_main(world)
    fresh = world.contributor("fresh", "Fresh", "fresh@example.org", join=False)
    assert _credit(m, rev) == _credit(fresh, rev)


def test_a_ref_lock_a_killed_fetch_left_is_named(tmp_path: Path) -> None:
    """A kill in the middle of sync's fetch can leave git's lock on the incoming ref; the
    one-line error names it (git's own last line only said to remove "the file")."""
    remote, clone = tmp_path / "remote.git", tmp_path / "clone"
    run(tmp_path, "git", "init", "-q", "--bare", str(remote))
    run(tmp_path, "git", "init", "-q", str(clone))
    run(clone, "git", "commit", "-q", "--allow-empty", "-m", "an entry")
    run(clone, "git", "push", "-q", str(remote), "HEAD:refs/coop/ledger")
    run(clone, "git", "remote", "add", "origin", str(remote))
    lock = clone / ".git/refs/coop-incoming/origin/ledger.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    with pytest.raises(GitOperationError) as got:
        incoming.start_fetch(clone, "origin").wait()
    assert f"'{lock}': File exists" in got.value.message
    assert got.value.hint and "remove that lock file" in got.value.hint
    lock.unlink()
    incoming.start_fetch(clone, "origin").wait()
