// Compiles contracts/CoopAnchor.sol with the solc (solc-js) that package.json pins, with
// fixed settings, into src/gitcoop/chain/coop_anchor.json: the ABI, the bytecode, the
// deployed bytecode, the Anchored event's topic, the compiler and settings, and the
// SHA-256 of the source. That JSON is committed so that the wheel needs no node; this
// script is how it is made (`make contract`), and tests/test_anchor_contract.py runs it
// again and wants the same bytes.
//
//   node contracts/build.mjs        write src/gitcoop/chain/coop_anchor.json
//   node contracts/build.mjs -      print it instead

import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");
const { keccak256 } = require("js-sha3");

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const NAME = "CoopAnchor";
const SOURCE = "contracts/CoopAnchor.sol";
const OUT = "src/gitcoop/chain/coop_anchor.json";
const EVENT = "Anchored(bytes32,address,uint64,bytes32)";

// Everything that changes the bytecode is fixed here. bytecodeHash "none" leaves the
// metadata hash (which covers file paths and comments) out of the bytecode, so the same
// source and settings give the same bytes anywhere; "paris" because the contract needs no
// newer opcode (no PUSH0), so it runs on every EVM chain still behind Shanghai.
const SETTINGS = {
  evmVersion: "paris",
  optimizer: { enabled: true, runs: 200 },
  metadata: { bytecodeHash: "none" },
  outputSelection: { "*": { [NAME]: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

function compile(text) {
  const input = { language: "Solidity", sources: { [SOURCE]: { content: text } }, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  // A warning fails the build too: the source is small enough to have none.
  const problems = (output.errors || []).filter((e) => e.severity !== "info");
  if (problems.length) {
    throw new Error(problems.map((e) => e.formattedMessage).join("\n"));
  }
  return output.contracts[SOURCE][NAME];
}

function artifact() {
  const bytes = readFileSync(join(ROOT, SOURCE));
  const built = compile(bytes.toString("utf8"));
  return {
    contract: NAME,
    source: SOURCE,
    source_sha256: createHash("sha256").update(bytes).digest("hex"),
    solc: solc.version(),
    settings: SETTINGS,
    abi: built.abi,
    bytecode: "0x" + built.evm.bytecode.object,
    deployedBytecode: "0x" + built.evm.deployedBytecode.object,
    events: { [EVENT]: "0x" + keccak256(EVENT) },
  };
}

const text = JSON.stringify(artifact(), null, 1) + "\n";
if (process.argv[2] === "-") {
  process.stdout.write(text);
} else {
  writeFileSync(join(ROOT, OUT), text);
}
