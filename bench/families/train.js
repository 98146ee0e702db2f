'use strict';
// Training throughput of the demo model (bench/shapes.js TRAIN: one-hot V -> 2-layer LSTM H ->
// Linear V; cross-entropy, gradient clipping, Adam) in tokens/s: one whole training step of ours,
// the sum of our own op timings measured one by one (the gap is the overhead between ops: JS glue,
// allocations, promise hops), the same step written with the nn modules and autograd (timed
// interleaved with the op-level step, so the ratio is the tape's cost; target <= 1.05), the
// examples/demo.js model (Embedding 64 instead of one-hot) through the modules, the same model
// and step in TensorFlow.js (cpu and wasm backends, bench/peers/tfjs.js) when it is installed,
// and the FLOP rate against the FMA peak measured in the same run. onnxruntime-node and oneDNN
// are not peers here: neither trains from Node.
const { TRAIN, trainFlopsPerToken } = require('../shapes');

const { V, H, L } = TRAIN;

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
  const train = rnnkit;
  const { Recurrent } = rnnkit;
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
// The same step through the nn modules: one-hot x -> nn.LSTM -> nn.Linear -> nn.crossEntropy,
// loss.backward(), clipping and Adam on model.parameters() (same seeds: the same model).
function moduleStep(rnnkit, T, B) {
  const { nn } = rnnkit;
  const lstm = new nn.LSTM({ inputSize: V, hiddenSize: H, numLayers: L, seed: 1 });
  const decoder = new nn.Linear({ inFeatures: H, outFeatures: V, seed: 2 });
  const params = [...lstm.parameters(), ...decoder.parameters()];
  const opt = new rnnkit.Adam(params, { lr: 1e-3 });
  const ids = randomIds(T * B + 1, 7);
  const x = oneHot(rnnkit.tensor, ids.subarray(0, T * B), [T, B, V]);
  const targets = ids.slice(1);
  return async () => {
    const { y } = await lstm.forward(x);
    const loss = await nn.crossEntropy(await decoder.forward(y), targets);
    await loss.backward();
    await rnnkit.clipGradNorm(params, 5);
    await opt.step();
    opt.zeroGrad();
  };
}

// examples/demo.js's model and step: Embedding(V, 64) -> LSTM -> Linear, the state carried over.
function demoModelStep(rnnkit, T, B) {
  const { nn } = rnnkit;
  const embed = new nn.Embedding({ numEmbeddings: V, embeddingDim: 64, seed: 3 });
  const lstm = new nn.LSTM({ inputSize: 64, hiddenSize: H, numLayers: L, seed: 1 });
  const decoder = new nn.Linear({ inFeatures: H, outFeatures: V, seed: 2 });
  const params = [...embed.parameters(), ...lstm.parameters(), ...decoder.parameters()];
  const opt = new rnnkit.Adam(params, { lr: 1e-3 });
  const ids = randomIds(T * B + 1, 7);
  const inputs = ids.slice(0, T * B);
  const targets = ids.slice(1);
  let state = {};
  return async () => {
    const { y, hy, cy } = await lstm.forward(await embed.forward(inputs, [T, B]), state);
    const loss = await nn.crossEntropy(await decoder.forward(y), targets);
    await loss.backward();
    await rnnkit.clipGradNorm(params, 5);
    await opt.step();
    opt.zeroGrad();
    state = { hx: hy.detach(), cx: cy.detach() };
  };
}

// Medians of a and b timed alternately, `rounds` calls each after one warm-up call of both: load
// that comes and goes hits both alike.
async function interleaved(harness, a, b, rounds) {
  await a();
  await b();
  if (typeof global.gc === 'function') global.gc();
  const ta = [];
  const tb = [];
  const time = async (fn, out) => {
    const t0 = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  };
  for (let r = 0; r < rounds; r++) {
    await time(a, ta);
    await time(b, tb);
  }
  return { a: harness.summarize(ta), b: harness.summarize(tb) };
}

module.exports = {
  description: 'tokens/s of the demo model\'s training step (2x128 LSTM char model): ours, sum of our ops, TensorFlow.js cpu/wasm',
  async run({ rnnkit, native, harness, peers, quick }) {
    const T = TRAIN.T;
    const B = quick ? TRAIN.quickB : TRAIN.B;
    const tokens = T * B;
    const threads = rnnkit.numThreads();
    const monitor = harness.noiseMonitor(native, threads);
    const opts = quick ? { warmup: 1, repeats: 3, minMs: 10 } : { warmup: 2, repeats: 7, minMs: 30 };
    const flops = trainFlopsPerToken() * tokens;
    const rows = [];
    const ours = await oursStep(rnnkit, T, B);
    const whole = await harness.measure(ours.step, opts);
    const stageRows = [];
    let sum = 0;
    for (const [name, fn] of Object.entries(ours.stages)) {
      const m = await harness.measure(fn, opts);
      sum += m.median;
      stageRows.push({ name: `  ${name}`, ms: m });
      monitor.note(m);
    }
    monitor.note(whole);
    const perf = (ms) => ({ tokps: tokens / (harness.med(ms) / 1e3), gflops: flops / harness.med(ms) / 1e6 });
    rows.push({ name: 'rnnkit training step', ms: whole, ...perf(whole) });
    rows.push({ name: 'rnnkit sum of op timings', ms: sum, ...perf(sum), note: `step / sum = ${(whole.median / sum).toFixed(2)}x` });
    rows.push(...stageRows);
    const paired = await interleaved(harness, ours.step, moduleStep(rnnkit, T, B), quick ? 5 : 21);
    monitor.note(paired.b);
    const tape = paired.b.median / paired.a.median;
    rows.push({ name: 'rnnkit nn modules, same step', ms: paired.b, ...perf(paired.b),
      note: `modules / op-level = ${tape.toFixed(3)}x (interleaved, op-level ${paired.a.median.toFixed(1)} ms; target <= 1.05)` });
    const demo = await harness.measure(demoModelStep(rnnkit, T, B), opts);
    monitor.note(demo);
    rows.push({ name: 'rnnkit nn modules, demo model (Embedding 64)', ms: demo, tokps: tokens / (demo.median / 1e3),
      note: `demo model / op-level one-hot step = ${(demo.median / whole.median).toFixed(2)}x time` });
    const tfPeer = peers.tfjsCpu.found || peers.tfjsWasm.found ? harness.tryRequire('./peers/tfjs') : null;
    const tf = tfPeer ? await tfPeer.load({ threads }) : null;
    for (const backend of ['cpu', 'wasm']) {
      const name = `TensorFlow.js ${backend}`;
      const peer = peers[backend === 'cpu' ? 'tfjsCpu' : 'tfjsWasm'];
      if (!peer.found || !tf || tf.missing || !tf.backends[backend] || !tf.backends[backend].ok) {
        const why = !peer.found ? peer.line.replace(/^[^:]*: /, '') : !tf ? 'bench/peers/tfjs.js did not load'
          : tf.missing ? tf.missing : `unavailable: ${tf.backends[backend] ? tf.backends[backend].reason : 'no backend'}`;
        rows.push({ name, note: why });
        continue;
      }
      // One TF.js cpu step takes seconds: few samples, and a budget for one call.
      const ids = new Int32Array(tokens + 1);
      let sd = 7;
      for (let k = 0; k < ids.length; k++) {
        sd = (Math.imul(sd, 1664525) + 1013904223) >>> 0;
        ids[k] = sd % V;
      }
      const m = await tfPeer.trainStep(backend, { T, B, V, H, L, ids },
        { measure: harness.measure, timing: { warmup: 1, repeats: quick ? 1 : 3, minMs: 0 }, budgetMs: quick ? 3000 : 30000 });
      if (m.error) {
        rows.push({ name, note: `failed: ${m.error}` });
        continue;
      }
      monitor.note(m);
      rows.push({ name: `${name} ${tf.version}`, ms: m, ...perf(m), vs: harness.speedup(whole, m),
        note: `rnnkit vs ${backend}: ${harness.speedup(whole, m).toFixed(1)}x${m.budgetExceeded ? ' (1 sample: over budget)' : ''}` });
    }
    const noise = monitor.finish();
    const peak = noise.fmaPeakBest;
    for (const r of rows) if (typeof r.gflops === 'number') r.peak = r.gflops / peak;
    rows.push({ name: `FMA peak (${threads} threads, best probe)`, gflops: peak });
    harness.printTable(`training step, T=${T} B=${B} (${tokens} tokens), V=${V} H=${H} L=${L}; ms per step, median (min–max); ` +
      '"rnnkit vs X" = X\'s time / ours', [
      { key: 'name', title: 'what' },
      { key: 'ms', title: 'ms', fmt: harness.fmt.ms },
      { key: 'tokps', title: 'tokens/s', fmt: (v) => String(Math.round(v)) },
      { key: 'gflops', title: 'GFLOP/s', fmt: harness.fmt.num },
      { key: 'peak', title: '% peak', fmt: harness.fmt.pct },
      { key: 'note', title: 'note' },
    ], rows);
    const brief = harness.briefRows(rows);
    const payload = { T, B, V, H, L, tokens, noise, limits: { fmaPeakGflops: peak }, moduleOverOpLevel: tape, rows: brief };
    const file = harness.save('train', payload, {
      title: 'demo-model training throughput (higher is better)', unit: 'tokens/s', label: 'name',
      series: [{ key: 'tokps', title: '' }],
      rows: rows.filter((r) => typeof r.tokps === 'number' && !r.name.startsWith('  ')),
    });
    process.stdout.write(`wrote ${file}\n`);
    return payload;
  },
};
