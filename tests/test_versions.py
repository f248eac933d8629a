"""Challenge versions: a maintainer changes the metric with `git coop challenge update`, a
signed entry that pins the new challenge; scores under it are a new series (`git coop
rescore`), and credit under each version stays readable side by side. Only a maintainer's
update against the version in force counts; anything else breaks the chain, so clients
and a guarded server refuse it."""

from __future__ import annotations

import json

from testing.world import Player, World, run

from gitcoop import constants, keys, ledger, pinned, records
from gitcoop.git import open_repo

# Version 2 halves every score: the same commits, another measurement.
EVALUATE_V2 = """\
import json, pathlib
print(json.dumps({"accuracy": float(pathlib.Path("score.txt").read_text()) / 2}))
"""


def _credit(p: Player, *args: str) -> dict:
    return json.loads(p.coop("credit", "--json", *args).stdout)


def _people(report: dict) -> list[tuple[str, str]]:
    return [(c["email"], c["gain"]) for c in report["contributors"]]


def _metric_v2(m: Player) -> None:
    """Commit a new metric and the challenge file that names it (not yet in force)."""
    (m.repo / "evaluate2.py").write_text(EVALUATE_V2)
    path = m.repo / ".coop/challenge.yaml"
    text = path.read_text().replace("python evaluate.py", "python evaluate2.py")
    path.write_text(text.replace('  - "evaluate.py"', '  - "evaluate.py"\n  - "evaluate2.py"'))
    m.git("add", "evaluate2.py", ".coop/challenge.yaml")
    m.git("commit", "-qm", "metric v2: halve the score")


def _with_ada(world: World) -> tuple[Player, Player]:
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    world.accept(ada)
    ada.commit_score("0.7", "ada improves")
    ada.git("push", "-q", "origin", "HEAD:main")
    m.git("pull", "-q", "--ff-only", "origin", "main")
    m.coop("sync", "origin")
    return m, ada


def test_a_new_version_is_a_new_series_and_the_old_credit_stays(world: World) -> None:
    m, ada = _with_ada(world)
    v1, v1_tip = _credit(m), m.head()
    assert v1["version"] == 1 and _people(v1) == [("ada@example.org", "0.2")]
    _metric_v2(m)
    out = m.coop("challenge", "update")
    assert "challenge version 2" in out.stdout
    assert "nothing appended" in m.coop("challenge", "update").stdout
    m.git("push", "-q", "origin", "main")  # the hook scores the new commit under version 2

    report = _credit(m)  # version 2 has nothing but that commit yet
    assert report["version"] == 2 and report["uncredited"][0]["reason"] == "baseline not scored"
    assert "version 2:" in m.coop("rescore").stdout
    report = _credit(m)
    assert report["baseline"]["score"] == "0.25" and report["best"]["score"] == "0.35"
    assert _people(report) == [("ada@example.org", "0.1")]  # a rescore does not take credit
    assert _credit(m, "--metric-version", "1", "--rev", v1_tip) == v1  # as it read before

    wrong = m.coop("credit", "--metric-version", "3", check=False)
    assert wrong.returncode == 2 and "there is no challenge version 3" in wrong.stderr
    stale = m.coop("rescore", "--metric-version", "1", check=False)
    assert stale.returncode == 2 and "only the challenge version in force (2)" in stale.stderr

    m.coop("sync", "origin")
    ada.git("pull", "-q", "--ff-only", "origin", "main")
    ada.coop("sync", "origin")
    assert _credit(ada) == _credit(m)
    assert m.coop("verify", "--full").returncode == 0


def _forge_update(p: Player, tree_of: str, replaces: int, number: int) -> None:
    """Append, as ``p``, a challenge-update pinning the challenge in ``tree_of``."""
    repo, key = open_repo(p.repo), keys.load(p.home)
    head = ledger.head(repo)
    assert head is not None
    pin = pinned.from_tree(repo, repo.commit(tree_of).tree, "test")
    body = records.challenge_update_body(
        pin.challenge.name, pin.digest, head.origin, replaces, number, tree_of
    )
    event = records.Event("challenge-update", body, records.Signer(key.keyid, p.email, p.name), "t")
    envelope = records.sign(event.payload(), constants.EVENT_PAYLOAD_TYPE, key)
    ledger.append(
        repo, "challenge-update", key.public_openssh, envelope,
        pinned_tree=pin.tree, challenge=pin.digest,
    )  # fmt: skip


def test_only_a_maintainer_changes_the_challenge(world: World) -> None:
    m, ada = _with_ada(world)
    run(world.root, "git", "coop", "server", "install", str(world.remote), env=m.env)
    _metric_v2(ada)
    refused = ada.coop("challenge", "update", check=False)
    assert refused.returncode == 2 and "only a maintainer changes the challenge" in refused.stderr
    before = ada.ref("refs/coop/ledger")
    _forge_update(ada, ada.head(), 0, 2)  # by hand, as a client skipping the check would
    out = ada.coop("verify", check=False)
    assert out.returncode == 1 and "changes the challenge, but" in out.stderr
    assert "is not a maintainer in the trust list in force" in out.stderr
    pushed = ada.git("push", "origin", "refs/coop/ledger", check=False)
    assert pushed.returncode != 0 and "is not a maintainer" in pushed.stderr
    ada.git("update-ref", "refs/coop/ledger", str(before))
    assert m.coop("verify", "--full").returncode == 0


def test_an_old_update_replayed_breaks_the_chain(world: World) -> None:
    m, _ = _with_ada(world)
    _metric_v2(m)
    v2_source = m.head()
    m.coop("challenge", "update")
    path = m.repo / ".coop/challenge.yaml"
    path.write_text(path.read_text().replace('min_delta: "0"', 'min_delta: "0.01"'))
    m.git("commit", "-qam", "min_delta 0.01")
    m.coop("challenge", "update")  # version 3
    assert m.coop("verify").returncode == 0
    _forge_update(m, v2_source, 2, 2)  # version 2's update, made again by its own signer
    out = m.coop("verify", check=False)
    assert out.returncode == 1 and "but version 3" in out.stderr


def test_sync_drops_local_scores_under_a_replaced_version(world: World) -> None:
    m, ada = _with_ada(world)
    ada.git("checkout", "-q", "-b", "try")
    ada.coop("evaluate", ada.commit_score("0.8"))  # unpublished, under version 1
    _metric_v2(m)
    m.coop("challenge", "update")
    m.coop("sync", "origin")
    out = ada.coop("sync", "origin")
    assert "dropped 1 local entries made under a challenge version" in out.stderr
    assert ada.ref("refs/coop/ledger") == m.ref("refs/coop/ledger")
    assert ada.coop("verify", "--full").returncode == 0
    again = ada.coop("evaluate", "HEAD")  # scored afresh under version 2
    assert "attested" in again.stdout
