"""A Merkle tree over the payout table, so one 32-byte root commits to every payout.

The tree is byte-compatible with OpenZeppelin's ``StandardMerkleTree`` (npm
``@openzeppelin/merkle-tree``) for the leaf encoding ``["address", "uint256"]``, so the
root and proofs work with OpenZeppelin's ``MerkleProof.verify`` in a claim contract:

- a leaf is ``keccak256(keccak256(abi.encode(address, amount)))``. The second hash keeps
  a 64-byte leaf preimage from ever equalling an inner node's preimage (two 32-byte
  children), which would let an inner node pass as a leaf;
- an inner node is ``keccak256`` of its two children in ascending byte order, so a proof
  is just the siblings, with no left/right flags;
- leaves are sorted by hash and stored in reverse at the end of one array of
  ``2n - 1`` nodes, node ``i`` having children ``2i + 1`` and ``2i + 2``. Any layout
  gives valid proofs; this one gives OpenZeppelin's root, which is what lets someone
  rebuild the root from the published table with their own tools.

Imported only by the payout command: keccak comes from ``eth_hash`` (installed with
``gitcoop[eth]``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeGuard

from gitcoop.errors import ConfigError

try:
    from eth_hash.auto import keccak
except ImportError:
    raise ConfigError(
        "a payout Merkle tree needs the eth-hash package", hint="pip install 'gitcoop[eth]'"
    ) from None

__all__ = ["Tree", "build", "verify"]

MAX_AMOUNT = 2**256 - 1

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_NODE = re.compile(r"0x[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Tree:
    """A payout table's Merkle root and one proof per row, in the caller's row order."""

    root: str  # "0x" + 64 lowercase hex
    leaves: tuple[tuple[str, int], ...]  # (EIP-55 address, amount)
    proofs: tuple[tuple[str, ...], ...]  # sibling hashes, leaf to root, "0x" + 64 hex


def build(rows: Sequence[tuple[str, int]]) -> Tree:
    """The Merkle tree of ``rows`` of (address, amount), as OpenZeppelin builds it.

    Addresses may be lower, upper or EIP-55 mixed case; amounts are integers that fit a
    uint256. Raises ConfigError for no rows, a malformed address (including a mixed-case
    one whose checksum is wrong), an address listed twice, or an amount out of range.
    """
    if not rows:
        raise ConfigError("the payout table is empty", hint="a Merkle tree needs at least one row")
    leaves = tuple(_row(n, row) for n, row in enumerate(rows, start=1))
    _refuse_duplicates(leaves)
    hashes = [_leaf_hash(address, amount) for address, amount in leaves]
    nodes, positions = _layout(hashes)
    return Tree(
        root=_hex(nodes[0]),
        leaves=leaves,
        proofs=tuple(tuple(_hex(h) for h in _proof(nodes, i)) for i in positions),
    )


def verify(root: str, address: str, amount: int, proof: Sequence[str]) -> bool:
    """Whether ``proof`` shows that (``address``, ``amount``) is a leaf under ``root``.

    Returns False, never raises, for anything malformed: the root, the address, the
    amount or any proof element.
    """
    if isinstance(proof, str | bytes) or not _is_node(root):
        return False
    try:
        node = _leaf_hash(_checksummed(address), _amount(amount))
        siblings = [_node_bytes(p) for p in proof]
    except (ConfigError, TypeError, ValueError):
        return False
    for sibling in siblings:
        node = _node_hash(node, sibling)
    return node == bytes.fromhex(root[2:])


def _row(n: int, row: tuple[str, int]) -> tuple[str, int]:
    try:
        address, amount = row
    except (TypeError, ValueError):
        raise ConfigError(
            f"payout row {n} is not an (address, amount) pair", hint="give two fields"
        ) from None
    try:
        return _checksummed(address), _amount(amount)
    except ConfigError as exc:
        raise ConfigError(f"payout row {n}: {exc.message}", hint=exc.hint) from None


def _checksummed(address: object) -> str:
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise ConfigError(
            f"{str(address)[:60]!r} is not an Ethereum address", hint="give 0x and 40 hex digits"
        )
    digits = address[2:]
    # EIP-55: a letter is upper case where the keccak of the lower-case hex has a nibble
    # >= 8. Mixed case is a checksum, so a wrong one is a typo, not a case choice.
    lower = digits.lower()
    nibbles = keccak(lower.encode("ascii")).hex()
    good = "".join(
        c.upper() if int(h, 16) >= 8 else c for c, h in zip(lower, nibbles[:40], strict=True)
    )
    if digits not in (lower, lower.upper(), good):
        raise ConfigError(
            f"{address} has a wrong EIP-55 checksum",
            hint="copy the address again, or give it all in lower case",
        )
    return "0x" + good


def _amount(amount: object) -> int:
    # bool is an int subclass; True as an amount is a bug upstream, not a payout of 1.
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise ConfigError(f"amount {amount!r} is not an integer", hint="give base units")
    if not 0 <= amount <= MAX_AMOUNT:
        raise ConfigError(
            f"amount {amount} is out of range", hint="it must be >= 0 and fit a uint256"
        )
    return amount


def _refuse_duplicates(leaves: Sequence[tuple[str, int]]) -> None:
    # A contract marks an address as claimed, so a second row would be unclaimable.
    seen: dict[str, int] = {}
    for n, (address, _) in enumerate(leaves, start=1):
        if address in seen:
            raise ConfigError(
                f"payout rows {seen[address]} and {n} both pay {address}",
                hint="sum them into one row",
            )
        seen[address] = n


def _leaf_hash(address: str, amount: int) -> bytes:
    # abi.encode(address, uint256): two 32-byte words, the address right-aligned.
    encoded = bytes(12) + bytes.fromhex(address[2:]) + amount.to_bytes(32, "big")
    return bytes(keccak(keccak(encoded)))


def _node_hash(a: bytes, b: bytes) -> bytes:
    return bytes(keccak(a + b if a <= b else b + a))


def _layout(hashes: Sequence[bytes]) -> tuple[list[bytes], list[int]]:
    """The node array, and each leaf's index in it (in the order of ``hashes``)."""
    order = sorted(range(len(hashes)), key=hashes.__getitem__)
    size = 2 * len(hashes) - 1
    nodes = [b""] * size
    positions = [0] * len(hashes)
    for rank, leaf in enumerate(order):
        positions[leaf] = size - 1 - rank
        nodes[size - 1 - rank] = hashes[leaf]
    for i in range(size - 1 - len(hashes), -1, -1):
        nodes[i] = _node_hash(nodes[2 * i + 1], nodes[2 * i + 2])
    return nodes, positions


def _proof(nodes: Sequence[bytes], i: int) -> list[bytes]:
    siblings = []
    while i > 0:
        siblings.append(nodes[i + 1 if i % 2 else i - 1])
        i = (i - 1) // 2
    return siblings


def _is_node(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _NODE.fullmatch(value) is not None


def _node_bytes(value: object) -> bytes:
    if not _is_node(value):
        raise ValueError("not a 32-byte hex node")
    return bytes.fromhex(value[2:])


def _hex(node: bytes) -> str:
    return "0x" + node.hex()
