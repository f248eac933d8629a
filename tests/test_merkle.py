"""The payout Merkle tree: the same root and proofs as OpenZeppelin's StandardMerkleTree
(its npm package, run by node), proofs that fail under any mutation, and clear errors
for tables that cannot be paid."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_checksum_address

from gitcoop import merkle
from gitcoop.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
OZ_SCRIPT = ROOT / "testing" / "ozmerkle.mjs"
MAX = 2**256 - 1
SIZES = [1, 2, 3, 5, 8, 13, 100]


def openzeppelin(tables: list[list[tuple[str, int]]]) -> list[dict[str, Any]]:
    """OpenZeppelin's root and proofs (keyed by the address as given) for each table."""
    if not (ROOT / "node_modules" / "@openzeppelin" / "merkle-tree").exists():
        pytest.fail("@openzeppelin/merkle-tree is not installed: run npm ci (make test does)")
    stdin = "".join(json.dumps([[a, str(n)] for a, n in t]) + "\n" for t in tables)
    out = subprocess.run(
        ["node", str(OZ_SCRIPT)], input=stdin, capture_output=True, text=True, check=True
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


def _table(size: int, seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    amounts = [0, MAX, 1, 10**18, rng.randrange(2**64), rng.randrange(MAX)]
    return [
        ("0x" + rng.randbytes(20).hex(), amounts[i] if i < len(amounts) else rng.randrange(MAX))
        for i in range(size)
    ]


def _spelled(address: str, i: int) -> str:
    # Callers may give any of the three spellings; OpenZeppelin always gets lower case.
    return [address, "0x" + address[2:].upper(), to_checksum_address(address)][i % 3]


TABLES = {size: _table(size, seed=size) for size in SIZES}


@pytest.fixture(scope="module")
def oz_trees() -> dict[int, dict[str, Any]]:
    return dict(zip(TABLES, openzeppelin(list(TABLES.values())), strict=True))


@pytest.mark.parametrize("size", SIZES)
def test_root_and_proofs_equal_openzeppelins(
    size: int, oz_trees: dict[int, dict[str, Any]]
) -> None:
    rows = TABLES[size]
    tree = merkle.build([(_spelled(a, i), n) for i, (a, n) in enumerate(rows)])
    oz = oz_trees[size]
    assert tree.root == oz["root"]
    assert tree.leaves == tuple((to_checksum_address(a), n) for a, n in rows)
    assert len(tree.proofs) == size
    for (address, amount), proof in zip(rows, tree.proofs, strict=True):
        assert list(proof) == oz["proofs"][address]
        assert merkle.verify(tree.root, address, amount, oz["proofs"][address])
    if size == 1:
        assert tree.proofs == ((),)


def test_the_root_does_not_depend_on_row_order() -> None:
    rows = TABLES[13]
    shuffled = random.Random(7).sample(rows, len(rows))
    a, b = merkle.build(rows), merkle.build(shuffled)
    assert a.root == b.root
    assert [addr for addr, _ in b.leaves] == [to_checksum_address(x) for x, _ in shuffled]
    assert dict(zip(a.leaves, a.proofs, strict=True)) == dict(zip(b.leaves, b.proofs, strict=True))


def test_the_root_openzeppelin_1_0_8_printed_is_pinned() -> None:
    # Printed by testing/ozmerkle.mjs with @openzeppelin/merkle-tree 1.0.8. Roots already
    # anchored on chain must stay valid, so a later release that changed the encoding
    # must fail here rather than be followed silently by the cross-check above.
    tree = merkle.build([("0x" + "11" * 20, 5), ("0x" + "22" * 20, 0), ("0x" + "33" * 20, MAX)])
    assert tree.root == "0x6c3e6da7e641ad315161b14eea45eed45cb1f6835ddd26acd6aa41fb50c4458e"
    assert tree.proofs[0] == ("0xc1f4deb707d25509f3a2c209fac28668afebbf10059a21ba02d2eb7890004c56",)


# --- mutations: every change to a valid claim is refused -----------------------------


def _flip(node: str, bit: int) -> str:
    return "0x" + (int(node, 16) ^ (1 << bit)).to_bytes(32, "big").hex()


def _mutated_proofs(proof: tuple[str, ...], extra: str) -> list[list[str]]:
    p = list(proof)
    flipped = [[*p[:i], _flip(s, b), *p[i + 1 :]] for i, s in enumerate(p) for b in range(256)]
    dropped = [[*p[:i], *p[i + 1 :]] for i in range(len(p))]
    added = [[*p[:i], x, *p[i:]] for i in range(len(p) + 1) for x in (extra, *p)]
    swapped = [
        [*p[:i], p[j], *p[i + 1 : j], p[i], *p[j + 1 :]] for j in range(len(p)) for i in range(j)
    ]
    reversed_ = [p[::-1]] if len(p) > 1 else []  # one element reversed is itself
    return [*flipped, *dropped, *added, *swapped, *reversed_]


def test_every_mutated_proof_is_refused() -> None:
    tree = merkle.build(TABLES[13])
    extra = merkle.build(TABLES[5]).proofs[0][0]
    checked = 0
    for (address, amount), proof in zip(tree.leaves, tree.proofs, strict=True):
        assert merkle.verify(tree.root, address, amount, proof)
        for bad in _mutated_proofs(proof, extra):
            assert not merkle.verify(tree.root, address, amount, bad), (address, bad)
            checked += 1
    assert checked > 13 * 3 * 256


@pytest.mark.parametrize("size", [2, 13, 100])
def test_a_wrong_amount_address_or_root_is_refused(size: int) -> None:
    tree = merkle.build(TABLES[size])
    other_root = merkle.build(TABLES[8]).root
    addresses = [a for a, _ in tree.leaves]
    for i, ((address, amount), proof) in enumerate(zip(tree.leaves, tree.proofs, strict=True)):
        neighbour = addresses[(i + 1) % size]
        for a, n in [(address, amount + 1), (address, amount - 1), (neighbour, amount)]:
            assert not merkle.verify(tree.root, a, n, proof), (a, n)
        for byte in range(20):
            raw = bytearray.fromhex(address[2:])
            raw[byte] ^= 1
            assert not merkle.verify(tree.root, "0x" + raw.hex(), amount, proof)
        assert not merkle.verify(other_root, address, amount, proof)
        assert not merkle.verify(tree.root, address, amount, [])
        if tree.proofs[(i + 1) % size] != proof:
            assert not merkle.verify(tree.root, address, amount, tree.proofs[(i + 1) % size])


def test_any_spelling_of_a_valid_claim_verifies() -> None:
    tree = merkle.build(TABLES[5])
    (address, amount), proof = tree.leaves[0], tree.proofs[0]
    upper_proof = ["0x" + p[2:].upper() for p in proof]
    assert merkle.verify("0x" + tree.root[2:].upper(), address.lower(), amount, upper_proof)
    assert merkle.verify(tree.root, "0x" + address[2:].upper(), amount, tuple(proof))


def test_a_single_row_tree_is_its_leaf_hash() -> None:
    tree = merkle.build([("0x" + "ab" * 20, 7)])
    assert tree.proofs == ((),)
    assert merkle.verify(tree.root, "0x" + "ab" * 20, 7, [])
    assert not merkle.verify(tree.root, "0x" + "ab" * 20, 8, [])
    assert not merkle.verify(tree.root, "0x" + "ab" * 20, 7, "")  # a str is no proof


# --- tables that cannot be paid ------------------------------------------------------

A = "0x" + "11" * 20
B = "0x" + "22" * 20
C = "0x" + "ab" * 20
C_SUM = to_checksum_address(C)
CHECKSUMMED = to_checksum_address("0x" + "a1" * 20)
BAD_CHECKSUM = CHECKSUMMED[:2] + CHECKSUMMED[2:].swapcase()[:1] + CHECKSUMMED[3:]


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([], "the payout table is empty"),
        ([("0x1234", 1)], "row 1: '0x1234' is not an Ethereum address"),
        ([(A, 1), ("11" * 20, 1)], "row 2: .* is not an Ethereum address"),
        ([("0x" + "g" * 40, 1)], "is not an Ethereum address"),
        ([("0x" + "1" * 41, 1)], "is not an Ethereum address"),
        ([(" " + A, 1)], "is not an Ethereum address"),
        ([(A + "\n", 1)], "is not an Ethereum address"),
        ([(None, 1)], "row 1: 'None' is not an Ethereum address"),
        ([(BAD_CHECKSUM, 1)], f"row 1: {BAD_CHECKSUM} has a wrong EIP-55 checksum"),
        ([(C, 1), (B, 2), ("0x" + C[2:].upper(), 3)], f"rows 1 and 3 both pay {C_SUM}"),
        ([(A, -1)], "row 1: amount -1 is out of range"),
        ([(A, 2**256)], "amount 1157\\d{74} is out of range"),
        ([(A, 1.0)], "amount 1.0 is not an integer"),
        ([(A, "5")], "amount '5' is not an integer"),
        ([(A, True)], "amount True is not an integer"),
        ([(A,)], "payout row 1 is not an \\(address, amount\\) pair"),
    ],
)
def test_tables_that_cannot_be_paid_are_refused(rows: list[Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as exc:
        merkle.build(rows)
    assert "\n" not in exc.value.message
    assert exc.value.hint


def test_a_checksummed_or_lower_or_upper_case_address_is_accepted() -> None:
    tree = merkle.build([(CHECKSUMMED, 1), (B.upper().replace("0X", "0x"), 2)])
    assert [a for a, _ in tree.leaves] == [CHECKSUMMED, to_checksum_address(B)]


# --- verify never raises -------------------------------------------------------------

_GOOD = merkle.build(TABLES[3])
# The leaf paying 1, so that True, 1.0 and "1" would pass if verify coerced them.
_ROOT, (_ADDRESS, _AMOUNT), _PROOF = _GOOD.root, _GOOD.leaves[2], list(_GOOD.proofs[2])
_NODE = _PROOF[0]
GARBAGE_NODES: list[Any] = [
    "",
    "0x",
    _NODE[2:],
    _NODE[:-1],
    _NODE + "0",
    "0x" + "zz" * 32,
    " " + _NODE,
    _NODE + "\n",
    "0x" + " ".join([_NODE[2:34], _NODE[34:]]),
    "0X" + _NODE[2:],
    None,
    0,
    bytes.fromhex(_NODE[2:]),
    [_NODE],
]


@pytest.mark.parametrize("root", GARBAGE_NODES)
def test_verify_refuses_a_garbage_root(root: Any) -> None:
    assert not merkle.verify(root, _ADDRESS, _AMOUNT, _PROOF)


@pytest.mark.parametrize("node", GARBAGE_NODES)
def test_verify_refuses_a_garbage_proof_element(node: Any) -> None:
    assert not merkle.verify(_ROOT, _ADDRESS, _AMOUNT, [node, *_PROOF[1:]])
    assert not merkle.verify(_ROOT, _ADDRESS, _AMOUNT, [*_PROOF, node])


@pytest.mark.parametrize(
    "proof", [None, 0, "", _NODE, b"", bytes.fromhex(_NODE[2:]), {"a": 1}, [[_NODE]]]
)
def test_verify_refuses_a_proof_that_is_no_list_of_nodes(proof: Any) -> None:
    assert not merkle.verify(_ROOT, _ADDRESS, _AMOUNT, proof)


@pytest.mark.parametrize(
    ("address", "amount"),
    [
        (None, _AMOUNT),
        ("", _AMOUNT),
        (_ADDRESS[2:], _AMOUNT),
        (_ADDRESS + "0", _AMOUNT),
        (BAD_CHECKSUM, _AMOUNT),
        (_ADDRESS, None),
        (_ADDRESS, str(_AMOUNT)),
        (_ADDRESS, float(_AMOUNT)),
        (_ADDRESS, -1),
        (_ADDRESS, 2**256),
        (_ADDRESS, True),
    ],
)
def test_verify_refuses_a_garbage_claim(address: Any, amount: Any) -> None:
    assert not merkle.verify(_ROOT, address, amount, _PROOF)
