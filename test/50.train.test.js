'use strict';
// Training: optimizer steps and losses against float64 references (fresh random inputs, seed in
// every failure message), loss gradients by finite differences, exact clipping and schedules,
// Linear, truncated BPTT, a tiny task that must learn, checkpoints that resume bit for bit,
// safetensors, and typed errors.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { makeRandom } = require('./reference/random');
const { expectClose, closeness } = require('./support/close');
const { randomF32 } = require('./support/random');
const { numericGradient, compareGradients } = require('./reference/gradcheck');
const ref = require('./reference/train');
const { native } = require('../dist/native');
const train = require('../dist/train');
const { Recurrent } = require('../dist/recurrent');

const { tensor } = rnnkit;


// The vector path of the optimizer steps: AVX2 (also on AVX-512 CPUs) or NEON.
const vectorIsa = () => availableIsas().find((isa) => isa === 'avx2' || isa === 'neon');

describe('training: optimizers', function () {
  // n = 1003 covers the 8-wide loop and its scalar tail; 70001 spreads over the compute pool.
  const cases = [
    { name: 'SGD', make: (ps) => new train.SGD(ps, { lr: 0.1 }), ref: (p, g, s, nudge) => ref.sgdStep(p, g, s, { nudge, lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false }) },
    {
      name: 'SGD momentum, dampening, weight decay',
      make: (ps) => new train.SGD(ps, { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 }),
      ref: (p, g, s, nudge) => ref.sgdStep(p, g, s, { nudge, lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.01, nesterov: false }),
    },
    {
      name: 'SGD Nesterov',
      make: (ps) => new train.SGD(ps, { lr: 0.05, momentum: 0.8, nesterov: true }),
      ref: (p, g, s, nudge) => ref.sgdStep(p, g, s, { nudge, lr: 0.05, momentum: 0.8, dampening: 0, weightDecay: 0, nesterov: true }),
    },
    { name: 'Adam', make: (ps) => new train.Adam(ps, { lr: 0.01 }), ref: (p, g, s, nudge) => ref.adamStep(p, g, s, { nudge, lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false }, false) },
    {
      name: 'Adam amsgrad, L2 weight decay',
      make: (ps) => new train.Adam(ps, { lr: 0.02, betas: [0.8, 0.99], weightDecay: 0.1, amsgrad: true, eps: 1e-6 }),
      ref: (p, g, s, nudge) => ref.adamStep(p, g, s, { nudge, lr: 0.02, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.1, amsgrad: true }, false),
    },
    {
      name: 'AdamW',
      make: (ps) => new train.AdamW(ps, { lr: 0.01, weightDecay: 0.05 }),
      ref: (p, g, s, nudge) => ref.adamStep(p, g, s, { nudge, lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.05, amsgrad: false }, true),
    },
    {
      name: 'Adagrad lr decay, weight decay, initial accumulator',
      make: (ps) => new train.Adagrad(ps, { lr: 0.1, lrDecay: 0.01, weightDecay: 0.02, initialAccumulatorValue: 0.1 }),
      ref: (p, g, s, nudge) => ref.adagradStep(p, g, s, { nudge, lr: 0.1, lrDecay: 0.01, weightDecay: 0.02, initialAccumulatorValue: 0.1, eps: 1e-10 }),
    },
    { name: 'RMSprop', make: (ps) => new train.RMSprop(ps, { lr: 0.01 }), ref: (p, g, s, nudge) => ref.rmspropStep(p, g, s, { nudge, lr: 0.01, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0, centered: false }) },
    {
      name: 'RMSprop centered, momentum, weight decay',
      make: (ps) => new train.RMSprop(ps, { lr: 0.01, alpha: 0.9, momentum: 0.5, centered: true, weightDecay: 0.01 }),
      ref: (p, g, s, nudge) => ref.rmspropStep(p, g, s, { nudge, lr: 0.01, alpha: 0.9, eps: 1e-8, weightDecay: 0.01, momentum: 0.5, centered: true }),
    },
  ];

  for (const c of cases) {
    it(`${c.name}: three steps match the float64 reference`, async function () {
      const rng = makeRandom();
      const msg = `${c.name}, seed ${rng.seed}`;
      for (const n of [1003, 70001]) {
        const p = tensor(randomF32(rng, n));
        const opt = c.make([p]);
        // The reference runs three times: as is, and with the weight-decayed gradient moved to
        // either end of its float32 rounding (see decayed() in test/reference/train.js); how far
        // those move an element is added to its tolerance (zero without weight decay).
        const runs = [0, -1, 1].map((nudge) => ({ nudge, want: Float64Array.from(p.data), state: { step: 0 } }));
        for (let s = 0; s < 3; s++) {
          const g = tensor(randomF32(rng, n));
          if (s === 1) opt.stepSync([g]);
          else await opt.step([g]);
          for (const run of runs) {
            const r = c.ref(run.want, g.data, run.state, run.nudge);
            run.want = r.p;
            run.state = { ...r.state, step: s + 1 };
          }
        }
        const want = runs[0].want;
        const slack = want.map((w, i) => Math.max(Math.abs(runs[1].want[i] - w), Math.abs(runs[2].want[i] - w)));
        expectClose(p.data, want, { abs: 1e-5, rel: 1e-5, what: `${msg}, n ${n}`, slack: slack });
      }
    });
  }

  it('the vector (AVX2 or NEON) and portable paths give identical bits', function () {
    if (!vectorIsa()) this.skip();
    const rng = makeRandom();
    const n = 517;
    const p0 = randomF32(rng, n);
    const grads = [randomF32(rng, n), randomF32(rng, n)];
    for (const c of cases) {
      const run = (isa) => withIsa(isa, () => {
        const p = tensor(p0.slice());
        const opt = c.make([p]);
        for (const g of grads) opt.stepSync([tensor(g)]);
        return p.data;
      });
      const a = run(vectorIsa());
      const b = run('portable');
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), `${c.name}, seed ${rng.seed}`).to.equal(true);
    }
  });

  it('param groups override defaults; null gradients skip; Map gradients work', function () {
    const a = tensor([1, 2]);
    const b = tensor([3, 4]);
    const opt = new train.SGD([{ params: [a], lr: 0.5 }, { params: [b] }], { lr: 0.1 });
    opt.stepSync([tensor([1, 1]), null]);
    expect(Array.from(a.data)).to.deep.equal([0.5, 1.5]);
    expect(Array.from(b.data)).to.deep.equal([3, 4]);
    opt.stepSync(new Map([[b, tensor([1, -1])]]));
    expect(Array.from(b.data)).to.deep.equal([Math.fround(3 - 0.1), Math.fround(4 + 0.1)]);
  });
});

describe('training: losses', function () {
  it('cross-entropy over [T, B, V] with mask and ignore index matches the float64 reference', async function () {
    const rng = makeRandom();
    for (const mean of [true, false]) {
      const T = 5, B = 7, V = 37, N = T * B;
      const logits = randomF32(rng, N * V, -4, 4);
      const targets = Int32Array.from({ length: N }, () => rng.int(0, V - 1));
      targets[3] = -100;
      targets[10] = -100;
      const mask = Float32Array.from({ length: N }, (_, r) => (r % 6 === 5 ? 0 : 1));
      mask[4] = 0.5;
      const reduction = mean ? 'mean' : 'sum';
      const got = await train.crossEntropy(tensor(logits, [T, B, V]), targets, { mask, reduction });
      const want = ref.crossEntropy(logits, targets, V, { mask, mean });
      const msg = `seed ${rng.seed}, ${reduction}`;
      expect(Math.abs(got.loss - want.loss) / Math.abs(want.loss), msg).to.be.below(1e-6);
      expect(got.dlogits.shape).to.deep.equal([T, B, V]);
      expectClose(got.dlogits.data, want.dlogits, { abs: 1e-7, rel: 1e-5, what: msg });
      const sync = train.crossEntropySync(tensor(logits, [N, V]), targets, { mask, reduction });
      expect(sync.loss).to.equal(got.loss);
    }
  });

  it('cross-entropy gradient agrees with finite differences of the float64 loss', function () {
    const rng = makeRandom();
    const N = 6, V = 5;
    const logits = randomF32(rng, N * V, -2, 2);
    const targets = Int32Array.from({ length: N }, () => rng.int(0, V - 1));
    targets[2] = 7;
    const mask = Float32Array.from([1, 1, 1, 0, 1, 0.25]);
    const got = train.crossEntropySync(tensor(logits, [N, V]), targets, { mask, ignoreIndex: 7 });
    const f = (x) => ref.crossEntropy(x, targets, V, { mask, ignoreIndex: 7 }).loss;
    const numeric = numericGradient(f, Float64Array.from(logits));
    const worst = compareGradients(got.dlogits.data, numeric, 1e-3);
    expect(worst.error, `seed ${rng.seed}, element ${worst.index}`).to.be.below(1e-4);
  });

  it('cross-entropy is stable for huge logits, overwrites every gradient, and is 0 when every row is masked', function () {
    const rng = makeRandom();
    const N = 4, V = 9;
    const logits = randomF32(rng, N * V, -3, 3);
    const shifted = logits.map((v) => v + 5e4);
    const targets = Int32Array.from([1, 2, 3, 4]);
    const a = train.crossEntropySync(tensor(logits, [N, V]), targets);
    const b = train.crossEntropySync(tensor(shifted, [N, V]), targets);
    expect(Number.isFinite(b.loss)).to.equal(true);
    // Shifting by 5e4 costs the logits their low bits (ulp 2^-8), nothing else.
    expect(Math.abs(a.loss - b.loss), `seed ${rng.seed}`).to.be.below(1e-2);
    const poisoned = new Float32Array(N * V).fill(NaN);
    const loss = native().softmaxCrossEntropy(logits, targets, Float32Array.from([1, 0, 1, 0]), poisoned, N, V, -100, true, false);
    expect(loss).to.be.a('number');
    expect(poisoned.every(Number.isFinite)).to.equal(true);
    expect(Array.from(poisoned.subarray(V, 2 * V)).every((v) => v === 0)).to.equal(true);
    const none = train.crossEntropySync(tensor(logits, [N, V]), Int32Array.from([-100, -100, -100, -100]));
    expect(none.loss).to.equal(0);
    expect(none.dlogits.data.every((v) => v === 0)).to.equal(true);
  });

  it('MSE and its gradient match the reference and finite differences', async function () {
    const rng = makeRandom();
    const n = 20013;
    const y = randomF32(rng, n);
    const t = randomF32(rng, n);
    for (const mean of [true, false]) {
      const got = await train.mseLoss(tensor(y, [7, 2859]), tensor(t, [7, 2859]), { reduction: mean ? 'mean' : 'sum' });
      const want = ref.mse(y, t, mean);
      expect(Math.abs(got.loss - want.loss) / want.loss, `seed ${rng.seed}`).to.be.below(1e-9);
      expectClose(got.dinput.data, want.dy, { abs: 1e-9, rel: 1e-6, what: `seed ${rng.seed}` });
    }
    const small = randomF32(rng, 6);
    const target = randomF32(rng, 6);
    const g = train.mseLossSync(tensor(small), tensor(target));
    const numeric = numericGradient((x) => ref.mse(x, target).loss, Float64Array.from(small));
    expect(compareGradients(g.dinput.data, numeric, 1e-3).error, `seed ${rng.seed}`).to.be.below(1e-5);
  });
});

describe('training: clipping and schedules', function () {
  it('clipGradNorm returns the norm and scales exactly by the rounded factor', async function () {
    const rng = makeRandom();
    const grads = [randomF32(rng, 100003), randomF32(rng, 77), randomF32(rng, 5)];
    let sum = 0;
    for (const g of grads) for (const v of g) sum += v * v;
    const norm = Math.sqrt(sum);
    const ts = grads.map((g) => tensor(g.slice()));
    const got = await train.clipGradNorm(ts, 10);
    expect(Math.abs(got - norm) / norm, `seed ${rng.seed}`).to.be.below(1e-12);
    const coef = Math.fround(10 / (norm + 1e-6));
    ts.forEach((t, k) => {
      const want = grads[k].map((v) => Math.fround(v * coef));
      expect(Buffer.from(t.data.buffer).equals(Buffer.from(want.buffer)), `seed ${rng.seed}`).to.equal(true);
    });
    const untouched = grads.map((g) => tensor(g.slice()));
    expect(train.clipGradNormSync(untouched, norm * 2)).to.be.closeTo(norm, norm * 1e-12);
    untouched.forEach((t, k) => expect(Array.from(t.data)).to.deep.equal(Array.from(grads[k])));
  });

  it('clipGradValue clamps exactly; a non-finite norm can throw ERR_RNNKIT_NONFINITE', async function () {
    const g = tensor([-3, -0.5, 0, 0.25, 2, NaN]);
    await train.clipGradValue([g], 0.5);
    expect(Array.from(g.data.subarray(0, 5))).to.deep.equal([-0.5, -0.5, 0, 0.25, 0.5]);
    expect(Number.isNaN(g.data[5])).to.equal(true);
    const bad = tensor([1, Infinity]);
    expect(train.clipGradNormSync([bad], 1)).to.equal(Infinity);
    expectCode(() => train.clipGradNormSync([bad], 1, { errorIfNonfinite: true }), 'ERR_RNNKIT_NONFINITE');
  });

  it('StepLR, CosineAnnealingLR and LinearWarmup then cosine give the closed-form rates', function () {
    const p = tensor([0]);
    const opt = new train.SGD([{ params: [p], lr: 0.8 }]);
    const stepLr = new train.StepLR(opt, { stepSize: 3, gamma: 0.5 });
    const seen = [opt.paramGroups[0].hyper.lr];
    for (let s = 0; s < 7; s++) {
      stepLr.step();
      seen.push(opt.paramGroups[0].hyper.lr);
    }
    expect(seen).to.deep.equal([0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2]);

    const opt2 = new train.Adam([p], { lr: 1 });
    const cos = new train.LinearWarmup(opt2, {
      warmupSteps: 4, startFactor: 0.25, then: new train.CosineAnnealingLR(null, { tMax: 10, etaMin: 0.1 }),
    });
    const rates = [opt2.paramGroups[0].hyper.lr];
    for (let s = 0; s < 16; s++) {
      cos.step();
      rates.push(opt2.paramGroups[0].hyper.lr);
    }
    const want = [];
    for (let s = 0; s <= 16; s++) {
      if (s < 4) want.push(0.25 + (0.75 * s) / 4);
      else want.push(0.1 + (0.9 * (1 + Math.cos((Math.PI * Math.min(s - 4, 10)) / 10))) / 2);
    }
    expect(rates).to.deep.equal(want);
    expect(rates[4]).to.equal(1);
    expect(rates[16]).to.equal(0.1);
  });
});

describe('training: Linear', function () {
  it('forward and backward match the float64 reference; accumulate adds', async function () {
    const rng = makeRandom();
    const I = 13, O = 11, T = 3, B = 5, N = T * B;
    const lin = new train.Linear({ inFeatures: I, outFeatures: O, seed: rng.int(0, 1e6) });
    const bound = 1 / Math.sqrt(I);
    expect(lin.weight.data.every((v) => Math.abs(v) <= bound)).to.equal(true);
    const x = randomF32(rng, N * I);
    const dy = randomF32(rng, N * O);
    const y = await lin.forward(tensor(x, [T, B, I]));
    expect(y.shape).to.deep.equal([T, B, O]);
    const msg = `seed ${rng.seed}`;
    expectClose(y.data, ref.linear(x, lin.weight.data, lin.bias.data, N, I, O), { abs: 1e-6, rel: 1e-5, what: msg });
    const g = await lin.backward(tensor(x, [T, B, I]), tensor(dy, [T, B, O]));
    const want = ref.linearBackward(x, lin.weight.data, dy, N, I, O);
    expectClose(g.dx.data, want.dx, { abs: 1e-6, rel: 1e-5, what: msg });
    expectClose(g.dweight.data, want.dW, { abs: 1e-6, rel: 1e-5, what: msg });
    expectClose(g.dbias.data, want.db, { abs: 1e-6, rel: 1e-5, what: msg });
    lin.backwardSync(tensor(x, [N, I]), tensor(dy, [N, O]), { accumulate: true, dweight: g.dweight, dbias: g.dbias });
    expectClose(g.dweight.data, want.dW.map((v) => 2 * v), { abs: 1e-6, rel: 1e-5, what: msg });
    expectClose(g.dbias.data, want.db.map((v) => 2 * v), { abs: 1e-6, rel: 1e-5, what: msg });
    const same = new train.Linear({ inFeatures: I, outFeatures: O, seed: 42 });
    expect(Array.from(same.weight.data)).to.deep.equal(Array.from(new train.Linear({ inFeatures: I, outFeatures: O, seed: 42 }).weight.data));
  });
});

// A 1-layer LSTM + Linear head on one-hot characters: the model of the demo, small.
function tinyModel(seed, H = 12, V = 4) {
  const lstm = new Recurrent({ mode: 'lstm', inputSize: V, hiddenSize: H, seed });
  const head = new train.Linear({ inFeatures: H, outFeatures: V, seed: seed + 1 });
  return { lstm, head, V, H };
}

function oneHot(ids, V, shape) {
  const x = new Float32Array(ids.length * V);
  ids.forEach((c, k) => (x[k * V + c] = 1));
  return tensor(x, shape);
}

// Trains with TBPTT over B streams of a periodic sequence; returns per-step losses.
async function trainTiny(model, opt, { steps, T = 6, B = 4, start = 0, hx = null, cx = null }) {
  const pattern = [0, 1, 2, 1, 3, 2];
  const at = (b, t) => pattern[(t + b) % pattern.length];
  const length = steps * T;
  const losses = [];
  const dW = tensor(new Float32Array(model.head.weight.size), model.head.weight.shape);
  const dB = tensor(new Float32Array(model.head.bias.size), model.head.bias.shape);
  const r = await train.tbptt({
    model: model.lstm, length, segmentLength: T, chunkLength: 3, hx, cx,
    input: (s, len) => {
      const ids = [];
      for (let t = 0; t < len; t++) for (let b = 0; b < B; b++) ids.push(at(b, start + s + t));
      return oneHot(ids, model.V, [len, B, model.V]);
    },
    head: async (y, chunk) => {
      const targets = new Int32Array(chunk.length * B);
      for (let t = 0; t < chunk.length; t++) for (let b = 0; b < B; b++) targets[t * B + b] = at(b, start + chunk.start + t + 1);
      const logits = await model.head.forward(y);
      const { loss, dlogits } = await train.crossEntropy(logits, targets, { reduction: 'sum' });
      const first = chunk.start % T === 0;
      const g = await model.head.backward(y, dlogits, { dweight: dW, dbias: dB, accumulate: !first });
      return { loss: loss / (T * B), dy: g.dx };
    },
    onSegment: async (seg) => {
      const grads = [seg.dweights, dW, dB];
      // Mean over the segment's steps: the sums above, scaled once.
      for (const g of grads) g.data.forEach((v, k) => (g.data[k] = v / (T * B)));
      await train.clipGradNorm(grads, 5);
      await opt.step(grads);
      losses.push(seg.loss);
    },
  });
  return { losses, hy: r.hy, cy: r.cy };
}

describe('training: truncated BPTT, learning, checkpoints', function () {
  it('chunked segments give the gradient of one call; the state carries across segments', async function () {
    const rng = makeRandom();
    const seed = rng.int(0, 1e6);
    const { lstm } = tinyModel(seed, 8, 3);
    const T = 8, B = 2;
    const x = tensor(randomF32(rng, T * B * 3), [T, B, 3]);
    const dys = randomF32(rng, T * B * 8);
    const run = async (chunkLength) => {
      const grads = [];
      const r = await train.tbptt({
        model: lstm, length: T, segmentLength: 4, chunkLength, input: x,
        head: (y, c) => ({ loss: 0, dy: tensor(dys.slice(c.start * B * 8, (c.start + c.length) * B * 8), y.shape) }),
        onSegment: (s) => grads.push(s.dweights.data.slice()),
      });
      return { grads, hy: r.hy.data };
    };
    const whole = await run(4);
    const chunked = await run(1);
    for (let s = 0; s < 2; s++) expectClose(chunked.grads[s], whole.grads[s], { abs: 1e-6, rel: 1e-5, what: `segment ${s}, seed ${rng.seed}` });
    const full = await lstm.forward(x);
    // The same state as one forward over the whole sequence (up to GEMM blocking over T).
    expectClose(whole.hy, full.hy.data, { abs: 1e-6, rel: 1e-5, what: `final state, seed ${rng.seed}` });
    // Truncation: segment 1's gradient differs from the full-sequence gradient of the same steps.
    const fullGrad = await lstm.backward((await lstm.forward(x, { training: true })).saved, {
      dy: tensor(dys.map((v, k) => (k < 4 * B * 8 ? 0 : v)), [T, B, 8]),
    });
    expect(closeness(whole.grads[1], fullGrad.dweights.data, { abs: 1e-6, rel: 1e-5 }).ratio).to.be.above(1);
  });

  it('a tiny fixed-seed model learns a sequence that needs memory (loss < 0.02 within 60 steps)', async function () {
    const model = tinyModel(7);
    const opt = new train.Adam([model.lstm.weights, model.head.weight, model.head.bias], { lr: 0.03 });
    // After a 1 the next symbol is 2 or 3 depending on what came before: only the recurrent
    // state can tell, so a loss near 0 shows that gradients flow through time.
    const { losses } = await trainTiny(model, opt, { steps: 60 });
    const tail = losses.slice(-5).reduce((a, b) => a + b) / 5;
    expect(losses[0]).to.be.above(1.2);
    expect(tail, `losses ${losses.filter((_, k) => k % 20 === 0).map((v) => v.toFixed(3))}`).to.be.below(0.02);
  });

  it('save -> load gives identical outputs and identical continued training (bit for bit)', async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-ckpt-'));
    try {
      const a = tinyModel(11);
      const paramsOf = (m) => ({ 'lstm.weights': m.lstm.weights, 'head.weight': m.head.weight, 'head.bias': m.head.bias });
      const optA = new train.Adam([a.lstm.weights, a.head.weight, a.head.bias], { lr: 0.02, amsgrad: true });
      const schedA = new train.StepLR(optA, { stepSize: 4, gamma: 0.7 });
      const rngA = new train.Rng(5);
      const first = await trainTiny(a, optA, { steps: 6 });
      for (let k = 0; k < 6; k++) schedA.step();
      rngA.uniform();
      train.saveCheckpoint(dir, { params: paramsOf(a), optimizer: optA, scheduler: schedA, step: 6, rng: rngA, extra: { note: 'tiny' } });
      const state = { hx: first.hy.clone(), cx: first.cy.clone() };
      const contA = await trainTiny(a, optA, { steps: 5, start: 36, ...state });

      const b = tinyModel(999);
      const optB = new train.Adam([b.lstm.weights, b.head.weight, b.head.bias], { lr: 0.5 });
      const schedB = new train.StepLR(optB, { stepSize: 4, gamma: 0.7 });
      const loaded = train.loadCheckpoint(dir, { params: paramsOf(b), optimizer: optB, scheduler: schedB });
      expect(loaded.step).to.equal(6);
      expect(loaded.extra).to.deep.equal({ note: 'tiny' });
      expect(loaded.rng.uniform()).to.equal(rngA.uniform());
      expect(optB.paramGroups[0].hyper.lr).to.equal(0.02 * 0.7);
      const contB = await trainTiny(b, optB, { steps: 5, start: 36, ...state });
      expect(contB.losses).to.deep.equal(contA.losses);
      for (const [name, t] of Object.entries(paramsOf(a))) {
        expect(Buffer.from(paramsOf(b)[name].data.buffer).equals(Buffer.from(t.data.buffer)), name).to.equal(true);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('training: safetensors', function () {
  it('round trips and writes the documented header', function () {
    const rng = makeRandom();
    const w = randomF32(rng, 6);
    const buf = train.encodeSafetensors({ 'fc.weight': { shape: [2, 3], data: w }, empty: { shape: [0], data: new Float32Array(0) } }, { format: 'pt' });
    const n = Number(buf.readBigUInt64LE(0));
    expect(n % 8).to.equal(0);
    const header = JSON.parse(buf.toString('utf8', 8, 8 + n));
    expect(header['fc.weight']).to.deep.equal({ dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    expect(header.__metadata__).to.deep.equal({ format: 'pt' });
    expect(buf.length).to.equal(8 + n + 24);
    expect(buf.readFloatLE(8 + n + 4)).to.equal(w[1]);
    const back = train.decodeSafetensors(buf);
    expect(Array.from(back.tensors['fc.weight'].data)).to.deep.equal(Array.from(w));
    expect(back.tensors.empty.shape).to.deep.equal([0]);
  });

  it('reads F16, BF16 and F64 and refuses damaged files with typed errors', function () {
    const make = (header, data) => {
      let json = Buffer.from(JSON.stringify(header));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      return Buffer.concat([len, json, data]);
    };
    const data = Buffer.alloc(8 + 4 + 4);
    data.writeDoubleLE(-2.5, 0);
    data.writeUInt16LE(0x3c00, 8); // F16 1.0
    data.writeUInt16LE(0xc000, 10); // F16 -2.0
    data.writeUInt16LE(0x3fc0, 12); // BF16 1.5
    data.writeUInt16LE(0x4049, 14); // BF16 3.140625
    const ok = make({ a: { dtype: 'F64', shape: [1], data_offsets: [0, 8] }, b: { dtype: 'F16', shape: [2], data_offsets: [8, 12] }, c: { dtype: 'BF16', shape: [2], data_offsets: [12, 16] } }, data);
    const t = train.decodeSafetensors(ok).tensors;
    expect(Array.from(t.a.data)).to.deep.equal([-2.5]);
    expect(Array.from(t.b.data)).to.deep.equal([1, -2]);
    expect(Array.from(t.c.data)).to.deep.equal([1.5, 3.140625]);
    const bad = (header, bytes = data) => expectCode(() => train.decodeSafetensors(make(header, bytes)), 'ERR_RNNKIT_ARG');
    bad({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } });
    bad({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } });
    bad({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } });
    bad({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } });
    bad({ a: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } });
    expectCode(() => train.decodeSafetensors(make({ a: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, data)), 'ERR_RNNKIT_DTYPE');
    expectCode(() => train.decodeSafetensors(Buffer.from([200, 0, 0, 0, 0, 0, 0, 0, 123])), 'ERR_RNNKIT_ARG');
    expectCode(() => train.decodeSafetensors(Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('[]')])), 'ERR_RNNKIT_ARG');
  });
});

describe('training: typed errors', function () {
  it('rejects bad shapes, dtypes, targets, hyperparameters and disposed tensors', async function () {
    const logits = tensor(new Float32Array(12), [3, 4]);
    expectCode(() => train.crossEntropySync(logits, new Int32Array(2)), 'ERR_RNNKIT_SHAPE');
    expectCode(() => train.crossEntropySync(logits, new Float32Array(3)), 'ERR_RNNKIT_DTYPE');
    expectCode(() => train.crossEntropySync(logits, Int32Array.from([0, 4, 1])), 'ERR_RNNKIT_ARG');
    expectCode(() => train.crossEntropySync(logits, Int32Array.from([0, 1, 1]), { mask: Float32Array.from([1, -1, 1]) }), 'ERR_RNNKIT_ARG');
    expectCode(() => train.crossEntropySync(logits, Int32Array.from([0, 1, 1]), { reduction: 'avg' }), 'ERR_RNNKIT_ARG');
    expectCode(() => train.crossEntropySync(tensor(new Float32Array(4)), Int32Array.from([0])), 'ERR_RNNKIT_SHAPE');
    await expectReject(train.crossEntropy(logits, Int32Array.from([0, -1, 1])), 'ERR_RNNKIT_ARG');
    expectCode(() => native().softmaxCrossEntropy(logits.data, Int32Array.from([0, 9, 1]), null, null, 3, 4, -100, true, false), 'ERR_RNNKIT_ARG');
    expectCode(() => train.mseLossSync(tensor([1, 2]), tensor([1, 2, 3])), 'ERR_RNNKIT_SHAPE');
    const p = tensor([1, 2, 3]);
    expectCode(() => new train.Adam([p], { lr: -1 }), 'ERR_RNNKIT_ARG');
    expectCode(() => new train.Adam([p], { betas: [0.9, 1] }), 'ERR_RNNKIT_ARG');
    expectCode(() => new train.SGD([p], { nesterov: true }), 'ERR_RNNKIT_ARG');
    expectCode(() => new train.RMSprop([p], { rho: 0.9 }), 'ERR_RNNKIT_ARG');
    const opt = new train.Adam([p]);
    expectCode(() => opt.stepSync([tensor([1, 2])]), 'ERR_RNNKIT_SHAPE');
    expectCode(() => opt.stepSync([]), 'ERR_RNNKIT_SHAPE');
    const g = tensor([1, 1, 1]);
    g.dispose();
    expectCode(() => opt.stepSync([g]), 'ERR_RNNKIT_DISPOSED');
    await expectReject(opt.step([g]), 'ERR_RNNKIT_DISPOSED');
    expectCode(() => native().adamStep(p.data, new Float32Array(2), new Float32Array(3), new Float32Array(3), null, 0.1, 0.9, 0.99, 1e-8, 0, 1, false, false), 'ERR_RNNKIT_SHAPE');
    expectCode(() => native().sumSquares([new Float64Array(2)], false), 'ERR_RNNKIT_DTYPE');
    expectCode(() => train.clipGradNormSync([p], -1), 'ERR_RNNKIT_ARG');
    expectCode(() => new train.Linear({ inFeatures: 0, outFeatures: 2 }), 'ERR_RNNKIT_ARG');
    const lin = new train.Linear({ inFeatures: 3, outFeatures: 2, seed: 1 });
    expectCode(() => lin.forwardSync(tensor(new Float32Array(4), [2, 2])), 'ERR_RNNKIT_SHAPE');
    expectCode(() => new train.StepLR(opt, { stepSize: 0 }), 'ERR_RNNKIT_ARG');
    expectCode(() => train.loadCheckpoint(path.join(os.tmpdir(), 'rnnkit-no-such-checkpoint')), 'ERR_RNNKIT_ARG');
  });
});
