#!/usr/bin/env node
// npm run prebuild [-- --arch x64,arm64] [--cuda]
// 1. The CPU flavor of each Linux architecture with prebuildify (--napi --strip --tag-libc) into
//    prebuilds/linux-<arch>/, which node-gyp-build loads when no local build exists. By default
//    the host's architecture and, on an x64 host, arm64.
//    - The host's: `node-gyp rebuild` in the checkout (build/).
//    - arm64 on an x64 host: cross-compiled with Debian's g++-aarch64-linux-gnu against the
//      headers of the arm64 Node from npm (arm64-node.js), in build-arm64/stage, a copy of
//      binding.gyp beside links to the sources, so build/ keeps the host's addon.
// 2. The CUDA flavor, when built (`npm run build:cuda`, or --cuda to build it now with the full
//    architecture list): copied and stripped to prebuilds/<platform>-<arch>-cuda/rnnkit.cuda.node.
//    node-gyp-build only reads folders named exactly <platform>-<arch>, so it never mistakes this
//    file for the CPU flavor; lib/native.ts looks for it explicitly.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const args = process.argv.slice(2);
const CROSS_PREFIX = { arm64: 'aarch64-linux-gnu-' };

function fail(message) {
  process.stderr.write(`prebuild: ${message}\n`);
  process.exit(1);
}

function run(cmd, cmdArgs, options = {}) {
  process.stdout.write(`> ${cmd} ${cmdArgs.join(' ')}\n`);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', ...options });
  if (r.status !== 0) fail(`${cmd} failed (${r.status === null ? r.signal : r.status})`);
}

function option(name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function onPath(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

const prebuildifyArgs = ['prebuildify', '--napi', '--strip', '--tag-libc'];
// node-gyp reads JOBS; the machine's cores unless the caller chose.
const buildEnv = { ...process.env, JOBS: process.env.JOBS || String(os.availableParallelism()) };

function buildHost() {
  run('npx', prebuildifyArgs, { env: buildEnv });
}

function buildCross(arch) {
  const prefix = CROSS_PREFIX[arch];
  if (process.platform !== 'linux' || process.arch !== 'x64' || !prefix) {
    fail(`cannot cross-compile linux-${arch} from ${process.platform}-${process.arch}`);
  }
  if (!onPath(`${prefix}g++`)) {
    fail(`${prefix}g++ not found: apt-get install g++-aarch64-linux-gnu (or --arch ${process.arch} to skip ${arch})`);
  }
  const { arm64NodeDir } = require('./arm64-node');
  const nodeDir = arm64NodeDir();
  const stage = path.join(root, `build-${arch}`, 'stage');
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage, { recursive: true });
  fs.copyFileSync(path.join(root, 'binding.gyp'), path.join(stage, 'binding.gyp'));
  for (const dir of ['native', 'cuda']) fs.symlinkSync(path.join(root, dir), path.join(stage, dir), 'dir');
  run('npx', [...prebuildifyArgs, '--arch', arch, '--name', 'rnnkit', '--out', root,
    '--strip-bin', `${prefix}strip`, '--cwd', stage], {
    env: {
      ...buildEnv,
      CC: `${prefix}gcc`, CXX: `${prefix}g++`, LINK: `${prefix}g++`, AR: `${prefix}ar`,
      npm_config_nodedir: nodeDir,
    },
  });
}

const archs = (option('--arch') || (process.arch === 'x64' ? 'x64,arm64' : process.arch)).split(',');
for (const arch of archs) {
  if (arch === process.arch) buildHost();
  else buildCross(arch);
}

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
