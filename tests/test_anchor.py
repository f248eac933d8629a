"""Anchoring the ledger head in Ethereum, against a real local node (anvil): the
transaction, the journal that survives a crash at each step, the anchor entry, and
`verify --chain`, cross-checked with foundry's `cast`."""

from __future__ import annotations

import json
import subprocess

import pytest
from testing.anvil import BIN, Node
from testing.world import Player, World, run


def _anchor(
    p: Player, node: Node, *args: str, check: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    """Anchor as ``p``; one confirmation is final unless ``args`` hold ``--finalized``."""
    variables = {**p.env, "GITCOOP_ETH_KEY": node.keys[0], **env}
    depth = [] if "--finalized" in args else ["--confirmations", "1"]
    args = tuple(a for a in args if a != "--finalized")
    return run(
        p.repo, "git", "coop", "anchor", "--rpc", node.url, "--chain-id", "31337", *depth,
        *args, env=variables, check=check,
    )  # fmt: skip


def _chain(p: Player, node: Node, *args: str) -> list[dict]:
    """What verify --chain says of each anchor (it exits 1 when one is broken)."""
    out = p.coop("verify", "--chain", "--rpc", node.url, "--json", *args, check=False)
    broken = any(a["status"] == "broken" for a in json.loads(out.stdout))
    assert out.returncode == (1 if broken else 0), out.stderr
    return json.loads(out.stdout)


def _journal(p: Player) -> dict:
    return json.loads((p.repo / ".git/coop/anchor.json").read_text())


def test_anchor_records_the_head_and_the_chain_bears_it_out(world: World, anvil: Node) -> None:
    m = world.maintainer()
    m.coop("evaluate", m.commit_score("0.6"))
    head = json.loads(m.coop("verify", "--json").stdout)["head"]
    dry = _anchor(m, anvil, "--dry-run")
    assert "dry run: would send 0x" in dry.stdout
    assert not (m.repo / ".git/coop/anchor.json").exists()  # nothing journaled or sent
    out = _anchor(m, anvil)
    assert f"anchored entry #{head['seq']}" in out.stdout
    j = _journal(m)
    assert j["history"] == ["prepared", "broadcast", "included", "final"]
    assert "nothing to do" in _anchor(m, anvil).stdout  # the anchor entry is not anchored
    checked = _chain(m, anvil, "--confirmations", "1")
    assert [(a["seq"], a["status"]) for a in checked] == [(head["seq"], "final")]
    assert m.coop("verify", "--full").returncode == 0
    # A client nobody here wrote reads the transaction back.
    cast = subprocess.run(
        [str(BIN / "cast"), "tx", j["tx"], "input", "--rpc-url", anvil.url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    data = cast.stdout.strip()
    assert data == j["data"] and data.endswith(head["hash"])
    assert bytes.fromhex(data[2:38]) == b"gitcoop-anchor-v1\x00"


def test_a_wrong_chain_id_signs_nothing(world: World, anvil: Node) -> None:
    m = world.maintainer()
    out = run(
        m.repo, "git", "coop", "anchor", "--rpc", anvil.url, "--chain-id", "1",
        env={**m.env, "GITCOOP_ETH_KEY": anvil.keys[0]}, check=False,
    )  # fmt: skip
    assert out.returncode == 2 and "is on chain 31337, not 1" in out.stderr
    assert not (m.repo / ".git/coop/anchor.json").exists()
    nonce = anvil.call("eth_getTransactionCount", _address(anvil), "latest")
    assert nonce == "0x0"


def _address(node: Node) -> str:
    return str(node.call("eth_accounts")[0])


@pytest.mark.parametrize("point", ["after-prepare", "after-broadcast", "after-receipt"])
def test_a_crash_at_each_step_resumes_with_one_transaction(
    world: World, anvil: Node, point: str
) -> None:
    m = world.maintainer()
    before = int(anvil.call("eth_getTransactionCount", _address(anvil), "latest"), 16)
    crashed = _anchor(m, anvil, check=False, GITCOOP_FAULT=f"anchor:{point}")
    assert crashed.returncode == 137
    tx = _journal(m)["tx"]
    out = _anchor(m, anvil)
    assert "resuming the anchoring" in out.stderr and "anchored entry #1" in out.stdout
    after = int(anvil.call("eth_getTransactionCount", _address(anvil), "latest"), 16)
    assert after - before == 1 and _journal(m)["tx"] == tx  # the same transaction, once
    assert [a["status"] for a in _chain(m, anvil, "--confirmations", "1")] == ["final"]


def test_verify_chain_finds_an_anchor_the_chain_lost(world: World, anvil: Node) -> None:
    m = world.maintainer()
    _anchor(m, anvil)
    j = _journal(m)
    anvil.call("anvil_reorg", 1, [])  # the anchoring block is replaced by another
    out = m.coop("verify", "--chain", "--rpc", anvil.url, check=False)
    assert out.returncode == 1 and "broken" in out.stdout, out.stdout
    assert j["tx"] in out.stdout


def test_no_key_and_no_rpc_are_one_clear_line(world: World, anvil: Node) -> None:
    m = world.maintainer()
    out = run(m.repo, "git", "coop", "anchor", "--rpc", anvil.url, "--chain-id", "31337",
              env=m.env, check=False)  # fmt: skip
    assert out.returncode == 2 and "no Ethereum key" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = m.coop("verify", "--chain", check=False)
    assert out.returncode == 2 and "needs --rpc" in out.stderr
    down = _anchor(m, Node("http://127.0.0.1:9", anvil.keys), check=False)
    assert down.returncode == 1 and "did not answer eth_chainId" in down.stderr


def test_finality_waits_for_the_finalized_block_through_a_reorg(world: World, anvil: Node) -> None:
    m = world.maintainer()
    first = _anchor(m, anvil, "--finalized")
    assert "not final yet" in first.stdout  # anvil finalizes 64 blocks behind its head
    tx = _journal(m)["tx"]
    entries = len(json.loads(m.coop("log", "--json").stdout))
    anvil.call("anvil_reorg", 1, [])  # the block that held it is replaced, without it
    again = _anchor(m, anvil, "--finalized")
    assert "left the canonical chain; sending again" in again.stderr
    assert "not final yet" in again.stdout  # included anew: never final early
    assert len(json.loads(m.coop("log", "--json").stdout)) == entries  # nothing recorded
    assert _journal(m)["tx"] == tx  # the same signed transaction, sent again
    anvil.call("anvil_mine", hex(70))
    done = _anchor(m, anvil, "--finalized")
    assert "anchored entry #1" in done.stdout
    assert [a["status"] for a in _chain(m, anvil)] == ["final"]  # by the finalized tag


def test_an_anchor_the_chain_lost_is_anchored_again(world: World, anvil: Node) -> None:
    m = world.maintainer()
    _anchor(m, anvil)
    anvil.call("anvil_reorg", 1, [])  # lost after it was recorded (one confirmation)
    assert [a["status"] for a in _chain(m, anvil, "--confirmations", "1")] == ["broken"]
    out = _anchor(m, anvil)
    assert "anchored entry #1" in out.stdout
    statuses = [a["status"] for a in _chain(m, anvil, "--confirmations", "1")]
    assert statuses == ["broken", "final"]  # the lost one stays in the record, named
