#!/usr/bin/env node
// npm run test:asan  — the CPU kernels and binding built with AddressSanitizer +
//                       UndefinedBehaviorSanitizer (build-asan/), then the test suite against it.
// npm run test:leaks — the same build with LeakSanitizer on (Node's own allocations suppressed by
//                       native/tools/lsan.supp), plus the GC test that checks native memory returns.
// Node itself is not instrumented, so the sanitizer runtime is preloaded (LD_PRELOAD).
'use strict';
const { spawnSync, execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const leaks = process.argv.includes('--leaks');
const extra = process.argv.slice(2).filter((a) => a !== '--leaks');

function run(cmd, args, env) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  return r.status === null ? 1 : r.status;
}

const jobs = process.env.RNNKIT_BUILD_JOBS || '2';
let status = run('npx', ['cmake-js', 'compile', '--out', 'build-asan', '--CDRNNKIT_CUDA=OFF', '--CDRNNKIT_SANITIZE=ON',
  '--parallel', jobs]);
if (status !== 0) process.exit(status);
const addon = path.join(root, 'build-asan', 'Release', 'rnnkit_cpu.node');
if (!fs.existsSync(addon)) {
  process.stderr.write(`test-sanitized: ${addon} was not built\n`);
  process.exit(1);
}
const cxx = process.env.CXX || 'g++';
const libasan = execFileSync(cxx, ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
const libubsan = execFileSync(cxx, ['-print-file-name=libubsan.so'], { encoding: 'utf8' }).trim();
const env = {
  RNNKIT_ADDON: addon,
  LD_PRELOAD: `${libasan} ${libubsan}`,
  ASAN_OPTIONS: `detect_leaks=${leaks ? 1 : 0}:abort_on_error=0:halt_on_error=1:exitcode=86`,
  LSAN_OPTIONS: `suppressions=${path.join(__dirname, 'lsan.supp')}:print_suppressions=0`,
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1:exitcode=87',
};
// The whole suite but the package test (it loads the prebuild, not this build), the largest
// GEMM shape (minutes at -O0 under the sanitizers) and the bench suite's run (its peers,
// onnxruntime and TF.js, are other libraries' code); each fuzz test (the native boundary's and the
// public API's, test/90 and test/93) makes 20,000 calls.
const mochaArgs = [path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'), '--timeout', '900000'];
if (extra.length) mochaArgs.push(...extra);
else mochaArgs.push('--invert', '--grep', 'package tarball|300x500x257|bench suite');
status = run(process.execPath, mochaArgs, { RNNKIT_FUZZ_CALLS: '20000', ...env });
process.exit(status);
