#!/usr/bin/env node
'use strict';
// npm run soak -- [--steps N] [--hidden H] [--layers L] [--embed E] [--seq T] [--batch B]
//                 [--warmup W] [--max-growth PCT] [--every K] [--seed S] [--default-malloc]
//
// Trains the demo's model (examples/demo.js: nn.Embedding -> nn.LSTM -> nn.Linear over the demo's
// corpus, cross-entropy, backward, gradient clipping, Adam, warm-up + cosine schedule, the state
// carried across steps as in truncated BPTT; a checkpoint saved and loaded back every 500 steps)
// for N steps (default 3000, the demo's sizes), and every K steps (100), after a full GC, reports
// RSS, V8 heap, external and ArrayBuffer memory and the native objects the addon holds
// (backendInfo().liveObjects). Passes when, from the end of the warm-up (default the first 10% of
// the steps, at least 100) to the end, RSS grows by less than --max-growth percent (default 5)
// and no native object is left over. Ends with one JSON line `SOAK {...}` and exits 1 when a
// bound is exceeded. Run with --expose-gc (npm run soak does).
//
// RSS counts memory glibc's malloc keeps after it was freed, not only live memory: by default
// malloc raises its mmap threshold after the first large free (up to 32 MiB), so the arrays of a
// step (a few MiB each) come from the heap, and how much of the freed heap it keeps mapped
// changes from sample to sample (the demo's model: samples between 118 and 146 MiB, no trend in
// the low ones). The soak therefore runs itself with MALLOC_MMAP_THRESHOLD_=131072 (glibc's
// initial threshold, held fixed): large blocks are mapped and unmapped, RSS follows live memory,
// and a leak still shows. --default-malloc keeps glibc's defaults (the figures are then noisier).
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

if (process.argv.includes('--default-malloc')) {
  process.argv = process.argv.filter((a) => a !== '--default-malloc');
} else if (process.env.MALLOC_MMAP_THRESHOLD_ === undefined) {
  const r = spawnSync(process.execPath, [...process.execArgv, __filename, ...process.argv.slice(2)],
    { stdio: 'inherit', env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072' } });
  process.exit(r.status === null ? 1 : r.status);
}
const rk = require('../..');
const { CharLM, loadCorpus, buildVocab, streamBatch } = require('../../examples/demo');

const { nn } = rk;

function parseArgs(argv) {
  const o = { steps: 3000, hidden: 128, layers: 2, embed: 64, seq: 64, batch: 32, warmup: 0, maxGrowth: 5, every: 100, seed: 1 };
  const keys = { '--steps': 'steps', '--hidden': 'hidden', '--layers': 'layers', '--embed': 'embed', '--seq': 'seq',
    '--batch': 'batch', '--warmup': 'warmup', '--max-growth': 'maxGrowth', '--every': 'every', '--seed': 'seed' };
  for (let k = 0; k < argv.length; k += 2) {
    const key = keys[argv[k]];
    const v = Number(argv[k + 1]);
    if (!key || !Number.isFinite(v) || v < 0) throw new Error(`bad argument ${argv[k]} ${argv[k + 1]} (try ${Object.keys(keys).join(' ')})`);
    o[key] = v;
  }
  if (!Number.isInteger(o.every) || o.every < 1) throw new Error('--every must be a positive integer');
  if (!o.warmup) o.warmup = Math.min(o.steps, Math.max(100, Math.round(o.steps / 10)));
  return o;
}

const MB = 2 ** 20;

function sample(step, loss) {
  global.gc();
  global.gc();
  const m = process.memoryUsage();
  return {
    step, loss: Number(loss.toFixed(4)), rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers,
    live: rk.backendInfo().liveObjects,
  };
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function report(s) {
  const l = s.live;
  process.stdout.write(`  ${String(s.step).padStart(5)}  ${s.loss.toFixed(3).padStart(6)}  ${(s.rss / MB).toFixed(1).padStart(8)}` +
    `  ${(s.heapUsed / MB).toFixed(1).padStart(7)}  ${(s.external / MB).toFixed(1).padStart(11)}  ${(s.arrayBuffers / MB).toFixed(1).padStart(15)}` +
    `  ${l.deviceAllocations} buffers, ${l.stepNets} nets, ${l.stepWorkspaces} workspaces, ${l.asyncJobs} jobs\n`);
}

async function main() {
  if (!global.gc) throw new Error('run with node --expose-gc (npm run soak does)');
  const o = parseArgs(process.argv.slice(2));
  const vocab = buildVocab(loadCorpus().text);
  const V = vocab.chars.length;
  const model = new CharLM(V, { embed: o.embed, hidden: o.hidden, layers: o.layers, seed: o.seed }, 'cpu');
  const optimizer = new rk.Adam(model.parameters(), { lr: 3e-3 });
  const warm = Math.max(1, Math.round(o.steps / 20));
  const scheduler = new rk.LinearWarmup(optimizer, {
    warmupSteps: warm, startFactor: 0.1, then: new rk.CosineAnnealingLR(null, { tMax: Math.max(1, o.steps - warm), etaMin: 3e-4 }),
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-soak-'));
  const samples = [];
  const { batch: B, seq: T } = o;
  process.stdout.write(`soak: the demo's model (Embedding ${V}x${o.embed} -> LSTM ${o.layers}x${o.hidden} -> Linear ${V}), ` +
    `batch ${B} x ${T} steps, ${o.steps} steps (warm-up ${o.warmup}), ${rk.numThreads()} threads, ` +
    `${process.env.MALLOC_MMAP_THRESHOLD_ ? `MALLOC_MMAP_THRESHOLD_=${process.env.MALLOC_MMAP_THRESHOLD_}` : "glibc's default malloc settings"}\n` +
    '  step   loss     RSS MB  heap MB  external MB  arrayBuffers MB  live native objects\n');
  const started = Date.now();
  let state = {};
  for (let step = 1; step <= o.steps; step++) {
    const { inputs, targets } = streamBatch(vocab.ids, B, (step - 1) * T, T);
    const out = await model.forward(inputs, T, B, state);
    const loss = await nn.crossEntropy(out.logits, targets);
    await loss.backward();
    await rk.clipGradNorm(model.parameters(), 5);
    await optimizer.step();
    optimizer.zeroGrad();
    scheduler.step();
    state = out.state;
    if (step % 500 === 0) {
      rk.saveCheckpoint(dir, { params: model.stateDict(), optimizer, scheduler, step });
      rk.loadCheckpoint(dir, { params: model.stateDict(), optimizer, scheduler });
    }
    if (step % o.every === 0 || step === o.steps) {
      samples.push(sample(step, loss.item()));
      report(samples[samples.length - 1]);
    }
  }
  const seconds = (Date.now() - started) / 1000;
  fs.rmSync(dir, { recursive: true, force: true });
  const after = samples.filter((s) => s.step >= o.warmup);
  const base = median(after.slice(0, 3).map((s) => s.rss));
  const end = median(after.slice(-3).map((s) => s.rss));
  const growth = (100 * (end - base)) / base;
  const first = after[0].live;
  const last = after[after.length - 1].live;
  const leaked = Object.keys(last).filter((k) => last[k] > first[k] || (k === 'asyncJobs' && last[k] !== 0));
  const problems = [];
  if (!(growth < o.maxGrowth)) problems.push(`RSS grew by ${growth.toFixed(1)}% after the warm-up (limit ${o.maxGrowth}%)`);
  if (leaked.length) problems.push(`native objects left over: ${leaked.map((k) => `${k} ${first[k]} -> ${last[k]}`).join(', ')}`);
  process.stdout.write(`${o.steps} steps in ${seconds.toFixed(1)} s; RSS after the warm-up ${(base / MB).toFixed(1)} MB, at the end ` +
    `${(end / MB).toFixed(1)} MB (${growth >= 0 ? '+' : ''}${growth.toFixed(2)}%); ${problems.length ? problems.join('; ') : 'no leak'}\n`);
  process.stdout.write(`SOAK ${JSON.stringify({ options: o, mmapThreshold: process.env.MALLOC_MMAP_THRESHOLD_ || null, seconds, rssGrowthPercent: growth, problems, samples })}\n`);
  process.exitCode = problems.length ? 1 : 0;
}

main().catch((err) => {
  process.stderr.write(`soak failed: ${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 1;
});
