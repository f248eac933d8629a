"""``git coop verify --chain``: read every anchor back from the chain, trusting nothing the
local journal says: the transaction, its receipt, that its block is canonical, its
calldata against the ledger entry it names, its sender, and how deep it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitcoop import ledger, records
from gitcoop.chain.anchor import calldata
from gitcoop.chain.rpc import DEFAULT_TIMEOUT, Finality, Rpc
from gitcoop.commands import verify as verify_mod
from gitcoop.errors import GitcoopError
from gitcoop.session import open_session


@dataclass(frozen=True)
class AnchorStatus:
    """One anchor as the chain shows it."""

    entry: int  # the anchor entry's seq
    seq: int  # the entry it anchors
    tx: str
    status: str  # final | pending | broken
    detail: str


def check(
    path: str | Path,
    url: str,
    confirmations: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[AnchorStatus]:
    """Every anchor of the (verified) ledger, checked against the node at ``url``."""
    verify_mod.verify(path)
    s = open_session(path)
    rpc = Rpc(url, timeout=timeout)
    hashes: dict[int, str] = {}
    anchors: list[tuple[int, records.Anchor]] = []
    for rec in ledger.records(s.repo, s.head.commit):
        hashes[rec.entry.seq] = ledger.entry_hash(rec.data)
        if rec.entry.kind == "anchor":
            obj = rec.entry.payload()
            anchors.append((rec.entry.seq, records.anchor_fields(obj["body"])))
    node = int(rpc.call("eth_chainId"), 16)
    finality = Finality(rpc, confirmations) if anchors else None
    out = []
    for seq, a in anchors:
        problem = _problem(rpc, node, a, hashes, s.head.origin)
        if problem is not None:
            out.append(AnchorStatus(seq, a.seq, a.tx, "broken", problem))
            continue
        assert finality is not None
        status = "final" if finality.final(a.block_number) else "pending"
        depth = finality.depth(a.block_number)
        out.append(AnchorStatus(seq, a.seq, a.tx, status, f"block {a.block_number}, depth {depth}"))
    return out


def _problem(
    rpc: Rpc, node: int, a: records.Anchor, hashes: dict[int, str], origin: str
) -> str | None:
    """Why the chain does not bear the anchor out, or None."""
    if a.chain != node:
        return f"recorded on chain {a.chain}; this node serves chain {node}"
    if hashes.get(a.seq) != a.head:
        return f"names entry #{a.seq} with another hash than this ledger's"
    try:
        tx = rpc.call("eth_getTransactionByHash", a.tx)
        receipt = rpc.call("eth_getTransactionReceipt", a.tx)
    except GitcoopError as exc:
        return str(exc)
    if tx is None or receipt is None:
        return "the chain has no such transaction (dropped, or reorganised away)"
    if str(tx["input"]).lower() != calldata(origin, a.seq + 1, a.head):
        return "its calldata is not this ledger's head"
    if str(tx["from"]).lower() != a.sender.lower():
        return f"sent by {tx['from']}, not {a.sender}"
    if int(receipt["status"], 16) != 1:
        return "the transaction failed"
    if str(receipt["blockHash"]).lower() != a.block_hash.lower():
        return "mined in another block than recorded"
    block = rpc.call("eth_getBlockByNumber", hex(a.block_number), False)
    if block is None or str(block["hash"]).lower() != a.block_hash.lower():
        return f"block {a.block_number} is no longer on the canonical chain"
    return None
