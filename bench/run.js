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
const { discover } = require('./peers/discover');

const USAGE = 'usage: npm run bench -- [--quick] [--json] [--only <family>] [family...]';
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const json = args.includes('--json');
const requested = [];
for (let i = 0; i < args.length; i++) {
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
const ORDER = ['gemm', 'recurrent', 'rmsnorm', 'stepnet', 'train'];
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

async function main() {
  const rnnkit = require('../dist');
  const { native } = require('../dist/native');
  const binding = native();
  const info = rnnkit.backendInfo();
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;
  const write = (s) => out.write(s);
  // Families print with process.stdout; under --json send that to stderr too.
  const realWrite = process.stdout.write.bind(process.stdout);
  if (json) process.stdout.write = (chunk, ...rest) => process.stderr.write(chunk, ...rest);

  write(`rnnkit bench${quick ? ' --quick' : ''}: ${info.flavor} flavor, ISA ${info.isa}, ${info.numThreads} threads, ` +
    `${require('os').cpus()[0].model}, Node ${process.version}\n`);
  const peers = discover(rnnkit);
  write(`\nPeers on this machine:\n${Object.values(peers).map((p) => `  ${p.line}`).join('\n')}\n`);
  const table = shapes.shapeTable().filter((r) => families.includes(r.family) && (quick ? r.runs.includes('quick') : r.runs.includes('full')));
  harness.printTable(`Shapes (bench/shapes.js; every peer runs these, FLOPs / bytes counted the same way for all)`, [
    { key: 'family', title: 'family' }, { key: 'case', title: 'case' }, { key: 'sizes', title: 'sizes' }, { key: 'work', title: 'work per call' },
  ], table);
  write('Ratios everywhere are speed ratios: "A vs B" = time of B / time of A, so > 1 means A is faster.\n' +
    'Timings are medians after warm-up, printed as median (min–max).\n');

  Object.assign(harness.runInfo, { quick, backend: `${info.flavor} flavor, ISA ${info.isa}, ${info.numThreads} threads`,
    peers: Object.values(peers).map((p) => p.line), shapes: table });
  const summary = { quick, backend: { flavor: info.flavor, isa: info.isa, threads: info.numThreads },
    peers: Object.fromEntries(Object.entries(peers).map(([k, p]) => [k, p.found ? p.version : null])), families: {} };
  for (const [index, name] of families.entries()) {
    write(`\n[${index + 1}/${families.length}] ${name} (${elapsed()} elapsed)\n`);
    const family = require(path.join(dir, `${name}.js`));
    write(`== ${name}: ${family.description || ''}\n`);
    const t0 = Date.now();
    try {
      const result = await family.run({ rnnkit, native: binding, harness, shapes, peers, quick });
      summary.families[name] = { seconds: (Date.now() - t0) / 1e3, ...result };
      if (result && result.noise) write(`${harness.noiseLine(result.noise)}\n`);
    } catch (err) {
      write(`family ${name} failed: ${err && err.stack ? err.stack : err}\n`);
      summary.families[name] = { error: String(err && err.message ? err.message : err) };
      process.exitCode = 1;
    }
  }
  write(`\nDone in ${elapsed()}.\n`);
  for (const [name, r] of Object.entries(summary.families)) {
    const verdict = r.error ? `FAILED: ${r.error}` : r.noise ? `machine ${r.noise.verdict}${r.noise.reasons.length ? ` (${r.noise.reasons.join('; ')})` : ''}` : '';
    write(`  ${name.padEnd(10)} ${r.seconds !== undefined ? `${r.seconds.toFixed(0).padStart(4)} s` : '      '}  ${verdict}\n`);
  }
  write(`Results: ${harness.resultsDir()} (JSON + SVG); \`node bench/report.js\` puts them into bench/README.md.\n`);
  if (json) {
    process.stdout.write = realWrite;
    process.stdout.write(JSON.stringify(summary, (k, v) => (k === 'samples' ? undefined : v), 2) + '\n');
  }
}

main();
