// Build OpenZeppelin StandardMerkleTrees of payout tables, to cross-check gitcoop.merkle.
// stdin: one table per line, each a JSON [[address, amount_string], ...]; amounts are
// decimal strings because JSON numbers lose precision beyond 2**53.
// stdout: one line per table, {"root": "0x…", "proofs": {address: ["0x…", ...]}}.
import { readFileSync } from "node:fs";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

const lines = readFileSync(0, "utf8").split("\n").filter((line) => line.trim());
for (const line of lines) {
  const tree = StandardMerkleTree.of(JSON.parse(line), ["address", "uint256"]);
  const proofs = {};
  for (const [i, [address]] of tree.entries()) {
    proofs[address] = tree.getProof(i);
  }
  process.stdout.write(JSON.stringify({ root: tree.root, proofs }) + "\n");
}
