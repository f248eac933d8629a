"""End to end through the real CLI, real hooks and a real bare remote."""

from __future__ import annotations

import json
import platform

from testing.world import World, run

from gitcoop.commands.evaluate import environment


def _ledger_entries(p, ref: str = "refs/coop/ledger") -> int:
    return int(p.git("rev-list", "--count", ref).stdout)


def test_init_creates_challenge_ledger_and_hook(world: World) -> None:
    m = world.maintainer()
    files = m.git("show", "--name-only", "--format=%s", "HEAD").stdout.split()
    assert files[:3] == ["coop:", "init", "challenge"]
    assert {".coop/challenge.yaml", ".coop/allowed_signers"} <= set(files)
    signers = (m.repo / ".coop/allowed_signers").read_text()
    assert "maint@example.org" in signers and "ssh-ed25519 AAAA" in signers
    assert (m.repo / ".git/hooks/pre-push").read_text().count("gitcoop-hook") == 1
    assert _ledger_entries(m) == 2  # genesis + baseline attestation
    assert (m.home / "keys/id_ed25519").stat().st_mode & 0o777 == 0o600
    log = json.loads(m.coop("log", "--json").stdout)
    assert [e["kind"] for e in log] == ["attestation", "genesis"]
    assert log[0]["score"] == "0.5" and log[0]["commit"] == m.head()
    assert m.coop("verify").returncode == 0


def test_init_twice_changes_nothing(world: World) -> None:
    m = world.maintainer()
    before = (m.head(), m.ref("refs/coop/ledger"))
    out = m.coop("init", "--metric", "python evaluate.py", "--direction", "maximize")
    assert "already exists" in out.stdout
    assert (m.head(), m.ref("refs/coop/ledger")) == before


def test_push_scores_signs_and_publishes(world: World) -> None:
    m = world.maintainer()
    c1 = m.commit_score("0.6")
    c2 = m.commit_score("0.55")
    push = m.git("push", "-q", "origin", "main")
    assert "published the ledger" in push.stderr
    remote_ledger = run(world.remote, "git", "rev-parse", "refs/coop/ledger").stdout.strip()
    assert remote_ledger == m.ref("refs/coop/ledger")
    shown = json.loads(m.coop("show", c2, "--json").stdout)
    (att,) = shown["attestations"]
    assert (att["score"], att["delta"]) == ("0.55", "-0.05")
    assert json.loads(m.coop("show", c1, "--json").stdout)["attestations"][0]["delta"] == "0.1"
    # nothing new: a second push scores nothing and appends nothing
    before = m.ref("refs/coop/ledger")
    m.git("push", "-q", "origin", "main")
    assert m.ref("refs/coop/ledger") == before


def test_contributors_get_credit(world: World) -> None:
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    world.accept(ada)
    ada.commit_score("0.7", "ada improves")
    ada.git("push", "-q", "origin", "main")
    bob = world.contributor("bob", "Bob", "bob@example.org")
    world.accept(bob)
    bob.commit_score("0.65", "bob regresses")
    bob.commit_score("0.9", "bob improves")
    bob.git("push", "-q", "origin", "main")
    m.git("pull", "-q", "origin", "main")
    m.coop("sync", "origin")
    report = json.loads(m.coop("credit", "--json").stdout)
    rows = {r["email"]: r for r in report["contributors"]}
    assert rows["ada@example.org"]["gain"] == "0.2"
    assert rows["bob@example.org"]["gain"] == "0.25"
    assert rows["bob@example.org"]["loss"] == "-0.05"
    assert rows["bob@example.org"]["net"] == "0.2"
    assert rows["bob@example.org"]["records"] == "1"
    assert report["baseline"]["score"] == "0.5" and report["best"]["score"] == "0.9"
    assert rows["ada@example.org"]["share"] == "0.444444"
    for fmt in ("table", "csv", "markdown"):
        out = m.coop("credit", "--format", fmt).stdout
        assert "ada@example.org" in out and "bob@example.org" in out
    assert m.coop("verify", "--full").returncode == 0


def test_protected_evaluator_comes_from_the_pin(world: World) -> None:
    m = world.maintainer()
    (m.repo / "evaluate.py").write_text("print('{\"accuracy\": 1.0}')\n")
    m.git("commit", "-qam", "cheat")
    m.git("push", "-q", "origin", "main")
    att = json.loads(m.coop("show", "HEAD", "--json").stdout)["attestations"][0]
    assert att["score"] == "0.5"  # the pinned evaluator ran, not the edited one
    report = json.loads(m.coop("credit", "--json").stdout)
    assert {"commit": m.head(), "reason": "modifies protected paths"} in report["uncredited"]


def test_metric_failure_refuses_push(world: World) -> None:
    m = world.maintainer()
    m.commit_score("oops")
    before = run(world.remote, "git", "rev-parse", "main").stdout
    push = m.git("push", "origin", "main", check=False)
    assert push.returncode != 0
    assert "metric failed" in push.stderr and "--no-verify" in push.stderr
    assert run(world.remote, "git", "rev-parse", "main").stdout == before
    m.git("push", "-q", "--no-verify", "origin", "main")  # the documented way through


def test_hand_written_challenge_with_on_error_warn(world: World) -> None:
    m = world.maintainer(init_args=None)
    (m.repo / ".coop").mkdir()
    (m.repo / ".coop/challenge.yaml").write_text(
        "version: 1\nname: toy\nbranch: main\nmetric:\n  command: python evaluate.py\n"
        "  name: accuracy\n  direction: maximize\nprotect: [evaluate.py]\n"
        "hook:\n  on_error: warn\n"
    )
    m.git("add", ".coop")
    m.git("commit", "-qm", "challenge by hand")
    out = m.coop("init")
    assert "created challenge toy" in out.stdout
    assert (m.repo / ".coop/allowed_signers").exists()
    assert m.git("status", "--porcelain").stdout == ""  # the trust list was committed
    m.git("push", "-q", "origin", "main")
    before = m.ref("refs/coop/ledger")
    bad = m.commit_score("oops")
    push = m.git("push", "origin", "main")
    assert "pushing unscored" in push.stderr
    assert run(world.remote, "git", "rev-parse", "main").stdout.strip() == bad
    assert m.ref("refs/coop/ledger") == before


def test_other_branches_pass_untouched(world: World) -> None:
    m = world.maintainer()
    m.git("checkout", "-q", "-b", "experiment")
    m.commit_score("oops")  # would fail the metric
    before = m.ref("refs/coop/ledger")
    m.git("push", "-q", "origin", "experiment")
    assert m.ref("refs/coop/ledger") == before


def test_protected_globs_in_credit(world: World) -> None:
    m = world.maintainer(
        init_args=("--protect", "evaluate.py", "--protect", "data/**", "--protect", "*.lock")
    )
    (m.repo / "data").mkdir()
    plain = m.commit_score("0.6", "plain improvement")
    (m.repo / "data" / "held-out.csv").write_text("1,2,3\n")
    m.git("add", "data")
    touches_data = m.commit_score("0.7", "also edits the held-out data")
    (m.repo / "deps.lock").write_text("pinned\n")
    m.git("add", "deps.lock")
    touches_lock = m.commit_score("0.8", "also edits a lock file")
    (m.repo / "notes").mkdir()
    (m.repo / "notes" / "data").write_text("not protected\n")
    m.git("add", "notes")
    m.commit_score("0.9", "a file named like a protected dir, elsewhere")
    m.coop("evaluate", f"{plain}~1..HEAD")
    report = json.loads(m.coop("credit", "--json").stdout)
    uncredited = {u["commit"]: u["reason"] for u in report["uncredited"]}
    assert uncredited == {
        touches_data: "modifies protected paths",
        touches_lock: "modifies protected paths",
    }
    (row,) = report["contributors"]
    assert row["gain"] == "0.2"  # 0.5 -> 0.6 and 0.8 -> 0.9


def test_credit_rebuilds_a_missing_or_stale_index(world: World) -> None:
    m = world.maintainer()
    m.commit_score("0.7")
    m.coop("evaluate")
    first = json.loads(m.coop("credit", "--json").stdout)
    index = m.repo / ".git/coop/attestations.jsonl"
    index.unlink()
    assert json.loads(m.coop("credit", "--json").stdout) == first
    assert index.exists()
    lines = index.read_text().splitlines()
    index.write_text("\n".join(lines[:-1]) + "\n")  # as if killed before the seal
    out = m.coop("verify")
    assert "2 checked now" not in out.stdout and "3 entries, 3 checked now" in out.stdout
    assert json.loads(m.coop("credit", "--json").stdout) == first


def test_attested_environment_names_python_and_platform_as_the_platform_module_does() -> None:
    env = environment()
    assert env["python"] == platform.python_version()
    assert env["platform"] == f"{platform.system()}-{platform.machine()}".lower()
