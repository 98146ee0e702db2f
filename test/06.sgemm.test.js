'use strict';
// The SGEMM under matmul, through the public API, on every ISA path this CPU can run (forced with
// native().setIsa) and with 1 and 2 pool threads: shapes 1, odd, primes, one large product that
// takes the blocked route with several K blocks, all four transposes; beta 0 (out poisoned with
// NaN) and accumulate. Fresh random inputs per run (seed in every failure; RNNKIT_TEST_SEED
// replays), compared with a float64 reference under a float32 forward-error bound.
const { tensor, matmul, matmulSync, setNumThreads, backendInfo } = rnnkit;
const { native } = require('../dist/native');
const { makeRandom } = require('./reference/random');

// M x N x K: ones, a single row/column, odd, primes, small-M widths past one register tile, the
// medium-M route, and 300x500x257 (blocked, 2 K blocks, several row and column tiles per thread).
const SHAPES = [[1, 1, 1], [1, 37, 19], [23, 1, 29], [7, 5, 3], [13, 29, 31], [8, 100, 17],
  [61, 67, 71], [97, 131, 263], [300, 500, 257]];

function referenceProduct(a, b, M, N, K, transA, transB) {
  const c = new Float64Array(M * N);
  const bound = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      const x = transA ? a[k * M + m] : a[m * K + k];
      const ax = Math.abs(x);
      const row = m * N;
      for (let n = 0; n < N; n++) {
        const y = transB ? b[n * K + k] : b[k * N + n];
        c[row + n] += x * y;
        bound[row + n] += ax * Math.abs(y);
      }
    }
  }
  return { c, bound };
}

// |got - want| <= (K + 4) u * (sum |a b| + |c0|): the float32 error bound of a K-term dot product
// plus the update. A wrong tile, a skipped K block or a stray NaN is far outside it.
function expectClose(got, ref, c0, K, what) {
  const u = 2 ** -24;
  for (let i = 0; i < got.length; i++) {
    const want = ref.c[i] + (c0 ? c0[i] : 0);
    const tol = (K + 4) * u * (ref.bound[i] + (c0 ? Math.abs(c0[i]) : 0)) + 1e-30;
    if (!(Math.abs(got[i] - want) <= tol)) {
      throw new Error(`${what}: element ${i} is ${got[i]}, reference ${want} (tolerance ${tol})`);
    }
  }
}

describe('sgemm through matmul, every ISA path, 1 and 2 threads', function () {
  this.timeout(30000);
  const rng = makeRandom();
  const isas = availableIsas();
  let initialIsa;

  before(() => {
    initialIsa = backendInfo().isa;
  });
  after(() => {
    native().setIsa(initialIsa);
    setNumThreads(0);
  });

  it('covers the ISA paths this CPU has', () => {
    expect(isas).to.include('portable');
    for (const isa of isas) expect(native().setIsa(isa)).to.equal(isa);
    native().setIsa(initialIsa);
  });

  for (const [M, N, K] of SHAPES) {
    it(`${M}x${N}x${K}, all transposes, beta 0 and accumulate`, async () => {
      const seedNote = `seed ${rng.seed}`;
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const a = Float32Array.from(rng.array(M * K));
          const b = Float32Array.from(rng.array(K * N));
          const c0 = Float32Array.from(rng.array(M * N));
          const ref = referenceProduct(a, b, M, N, K, transA, transB);
          const ta = tensor(a, transA ? [K, M] : [M, K]);
          const tb = tensor(b, transB ? [N, K] : [K, N]);
          for (const isa of isas) {
            native().setIsa(isa);
            for (const threads of [1, 2]) {
              setNumThreads(threads);
              const what = `${isa} ${threads}T transA=${transA} transB=${transB} (${seedNote})`;
              const fresh = tensor(new Float32Array(M * N).fill(NaN), [M, N]);
              if (threads === 1) matmulSync(ta, tb, { transA, transB, out: fresh });
              else await matmul(ta, tb, { transA, transB, out: fresh });
              expectClose(fresh.data, ref, null, K, `beta 0, ${what}`);
              const acc = tensor(c0.slice(), [M, N]);
              matmulSync(ta, tb, { transA, transB, out: acc, accumulate: true });
              expectClose(acc.data, ref, c0, K, `accumulate, ${what}`);
            }
          }
        }
      }
    });
  }

  // The kernels flush denormals (FTZ/DAZ, RNNKIT_FLUSH_DENORMALS): operands full of them still
  // give the float64 product of the values as given, within the same bound, on every route (the
  // dot route of a transposed B, small M, blocked) and ISA path. native/tools/test_sgemm.cc checks
  // the floating-point mode itself (flushed on every thread, the caller's restored).
  it('operands with denormals: the product is within the float32 bound on every route', async () => {
    for (const [M, N, K] of [[8, 96, 64], [40, 33, 100], [130, 70, 90]]) {
      for (const transB of [false, true]) {
        const a = Float32Array.from(rng.array(M * K), (v, i) => (i % 3 === 0 ? v * 1e-39 : v));
        const b = Float32Array.from(rng.array(K * N), (v, i) => (i % 5 === 0 ? v * 1e-40 : v));
        const ref = referenceProduct(a, b, M, N, K, false, transB);
        for (const isa of isas) {
          native().setIsa(isa);
          for (const threads of [1, 2]) {
            setNumThreads(threads);
            const out = tensor(new Float32Array(M * N).fill(NaN), [M, N]);
            await matmul(tensor(a, [M, K]), tensor(b, transB ? [N, K] : [K, N]), { transB, out });
            expectClose(out.data, ref, null, K, `denormals ${M}x${N}x${K} transB=${transB} ${isa} ${threads}T (seed ${rng.seed})`);
          }
        }
      }
    }
  });

  it('the check can fail: a perturbed element of a product is caught', () => {
    const [M, N, K] = [13, 29, 31];
    const a = Float32Array.from(rng.array(M * K));
    const b = Float32Array.from(rng.array(K * N));
    const got = matmulSync(tensor(a, [M, K]), tensor(b, [K, N])).data;
    const ref = referenceProduct(a, b, M, N, K, false, false);
    expectClose(got, ref, null, K, 'unperturbed');
    got[rng.int(0, M * N - 1)] += 1e-3;
    expect(() => expectClose(got, ref, null, K, 'perturbed')).to.throw(/element/);
  });
});
