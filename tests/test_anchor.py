"""Anchoring the ledger head in Ethereum, against a real local node (anvil): the
transaction, the journal that survives a crash at each step, the anchor entry, and
`verify --chain`, cross-checked with foundry's `cast`; a transaction the base fee priced
out is replaced with bumped fees, under the cap."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from testing.anvil import BIN, Node, fee_market, price_out
from testing.world import Player, World, run

from gitcoop.chain.anchor import gwei


def _anchor(
    p: Player, node: Node, *args: str, check: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    """Anchor as ``p``; one confirmation is final unless ``args`` hold ``--finalized``; a
    receipt is waited for 10s unless ``args`` say otherwise (a bug fails fast)."""
    variables = {**p.env, "GITCOOP_ETH_KEY": node.keys[0], **env}
    depth = [] if "--finalized" in args else ["--confirmations", "1"]
    depth += [] if "--wait" in args else ["--wait", "10"]
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


@pytest.fixture
def market(anvil: Node) -> Iterator[Node]:
    """The node, with mining and the base fee the test's to move (put back afterwards)."""
    with fee_market(anvil):
        yield anvil


def _nonce(node: Node) -> int:
    return int(node.call("eth_getTransactionCount", _address(node), "latest"), 16)


def _ledger(p: Player) -> str:
    return p.git("rev-parse", "refs/coop/ledger").stdout.strip()


def _bumped(old: dict, new: dict) -> bool:
    """Whether ``new`` raises both fees of ``old`` by at least 12.5%, at the same nonce."""
    return (
        new["nonce"] == old["nonce"]
        and new["max_fee"] * 8 >= old["max_fee"] * 9
        and new["tip"] * 8 >= old["tip"] * 9
    )


def _cast_status(node: Node, tx: str) -> str:
    out = subprocess.run(
        [str(BIN / "cast"), "receipt", tx, "status", "--rpc-url", node.url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def test_a_transaction_priced_out_is_replaced_with_bumped_fees(world: World, market: Node) -> None:
    m = world.maintainer()
    before = _nonce(market)
    market.call("evm_setAutomine", False)  # nothing is mined: no receipt within the wait
    out = _anchor(m, market, "--wait", "1", check=False)
    assert out.returncode == 1 and "no receipt for" in out.stderr, out.stderr
    j = _journal(m)
    first, second = j["txs"]  # replaced once in the same run, after the wait
    assert j["state"] == "broadcast" and j["tx"] == second["tx"] and _bumped(first, second)
    assert j["cap"] == 3 * first["max_fee"]  # the default cap: three times the first estimate
    assert market.call("eth_getTransactionByHash", first["tx"]) is None  # the node replaced it
    assert market.call("eth_getTransactionByHash", second["tx"]) is not None
    base = price_out(market, second["max_fee"])  # the base fee rose past it: it is dropped
    assert market.call("eth_getTransactionByHash", second["tx"]) is None
    market.call("evm_setAutomine", True)
    out = _anchor(m, market)
    assert "anchored entry #1" in out.stdout and "replacing it with" in out.stderr, out.stderr
    j = _journal(m)
    assert [t["tx"] for t in j["txs"][:2]] == [first["tx"], second["tx"]] and len(j["txs"]) == 3
    third = j["txs"][2]
    assert _bumped(second, third) and base + third["tip"] <= third["max_fee"] <= j["cap"]
    assert j["tx"] == third["tx"] and j["history"][-2:] == ["included", "final"]
    assert _nonce(market) - before == 1  # one transaction mined for the nonce
    checked = _chain(m, market, "--confirmations", "1")
    assert [(a["seq"], a["status"], a["tx"]) for a in checked] == [(1, "final", third["tx"])]
    assert _cast_status(market, third["tx"]) == "true"  # foundry reads the receipt too


def test_a_replacement_past_the_cap_stops_until_a_higher_cap(world: World, market: Node) -> None:
    m = world.maintainer()
    before = _nonce(market)
    market.call("evm_setAutomine", False)
    crashed = _anchor(m, market, check=False, GITCOOP_FAULT="anchor:after-broadcast")
    assert crashed.returncode == 137
    j = _journal(m)
    price_out(market, 2 * j["cap"])  # even the least replacement is above the cap now
    market.call("evm_setAutomine", True)
    ledger = _ledger(m)
    out = _anchor(m, market, check=False)
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("gitcoop: error:")]
    assert out.returncode == 1 and len(errors) == 1, out.stderr
    assert f"above the cap of {gwei(j['cap'])} gwei (--max-fee-gwei)" in errors[0]
    needed = errors[0].split("--max-fee-gwei ")[-1].split(" or more")[0]
    assert int(float(needed) * 1e9) > j["cap"]
    assert _ledger(m) == ledger and _journal(m)["txs"] == j["txs"]  # nothing signed over it
    out = _anchor(m, market, "--max-fee-gwei", needed)  # the fee the error named is enough
    assert "anchored entry #1" in out.stdout, out.stderr
    after = _journal(m)
    assert len(after["txs"]) == 2 and after["tx"] == after["txs"][1]["tx"]
    assert after["cap"] == after["txs"][1]["max_fee"] == round(float(needed) * 1e9)
    assert _nonce(market) - before == 1
    assert [a["tx"] for a in _chain(m, market, "--confirmations", "1")] == [after["tx"]]


@pytest.mark.parametrize(
    ("point", "meanwhile", "mined"),
    [
        ("after-replace", "mine", 0),  # the first one is mined before its replacement is sent
        ("after-replace", "drop", 1),  # the node forgot the first: the journaled one is sent
        ("after-replace-send", "mine", 1),  # the replacement was sent and is mined
    ],
)
def test_a_crash_around_a_replacement_resumes_without_a_third_transaction(
    world: World, market: Node, point: str, meanwhile: str, mined: int
) -> None:
    m = world.maintainer()
    before = _nonce(market)
    market.call("evm_setAutomine", False)
    crashed = _anchor(m, market, "--wait", "1", check=False, GITCOOP_FAULT=f"anchor:{point}")
    assert crashed.returncode == 137
    txs, state = _journal(m)["txs"], _journal(m)["state"]
    assert len(txs) == 2 and state == ("prepared" if point == "after-replace" else "broadcast")
    if meanwhile == "mine":
        market.call("anvil_mine", "0x1")
    else:
        market.call("anvil_dropAllTransactions")
    market.call("evm_setAutomine", True)
    out = _anchor(m, market)
    assert "resuming the anchoring" in out.stderr and "anchored entry #1" in out.stdout
    j = _journal(m)
    assert j["txs"] == txs and j["tx"] == txs[mined]["tx"]  # the one mined, of the two
    assert _nonce(market) - before == 1
    assert [a["tx"] for a in _chain(m, market, "--confirmations", "1")] == [txs[mined]["tx"]]


def test_a_nonce_another_transaction_took_is_anchored_with_the_next(
    world: World, anvil: Node
) -> None:
    m = world.maintainer()
    before = _nonce(anvil)
    crashed = _anchor(m, anvil, check=False, GITCOOP_FAULT="anchor:after-prepare")
    assert crashed.returncode == 137
    first = _journal(m)["txs"][0]
    assert first["nonce"] == before
    other = anvil.call("eth_sendTransaction", {"from": _address(anvil), "to": _address(anvil)})
    assert int(anvil.call("eth_getTransactionByHash", other)["nonce"], 16) == before
    dry = _anchor(m, anvil, "--dry-run")  # names the journaled transaction, sends nothing
    assert f"would send {first['tx']}" in dry.stdout and _journal(m)["txs"] == [first]
    assert _nonce(anvil) - before == 1
    out = _anchor(m, anvil)
    assert f"nonce {before} was taken" in out.stderr and "anchored entry #1" in out.stdout
    j = _journal(m)
    assert j["nonce"] == before + 1 and j["tx"] == j["txs"][1]["tx"] and len(j["txs"]) == 2
    assert int(anvil.call("eth_getTransactionByHash", j["tx"])["nonce"], 16) == before + 1
    assert _nonce(anvil) - before == 2  # the other one and the anchor
    assert [a["tx"] for a in _chain(m, anvil, "--confirmations", "1")] == [j["tx"]]


def test_a_version_1_journal_is_resumed_and_a_newer_one_refused(world: World, anvil: Node) -> None:
    m = world.maintainer()
    crashed = _anchor(m, anvil, check=False, GITCOOP_FAULT="anchor:after-prepare")
    assert crashed.returncode == 137
    j = _journal(m)
    sent = j["txs"][0]
    v1 = {k: j[k] for k in ("state", "chain_id", "seq", "head", "data", "sender", "nonce", "tx")}
    v1.update(raw=sent["raw"], block_number=None, block_hash=None, history=j["history"])
    where = m.repo / ".git/coop/anchor.json"
    where.write_text(json.dumps(v1))
    out = _anchor(m, anvil)
    assert "resuming the anchoring" in out.stderr and "anchored entry #1" in out.stdout
    j = _journal(m)
    assert j["version"] == 3 and j["txs"] == [sent] and j["tx"] == sent["tx"]
    assert j["to"] == j["sender"]  # a version 1 journal was always a send to self
    tx = anvil.call("eth_getTransactionByHash", sent["tx"])  # fees and gas read back from raw
    fields = [int(tx[k], 16) for k in ("maxFeePerGas", "maxPriorityFeePerGas", "gas")]
    assert fields == [sent["max_fee"], sent["tip"], j["gas"]] and j["cap"] == 3 * sent["max_fee"]
    where.write_text(json.dumps({**j, "version": 99, "state": "broadcast"}))
    out = _anchor(m, anvil, check=False)
    assert out.returncode == 2 and "has version 99" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
