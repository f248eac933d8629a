"""``git coop anchor``: put the ledger head in an Ethereum transaction, as a journaled state
machine, then record the anchor in the ledger.

The journal (``anchor.json`` in the local gitcoop directory) is written before each step
that talks to the chain: ``prepared`` (a signed raw transaction and its hash, before it is
sent), ``broadcast``, ``included`` (block number and hash), ``final``. A run that dies at
any point resumes from the journal: the newest journaled transaction is sent again (nodes
answer with the same hash), never an unjournaled one. A transaction not mined within the
wait, or refused as underpriced, is replaced: the same nonce, both fees raised by at least
12.5%, never above the cap. The journal keeps every transaction it signed, and a receipt
for any of them is the anchor. The transaction goes to the anchoring account itself, or,
with a contract given, to the anchor contract (``chain/contract.py``), with the same
calldata either way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from gitcoop import _faults, _fs, constants, ledger, records
from gitcoop.chain import contract as contract_mod
from gitcoop.chain.rpc import DEFAULT_TIMEOUT, Finality, Rpc, RpcError, check_chain
from gitcoop.commands import verify as verify_mod
from gitcoop.errors import ConfigError, GitcoopError, GitOperationError, VerificationError
from gitcoop.session import Session, open_session, signer_for

TAG = b"gitcoop-anchor-v1\x00"  # domain separation: this calldata means nothing else
JOURNAL = "anchor.json"
# 1: one transaction (raw, tx); 2: every transaction signed, fees, cap; 3: the recipient
JOURNAL_VERSION = 3
CAP_FACTOR = 3  # the default cap on maxFeePerGas: this many times the first estimate
TRIES = 3  # replacements in a row a node may refuse as underpriced before we stop
# geth's txpool and anvil want a replacement to raise both fees by 10% (geth's PriceBump);
# 12.5% leaves a margin for nodes that round or ask for more.
_BUMP_NUM, _BUMP_DEN = 9, 8
# A node's answers to a transaction it has: geth, erigon "already known"; older geth
# "known transaction"; anvil "transaction already imported".
KNOWN = ("already known", "already imported", "known transaction")
# Fees too low to enter the pool or to be mined now: geth's ErrUnderpriced,
# ErrReplaceUnderpriced and ErrFeeCapTooLow (anvil words the last one the same way).
_UNDERPRICED = ("underpriced", "less than block base fee")
Say = Callable[[str], None]


def calldata(origin: str, size: int, head: str) -> str:
    """The anchoring calldata: tag, ledger origin, entry count (uint64 big-endian), head."""
    return (
        "0x" + (TAG + bytes.fromhex(origin) + size.to_bytes(8, "big") + bytes.fromhex(head)).hex()
    )


@dataclass
class Sent:
    """One signed transaction of an anchoring (journaled before it is sent)."""

    tx: str
    raw: str
    nonce: int
    max_fee: int  # maxFeePerGas, wei
    tip: int  # maxPriorityFeePerGas, wei


@dataclass
class Journal:
    """One anchoring in progress, as last written."""

    state: str  # prepared | broadcast | included | final | failed
    chain_id: int
    seq: int  # the anchored entry
    head: str  # its hash
    data: str
    sender: str
    gas: int
    cap: int  # wei: no transaction is signed with a higher maxFeePerGas
    nonce: int  # the nonce in play
    tx: str  # the transaction in play: the newest signed, or, once included, the one mined
    txs: list[Sent]  # every transaction signed for this anchoring, oldest first
    block_number: int | None = None
    block_hash: str | None = None
    history: list[str] = field(default_factory=list)
    to: str = ""  # the recipient: the sender itself, or the anchor contract
    version: int = JOURNAL_VERSION

    @property
    def current(self) -> Sent:
        """The journaled transaction ``tx`` names."""
        return next(t for t in self.txs if t.tx == self.tx)

    def add(self, sent: Sent) -> None:
        """Make ``sent`` the transaction in play (keeping the ones before it)."""
        self.txs.append(sent)
        self.tx, self.nonce = sent.tx, sent.nonce

    def save(self, path: Path, state: str) -> None:
        """Move to ``state`` and write the journal (atomically, durably) before going on."""
        self.state = state
        self.history.append(state)
        _fs.atomic_write(path, json.dumps(asdict(self), indent=1).encode())

    @classmethod
    def load(cls, path: Path) -> Journal | None:
        """The journal, or None; a journal of version 1 or 2 is read as version 3.
        Raises ConfigError for one that cannot be read, or that a newer gitcoop wrote."""
        raw = _fs.read_or_none(path)
        if raw is None:
            return None
        try:
            obj = json.loads(raw)
            version = obj.get("version", 1)
            if version == 1:
                obj = _from_v1(obj)
            elif version == 2:  # before anchor contracts: always to the sender itself
                obj.update(to=obj["sender"], version=JOURNAL_VERSION)
            elif version != JOURNAL_VERSION:
                raise ConfigError(
                    f"the anchoring journal {path} has version {version}; this gitcoop "
                    f"reads versions 1 to {JOURNAL_VERSION}",
                    hint="finish the anchoring with the gitcoop that started it",
                )
            obj["txs"] = [Sent(**t) for t in obj["txs"]]
            journal = cls(**obj)
            if all(t.tx != journal.tx for t in journal.txs):
                raise ValueError("tx names no journaled transaction")
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            raise ConfigError(
                f"the anchoring journal {path} is unreadable",
                hint="look up its transactions by hand before removing it",
            ) from None
        return journal


def _from_v1(obj: dict[str, Any]) -> dict[str, Any]:
    """A version 1 journal (one transaction: ``raw`` and ``tx``) as version 3: the fees
    and gas are read back from the signed transaction; the cap is three times its max fee,
    which was the first estimate; it was sent to the sender itself."""
    raw = obj.pop("raw")
    _, nonce, tip, max_fee, gas = _tx_fields(raw)
    obj["txs"] = [asdict(Sent(obj["tx"], raw, nonce, max_fee, tip))]
    obj.update(gas=gas, cap=CAP_FACTOR * max_fee, nonce=nonce, version=JOURNAL_VERSION)
    obj["to"] = obj["sender"]
    return obj


def _tx_fields(raw: str) -> tuple[int, int, int, int, int]:
    """(chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gas) of a signed EIP-1559
    (type 2) transaction given as 0x hex; raises ValueError for anything else."""
    data = bytes.fromhex(raw.removeprefix("0x"))
    if not data or data[0] != 2:
        raise ValueError("not an EIP-1559 transaction")
    body, end = _rlp(data, 1)
    if end != len(data):
        raise ValueError("trailing bytes after the transaction")
    fields, i = [], 0
    for _ in range(5):
        item, i = _rlp(body, i)
        fields.append(int.from_bytes(item, "big"))
    chain, nonce, tip, max_fee, gas = fields
    return chain, nonce, tip, max_fee, gas


def _rlp(data: bytes, i: int) -> tuple[bytes, int]:
    """The payload of the RLP item at ``i`` (a string or a list), and the index after it."""
    p = data[i]
    if p < 0x80:
        return data[i : i + 1], i + 1
    short, long_ = (0x80, 0xB7) if p < 0xC0 else (0xC0, 0xF7)
    if p <= long_:
        start, n = i + 1, p - short
    else:
        k = p - long_
        start, n = i + 1 + k, int.from_bytes(data[i + 1 : i + 1 + k], "big")
    if start + n > len(data):
        raise ValueError("truncated RLP")
    return data[start : start + n], start + n


@dataclass(frozen=True)
class Anchored:
    """What ``anchor`` did."""

    state: str  # final | included (not final yet) | prepared (dry run) | already
    seq: int
    head: str
    tx: str | None = None
    block_number: int | None = None
    entry: int | None = None  # the seq of the anchor entry appended


def gwei(wei: int) -> str:
    """``wei`` in gwei, exactly, without trailing zeros (``12.5``, ``0.000000007``)."""
    text = f"{Decimal(wei) / 10**9:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _wei(gwei_: float) -> int:
    return int(Decimal(repr(gwei_)) * 10**9)


def anchor(
    path: str | Path,
    url: str,
    secret: bytes,
    *,
    chain_id: int,
    confirmations: int | None = None,
    dry_run: bool = False,
    wait: float = 120.0,
    max_fee_gwei: float | None = None,
    rpc_timeout: float = DEFAULT_TIMEOUT,
    contract: str | None = None,
    say: Say = lambda _: None,
) -> Anchored:
    """Anchor the ledger head (the newest entry that is not itself an anchor) on chain
    ``chain_id`` through the node at ``url``, or resume an anchoring the journal holds.
    The transaction goes to the sending account itself, or to the anchor ``contract``
    (checked to hold its code first). No transaction is signed with a maxFeePerGas above
    ``max_fee_gwei`` (default: the journal's cap, three times the first estimate); each
    node call waits ``rpc_timeout`` seconds for an answer. Raises GitcoopError when a
    transaction is not mined in time, or its replacement would pass the cap."""
    from gitcoop import eth

    sender = eth.address_of(secret)
    to = sender if contract is None else eth.checksummed(contract)
    verify_mod.verify(path)
    s = open_session(path)
    rpc = Rpc(url, timeout=rpc_timeout)
    check_chain(rpc, chain_id)
    if contract is not None:
        contract_mod.require_ours(rpc, to)
    cap = None if max_fee_gwei is None else _wei(max_fee_gwei)
    where = s.local / JOURNAL
    j = Journal.load(where)
    if j is not None and j.state not in ("final", "failed"):
        _same_run(j, chain_id, sender, to)
        if dry_run:  # nothing is sent, signed or journaled
            return Anchored("prepared", j.seq, j.head, j.tx)
        say(f"gitcoop: resuming the anchoring of entry #{j.seq} ({j.state}, tx {j.tx})")
        if cap is not None:
            j.cap = cap  # journaled with the next step: later runs keep the higher cap
    else:
        seq, head, done = _target(s)
        if done and not _lost(path, url, seq):
            return Anchored("already", seq, head)
        j = _prepare(s, rpc, secret, _Target(chain_id, sender, to, seq, head), cap)
        if dry_run:
            return Anchored("prepared", seq, head, j.tx)
        j.save(where, "prepared")
        _faults.hit("anchor", "after-prepare")
    return _advance(s, _Run(rpc, secret, j, where, wait, say), confirmations)


def _same_run(j: Journal, chain_id: int, sender: str, to: str) -> None:
    """Raise ConfigError unless the unfinished anchoring ``j`` is on the same chain, from
    the same account, to the same recipient as asked now."""
    asked = (chain_id, sender.lower(), to.lower())
    if (j.chain_id, j.sender.lower(), j.to.lower()) != asked:
        via = "" if j.to.lower() == j.sender.lower() else f" to the contract {j.to}"
        raise ConfigError(
            f"an anchoring on chain {j.chain_id} from {j.sender}{via} is unfinished",
            hint="finish it with the same --chain-id, key and --contract",
        )


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


def fees(rpc: Rpc) -> tuple[int, int]:
    """(base fee, priority fee) now: the base fee of the next block where the node names
    it (its ``pending`` block), else of the latest."""
    tip = int(rpc.call("eth_maxPriorityFeePerGas"), 16)
    base = int(rpc.call("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
    try:
        pending = rpc.call("eth_getBlockByNumber", "pending", False)
    except RpcError:
        pending = None  # not every node serves the pending block
    if isinstance(pending, dict) and pending.get("baseFeePerGas"):
        base = max(base, int(pending["baseFeePerGas"], 16))
    return base, tip


def _over_cap(what: str, least: int, cap: int, hint: str) -> GitcoopError:
    return GitcoopError(
        f"{what} needs a max fee of at least {gwei(least)} gwei, above the cap of "
        f"{gwei(cap)} gwei (--max-fee-gwei)",
        hint=hint,
    )


def _priced(base: int, tip: int, least: int, cap: int) -> int:
    """The maxFeePerGas to sign: twice the base fee plus the tip (room for six full blocks
    of base-fee rise), at least ``least``, at most ``cap`` (the caller checked least <= cap)."""
    return min(max(least, 2 * base + tip), cap)


@dataclass(frozen=True)
class _Target:
    """What a new anchoring is to send: on which chain, from and to whom, which entry."""

    chain_id: int
    sender: str
    to: str
    seq: int
    head: str


def _prepare(s: Session, rpc: Rpc, secret: bytes, t: _Target, cap: int | None) -> Journal:
    sender = t.sender
    data = calldata(s.head.origin, t.seq + 1, t.head)
    nonce = int(rpc.call("eth_getTransactionCount", sender, "pending"), 16)
    base, tip = fees(rpc)
    call = {"from": sender, "to": t.to, "data": data, "value": "0x0"}
    try:
        gas = int(rpc.call("eth_estimateGas", call), 16)
    except RpcError as exc:
        raise ConfigError(
            f"the node cannot run the anchoring transaction: {exc.text}",
            hint="fund the account, or check the key; nothing was signed",
        ) from None
    if cap is None:
        cap = CAP_FACTOR * (2 * base + tip)
    if base + tip > cap:
        raise _over_cap(
            "the anchoring transaction", base + tip, cap, "raise --max-fee-gwei; nothing was signed"
        )
    max_fee = _priced(base, tip, base + tip, cap)
    cost, balance = gas * max_fee, int(rpc.call("eth_getBalance", sender, "latest"), 16)
    if balance < cost:
        raise ConfigError(
            f"insufficient funds: {sender} holds {balance} wei, the anchoring transaction may "
            f"cost up to {cost}",
            hint="fund the account; nothing was signed",
        )
    j = Journal("new", t.chain_id, t.seq, t.head, data, sender, gas, cap, nonce, "", [], to=t.to)
    j.add(_sign(j, secret, nonce, max_fee, tip))
    return j


def _sign(j: Journal, secret: bytes, nonce: int, max_fee: int, tip: int) -> Sent:
    from gitcoop import eth

    assert tip <= max_fee <= j.cap
    tx = {
        "type": 2,
        "chainId": j.chain_id,
        "nonce": nonce,
        "to": j.to,
        "value": 0,
        "data": j.data,
        "gas": j.gas,
        "maxPriorityFeePerGas": tip,
        "maxFeePerGas": max_fee,
    }
    raw, txhash = eth.sign_transaction(tx, secret)
    return Sent(txhash, raw, nonce, max_fee, tip)


def _bumped(fee: int) -> int:
    return max(fee + 1, -(-fee * _BUMP_NUM // _BUMP_DEN))


class _NonceTaken(Exception):
    """The node spent the journal's nonce on a transaction that is none of ours."""


class _Run:
    """One run of an anchoring: the node, the key, the journal and where it is kept."""

    def __init__(self, rpc: Rpc, secret: bytes, j: Journal, where: Path, wait: float, say: Say):
        self.rpc, self.secret, self.j, self.where = rpc, secret, j, where
        self.wait, self.say = wait, say

    def settle(self) -> dict[str, Any]:
        """Send the transaction in play and wait for a receipt of any journaled one; one
        not mined within the wait is replaced once, and waited for again. Raises
        GitcoopError when there is still no receipt."""
        for attempt in range(2):
            self.send()
            receipt = self.receipt()
            if receipt is not None:
                return receipt
            if attempt == 0:
                self.replace(f"no receipt for {self.j.tx} after {self.wait:.0f}s")
        n = len(self.j.txs) - 1
        before = f", nor for the {n} it replaced" if n > 1 else ", nor for the one it replaced"
        raise GitcoopError(
            f"no receipt after {2 * self.wait:.0f}s for {self.j.tx}{before if n else ''}",
            hint="run git coop anchor again later: it resumes these transactions, and "
            "replaces them with higher fees if they are still not mined",
        )

    def send(self) -> None:
        """Send the transaction in play; one the node refuses as underpriced is replaced
        (at most TRIES times), one whose nonce another transaction took is signed anew
        with the node's next nonce (once)."""
        refused, renonced = 0, False
        while True:
            try:
                self._broadcast()
                break
            except _NonceTaken:
                if renonced:
                    raise GitOperationError(
                        f"the node refused nonce {self.j.nonce} as too low twice in a row",
                        hint="is another program sending from this account? the journal "
                        "keeps the transactions",
                    ) from None
                renonced = True
                self.renonce()
            except RpcError as exc:
                if not any(u in exc.text.lower() for u in _UNDERPRICED):
                    raise
                refused += 1
                if refused > TRIES:
                    raise GitcoopError(
                        f"the node refused the anchoring transaction as underpriced {refused} "
                        f"times, last at a max fee of {gwei(self.j.current.max_fee)} gwei "
                        f"({exc.text})",
                        hint="run git coop anchor again later, or with a higher "
                        "--max-fee-gwei; the journal keeps the transactions",
                    ) from None
                self.replace(f"the node refused {self.j.tx}: {exc.text}")
        if self.j.state == "prepared":
            self.j.save(self.where, "broadcast")
        _faults.hit("anchor", "after-broadcast")
        if len(self.j.txs) > 1:
            _faults.hit("anchor", "after-replace-send")

    def _broadcast(self) -> None:
        j = self.j
        try:
            sent = self.rpc.call("eth_sendRawTransaction", j.current.raw)
        except RpcError as exc:
            text = exc.text.lower()
            if any(k in text for k in KNOWN):
                return  # this very transaction: the node has it
            if "nonce too low" in text:
                if any(self.rpc.call("eth_getTransactionByHash", t.tx) for t in j.txs):
                    return  # one of ours spent the nonce: its receipt is the anchor
                raise _NonceTaken from None
            raise
        if str(sent).lower() != j.tx.lower():
            raise VerificationError(f"the node named another hash ({sent}) for {j.tx}")

    def receipt(self) -> dict[str, Any] | None:
        """The receipt of any journaled transaction, waiting up to the wait for one; the
        one mined becomes the transaction in play."""
        deadline = time.monotonic() + self.wait
        while True:
            for t in reversed(self.j.txs):
                receipt = self.rpc.call("eth_getTransactionReceipt", t.tx)
                if receipt is not None:
                    self.j.tx, self.j.nonce = t.tx, t.nonce
                    return dict(receipt)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.5)

    def replace(self, why: str) -> None:
        """Sign and journal a replacement of the transaction in play: the same nonce, both
        fees raised by at least 12.5% over every journaled one, and to what the base fee
        now needs; raises GitcoopError when that passes the cap (nothing signed)."""
        j = self.j
        base, tip_now = fees(self.rpc)
        rivals = [t for t in j.txs if t.nonce == j.nonce]
        tip = max(_bumped(max(t.tip for t in rivals)), tip_now)
        least = max(_bumped(max(t.max_fee for t in rivals)), base + tip)
        if least > j.cap:
            raise _over_cap(
                f"replacing the anchoring transaction {j.tx}",
                least,
                j.cap,
                f"run git coop anchor again with --max-fee-gwei {gwei(least)} or more; the "
                "journal keeps the transaction",
            )
        old = j.tx
        j.add(_sign(j, self.secret, j.nonce, _priced(base, tip, least, j.cap), tip))
        self.say(
            f"gitcoop: {why}; replacing it with {j.tx} (nonce {j.nonce}, max fee "
            f"{gwei(j.current.max_fee)} gwei, tip {gwei(tip)} gwei)"
        )
        assert old != j.tx
        j.save(self.where, "prepared")
        _faults.hit("anchor", "after-replace")

    def renonce(self) -> None:
        """Sign and journal the anchoring anew with the node's next nonce: the journal's
        was taken by a transaction that is none of ours."""
        j = self.j
        nonce = int(self.rpc.call("eth_getTransactionCount", j.sender, "pending"), 16)
        if nonce <= j.nonce:
            raise GitOperationError(
                f"the node refused nonce {j.nonce} as too low, yet counts {nonce} as the next "
                f"nonce of {j.sender}",
                hint="check the node; the journal keeps the transaction",
            )
        base, tip = fees(self.rpc)
        if base + tip > j.cap:
            raise _over_cap(
                "the anchoring transaction",
                base + tip,
                j.cap,
                f"run git coop anchor again with --max-fee-gwei {gwei(base + tip)} or more",
            )
        old = j.nonce
        j.add(_sign(j, self.secret, nonce, _priced(base, tip, base + tip, j.cap), tip))
        self.say(
            f"gitcoop: nonce {old} was taken by a transaction none of ours; anchoring with "
            f"nonce {nonce} ({j.tx})"
        )
        j.save(self.where, "prepared")


def _advance(s: Session, run: _Run, confirmations: int | None) -> Anchored:
    j, where = run.j, run.where
    if j.state in ("prepared", "broadcast"):
        receipt = run.settle()
        if int(receipt["status"], 16) != 1:
            j.save(where, "failed")
            raise VerificationError(
                f"the anchoring transaction {j.tx} failed (status 0)",
                hint="run git coop anchor again to anchor with a new transaction",
            )
        j.block_number, j.block_hash = int(receipt["blockNumber"], 16), receipt["blockHash"]
        j.save(where, "included")
        _faults.hit("anchor", "after-receipt")
    if not _canonical(run.rpc, j):
        run.say(f"gitcoop: block {j.block_number} left the canonical chain; sending again")
        j.block_number = j.block_hash = None
        j.save(where, "broadcast")
        return _advance(s, run, confirmations)
    assert j.block_number is not None
    if not Finality(run.rpc, confirmations).final(j.block_number):
        return Anchored("included", j.seq, j.head, j.tx, j.block_number)
    entry = _record(s, j)
    j.save(where, "final")
    return Anchored("final", j.seq, j.head, j.tx, j.block_number, entry)


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
    if j.to.lower() != j.sender.lower():
        body["contract"] = j.to  # absent for a send to self: such entries read as before
    event = records.Event("anchor", body, signer, records.now())
    envelope = records.sign(event.payload(), constants.EVENT_PAYLOAD_TYPE, key)
    return ledger.append(s.repo, "anchor", key.public_openssh, envelope).entry.seq
