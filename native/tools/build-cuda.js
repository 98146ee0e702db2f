#!/usr/bin/env node
// npm run build:cuda [-- --archs "90-real;90-virtual"] [--cuda ON|AUTO|OFF] [--tools]
// Builds the CUDA flavor with cmake-js into build-cuda/ (never touching node-gyp's build/).
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const args = process.argv.slice(2);
function opt(name, fallback) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}
const cmakeArgs = ['cmake-js', 'compile', '--out', 'build-cuda', '--CDRNNKIT_CUDA=' + opt('--cuda', 'ON')];
const archs = opt('--archs', process.env.RNNKIT_CUDA_ARCHS);
if (archs) cmakeArgs.push('--CDRNNKIT_CUDA_ARCHS=' + archs);
if (args.includes('--tools')) cmakeArgs.push('--CDRNNKIT_TOOLS=ON');
const jobs = opt('--jobs', process.env.RNNKIT_BUILD_JOBS);
if (jobs) cmakeArgs.push('--parallel', jobs);
const r = spawnSync('npx', cmakeArgs, { cwd: root, stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
