'use strict';
// The lib/nn kernels (native/kernels/nn_elementwise.h, nn_reduce.h, gather.h) called through the
// binding with NaN-poisoned outputs, against the float64 references of reference/nn.js on fresh
// random inputs (seed in every message), on every ISA path this CPU has; then the same kernels
// through the per-device dispatch of lib/nn/kernels.ts, and the binding's own checks.
const { makeRandom } = require('./reference/random');
const { expectClose } = require('./support/close');
const ref = require('./reference/nn');
const { native } = require('../dist/native');
const { cpuKernels } = require('../dist/nn/kernels');

const f32 = (a) => Float32Array.from(a);
const poisoned = (n) => new Float32Array(n).fill(NaN);


describe('nn kernels: against float64 references', function () {
  const rng = makeRandom();
  const seedNote = `seed ${rng.seed}`;
  // 1003 covers the vector loops and their tails; 70001 spreads over the compute pool.
  const sizes = [1, 7, 1003, 70001];

  for (const kind of ['tanh', 'sigmoid', 'relu']) {
    it(`${kind}: forward and backward, every ISA path (${seedNote})`, function () {
      for (const isa of availableIsas()) {
        withIsa(isa, () => {
          for (const n of sizes) {
            const x = f32(rng.array(n, -6, 6));
            const dy = f32(rng.array(n, -1, 1));
            const code = { tanh: 0, sigmoid: 1, relu: 2 }[kind];
            const y = poisoned(n);
            native().nnActivationForward(code, x, y, false);
            expectClose(y, ref.activation(kind, x), { abs: 1e-6, rel: 1e-5, what: `${kind} forward ${isa} n=${n} (${seedNote})` });
            const dx = poisoned(n);
            native().nnActivationBackward(code, dy, y, dx, false);
            expectClose(dx, ref.activationBackward(kind, dy, x), { abs: 1e-6, rel: 1e-4, what: `${kind} backward ${isa} n=${n} (${seedNote})` });
          }
        });
      }
    });
  }

  it(`relu keeps NaN and gives gradient 0 at 0 (${seedNote})`, function () {
    const x = f32([NaN, 0, -0, 2, -3]);
    const y = poisoned(5);
    native().nnActivationForward(2, x, y, false);
    expect(Number.isNaN(y[0])).to.equal(true);
    expect(Array.from(y.subarray(1), (v) => v + 0)).to.deep.equal([0, 0, 2, 0]);
    const dx = poisoned(5);
    native().nnActivationBackward(2, f32([1, 1, 1, 1, 1]), y, dx, false);
    expect(Array.from(dx)).to.deep.equal([0, 0, 0, 1, 0]);
  });

  it(`broadcast add / mul over rows, affine, accumulate (${seedNote})`, function () {
    for (const [rows, m] of [[1, 1], [1, 1003], [37, 5], [3, 30000]]) {
      const a = f32(rng.array(rows * m));
      const b = f32(rng.array(m));
      for (const [op, code] of [['add', 0], ['mul', 1]]) {
        const out = poisoned(rows * m);
        native().nnBroadcastBinary(code, a, b, out, rows, m, false);
        expectClose(out, ref.broadcast(op, a, b), { abs: 1e-6, rel: 1e-5, what: `${op} rows=${rows} m=${m} (${seedNote})` });
      }
    }
    const n = 70001;
    const x = f32(rng.array(n));
    const out = poisoned(n);
    native().nnAffine(x, out, 0.75, -2.5, false);
    expectClose(out, Float64Array.from(x, (v) => v * 0.75 - 2.5), { abs: 1e-6, rel: 1e-5, what: `affine (${seedNote})` });
    const y = f32(rng.array(n));
    const want = Float64Array.from(y, (v, i) => v + x[i]);
    native().nnAccumulate(y, x, false);
    expectClose(y, want, { abs: 1e-6, rel: 1e-5, what: `accumulate (${seedNote})` });
  });

  it(`sumAxis (with and without weights, accumulate) and broadcastAxis (${seedNote})`, function () {
    const shapes = [[1, 1, 1], [1, 50000, 1], [3, 20000, 1], [4, 7, 5], [2, 300, 600], [1, 2048, 80], [5, 0, 3]];
    for (const [outer, len, inner] of shapes) {
      const x = f32(rng.array(outer * len * inner));
      const w = f32(rng.array(outer * len * inner));
      const what = `[${outer}, ${len}, ${inner}] (${seedNote})`;
      for (const [weights, scale] of [[null, 1], [w, 0.25]]) {
        const out = poisoned(outer * inner);
        native().nnSumAxis(x, weights, out, outer, len, inner, scale, false, false);
        expectClose(out, ref.sumAxis(x, weights, outer, len, inner, scale), { abs: 1e-6, rel: 1e-6, what: `sumAxis ${what}` });
      }
      const base = f32(rng.array(outer * inner));
      const acc = base.slice();
      native().nnSumAxis(x, null, acc, outer, len, inner, 1, true, false);
      expectClose(acc, Float64Array.from(ref.sumAxis(x, null, outer, len, inner, 1), (v, i) => v + base[i]), { abs: 1e-6, rel: 1e-6, what: `sumAxis accumulate ${what}` });
      const dy = f32(rng.array(outer * inner));
      const dx = poisoned(outer * len * inner);
      native().nnBroadcastAxis(dy, dx, outer, len, inner, 0.5, false);
      expectClose(dx, ref.broadcastAxis(dy, outer, len, inner, 0.5), { abs: 1e-6, rel: 1e-5, what: `broadcastAxis ${what}` });
    }
  });

  it(`sums do not depend on the thread count (${seedNote})`, function () {
    const [outer, len, inner] = [3, 40000, 1];
    const x = f32(rng.array(outer * len * inner));
    const run = () => {
      const out = poisoned(outer * inner);
      native().nnSumAxis(x, null, out, outer, len, inner, 1, false, false);
      return Array.from(out);
    };
    const before = rnnkit.numThreads();
    try {
      rnnkit.setNumThreads(1);
      const one = run();
      rnnkit.setNumThreads(2);
      expect(run()).to.deep.equal(one);
    } finally {
      rnnkit.setNumThreads(before);
    }
  });

  it(`embedding gather and scatter-add (padding row skipped, accumulate) (${seedNote})`, function () {
    for (const [V, D, n] of [[5, 3, 17], [97, 64, 2048], [1000, 130, 300]]) {
      const weight = f32(rng.array(V * D));
      const ids = Int32Array.from({ length: n }, () => rng.int(0, V - 1));
      const out = poisoned(n * D);
      native().nnEmbeddingForward(weight, ids, out, V, D, false);
      expectClose(out, ref.embedding(weight, ids, D), { abs: 0, rel: 0, what: `gather V=${V} D=${D} (${seedNote})` });
      const dy = f32(rng.array(n * D));
      const pad = ids[0];
      const dw = poisoned(V * D);
      native().nnEmbeddingBackward(dy, ids, dw, V, D, pad, false, false);
      expectClose(dw, ref.embeddingBackward(dy, ids, V, D, pad), { abs: 1e-6, rel: 1e-5, what: `scatter-add V=${V} D=${D} (${seedNote})` });
      const base = f32(rng.array(V * D));
      const acc = base.slice();
      native().nnEmbeddingBackward(dy, ids, acc, V, D, -1, true, false);
      const want = ref.embeddingBackward(dy, ids, V, D, -1).map((v, i) => v + base[i]);
      expectClose(acc, want, { abs: 1e-6, rel: 1e-5, what: `scatter-add accumulate V=${V} D=${D} (${seedNote})` });
    }
  });

  it(`copyBlock: concat pieces and split them back (${seedNote})`, function () {
    const outer = 13;
    const cols = [3, 1, 8];
    const parts = cols.map((c) => f32(rng.array(outer * c)));
    const y = cpuKernels.concat(parts.map((p, k) => rnnkit.tensor(p, [outer, cols[k]])), outer, [outer, 12], false);
    expectClose(y.data, ref.concat(parts, outer), { abs: 0, rel: 0, what: `concat (${seedNote})` });
    const back = cpuKernels.split(y, outer, cols.map((c) => [outer, c]), false);
    back.forEach((t, k) => expectClose(t.data, parts[k], { abs: 0, rel: 0, what: `split piece ${k} (${seedNote})` }));
  });

  it(`dropout: the counter-based mask, forward and backward (${seedNote})`, function () {
    const n = 70001;
    const x = f32(rng.array(n));
    const seed = rng.int(0, 2 ** 31);
    for (const p of [0, 0.1, 0.5]) {
      const y = poisoned(n);
      native().nnDropout(false, x, y, p, seed, false);
      expectClose(y, ref.dropout(x, p, seed), { abs: 0, rel: 1e-6, what: `dropout p=${p} (${seedNote})` });
      const dx = poisoned(n);
      native().nnDropout(true, x, dx, p, seed, false);
      expect(Array.from(dx)).to.deep.equal(Array.from(y));
      const dropped = y.reduce((c, v, i) => c + (v === 0 && x[i] !== 0 ? 1 : 0), 0) / n;
      expect(dropped).to.be.closeTo(p, 0.01);
    }
  });

  it(`async calls give the sync results (${seedNote})`, async function () {
    const n = 70001;
    const x = f32(rng.array(n, -3, 3));
    const a = poisoned(n);
    const b = poisoned(n);
    native().nnActivationForward(0, x, a, false);
    await native().nnActivationForward(0, x, b, true);
    expect(Array.from(b)).to.deep.equal(Array.from(a));
    const ids = Int32Array.from({ length: 500 }, (_, k) => k % 10);
    const w = f32(rng.array(10 * 8));
    const o1 = poisoned(4000);
    const o2 = poisoned(4000);
    native().nnEmbeddingForward(w, ids, o1, 10, 8, false);
    await native().nnEmbeddingForward(w, ids, o2, 10, 8, true);
    expect(Array.from(o2)).to.deep.equal(Array.from(o1));
  });

  it('the binding refuses short arrays, bad sizes and out-of-range ids before touching memory', function () {
    const a = new Float32Array(10);
    expectCode(() => native().nnBroadcastBinary(0, a, new Float32Array(3), new Float32Array(10), 4, 3, false), 'ERR_RNNKIT_SHAPE');
    expectCode(() => native().nnActivationBackward(0, a, new Float32Array(3), a, false), 'ERR_RNNKIT_SHAPE');
    expectCode(() => native().nnSumAxis(a, null, new Float32Array(1), 2, 5, 2, 1, false, false), 'ERR_RNNKIT_SHAPE');
    expectCode(() => native().nnSumAxis(a, null, a, 2 ** 40, 2 ** 40, 2 ** 40, 1, false, false), 'ERR_RNNKIT_SHAPE');
    expectCode(() => native().nnDropout(false, a, a, 1, 0, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().nnActivationForward(7, a, a, false), 'ERR_RNNKIT_ARG');
    const err = expectCode(() => native().nnEmbeddingForward(a, Int32Array.of(0, 1, 5, 2), new Float32Array(8), 5, 2, false), 'ERR_RNNKIT_ARG');
    expect(err.message).to.match(/ids\[2\] = 5 is outside \[0, 5\)/);
    expectCode(() => native().nnEmbeddingBackward(a, Int32Array.of(-1), a, 5, 2, -1, false, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().nnEmbeddingForward(a, new Float32Array(2), a, 5, 2, false), 'ERR_RNNKIT_DTYPE');
    expectCode(() => native().nnCopyBlock(a, 8, 4, a, 0, 4, 2, 4, false), 'ERR_RNNKIT_SHAPE');
  });
});
