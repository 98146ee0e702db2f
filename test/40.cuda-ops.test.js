'use strict';
// CUDA ops end to end: matmul on CUDA tensors (fp32 and TF32) and the RMSNorm CUDA binding
// against float64 references on fresh random inputs with NaN-poisoned outputs, out-of-memory as
// ERR_RNNKIT_OOM, and pinned-staging copies around the chunk size. The @gpu suites skip without a
// device; the binding's argument checks run everywhere.
const { tensor, matmul, matmulSync, backendInfo } = rnnkit;
const { native } = require('../dist/native');
const { makeRandom } = require('./reference/random');
const { expectClose } = require('./support/close');
const { randomF32: float32 } = require('./support/random');
const { matmulReference, withAccumulate } = require('./support/matmul');
const cases = require('./cases/matmul');
const rmsCases = require('./cases/rmsnorm');
const rmsnormRef = require('./reference/rmsnorm');

function deviceBuffer(values) {
  const buf = new (native().DeviceBuffer)(0, values.length * 4);
  native().copyToDevice(buf, values, false);
  return buf;
}

function readBuffer(buf) {
  const out = new Float32Array(buf.bytes / 4);
  native().copyToHost(buf, out, false);
  return out;
}

describe('CUDA op bindings: argument checks', () => {
  it('exist in every flavor and reject non-buffers with typed errors', () => {
    for (const name of ['cudaMatmul', 'cudaRmsnormForward', 'cudaRmsnormBackward', 'cudaStagingChunkBytes']) {
      expect(native()[name], name).to.be.a('function');
    }
    const f = new Float32Array(4);
    expectCode(() => native().cudaMatmul(f, f, f, 2, 2, 1, false, false, false, false, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaRmsnormForward(null, f, null, f, f, 1, 4, 1e-6, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaRmsnormBackward(f, f, f, f, null, null, null, 1, 4, false, false), 'ERR_RNNKIT_ARG');
    const chunk = native().cudaStagingChunkBytes();
    expect(chunk).to.equal(backendInfo().flavor === 'cuda' ? 4 << 20 : 0);
  });

  it('matmul on CPU tensors ignores tf32 (always fp32)', () => {
    const rand = makeRandom();
    const [M, N, K] = cases.cuda.cpuTf32.shape;
    const a = float32(rand, M * K);
    const b = float32(rand, K * N);
    const c = matmulSync(tensor(a, [M, K]), tensor(b, [K, N]), { tf32: true });
    const ref = matmulReference(a, b, M, N, K, false, false);
    expectClose(c.data, ref.c, { bound: ref.bound, rel: cases.cuda.cpuTf32.rel, abs: 1e-30, what: 'cpu tf32 flag', seed: rand.seed });
  });
});

describe('CUDA matmul @gpu', function () {
  before(function () {
    skipWithoutGpu(this);
  });

  for (const [M, N, K] of cases.cuda.shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        it(`fp32 [${M}x${K}]·[${K}x${N}] transA=${transA} transB=${transB}`, async () => {
          const rand = makeRandom();
          const a = float32(rand, M * K);
          const b = float32(rand, K * N);
          const da = tensor(a, transA ? [K, M] : [M, K], { device: 'cuda' });
          const db = tensor(b, transB ? [N, K] : [K, N], { device: 'cuda' });
          const out = tensor(new Float32Array(M * N).fill(NaN), [M, N], { device: 'cuda' });
          const ref = matmulReference(a, b, M, N, K, transA, transB);
          matmulSync(da, db, { transA, transB, out });
          expectClose(out.readSync(), ref.c, { bound: ref.bound, rel: cases.cuda.rel, abs: 1e-30, what: 'sync', seed: rand.seed });
          const c = await matmul(da, db, { transA, transB });
          expect(c.device).to.equal('cuda:0');
          expect(c.shape).to.deep.equal([M, N]);
          expectClose(await c.read(), ref.c, { bound: ref.bound, rel: cases.cuda.rel, abs: 1e-30, what: 'async', seed: rand.seed });
          for (const t of [da, db, out, c]) t.dispose();
        });
      }
    }
  }

  it('accumulates into out on the device', async () => {
    const rand = makeRandom();
    const [M, N, K] = cases.cuda.accumulate;
    const a = float32(rand, M * K);
    const b = float32(rand, K * N);
    const c0 = float32(rand, M * N);
    const out = tensor(c0, [M, N], { device: 'cuda' });
    await matmul(tensor(a, [M, K], { device: 'cuda' }), tensor(b, [K, N], { device: 'cuda' }), { out, accumulate: true });
    const ref = withAccumulate(matmulReference(a, b, M, N, K), c0);
    expectClose(out.readSync(), ref.c, { bound: ref.bound, rel: cases.cuda.rel, abs: 1e-30, what: 'accumulate', seed: rand.seed });
  });

  it('TF32 stays within its stated bound (3e-3 of sum |a·b|) for every transpose', () => {
    const rand = makeRandom();
    const [M, N, K] = cases.cuda.tf32.shape;
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const a = float32(rand, M * K);
        const b = float32(rand, K * N);
        const out = tensor(new Float32Array(M * N).fill(NaN), [M, N], { device: 'cuda' });
        matmulSync(tensor(a, transA ? [K, M] : [M, K], { device: 'cuda' }),
          tensor(b, transB ? [N, K] : [K, N], { device: 'cuda' }), { transA, transB, out, tf32: true });
        const ref = matmulReference(a, b, M, N, K, transA, transB);
        expectClose(out.readSync(), ref.c, { bound: ref.bound, rel: cases.cuda.tf32.rel, abs: 1e-30, what: `tf32 transA=${transA} transB=${transB}`, seed: rand.seed });
      }
    }
  });

  it('rejects bad device operands with typed errors', () => {
    const a = tensor(new Float32Array(6), [2, 3], { device: 'cuda' });
    expectCode(() => matmulSync(a, tensor(new Float32Array(6), [2, 3], { device: 'cuda' })), 'ERR_RNNKIT_SHAPE');
    expectCode(() => matmulSync(a, tensor(new Float32Array(6), [3, 2])), 'ERR_RNNKIT_DEVICE');
    const sq = tensor(new Float32Array(4), [2, 2], { device: 'cuda' });
    expectCode(() => matmulSync(sq, sq, { out: sq }), 'ERR_RNNKIT_ARG');
    const gone = tensor(new Float32Array(9), [3, 3], { device: 'cuda' });
    gone.dispose();
    expectCode(() => matmulSync(a, gone, { transB: true }), 'ERR_RNNKIT_DISPOSED');
    const f = new Float32Array(4);
    const small = deviceBuffer(f);
    expectCode(() => native().cudaMatmul(small, small, deviceBuffer(f), 3, 3, 3, false, false, false, false, false),
      'ERR_RNNKIT_SHAPE');
  });
});

describe('CUDA RMSNorm binding @gpu', function () {
  before(function () {
    skipWithoutGpu(this);
  });

  // Narrow rows packed per block, 16-byte and scalar rows, the register path's widest rows, and
  // rows that take the wide path (forward beyond 16384, backward beyond 8192 columns).
  const TOL = rmsCases.cuda.tol;
  for (const [rows, cols] of rmsCases.cuda.shapes) {
    it(`forward and backward ${rows}x${cols} match the float64 reference`, async () => {
      const rand = makeRandom();
      const eps = rmsCases.cuda.eps;
      const x = float32(rand, rows * cols, -2, 2);
      const gamma = float32(rand, cols, 0.5, 1.5);
      const beta = float32(rand, cols);
      const dy = float32(rand, rows * cols);
      const fwd = rmsnormRef.forward(x, gamma, beta, rows, cols, eps);
      const dX = deviceBuffer(x);
      const dG = deviceBuffer(gamma);
      const dB = deviceBuffer(beta);
      const dY = deviceBuffer(new Float32Array(rows * cols).fill(NaN));
      const dR = deviceBuffer(new Float32Array(rows).fill(NaN));
      await native().cudaRmsnormForward(dX, dG, dB, dY, dR, rows, cols, eps, true);
      const bound = rmsCases.errorBounds({ rows, cols, x, gamma, beta, dy }, fwd.rrms);
      expectClose(readBuffer(dY), fwd.y, { bound: bound.y, rel: TOL.y, abs: 1e-30, what: 'y', seed: rand.seed });
      expectClose(readBuffer(dR), fwd.rrms, { bound: Float64Array.from(fwd.rrms, Math.abs), rel: TOL.rrms, abs: 1e-30, what: 'rrms', seed: rand.seed });

      const bwd = rmsnormRef.backward(dy, x, gamma, rows, cols, eps);
      const g0 = float32(rand, cols);
      const dDY = deviceBuffer(dy);
      const dDX = deviceBuffer(new Float32Array(rows * cols).fill(NaN));
      const dDG = deviceBuffer(g0);
      const dDB = deviceBuffer(new Float32Array(cols).fill(NaN));
      native().cudaRmsnormBackward(dDY, dX, dG, dR, dDX, dDG, dDB, rows, cols, false, false);
      expectClose(readBuffer(dDX), bwd.dx, { bound: bound.dx, rel: TOL.dx, abs: 1e-30, what: 'dx', seed: rand.seed });
      const dg1 = readBuffer(dDG);
      expectClose(dg1, bwd.dgamma, { bound: bound.dg, rel: TOL.dgamma, abs: 1e-30, what: 'dgamma', seed: rand.seed });
      expectClose(readBuffer(dDB), bwd.dbeta, { bound: bound.db, rel: TOL.dbeta, abs: 1e-30, what: 'dbeta', seed: rand.seed });

      // Accumulating adds to what is there; skipped outputs (null) are left alone.
      native().cudaRmsnormBackward(dDY, dX, dG, dR, null, dDG, null, rows, cols, true, false);
      const twice = Float64Array.from(bwd.dgamma, (v) => 2 * v);
      expectClose(readBuffer(dDG), twice, { bound: Float64Array.from(bound.dg, (v) => 2 * v), rel: TOL.dgamma, abs: 1e-30, what: 'dgamma +=', seed: rand.seed });
      for (const buf of [dX, dG, dB, dY, dR, dDY, dDX, dDG, dDB]) buf.dispose();
    });
  }

  it('rejects mismatched sizes, aliasing and bad eps with typed errors', () => {
    const f = new Float32Array(8);
    const x = deviceBuffer(f);
    const g = deviceBuffer(new Float32Array(4));
    const y = deviceBuffer(f);
    const r = deviceBuffer(new Float32Array(2));
    expectCode(() => native().cudaRmsnormForward(x, g, null, y, r, 2, 5, 1e-6, false), 'ERR_RNNKIT_SHAPE');
    expectCode(() => native().cudaRmsnormForward(x, g, null, x, r, 2, 4, 1e-6, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaRmsnormForward(x, g, null, y, r, 2, 4, -1, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaRmsnormBackward(y, x, g, r, x, null, null, 2, 4, false, false), 'ERR_RNNKIT_ARG');
  });
});

describe('CUDA memory @gpu', function () {
  before(function () {
    skipWithoutGpu(this);
  });

  it('turns out-of-memory into ERR_RNNKIT_OOM with the sizes, and stays healthy', () => {
    const err = expectCode(() => new (native().DeviceBuffer)(0, 2 ** 45), 'ERR_RNNKIT_OOM');
    expect(err.message).to.match(/out of memory: requested \d+ bytes/);
    const t = tensor([1, 2, 3], [3], { device: 'cuda' });
    expect(Array.from(t.readSync())).to.deep.equal([1, 2, 3]);
    t.dispose();
  });

  it('round-trips copies around the pinned staging chunk size', async () => {
    const chunk = native().cudaStagingChunkBytes() / 4;
    const rand = makeRandom();
    for (const n of [chunk - 1, chunk, chunk + 1, 2 * chunk + 3]) {
      const host = float32(rand, n);
      const d = tensor(host, [n], { device: 'cuda' });
      expect(Buffer.from((await d.read()).buffer).equals(Buffer.from(host.buffer)), `async ${n}`).to.equal(true);
      expect(Buffer.from(d.readSync().buffer).equals(Buffer.from(host.buffer)), `sync ${n}`).to.equal(true);
      d.dispose();
    }
  });
});
