"""The anchor contract (contracts/CoopAnchor.sol), against a real local node (anvil): the
committed build is what the pinned solc makes of the source; it is deployed as a
journaled one-shot; an anchor sent through it is read back with its event (and by
foundry's `cast`); bad calldata reverts; and `git coop anchors` lists a ledger's anchors
on it, naming a rewritten history another clone anchored, and forgetting an event a reorg
took away."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import subprocess
import time
from dataclasses import replace

from eth_utils.crypto import keccak
from testing.anvil import BIN, ROOT, Node
from testing.rpcproxy import Proxy, proxying
from testing.world import Player, World, run

from gitcoop.chain.anchor import calldata

ARTIFACT = ROOT / "src/gitcoop/chain/coop_anchor.json"
SIGNATURE = "Anchored(bytes32,address,uint64,bytes32)"


def _art() -> dict:
    return json.loads(ARTIFACT.read_text())


def _cast(*args: str) -> str:
    out = subprocess.run([str(BIN / "cast"), *args], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _coop(
    p: Player, node: Node, *args: str, key: int = 0, check: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    """``git coop ARGS --rpc NODE`` as ``p``, sending with anvil's account ``key``."""
    variables = {**p.env, "GITCOOP_ETH_KEY": node.keys[key], **env}
    return run(p.repo, "git", "coop", *args, "--rpc", node.url, env=variables, check=check)


def _anchor(
    p: Player, node: Node, *args: str, key: int = 0, check: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    more = ("--chain-id", "31337", "--confirmations", "1", "--wait", "10")
    return _coop(p, node, "anchor", *more, *args, key=key, check=check, **env)


def _receipt(node: Node, tx: str) -> dict:
    """The receipt of ``tx``, which anvil mines just after it answers the send."""
    for _ in range(100):
        receipt = node.call("eth_getTransactionReceipt", tx)
        if receipt is not None:
            return dict(receipt)
        time.sleep(0.05)
    raise AssertionError(f"no receipt for {tx}")


def _deployed(node: Node) -> str:
    """The contract, deployed straight through the node (the CLI's deploy is tested once)."""
    sender = node.call("eth_accounts")[0]
    tx = node.call("eth_sendTransaction", {"from": sender, "data": _art()["bytecode"]})
    return str(_receipt(node, tx)["contractAddress"])


def _sent(node: Node, key: int = 0) -> int:
    account = node.call("eth_accounts")[key]
    return int(node.call("eth_getTransactionCount", account, "latest"), 16)


def _journal(p: Player) -> dict:
    return json.loads((p.repo / ".git/coop/anchor.json").read_text())


def _listed(p: Player, node: Node, *args: str) -> tuple[int, dict]:
    out = _coop(p, node, "anchors", "--json", *args, check=False)
    assert out.returncode in (0, 3), out.stderr
    return out.returncode, json.loads(out.stdout)


def test_the_committed_build_is_what_the_pinned_solc_makes_of_the_source() -> None:
    built = subprocess.run(
        ["node", str(ROOT / "contracts/build.mjs"), "-"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    assert built.stdout == ARTIFACT.read_text(), "run make contract after changing the source"
    art = _art()
    source = (ROOT / art["source"]).read_bytes()
    assert art["source_sha256"] == hashlib.sha256(source).hexdigest()
    solc = json.loads((ROOT / "package.json").read_text())["devDependencies"]["solc"]
    assert art["solc"].startswith(solc + "+") and f"pragma solidity {solc};".encode() in source
    topic = art["events"][SIGNATURE]
    assert topic == "0x" + keccak(text=SIGNATURE).hex() == _cast("sig-event", SIGNATURE)
    assert art["settings"]["metadata"] == {"bytecodeHash": "none"}


def test_deploy_anchor_through_the_contract_and_read_it_back(world: World, anvil: Node) -> None:
    m = world.maintainer()
    before = _sent(anvil)
    deploy = ("anchor-contract", "deploy", "--chain-id", "31337", "--wait", "10")
    point = "deploy-after-prepare"
    died = _coop(m, anvil, *deploy, check=False, GITCOOP_FAULT=f"anchor:{point}")
    assert died.returncode == 137 and _sent(anvil) == before
    out = _coop(m, anvil, *deploy)
    assert "resuming the deployment" in out.stderr
    address = out.stdout.strip()
    assert anvil.call("eth_getCode", address, "latest") == _art()["deployedBytecode"]
    again = _coop(m, anvil, *deploy)  # the journal and the code: nothing is sent
    assert again.stdout.strip() == address and "deployed already" in again.stderr
    assert _sent(anvil) - before == 1

    m.coop("evaluate", m.commit_score("0.6"))
    fault = {"GITCOOP_FAULT": "anchor:after-prepare"}
    died = _anchor(m, anvil, "--contract", address, check=False, **fault)
    assert died.returncode == 137
    j = _journal(m)
    head = {"seq": j["seq"], "hash": j["head"]}
    assert j["to"].lower() == address.lower() and j["version"] == 3
    other = _anchor(m, anvil, check=False)  # the journal's is for the contract, not self
    assert other.returncode == 2 and f"to the contract {j['to']} is unfinished" in other.stderr
    out = _anchor(m, anvil, "--contract", address)
    assert "resuming" in out.stderr and f"anchored entry #{head['seq']}" in out.stdout
    tx, data = _journal(m)["tx"], _journal(m)["data"]
    assert _sent(anvil) - before == 2
    verified = _coop(m, anvil, "verify", "--chain", "--confirmations", "1", "--json")
    checked = json.loads(verified.stdout)
    assert [(a["seq"], a["status"]) for a in checked] == [(head["seq"], "final")]

    receipt = anvil.call("eth_getTransactionReceipt", tx)
    assert [log["address"] for log in receipt["logs"]] == [address.lower()]
    origin = data[38:102]
    assert data == calldata(origin, head["seq"] + 1, head["hash"])  # as a send to self
    assert anvil.call("eth_getTransactionByHash", tx)["input"] == data
    # A client nobody here wrote finds the event by its own hash of the signature, and
    # decodes it to this ledger's origin, the sender, the size and the head.
    found = json.loads(_cast(
        "logs", "--rpc-url", anvil.url, "--address", address, "--from-block", "0", "--json",
        "Anchored(bytes32 indexed origin,address indexed sender,uint64 size,bytes32 head)",
        "0x" + origin,
    ))  # fmt: skip
    assert [f["transactionHash"] for f in found] == [tx]
    assert found[0]["topics"][2][-40:] == anvil.call("eth_accounts")[0][2:].lower()
    size, hashed = json.loads(_cast("decode-event", "--sig", "Anchored(uint64,bytes32)",
                                    found[0]["data"], "--json"))  # fmt: skip
    assert (size, hashed) == (head["seq"] + 1, "0x" + head["hash"])
    code, listed = _listed(m, anvil)  # the contract is known from the ledger's anchor
    assert code == 0 and listed["contracts"] == {j["to"]: 1}  # deployed in block 1
    assert [(e["status"], e["tx"]) for e in listed["events"]] == [("recorded", tx)]

    # Gas: the event costs little over the same bytes sent to self.
    used = int(receipt["gasUsed"], 16)
    sender = anvil.call("eth_accounts")[0]
    self_send = int(anvil.call("eth_estimateGas", {"from": sender, "to": sender, "data": data}), 16)
    print(f"gas per anchor: {used} through the contract, {self_send} sent to self")
    assert self_send < used < self_send + 4000  # the event: a few thousand gas at most

    # A receipt without the event is not this anchor.
    def no_logs(r: dict | None) -> dict | None:
        return None if r is None else {**r, "logs": []}

    with proxying(Proxy(anvil.url, {"eth_getTransactionReceipt": [("rewrite", no_logs)]})) as p:
        bad = m.coop("verify", "--chain", "--rpc", p.url, "--confirmations", "1", check=False)
    assert bad.returncode == 1 and "not one Anchored event" in bad.stdout, bad.stdout


def test_bad_contract_addresses_send_nothing(world: World, anvil: Node) -> None:
    m = world.maintainer()
    before, ledger = _sent(anvil), m.head("refs/coop/ledger")
    anvil.call("anvil_setCode", "0x" + "ab" * 20, "0x6000")  # some other code
    cases = {
        "0x1234": "is not an Ethereum address",
        "0x" + "cd" * 20: "holds no contract on this chain",
        "0x" + "ab" * 20: "is not the gitcoop anchor contract",
    }
    for address, says in cases.items():
        out = _anchor(m, anvil, "--contract", address, check=False)
        assert out.returncode == 2 and says in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    assert _sent(anvil) == before and m.head("refs/coop/ledger") == ledger
    assert not (m.repo / ".git/coop/anchor.json").exists()
    listed = _coop(m, anvil, "anchors", "--contract", "0x" + "ab" * 20, check=False)
    assert listed.returncode == 2 and "is not the gitcoop anchor contract" in listed.stderr
    none = _coop(m, anvil, "anchors", check=False)  # no anchor went to a contract yet
    assert none.returncode == 2 and "--contract ADDRESS" in none.stderr


def test_calldata_that_is_not_an_anchor_reverts(anvil: Node) -> None:
    address = _deployed(anvil)
    sender = anvil.call("eth_accounts")[0]
    good = calldata("11" * 32, 5, "22" * 32)
    bad = {
        "short": good[:-2],
        "long": good + "00",
        "another tag": good.replace(b"v1".hex(), b"v2".hex(), 1),
        "empty": "0x",
    }
    sends = [{"data": d} for d in bad.values()] + [{"data": good, "value": "0x1"}]
    for send in sends:
        call = {"from": sender, "to": address, "gas": hex(100_000), **send}
        tx = anvil.call("eth_sendTransaction", call)
        receipt = _receipt(anvil, tx)
        assert receipt["status"] == "0x0" and receipt["logs"] == [], send
    tx = anvil.call("eth_sendTransaction", {"from": sender, "to": address, "data": good})
    assert len(_receipt(anvil, tx)["logs"]) == 1


def _twin(m: Player, name: str) -> Player:
    """A copy of ``m``'s clone, as it is now: the same ledger so far, and the same key."""
    repo = m.repo.parent / name
    shutil.copytree(m.repo, repo, symlinks=True)
    return replace(m, repo=repo)


def _call(node: Node, address: str, data: str, account: int) -> str:
    """Send ``data`` to the contract from anvil's account ``account``; the transaction."""
    sender = node.call("eth_accounts")[account]
    tx = str(node.call("eth_sendTransaction", {"from": sender, "to": address, "data": data}))
    assert _receipt(node, tx)["status"] == "0x1"
    return tx


def test_a_rewritten_history_anchored_on_the_contract_is_a_fork(world: World, anvil: Node) -> None:
    address = _deployed(anvil)
    m = world.maintainer()
    rewriter = _twin(m, "rewriter")
    m.coop("evaluate", m.commit_score("0.6"))
    _anchor(m, anvil, "--contract", address)
    j = _journal(m)
    origin, seq = j["data"][38:102], j["seq"]
    _call(anvil, address, j["data"], 1)  # the same head, from another account
    _call(anvil, address, calldata(origin, seq + 9, "ab" * 32), 0)  # further than m's ledger
    stranger = _call(anvil, address, calldata(origin, seq + 1, "cd" * 32), 1)
    code, listed = _listed(m, anvil)
    statuses = [(e["status"], e["seq"]) for e in listed["events"]]
    assert code == 0, listed
    assert statuses == [("recorded", seq), ("agrees", seq), ("ahead", seq + 8), ("foreign", seq)]
    assert listed["events"][-1]["tx"] == stranger  # anyone may call it: that proves nothing

    snapshot = anvil.call("evm_snapshot")
    rewriter.coop("evaluate", rewriter.commit_score("0.9"))  # another entry at the same seq
    _anchor(rewriter, anvil, "--contract", address)  # with the account m anchors with
    out = _coop(m, anvil, "anchors", check=False)
    assert out.returncode == 3, out.stderr
    (fork,) = [ln for ln in out.stdout.splitlines() if "FORK" in ln]
    theirs = _journal(rewriter)
    assert theirs["seq"] == seq and f"entry #{seq} " in fork and "block " in fork
    assert theirs["tx"] in fork and theirs["sender"].lower() in fork
    assert theirs["head"] in fork and j["head"] in fork  # both hashes
    assert "this ledger was rewritten, or that one" in out.stderr
    anvil.call("evm_revert", snapshot)  # a reorg takes the block with the fork away
    code, listed = _listed(m, anvil)
    assert code == 0 and [s for s, _ in statuses] == [e["status"] for e in listed["events"]]


def test_a_node_that_refuses_a_range_is_asked_for_half(world: World, anvil: Node) -> None:
    anvil.call("anvil_mine", hex(20))
    address = _deployed(anvil)
    first = int(anvil.call("eth_blockNumber"), 16)
    anvil.call("anvil_mine", hex(30))
    m = world.maintainer()
    m.coop("evaluate", m.commit_score("0.6"))
    _anchor(m, anvil, "--contract", address)

    def limit(method: str, params: list) -> tuple | None:
        if method != "eth_getLogs":
            return None
        span = int(params[0]["toBlock"], 16) - int(params[0]["fromBlock"], 16) + 1
        return ("error", -32600, "block range too large (max 8)") if span > 8 else None

    with proxying(Proxy(anvil.url, rule=limit)) as proxy:
        code, listed = _listed(m, Node(proxy.url, anvil.keys))
    assert code == 0 and listed["contracts"] == {address_key(listed): first}
    assert [e["status"] for e in listed["events"]] == ["recorded"]
    asked = [p[0] for name, p in proxy.params if name == "eth_getLogs"]
    spans = [(int(q["fromBlock"], 16), int(q["toBlock"], 16)) for q in asked]
    served = [s for s in spans if s[1] - s[0] < 8]
    assert len(spans) > len(served) >= 2  # refused, halved, then walked in served pieces
    assert served[0][0] == first and all(b[0] == a[1] + 1 for a, b in itertools.pairwise(served))
    assert served[-1][1] == int(anvil.call("eth_blockNumber"), 16)


def address_key(listed: dict) -> str:
    (key,) = listed["contracts"]
    return str(key)
