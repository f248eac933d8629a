"""What a node can do wrong while anchoring, played by a proxy in front of a real anvil
node: every fault is retried or named in one line, the ledger is never changed by a failed
run, and the journal lets the next run finish with the same transaction."""

from __future__ import annotations

import json
import time

import pytest
from testing.anvil import Node
from testing.rpcproxy import Proxy, proxying
from testing.world import Player, World, run


def _anchor(p: Player, url: str, key: str, check: bool = False, *more: str):
    return run(
        p.repo, "git", "coop", "anchor", "--rpc", url, "--chain-id", "31337",
        "--confirmations", "1", "--wait", "5", *more,
        env={**p.env, "GITCOOP_ETH_KEY": key}, check=check,
    )  # fmt: skip


def _sent(anvil: Node) -> int:
    return int(anvil.call("eth_getTransactionCount", anvil.call("eth_accounts")[0], "latest"), 16)


def _entries(p: Player) -> int:
    return len(json.loads(p.coop("log", "--json").stdout))


def _journal(p: Player) -> dict:
    return json.loads((p.repo / ".git/coop/anchor.json").read_text())


def _ledger(p: Player) -> str:
    return p.git("rev-parse", "refs/coop/ledger").stdout.strip()


def _anchored_txs(p: Player, anvil: Node) -> list[str]:
    """The transaction of each anchor entry, every one final on the chain."""
    out = p.coop("verify", "--chain", "--rpc", anvil.url, "--confirmations", "1", "--json")
    found = json.loads(out.stdout)
    assert all(a["status"] == "final" for a in found), found
    return [a["tx"] for a in found]


def test_http_429_and_5xx_are_retried(world: World, anvil: Node) -> None:
    m = world.maintainer()
    faults = {"eth_chainId": [("http", 429), ("http", 503)], "eth_blockNumber": [("http", 502)]}
    with proxying(Proxy(anvil.url, faults)) as proxy:
        out = _anchor(m, proxy.url, anvil.keys[0])
    assert out.returncode == 0 and "anchored entry #1" in out.stdout, out.stderr
    assert proxy.calls[:3] == ["eth_chainId"] * 3


def test_a_node_that_never_answers_is_named_within_the_timeout(world: World, anvil: Node) -> None:
    m = world.maintainer()
    entries = _entries(m)
    with proxying(Proxy(anvil.url, {"eth_chainId": [("stall", 2.0)] * 4})) as proxy:
        started = time.monotonic()
        out = _anchor(m, proxy.url, anvil.keys[0], False, "--rpc-timeout", "0.3")
        took = time.monotonic() - started
    assert out.returncode == 1, out.stderr
    assert "did not answer eth_chainId (no answer within 0.3 s, 4 tries)" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert took < 8, took  # four waits of 0.3 s and the backoff between them, not four of 2 s
    assert _entries(m) == entries and not (m.repo / ".git/coop/anchor.json").exists()


def test_an_answer_nested_past_any_json_rpc_answer_is_named_not_a_crash(
    world: World, anvil: Node
) -> None:
    # eth-account's py_ecc raises the recursion limit to 100,000 for the whole process:
    # this answer then overflowed the C stack in the JSON decoder (a segfault).
    m = world.maintainer()
    deep = b'{"jsonrpc": "2.0", "id": 1, "result": ' + b"[" * 200_000
    with proxying(Proxy(anvil.url, {"eth_chainId": [("raw", deep)]})) as proxy:
        out = _anchor(m, proxy.url, anvil.keys[0])
    assert out.returncode == 1, out.stderr
    assert "sent no JSON-RPC answer to eth_chainId" in out.stderr


def test_a_send_answered_too_late_is_sent_again_and_counted_once(world: World, anvil: Node) -> None:
    m = world.maintainer()
    before = _sent(anvil)
    faults = {"eth_sendRawTransaction": [("forward-then-stall", 2.0)]}
    with proxying(Proxy(anvil.url, faults)) as proxy:
        out = _anchor(m, proxy.url, anvil.keys[0], False, "--rpc-timeout", "0.5")
    assert out.returncode == 0 and "anchored entry #1" in out.stdout, out.stderr
    assert proxy.calls.count("eth_sendRawTransaction") == 2 and _sent(anvil) - before == 1
    assert len(_anchored_txs(m, anvil)) == 1


def test_a_send_never_answered_keeps_its_transaction_for_the_next_run(
    world: World, anvil: Node
) -> None:
    m = world.maintainer()
    before, entries = _sent(anvil), _entries(m)
    faults = {"eth_sendRawTransaction": [("forward-then-stall", 1.0)] * 4}
    with proxying(Proxy(anvil.url, faults)) as proxy:
        out = _anchor(m, proxy.url, anvil.keys[0], False, "--rpc-timeout", "0.3")
    assert out.returncode == 1 and "did not answer eth_sendRawTransaction" in out.stderr
    assert _entries(m) == entries and len(_journal(m)["txs"]) == 1
    out = _anchor(m, anvil.url, anvil.keys[0], True)  # the node reached again
    assert "resuming" in out.stderr and "anchored entry #1" in out.stdout
    assert _sent(anvil) - before == 1 and len(_anchored_txs(m, anvil)) == 1


def test_verify_chain_names_a_node_that_times_out(world: World, anvil: Node) -> None:
    m = world.maintainer()
    _anchor(m, anvil.url, anvil.keys[0], True)
    with proxying(Proxy(anvil.url, {"eth_chainId": [("stall", 2.0)] * 4})) as proxy:
        out = m.coop(
            "verify", "--chain", "--rpc", proxy.url, "--confirmations", "1",
            "--rpc-timeout", "0.3", check=False,
        )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "did not answer eth_chainId (no answer within 0.3 s" in out.stderr


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


def test_nonce_too_low_from_a_node_that_counts_the_nonce_free_is_an_error(
    world: World, anvil: Node
) -> None:
    m = world.maintainer()
    entries, before = _entries(m), _sent(anvil)
    faults = {"eth_sendRawTransaction": [("error", -32000, "nonce too low")]}
    with proxying(Proxy(anvil.url, faults)) as proxy:
        out = _anchor(m, proxy.url, anvil.keys[0])
    # None of ours has the nonce, yet the node counts it as the next: signing the same
    # anchoring again at "the next nonce" would go round in circles.
    assert out.returncode == 1, out.stderr
    assert f"refused nonce {before} as too low, yet counts {before} as the next" in out.stderr
    assert _entries(m) == entries and len(_journal(m)["txs"]) == 1


def test_a_send_refused_as_underpriced_is_replaced_with_bumped_fees(
    world: World, anvil: Node
) -> None:
    m = world.maintainer()
    before = _sent(anvil)
    faults = {"eth_sendRawTransaction": [("error", -32000, "replacement transaction underpriced")]}
    with proxying(Proxy(anvil.url, faults)) as proxy:
        out = _anchor(m, proxy.url, anvil.keys[0])
    assert out.returncode == 0 and "anchored entry #1" in out.stdout, out.stderr
    assert "replacement transaction underpriced; replacing it with" in out.stderr
    j = _journal(m)
    first, second = j["txs"]
    assert first["nonce"] == second["nonce"] and j["tx"] == second["tx"]
    assert second["max_fee"] * 8 >= first["max_fee"] * 9 and second["tip"] * 8 >= first["tip"] * 9
    assert proxy.calls.count("eth_sendRawTransaction") == 2 and _sent(anvil) - before == 1
    assert anvil.call("eth_getTransactionByHash", first["tx"]) is None  # never reached it
    assert _anchored_txs(m, anvil) == [second["tx"]]


def test_a_node_that_always_says_underpriced_stops_with_the_ledger_unchanged(
    world: World, anvil: Node
) -> None:
    m = world.maintainer()
    before, ledger = _sent(anvil), _ledger(m)
    faults = {"eth_sendRawTransaction": [("error", -32000, "transaction underpriced")] * 10}
    with proxying(Proxy(anvil.url, faults)) as proxy:
        out = _anchor(m, proxy.url, anvil.keys[0])
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("gitcoop: error:")]
    assert out.returncode == 1 and len(errors) == 1, out.stderr
    assert "refused the anchoring transaction as underpriced 4 times" in errors[0]
    assert proxy.calls.count("eth_sendRawTransaction") == 4  # bounded: 1 + 3 replacements
    assert _ledger(m) == ledger and _sent(anvil) == before
    j = _journal(m)
    assert j["state"] == "prepared" and len(j["txs"]) == 4 and j["tx"] == j["txs"][-1]["tx"]
    for old, new in zip(j["txs"], j["txs"][1:], strict=False):
        assert new["nonce"] == old["nonce"] and new["max_fee"] * 8 >= old["max_fee"] * 9
    assert j["txs"][-1]["max_fee"] <= j["cap"]
    out = _anchor(m, anvil.url, anvil.keys[0], check=True)  # a node that takes it
    assert "resuming" in out.stderr and _sent(anvil) - before == 1
    assert _anchored_txs(m, anvil) == [j["tx"]] and len(_journal(m)["txs"]) == 4


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
    assert _journal(m)["state"] == "failed"
    again = _anchor(m, anvil.url, anvil.keys[0], check=True)  # a new transaction, recorded
    assert "anchored entry #1" in again.stdout
