"""The anchor contract (contracts/CoopAnchor.sol): its compiled form, whether an address
holds it, and its ``Anchored`` events, listed with ``eth_getLogs``.

The compiled form is ``coop_anchor.json`` beside this module, made from the source by
``make contract`` (contracts/build.mjs, the solc that package.json pins); a test compiles
it again and wants the same bytes. The contract takes exactly the anchoring calldata and
emits ``Anchored(bytes32 indexed origin, address indexed sender, uint64 size, bytes32
head)``, so a ledger's anchors on it can be listed by origin, whoever sent them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from gitcoop.chain.rpc import Rpc, RpcError
from gitcoop.errors import ConfigError

ARTIFACT = Path(__file__).with_name("coop_anchor.json")
EVENT = "Anchored(bytes32,address,uint64,bytes32)"
CHUNK = 10_000  # blocks per eth_getLogs: the range many public nodes allow
# How nodes word a refused eth_getLogs range or result size (geth, erigon, Infura, Alchemy,
# QuickNode, publicnode, Ankr...): such a refusal halves the range, anything else is named.
_TOO_MUCH = ("range", "limit", "exceed", "too many", "too large", "too wide", "more than", "size")
_LIMIT_CODE = -32005  # EIP-1474 "limit exceeded"
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


@cache
def artifact() -> dict[str, Any]:
    """The compiled contract: abi, bytecode, deployedBytecode, events, solc, settings."""
    return dict(json.loads(ARTIFACT.read_text(encoding="utf-8")))


def topic() -> str:
    """The ``Anchored`` event's topic 0 (keccak-256 of its signature), as 0x hex."""
    return str(artifact()["events"][EVENT])


def address(text: str) -> str:
    """``text`` if it is an address (0x and 40 hex digits); raises ConfigError."""
    if not _ADDRESS.fullmatch(text):
        raise ConfigError(
            f"{text[:60]!r} is not an Ethereum address", hint="give 0x and 40 hex digits"
        )
    return text


def require_ours(rpc: Rpc, address: str, block: str = "latest") -> None:
    """Raise ConfigError unless ``address`` holds the anchor contract's code at ``block``."""
    code = str(rpc.call("eth_getCode", address, block)).lower()
    if code in ("0x", ""):
        raise ConfigError(
            f"{address} holds no contract on this chain",
            hint="deploy one with git coop anchor-contract deploy, or check the address",
        )
    if code != str(artifact()["deployedBytecode"]).lower():
        raise ConfigError(
            f"the contract at {address} is not the gitcoop anchor contract "
            "(its code differs from contracts/CoopAnchor.sol as built)",
            hint="give the address git coop anchor-contract deploy printed",
        )


def deployed_since(rpc: Rpc, address: str, latest: int) -> int:
    """The first block whose state holds code at ``address`` (which holds it at
    ``latest``): a binary search over ``eth_getCode``, about log2(latest) calls. A node
    that keeps no state that old answers with an error: then block 0."""
    lo, hi = 0, latest  # code at hi; none below lo
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            code = str(rpc.call("eth_getCode", address, hex(mid)))
        except RpcError:
            return 0
        if code in ("0x", ""):
            lo = mid + 1
        else:
            hi = mid
    return lo


@dataclass(frozen=True)
class Event:
    """One ``Anchored`` event."""

    contract: str
    origin: str  # 64 hex digits
    sender: str  # 0x and 40 hex digits, lower case
    size: int  # entries up to the anchored one
    head: str  # 64 hex digits: the SHA-256 of entry size - 1
    block: int
    tx: str

    @property
    def seq(self) -> int:
        """The anchored entry."""
        return self.size - 1


def decode(log: dict[str, Any]) -> Event | None:
    """The ``Anchored`` event a log holds, or None when it holds none (another event, a
    log a reorg removed, or one malformed)."""
    try:
        topics = [bytes.fromhex(str(t)[2:]) for t in log.get("topics") or []]
        data = bytes.fromhex(str(log["data"])[2:])
        if log.get("removed") or len(topics) != 3 or any(len(t) != 32 for t in topics):
            return None
        if "0x" + topics[0].hex() != topic():
            return None
        if len(data) != 64 or data[:24] != bytes(24) or topics[2][:12] != bytes(12):
            return None  # the ABI pads a uint64 and an address with zeros
        return Event(
            str(log["address"]).lower(),
            topics[1].hex(),
            "0x" + topics[2][12:].hex(),
            int.from_bytes(data[24:32], "big"),
            data[32:].hex(),
            int(log["blockNumber"], 16),
            str(log["transactionHash"]).lower(),
        )
    except (KeyError, TypeError, ValueError):
        return None


def events(rpc: Rpc, contract: str, origin: str, start: int, end: int) -> list[Event]:
    """Every ``Anchored`` event of ledger ``origin`` the contract emitted in blocks
    ``start`` to ``end``, oldest first. Asks for CHUNK blocks at a time; a node that
    refuses a range as too large is asked again for half of it, down to one block."""
    out: list[Event] = []
    chunk, lo = CHUNK, start
    while lo <= end:
        hi = min(end, lo + chunk - 1)
        query = {
            "address": contract,
            "fromBlock": hex(lo),
            "toBlock": hex(hi),
            "topics": [topic(), "0x" + origin],
        }
        try:
            logs = rpc.call("eth_getLogs", query)
        except RpcError as exc:
            if hi == lo or not _too_much(exc):
                raise
            chunk = (hi - lo + 1) // 2
            continue
        ours = (contract.lower(), origin)
        found = (decode(log) for log in logs)
        out.extend(e for e in found if e is not None and (e.contract, e.origin) == ours)
        lo = hi + 1
    return out


def _too_much(exc: RpcError) -> bool:
    return exc.code == _LIMIT_CODE or any(w in exc.text.lower() for w in _TOO_MUCH)
