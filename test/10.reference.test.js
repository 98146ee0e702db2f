'use strict';
// The float64 reference (test/reference/recurrent.js) checked on its own: its backward against
// central finite differences for every mode and option, and its forward against properties of the
// contract in docs/recurrent-semantics.md that follow from the equations (closed forms, layouts,
// per-sequence independence, dropout composition).
const { expect } = require('chai');
const ref = require('./reference/recurrent');
const { gradcheck } = require('./reference/gradcheck');
const { randomFor } = require('./support/random');

const dot = (a, b) => {
  let sum = 0;
  for (let k = 0; k < a.length; k++) sum += a[k] * b[k];
  return sum;
};

// Lengths containing 0 and T in an order that is neither ascending nor descending.
function unsortedLengths(rng, T) {
  const mid = rng.int(1, T - 1);
  const orders = [[mid, 0, T], [T, 0, mid], [0, T, mid], [mid, T, 0]];
  return Int32Array.from(orders[rng.int(0, orders.length - 1)]);
}

// A full problem for cfg: inputs with random weights and states, plus output gradients.
function makeProblem(rng, cfg, { T = 3, B = 3, lengths = false, grads = 'all', dropoutOn = true } = {}) {
  const D = cfg.bidirectional ? 2 : 1;
  const R = cfg.projSize > 0 ? cfg.projSize : cfg.hiddenSize;
  const LD = (cfg.numLayers ?? 1) * D;
  const isLstm = cfg.mode === 'lstm';
  const inputs = {
    T, B, dropoutOn,
    x: rng.array(T * B * cfg.inputSize),
    hx: rng.array(LD * B * R),
    cx: isLstm ? rng.array(LD * B * cfg.hiddenSize) : undefined,
    seqLengths: lengths ? unsortedLengths(rng, T) : undefined,
    weights: rng.array(ref.weightsSize(cfg), -0.8, 0.8),
  };
  const g = {};
  if (grads === 'all' || grads === 'dy') g.dy = rng.array(T * B * D * R);
  if (grads === 'all' || grads === 'state') {
    g.dhy = rng.array(LD * B * R);
    if (isLstm) g.dcy = rng.array(LD * B * cfg.hiddenSize);
  }
  return { inputs, grads: g };
}

function loss(cfg, inputs, grads) {
  const { y, hy, cy } = ref.recurrentForward(cfg, inputs);
  let sum = 0;
  if (grads.dy) sum += dot(grads.dy, y);
  if (grads.dhy) sum += dot(grads.dhy, hy);
  if (grads.dcy) sum += dot(grads.dcy, cy);
  return sum;
}

const TOLERANCE = 1e-6;

// Finite differences for weights, x, hx and cx of one problem; fails with the worst element.
function checkGradients(cfg, problem) {
  const { inputs, grads } = problem;
  const analytic = ref.recurrentBackward(cfg, inputs, grads);
  const targets = [['weights', 'dweights'], ['x', 'dx'], ['hx', 'dhx']];
  if (cfg.mode === 'lstm') targets.push(['cx', 'dcx']);
  for (const [name, gradName] of targets) {
    const f = (v) => loss(cfg, { ...inputs, [name]: v }, grads);
    // A clipped cell has kinks where a cell value meets ±cellClip (test/reference/gradcheck.js).
    const worst = gradcheck(f, Float64Array.from(inputs[name]), analytic[gradName], { kinks: cfg.cellClip > 0, tolerance: TOLERANCE });
    expect(worst.error, `${gradName}[${worst.index}]: analytic ${worst.analytic} vs numeric ` +
      `${worst.numeric} for ${JSON.stringify(cfg)} lengths ${inputs.seqLengths}`).to.be.below(TOLERANCE);
  }
}

const { MODES } = require('./cases/recurrent');

const LSTM_EXTRAS = [];
for (const projSize of [0, 2]) {
  for (const cellClip of [0, 0.3]) {
    for (const peepholes of [false, true]) LSTM_EXTRAS.push({ projSize, cellClip, peepholes });
  }
}

// Layers × directions × lengths in full; the remaining switches rotate through the cases so each
// value meets each of the others somewhere in the matrix.
function gradientCases() {
  const cases = [];
  for (const base of MODES) {
    const extras = base.mode === 'lstm' ? LSTM_EXTRAS : [{}];
    let k = 0;
    for (const extra of extras) {
      for (const numLayers of [1, 2]) {
        for (const bidirectional of [false, true]) {
          for (const lengths of [false, true]) {
            k++;
            const skip = k % 3 === 0;
            const cfg = {
              ...base, ...extra, numLayers, bidirectional,
              inputSize: skip ? 3 : 2 + (k % 3), hiddenSize: 3,
              inputMode: skip ? 'skip' : 'linear',
              batchFirst: ((k >> 1) & 1) === 1,
              dropout: numLayers > 1 && (k % 4 !== 1) ? 0.4 : 0,
              seed: k * 7919,
            };
            cases.push({ cfg, lengths, grads: ['all', 'dy', 'state'][k % 3] });
          }
        }
      }
    }
  }
  return cases;
}

const describeCfg = (cfg) => Object.entries(cfg)
  .filter(([key, v]) => !['seed', 'inputSize', 'hiddenSize'].includes(key) && v !== 0 && v !== 'linear'
    && (v !== false || key === 'linearBeforeReset'))
  .map(([key, v]) => (v === true ? key : `${key}=${v}`)).join(' ');

describe('reference: backward against finite differences', function () {
  this.timeout(60000);
  for (const { cfg, lengths, grads } of gradientCases()) {
    const title = `${describeCfg(cfg)}${lengths ? ' seqLengths' : ''} grads=${grads}`;
    it(title, function () {
      const rng = randomFor(title);
      checkGradients(cfg, makeProblem(rng, cfg, { lengths, grads }));
    });
  }

  it('bidirectional 3-layer LSTM with projection, dropout and lengths 0 and T', function () {
    const rng = randomFor(this.test.title);
    const cfg = { mode: 'lstm', inputSize: 2, hiddenSize: 3, numLayers: 3, bidirectional: true,
      projSize: 2, peepholes: true, cellClip: 0.5, dropout: 0.3, seed: 12345 };
    checkGradients(cfg, makeProblem(rng, cfg, { T: 4, B: 3, lengths: true }));
  });
});

describe('reference: dropout hash', function () {
  // Values printed by a C++ program that includes native/kernels/dropout_hash.h:
  // dropout_uniform(seed, layer, index) * 2^24.
  const cases = [
    [0n, 0, 0n, 4727170],
    [1n, 0, 5n, 139664],
    [42n, 1, 123n, 181789],
    [0xdeadbeefcafef00dn, 2, 99999n, 14831113],
    [7n, 0, 1n << 40n, 483797],
    [0xffffffffffffffffn, 3, 17n, 14052990],
  ];
  it('matches dropout_uniform of native/kernels/dropout_hash.h', function () {
    for (const [seed, layer, index, bits] of cases) {
      expect(ref.dropoutUniform(seed, layer, index)).to.equal(bits / 16777216);
    }
  });

  it('matches mix64 of native/kernels/dropout_hash.h', function () {
    expect(ref.mix64(0n)).to.equal(0n);
    expect(ref.mix64(1n)).to.equal(6238072747940578789n);
    expect(ref.mix64(0x123456789abcdefn)).to.equal(12880392674509918508n);
    expect(ref.mix64(0xffffffffffffffffn)).to.equal(13029008266876403067n);
  });

  it('accepts plain-number seeds and indices', function () {
    expect(ref.dropoutUniform(42, 1, 123)).to.equal(181789 / 16777216);
  });
});

describe('reference: layout', function () {
  it('packs each (layer, direction) contiguously in the documented order', function () {
    const cfg = { mode: 'lstm', inputSize: 5, hiddenSize: 4, numLayers: 2, bidirectional: true,
      projSize: 3, peepholes: true };
    const slots = ref.paramOffsets(cfg);
    expect(slots.map((s) => [s.layer, s.direction])).to.deep.equal([[0, 0], [0, 1], [1, 0], [1, 1]]);
    let offset = 0;
    for (const s of slots) {
      const I = s.layer === 0 ? 5 : 2 * 3;
      const expected = [['w_ih', 16, I], ['w_hh', 16, 3], ['b_ih', 16, 1], ['b_hh', 16, 1],
        ['w_proj', 3, 4], ['w_peephole', 12, 1]];
      for (const [kind, rows, cols] of expected) {
        expect(s[kind], kind).to.deep.equal({ offset, rows, cols });
        offset += rows * cols;
      }
    }
    expect(ref.weightsSize(cfg)).to.equal(offset);
  });

  it('has no w_ih in layer 0 with skip input, and only there', function () {
    const cfg = { mode: 'gru', inputSize: 4, hiddenSize: 4, numLayers: 2, inputMode: 'skip' };
    const slots = ref.paramOffsets(cfg);
    expect(slots[0].w_ih).to.equal(undefined);
    expect(slots[0].w_hh).to.deep.equal({ offset: 0, rows: 12, cols: 4 });
    expect(slots[1].w_ih).to.deep.equal({ offset: 48 + 24, rows: 12, cols: 4 });
    expect(ref.weightsSize(cfg)).to.equal(48 + 24 + 48 + 48 + 24);
  });

  it('rejects options that do not apply', function () {
    expect(() => ref.weightsSize({ mode: 'gru', inputSize: 2, hiddenSize: 2, projSize: 1 })).to.throw();
    expect(() => ref.weightsSize({ mode: 'lstm', inputSize: 2, hiddenSize: 3, inputMode: 'skip' })).to.throw();
    expect(() => ref.weightsSize({ mode: 'lstm_x', inputSize: 2, hiddenSize: 3 })).to.throw();
  });
});

describe('reference: forward semantics', function () {
  it('LSTM with zero weights follows the closed form c\' = c/2, h\' = tanh(c\')/2', function () {
    const cfg = { mode: 'lstm', inputSize: 2, hiddenSize: 2 };
    const T = 3;
    const cx = Float64Array.from([0.8, -1.2]);
    const { y, hy, cy } = ref.recurrentForward(cfg, {
      T, B: 1, x: new Float64Array(T * 2).fill(0.7), cx,
      weights: new Float64Array(ref.weightsSize(cfg)),
    });
    const c = Float64Array.from(cx);
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < 2; j++) {
        c[j] /= 2;
        expect(y[t * 2 + j]).to.be.closeTo(0.5 * Math.tanh(c[j]), 1e-15);
      }
    }
    expect(Array.from(cy)).to.deep.equal(Array.from(c));
    expect(Array.from(hy)).to.deep.equal(Array.from(y.subarray(4, 6)));
  });

  it('GRU forms and RNN activations agree with hand-computed single steps', function () {
    // H = I = 1, one step from h = 0.5 with every weight w and every bias b.
    const x = 0.3;
    const h = 0.5;
    const w = 0.6;
    const b = -0.2;
    const sig = (v) => 1 / (1 + Math.exp(-v));
    const step = (cfg) => {
      const weights = new Float64Array(ref.weightsSize(cfg)).fill(w);
      for (const kind of ['b_ih', 'b_hh']) {
        const s = ref.paramOffsets(cfg)[0][kind];
        weights.fill(b, s.offset, s.offset + s.rows);
      }
      return ref.recurrentForward(cfg, { T: 1, B: 1, x: [x], hx: [h], weights }).hy[0];
    };
    const r = sig(w * x + b + w * h + b);
    const z = r;
    const nBefore = Math.tanh(w * x + b + r * (w * h + b));
    const nAfter = Math.tanh(w * x + b + w * (r * h) + b);
    const base = { inputSize: 1, hiddenSize: 1 };
    expect(step({ ...base, mode: 'gru' })).to.be.closeTo((1 - z) * nBefore + z * h, 1e-15);
    expect(step({ ...base, mode: 'gru', linearBeforeReset: false }))
      .to.be.closeTo((1 - z) * nAfter + z * h, 1e-15);
    expect(step({ ...base, mode: 'rnn_tanh' })).to.be.closeTo(Math.tanh(w * x + w * h + 2 * b), 1e-15);
    expect(step({ ...base, mode: 'rnn_relu' })).to.be.closeTo(Math.max(0, w * x + w * h + 2 * b), 1e-15);
  });

  it('runs each sequence on its own: padded steps are zero, states stop at each length', function () {
    const rng = randomFor(this.test.title);
    for (const mode of ['lstm', 'gru']) {
      const cfg = { mode, inputSize: 2, hiddenSize: 3, numLayers: 2, bidirectional: true };
      const T = 4;
      const B = 3;
      const { inputs } = makeProblem(rng, cfg, { T, B, lengths: true });
      const full = ref.recurrentForward(cfg, inputs);
      const F = 6;
      for (let b = 0; b < B; b++) {
        const len = inputs.seqLengths[b];
        const single = (a, size, count) => {
          const out = new Float64Array(count * size);
          for (let k = 0; k < count; k++) out.set(a.subarray((k * B + b) * size, (k * B + b + 1) * size), k * size);
          return out;
        };
        // The same sequence alone, cut to its length: a batch of one with no seqLengths.
        const alone = ref.recurrentForward(cfg, {
          T: len, B: 1, weights: inputs.weights,
          x: single(inputs.x, 2, len), hx: single(inputs.hx, 3, 4), cx: inputs.cx && single(inputs.cx, 3, 4),
        });
        for (let t = 0; t < T; t++) {
          const got = Array.from(full.y.subarray((t * B + b) * F, (t * B + b + 1) * F));
          const want = t < len ? Array.from(alone.y.subarray(t * F, (t + 1) * F)) : new Array(F).fill(0);
          got.forEach((v, k) => expect(v).to.be.closeTo(want[k], 1e-14));
        }
        const finalH = len === 0 ? single(inputs.hx, 3, 4) : alone.hy;
        expect(Array.from(single(full.hy, 3, 4))).to.deep.equal(Array.from(finalH));
        if (mode === 'lstm') {
          const finalC = len === 0 ? single(inputs.cx, 3, 4) : alone.cy;
          expect(Array.from(single(full.cy, 3, 4))).to.deep.equal(Array.from(finalC));
        }
      }
    }
  });

  it('batchFirst is the transposed layout of the same computation, forward and backward', function () {
    const rng = randomFor(this.test.title);
    const cfg = { mode: 'gru', inputSize: 2, hiddenSize: 3, bidirectional: true };
    const T = 3;
    const B = 2;
    const { inputs, grads } = makeProblem(rng, cfg, { T, B, lengths: false });
    const transpose = (a, F, fromBatchFirst) => {
      const out = new Float64Array(a.length);
      for (let t = 0; t < T; t++) {
        for (let b = 0; b < B; b++) {
          const src = (fromBatchFirst ? b * T + t : t * B + b) * F;
          const dst = (fromBatchFirst ? t * B + b : b * T + t) * F;
          for (let k = 0; k < F; k++) out[dst + k] = a[src + k];
        }
      }
      return out;
    };
    const seq = ref.recurrentForward(cfg, inputs);
    const bfCfg = { ...cfg, batchFirst: true };
    const bfInputs = { ...inputs, x: transpose(inputs.x, 2, false) };
    const bf = ref.recurrentForward(bfCfg, bfInputs);
    expect(Array.from(transpose(bf.y, 6, true))).to.deep.equal(Array.from(seq.y));
    expect(Array.from(bf.hy)).to.deep.equal(Array.from(seq.hy));
    const seqBack = ref.recurrentBackward(cfg, inputs, grads);
    const bfBack = ref.recurrentBackward(bfCfg, bfInputs, { ...grads, dy: transpose(grads.dy, 6, false) });
    expect(Array.from(transpose(bfBack.dx, 2, true))).to.deep.equal(Array.from(seqBack.dx));
    expect(Array.from(bfBack.dweights)).to.deep.equal(Array.from(seqBack.dweights));
  });

  it('skip input equals linear input with W_ih = I for every gate', function () {
    const rng = randomFor(this.test.title);
    for (const mode of ['lstm', 'gru', 'rnn_tanh']) {
      const H = 3;
      const skipCfg = { mode, inputSize: H, hiddenSize: H, inputMode: 'skip' };
      const linearCfg = { ...skipCfg, inputMode: 'linear' };
      const { inputs } = makeProblem(rng, skipCfg, { lengths: true });
      const G = ref.paramOffsets(linearCfg)[0].w_ih.rows / H;
      const identity = new Float64Array(G * H * H);
      for (let k = 0; k < G; k++) for (let j = 0; j < H; j++) identity[(k * H + j) * H + j] = 1;
      const linearWeights = Float64Array.from([...identity, ...inputs.weights]);
      const a = ref.recurrentForward(skipCfg, inputs);
      const b = ref.recurrentForward(linearCfg, { ...inputs, weights: linearWeights });
      a.y.forEach((v, k) => expect(v).to.be.closeTo(b.y[k], 1e-14));
    }
  });

  it('dropout scales kept outputs of inner layers by 1/(1-p) with the hash mask', function () {
    const rng = randomFor(this.test.title);
    const p = 0.5;
    const cfg = { mode: 'rnn_tanh', inputSize: 2, hiddenSize: 3, numLayers: 2, bidirectional: true,
      dropout: p, seed: 99 };
    const T = 3;
    const B = 2;
    const { inputs } = makeProblem(rng, cfg, { T, B, lengths: true });
    const slots = ref.paramOffsets(cfg);
    const layerWeights = (l) => inputs.weights.subarray(slots[2 * l].w_ih.offset,
      l === 0 ? slots[2].w_ih.offset : inputs.weights.length);
    const layerState = (l) => inputs.hx.subarray(2 * l * B * 3, 2 * (l + 1) * B * 3);
    const one = (l, x) => ref.recurrentForward({ ...cfg, numLayers: 1, inputSize: l === 0 ? 2 : 6 },
      { ...inputs, x, hx: layerState(l), weights: layerWeights(l) });
    const first = one(0, inputs.x);
    let dropped = 0;
    const masked = first.y.map((v, idx) => {
      const keep = ref.dropoutUniform(99, 0, idx) >= p;
      if (!keep) dropped++;
      return keep ? v / (1 - p) : 0;
    });
    expect(dropped).to.be.above(0);
    expect(dropped).to.be.below(masked.length);
    const expected = one(1, masked);
    const got = ref.recurrentForward(cfg, inputs);
    expect(Array.from(got.y)).to.deep.equal(Array.from(expected.y));
    const off = ref.recurrentForward(cfg, { ...inputs, dropoutOn: false });
    const noDropout = ref.recurrentForward({ ...cfg, dropout: 0 }, inputs);
    expect(Array.from(off.y)).to.deep.equal(Array.from(noDropout.y));
  });

  it('treats absent hx, cx, dy, dhy and dcy as zeros', function () {
    const rng = randomFor(this.test.title);
    const cfg = { mode: 'lstm', inputSize: 2, hiddenSize: 3, numLayers: 2, projSize: 2 };
    const { inputs } = makeProblem(rng, cfg, { lengths: true });
    const zeros = { ...inputs, hx: new Float64Array(inputs.hx.length), cx: new Float64Array(inputs.cx.length) };
    const absent = { ...inputs, hx: undefined, cx: undefined };
    expect(ref.recurrentForward(cfg, absent)).to.deep.equal(ref.recurrentForward(cfg, zeros));
    const dy = rng.array(3 * 3 * 2);
    const withZeros = ref.recurrentBackward(cfg, inputs,
      { dy, dhy: new Float64Array(inputs.hx.length), dcy: new Float64Array(inputs.cx.length) });
    expect(ref.recurrentBackward(cfg, inputs, { dy })).to.deep.equal(withZeros);
    const nothing = ref.recurrentBackward(cfg, inputs);
    expect(nothing.dweights.every((v) => v === 0)).to.equal(true);
  });

  it('rejects lengths outside 0..T and weights of the wrong size', function () {
    const cfg = { mode: 'rnn_tanh', inputSize: 1, hiddenSize: 1 };
    const base = { T: 2, B: 1, x: [1, 2], weights: new Float64Array(4) };
    expect(() => ref.recurrentForward(cfg, { ...base, seqLengths: [3] })).to.throw(/seqLengths/);
    expect(() => ref.recurrentForward(cfg, { ...base, seqLengths: [-1] })).to.throw(/seqLengths/);
    expect(() => ref.recurrentForward(cfg, { ...base, weights: new Float64Array(5) })).to.throw(/weights/);
  });
});
