"""``git coop anchor``: put the ledger head in an Ethereum transaction, as a journaled state
machine, then record the anchor in the ledger.

The journal (``anchor.json`` in the local gitcoop directory) is written before each step
that talks to the chain: ``prepared`` (the signed raw transaction and its hash, before it
is sent), ``broadcast``, ``included`` (block number and hash), ``final``. A run that dies
at any point resumes from the journal: the same raw transaction is sent again (nodes
answer with the same hash), never a second one for the same head.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitcoop import _fs, constants, ledger, records
from gitcoop.chain.rpc import Finality, Rpc, RpcError
from gitcoop.commands import verify as verify_mod
from gitcoop.errors import ConfigError, GitcoopError, VerificationError
from gitcoop.session import Session, open_session, signer_for

TAG = b"gitcoop-anchor-v1\x00"  # domain separation: this calldata means nothing else
JOURNAL = "anchor.json"
FAULT_ENV = "GITCOOP_FAULT"  # tests: "anchor:<point>" kills the process at that point
Say = Callable[[str], None]


def calldata(origin: str, size: int, head: str) -> str:
    """The anchoring calldata: tag, ledger origin, entry count (uint64 big-endian), head."""
    return (
        "0x" + (TAG + bytes.fromhex(origin) + size.to_bytes(8, "big") + bytes.fromhex(head)).hex()
    )


@dataclass
class Journal:
    """One anchoring in progress, as last written."""

    state: str  # prepared | broadcast | included | final | failed
    chain_id: int
    seq: int  # the anchored entry
    head: str  # its hash
    data: str
    sender: str
    nonce: int
    raw: str
    tx: str
    block_number: int | None = None
    block_hash: str | None = None
    history: list[str] = field(default_factory=list)

    def save(self, path: Path, state: str) -> None:
        """Move to ``state`` and write the journal (atomically, durably) before going on."""
        self.state = state
        self.history.append(state)
        _fs.atomic_write(path, json.dumps(asdict(self), indent=1).encode())

    @classmethod
    def load(cls, path: Path) -> Journal | None:
        """The journal, or None; raises ConfigError for one that cannot be read."""
        raw = _fs.read_or_none(path)
        if raw is None:
            return None
        try:
            return cls(**json.loads(raw))
        except (ValueError, TypeError):
            raise ConfigError(
                f"the anchoring journal {path} is unreadable",
                hint="look up its transaction by hand before removing it",
            ) from None


@dataclass(frozen=True)
class Anchored:
    """What ``anchor`` did."""

    state: str  # final | included (not final yet) | prepared (dry run) | already
    seq: int
    head: str
    tx: str | None = None
    block_number: int | None = None
    entry: int | None = None  # the seq of the anchor entry appended


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == f"anchor:{point}":
        os._exit(137)  # as SIGKILL would leave it: nothing flushed, nothing cleaned up


def anchor(
    path: str | Path,
    url: str,
    secret: bytes,
    *,
    chain_id: int,
    confirmations: int | None = None,
    dry_run: bool = False,
    wait: float = 120.0,
    say: Say = lambda _: None,
) -> Anchored:
    """Anchor the ledger head (the newest entry that is not itself an anchor) on chain
    ``chain_id`` through the node at ``url``, or resume an anchoring the journal holds."""
    from gitcoop import eth

    verify_mod.verify(path)
    s = open_session(path)
    rpc = Rpc(url)
    node = int(rpc.call("eth_chainId"), 16)
    if node != chain_id:
        raise ConfigError(
            f"the node at {url} is on chain {node}, not {chain_id}",
            hint="check --rpc and --chain-id; nothing was signed",
        )
    sender = eth.address_of(secret)
    where = s.local / JOURNAL
    j = Journal.load(where)
    if j is not None and j.state not in ("final", "failed"):
        if j.chain_id != chain_id or j.sender.lower() != sender.lower():
            raise ConfigError(
                f"an anchoring on chain {j.chain_id} from {j.sender} is unfinished",
                hint="finish it with the same --chain-id and key",
            )
        say(f"gitcoop: resuming the anchoring of entry #{j.seq} ({j.state}, tx {j.tx})")
    else:
        seq, head, done = _target(s)
        if done and not _lost(path, url, seq):
            return Anchored("already", seq, head)
        j = _prepare(s, rpc, secret, sender, chain_id, seq, head)
        if dry_run:
            return Anchored("prepared", seq, head, j.tx)
        j.save(where, "prepared")
        _fault("after-prepare")
    return _advance(s, rpc, j, where, confirmations, wait, say)


def _target(s: Session) -> tuple[int, str, bool]:
    """(seq, hash) of the newest entry that is not an anchor, and whether an anchor entry
    already names it."""
    rec = ledger.read_record(s.repo, s.head.commit)
    anchored: set[int] = set()
    while rec.entry.kind == "anchor" and rec.parents:
        anchored.add(_body(rec)["anchored"]["seq"])
        rec = ledger.read_record(s.repo, rec.parents[0])
    return rec.entry.seq, ledger.entry_hash(rec.data), rec.entry.seq in anchored


def _lost(path: str | Path, url: str, seq: int) -> bool:
    """Whether every anchor of entry ``seq`` is broken on the chain (lost to a reorg, or
    never there): then it is anchored again."""
    from gitcoop.chain.check import check

    mine = [a for a in check(path, url, 1) if a.seq == seq]
    return bool(mine) and all(a.status == "broken" for a in mine)


def _body(rec: ledger.Record) -> dict[str, Any]:
    obj = rec.entry.payload()
    return dict(obj["body"])


def _prepare(
    s: Session, rpc: Rpc, secret: bytes, sender: str, chain_id: int, seq: int, head: str
) -> Journal:
    from gitcoop import eth

    data = calldata(s.head.origin, seq + 1, head)
    nonce = int(rpc.call("eth_getTransactionCount", sender, "pending"), 16)
    tip = int(rpc.call("eth_maxPriorityFeePerGas"), 16)
    base = int(rpc.call("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
    call = {"from": sender, "to": sender, "data": data, "value": "0x0"}
    try:
        gas = int(rpc.call("eth_estimateGas", call), 16)
    except RpcError as exc:
        raise ConfigError(
            f"the node cannot run the anchoring transaction: {exc.text}",
            hint="fund the account, or check the key; nothing was signed",
        ) from None
    cost, balance = gas * (2 * base + tip), int(rpc.call("eth_getBalance", sender, "latest"), 16)
    if balance < cost:
        raise ConfigError(
            f"insufficient funds: {sender} holds {balance} wei, the anchoring transaction may "
            f"cost up to {cost}",
            hint="fund the account; nothing was signed",
        )
    tx = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "to": sender,
        "value": 0,
        "data": data,
        "gas": gas,
        "maxPriorityFeePerGas": tip,
        "maxFeePerGas": 2 * base + tip,
    }
    raw, txhash = eth.sign_transaction(tx, secret)
    return Journal("new", chain_id, seq, head, data, sender, nonce, raw, txhash)


def _advance(
    s: Session,
    rpc: Rpc,
    j: Journal,
    where: Path,
    confirmations: int | None,
    wait: float,
    say: Say,
) -> Anchored:
    if j.state in ("prepared", "broadcast"):
        _broadcast(rpc, j)
        if j.state == "prepared":
            j.save(where, "broadcast")
        _fault("after-broadcast")
        receipt = _receipt(rpc, j.tx, wait)
        if int(receipt["status"], 16) != 1:
            j.save(where, "failed")
            raise VerificationError(
                f"the anchoring transaction {j.tx} failed (status 0)",
                hint="run git coop anchor again to anchor with a new transaction",
            )
        j.block_number, j.block_hash = int(receipt["blockNumber"], 16), receipt["blockHash"]
        j.save(where, "included")
        _fault("after-receipt")
    if not _canonical(rpc, j):
        say(f"gitcoop: block {j.block_number} left the canonical chain; sending again")
        j.block_number = j.block_hash = None
        j.save(where, "broadcast")
        return _advance(s, rpc, j, where, confirmations, wait, say)
    assert j.block_number is not None
    if not Finality(rpc, confirmations).final(j.block_number):
        return Anchored("included", j.seq, j.head, j.tx, j.block_number)
    entry = _record(s, j)
    j.save(where, "final")
    return Anchored("final", j.seq, j.head, j.tx, j.block_number, entry)


def _broadcast(rpc: Rpc, j: Journal) -> None:
    try:
        sent = rpc.call("eth_sendRawTransaction", j.raw)
    except RpcError as exc:
        text = exc.text.lower()
        if "already known" in text:
            return  # this very transaction: the node has it
        if "nonce too low" in text and rpc.call("eth_getTransactionByHash", j.tx) is not None:
            return  # ours went through earlier; its nonce is spent by itself
        raise
    if str(sent).lower() != j.tx.lower():
        raise VerificationError(f"the node named another hash ({sent}) for {j.tx}")


def _receipt(rpc: Rpc, tx: str, wait: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait
    while True:
        receipt = rpc.call("eth_getTransactionReceipt", tx)
        if receipt is not None:
            return dict(receipt)
        if time.monotonic() > deadline:
            raise GitcoopError(
                f"no receipt for {tx} after {wait:.0f}s",
                hint="run git coop anchor again later: it resumes this transaction",
            )
        time.sleep(0.5)


def _canonical(rpc: Rpc, j: Journal) -> bool:
    block = rpc.call("eth_getBlockByNumber", hex(j.block_number or 0), False)
    return block is not None and str(block["hash"]).lower() == str(j.block_hash).lower()


def _record(s: Session, j: Journal) -> int:
    """Append the signed ``anchor`` entry; return its seq."""
    key, signer, _ = signer_for(s.repo, s.repo.workdir)
    body = {
        "origin": s.head.origin,
        "chain": j.chain_id,
        "tx": j.tx,
        "from": j.sender,
        "block": {"number": j.block_number, "hash": j.block_hash},
        "anchored": {"seq": j.seq, "head": j.head},
    }
    event = records.Event("anchor", body, signer, records.now())
    envelope = records.sign(event.payload(), constants.EVENT_PAYLOAD_TYPE, key)
    return ledger.append(s.repo, "anchor", key.public_openssh, envelope).entry.seq
