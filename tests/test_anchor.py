"""Anchoring the ledger head in Ethereum, against a real local node (anvil): the
transaction, the journal that survives a crash at each step, the anchor entry, and
`verify --chain`, cross-checked with foundry's `cast`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from testing.anvil import BIN, Node, running
from testing.world import Player, World, run


@pytest.fixture(scope="session")
def node() -> Iterator[Node]:
    with running() as started:
        yield started


@pytest.fixture
def anvil(node: Node) -> Iterator[Node]:
    snapshot = node.call("evm_snapshot")
    yield node
    node.call("evm_revert", snapshot)


def _anchor(p: Player, node: Node, *args: str, check: bool = True, **env: str):
    variables = {**p.env, "GITCOOP_ETH_KEY": node.keys[0], **env}
    return run(
        p.repo, "git", "coop", "anchor", "--rpc", node.url, "--chain-id", "31337", *args,
        env=variables, check=check,
    )  # fmt: skip


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
    checked = json.loads(m.coop("verify", "--chain", "--rpc", anvil.url, "--json").stdout)
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
    checked = json.loads(m.coop("verify", "--chain", "--rpc", anvil.url, "--json").stdout)
    assert [a["status"] for a in checked] == ["final"]


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
