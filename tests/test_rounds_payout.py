"""Rounds, their signed close, the payout and the leaderboard, end to end on real clones."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import time
from pathlib import Path

import pytest
from testing.world import EVALUATE, Player, World, add_evaluator, run

pytestmark = pytest.mark.slow


def _stamp(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _challenge(m: Player, rest: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Commit a hand-written challenge and init it (and, when it took, publish it)."""
    (m.repo / ".coop").mkdir()
    (m.repo / ".coop/challenge.yaml").write_text(
        "version: 1\nname: toy\nmetric:\n  command: python evaluate.py\n  name: accuracy\n"
        "  direction: maximize\nprotect: [evaluate.py]\n" + rest
    )
    m.git("add", ".coop")
    m.git("commit", "-qm", "challenge by hand")
    out = m.coop("init", check=check)
    if out.returncode == 0:
        m.git("push", "-q", "origin", "main")
    return out


def _ada_with_wallet(world: World, tmp_path: Path) -> tuple[Player, str]:
    from eth_account import Account

    ada = world.contributor("ada", "Ada", "ada@example.org")
    wallet = Account.create()
    secret = tmp_path / "ada.eth"
    secret.write_text(wallet.key.hex())
    secret.chmod(0o600)
    ada.coop("join", "--eth-address", wallet.address, "--eth-key-file", str(secret))
    ada.git("push", "-q", "origin", "HEAD:main")
    return ada, wallet.address


def _push(p: Player, score: str) -> str:
    p.git("pull", "-q", "--ff-only", "origin", "main")
    commit = p.commit_score(score)
    p.git("push", "-q", "origin", "main")
    return commit


# A round that ends this long after the test starts: every push meant to be inside it lands
# before the end even on a loaded 2-core machine running the suite in parallel.
ROUND_SECONDS = 45


def _json(p: Player, *args: str) -> dict:
    return json.loads(p.coop(*args).stdout)


def test_a_round_is_credited_closed_paid_and_stays_fixed(world: World, tmp_path: Path) -> None:
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=ROUND_SECONDS)
    m = world.maintainer(init_args=None)
    _challenge(
        m,
        'credit:\n  min_delta: "0.01"\nrounds:\n'
        f"  - name: r1\n    start: 2026-01-01T00:00:00Z\n    end: {_stamp(end)}\n"
        f"  - name: r2\n    start: {_stamp(end)}\n    end: 2099-01-01T00:00:00Z\n"
        "rewards:\n  pool: 1001\n  unit: cents\n",
    )
    ada, address = _ada_with_wallet(world, tmp_path)
    world.accept(ada, join=False)  # joined with her wallet
    bob = world.contributor("bob", "Bob", "bob@example.org")
    world.accept(bob)
    _push(ada, "0.6")
    _push(bob, "0.7")
    late = _push(ada, "0.705")  # below min_delta: earns nothing, ties bob on the board
    m.git("pull", "-q", "--ff-only", "origin", "main")
    m.coop("sync", "origin")
    open_r1 = _json(m, "credit", "--round", "r1", "--json")
    rows = {r["email"]: r for r in open_r1["contributors"]}
    assert rows["ada@example.org"]["gain"] == "0.1" and rows["bob@example.org"]["gain"] == "0.1"
    assert {"commit": late, "reason": "delta below min_delta"} in open_r1["uncredited"]
    assert open_r1["round"]["closed"] is None

    early = m.coop("round", "close", "r1", check=False)
    assert early.returncode == 2 and "still open" in early.stderr
    refused = bob.coop("round", "close", "r1", check=False)
    assert refused.returncode == 2 and "maintainer" in refused.stderr

    board = _json(m, "leaderboard", "--round", "r1", "--json")
    assert board["rounded_to"] == "0.01"
    # 0.705 rounds (half-even) to 0.70: equal to bob's 0.7, and bob was first.
    assert [(p["name"], p["score"]) for p in board["contributors"]] == [
        ("Bob", "0.7"),
        ("Ada", "0.7"),
    ]
    assert board["contributors"][1]["commits"] == 2  # her join commit is no entry

    left = (end - dt.datetime.now(dt.UTC)).total_seconds()
    assert left > 0, "the pushes outlasted the round: raise ROUND_SECONDS"
    time.sleep(left + 1)
    m.coop("sync", "origin")
    closed = m.coop("round", "close", "r1").stdout
    assert "closed round r1" in closed
    m.coop("sync", "origin")
    again = m.coop("round", "close", "r1", check=False)
    assert again.returncode == 2 and "was closed" in again.stderr

    _push(bob, "0.9")  # in round 2: cannot change round 1
    m.git("pull", "-q", "--ff-only", "origin", "main")
    m.coop("sync", "origin")
    fixed = _json(m, "credit", "--round", "r1", "--json")
    assert fixed["contributors"] == open_r1["contributors"]
    assert fixed["round"]["closed"]["tip"] == late
    assert not [n for n in fixed["notes"] if "differs" in n]
    r2 = {r["email"]: r for r in _json(m, "credit", "--round", "r2", "--json")["contributors"]}
    assert set(r2) == {"bob@example.org"} and r2["bob@example.org"]["gain"] == "0.195"
    rev = m.coop("credit", "--round", "r1", "--rev", "main", check=False)
    assert rev.returncode == 2 and "fixed" in rev.stderr

    paid = _json(m, "payout", "--round", "r1", "--json")
    amounts = {p["email"]: p for p in paid["payees"]}
    # 1001 split evenly: the odd unit goes to whoever came first in the ledger (Ada).
    assert amounts["ada@example.org"]["amount"] == "501"
    assert amounts["bob@example.org"]["amount"] == "500"
    assert amounts["ada@example.org"]["address"] == address
    assert amounts["bob@example.org"]["address"] is None
    table = list(csv.DictReader(io.StringIO(m.coop("payout", "--round", "r1", "--csv").stdout)))
    assert sum(int(r["amount"]) for r in table) == 1001

    from gitcoop import merkle

    tree = _json(m, "payout", "--round", "r1", "--merkle")
    (claim,) = tree["claims"]
    assert claim["address"] == address and claim["amount"] == "501"
    assert merkle.verify(tree["root"], address, 501, claim["proof"])
    assert not merkle.verify(tree["root"], address, 502, claim["proof"])
    assert len(tree["without_address"]) == 1

    # Anyone with a clone reads the same fixed result.
    carol = world.contributor("carol", "Carol", "carol@example.org")
    assert (
        _json(carol, "credit", "--round", "r1", "--json")["contributors"]
        == (open_r1["contributors"])
    )
    assert carol.coop("verify", "--full").returncode == 0


def test_lineage_passes_a_share_back_to_the_work_built_on(world: World) -> None:
    m = world.maintainer(init_args=None)
    _challenge(m, 'credit:\n  lineage: "0.5"\n')
    ada = world.contributor("ada", "Ada", "ada@example.org")
    world.accept(ada)
    bob = world.contributor("bob", "Bob", "bob@example.org")
    world.accept(bob)
    _push(ada, "0.6")
    _push(bob, "0.8")
    m.git("pull", "-q", "--ff-only", "origin", "main")
    m.coop("sync", "origin")
    rows = {r["email"]: r for r in _json(m, "credit", "--json")["contributors"]}
    ada_row, bob_row = rows["ada@example.org"], rows["bob@example.org"]
    assert (ada_row["gain"], ada_row["received"], ada_row["net"]) == ("0.1", "0.1", "0.2")
    assert (bob_row["gain"], bob_row["passed"], bob_row["net"]) == ("0.2", "0.1", "0.1")
    assert (ada_row["share"], bob_row["share"]) == ("0.666667", "0.333333")

    # The report a person looks at, drawn by a real browser with the network off.
    from testing.browser import dump_dom

    page = m.repo.parent / "report.html"
    m.coop("report", "--html", str(page))
    dom = dump_dom(page)
    assert "Ada" in dom and "Bob" in dom and 'id="chart"' in dom
    assert dom.count("<circle") >= 2  # each improvement is marked
    assert "Anchors not checked" in dom
    md = m.coop("report", "--markdown", "-").stdout
    assert "```mermaid" in md and "| Ada" in md


@pytest.mark.parametrize(
    ("rest", "message"),
    [
        ("rewards:\n  pool: -5\n", "rewards.pool must be a positive integer"),
        ('rewards:\n  pool: "100"\n', "rewards.pool must be a positive integer"),
        ("rewards:\n  pool: 100\n  rule: lottery\n", "rewards.rule must be"),
        (
            "rounds:\n  - {name: a, start: 2026-01-01T00:00:00Z, end: 2026-02-01T00:00:00Z}\n"
            "  - {name: b, start: 2026-01-15T00:00:00Z, end: 2026-03-01T00:00:00Z}\n",
            "round 'b' starts before round 'a' ends",
        ),
        (
            "rounds:\n  - {name: a, start: 2026-02-01T00:00:00Z, end: 2026-01-01T00:00:00Z}\n",
            "rounds[0] (a) ends before it starts",
        ),
    ],
)
def test_bad_rules_are_refused_with_the_key_named(world: World, rest: str, message: str) -> None:
    m = world.maintainer(init_args=None)
    out = _challenge(m, rest, check=False)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert m.ref("refs/coop/ledger") is None


def test_asking_for_what_does_not_exist_is_one_clear_line(world: World) -> None:
    m = world.maintainer()
    for args, message in [
        (("credit", "--round", "nope"), "no round 'nope'"),
        (("payout",), "no reward pool"),
        (("round", "close", "nope"), "no round 'nope'"),
        (("report",), "give one of --html"),
        (("payout", "--json", "--csv"), "choose one of"),
    ]:
        out = m.coop(*args, check=False)
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr and "Traceback" not in out.stderr


def test_an_evaluator_file_is_untouched_by_rounds() -> None:
    # The test metric the worlds use must stay the one the other tests rely on.
    assert "score.txt" in EVALUATE


PRIVATE_EVAL = """\
import json, os, pathlib
table = json.loads(pathlib.Path(os.environ["COOP_PRIVATE_DATA"]).read_text())
print(json.dumps({"accuracy": table[pathlib.Path("score.txt").read_text().strip()]}))
"""


@pytest.mark.parametrize("flow", ["close", "ci"])
def test_a_private_split_decides_the_round_and_overfitting_the_public_one_does_not_pay(
    world: World, tmp_path: Path, flow: str
) -> None:
    import hashlib

    # The held-out data: what each model really scores. Bob's 0.7 overfits the public split.
    data = tmp_path / "private.json"
    data.write_text(json.dumps({"0.5": 0.5, "0.6": 0.58, "0.7": 0.52, "0.62": 0.6}))
    digest = "sha256:" + hashlib.sha256(data.read_bytes()).hexdigest()
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=ROUND_SECONDS)
    m = world.maintainer(init_args=None)
    (m.repo / "private_eval.py").write_text(PRIVATE_EVAL)
    m.git("add", "private_eval.py")
    _challenge(
        m,
        f"private:\n  command: python private_eval.py\n  digest: '{digest}'\n"
        f"rounds:\n  - name: r1\n    start: 2026-01-01T00:00:00Z\n    end: {_stamp(end)}\n"
        "rewards:\n  pool: 100\n  rule: best\n",
    )
    secret = add_evaluator(m)
    players = []
    for key, name in (("ada", "Ada"), ("bob", "Bob")):
        p = world.contributor(key, name, f"{key}@example.org")
        world.accept(p)
        players.append(p)
    ada, bob = players
    _push(ada, "0.6")
    _push(bob, "0.7")
    m.git("pull", "-q", "--ff-only", "origin", "main")
    m.coop("sync", "origin")
    public = _json(m, "leaderboard", "--round", "r1", "--json")
    assert public["contributors"][0]["name"] == "Bob"  # the public split, provisionally
    assert any("private split when it closes" in n for n in public["notes"])

    runner = world.contributor("runner", "CI", "ci@example.org", join=False)
    early = run(runner.repo, "git", "coop", "ci", "score", "--split", "private", "--round", "r1",
                "--private-data", str(data), "--out", str(tmp_path / "x.json"),
                env=runner.env, check=False)  # fmt: skip
    assert early.returncode == 2 and "stay unmade" in early.stderr
    assert not (tmp_path / "x.json").exists()
    left = (end - dt.datetime.now(dt.UTC)).total_seconds()
    assert left > 0, "the pushes outlasted the round: raise ROUND_SECONDS"
    time.sleep(left + 1)
    ci_env = {**runner.env, "GITCOOP_EVALUATOR_KEY": secret}
    wrong = tmp_path / "wrong.json"
    wrong.write_text("{}")
    bad = run(runner.repo, "git", "coop", "round", "close", "r1", "--evaluator",
              "--private-data", str(wrong), env=ci_env, check=False)  # fmt: skip
    assert bad.returncode == 1 and "not the sha256:" in bad.stderr
    nokey = m.coop("round", "close", "r1", "--private-data", str(data), check=False)
    assert nokey.returncode == 2 and "only an evaluator" in nokey.stderr
    if flow == "ci":  # scored by a job holding the data, signed by one holding the key
        results = str(tmp_path / "private-results.json")
        run(runner.repo, "git", "coop", "ci", "score", "--split", "private", "--round", "r1",
            "--private-data", str(data), "--out", results, env=runner.env)  # fmt: skip
        signed = run(runner.repo, "git", "coop", "ci", "sign", "--no-push", results, env=ci_env)
        assert "already signed 0, failed 0" in signed.stdout
        again = run(runner.repo, "git", "coop", "ci", "sign", "--no-push", results, env=ci_env)
        assert again.stdout.startswith("signed 0,")
        out = run(runner.repo, "git", "coop", "round", "close", "r1", "--evaluator", env=ci_env)
    else:
        out = run(runner.repo, "git", "coop", "round", "close", "r1", "--evaluator",
                  env={**ci_env, "GITCOOP_PRIVATE_DATA": str(data)})  # fmt: skip
        assert "on the private split" in out.stdout
    assert "closed round r1" in out.stdout
    run(runner.repo, "git", "coop", "sync", "origin", env=ci_env)

    m.coop("sync", "origin")
    fixed = _json(m, "credit", "--round", "r1", "--json")
    rows = {r["email"]: r for r in fixed["contributors"]}
    assert rows["ada@example.org"]["gain"] == "0.08"
    assert rows["bob@example.org"]["loss"] == "-0.06"
    assert fixed["best"]["score"] == "0.58"
    paid = _json(m, "payout", "--round", "r1", "--json")["payees"]
    assert [(p["name"], p["amount"]) for p in paid] == [("Ada", "100")]
    assert m.coop("verify", "--full").returncode == 0
