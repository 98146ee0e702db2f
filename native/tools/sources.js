#!/usr/bin/env node
// The one list of native sources, read by binding.gyp (CPU flavor) and CMakeLists.txt (CUDA
// flavor), so the two builds never drift. Usage: node native/tools/sources.js cpu|cuda
// Prints paths relative to the package root, one per line (binding.gyp splits on whitespace).
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const flavor = process.argv[2] || 'cpu';
if (flavor !== 'cpu' && flavor !== 'cuda') {
  process.stderr.write(`usage: sources.js cpu|cuda (got ${flavor})\n`);
  process.exit(2);
}

function list(dir, exts) {
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) return [];
  return fs.readdirSync(abs)
    .filter((f) => exts.some((e) => f.endsWith(e)))
    .sort()
    .map((f) => `${dir}/${f}`);
}

const files = [...list('native/kernels', ['.cc']), ...list('native/napi', ['.cc'])];
// cuda/stub*.cc stand in for the CUDA code in the CPU flavor, and only there.
const isStub = (f) => /^cuda\/stub[^/]*\.cc$/.test(f);
if (flavor === 'cpu') files.push(...list('cuda', ['.cc']).filter(isStub));
else files.push(...list('cuda', ['.cu', '.cc']).filter((f) => !isStub(f)));
process.stdout.write(files.join('\n') + '\n');
