'use strict';
// The SGEMM under matmul, through the public API, on every ISA path this CPU can run (forced with
// native().setIsa) and with 1 and 2 pool threads: shapes 1, odd, primes, one large product that
// takes the blocked route with several K blocks, all four transposes; beta 0 (out poisoned with
// NaN) and accumulate. Fresh random inputs per run (seed in every failure; RNNKIT_TEST_SEED
// replays), compared with a float64 reference under a float32 forward-error bound.
const { tensor, matmul, matmulSync, setNumThreads, backendInfo } = rnnkit;
const { native } = require('../dist/native');
const { makeRandom } = require('./reference/random');

const { expectClose } = require('./support/close');
const { matmulReference, withAccumulate } = require('./support/matmul');
const cases = require('./cases/matmul');

// |got - want| <= (K + 4) u * (sum |a b| + |c0|) (cases.sgemm.rel): the float32 error bound of a
// K-term dot product plus the update. A wrong tile, a skipped K block or a stray NaN is far outside it.
function check(got, ref, K, what) {
  expectClose(got, ref.c, { rel: cases.sgemm.rel(K), abs: 1e-30, bound: ref.bound, what });
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

  for (const [M, N, K] of cases.sgemm.shapes) {
    it(`${M}x${N}x${K}, all transposes, beta 0 and accumulate`, async () => {
      const seedNote = `seed ${rng.seed}`;
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const a = Float32Array.from(rng.array(M * K));
          const b = Float32Array.from(rng.array(K * N));
          const c0 = Float32Array.from(rng.array(M * N));
          const ref = matmulReference(a, b, M, N, K, transA, transB);
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
              check(fresh.data, ref, K, `beta 0, ${what}`);
              const acc = tensor(c0.slice(), [M, N]);
              matmulSync(ta, tb, { transA, transB, out: acc, accumulate: true });
              check(acc.data, withAccumulate(ref, c0), K, `accumulate, ${what}`);
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
    for (const [M, N, K] of cases.sgemm.denormals) {
      for (const transB of [false, true]) {
        const a = Float32Array.from(rng.array(M * K), (v, i) => (i % 3 === 0 ? v * 1e-39 : v));
        const b = Float32Array.from(rng.array(K * N), (v, i) => (i % 5 === 0 ? v * 1e-40 : v));
        const ref = matmulReference(a, b, M, N, K, false, transB);
        for (const isa of isas) {
          native().setIsa(isa);
          for (const threads of [1, 2]) {
            setNumThreads(threads);
            const out = tensor(new Float32Array(M * N).fill(NaN), [M, N]);
            await matmul(tensor(a, [M, K]), tensor(b, transB ? [N, K] : [K, N]), { transB, out });
            check(out.data, ref, K, `denormals ${M}x${N}x${K} transB=${transB} ${isa} ${threads}T (seed ${rng.seed})`);
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
    const ref = matmulReference(a, b, M, N, K);
    check(got, ref, K, 'unperturbed');
    got[rng.int(0, M * N - 1)] += 1e-3;
    expect(() => check(got, ref, K, 'perturbed')).to.throw(/element/);
  });
});
