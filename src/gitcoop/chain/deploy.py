"""``git coop anchor-contract deploy``: put the anchor contract on a chain, once.

A journaled one-shot, like an anchoring: the signed creation transaction is written to
``anchor-contract.json`` (in the local gitcoop directory) before it is sent, a run that
dies resumes by sending the same bytes (one deployment is never paid for twice), and the
address is given only once the code there is the contract's as built. One deployment
serves every challenge on the chain (its events are indexed by ledger origin).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gitcoop import _faults, _fs
from gitcoop.chain import contract
from gitcoop.chain.anchor import KNOWN, Say, fees
from gitcoop.chain.rpc import DEFAULT_TIMEOUT, Rpc, RpcError, check_chain
from gitcoop.errors import ConfigError, GitcoopError, VerificationError
from gitcoop.session import open_session

JOURNAL = "anchor-contract.json"
JOURNAL_VERSION = 1


@dataclass
class DeployJournal:
    """One deployment, as last written."""

    state: str  # prepared | broadcast | deployed | failed
    chain_id: int
    sender: str
    nonce: int
    tx: str
    raw: str
    address: str | None = None
    block_number: int | None = None
    version: int = JOURNAL_VERSION

    def save(self, path: Path, state: str) -> None:
        """Move to ``state`` and write the journal (atomically, durably) before going on."""
        self.state = state
        _fs.atomic_write(path, json.dumps(asdict(self), indent=1).encode())

    @classmethod
    def load(cls, path: Path) -> DeployJournal | None:
        """The journal, or None; raises ConfigError for one that cannot be read."""
        raw = _fs.read_or_none(path)
        if raw is None:
            return None
        try:
            obj = json.loads(raw)
            if obj.get("version") != JOURNAL_VERSION:
                raise ValueError("another version")
            return cls(**obj)
        except (ValueError, TypeError, AttributeError):
            raise ConfigError(
                f"the deployment journal {path} is unreadable",
                hint="look its transaction up by hand before removing it",
            ) from None


@dataclass(frozen=True)
class Deployed:
    """What ``deploy`` did."""

    state: str  # deployed | already | prepared (dry run)
    tx: str
    address: str | None = None
    block_number: int | None = None


def deploy(
    path: str | Path,
    url: str,
    secret: bytes,
    *,
    chain_id: int,
    wait: float = 120.0,
    dry_run: bool = False,
    rpc_timeout: float = DEFAULT_TIMEOUT,
    say: Say = lambda _: None,
) -> Deployed:
    """Deploy the anchor contract on chain ``chain_id`` through the node at ``url``, or
    finish the deployment the journal holds; a deployment the journal records on this
    chain whose code is still there is not repeated. Raises GitcoopError when there is no
    receipt within ``wait`` seconds (the next run sends the same transaction)."""
    from gitcoop import eth

    sender = eth.address_of(secret)
    rpc = Rpc(url, timeout=rpc_timeout)
    check_chain(rpc, chain_id)
    where = open_session(path).local / JOURNAL
    j = DeployJournal.load(where)
    if j is not None and j.state == "deployed" and j.chain_id == chain_id:
        if j.address is not None and _holds(rpc, j.address):
            return Deployed("already", j.tx, j.address, j.block_number)
    elif j is not None and j.state in ("prepared", "broadcast"):
        if (j.chain_id, j.sender.lower()) != (chain_id, sender.lower()):
            raise ConfigError(
                f"a deployment on chain {j.chain_id} from {j.sender} is unfinished",
                hint="finish it with the same --chain-id and key",
            )
        if dry_run:
            return Deployed("prepared", j.tx)
        say(f"gitcoop: resuming the deployment ({j.state}, tx {j.tx})")
        return _finish(rpc, j, where, secret, wait)
    j = _prepare(rpc, secret, sender, chain_id)
    if dry_run:
        return Deployed("prepared", j.tx)
    j.save(where, "prepared")
    _faults.hit("anchor", "deploy-after-prepare")
    return _finish(rpc, j, where, secret, wait)


def _holds(rpc: Rpc, address: str) -> bool:
    try:
        contract.require_ours(rpc, address)
    except ConfigError:
        return False
    return True


def _prepare(rpc: Rpc, secret: bytes, sender: str, chain_id: int) -> DeployJournal:
    from gitcoop import eth

    code = str(contract.artifact()["bytecode"])
    nonce = int(rpc.call("eth_getTransactionCount", sender, "pending"), 16)
    base, tip = fees(rpc)
    try:
        gas = int(rpc.call("eth_estimateGas", {"from": sender, "data": code}), 16)
    except RpcError as exc:
        raise ConfigError(
            f"the node cannot run the deployment: {exc.text}",
            hint="fund the account, or check the key; nothing was signed",
        ) from None
    max_fee = 2 * base + tip  # room for six full blocks of base-fee rise
    balance = int(rpc.call("eth_getBalance", sender, "latest"), 16)
    if balance < gas * max_fee:
        raise ConfigError(
            f"insufficient funds: {sender} holds {balance} wei, the deployment may cost up "
            f"to {gas * max_fee}",
            hint="fund the account; nothing was signed",
        )
    tx = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "value": 0,
        "data": code,
        "gas": gas,
        "maxPriorityFeePerGas": tip,
        "maxFeePerGas": max_fee,
    }
    raw, txhash = eth.sign_transaction(tx, secret)
    return DeployJournal("new", chain_id, sender, nonce, txhash, raw)


def _finish(rpc: Rpc, j: DeployJournal, where: Path, secret: bytes, wait: float) -> Deployed:
    if not _send(rpc, j):
        # Another transaction took the nonce, so this one can never be mined: sign anew.
        j = _prepare(rpc, secret, j.sender, j.chain_id)
        j.save(where, "prepared")
        if not _send(rpc, j):
            raise GitcoopError(
                f"the node refused nonce {j.nonce} as too low twice in a row",
                hint="is another program sending from this account? run it again later",
            )
    if j.state == "prepared":
        j.save(where, "broadcast")
    receipt = _receipt(rpc, j.tx, wait)
    if int(receipt["status"], 16) != 1:
        j.save(where, "failed")
        raise VerificationError(
            f"the deployment {j.tx} failed (status 0)",
            hint="run git coop anchor-contract deploy again to deploy anew",
        )
    address = str(receipt.get("contractAddress") or "")
    contract.require_ours(rpc, contract.address(address))
    j.address, j.block_number = address, int(receipt["blockNumber"], 16)
    j.save(where, "deployed")
    return Deployed("deployed", j.tx, j.address, j.block_number)


def _send(rpc: Rpc, j: DeployJournal) -> bool:
    """Send the journaled transaction; False when its nonce went to another one."""
    try:
        sent = rpc.call("eth_sendRawTransaction", j.raw)
    except RpcError as exc:
        text = exc.text.lower()
        if any(k in text for k in KNOWN):
            return True
        if "nonce too low" in text:
            return rpc.call("eth_getTransactionByHash", j.tx) is not None
        raise
    if str(sent).lower() != j.tx.lower():
        raise VerificationError(f"the node named another hash ({sent}) for {j.tx}")
    return True


def _receipt(rpc: Rpc, tx: str, wait: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait
    while True:
        receipt = rpc.call("eth_getTransactionReceipt", tx)
        if receipt is not None:
            return dict(receipt)
        if time.monotonic() > deadline:
            raise GitcoopError(
                f"no receipt for the deployment {tx} after {wait:.0f}s",
                hint="run git coop anchor-contract deploy again later: it sends the same "
                "transaction and waits again",
            )
        time.sleep(0.5)
