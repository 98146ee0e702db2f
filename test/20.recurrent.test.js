'use strict';
// The Recurrent op through its public class against the float64 reference
// (test/reference/recurrent.js, itself checked by finite differences in 10.reference.test.js):
// forward relative error <= 1e-5 and every gradient (dx, dhx, dcx, dweights) <= 1e-4, each relative
// to the reference's norm, on fresh random inputs and weights. The matrix runs every mode (GRU in
// both forms) x layers {1, 2, 3} x uni/bi; the other options rotate over those cases so that every
// value of each appears (a test below asserts that), and the sync and async paths alternate.
const { Recurrent } = require('../dist/recurrent');
const ref = require('./reference/recurrent');
const { randomFor } = require('./support/random');
const { expectClose } = require('./support/close');
const cases = require('./cases/recurrent');

// ||a − b|| / ||b|| <= rel (||a|| with b all zeros); a NaN or infinity in a fails.
const norm = (rel, what) => ({ rel, scale: 'norm', what });

const { forward: FORWARD_TOL, grad: GRAD_TOL } = cases.cpu.tol;



const f32 = (a) => Float32Array.from(a);

// Lengths with 0 and T among others, in an order that is neither ascending nor descending.
function unsortedLengths(rng, T, B) {
  const lens = [T, 0];
  for (let b = 2; b < B; b++) lens.push(rng.int(1, T - 1));
  rng.shuffle(lens);
  if (lens.every((v, k) => k === 0 || lens[k - 1] <= v)) lens.reverse();
  if (lens.every((v, k) => k === 0 || lens[k - 1] >= v)) [lens[0], lens[1]] = [lens[1], lens[0]];
  return Int32Array.from(lens);
}

const { CASES, caseTitle } = cases.cpu;

async function runCase(c, rng) {
  const { T, B, H } = c.sizes;
  const I = c.cfg.inputMode === 'skip' ? H : c.sizes.I;
  // A negative projSize in a case means H + projSize (the projection is narrower than H).
  const projSize = c.cfg.projSize < 0 ? H + c.cfg.projSize : c.cfg.projSize;
  const cfg = { ...c.cfg, inputSize: I, hiddenSize: H, projSize };
  const op = new Recurrent({ ...cfg, seed: rng.int(0, 2 ** 30) });
  const lstm = cfg.mode === 'lstm';
  const D = cfg.bidirectional ? 2 : 1;
  const R = cfg.projSize || H;
  const LD = cfg.numLayers * D;
  const weights = f32(rng.array(op.weights.size, -0.6, 0.6));
  op.weights.data.set(weights);

  const x = f32(rng.array(T * B * I));
  const hx = c.states ? f32(rng.array(LD * B * R)) : undefined;
  const cx = c.states && lstm ? f32(rng.array(LD * B * H)) : undefined;
  const seqLengths = c.lengths ? unsortedLengths(rng, T, B) : undefined;
  const xShape = cfg.batchFirst ? [B, T, I] : [T, B, I];
  const options = { training: true, dropout: c.dropoutOn };
  if (hx) options.hx = rnnkit.tensor(hx, [LD, B, R]);
  if (cx) options.cx = rnnkit.tensor(cx, [LD, B, H]);
  if (seqLengths) options.seqLengths = seqLengths;
  if (c.explicitDropoutSeed) options.dropoutSeed = rng.int(0, 2 ** 31);
  const xt = rnnkit.tensor(x, xShape);
  const fwd = c.async ? await op.forward(xt, options) : op.forwardSync(xt, options);
  const run = op.lastRun;
  expect(run.op).to.equal('forward');
  if (c.explicitDropoutSeed) expect(run.dropoutSeed).to.equal(options.dropoutSeed);
  expect(run.dropout).to.equal(c.dropoutOn && cfg.numLayers > 1 ? cfg.dropout : 0);

  const refCfg = { ...cfg, seed: run.dropoutSeed };
  const inputs = { x, hx, cx, seqLengths, weights, T, B, dropoutOn: c.dropoutOn };
  const want = ref.recurrentForward(refCfg, inputs);
  expect(fwd.y.shape).to.deep.equal(cfg.batchFirst ? [B, T, D * R] : [T, B, D * R]);
  expectClose(fwd.y.data, want.y, norm(FORWARD_TOL, 'y'));
  expectClose(fwd.hy.data, want.hy, norm(FORWARD_TOL, 'hy'));
  if (lstm) expectClose(fwd.cy.data, want.cy, norm(FORWARD_TOL, 'cy'));
  else expect(fwd.cy).to.equal(null);

  const grads = {};
  const bwdOptions = {};
  if (c.grads !== 'state') {
    grads.dy = f32(rng.array(fwd.y.size));
    bwdOptions.dy = rnnkit.tensor(grads.dy, fwd.y.shape);
  }
  if (c.grads !== 'dy') {
    grads.dhy = f32(rng.array(LD * B * R));
    bwdOptions.dhy = rnnkit.tensor(grads.dhy, [LD, B, R]);
    if (lstm) {
      grads.dcy = f32(rng.array(LD * B * H));
      bwdOptions.dcy = rnnkit.tensor(grads.dcy, [LD, B, H]);
    }
  }
  // The gradient target starts as random values (accumulate) or NaN (must be overwritten).
  const start = c.accumulate ? f32(rng.array(weights.length)) : new Float32Array(weights.length).fill(NaN);
  bwdOptions.dweights = rnnkit.tensor(start.slice(), [weights.length]);
  bwdOptions.accumulate = c.accumulate;
  const g = c.async ? await op.backward(fwd.saved, bwdOptions) : op.backwardSync(fwd.saved, bwdOptions);
  expect(g.dweights).to.equal(bwdOptions.dweights);
  const wantG = ref.recurrentBackward(refCfg, inputs, grads);
  expectClose(g.dx.data, wantG.dx, norm(GRAD_TOL, 'dx'));
  expect(g.dx.shape).to.deep.equal(xShape);
  expectClose(g.dhx.data, wantG.dhx, norm(GRAD_TOL, 'dhx'));
  if (lstm) expectClose(g.dcx.data, wantG.dcx, norm(GRAD_TOL, 'dcx'));
  else expect(g.dcx).to.equal(null);
  const dw = c.accumulate ? g.dweights.data.map((v, k) => v - start[k]) : g.dweights.data;
  expectClose(dw, wantG.dweights, norm(GRAD_TOL, 'dweights'));
  op.dispose();
}

describe('Recurrent vs the float64 reference', function () {
  for (const c of CASES) {
    const title = caseTitle(c);
    it(title, async function () {
      await runCase(c, randomFor(title));
    });
  }

  it('the matrix covers every option value', function () {
    const seen = {};
    const note = (key, value) => {
      seen[key] = seen[key] || new Set();
      seen[key].add(JSON.stringify(value));
    };
    for (const c of CASES) {
      const o = c.cfg;
      note('mode', `${o.mode}/${o.mode === 'gru' ? o.linearBeforeReset : ''}`);
      note('layers', o.numLayers);
      note('bi', o.bidirectional);
      note('batchFirst', o.batchFirst);
      note('skip', o.inputMode);
      note('lengths', c.lengths);
      note('states', c.states);
      note('grads', c.grads);
      note('accumulate', c.accumulate);
      note('async', c.async);
      if (o.numLayers > 1) note('dropout', `${o.dropout > 0}/${c.dropoutOn}`);
      if (o.mode === 'lstm') {
        note('proj', o.projSize !== 0);
        note('clip', o.cellClip > 0);
        note('peep', o.peepholes);
        note('lstm-skip', o.inputMode);
        note('lstm-lengths', c.lengths);
        note('lstm-grads', c.grads);
      }
      if (o.numLayers > 1 && o.dropout > 0 && c.dropoutOn) note('dropout-bi', o.bidirectional);
    }
    const want = {
      mode: 5, layers: 3, bi: 2, batchFirst: 2, skip: 2, lengths: 2, states: 2, grads: 3, accumulate: 2,
      async: 2, dropout: 4, proj: 2, clip: 2, peep: 2, 'lstm-skip': 2, 'lstm-lengths': 2, 'lstm-grads': 3,
      'dropout-bi': 2,
    };
    for (const [key, n] of Object.entries(want)) {
      expect(seen[key] ? seen[key].size : 0, `values of ${key}: ${[...(seen[key] || [])].join(' ')}`).to.equal(n);
    }
  });

  it('lengths of 0 and T, unsorted, with dropout, all LSTM extras, batchFirst and bidirectional at once', async function () {
    await runCase({
      cfg: { mode: 'lstm', numLayers: 3, bidirectional: true, batchFirst: true, inputMode: 'linear', dropout: 0.3,
        projSize: -3, cellClip: 0.7, peepholes: true },
      lengths: true, states: true, grads: 'all', dropoutOn: true, explicitDropoutSeed: false, accumulate: true,
      async: true, sizes: { T: 7, B: 6, H: 13, I: 10 },
    }, randomFor(this.test.title));
  });

  // Hidden sizes past 64 make the fused cells split each batch row over several threads.
  for (const mode of ['lstm', 'gru', 'rnn_tanh']) {
    it(`${mode}: wide layers (H = 150) with B = 1 and B = 3, split across threads`, async function () {
      for (const B of [1, 3]) {
        await runCase({
          cfg: { mode, numLayers: 2, bidirectional: true, batchFirst: false, inputMode: 'linear', dropout: 0,
            projSize: 0, cellClip: 0, peepholes: mode === 'lstm' },
          lengths: B === 3, states: true, grads: 'all', dropoutOn: false, explicitDropoutSeed: false,
          accumulate: false, async: B === 1, sizes: { T: 4, B, H: 150, I: 20 },
        }, randomFor(`${this.test.title} ${B}`));
      }
    });
  }
});
