#!/usr/bin/env node
// Builds the optional collectives addons into native/dist/build/Release/: rnnkit_gloo.node (and
// the gloo_allreduce_bench tool) when Gloo is installed, rnnkit_mpi.node when MPI is, and
// rnnkit_nccl.node, which needs no library to build (it loads libnccl.so.2 at run time).
//
//   node native/dist/build.js                  npm run build:dist: every engine it finds; exits 1
//                                              when a build fails
//   node native/dist/build.js --if-available   npm install: never fails the install; nccl only
//                                              where libnccl.so.2 is installed
//   options: --jobs N (default RNNKIT_BUILD_JOBS or 2)
//
// It writes native/dist/build/backends.json: what was built, and why the rest was skipped (lib/
// quotes it in the ERR_RNNKIT_DIST a missing backend throws).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const here = __dirname;
const args = process.argv.slice(2);
const lenient = args.includes('--if-available');
const jobsAt = args.indexOf('--jobs');
const jobs = jobsAt >= 0 ? args[jobsAt + 1] : process.env.RNNKIT_BUILD_JOBS || '2';

function output(cmd, cmdArgs) {
  const r = spawnSync(cmd, cmdArgs, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function findGloo() {
  const dirs = ['/usr/include', '/usr/local/include'];
  const found = dirs.find((d) => fs.existsSync(path.join(d, 'gloo', 'allreduce.h')));
  return found ? { ok: true, flags: [] } : { ok: false, reason: 'Gloo headers not found (Debian/Ubuntu: apt-get install libgloo-dev)' };
}

// Compiler and linker flags from pkg-config (MPICH, then Open MPI), else from `mpicc -show`.
function findMpi() {
  for (const pkg of ['mpich', 'ompi-c']) {
    const cflags = output('pkg-config', ['--cflags', pkg]);
    const libs = output('pkg-config', ['--libs', pkg]);
    if (cflags !== null && libs !== null) return { ok: true, flags: [`-Dmpi_cflags=${cflags}`, `-Dmpi_libs=${libs}`] };
  }
  const shown = output('mpicc', ['-show']);
  if (shown) {
    const words = shown.split(/\s+/).slice(1);
    const cflags = words.filter((w) => w.startsWith('-I')).join(' ');
    const libs = words.filter((w) => /^-(L|l|Wl,)/.test(w)).join(' ');
    return { ok: true, flags: [`-Dmpi_cflags=${cflags}`, `-Dmpi_libs=${libs}`] };
  }
  return { ok: false, reason: 'MPI not found (Debian/Ubuntu: apt-get install libmpich-dev mpich)' };
}

function findNccl() {
  if (!lenient) return { ok: true, flags: [] };
  const cache = output('ldconfig', ['-p']) || '';
  return cache.includes('libnccl.so.2') ? { ok: true, flags: [] }
    : { ok: false, reason: 'libnccl.so.2 was not installed at install time (run `npm run build:dist` to build the nccl addon anyway)' };
}

function nodeGyp() {
  if (process.env.npm_config_node_gyp && fs.existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return null;
  }
}

function main() {
  const found = { gloo: findGloo(), mpi: findMpi(), nccl: findNccl() };
  const report = {};
  const defines = [];
  for (const [name, f] of Object.entries(found)) {
    if (f.ok) defines.push(`-Dwith_${name}=1`, ...f.flags);
    else report[name] = { built: false, reason: f.reason };
  }

  let failed = false;
  const wanted = Object.keys(found).filter((n) => found[n].ok);
  if (wanted.length > 0) {
    const gyp = nodeGyp();
    // configure, then an incremental build: a second run (install, then build:dist) compiles only what is new.
    const gypRun = (step) => spawnSync(process.execPath, [gyp, ...step], { stdio: 'inherit' }).status;
    const status = !gyp ? 1 : gypRun(['configure', '--directory', here, '--', ...defines]) ||
      gypRun(['build', '--directory', here, '-j', String(jobs)]);
    for (const name of wanted) {
      const file = path.join(here, 'build', 'Release', `rnnkit_${name}.node`);
      report[name] = status === 0 && fs.existsSync(file) ? { built: true, path: path.relative(path.join(here, '..', '..'), file) }
        : { built: false, reason: gyp ? 'the build failed (run `npm run build:dist` to see why)' : 'node-gyp was not found' };
      failed = failed || !report[name].built;
    }
  }
  fs.mkdirSync(path.join(here, 'build'), { recursive: true });
  fs.writeFileSync(path.join(here, 'build', 'backends.json'), JSON.stringify(report, null, 2) + '\n');
  for (const [name, r] of Object.entries(report)) {
    process.stdout.write(`rnnkit distributed backend ${name}: ${r.built ? `built (${r.path})` : `not built: ${r.reason}`}\n`);
  }
  if (failed && !lenient) process.exit(1);
}

try {
  main();
} catch (err) {
  // An install never fails because of an optional addon.
  if (!lenient) throw err;
  process.stdout.write(`rnnkit distributed backends: not built (${err.message})\n`);
}
