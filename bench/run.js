#!/usr/bin/env node
'use strict';
// npm run bench [-- <family>...] [--only <family>] [--quick] [--json]
// Finds the peers on this machine once, prints the shape table every peer is timed on, then runs
// each family in bench/families/<name>.js: every one prints its table (ours, each peer found, the
// machine limit measured in the same run, ratios, min–max of every timing), says whether the
// machine was quiet or noisy while it ran, and writes JSON + SVG under bench/results/.
const fs = require('fs');
const path = require('path');
const harness = require('./harness');
const shapes = require('./shapes');

const { discover, SKIP_NAMES } = require('./peers/discover');

const USAGE = 'usage: npm run bench -- [--quick] [--json] [--only <family>] [--skip <peer>[,<peer>...]] [family...]\n' +
  `  peers --skip takes: ${Object.keys(SKIP_NAMES).join(', ')}`;
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const json = args.includes('--json');
const requested = [];
const skip = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--skip') {
    const names = (args[i + 1] || '').split(',').filter(Boolean);
    const bad = names.filter((n) => !SKIP_NAMES[n]);
    if (!names.length || bad.length) {
      process.stderr.write(`--skip needs peer names${bad.length ? ` (unknown: ${bad.join(', ')})` : ''}\n${USAGE}\n`);
      process.exit(2);
    }
    skip.push(...names);
    i++;
    continue;
  }
  if (args[i] === '--only') {
    if (!args[i + 1] || args[i + 1].startsWith('--')) {
      process.stderr.write(`--only needs a family name\n${USAGE}\n`);
      process.exit(2);
    }
    requested.push(args[++i]);
  } else if (args[i] === '--help' || args[i] === '-h') {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  } else if (!args[i].startsWith('--')) {
    requested.push(args[i]);
  } else if (args[i] !== '--quick' && args[i] !== '--json') {
    process.stderr.write(`unknown option ${args[i]}\n${USAGE}\n`);
    process.exit(2);
  }
}

const dir = path.join(__dirname, 'families');
const ORDER = ['gemm', 'recurrent', 'rmsnorm', 'stepnet', 'train', 'dist'];
const available = fs.readdirSync(dir).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3))
  .sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99));
const unknown = requested.filter((f) => !available.includes(f));
if (unknown.length) {
  process.stderr.write(`unknown family '${unknown.join("', '")}' (have: ${available.join(', ')})\n`);
  process.exit(2);
}
const families = requested.length ? requested : available;
// With --json, stdout carries the JSON alone; the human-readable output goes to stderr.
const out = json ? process.stderr : process.stdout;

// Each family runs in a child process of its own (with --expose-gc, so harness.measure can
// collect before timing): what one family's peers leave behind — a TF.js heap to collect,
// OpenBLAS or onnxruntime threads — cannot slow the next family down.
async function runChild() {
  const name = process.env.RNNKIT_BENCH_FAMILY;
  const rnnkit = require('..');
  const { native } = require('../dist/native');
  const peers = JSON.parse(process.env.RNNKIT_BENCH_PEERS);
  Object.assign(harness.runInfo, JSON.parse(process.env.RNNKIT_BENCH_RUNINFO));
  const family = require(path.join(dir, `${name}.js`));
  process.stdout.write(`== ${name}: ${family.description || ''}\n`);
  let result;
  try {
    result = await family.run({ rnnkit, native: native(), harness, shapes, peers, quick });
    if (result && result.noise) process.stdout.write(`${harness.noiseLine(result.noise)}\n`);
  } catch (err) {
    process.stdout.write(`family ${name} failed: ${err && err.stack ? err.stack : err}\n`);
    result = { error: String(err && err.message ? err.message : err) };
  }
  fs.writeFileSync(process.env.RNNKIT_BENCH_CHILD_OUT, JSON.stringify(result, (k, v) => (k === 'samples' ? undefined : v)));
}

function runFamily(name, env, stdout) {
  const { spawn } = require('child_process');
  return new Promise((resolve) => {
    // RNNKIT_BENCH_NODE_FLAGS adds Node/V8 flags to the family processes (e.g. --single-threaded-gc).
    const flags = (process.env.RNNKIT_BENCH_NODE_FLAGS || '').split(/\s+/).filter(Boolean);
    const child = spawn(process.execPath, ['--expose-gc', ...flags, __filename, ...(quick ? ['--quick'] : [])],
      { env: { ...process.env, ...env, RNNKIT_BENCH_FAMILY: name }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => stdout.write(d));
    child.stderr.on('data', (d) => process.stderr.write(d));
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
}

async function main() {
  const rnnkit = require('..');
  const info = rnnkit.backendInfo();
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;
  const write = (s) => out.write(s);

  write(`rnnkit bench${quick ? ' --quick' : ''}: ${info.flavor} flavor, ISA ${info.isa}, ${info.numThreads} threads, ` +
    `${require('os').cpus()[0].model}, Node ${process.version}\n`);
  const peers = discover(rnnkit, { skip });
  write(`\nPeers on this machine:\n${Object.values(peers).map((p) => `  ${p.line}`).join('\n')}\n`);
  const table = shapes.shapeTable().filter((r) => families.includes(r.family) && (quick ? r.runs.includes('quick') : r.runs.includes('full')));
  write(harness.formatTable(`Shapes (bench/shapes.js; every peer runs these, FLOPs / bytes counted the same way for all)`, [
    { key: 'family', title: 'family' }, { key: 'case', title: 'case' }, { key: 'sizes', title: 'sizes' }, { key: 'work', title: 'work per call' },
  ], table) + '\n');
  write('Ratios everywhere are speed ratios: "A vs B" = time of B / time of A, so > 1 means A is faster.\n' +
    'Timings are medians after warm-up, printed as median (min–max).\n');

  const runInfo = { quick, backend: `${info.flavor} flavor, ISA ${info.isa}, ${info.numThreads} threads`,
    peers: Object.values(peers).map((p) => p.line), shapes: table };
  const summary = { quick, backend: { flavor: info.flavor, isa: info.isa, threads: info.numThreads },
    peers: Object.fromEntries(Object.entries(peers).map(([k, p]) => [k, p.found ? p.version : null])), families: {} };
  const tmp = fs.mkdtempSync(path.join(require('os').tmpdir(), 'rnnkit-bench-'));
  for (const [index, name] of families.entries()) {
    write(`\n[${index + 1}/${families.length}] ${name} (${elapsed()} elapsed)\n`);
    const t0 = Date.now();
    const outFile = path.join(tmp, `${name}.json`);
    const exit = await runFamily(name, {
      RNNKIT_BENCH_PEERS: JSON.stringify(peers), RNNKIT_BENCH_RUNINFO: JSON.stringify(runInfo), RNNKIT_BENCH_CHILD_OUT: outFile,
    }, out);
    let result;
    try {
      result = JSON.parse(fs.readFileSync(outFile, 'utf8'));
    } catch (err) {
      result = { error: `the family's process ended (${exit.signal || `exit ${exit.code}`}) without a result` };
      write(`family ${name}: ${result.error}\n`);
    }
    if (result.error) process.exitCode = 1;
    summary.families[name] = { seconds: (Date.now() - t0) / 1e3, ...result };
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  write(`\nDone in ${elapsed()}.\n`);
  for (const [name, r] of Object.entries(summary.families)) {
    const verdict = r.error ? `FAILED: ${r.error}` : r.noise ? `machine ${r.noise.verdict}${r.noise.reasons.length ? ` (${r.noise.reasons.join('; ')})` : ''}` : '';
    write(`  ${name.padEnd(10)} ${r.seconds.toFixed(0).padStart(4)} s  ${verdict}\n`);
  }
  write(`Results: ${harness.resultsDir()} (JSON + SVG); \`node bench/report.js\` puts them into bench/README.md.\n`);
  if (json) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
}

if (process.env.RNNKIT_BENCH_FAMILY) runChild();
else main();
