#!/usr/bin/env node
'use strict';
// npm run soak -- [--steps N] [--hidden H] [--layers L] [--seq T] [--batch B] [--warmup W]
//                 [--max-growth PCT] [--every K] [--seed S]
//
// Trains the demo's model (examples/demo.js: one-hot characters -> LSTM -> Linear, cross-entropy,
// Adam, gradient clipping, warm-up + cosine schedule, truncated BPTT over B streams of text, a
// checkpoint every 500 steps) for N steps (default 3000, the demo's sizes), and every K steps (100),
// after a full GC, reports RSS, V8 heap, external and ArrayBuffer memory and the native objects
// the addon holds (backendInfo().liveObjects). Passes when, from the end of the warm-up (default
// the first 10% of the steps, at least 100) to the end, RSS grows by less than --max-growth
// percent (default 5) and no native object is left over. Ends with one JSON line `SOAK {...}` and
// exits 1 when a bound is exceeded. Run with --expose-gc (npm run soak does).
const fs = require('fs');
const os = require('os');
const path = require('path');
const rk = require('../..');

function parseArgs(argv) {
  const o = { steps: 3000, hidden: 128, layers: 2, seq: 64, batch: 32, warmup: 0, maxGrowth: 5, every: 100, seed: 1 };
  const keys = { '--steps': 'steps', '--hidden': 'hidden', '--layers': 'layers', '--seq': 'seq', '--batch': 'batch',
    '--warmup': 'warmup', '--max-growth': 'maxGrowth', '--every': 'every', '--seed': 'seed' };
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

/** The corpus: this project's README and docs (the demo's fallback corpus), as character ids. */
function corpus() {
  const root = path.resolve(__dirname, '..', '..');
  const docs = path.join(root, 'docs');
  const files = [path.join(root, 'README.md'), ...(fs.existsSync(docs) ? fs.readdirSync(docs).sort().map((f) => path.join(docs, f)) : [])];
  const text = files.filter((f) => f.endsWith('.md')).map((f) => fs.readFileSync(f, 'utf8')).join('\n');
  const chars = Array.from(new Set(text)).sort();
  const index = new Map(chars.map((c, k) => [c, k]));
  return { V: chars.length, ids: Int32Array.from(Array.from(text), (c) => index.get(c)) };
}

function oneHot(ids, V, T, B) {
  const x = new Float32Array(T * B * V);
  for (let k = 0; k < T * B; k++) x[k * V + ids[k]] = 1;
  return rk.tensor(x, [T, B, V]);
}

// B streams over the ids, stream b starting at b·len/B: inputs and targets of steps [t, t + T).
function streamBatch(ids, B, t, T) {
  const span = Math.floor(ids.length / B);
  const inputs = new Int32Array(T * B);
  const targets = new Int32Array(T * B);
  for (let s = 0; s < T; s++) {
    for (let b = 0; b < B; b++) {
      const pos = b * span + ((t + s) % (span - 1));
      inputs[s * B + b] = ids[pos];
      targets[s * B + b] = ids[pos + 1];
    }
  }
  return { inputs, targets };
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

async function main() {
  if (!global.gc) throw new Error('run with node --expose-gc (npm run soak does)');
  const o = parseArgs(process.argv.slice(2));
  const { V, ids } = corpus();
  const lstm = new rk.Recurrent({ mode: 'lstm', inputSize: V, hiddenSize: o.hidden, numLayers: o.layers, device: 'cpu', seed: o.seed });
  const decoder = new rk.Linear({ inFeatures: o.hidden, outFeatures: V, seed: o.seed + 1 });
  const optimizer = new rk.Adam([lstm.weights, decoder.weight, decoder.bias], { lr: 3e-3 });
  const warm = Math.max(1, Math.round(o.steps / 20));
  const scheduler = new rk.LinearWarmup(optimizer, {
    warmupSteps: warm, startFactor: 0.1, then: new rk.CosineAnnealingLR(null, { tMax: Math.max(1, o.steps - warm), etaMin: 3e-4 }),
  });
  const dW = rk.zeros(decoder.weight.shape);
  const dB = rk.zeros(decoder.bias.shape);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-soak-'));
  const rng = new rk.Rng(o.seed);
  const samples = [];
  const { batch: B, seq: T } = o;
  process.stdout.write(`soak: LSTM ${o.layers}x${o.hidden} over ${V} characters, batch ${B} x ${T} steps, ${o.steps} steps ` +
    `(warm-up ${o.warmup}), ${rk.numThreads()} threads\n  step   loss     RSS MB  heap MB  external MB  arrayBuffers MB  live native objects\n`);
  const started = Date.now();
  await rk.tbptt({
    model: lstm,
    length: o.steps * T,
    segmentLength: T,
    input: (start, len) => oneHot(streamBatch(ids, B, start, len).inputs, V, len, B),
    dropoutSeed: () => rng.seed(),
    head: async (y, chunk) => {
      const { targets } = streamBatch(ids, B, chunk.start, chunk.length);
      const logits = await decoder.forward(y);
      const { loss, dlogits } = await rk.crossEntropy(logits, targets);
      const g = await decoder.backward(y, dlogits, { dweight: dW, dbias: dB });
      return { loss, dy: g.dx };
    },
    onSegment: async (seg) => {
      await rk.clipGradNorm([seg.dweights, dW, dB], 5);
      await optimizer.step([seg.dweights, dW, dB]);
      scheduler.step();
      const step = seg.index + 1;
      if (step % 500 === 0) {
        rk.saveCheckpoint(dir, { params: { weights: lstm.weights, ...decoder.parameters() }, optimizer, scheduler, step, rng });
        rk.loadCheckpoint(dir, { params: { weights: lstm.weights, ...decoder.parameters() }, optimizer, scheduler });
      }
      if (step % o.every === 0 || step === o.steps) {
        const s = sample(step, seg.loss);
        samples.push(s);
        const l = s.live;
        process.stdout.write(`  ${String(step).padStart(5)}  ${s.loss.toFixed(3).padStart(6)}  ${(s.rss / MB).toFixed(1).padStart(8)}` +
          `  ${(s.heapUsed / MB).toFixed(1).padStart(7)}  ${(s.external / MB).toFixed(1).padStart(11)}  ${(s.arrayBuffers / MB).toFixed(1).padStart(15)}` +
          `  ${l.deviceAllocations} buffers, ${l.stepNets} nets, ${l.stepWorkspaces} workspaces, ${l.asyncJobs} jobs\n`);
      }
    },
  });
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
  process.stdout.write(`SOAK ${JSON.stringify({ options: o, seconds, rssGrowthPercent: growth, problems, samples })}\n`);
  process.exitCode = problems.length ? 1 : 0;
}

main().catch((err) => {
  process.stderr.write(`soak failed: ${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 1;
});
