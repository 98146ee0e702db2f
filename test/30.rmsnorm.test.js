'use strict';
// RMSNorm (lib/rmsnorm.ts over native/kernels/rmsnorm.cc) against the float64 reference in
// test/reference/rmsnorm.js, whose backward is itself checked by finite differences. Fresh random
// inputs each run (the seed is in every failure message), outputs poisoned with NaN, every ISA
// path this CPU can run, and the typed errors of bad arguments.
const { tensor } = rnnkit;
const { RMSNorm, rmsNorm, rmsNormSync, rmsNormBackward, rmsNormBackwardSync } = require('../dist/rmsnorm');
const { native } = require('../dist/native');
const reference = require('./reference/rmsnorm');
const { makeRandom } = require('./reference/random');
const { expectClose } = require('./support/close');
const cases = require('./cases/rmsnorm');

const TOL = cases.cpu.tol;
const { gradcheck } = require('./reference/gradcheck');

const nanArray = (n) => new Float32Array(n).fill(NaN);
const nanTensor = (shape) => tensor(nanArray(shape.reduce((a, b) => a * b, 1)), shape);

// A problem: float32 inputs drawn from `rnd`; rows differ in scale so rrms varies.
function problem(rnd, rows, cols, { bias = true, eps = 1e-6 } = {}) {
  const x = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const scale = Math.exp(rnd.uniform(-3, 3));
    for (let j = 0; j < cols; j++) x[r * cols + j] = scale * rnd.uniform(-1, 1);
  }
  const f32 = (n, lo, hi) => Float32Array.from(rnd.array(n, lo, hi));
  return {
    rows, cols, eps, x,
    gamma: f32(cols, -2, 2),
    beta: bias ? f32(cols, -1, 1) : null,
    dy: f32(rows * cols, -1, 1),
  };
}



// Runs forward and backward through the functional Sync API with NaN-poisoned outputs (or
// accumulating into given gradients) and checks everything against the reference.
function checkProblem(p, seed, { shape = [p.rows, p.cols], axis = -1, accumulate = false } = {}) {
  const { rows, cols, eps } = p;
  const rowShape = shape.slice(0, shape.length + (axis < 0 ? axis : axis - shape.length));
  const x = tensor(p.x, shape);
  const gamma = tensor(p.gamma);
  const beta = p.beta ? tensor(p.beta) : null;
  const f = rmsNormSync(x, gamma, beta, { axis, eps, y: nanTensor(shape), rrms: nanTensor(rowShape) });
  expect(f.y.shape).to.deep.equal(shape);
  expect(f.rrms.shape).to.deep.equal(rowShape);
  const want = reference.forward(p.x, p.gamma, p.beta, rows, cols, eps);
  const b = cases.errorBounds(p, want.rrms);
  expectClose(f.rrms.data, want.rrms, { bound: want.rrms, rel: TOL.rrms, abs: 1e-30, what: 'rrms', seed: seed });
  expectClose(f.y.data, want.y, { bound: b.y, rel: TOL.y, abs: 1e-30, what: 'y', seed: seed });

  const start = Float32Array.from({ length: cols }, (_, j) => (j % 7) - 3);
  const dgamma = tensor(accumulate ? start.slice() : nanArray(cols));
  const dbeta = p.beta ? tensor(accumulate ? start.slice() : nanArray(cols)) : undefined;
  const g = rmsNormBackwardSync(x, f.rrms, tensor(p.dy, shape), gamma, {
    axis, bias: p.beta !== null, dx: nanTensor(shape), dgamma, dbeta, accumulate,
  });
  const wantG = reference.backward(p.dy, p.x, p.gamma, rows, cols, eps);
  if (accumulate) {
    for (let j = 0; j < cols; j++) {
      wantG.dgamma[j] += start[j];
      wantG.dbeta[j] += start[j];
      b.dg[j] += Math.abs(start[j]);
      b.db[j] += Math.abs(start[j]);
    }
  }
  expectClose(g.dx.data, wantG.dx, { bound: b.dx, rel: TOL.dx, abs: 1e-30, what: 'dx', seed: seed });
  expectClose(g.dgamma.data, wantG.dgamma, { bound: b.dg, rel: TOL.dgamma, abs: 1e-30, what: 'dgamma', seed: seed });
  if (p.beta) expectClose(g.dbeta.data, wantG.dbeta, { bound: b.db, rel: TOL.dbeta, abs: 1e-30, what: 'dbeta', seed: seed });
  else expect(g.dbeta).to.equal(null);
}

describe('RMSNorm: float64 reference', () => {
  it('backward of the reference matches finite differences (eps > 0 and eps = 0)', () => {
    const rnd = makeRandom();
    for (const eps of [1e-3, 0]) {
      const rows = 3;
      const cols = 5;
      const x = rnd.array(rows * cols);
      const gamma = rnd.array(cols);
      const beta = rnd.array(cols);
      const dy = rnd.array(rows * cols);
      const loss = () => {
        const { y } = reference.forward(x, gamma, beta, rows, cols, eps);
        return y.reduce((s, v, k) => s + v * dy[k], 0);
      };
      const g = reference.backward(dy, x, gamma, rows, cols, eps);
      for (const [name, param, analytic] of [['x', x, g.dx], ['gamma', gamma, g.dgamma], ['beta', beta, g.dbeta]]) {
        const worst = gradcheck(loss, param, analytic);
        expect(worst.error, `d${name} eps=${eps} seed ${rnd.seed}`).to.be.below(1e-6);
      }
    }
  });

  it('the closed-form dx of the kernel contract equals the chain rule of the reference', () => {
    const rnd = makeRandom();
    const rows = 4;
    const cols = 9;
    const x = rnd.array(rows * cols);
    const gamma = rnd.array(cols);
    const dy = rnd.array(rows * cols);
    const { rrms } = reference.forward(x, gamma, null, rows, cols, 1e-5);
    const { dx } = reference.backward(dy, x, gamma, rows, cols, 1e-5);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < cols; j++) s += dy[r * cols + j] * gamma[j] * x[r * cols + j];
      for (let j = 0; j < cols; j++) {
        const k = r * cols + j;
        const closed = rrms[r] * dy[k] * gamma[j] - (rrms[r] ** 3 / cols) * s * x[k];
        expect(Math.abs(closed - dx[k]), `seed ${rnd.seed}`).to.be.below(1e-12 * (1 + Math.abs(dx[k])));
      }
    }
  });
});

describe('RMSNorm: kernels against the reference', function () {
  this.timeout(20000);
  const saved = { isa: null };
  before(() => { saved.isa = rnnkit.backendInfo().isa; });
  after(() => native().setIsa(saved.isa));

  for (const isa of availableIsas()) {
    describe(`ISA ${isa}`, () => {
      before(() => native().setIsa(isa));
      for (const cols of cases.cpu.widths) {
        for (const rows of [1, cases.cpu.manyRows(cols)]) {
          it(`${rows} x ${cols}, bias on and off`, () => {
            const rnd = makeRandom();
            checkProblem(problem(rnd, rows, cols), rnd.seed);
            checkProblem(problem(rnd, rows, cols, { bias: false }), rnd.seed);
          });
        }
      }
      it('outputs of 8 MiB and more (streaming stores): row split and column split', () => {
        const rnd = makeRandom();
        for (const [rows, cols, opts] of cases.cpu.large) checkProblem(problem(rnd, rows, cols, opts), rnd.seed);
      });
      it('accumulates into dgamma and dbeta (one thread, row split and column split)', () => {
        const rnd = makeRandom();
        for (const [rows, cols] of cases.cpu.accumulate) checkProblem(problem(rnd, rows, cols), rnd.seed, { accumulate: true });
      });
      it('eps = 0 on rows that are not all zero', () => {
        const rnd = makeRandom();
        for (const [rows, cols] of cases.cpu.eps0) checkProblem(problem(rnd, rows, cols, { eps: 0 }), rnd.seed);
      });
      it('odd row counts and widths (tails, uneven thread shares)', () => {
        const rnd = makeRandom();
        for (let k = 0; k < 6; k++) {
          checkProblem(problem(rnd, rnd.int(1, 70), rnd.int(1, 3000), { bias: rnd.next() < 0.5 }), rnd.seed);
        }
      });
    });
  }

  it('normalizes over the axes from `axis` on', () => {
    const rnd = makeRandom();
    const shape = [3, 4, 5, 6];
    checkProblem(problem(rnd, 12, 30), rnd.seed, { shape, axis: -2 });
    checkProblem(problem(rnd, 12, 30), rnd.seed, { shape, axis: 2 });
    checkProblem(problem(rnd, 1, 360), rnd.seed, { shape, axis: 0 });
    checkProblem(problem(rnd, 60, 6), rnd.seed, { shape, axis: 3 });
  });
});

describe('RMSNorm: the operator object', () => {
  it('defaults: gamma ones, beta zeros, eps 1e-6, last axis', () => {
    const norm = new RMSNorm({ size: 4 });
    expect(Array.from(norm.gamma.data)).to.deep.equal([1, 1, 1, 1]);
    expect(Array.from(norm.beta.data)).to.deep.equal([0, 0, 0, 0]);
    expect(norm.eps).to.equal(1e-6);
    const { y, rrms } = norm.forwardSync(tensor(new Float32Array([3, 3, 3, 3, 0, 0, 0, 2]), [2, 4]));
    expect(rrms.data[0]).to.be.closeTo(1 / Math.sqrt(9 + 1e-6), 1e-7);
    expect(rrms.data[1]).to.be.closeTo(1 / Math.sqrt(1 + 1e-6), 1e-7);
    expect(y.data[0]).to.be.closeTo(1, 1e-6);
    expect(y.data[7]).to.be.closeTo(2, 1e-6);
    norm.dispose();
  });

  it('copies initial values from Float32Arrays and tensors; a shape size normalizes the last axes', async () => {
    const rnd = makeRandom();
    const p = problem(rnd, 6, 12);
    const g0 = p.gamma.slice();
    const norm = new RMSNorm({ size: [3, 4], gamma: p.gamma, beta: tensor(p.beta.slice(), [3, 4]), eps: 1e-5 });
    p.gamma.fill(0);
    expect(norm.gamma.shape).to.deep.equal([3, 4]);
    expect(norm.axis).to.equal(-2);
    p.gamma.set(g0);
    const x = tensor(p.x, [2, 3, 3, 4]);
    const f = await norm.forward(x);
    expect(f.rrms.shape).to.deep.equal([2, 3]);
    const want = reference.forward(p.x, p.gamma, p.beta, 6, 12, 1e-5);
    const b = cases.errorBounds({ ...p, eps: 1e-5 }, want.rrms);
    expectClose(f.y.data, want.y, { bound: b.y, rel: TOL.y, abs: 1e-30, what: 'y', seed: rnd.seed });
    const g = await norm.backward({ x, rrms: f.rrms, dy: tensor(p.dy, [2, 3, 3, 4]) });
    const wantG = reference.backward(p.dy, p.x, p.gamma, 6, 12, 1e-5);
    expectClose(g.dx.data, wantG.dx, { bound: b.dx, rel: TOL.dx, abs: 1e-30, what: 'dx', seed: rnd.seed });
    expectClose(g.dgamma.data, wantG.dgamma, { bound: b.dg, rel: TOL.dgamma, abs: 1e-30, what: 'dgamma', seed: rnd.seed });
    expectClose(g.dbeta.data, wantG.dbeta, { bound: b.db, rel: TOL.dbeta, abs: 1e-30, what: 'dbeta', seed: rnd.seed });
    expect(g.dgamma.shape).to.deep.equal([3, 4]);
  });

  it('bias: false has no beta and no dbeta', () => {
    const norm = new RMSNorm({ size: 3, bias: false, gamma: new Float32Array([1, 2, 3]) });
    expect(norm.beta).to.equal(null);
    const x = tensor(new Float32Array([1, -1, 2]), [1, 3]);
    const f = norm.forwardSync(x);
    const g = norm.backwardSync({ x, rrms: f.rrms, dy: tensor(new Float32Array([1, 1, 1]), [1, 3]) });
    expect(g.dbeta).to.equal(null);
  });

  it('accumulates gradients of several micro-batches into caller tensors', async () => {
    const rnd = makeRandom();
    const p1 = problem(rnd, 5, 8);
    const p2 = problem(rnd, 7, 8);
    const norm = new RMSNorm({ size: 8, gamma: p1.gamma, beta: p1.beta });
    const dgamma = tensor(nanArray(8));
    const dbeta = tensor(nanArray(8));
    const want = new Float64Array(8);
    const wantB = new Float64Array(8);
    for (const [k, p] of [p1, p2].entries()) {
      const x = tensor(p.x, [p.rows, 8]);
      const f = norm.forwardSync(x);
      await norm.backward({ x, rrms: f.rrms, dy: tensor(p.dy, [p.rows, 8]), dgamma, dbeta, accumulate: k > 0 });
      const r = reference.backward(p.dy, p.x, p1.gamma, p.rows, 8, 1e-6);
      for (let j = 0; j < 8; j++) {
        want[j] += r.dgamma[j];
        wantB[j] += r.dbeta[j];
      }
    }
    for (let j = 0; j < 8; j++) {
      expect(dgamma.data[j], `seed ${rnd.seed}`).to.be.closeTo(want[j], 1e-4 * (1 + Math.abs(want[j])));
      expect(dbeta.data[j], `seed ${rnd.seed}`).to.be.closeTo(wantB[j], 1e-4 * (1 + Math.abs(wantB[j])));
    }
  });

  it('async and sync give identical results', async () => {
    const rnd = makeRandom();
    const p = problem(rnd, 300, 1024);
    const norm = new RMSNorm({ size: 1024, gamma: p.gamma, beta: p.beta });
    const x = tensor(p.x, [300, 1024]);
    const dy = tensor(p.dy, [300, 1024]);
    const a = await norm.forward(x);
    const s = norm.forwardSync(x);
    expect(a.y.data).to.deep.equal(s.y.data);
    expect(a.rrms.data).to.deep.equal(s.rrms.data);
    const ga = await norm.backward({ x, rrms: a.rrms, dy });
    const gs = norm.backwardSync({ x, rrms: s.rrms, dy });
    expect(ga.dx.data).to.deep.equal(gs.dx.data);
    expect(ga.dgamma.data).to.deep.equal(gs.dgamma.data);
    expect(ga.dbeta.data).to.deep.equal(gs.dbeta.data);
    const fa = await rmsNorm(x, norm.gamma, norm.beta);
    expect(fa.y.data).to.deep.equal(s.y.data);
    const fb = await rmsNormBackward(x, a.rrms, dy, norm.gamma);
    expect(fb.dx.data).to.deep.equal(gs.dx.data);
  });

  it('keeps the event loop running while a large call is in flight', async function () {
    this.timeout(20000);
    const rows = 128;
    const cols = 65536;
    const x = tensor(Float32Array.from({ length: rows * cols }, (_, k) => (k % 13) - 6), [rows, cols]);
    const norm = new RMSNorm({ size: cols });
    const t0 = process.hrtime.bigint();
    const s = norm.forwardSync(x);
    const syncMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const dy = s.y;
    let ticks = 0;
    let spinning = true;
    const spin = () => { ticks += 1; if (spinning) setImmediate(spin); };
    setImmediate(spin);
    // Outputs are given, so the call itself only checks and queues (allocating 32 MB would be
    // part of any API that returns new tensors, and is not what this test is about).
    const out = { dx: nanTensor([rows, cols]), dgamma: nanTensor([cols]), dbeta: nanTensor([cols]) };
    const t1 = process.hrtime.bigint();
    const promise = norm.backward({ x, rrms: s.rrms, dy, ...out });
    const callMs = Number(process.hrtime.bigint() - t1) / 1e6;
    await promise;
    const totalMs = Number(process.hrtime.bigint() - t1) / 1e6;
    spinning = false;
    expect(callMs, `call took ${callMs.toFixed(1)} ms of ${totalMs.toFixed(1)} ms; a sync forward ${syncMs.toFixed(1)} ms`)
      .to.be.below(Math.max(1, totalMs / 4));
    expect(ticks, 'event-loop turns while the backward ran').to.be.at.least(3);
  });

  it('disposes its parameters', () => {
    const norm = new RMSNorm({ size: 2 });
    const g = norm.gamma;
    norm.dispose();
    norm.dispose();
    expect(g.disposed).to.equal(true);
    expectCode(() => norm.gamma, 'ERR_RNNKIT_DISPOSED');
    expectCode(() => norm.forwardSync(tensor(new Float32Array(2), [1, 2])), 'ERR_RNNKIT_DISPOSED');
  });
});

describe('RMSNorm: non-finite inputs', () => {
  it('propagate as NaN in their own row and leave other rows alone', () => {
    for (const isa of availableIsas()) {
      const previous = rnnkit.backendInfo().isa;
      native().setIsa(isa);
      try {
        for (const cols of [3, 20, 5000]) {
          const x = new Float32Array(3 * cols).fill(0.5);
          x[1] = NaN;
          x[cols + 2] = Infinity;
          const gamma = tensor(new Float32Array(cols).fill(1));
          const xt = tensor(x, [3, cols]);
          const f = rmsNormSync(xt, gamma, null);
          expect(Number.isNaN(f.rrms.data[0]), `${isa} NaN row rrms`).to.equal(true);
          expect(f.y.data.slice(0, cols).every(Number.isNaN), `${isa} NaN row y`).to.equal(true);
          expect(f.rrms.data[1], `${isa} Inf row rrms`).to.equal(0);
          expect(Number.isNaN(f.y.data[cols + 2]), `${isa} Inf element`).to.equal(true);
          expect(f.rrms.data[2]).to.be.closeTo(2, 1e-5);
          expect(f.y.data[2 * cols]).to.be.closeTo(1, 1e-5);
          const dy = tensor(new Float32Array(3 * cols).fill(1), [3, cols]);
          const g = rmsNormBackwardSync(xt, f.rrms, dy, gamma);
          expect(g.dx.data.slice(0, cols).every(Number.isNaN), `${isa} NaN row dx`).to.equal(true);
          expect(Number.isNaN(g.dgamma.data[1]), `${isa} dgamma of the NaN column`).to.equal(true);
          expect(Number.isFinite(g.dx.data[2 * cols])).to.equal(true);
        }
      } finally {
        native().setIsa(previous);
      }
    }
  });

  it('eps = 0 and an all-zero row: rrms Infinity, y NaN (documented)', () => {
    const f = rmsNormSync(tensor(new Float32Array(4), [1, 4]), tensor(new Float32Array(4).fill(1)), null, { eps: 0 });
    expect(f.rrms.data[0]).to.equal(Infinity);
    expect(f.y.data.every(Number.isNaN)).to.equal(true);
  });
});

describe('RMSNorm: typed errors', () => {
  const x = () => tensor(new Float32Array(12), [3, 4]);
  const g4 = () => tensor(new Float32Array(4).fill(1));

  it('bad constructor options', () => {
    expectCode(() => new RMSNorm(), 'ERR_RNNKIT_ARG');
    expectCode(() => new RMSNorm({ size: 0 }), 'ERR_RNNKIT_ARG');
    expectCode(() => new RMSNorm({ size: 2.5 }), 'ERR_RNNKIT_ARG');
    expectCode(() => new RMSNorm({ size: [] }), 'ERR_RNNKIT_ARG');
    expectCode(() => new RMSNorm({ size: 4, eps: -1 }), 'ERR_RNNKIT_ARG');
    expectCode(() => new RMSNorm({ size: 4, eps: NaN }), 'ERR_RNNKIT_ARG');
    expectCode(() => new RMSNorm({ size: 4, eps: '1e-6' }), 'ERR_RNNKIT_ARG');
    expectCode(() => new RMSNorm({ size: 4, axis: 0.5 }), 'ERR_RNNKIT_ARG');
    expectCode(() => new RMSNorm({ size: 4, bias: false, beta: new Float32Array(4) }), 'ERR_RNNKIT_ARG');
    expectCode(() => new RMSNorm({ size: 4, gamma: new Float32Array(3) }), 'ERR_RNNKIT_SHAPE');
    expectCode(() => new RMSNorm({ size: 4, gamma: new Float64Array(4) }), 'ERR_RNNKIT_DTYPE');
    expectCode(() => new RMSNorm({ size: 4, gamma: [1, 1, 1, 1] }), 'ERR_RNNKIT_ARG');
    const t = g4();
    t.dispose();
    expectCode(() => new RMSNorm({ size: 4, gamma: t }), 'ERR_RNNKIT_DISPOSED');
  });

  it('wrong shapes', async () => {
    const norm = new RMSNorm({ size: 4 });
    expectCode(() => norm.forwardSync(tensor(new Float32Array(15), [3, 5])), 'ERR_RNNKIT_SHAPE');
    await expectReject(norm.forward(tensor(new Float32Array(15), [3, 5])), 'ERR_RNNKIT_SHAPE');
    const f = norm.forwardSync(x());
    expectCode(() => norm.backwardSync({ x: x(), rrms: f.rrms, dy: tensor(new Float32Array(12), [4, 3]) }), 'ERR_RNNKIT_SHAPE');
    expectCode(() => norm.backwardSync({ x: x(), rrms: tensor(new Float32Array(4)), dy: x() }), 'ERR_RNNKIT_SHAPE');
    expectCode(() => norm.backwardSync({ x: x(), rrms: f.rrms, dy: x(), dgamma: tensor(new Float32Array(3)) }), 'ERR_RNNKIT_SHAPE');
    expectCode(() => norm.forwardSync(x(), { y: tensor(new Float32Array(12), [12]) }), 'ERR_RNNKIT_SHAPE');
    const wide = new RMSNorm({ size: [2, 2] });
    expectCode(() => wide.forwardSync(tensor(new Float32Array(12), [3, 4])), 'ERR_RNNKIT_SHAPE');
    expectCode(() => rmsNormSync(x(), g4(), tensor(new Float32Array(3))), 'ERR_RNNKIT_SHAPE');
  });

  it('bad arguments and options of the functional form', async () => {
    expectCode(() => rmsNormSync(new Float32Array(12), g4(), null), 'ERR_RNNKIT_ARG');
    expectCode(() => rmsNormSync(x(), g4(), null, { axis: 2 }), 'ERR_RNNKIT_ARG');
    expectCode(() => rmsNormSync(x(), g4(), null, { axis: -3 }), 'ERR_RNNKIT_ARG');
    expectCode(() => rmsNormSync(x(), g4(), null, { eps: Infinity }), 'ERR_RNNKIT_ARG');
    expectCode(() => rmsNormSync(x(), g4(), null, null), 'ERR_RNNKIT_ARG');
    const f = rmsNormSync(x(), g4(), null);
    expectCode(() => rmsNormBackwardSync(x(), f.rrms, x(), g4(), { accumulate: true }), 'ERR_RNNKIT_ARG');
    expectCode(() => rmsNormBackwardSync(x(), f.rrms, x(), g4(), { accumulate: 1 }), 'ERR_RNNKIT_ARG');
    expectCode(() => rmsNormBackwardSync(x(), f.rrms, x(), g4(), { bias: false, dbeta: g4() }), 'ERR_RNNKIT_ARG');
    await expectReject(rmsNormBackward(x(), f.rrms, x(), g4(), { accumulate: true }), 'ERR_RNNKIT_ARG');
  });

  it('disposed tensors', async () => {
    const norm = new RMSNorm({ size: 4 });
    const gone = x();
    gone.dispose();
    expectCode(() => norm.forwardSync(gone), 'ERR_RNNKIT_DISPOSED');
    await expectReject(norm.forward(gone), 'ERR_RNNKIT_DISPOSED');
    const f = norm.forwardSync(x());
    expectCode(() => norm.backwardSync({ x: x(), rrms: f.rrms, dy: gone }), 'ERR_RNNKIT_DISPOSED');
    const r = f.rrms.clone();
    r.dispose();
    expectCode(() => norm.backwardSync({ x: x(), rrms: r, dy: x() }), 'ERR_RNNKIT_DISPOSED');
  });

  it('the native binding checks every argument itself', () => {
    const n = native();
    const a = (k) => new Float32Array(k);
    const fwd = (args) => () => n.rmsnormForward(...args);
    const good = [a(12), a(4), null, a(12), a(3), 3, 4, 1e-6, false];
    expect(fwd(good)()).to.equal(undefined);
    const bad = (i, v, code) => {
      const args = good.slice();
      args[i] = v;
      expectCode(fwd(args), code);
    };
    bad(0, new Float64Array(12), 'ERR_RNNKIT_DTYPE');
    bad(0, [0, 0], 'ERR_RNNKIT_DTYPE');
    bad(0, a(11), 'ERR_RNNKIT_SHAPE');
    bad(1, a(5), 'ERR_RNNKIT_SHAPE');
    bad(2, a(3), 'ERR_RNNKIT_SHAPE');
    bad(4, a(4), 'ERR_RNNKIT_SHAPE');
    bad(5, 2.5, 'ERR_RNNKIT_ARG');
    bad(5, -1, 'ERR_RNNKIT_ARG');
    bad(6, 0, 'ERR_RNNKIT_ARG');
    bad(7, -1e-6, 'ERR_RNNKIT_ARG');
    bad(7, NaN, 'ERR_RNNKIT_ARG');
    bad(7, 1e39, 'ERR_RNNKIT_ARG');
    bad(8, 1, 'ERR_RNNKIT_ARG');
    const shared = a(24);
    expectCode(fwd([shared.subarray(0, 12), a(4), null, shared.subarray(8, 20), a(3), 3, 4, 0, false]), 'ERR_RNNKIT_ARG');
    expectCode(() => n.rmsnormForward(a(4), a(4), null, a(4), a(1), 1, 4), 'ERR_RNNKIT_ARG');

    const bwd = [a(12), a(12), a(4), a(3), a(12), a(4), a(4), 3, 4, false, false];
    expect(n.rmsnormBackward(...bwd)).to.equal(undefined);
    const badB = (i, v, code) => {
      const args = bwd.slice();
      args[i] = v;
      expectCode(() => n.rmsnormBackward(...args), code);
    };
    badB(3, a(2), 'ERR_RNNKIT_SHAPE');
    badB(4, a(13), 'ERR_RNNKIT_SHAPE');
    badB(5, new Int32Array(4), 'ERR_RNNKIT_DTYPE');
    badB(6, bwd[5], 'ERR_RNNKIT_ARG');
    badB(4, bwd[1], 'ERR_RNNKIT_ARG');
    badB(9, 'yes', 'ERR_RNNKIT_ARG');
    expect(n.rmsnormBackward(a(12), a(12), a(4), a(3), null, null, null, 3, 4, false, false)).to.equal(undefined);
  });
});

describe('RMSNorm on CUDA tensors @gpu', () => {
  it('falls back to the CPU and returns results on the device of x', async function () {
    skipWithoutGpu(this);
    const rnd = makeRandom();
    const p = problem(rnd, 9, 40);
    const norm = new RMSNorm({ size: 40, gamma: p.gamma, beta: p.beta });
    const xc = tensor(p.x, [9, 40]).to('cuda');
    const f = await norm.forward(xc);
    expect(f.y.device).to.equal(xc.device);
    const want = norm.forwardSync(tensor(p.x, [9, 40]));
    expect(await f.y.read()).to.deep.equal(want.y.data);
    const g = norm.backwardSync({ x: xc, rrms: f.rrms, dy: tensor(p.dy, [9, 40]).to('cuda') });
    expect(g.dx.device).to.equal(xc.device);
    expect(g.dgamma.device).to.equal('cpu');
  });
});
