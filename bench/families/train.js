'use strict';
// Training throughput of the demo model (one-hot V -> 2-layer LSTM H -> Linear V; cross-entropy,
// gradient clipping, Adam) in tokens/s: one whole training step of ours, the sum of our own op
// timings measured one by one (the gap is the overhead between ops: JS glue, allocations,
// promise hops), the same model and step in TensorFlow.js (cpu backend) when it is installed, and
// the FLOP rate against the FMA peak measured in the same run.
const V = 81; // the demo's Moby-Dick vocabulary
const H = 128;
const L = 2;

// Multiply-adds of one token through the model, forward; the backward costs about twice that.
function flopsPerToken() {
  let macs = 0;
  for (let l = 0; l < L; l++) macs += 4 * H * ((l === 0 ? V : H) + H);
  macs += H * V;
  return 3 * 2 * macs;
}

function randomIds(n, seed) {
  let s = seed >>> 0;
  const ids = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    ids[k] = s % V;
  }
  return ids;
}

function oneHot(tensor, ids, shape) {
  const x = new Float32Array(ids.length * V);
  ids.forEach((c, k) => (x[k * V + c] = 1));
  return tensor(x, shape);
}

async function oursStep(rnnkit, T, B) {
  const train = require('../../dist/train');
  const { Recurrent } = require('../../dist/recurrent');
  const lstm = new Recurrent({ mode: 'lstm', inputSize: V, hiddenSize: H, numLayers: L, seed: 1 });
  const decoder = new train.Linear({ inFeatures: H, outFeatures: V, seed: 2 });
  const opt = new train.Adam([lstm.weights, decoder.weight, decoder.bias], { lr: 1e-3 });
  const ids = randomIds(T * B + 1, 7);
  const x = oneHot(rnnkit.tensor, ids.subarray(0, T * B), [T, B, V]);
  const targets = ids.slice(1);
  const dW = rnnkit.tensor(new Float32Array(decoder.weight.size), decoder.weight.shape);
  const dB = rnnkit.tensor(new Float32Array(decoder.bias.size), decoder.bias.shape);
  const dWeights = rnnkit.tensor(new Float32Array(lstm.weights.size), lstm.weights.shape);
  // Each stage on its own, with the inputs it needs prepared once.
  const f = await lstm.forward(x, { training: true });
  const logits = await decoder.forward(f.y);
  const ce = await train.crossEntropy(logits, targets);
  const hd = await decoder.backward(f.y, ce.dlogits, { dweight: dW, dbias: dB });
  const stages = {
    'lstm forward (training)': () => lstm.forward(x, { training: true }),
    'decoder forward': () => decoder.forward(f.y),
    'cross-entropy + grad': () => train.crossEntropy(logits, targets),
    'decoder backward': () => decoder.backward(f.y, ce.dlogits, { dweight: dW, dbias: dB }),
    'lstm backward': () => lstm.backward(f.saved, { dy: hd.dx, dweights: dWeights }),
    'clip grad norm': () => train.clipGradNorm([dWeights, dW, dB], 1e9),
    'adam step': () => opt.step([dWeights, dW, dB]),
  };
  const step = async () => {
    const fw = await lstm.forward(x, { training: true });
    const lg = await decoder.forward(fw.y);
    const c = await train.crossEntropy(lg, targets);
    const d = await decoder.backward(fw.y, c.dlogits, { dweight: dW, dbias: dB });
    await lstm.backward(fw.saved, { dy: d.dx, dweights: dWeights });
    await train.clipGradNorm([dWeights, dW, dB], 5);
    await opt.step([dWeights, dW, dB]);
  };
  return { step, stages };
}

function loadTfjs() {
  try {
    return require('@tensorflow/tfjs');
  } catch (err) {
    return null;
  }
}

async function tfjsStep(tf, T, B) {
  await tf.setBackend('cpu');
  const model = tf.sequential();
  model.add(tf.layers.lstm({ units: H, returnSequences: true, inputShape: [T, V] }));
  model.add(tf.layers.lstm({ units: H, returnSequences: true }));
  model.add(tf.layers.dense({ units: V }));
  const optimizer = tf.train.adam(1e-3);
  const ids = randomIds(T * B + 1, 7);
  const x = tf.oneHot(tf.tensor1d(ids.subarray(0, T * B), 'int32'), V).reshape([B, T, V]).toFloat();
  const y = tf.oneHot(tf.tensor1d(ids.slice(1), 'int32'), V).reshape([B, T, V]).toFloat();
  return () => {
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x)));
      const names = Object.keys(grads);
      const norm = tf.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n])))));
      const scale = tf.minimum(tf.scalar(1), tf.div(tf.scalar(5), tf.add(norm, 1e-6)));
      const clipped = {};
      for (const n of names) clipped[n] = tf.mul(grads[n], scale);
      optimizer.applyGradients(clipped);
    });
  };
}

module.exports = {
  description: 'tokens/s of the demo model\'s training step (2x128 LSTM char model): ours, sum of our ops, TensorFlow.js cpu',
  async run({ rnnkit, native, harness, quick }) {
    const T = 64;
    const B = quick ? 8 : 32;
    const tokens = T * B;
    const threads = rnnkit.numThreads();
    const lim = harness.limits(native, threads);
    const opts = quick ? { warmup: 1, repeats: 3, minMs: 0 } : { warmup: 2, repeats: 7, minMs: 0 };
    const rows = [];
    const ours = await oursStep(rnnkit, T, B);
    const whole = await harness.measure(ours.step, opts);
    const stageRows = [];
    let sum = 0;
    for (const [name, fn] of Object.entries(ours.stages)) {
      const m = await harness.measure(fn, opts);
      sum += m.median;
      stageRows.push({ name: `  ${name}`, ms: m.median, spread: m.spread });
    }
    const flops = flopsPerToken() * tokens;
    rows.push({ name: 'rnnkit training step', ms: whole.median, spread: whole.spread, tokps: tokens / (whole.median / 1e3),
      gflops: flops / whole.median / 1e6 });
    rows.push({ name: 'rnnkit sum of op timings', ms: sum, tokps: tokens / (sum / 1e3), gflops: flops / sum / 1e6,
      note: `step / sum = ${(whole.median / sum).toFixed(2)}x` });
    rows.push(...stageRows);
    const tf = loadTfjs();
    let tfRow = null;
    if (tf) {
      const fn = await tfjsStep(tf, T, B);
      // One TF.js step takes tens of seconds here: few samples, no warm-up (its cpu backend compiles nothing).
      const m = await harness.measure(fn, { warmup: 0, repeats: quick ? 1 : 2, minMs: 0 });
      tfRow = { name: `tfjs ${tf.version.tfjs} (cpu backend)`, ms: m.median, spread: m.spread, tokps: tokens / (m.median / 1e3),
        gflops: flops / m.median / 1e6, note: `rnnkit is ${(m.median / whole.median).toFixed(1)}x faster` };
      rows.push(tfRow);
    } else {
      rows.push({ name: 'tfjs (cpu backend)', note: 'missing: npm install --save-dev @tensorflow/tfjs' });
    }
    rows.push({ name: `FMA peak (${threads} threads)`, gflops: lim.fmaPeakGflops,
      note: `rnnkit step at ${(100 * (flops / whole.median / 1e6) / lim.fmaPeakGflops).toFixed(0)}% of peak` });
    harness.printTable(`training step, T=${T} B=${B} (${tokens} tokens), V=${V} H=${H} L=${L}; medians`, [
      { key: 'name', title: 'what' },
      { key: 'ms', title: 'ms', fmt: harness.fmt.ms },
      { key: 'spread', title: 'spread', fmt: harness.fmt.pct },
      { key: 'tokps', title: 'tokens/s', fmt: (v) => String(Math.round(v)) },
      { key: 'gflops', title: 'GFLOP/s', fmt: harness.fmt.num },
      { key: 'note', title: 'note' },
    ], rows);
    const payload = { T, B, V, H, L, tokens, limits: lim, rows };
    harness.save('train', payload, {
      title: 'demo-model training throughput', unit: 'tokens/s', label: 'name',
      series: [{ key: 'tokps', title: '' }],
      rows: rows.filter((r) => typeof r.tokps === 'number' && !r.name.startsWith('  ')),
    });
    return payload;
  },
};
