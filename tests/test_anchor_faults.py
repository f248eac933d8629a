"""What a node can do wrong while anchoring, played by a proxy in front of a real anvil
node: every fault is retried or named in one line, the ledger is never changed by a failed
run, and the journal lets the next run finish with the same transaction."""

from __future__ import annotations

import json

import pytest
from testing.anvil import Node
from testing.rpcproxy import Proxy, proxying
from testing.world import Player, World, run


def _anchor(p: Player, url: str, key: str, check: bool = False):
    return run(
        p.repo, "git", "coop", "anchor", "--rpc", url, "--chain-id", "31337",
        "--confirmations", "1", "--wait", "5",
        env={**p.env, "GITCOOP_ETH_KEY": key}, check=check,
    )  # fmt: skip


def _sent(anvil: Node) -> int:
    return int(anvil.call("eth_getTransactionCount", anvil.call("eth_accounts")[0], "latest"), 16)


def _entries(p: Player) -> int:
    return len(json.loads(p.coop("log", "--json").stdout))


def test_http_429_and_5xx_are_retried(world: World, anvil: Node) -> None:
    m = world.maintainer()
    faults = {"eth_chainId": [("http", 429), ("http", 503)], "eth_blockNumber": [("http", 502)]}
    with proxying(Proxy(anvil.url, faults)) as proxy:
        out = _anchor(m, proxy.url, anvil.keys[0])
    assert out.returncode == 0 and "anchored entry #1" in out.stdout, out.stderr
    assert proxy.calls[:3] == ["eth_chainId"] * 3


def test_a_malformed_answer_to_the_send_keeps_the_journal_for_the_next_run(
    world: World, anvil: Node
) -> None:
    m = world.maintainer()
    before, entries = _sent(anvil), _entries(m)
    with proxying(Proxy(anvil.url, {"eth_sendRawTransaction": [("malformed",)]})) as proxy:
        out = _anchor(m, proxy.url, anvil.keys[0])
    assert out.returncode == 1 and "sent no JSON-RPC answer to eth_sendRawTransaction" in (
        out.stderr
    )
    assert len(out.stderr.strip().splitlines()) == 1 and _entries(m) == entries
    out = _anchor(m, anvil.url, anvil.keys[0], check=True)  # straight to the node now
    assert "resuming" in out.stderr and _sent(anvil) - before == 1


@pytest.mark.parametrize("message", ["already known", "nonce too low: next nonce 1, tx nonce 0"])
def test_the_node_already_having_our_transaction_is_success(
    world: World, anvil: Node, message: str
) -> None:
    m = world.maintainer()
    before = _sent(anvil)
    faults = {"eth_sendRawTransaction": [("forward-then-error", -32000, message)]}
    with proxying(Proxy(anvil.url, faults)) as proxy:
        out = _anchor(m, proxy.url, anvil.keys[0])
    assert out.returncode == 0 and "anchored entry #1" in out.stdout, out.stderr
    assert _sent(anvil) - before == 1


def test_nonce_too_low_for_a_transaction_the_node_lacks_is_an_error(
    world: World, anvil: Node
) -> None:
    m = world.maintainer()
    entries = _entries(m)
    faults = {"eth_sendRawTransaction": [("error", -32000, "nonce too low")]}
    with proxying(Proxy(anvil.url, faults)) as proxy:
        out = _anchor(m, proxy.url, anvil.keys[0])
    assert out.returncode == 1 and "refused eth_sendRawTransaction: nonce too low" in out.stderr
    assert _entries(m) == entries


def test_insufficient_funds_signs_nothing(world: World, anvil: Node) -> None:
    m = world.maintainer()
    poor = "0x" + "11" * 32  # an account anvil never funded
    out = _anchor(m, anvil.url, poor)
    assert out.returncode == 2 and "insufficient funds" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (m.repo / ".git/coop/anchor.json").exists()


def test_a_failed_transaction_is_not_an_anchor(world: World, anvil: Node) -> None:
    m = world.maintainer()
    entries = _entries(m)

    def failed(receipt: dict | None) -> dict | None:
        return None if receipt is None else {**receipt, "status": "0x0"}

    faults = {"eth_getTransactionReceipt": [("rewrite", failed)] * 5}
    with proxying(Proxy(anvil.url, faults)) as proxy:
        out = _anchor(m, proxy.url, anvil.keys[0])
    assert out.returncode == 1 and "failed (status 0)" in out.stderr
    assert _entries(m) == entries
    journal = json.loads((m.repo / ".git/coop/anchor.json").read_text())
    assert journal["state"] == "failed"
    again = _anchor(m, anvil.url, anvil.keys[0], check=True)  # a new transaction, recorded
    assert "anchored entry #1" in again.stdout
