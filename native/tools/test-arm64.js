#!/usr/bin/env node
// npm run test:arm64 [-- --native]
// The linux-arm64 prebuild on an x64 Linux machine, under qemu-user (Debian's qemu-user-static,
// with the arm64 libraries of g++-aarch64-linux-gnu as its sysroot) and the arm64 Node from npm
// (arm64-node.js):
//  1. the prebuild loads through node-gyp-build (PREBUILDS_ONLY: never build/) and reports neon;
//  2. a subset of the mocha suite, every kernel against its float64 reference on both arm64 paths
//     (neon and portable) where the suite covers several: tensors, async ops and worker threads,
//     matmul and the SGEMM, Recurrent forward/backward and its parameters, RMSNorm, the step net
//     and the training pieces (optimizer steps, losses, clipping, a few training steps);
//  3. with --native, the native recurrent checker cross-compiled with cmake (build-arm64/tools).
// Emulation is slow (about 3-10x here): the subset leaves out the suites that spawn processes
// (qemu-user runs only the process it starts), the package and bench suites, the largest SGEMM
// shape, and the SGEMM and RMSNorm native checkers (about 4 minutes each under qemu; their
// kernels are in the subset).
// Ends with mocha's `N passed, N failed, N skipped` line.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { arm64NodeDir } = require('./arm64-node');

const root = path.resolve(__dirname, '..', '..');
const SUITES = ['01.tensor', '04.async', '05.matmul', '06.sgemm', '07.workers', '11.recurrent-params',
  '20.recurrent', '21.recurrent-api', '30.rmsnorm', '50.train', '60.stepnet'];
// The largest SGEMM shape takes minutes under emulation (its 30 s limit is for real CPUs); the
// smaller blocked shapes cover the same route with two K blocks.
const LEFT_OUT = '300x500x257';
const sysroot = process.env.RNNKIT_ARM64_SYSROOT || '/usr/aarch64-linux-gnu';

function fail(message) {
  process.stderr.write(`test-arm64: ${message}\n`);
  process.exit(1);
}

function findQemu() {
  for (const name of ['qemu-aarch64-static', 'qemu-aarch64']) {
    if (spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0) return name;
  }
  return fail('qemu-aarch64-static not found: apt-get install qemu-user-static');
}

const prebuildDir = path.join(root, 'prebuilds', 'linux-arm64');
if (!fs.existsSync(prebuildDir) || !fs.readdirSync(prebuildDir).some((f) => f.endsWith('.node'))) {
  fail('no prebuilds/linux-arm64/*.node: run npm run prebuild first');
}
if (!fs.existsSync(path.join(sysroot, 'lib', 'ld-linux-aarch64.so.1'))) {
  fail(`no arm64 sysroot at ${sysroot}: apt-get install g++-aarch64-linux-gnu`);
}
if (!fs.existsSync(path.join(root, 'dist', 'index.js'))) fail('no dist/: run npm run build:ts first');
const qemu = findQemu();
const node = path.join(arm64NodeDir(), 'bin', 'node');
const env = { ...process.env, PREBUILDS_ONLY: '1', RNNKIT_DEVICE: 'cpu' };
const started = Date.now();

// Runs an arm64 program; its output is captured when `capture`, else shown as it comes.
function emulate(program, args, capture = false) {
  return spawnSync(qemu, ['-L', sysroot, program, ...args], {
    cwd: root, env, stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'], encoding: 'utf8',
  });
}

const probe = emulate(node, ['-e', [
  "const r = require('./dist');",
  'const i = r.backendInfo();',
  'console.log(JSON.stringify({ arch: process.arch, path: i.addonPath, isa: i.isa, available: i.availableIsas }));',
].join('\n')], true);
if (probe.status !== 0) fail(`the arm64 Node could not load rnnkit:\n${probe.stdout}`);
const info = JSON.parse(probe.stdout.trim().split('\n').pop());
process.stdout.write(`arm64 Node ${node}\nloaded ${path.relative(root, info.path)} (arch ${info.arch}, isa ${info.isa}, paths ${info.available.join(', ')})\n`);
if (info.arch !== 'arm64' || info.isa !== 'neon' || !info.path.startsWith(prebuildDir)) {
  fail('expected the prebuild in prebuilds/linux-arm64 to load on arm64 with isa neon');
}

const mocha = emulate(node, [path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'), '--no-config',
  '--require', path.join(__dirname, 'emulated-timeouts.js'), '--require', 'test/00.setup.js',
  '--reporter', 'test/reporter.js', '--timeout', '60000',
  '--invert', '--grep', LEFT_OUT, ...SUITES.map((s) => `test/${s}.test.js`)]);
let status = mocha.status === null ? 1 : mocha.status;
const suiteSeconds = (Date.now() - started) / 1000;

if (process.argv.includes('--native')) {
  const tools = path.join(root, 'build-arm64', 'tools');
  const cmake = (args) => spawnSync('cmake', args, { cwd: root, stdio: 'inherit' }).status;
  const configured = cmake(['-S', '.', '-B', tools, '-DCMAKE_SYSTEM_NAME=Linux', '-DCMAKE_SYSTEM_PROCESSOR=aarch64',
    '-DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++', '-DCMAKE_BUILD_TYPE=Release', '-DRNNKIT_CUDA=OFF', '-DRNNKIT_TOOLS=ON']);
  const jobs = process.env.RNNKIT_BUILD_JOBS || '2';
  if (configured !== 0 || cmake(['--build', tools, '-j', jobs, '--target', 'test_recurrent']) !== 0) {
    fail('cross-compiling test_recurrent failed');
  }
  const checkStarted = Date.now();
  const check = emulate(path.join(tools, 'test_recurrent'), []);
  process.stdout.write(`test_recurrent under qemu: ${((Date.now() - checkStarted) / 1000).toFixed(0)} s\n`);
  if (check.status !== 0) status = 1;
}

process.stdout.write(`arm64 suites under qemu: ${suiteSeconds.toFixed(0)} s\n`);
process.exit(status);
