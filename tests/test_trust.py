"""The trust list in force is the ledger's: a commit editing `.coop/allowed_signers` only
proposes; a maintainer's signed trust-update makes it count. Keys the list does not name
earn nothing and are named; roles give assurance levels, and `credit.require` decides
what counts."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from testing.tamper import append_entry
from testing.world import Player, World

from gitcoop import constants, keys, records, trust
from gitcoop.trust import Timeline, TrustRow

CI_YAML = """\
version: 1
name: toy
branch: main
metric:
  command: python evaluate.py
  name: accuracy
  direction: maximize
protect: [evaluate.py]
credit:
  require: "{require}"
"""


def _key() -> tuple[str, str]:
    public = Ed25519PrivateKey.generate().public_key()
    return keys.public_openssh(public), keys.fingerprint(public)


def _line(who: str, public: str, roles: str = "gitcoop") -> str:
    return keys.signers_line(who, public, roles)


# --- the rules, on their own ----------------------------------------------------------


def test_roles_are_namespaces_and_other_lines_are_skipped() -> None:
    (m, mid), (c, cid), (e, eid) = _key(), _key(), _key()
    members = trust.parse(
        [
            _line("m@x", m, "gitcoop,gitcoop-maintainer"),
            f"c@x {c}",
            _line("ci@x", e, "gitcoop-evaluator"),
            "# a comment ssh-ed25519 AAAA",
            "rsa@x ssh-rsa AAAAB3NzaC1yc2E",
        ]
    )
    assert set(members) == {mid, cid, eid}
    assert members[mid].roles == {"contributor", "maintainer"}
    assert members[cid].roles == {"contributor"} and members[cid].principal == "c@x"
    assert members[eid].roles == {"evaluator"}


def test_updates_count_only_from_a_maintainer_against_the_list_in_force() -> None:
    (m, mid), (a, aid), (b, bid) = _key(), _key(), _key()
    genesis = TrustRow(0, mid, (f"m@x {m}",), None)  # the genesis signer: maintainer
    add_a = TrustRow(5, mid, (f"m@x {m}", _line("a@x", a)), 0)
    by_a = TrustRow(7, aid, (f"m@x {m}", _line("a@x", a), _line("b@x", b)), 5)
    drop_a = TrustRow(9, mid, (f"m@x {m}",), 5)
    replayed = TrustRow(12, mid, add_a.lines, 0)  # add_a again, made against genesis
    t = Timeline([genesis, add_a, by_a, drop_a, replayed])
    assert [(r.seq, why.split()[0]) for r, why in t.ignored] == [(7, aid), (12, "it")]
    assert t.member(mid, 3) is not None and t.member(mid, 3).has("maintainer")  # type: ignore[union-attr]
    assert t.member(aid, 2) is not None  # signed before the join was accepted: counts
    assert t.member(aid, 6) is not None
    assert t.member(aid, 9) is None and t.member(aid, 20) is None  # dropped: no longer
    assert t.member(bid, 8) is None  # only a maintainer's update adds a key
    assert set(t.names()) == {mid} and t.in_force() == 9


# --- end to end -----------------------------------------------------------------------


def _credit(p: Player) -> dict:
    return json.loads(p.coop("credit", "--json").stdout)


def _reasons(report: dict) -> dict[str, str]:
    return {u["commit"]: u["reason"] for u in report["uncredited"]}


def test_a_join_counts_once_a_maintainer_accepts_it(world: World) -> None:
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    keyid = ada.coop("key", "show").stdout.splitlines()[1]
    ada.coop("join")
    better = ada.commit_score("0.7")
    ada.git("push", "-q", "origin", "HEAD:main")  # the hook attests both commits
    m.git("pull", "-q", "--ff-only", "origin", "main")
    m.coop("sync", "origin")
    report = _credit(m)
    assert _reasons(report)[better] == f"signed by {keyid}, a key this challenge does not trust"
    assert [c["email"] for c in report["contributors"]] == []
    assert "earns nothing: signed by" in m.coop("show", better).stdout
    verify = m.coop("verify", "--full")
    assert "does not name: they earn no credit" in verify.stderr
    assert f"ada@example.org ({keyid}, not trusted)" in verify.stdout

    out = ada.coop("join", "--accept", check=False)  # not a maintainer
    assert out.returncode == 2 and "not a maintainer" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1

    accepted = m.coop("join", "--accept")
    assert f"adds ada@example.org ({keyid}; contributor)" in accepted.stdout
    assert "nothing appended" in m.coop("join", "--accept").stdout  # idempotent
    report = _credit(m)
    assert better not in _reasons(report)  # her earlier attestation counts now
    assert [(c["email"], c["improvements"]) for c in report["contributors"]] == [
        ("ada@example.org", "1")
    ]
    m.coop("sync", "origin")
    ada.coop("sync", "origin")
    assert _credit(ada) == report
    roles = json.loads(ada.coop("verify", "--full", "--json").stdout)["signers"]
    assert {r["principal"]: r["roles"] for r in roles} == {
        "maint@example.org": ["contributor", "maintainer"],
        "ada@example.org": ["contributor"],
    }


def test_a_trust_update_signed_by_a_contributor_changes_nothing(world: World) -> None:
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    world.accept(ada)
    mallory = world.contributor("mal", "Mallory", "mal@example.org")
    mallory.coop("join")
    mallory.git("push", "-q", "origin", "HEAD:main")
    ada.git("pull", "-q", "--ff-only", "origin", "main")
    # Ada makes herself a maintainer in the file, and cannot accept that herself...
    signers = ada.repo / ".coop/allowed_signers"
    text = signers.read_text().replace(
        'ada@example.org namespaces="gitcoop"',
        'ada@example.org namespaces="gitcoop,gitcoop-maintainer"',
    )
    signers.write_text(text)
    ada.git("commit", "-qam", "make me a maintainer")
    out = ada.coop("join", "--accept", check=False)
    assert out.returncode == 2 and "not a maintainer" in out.stderr
    before = _credit(m)
    key = keys.load(ada.home)

    def forge(entry: dict) -> dict:  # ...nor by hand, as a client skipping the check would
        body = records.trust_update_body(
            entry["challenge"], entry["origin"], list(trust.lines_of(text)), 0, ada.head()
        )
        signer = records.Signer(key.keyid, "ada@example.org", "Ada")
        event = records.Event("trust-update", body, signer, records.now())
        env = records.sign(event.payload(), constants.EVENT_PAYLOAD_TYPE, key)
        return {**entry, "kind": "trust-update", "key": key.public_openssh, "envelope": env}

    append_entry(ada.repo, forge)
    out = ada.coop("verify")
    assert "is not a maintainer in the list in force" in out.stderr
    ada.coop("sync", "origin")
    m.coop("sync", "origin")
    m.git("pull", "-q", "--ff-only", "origin", "main")
    after = _credit(m)
    assert after["contributors"] == before["contributors"]
    assert "mal@example.org" not in json.dumps(after)


@pytest.mark.parametrize("require", ["ci", "reproduced"])
def test_credit_require_counts_only_assured_attestations(world: World, require: str) -> None:
    m = world.maintainer(init_args=None)
    (m.repo / ".coop").mkdir()
    (m.repo / ".coop/challenge.yaml").write_text(CI_YAML.format(require=require))
    m.git("add", ".coop")
    m.git("commit", "-qm", "challenge")
    m.coop("init")
    m.git("push", "-q", "-u", "origin", "main")
    ci = world.contributor("ci", "CI", "ci@example.org")
    line = (
        ci.coop("key", "export")
        .stdout.strip()
        .replace('namespaces="gitcoop"', 'namespaces="gitcoop,gitcoop-evaluator"')
    )
    signers = m.repo / ".coop/allowed_signers"
    signers.write_text(signers.read_text() + line + "\n")
    m.git("commit", "-qam", "add the evaluator")
    better = m.commit_score("0.8")
    m.git("push", "-q", "origin", "main")  # the maintainer's own scores: self
    report = _credit(m)  # nothing counts before the evaluator scores the baseline
    assert report["uncredited"] == [
        {
            "commit": m.head("HEAD~2"),
            "reason": f"baseline not scored: assurance self; the challenge requires {require}",
        }
    ]

    assert json.loads(m.coop("show", better, "--json").stdout)["assurance"] == {
        "level": "self",
        "counts": False,
        "reason": f"assurance self; the challenge requires {require}",
    }
    m.coop("join", "--accept")
    m.coop("sync", "origin")
    ci.git("pull", "-q", "--ff-only", "origin", "main")
    ci.coop("sync", "origin")
    ci.coop("evaluate", *m.git("rev-list", "HEAD").stdout.split())
    ci.coop("sync", "origin")
    m.coop("sync", "origin")
    report = _credit(m)
    assert better not in _reasons(report)
    assert [(c["email"], c["gain"]) for c in report["contributors"]] == [
        ("maint@example.org", "0.3")
    ]
    standing = json.loads(m.coop("show", better, "--json").stdout)["assurance"]
    assert standing == {"level": "reproduced", "counts": True, "reason": None}  # two agree
    assert "assurance reproduced, counts for credit" in m.coop("show", better).stdout


def _claim(p: Player, commit: str, score: str) -> None:
    """Sign and append, as ``p``, an attestation of ``commit`` claiming ``score`` (what a
    contributor with a doctored metric would sign)."""
    from decimal import Decimal

    from gitcoop import ledger
    from gitcoop.commands.evaluate import environment
    from gitcoop.git import open_repo

    repo, key = open_repo(p.repo), keys.load(p.home)
    head = ledger.head(repo)
    assert head is not None
    info = repo.commit(commit)
    att = records.Attestation(
        commit, info.tree, head.entry.challenge, head.origin, "accuracy", "maximize",
        "public", Decimal(score), info.parents[0], None, None, environment(), 1,
        records.now(), records.Signer(key.keyid, p.email, p.name),
    )  # fmt: skip
    env = records.sign(att.statement(), constants.INTOTO_PAYLOAD_TYPE, key)
    ledger.append(repo, "attestation", key.public_openssh, env)


def _reproduced_challenge(world: World) -> tuple[Player, Player]:
    m = world.maintainer(init_args=None)
    (m.repo / ".coop").mkdir()
    (m.repo / ".coop/challenge.yaml").write_text(CI_YAML.format(require="reproduced"))
    m.git("add", ".coop")
    m.git("commit", "-qm", "challenge")
    m.coop("init")
    m.git("push", "-q", "-u", "origin", "main")
    ada = world.contributor("ada", "Ada", "ada@example.org")
    world.accept(ada)
    return m, ada


def test_a_review_reproduces_a_score_or_says_it_did_not(world: World) -> None:
    m, ada = _reproduced_challenge(world)
    honest = ada.commit_score("0.7")
    ada.git("push", "-q", "origin", "HEAD:main")
    m.git("pull", "-q", "--ff-only", "origin", "main")
    m.coop("sync", "origin")
    assert not _credit(m)["contributors"]
    usage = m.coop("review", honest, check=False)
    assert usage.returncode == 2 and "needs --reproduce" in usage.stderr

    # Every mainline score must be reproduced: the baseline (by Ada), her join (by the
    # maintainer) and her improvement.
    baseline = m.head("HEAD~2")
    ada.coop("review", baseline, "--reproduce")
    ada.coop("sync", "origin")
    m.coop("sync", "origin")
    m.coop("review", "HEAD~1", "--reproduce")
    out = json.loads(m.coop("review", honest, "--reproduce", "--json").stdout)
    assert out["result"] == "reproduced" and out["reviewed"] == {
        "score": "0.7",
        "principal": "ada@example.org",
    }
    report = _credit(m)
    assert honest not in _reasons(report)
    assert [(c["email"], c["gain"]) for c in report["contributors"]] == [("ada@example.org", "0.2")]
    shown = json.loads(m.coop("show", honest, "--json").stdout)
    assert [r["result"] for r in shown["reviews"]] == ["reproduced"]

    doctored = ada.commit_score("0.75")
    ada.git("push", "-q", "--no-verify", "origin", "HEAD:main")
    _claim(ada, doctored, "0.99")
    ada.coop("sync", "origin")
    m.git("pull", "-q", "--ff-only", "origin", "main")
    m.coop("sync", "origin")
    failed = m.coop("review", doctored, "--reproduce", check=False)
    assert failed.returncode == 1
    assert "NOT reproduced: 0.75 here, 0.99 by ada@example.org" in failed.stdout
    report = _credit(m)
    assert _reasons(report)[doctored] == "assurance self; the challenge requires reproduced"
    assert any("not reproduced within 0: 0.99 by ada@example.org" in n for n in report["notes"])
    own = ada.coop("review", doctored, "--reproduce", check=False)  # only her own claim
    assert own.returncode == 2 and "no attestation by another trusted signer" in own.stderr
    assert m.coop("verify", "--full").returncode == 0


def test_a_key_counts_only_inside_its_validity_window(world: World) -> None:
    m = world.maintainer()
    ada = world.contributor("ada", "Ada", "ada@example.org")
    keyid = ada.coop("key", "show").stdout.splitlines()[1]
    ada.coop("join")
    better = ada.commit_score("0.7")
    ada.git("push", "-q", "origin", "HEAD:main")  # signed now, at today's time
    m.git("pull", "-q", "--ff-only", "origin", "main")
    m.coop("sync", "origin")
    signers = m.repo / ".coop/allowed_signers"
    text = signers.read_text()

    def window(option: str) -> None:
        signers.write_text(text.replace('ada@example.org namespaces="gitcoop"', option))
        m.git("commit", "-qam", f"ada: {option}")
        m.coop("join", "--accept")

    window('ada@example.org valid-after="20000101Z",namespaces="gitcoop"')
    report = _credit(m)
    assert better not in _reasons(report)
    assert [c["email"] for c in report["contributors"]] == ["ada@example.org"]
    # Her key expired long ago, says the next list: what she signs from now on is refused,
    # what she signed while it was valid stays counted.
    window('ada@example.org namespaces="gitcoop",valid-before="20000101"')
    m.git("push", "-q", "origin", "main")
    ada.git("pull", "-q", "--ff-only", "origin", "main")
    ada.coop("sync", "origin")
    later = ada.commit_score("0.8")
    ada.git("push", "-q", "origin", "HEAD:main")
    m.git("pull", "-q", "--ff-only", "origin", "main")
    m.coop("sync", "origin")
    report = _credit(m)
    assert _reasons(report)[later] == (
        f"signed by {keyid} outside its validity window (valid-before 20000101000000)"
    )
    assert better not in _reasons(report)
