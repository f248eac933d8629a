"""``git coop verify --chain``: read every anchor back from the chain, trusting nothing the
local journal says: the transaction, its receipt, that its block is canonical, its
calldata against the ledger entry it names, its sender, its recipient (and, for one sent
to the anchor contract, the contract's code and its one event), and how deep it is.

``git coop anchors``: list every ``Anchored`` event of this ledger's origin on the anchor
contracts (those its anchors went to, or those given) and set each against the ledger:
the events make a rewritten history visible when the rewriter never says so."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitcoop import ledger, records
from gitcoop.chain import contract as contract_mod
from gitcoop.chain.anchor import calldata
from gitcoop.chain.contract import Event
from gitcoop.chain.rpc import DEFAULT_TIMEOUT, Finality, Rpc
from gitcoop.commands import verify as verify_mod
from gitcoop.errors import ConfigError, GitcoopError
from gitcoop.session import open_session


@dataclass(frozen=True)
class AnchorStatus:
    """One anchor as the chain shows it."""

    entry: int  # the anchor entry's seq
    seq: int  # the entry it anchors
    tx: str
    status: str  # final | pending | broken
    detail: str


@dataclass(frozen=True)
class EventStatus:
    """One ``Anchored`` event of this ledger's origin, set against the ledger."""

    contract: str
    block: int
    tx: str
    sender: str
    seq: int  # the entry it names
    head: str  # the hash it gives that entry
    status: str  # recorded | agrees | ahead | fork | foreign
    detail: str


@dataclass(frozen=True)
class Survey:
    """What ``git coop anchors`` found: the events, the contracts listed (each with the
    first block listed) and the contracts the ledger names that were not (and why)."""

    events: list[EventStatus]
    listed: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class _Ledger:
    origin: str
    hashes: dict[int, str]  # seq -> entry hash
    anchors: list[tuple[int, records.Anchor]]  # (anchor entry seq, its body)


def _read(path: str | Path) -> _Ledger:
    verify_mod.verify(path)
    s = open_session(path)
    hashes: dict[int, str] = {}
    anchors: list[tuple[int, records.Anchor]] = []
    for rec in ledger.records(s.repo, s.head.commit):
        hashes[rec.entry.seq] = ledger.entry_hash(rec.data)
        if rec.entry.kind == "anchor":
            obj = rec.entry.payload()
            anchors.append((rec.entry.seq, records.anchor_fields(obj["body"])))
    return _Ledger(s.head.origin, hashes, anchors)


def check(
    path: str | Path,
    url: str,
    confirmations: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[AnchorStatus]:
    """Every anchor of the (verified) ledger, checked against the node at ``url``."""
    book = _read(path)
    rpc = Rpc(url, timeout=timeout)
    return _Anchors(rpc, book).check(confirmations)


def survey(
    path: str | Path,
    url: str,
    contracts: Iterable[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    from_block: int | None = None,
) -> Survey:
    """Every ``Anchored`` event of this ledger's origin on ``contracts`` and on every
    anchor contract the ledger's anchors on this chain went to, set against the (verified)
    ledger. Each given contract must hold the contract's code (else ConfigError); one only
    the anchors name that does not is skipped. Events are listed from ``from_block``, by
    default the block the contract appeared in."""
    book = _read(path)
    rpc = Rpc(url, timeout=timeout)
    targets, skipped = _contracts(rpc, book, contracts)
    latest = int(rpc.call("eth_blockNumber"), 16)
    events: list[EventStatus] = []
    listed: dict[str, int] = {}
    for c in targets:
        start = contract_mod.deployed_since(rpc, c, latest) if from_block is None else from_block
        listed[c] = start
        found = contract_mod.events(rpc, c, book.origin, start, latest)
        events.extend(_judge(e, book) for e in found)
    return Survey(events, listed, skipped)


def _contracts(rpc: Rpc, book: _Ledger, given: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """The contracts to list (those given, then those this chain's anchors went to), and
    those of the anchors that do not hold the contract's code now, with why."""
    node = int(rpc.call("eth_chainId"), 16)
    targets: dict[str, str] = {}
    for c in (contract_mod.address(c) for c in given):
        contract_mod.require_ours(rpc, c)
        targets.setdefault(c.lower(), c)
    skipped: dict[str, str] = {}
    for _, a in book.anchors:
        if a.contract is None or a.chain != node:
            continue
        if a.contract.lower() in targets or a.contract in skipped:
            continue
        why = _not_ours(rpc, a.contract)
        if why is None:
            targets[a.contract.lower()] = a.contract
        else:
            skipped[a.contract] = why
    if not targets:
        raise ConfigError(
            f"no anchor contract to list: none of this ledger's anchors on chain {node} "
            "went to one",
            hint="name one with --contract ADDRESS",
        )
    return list(targets.values()), skipped


def _not_ours(rpc: Rpc, address: str) -> str | None:
    """Why ``address`` does not hold the anchor contract now, or None."""
    try:
        contract_mod.require_ours(rpc, address)
    except ConfigError as exc:
        return exc.message
    return None


def _judge(e: Event, book: _Ledger) -> EventStatus:
    """How the event stands against the ledger."""
    where = f"block {e.block}, tx {e.tx}, sent by {e.sender}"
    for seq, a in book.anchors:
        if a.tx.lower() == e.tx:
            return _status(e, "recorded", f"anchor entry #{seq} records it ({where})")
    ours = book.hashes.get(e.seq)
    size = len(book.hashes)
    if e.size > size:
        return _status(e, "ahead", f"names entry #{e.seq}, beyond this ledger's "
                       f"#{size - 1} ({where}): fetch with git coop sync")  # fmt: skip
    if ours == e.head:
        return _status(e, "agrees", f"entry #{e.seq} as here ({where})")
    theirs = f"gives entry #{e.seq} the hash {e.head}; here it is {ours or 'none'} ({where})"
    if e.sender in {a.sender.lower() for _, a in book.anchors}:
        return _status(e, "fork", f"an account that anchors this ledger {theirs}")
    # Anyone can call the contract: a head from an account this ledger never anchored
    # with proves nothing, but it is shown.
    return _status(e, "foreign", f"an account this ledger never anchored with {theirs}")


def _status(e: Event, status: str, detail: str) -> EventStatus:
    return EventStatus(e.contract, e.block, e.tx, e.sender, e.seq, e.head, status, detail)


class _Anchors:
    """Checks the ledger's anchor entries against one node."""

    def __init__(self, rpc: Rpc, book: _Ledger) -> None:
        self.rpc, self.book = rpc, book
        self.node = int(rpc.call("eth_chainId"), 16)
        self._code: dict[str, str | None] = {}  # contract -> why it is not ours, or None

    def check(self, confirmations: int | None) -> list[AnchorStatus]:
        finality = Finality(self.rpc, confirmations) if self.book.anchors else None
        out = []
        for seq, a in self.book.anchors:
            problem = self.problem(a)
            if problem is not None:
                out.append(AnchorStatus(seq, a.seq, a.tx, "broken", problem))
                continue
            assert finality is not None
            status = "final" if finality.final(a.block_number) else "pending"
            depth = finality.depth(a.block_number)
            detail = f"block {a.block_number}, depth {depth}"
            out.append(AnchorStatus(seq, a.seq, a.tx, status, detail))
        return out

    def foreign_code(self, address: str) -> str | None:
        """Why ``address`` does not hold the anchor contract now, or None (asked once)."""
        key = address.lower()
        if key not in self._code:
            self._code[key] = _not_ours(self.rpc, address)
        return self._code[key]

    def problem(self, a: records.Anchor) -> str | None:
        """Why the chain does not bear the anchor out, or None."""
        if a.chain != self.node:
            return f"recorded on chain {a.chain}; this node serves chain {self.node}"
        if self.book.hashes.get(a.seq) != a.head:
            return f"names entry #{a.seq} with another hash than this ledger's"
        try:
            tx = self.rpc.call("eth_getTransactionByHash", a.tx)
            receipt = self.rpc.call("eth_getTransactionReceipt", a.tx)
        except GitcoopError as exc:
            return str(exc)
        if tx is None or receipt is None:
            return "the chain has no such transaction (dropped, or reorganised away)"
        return self._sent_problem(a, tx, receipt) or self._block_problem(a, receipt)

    def _sent_problem(
        self, a: records.Anchor, tx: dict[str, Any], receipt: dict[str, Any]
    ) -> str | None:
        """Why the transaction is not this anchor's (bytes, sender, recipient, event)."""
        if str(tx["input"]).lower() != calldata(self.book.origin, a.seq + 1, a.head):
            return "its calldata is not this ledger's head"
        if str(tx["from"]).lower() != a.sender.lower():
            return f"sent by {tx['from']}, not {a.sender}"
        to = str(tx.get("to") or "none").lower()
        if to != (a.contract or a.sender).lower():
            return f"sent to {to}, not {a.contract or a.sender}"
        if int(receipt["status"], 16) != 1:
            return "the transaction failed"
        if a.contract is not None:
            return self.foreign_code(a.contract) or self._event_problem(a, receipt)
        return None

    def _block_problem(self, a: records.Anchor, receipt: dict[str, Any]) -> str | None:
        """Why the block that holds it is not the one recorded, on the canonical chain."""
        if str(receipt["blockHash"]).lower() != a.block_hash.lower():
            return "mined in another block than recorded"
        block = self.rpc.call("eth_getBlockByNumber", hex(a.block_number), False)
        if block is None or str(block["hash"]).lower() != a.block_hash.lower():
            return f"block {a.block_number} is no longer on the canonical chain"
        return None

    def _event_problem(self, a: records.Anchor, receipt: dict[str, Any]) -> str | None:
        """Why the receipt lacks the one ``Anchored`` event the anchor makes, or None."""
        assert a.contract is not None
        logs = receipt.get("logs")
        mine = [
            log
            for log in (logs if isinstance(logs, list) else [])
            if str(log.get("address", "")).lower() == a.contract.lower()
        ]
        events = [contract_mod.decode(log) for log in mine]
        want = (self.book.origin, a.sender.lower(), a.seq + 1, a.head)
        if len(events) != 1 or events[0] is None:
            return f"its receipt has {len(mine)} logs of the contract, not one Anchored event"
        e = events[0]
        if (e.origin, e.sender, e.size, e.head) != want:
            return "the contract's Anchored event does not name this ledger's head"
        return None
