'use strict';
// matmul against a float64 reference on fresh random inputs, outputs poisoned with NaN.
const { tensor, matmul, matmulSync } = rnnkit;

function rand(n) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
  return a;
}

function reference(a, b, M, N, K, transA, transB) {
  const c = new Float64Array(M * N);
  const bound = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      let s2 = 0;
      for (let k = 0; k < K; k++) {
        const x = transA ? a[k * M + m] : a[m * K + k];
        const y = transB ? b[n * K + k] : b[k * N + n];
        s += x * y;
        s2 += Math.abs(x * y);
      }
      c[m * N + n] = s;
      bound[m * N + n] = s2;
    }
  }
  return { c, bound };
}

function check(got, ref, what) {
  for (let i = 0; i < got.length; i++) {
    const tol = 2e-6 * ref.bound[i] + 1e-30;
    if (!(Math.abs(got[i] - ref.c[i]) <= tol)) {
      throw new Error(`${what}: element ${i} is ${got[i]}, reference ${ref.c[i]} (tolerance ${tol})`);
    }
  }
}

describe('matmul', () => {
  const shapes = [[1, 1, 1], [1, 7, 3], [5, 1, 9], [17, 31, 13], [64, 128, 96], [3, 257, 65]];
  for (const [M, N, K] of shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        it(`[${M}x${K}]·[${K}x${N}] transA=${transA} transB=${transB}`, () => {
          const a = rand(M * K);
          const b = rand(K * N);
          const out = tensor(new Float32Array(M * N).fill(NaN), [M, N]);
          matmulSync(tensor(a, transA ? [K, M] : [M, K]), tensor(b, transB ? [N, K] : [K, N]), { transA, transB, out });
          check(out.data, reference(a, b, M, N, K, transA, transB), 'matmul');
        });
      }
    }
  }

  it('accumulates into out', async () => {
    const [M, N, K] = [9, 11, 5];
    const a = rand(M * K);
    const b = rand(K * N);
    const c0 = rand(M * N);
    const out = tensor(c0.slice(), [M, N]);
    await matmul(tensor(a, [M, K]), tensor(b, [K, N]), { out, accumulate: true });
    const ref = reference(a, b, M, N, K, false, false);
    for (let i = 0; i < M * N; i++) {
      ref.c[i] += c0[i];
      ref.bound[i] += Math.abs(c0[i]);
    }
    check(out.data, ref, 'accumulate');
  });

  it('K = 0 gives zeros', () => {
    const c = matmulSync(tensor(new Float32Array(0), [3, 0]), tensor(new Float32Array(0), [0, 2]));
    expect(Array.from(c.data)).to.deep.equal([0, 0, 0, 0, 0, 0]);
  });

  it('rejects bad operands with typed errors', () => {
    const a = tensor(rand(6), [2, 3]);
    expectCode(() => matmulSync(a, tensor(rand(6), [6])), 'ERR_RNNKIT_SHAPE');
    expectCode(() => matmulSync(a, a), 'ERR_RNNKIT_SHAPE');
    expectCode(() => matmulSync(a, [1, 2]), 'ERR_RNNKIT_ARG');
    expectCode(() => matmulSync(a, a, { transB: true, out: tensor(rand(3), [3, 1]) }), 'ERR_RNNKIT_SHAPE');
    expectCode(() => matmulSync(a, a, { transB: true, accumulate: true }), 'ERR_RNNKIT_ARG');
  });
});
