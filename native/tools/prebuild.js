#!/usr/bin/env node
// npm run prebuild [-- --cuda]
// 1. The CPU flavor with prebuildify (--napi --strip --tag-libc): prebuilds/<platform>-<arch>/, which
//    node-gyp-build loads when no local build exists.
// 2. The CUDA flavor, when built (`npm run build:cuda`, or --cuda to build it now with the full
//    architecture list): copied and stripped to prebuilds/<platform>-<arch>-cuda/rnnkit.cuda.node.
//    node-gyp-build only reads folders named exactly <platform>-<arch>, so it never mistakes this
//    file for the CPU flavor; lib/native.ts looks for it explicitly.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const args = process.argv.slice(2);

function run(cmd, cmdArgs) {
  process.stdout.write(`> ${cmd} ${cmdArgs.join(' ')}\n`);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`prebuild: ${cmd} failed (${r.status === null ? r.signal : r.status})\n`);
    process.exit(1);
  }
}

run('npx', ['prebuildify', '--napi', '--strip', '--tag-libc']);

const cudaBuild = path.join(root, 'build-cuda', 'Release', 'rnnkit_cuda.node');
if (args.includes('--cuda')) run('node', [path.join(__dirname, 'build-cuda.js')]);
if (fs.existsSync(cudaBuild)) {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}-cuda`);
  fs.mkdirSync(dir, { recursive: true });
  const dest = path.join(dir, 'rnnkit.cuda.node');
  fs.copyFileSync(cudaBuild, dest);
  const strip = spawnSync('strip', ['--strip-unneeded', dest], { stdio: 'inherit' });
  if (strip.status !== 0) process.stderr.write('prebuild: strip failed; the CUDA prebuild is unstripped\n');
  process.stdout.write(`CUDA flavor: ${path.relative(root, dest)}\n`);
} else {
  process.stdout.write('CUDA flavor: not built (npm run build:cuda, or npm run prebuild -- --cuda)\n');
}
