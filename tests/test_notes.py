"""refs/notes/coop: a display-only index of the ledger, derived afresh, never trusted."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from testing.world import Player, World, diverged, run

from gitcoop import canonical, constants, ledger, notes
from gitcoop.git import open_repo
from gitcoop.workspace import local_dir

FANNED = re.compile(r"[0-9a-f]{2}/[0-9a-f]{38}")


def _note(p: Player, commit: str) -> list[str]:
    out = p.git("notes", "--ref", "coop", "show", commit, check=False)
    return out.stdout.splitlines() if out.returncode == 0 else []


def _listed(p: Player) -> dict[str, str]:
    """Annotated commit -> note blob, as `git notes list` sees them."""
    pairs = [ln.split() for ln in p.git("notes", "--ref", "coop", "list").stdout.splitlines()]
    return {commit: blob for blob, commit in pairs}


def _attested(p: Player) -> set[str]:
    entries = json.loads(p.coop("log", "--json").stdout)
    return {e["commit"] for e in entries if e["kind"] == "attestation"}


def _tree(p: Player) -> str:
    return p.head("refs/notes/coop^{tree}")


def _refresh(p: Player) -> notes.Refreshed:
    repo = open_repo(p.repo)
    return notes.refresh(repo, local_dir(repo))


def _empty_commits(p: Player, count: int) -> list[str]:
    """``count`` commits on the branch with HEAD's tree (scored once, from the cache after)."""
    stream = bytearray()
    for i in range(count):
        message = f"try {i}\n".encode()
        stream += b"commit refs/heads/main\ncommitter A <a@example.org> 1767225600 +0000\n"
        stream += b"data %d\n%s" % (len(message), message)
        stream += b"from refs/heads/main^0\n" if i == 0 else b""
    run(p.repo, "git", "fast-import", "--quiet", env=p.env, input=bytes(stream))
    return p.git("rev-list", "--reverse", f"HEAD~{count}..HEAD").stdout.split()


def test_evaluate_writes_one_line_per_attestation(world: World) -> None:
    m = world.maintainer()
    parent = m.head()
    c = m.commit_score("0.7")
    m.coop("evaluate")
    seq = json.loads(m.coop("log", "-n", "1", "--json").stdout)[0]["seq"]
    line = f"#{seq} accuracy 0.7 (+0.2 over {parent[:12]}) public, maint@example.org"
    assert m.git("log", "--notes=coop", "-1", "--format=%N").stdout.strip() == line
    assert set(_listed(m)) == _attested(m)

    m.git("push", "-q", "origin", "main")  # the hook publishes the ledger
    ada = world.contributor("ada", "Ada", "ada@example.org")
    assert _note(ada, c) == [line]  # joining built the clone's own notes
    ada.coop("evaluate", c)  # a second signer: a second attestation of the same commit
    assert _note(ada, c) == [
        line,
        f"#{seq + 1} accuracy 0.7 (+0.2 over {parent[:12]}) public, ada@example.org",
    ]


def test_hundreds_of_notes_are_fanned_out(world: World) -> None:
    m = world.maintainer()
    commits = _empty_commits(m, 300)
    m.coop("evaluate", f"{commits[0]}~1..HEAD")
    paths = m.git("ls-tree", "-r", "--name-only", "refs/notes/coop").stdout.split()
    assert len(paths) == 301 and all(FANNED.fullmatch(p) for p in paths)
    assert set(_listed(m)) == _attested(m) >= set(commits)
    assert re.fullmatch(
        r"#\d+ accuracy 0\.5 \(\+0 over [0-9a-f]{12}\) public, maint@example\.org",
        _note(m, commits[150])[0],
    )
    more = _empty_commits(m, 1)
    m.coop("evaluate")  # an incremental update keeps the layout
    paths = m.git("ls-tree", "-r", "--name-only", "refs/notes/coop").stdout.split()
    assert len(paths) == 302 and all(FANNED.fullmatch(p) for p in paths)
    assert more[0] in _listed(m)


def test_a_forged_note_changes_nothing_and_is_removed(world: World) -> None:
    m = world.maintainer()
    a, b = m.commit_score("0.6", "a"), m.commit_score("0.9", "b")
    credit = m.coop("credit", "--json").stdout
    forged = "#99 accuracy 1.0 (+0.5 over 000000000000) public, maint@example.org"
    for c in (a, b):
        m.git("notes", "--ref", "coop", "add", "-f", "-m", forged, c)
    assert m.coop("credit", "--json").stdout == credit
    assert json.loads(m.coop("show", b, "--json").stdout)["attestations"] == []

    m.git("push", "-q", "origin", "main")  # the hook scores both, forged notes or not
    assert {a, b} <= _attested(m)
    assert _note(m, a)[0].endswith(
        "accuracy 0.6 (+0.1 over " + m.head("HEAD~2")[:12] + ") public, maint@example.org"
    )
    assert forged not in _note(m, a) + _note(m, b)  # the hook's refresh replaced the ref


def test_notes_are_neither_pushed_nor_fetched(world: World) -> None:
    m = world.maintainer()
    m.commit_score("0.7")
    m.coop("evaluate")
    m.coop("sync")
    assert m.ref("refs/notes/coop") is not None
    refs = run(world.remote, "git", "for-each-ref", "--format=%(refname)").stdout.split()
    assert refs == ["refs/coop/ledger", "refs/heads/main"]

    run(world.remote, "git", "notes", "--ref", "coop", "add", "-m", "theirs", m.head())
    theirs = run(world.remote, "git", "rev-parse", "refs/notes/coop").stdout
    m.git("notes", "--ref", "coop", "add", "-f", "-m", "mine", m.head())
    m.coop("sync")  # the remote's notes stay there; the local ones are rebuilt
    assert _note(m, m.head()) == [
        "#2 accuracy 0.7 (+0.2 over " + m.head("HEAD~1")[:12] + ") public, maint@example.org"
    ]
    assert run(world.remote, "git", "rev-parse", "refs/notes/coop").stdout == theirs
    refs = run(world.remote, "git", "for-each-ref", "--format=%(refname)").stdout.split()
    assert not [r for r in refs if "coop-tmp" in r]


def test_relinked_entries_get_lines_like_a_rebuild(world: World) -> None:
    from gitcoop import sync

    m, ada, a, b = diverged(world)
    assert _note(m, b)[0].startswith("#2 ")
    ada.coop("sync")
    ada.git("push", "-q", "origin", "ada-try")

    repo = open_repo(m.repo)
    assert sync.sync(repo, m.repo, "origin").relinked == 1
    assert _refresh(m).how == "relinked"
    assert _note(m, a)[0].startswith("#2 ") and _note(m, a)[0].endswith("ada@example.org")
    assert _note(m, b) == [_note(m, b)[0]] and _note(m, b)[0].startswith("#3 ")
    relinked = m.head("refs/notes/coop")

    (m.repo / ".git/coop/notes.json").unlink()
    assert _refresh(m).how == "rebuilt"
    assert m.head("refs/notes/coop") == relinked  # same notes, to the commit id
    ada.coop("sync")
    assert _tree(ada) == _tree(m)  # another clone derives the same index


def test_lost_or_foreign_state_rebuilds_the_same_notes(world: World) -> None:
    m = world.maintainer()
    _empty_commits(m, 3)
    m.coop("evaluate", "HEAD~3..HEAD")
    clean = _tree(m)
    state = m.repo / ".git/coop/notes.json"
    damages = {
        "deleted": state.unlink,
        "corrupt": lambda: state.write_text('{"notes": 7'),
        "foreign ref": lambda: m.git("notes", "--ref", "coop", "add", "-f", "-m", "x", m.head()),
        # the state names a commit that shares no history with the ledger
        "stale": lambda: state.write_text(
            json.dumps({"notes": m.head("refs/notes/coop"), "ledger": m.head()})
        ),
    }
    for damage, do in damages.items():
        do()
        assert _refresh(m).how == "rebuilt", damage
        assert _tree(m) == clean, damage
        assert _refresh(m).how == "idle", damage


def test_missing_ledger_creates_no_notes(world: World) -> None:
    m = world.maintainer(init_args=None)
    assert _refresh(m).how == "none"
    assert m.ref("refs/notes/coop") is None
    assert not (m.repo / ".git/coop/notes.json").exists()


def test_a_failing_write_warns_and_the_command_succeeds(world: World) -> None:
    m = world.maintainer()
    tmp = m.repo / ".git/refs/coop-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.write_text("not a ref\n")  # fast-import cannot create its ref under it
    m.commit_score("0.7")
    out = m.coop("evaluate")
    assert re.search(
        r"gitcoop: warning: could not update refs/notes/coop: git fast-import failed: .*; "
        r"it is rebuilt next time",
        out.stderr,
    )
    assert json.loads(m.coop("show", "--json").stdout)["attestations"]  # the entry is there
    assert _note(m, m.head()) == []
    assert m.coop("verify").returncode == 0

    tmp.unlink()
    lock = m.repo / ".git/refs/notes/coop.lock"
    lock.write_text("")  # another writer holds the notes ref
    out = m.coop("evaluate")  # nothing new to score: the notes still catch up
    assert "could not update refs/notes/coop" in out.stderr and "already attested" in out.stdout
    lock.unlink()
    m.coop("evaluate")
    assert _note(m, m.head())[0].startswith("#2 accuracy 0.7")


def test_an_idle_refresh_starts_nothing_and_writes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = world.maintainer()
    m.commit_score("0.7")
    m.coop("evaluate")
    state = m.repo / ".git/coop/notes.json"
    before = state.stat().st_mtime_ns, m.head("refs/notes/coop")

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"started a process: {args}")

    with monkeypatch.context() as patched:
        patched.setattr(subprocess, "Popen", no_process)
        assert _refresh(m) == notes.Refreshed("idle")
    assert (state.stat().st_mtime_ns, m.head("refs/notes/coop")) == before


def _entry(payload: object, seq: int = 5) -> ledger.Entry:
    data = payload if isinstance(payload, bytes) else canonical.encode(payload)
    envelope = {"payload": base64.b64encode(data).decode(), "payloadType": "x", "signatures": []}
    return ledger.Entry(seq, "0" * 64, "attestation", "sha256:" + "0" * 64, None, "k", envelope)


def test_malformed_statements_give_no_line_and_names_stay_on_one_line(world: World) -> None:
    m = world.maintainer()
    repo = open_repo(m.repo)
    tip = repo.ref(constants.LEDGER_REF)
    assert tip is not None
    good = ledger.read_record(repo, tip).entry
    assert notes.note_line(good) is not None
    assert notes.note_line(_entry(b"not json")) is None
    assert notes.note_line(_entry({"_type": "other"})) is None
    assert notes.note_line(ledger.Entry(5, None, "attestation", "", None, "k", {})) is None
    statement = canonical.decode(base64.b64decode(good.envelope["payload"]))
    statement["predicate"]["signer"]["principal"] = "eve\n#1 accuracy 1 (first score) public"
    found = notes.note_line(_entry(statement, 9))
    assert found is not None and "\n" not in found[1] and found[1].startswith("#9 ")

    # An unreadable entry in the chain is skipped; the entries around it keep their lines.
    head = ledger.head_at(repo, tip)
    blob = repo.write_blob(b"not an entry")
    tree = repo.write_flat_tree(
        {constants.ENTRY_FILE: (blob, False), constants.PINNED_TREE: (head.pinned_tree, True)}
    )
    bad = repo.write_commit(tree, [tip], "coop: attestation\n")
    after_bad = ledger.Entry(
        head.entry.seq + 1, "0" * 64, "attestation", head.entry.challenge, head.origin, "k", {}
    )
    skipped = ledger.Head(bad, after_bad, "0" * 64, head.pinned_tree)
    top = ledger.stack(repo, skipped, [(good, head.pinned_tree)])
    repo.cas_ref(constants.LEDGER_REF, top.commit, tip, "test")
    assert _refresh(m).how == "appended"
    subject = notes.note_line(good)
    assert subject is not None
    assert [ln.split()[0] for ln in _note(m, subject[0])] == [f"#{good.seq}", f"#{good.seq + 2}"]
    (m.repo / ".git/coop/notes.json").unlink()
    assert _refresh(m).how == "rebuilt"
    assert [ln.split()[0] for ln in _note(m, subject[0])] == [f"#{good.seq}", f"#{good.seq + 2}"]


# A refresh in a process of its own that stops (and waits to be killed) at one point.
STOPPING = """
import pathlib, sys, time
from gitcoop import _gitcli, notes
from gitcoop.git import open_repo
from gitcoop.workspace import local_dir

stop, mark = sys.argv[1], pathlib.Path(sys.argv[2])

def wait():
    mark.touch()
    time.sleep(60)

def stopping(real, before):
    def run(*args, **kwargs):
        if before:
            wait()
        out = real(*args, **kwargs)
        wait()
        return out
    return run

if stop == "before fast-import":
    _gitcli.feed = stopping(_gitcli.feed, True)
elif stop == "after fast-import":
    _gitcli.feed = stopping(_gitcli.feed, False)
else:  # after the ref moved, before the state is written
    notes._write_state = stopping(notes._write_state, True)
repo = open_repo(".")
notes.refresh(repo, local_dir(repo))
"""


def test_sigkill_at_any_point_leaves_old_or_new_notes(world: World) -> None:
    m = world.maintainer()
    _empty_commits(m, 5)
    m.coop("evaluate", "HEAD~5..HEAD")
    new, clean = m.head("refs/notes/coop"), _tree(m)
    for stop in ("before fast-import", "after fast-import", "after the ref"):
        m.git("notes", "--ref", "coop", "add", "-f", "-m", "foreign", m.head("HEAD~6"))
        (m.repo / ".git/coop/notes.json").unlink()
        old = m.head("refs/notes/coop")
        mark = world.root / stop.replace(" ", "-")
        proc = subprocess.Popen(
            [sys.executable, "-c", STOPPING, stop, str(mark)], cwd=m.repo, start_new_session=True
        )
        deadline = time.monotonic() + 30
        while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert mark.exists(), f"the refresh never got {stop}"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

        assert m.head("refs/notes/coop") == (new if stop == "after the ref" else old), stop
        tmp = m.git("for-each-ref", "--format=%(refname)", "refs/coop-tmp/").stdout.split()
        assert len(tmp) == (1 if stop == "after fast-import" else 0)  # written, not moved on
        assert m.git("fsck", "--no-dangling", "--no-progress", check=False).returncode == 0
        assert _refresh(m).how == "rebuilt"  # the state does not match: nothing is assumed
        assert m.head("refs/notes/coop") == new and _tree(m) == clean, stop
        assert not m.git("for-each-ref", "refs/coop-tmp/").stdout  # the leftover is gone
