'use strict';
// The Recurrent class beyond numerics: weight interop and parameter access through the op, async
// and sync agreement, the event loop during a long run, concurrent runs on shared inputs, dropout
// seeding, gradient accumulation, what `lastRun` reports, edge sizes, and that the kernels write
// every output element (outputs poisoned with NaN through the raw binding).
const { Recurrent } = require('../dist/recurrent');
const { native } = require('../dist/native');
const { randomFor } = require('./support/random');

const f32 = (a) => Float32Array.from(a);
const same = (a, b, what) => {
  expect(a.length, `${what} length`).to.equal(b.length);
  for (let k = 0; k < a.length; k++) {
    if (!Object.is(a[k], b[k])) throw new Error(`${what}[${k}]: ${a[k]} !== ${b[k]}`);
  }
};

// An op with a random input of its shape; lengths with 0 and T when asked.
function problem(rng, cfg, { T = 5, B = 3, lengths = false } = {}) {
  const op = new Recurrent({ ...cfg, seed: rng.int(0, 2 ** 30) });
  const x = rnnkit.tensor(f32(rng.array(T * B * cfg.inputSize)), cfg.batchFirst ? [B, T, cfg.inputSize] : [T, B, cfg.inputSize]);
  const LD = (cfg.numLayers ?? 1) * (cfg.bidirectional ? 2 : 1);
  const R = cfg.projSize || cfg.hiddenSize;
  const options = { hx: rnnkit.tensor(f32(rng.array(LD * B * R)), [LD, B, R]) };
  if (cfg.mode === 'lstm') options.cx = rnnkit.tensor(f32(rng.array(LD * B * cfg.hiddenSize)), [LD, B, cfg.hiddenSize]);
  if (lengths) options.seqLengths = Int32Array.from({ length: B }, (_, b) => [T, 0, 2][b % 3]);
  return { op, x, options, T, B, LD, R };
}

describe('Recurrent: weights interop and parameters', function () {
  const formats = [
    ['pytorch', { mode: 'lstm', inputSize: 3, hiddenSize: 5, numLayers: 2, bidirectional: true, projSize: 4 }],
    ['pytorch', { mode: 'gru', inputSize: 4, hiddenSize: 3, numLayers: 2 }],
    ['onnx', { mode: 'lstm', inputSize: 3, hiddenSize: 4, bidirectional: true, peepholes: true }],
    ['onnx', { mode: 'gru', inputSize: 3, hiddenSize: 4, numLayers: 2, linearBeforeReset: false }],
    ['keras', { mode: 'lstm', inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true }],
    ['keras', { mode: 'gru', inputSize: 2, hiddenSize: 3, linearBeforeReset: true }],
    ['keras', { mode: 'rnn_tanh', inputSize: 3, hiddenSize: 4, numLayers: 2 }],
  ];
  for (const [format, cfg] of formats) {
    it(`${format} ${cfg.mode}: import(export(w)) is the identity and carries the op's behaviour`, function () {
      const rng = randomFor(this.test.title);
      const { op, x, options } = problem(rng, cfg);
      op.weights.data.set(f32(rng.array(op.weights.size)));
      const record = op.exportWeights(format);
      const other = new Recurrent({ ...cfg, seed: op.seed + 1 });
      expect(other.weights.data).to.not.deep.equal(op.weights.data);
      // Tensors are accepted as record values too.
      const asTensors = Object.fromEntries(Object.entries(record).map(([k, v]) => [k, rnnkit.tensor(v)]));
      other.importWeights(format, format === 'keras' ? asTensors : record);
      if (format === 'keras' && !(cfg.mode === 'gru' && cfg.linearBeforeReset)) {
        // Keras merges the two biases; compare what survives: the exported record.
        same(Object.values(other.exportWeights(format)).flatMap((a) => [...a]),
          Object.values(record).flatMap((a) => [...a]), 'record');
      } else {
        same(other.weights.data, op.weights.data, 'weights');
      }
      const a = op.forwardSync(x, options);
      const b = other.forwardSync(x, options);
      const tol = format === 'keras' ? 1e-6 : 0;
      for (let k = 0; k < a.y.size; k++) expect(Math.abs(a.y.data[k] - b.y.data[k])).to.be.at.most(tol);
    });
  }

  it('getParam returns a copy of each block and gate; setParam writes exactly that block', function () {
    const rng = randomFor(this.test.title);
    const cfg = { mode: 'lstm', inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, projSize: 2, peepholes: true };
    const { op, x, options } = problem(rng, cfg);
    const before = op.weights.data.slice();
    const whh = op.getParam({ layer: 1, direction: 1, kind: 'w_hh' });
    expect(whh.shape).to.deep.equal([16, 2]);
    const gate = op.getParam({ layer: 1, direction: 1, kind: 'w_hh', gate: 'g' });
    expect(gate.shape).to.deep.equal([4, 2]);
    same(gate.data, whh.data.subarray(16, 24), 'gate g rows');
    expect(op.getParam({ layer: 0, direction: 0, kind: 'b_ih' }).shape).to.deep.equal([16]);
    expect(op.getParam({ layer: 0, direction: 1, kind: 'w_proj' }).shape).to.deep.equal([2, 4]);
    expect(op.getParam({ layer: 0, direction: 0, kind: 'w_peephole', gate: 'o' }).shape).to.deep.equal([4]);
    gate.data.fill(123);
    same(op.weights.data, before, 'weights after writing a getParam copy');

    const y0 = op.forwardSync(x, options).y.data;
    const values = f32(rng.array(8));
    op.setParam({ layer: 1, direction: 1, kind: 'w_hh', gate: 'g' }, values);
    same(op.getParam({ layer: 1, direction: 1, kind: 'w_hh', gate: 'g' }).data, values, 'read back');
    const changed = op.weights.data;
    let differing = 0;
    for (let k = 0; k < before.length; k++) if (changed[k] !== before[k]) differing++;
    expect(differing).to.be.within(1, 8);
    // The op uses what was set: same output as an op whose packed buffer holds the same values.
    const twin = new Recurrent({ ...cfg, seed: 7 });
    twin.weights.data.set(changed);
    same(op.forwardSync(x, options).y.data, twin.forwardSync(x, options).y.data, 'y after setParam');
    expect(op.forwardSync(x, options).y.data).to.not.deep.equal(y0);
    op.setParam({ layer: 1, direction: 1, kind: 'w_hh', gate: 'g' }, rnnkit.tensor(before.slice(0, 8).fill(0)));
    op.setParam({ layer: 1, direction: 1, kind: 'w_hh' }, rnnkit.tensor(whh.data.slice(), [16, 2]));
    same(op.forwardSync(x, options).y.data, y0, 'y after restoring');
  });
});

describe('Recurrent: execution', function () {
  it('async and sync give identical results, forward and backward', async function () {
    const rng = randomFor(this.test.title);
    const cfg = { mode: 'gru', inputSize: 6, hiddenSize: 9, numLayers: 2, bidirectional: true, dropout: 0.25 };
    const { op, x, options } = problem(rng, cfg, { lengths: true });
    const opts = { ...options, training: true, dropoutSeed: 99 };
    const a = await op.forward(x, opts);
    const b = op.forwardSync(x, opts);
    for (const k of ['y', 'hy']) same(a[k].data, b[k].data, k);
    const dy = rnnkit.tensor(f32(rng.array(a.y.size)), a.y.shape);
    const ga = await op.backward(a.saved, { dy });
    const gb = op.backwardSync(b.saved, { dy });
    for (const k of ['dx', 'dhx', 'dweights']) same(ga[k].data, gb[k].data, k);
  });

  it('an async forward and backward never block the event loop', async function () {
    const rng = randomFor(this.test.title);
    const cfg = { mode: 'lstm', inputSize: 128, hiddenSize: 128 };
    // Grow T until the sync run takes long enough that ticks are meaningful on a busy machine.
    let T = 16;
    let p;
    for (;;) {
      p = problem(rng, cfg, { T, B: 16 });
      const t0 = process.hrtime.bigint();
      const f = p.op.forwardSync(p.x, { ...p.options, training: true });
      p.op.backwardSync(f.saved, { dhy: f.hy });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (ms >= 150 || T >= 4096) break;
      T *= 2;
    }
    let ticks = 0;
    const timer = setInterval(() => ticks++, 2);
    try {
      const f = await p.op.forward(p.x, { ...p.options, training: true });
      const afterForward = ticks;
      await p.op.backward(f.saved, { dhy: f.hy });
      expect(afterForward, 'timer ticks during the forward').to.be.at.least(3);
      expect(ticks - afterForward, 'timer ticks during the backward').to.be.at.least(3);
    } finally {
      clearInterval(timer);
    }
  });

  it('100 concurrent forwards (and backwards) on shared inputs give identical results', async function () {
    const rng = randomFor(this.test.title);
    const cfg = { mode: 'lstm', inputSize: 8, hiddenSize: 40, numLayers: 2, bidirectional: true, projSize: 24 };
    const { op, x, options } = problem(rng, cfg, { T: 12, B: 5, lengths: true });
    const want = op.forwardSync(x, { ...options, training: true });
    const dy = rnnkit.tensor(f32(rng.array(want.y.size)), want.y.shape);
    const wantG = op.backwardSync(want.saved, { dy });
    const runs = [];
    for (let k = 0; k < 100; k++) {
      runs.push(k % 4 === 0
        ? op.forward(x, { ...options, training: true }).then((f) => op.backward(f.saved, { dy }))
        : op.forward(x, options));
    }
    const results = await Promise.all(runs);
    results.forEach((r, k) => {
      if (k % 4 === 0) {
        for (const key of ['dx', 'dhx', 'dcx', 'dweights']) same(r[key].data, wantG[key].data, `${key} of run ${k}`);
      } else {
        for (const key of ['y', 'hy', 'cy']) same(r[key].data, want[key].data, `${key} of run ${k}`);
      }
    });
  });

  it('dropout: fresh masks per training call, reproducible with dropoutSeed, off at inference or on request', function () {
    const rng = randomFor(this.test.title);
    const cfg = { mode: 'rnn_tanh', inputSize: 4, hiddenSize: 16, numLayers: 3, dropout: 0.5 };
    const { op, x, options } = problem(rng, cfg);
    const inference = op.forwardSync(x, options);
    expect(inference.saved).to.equal(null);
    expect(op.lastRun.dropout).to.equal(0);
    const a = op.forwardSync(x, { ...options, training: true });
    const seedA = op.lastRun.dropoutSeed;
    const b = op.forwardSync(x, { ...options, training: true });
    expect(op.lastRun.dropoutSeed).to.not.equal(seedA);
    expect(a.y.data).to.not.deep.equal(b.y.data);
    same(op.forwardSync(x, { ...options, training: true, dropoutSeed: seedA }).y.data, a.y.data, 'replayed mask');
    // Gradients without dropout (attribution use): training on, dropout off equals inference.
    const noDrop = op.forwardSync(x, { ...options, training: true, dropout: false });
    same(noDrop.y.data, inference.y.data, 'training without dropout');
    expect(noDrop.saved).to.not.equal(null);
    // Dropout at inference on request (Monte Carlo dropout).
    expect(op.forwardSync(x, { ...options, dropout: true }).y.data).to.not.deep.equal(inference.y.data);
    expect(op.lastRun.dropout).to.equal(0.5);
  });

  it('accumulate adds into dweights across micro-batches; the default overwrites', function () {
    const rng = randomFor(this.test.title);
    const cfg = { mode: 'gru', inputSize: 3, hiddenSize: 5, linearBeforeReset: false };
    const { op, x, options } = problem(rng, cfg);
    const f = op.forwardSync(x, { ...options, training: true });
    const dy = rnnkit.tensor(f32(rng.array(f.y.size)), f.y.shape);
    const once = op.backwardSync(f.saved, { dy }).dweights.data;
    const acc = rnnkit.zeros(op.weights.shape);
    op.backwardSync(f.saved, { dy, dweights: acc, accumulate: true });
    op.backwardSync(f.saved, { dy, dweights: acc, accumulate: true });
    for (let k = 0; k < once.length; k++) expect(acc.data[k]).to.be.closeTo(2 * once[k], 1e-6 * (1 + Math.abs(once[k])));
    op.backwardSync(f.saved, { dy, dweights: acc });
    same(acc.data, once, 'overwritten dweights');
  });

  it('lastRun and algorithm report the device, ISA path and algorithm that ran', async function () {
    const rng = randomFor(this.test.title);
    const { op, x, options } = problem(rng, { mode: 'rnn_relu', inputSize: 2, hiddenSize: 3 });
    expect(op.lastRun).to.equal(null);
    await op.forward(x, options);
    const info = rnnkit.backendInfo();
    expect(op.lastRun).to.include({ op: 'forward', device: 'cpu', isa: info.isa, training: false });
    expect(op.lastRun.algorithm).to.be.a('string').and.not.equal('');
    const T = op.batchFirst ? x.shape[1] : x.shape[0];
    const B = op.batchFirst ? x.shape[0] : x.shape[1];
    expect(op.algorithmFor(T, B).isa).to.equal(info.isa);
    expect(op.algorithm).to.equal('auto');
    if (op.device === 'cpu') {
      expect(op.lastRun.fallback).to.equal(null);
      expect(op.algorithmFor(T, B)).to.include({ device: 'cpu', algorithm: op.lastRun.algorithm, fallback: null });
    }
    const f = op.forwardSync(x, { ...options, training: true });
    op.backwardSync(f.saved, {});
    expect(op.lastRun).to.include({ op: 'backward', training: true });
  });

  it('savedSize, recordShapes and the default device come from the public entry point', function () {
    const cfg = { mode: 'gru', inputSize: 3, hiddenSize: 5, numLayers: 2, bidirectional: true, seed: 4, device: 'cpu' };
    const op = new rnnkit.Recurrent(cfg);
    const { native } = require('../dist/native');
    expect(op.savedSize(7, 3)).to.equal(native().recurrentSavedSize(op.config.native, 7, 3)).and.be.above(0);
    expect(op.savedSize(0, 3)).to.equal(0);
    expectCode(() => op.savedSize(-1, 3), 'ERR_RNNKIT_ARG');
    expect(op.recordShapes('pytorch')).to.deep.equal(rnnkit.recordShapes(cfg, 'pytorch'));
    const record = op.exportWeights('onnx');
    for (const [name, shape] of Object.entries(op.recordShapes('onnx'))) {
      expect(record[name].length, name).to.equal(shape.reduce((a, b) => a * b, 1));
    }
    expect(rnnkit.defaultDevice()).to.equal(rnnkit.backendInfo().defaultDevice);
    expect(rnnkit.defaultDevice()).to.equal(cudaAvailable() && process.env.RNNKIT_DEVICE !== 'cpu' ? 'cuda:0' : 'cpu');
  });

  it('T = 0 and B = 0: states pass through, gradients of the initial state are dhy, weights get zero', function () {
    const rng = randomFor(this.test.title);
    const cfg = { mode: 'lstm', inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true };
    for (const [T, B] of [[0, 3], [4, 0]]) {
      const { op, x, options, LD } = problem(rng, cfg, { T, B });
      const f = op.forwardSync(x, { ...options, training: true });
      expect(f.y.shape).to.deep.equal([T, B, 8]);
      same(f.hy.data, options.hx.data, 'hy');
      same(f.cy.data, options.cx.data, 'cy');
      const dhy = rnnkit.tensor(f32(rng.array(LD * B * 4)), [LD, B, 4]);
      const g = op.backwardSync(f.saved, { dhy, dweights: rnnkit.full(op.weights.shape, NaN) });
      same(g.dhx.data, dhy.data, 'dhx');
      expect(g.dcx.data.every((v) => v === 0)).to.equal(true);
      expect(g.dweights.data.every((v) => v === 0)).to.equal(true);
      expect(g.dx.shape).to.deep.equal([T, B, 3]);
    }
  });

  it('the kernels write every output element (outputs poisoned with NaN through the raw binding)', function () {
    const rng = randomFor(this.test.title);
    const cases = [
      { mode: 'lstm', inputSize: 3, hiddenSize: 5, numLayers: 2, bidirectional: true, projSize: 3, peepholes: true, cellClip: 0.5 },
      { mode: 'gru', inputSize: 3, hiddenSize: 5, numLayers: 3, linearBeforeReset: false, batchFirst: true },
      { mode: 'rnn_relu', inputSize: 5, hiddenSize: 5, inputMode: 'skip', bidirectional: true },
    ];
    for (const cfg of cases) {
      const { op, x, options, T, B, LD, R } = problem(rng, cfg, { lengths: true });
      const want = op.forwardSync(x, { ...options, training: true });
      const dy = rnnkit.tensor(f32(rng.array(want.y.size)), want.y.shape);
      const wantG = op.backwardSync(want.saved, { dy });
      const lstm = cfg.mode === 'lstm';
      const nc = {
        mode: cfg.mode, inputSize: cfg.inputSize, hiddenSize: cfg.hiddenSize, numLayers: cfg.numLayers ?? 1,
        bidirectional: Boolean(cfg.bidirectional), skipInput: cfg.inputMode === 'skip', projSize: cfg.projSize ?? 0,
        cellClip: cfg.cellClip ?? 0, peepholes: Boolean(cfg.peepholes), linearBeforeReset: cfg.linearBeforeReset ?? true,
      };
      const nan = (n) => new Float32Array(n).fill(NaN);
      const y = nan(want.y.size);
      const hy = nan(want.hy.size);
      const cy = lstm ? nan(want.cy.size) : null;
      const saved = nan(native().recurrentSavedSize(nc, T, B));
      const hx = options.hx.data;
      const cx = lstm ? options.cx.data : null;
      native().recurrentForward({
        config: nc, T, B, batchFirst: Boolean(cfg.batchFirst), x: x.data, hx, cx, seqLengths: options.seqLengths,
        weights: op.weights.data, dropout: 0, seed: 0, y, hy, cy, saved, async: false,
      });
      same(y, want.y.data, 'y');
      same(hy, want.hy.data, 'hy');
      if (lstm) same(cy, want.cy.data, 'cy');
      const dx = nan(x.size);
      const dhx = nan(LD * B * R);
      const dcx = lstm ? nan(LD * B * cfg.hiddenSize) : null;
      const dw = nan(op.weights.size);
      native().recurrentBackward({
        config: nc, T, B, batchFirst: Boolean(cfg.batchFirst), x: x.data, hx, cx, seqLengths: options.seqLengths,
        weights: op.weights.data, dropout: 0, seed: 0, y, saved, dy: dy.data, dhy: null, dcy: null, dx, dhx, dcx,
        dweights: dw, accumulate: false, async: false,
      });
      same(dx, wantG.dx.data, 'dx');
      same(dhx, wantG.dhx.data, 'dhx');
      if (lstm) same(dcx, wantG.dcx.data, 'dcx');
      same(dw, wantG.dweights.data, 'dweights');
    }
  });

  describe('@gpu device fallback', function () {
    it('an op made for CUDA runs CPU inputs on the CPU (saying so) and CUDA inputs on the GPU', async function () {
      skipWithoutGpu(this);
      const rng = randomFor(this.test.title);
      const cfg = { mode: 'lstm', inputSize: 3, hiddenSize: 4, device: 'cuda' };
      const { op, x, options } = problem(rng, cfg);
      expect(op.device).to.equal('cuda:0');
      const want = op.forwardSync(x, { ...options, training: true });
      expect(op.lastRun.device).to.equal('cpu');
      expect(op.lastRun.fallback).to.be.a('string');
      const xg = x.to('cuda');
      const f = await op.forward(xg, { hx: options.hx.to('cuda'), cx: options.cx.to('cuda'), training: true });
      expect(f.y.device).to.equal('cuda:0');
      // CUDA inputs run the GPU kernels (float32 with another summation order): close, not equal.
      expect(op.lastRun.device).to.equal('cuda:0');
      const got = await f.y.read();
      const scale = Math.max(1e-6, ...Array.from(want.y.data, Math.abs));
      for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want.y.data[i])).to.be.at.most(1e-4 * scale);
      const g = await op.backward(f.saved, { dhy: f.hy });
      expect(g.dx.device).to.equal('cuda:0');
      expect(g.dweights.device).to.equal('cpu');
    });
  });
});
