'use strict';
// matmul against a float64 reference on fresh random inputs, outputs poisoned with NaN.
const { tensor, matmul, matmulSync } = rnnkit;

const { randomFor, randomF32 } = require('./support/random');
const { expectClose } = require('./support/close');
const { matmulReference, withAccumulate } = require('./support/matmul');
const cases = require('./cases/matmul');

const check = (got, ref, what, rng) => expectClose(got, ref.c, { rel: cases.api.rel, abs: 1e-30, bound: ref.bound, what, seed: rng.seed });

describe('matmul', () => {
  for (const [M, N, K] of cases.api.shapes) {
    for (const [transA, transB] of cases.transposes) {
      it(`[${M}x${K}]·[${K}x${N}] transA=${transA} transB=${transB}`, function () {
        const rng = randomFor(this.test.fullTitle());
        const a = randomF32(rng, M * K);
        const b = randomF32(rng, K * N);
        const out = tensor(new Float32Array(M * N).fill(NaN), [M, N]);
        matmulSync(tensor(a, transA ? [K, M] : [M, K]), tensor(b, transB ? [N, K] : [K, N]), { transA, transB, out });
        check(out.data, matmulReference(a, b, M, N, K, transA, transB), 'matmul', rng);
      });
    }
  }

  it('accumulates into out', async function () {
    const rng = randomFor(this.test.fullTitle());
    const [M, N, K] = cases.api.accumulate;
    const a = randomF32(rng, M * K);
    const b = randomF32(rng, K * N);
    const c0 = randomF32(rng, M * N);
    const out = tensor(c0.slice(), [M, N]);
    await matmul(tensor(a, [M, K]), tensor(b, [K, N]), { out, accumulate: true });
    check(out.data, withAccumulate(matmulReference(a, b, M, N, K), c0), 'accumulate', rng);
  });

  it('K = 0 gives zeros', () => {
    const c = matmulSync(tensor(new Float32Array(0), [3, 0]), tensor(new Float32Array(0), [0, 2]));
    expect(Array.from(c.data)).to.deep.equal([0, 0, 0, 0, 0, 0]);
  });

  it('rejects bad operands with typed errors', () => {
    const rng = randomFor('matmul typed errors');
    const rand = (n) => randomF32(rng, n);
    const a = tensor(rand(6), [2, 3]);
    expectCode(() => matmulSync(a, tensor(rand(6), [6])), 'ERR_RNNKIT_SHAPE');
    expectCode(() => matmulSync(a, a), 'ERR_RNNKIT_SHAPE');
    expectCode(() => matmulSync(a, [1, 2]), 'ERR_RNNKIT_ARG');
    expectCode(() => matmulSync(a, a, { transB: true, out: tensor(rand(3), [3, 1]) }), 'ERR_RNNKIT_SHAPE');
    expectCode(() => matmulSync(a, a, { transB: true, accumulate: true }), 'ERR_RNNKIT_ARG');
  });
});
