#!/usr/bin/env node
// A native-solc front for the official WebAssembly compiler (npm `solc`), so that py-solc-x and
// ape-solidity compile offline: it answers `--version` in native solc's format and
// `--standard-json` (input on stdin) through the npm module. Other flags are accepted and ignored
// except `--base-path`/`--include-path`, which extend where imports are looked up.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const args = process.argv.slice(2);

function write(text) {
  // A synchronous write: process.stdout.write followed by exit truncates output at 64 KiB.
  fs.writeSync(1, text);
}

if (args.includes('--version')) {
  write('solc, the solidity compiler commandline interface\n');
  write(`Version: ${solc.version().replace('Emscripten.clang', 'Linux.g++')}\n`);
  process.exit(0);
}

if (!args.includes('--standard-json')) {
  fs.writeSync(2, 'this solc front only supports --version and --standard-json\n');
  process.exit(1);
}

const roots = [process.cwd()];
if (process.env.SOLC_FRONT_DEBUG)
  fs.appendFileSync(process.env.SOLC_FRONT_DEBUG, JSON.stringify({ cwd: process.cwd(), args }) + '\n');
for (let i = 0; i < args.length; i++) {
  if ((args[i] === '--base-path' || args[i] === '--include-path') && args[i + 1]) {
    roots.push(path.resolve(args[i + 1]));
  }
}

function findImports(importPath) {
  for (const root of roots) {
    const candidate = path.resolve(root, importPath);
    if (fs.existsSync(candidate)) {
      return { contents: fs.readFileSync(candidate, 'utf8') };
    }
  }
  return { error: `File not found: ${importPath}` };
}

const input = fs.readFileSync(0, 'utf8');
write(solc.compile(input, { import: findImports }));
process.exit(0);
