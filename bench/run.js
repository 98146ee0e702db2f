#!/usr/bin/env node
'use strict';
// npm run bench [-- <family>...] [--quick] [--json]
// Runs each benchmark family in bench/families/<name>.js: every one prints its table (ours, each
// peer found, the machine limit measured in the same run, ratios) and writes bench/results/.
const fs = require('fs');
const path = require('path');
const harness = require('./harness');

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const json = args.includes('--json');
const onlyIdx = args.indexOf('--only');
const requested = args.filter((a, i) => !a.startsWith('--') && !(onlyIdx >= 0 && i === onlyIdx + 1));
if (onlyIdx >= 0 && args[onlyIdx + 1]) requested.push(args[onlyIdx + 1]);

const dir = path.join(__dirname, 'families');
const available = fs.readdirSync(dir).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)).sort();
const families = requested.length ? requested : available;

async function main() {
  const rnnkit = require('../dist');
  const { native } = require('../dist/native');
  const info = rnnkit.backendInfo();
  process.stdout.write(`rnnkit bench: ${info.flavor} flavor, ISA ${info.isa}, ${info.numThreads} threads\n`);
  const summary = {};
  const started = Date.now();
  for (const [index, name] of families.entries()) {
    const elapsed = ((Date.now() - started) / 1000).toFixed(0);
    process.stdout.write(`\n[${index + 1}/${families.length}] ${name} (${elapsed} s elapsed)\n`);
    if (!available.includes(name)) {
      process.stdout.write(`unknown family '${name}' (have: ${available.join(', ')})\n`);
      process.exitCode = 2;
      continue;
    }
    const family = require(path.join(dir, `${name}.js`));
    process.stdout.write(`\n== ${name}: ${family.description || ''}\n`);
    const warning = harness.noiseWarning();
    if (warning) process.stdout.write(warning + '\n');
    try {
      summary[name] = await family.run({ rnnkit, native: native(), harness, quick });
    } catch (err) {
      process.stdout.write(`family ${name} failed: ${err && err.stack ? err.stack : err}\n`);
      summary[name] = { error: String(err) };
    }
  }
  if (json) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
}

main();
