'use strict';
// RecurrentNetwork (lib/stepnet.ts): step nets built from the built-in ops against float64
// references on fresh random inputs (seed printed on failure): fc + lstmUnit and fc + gruUnit (both
// forms) against the Recurrent reference (1 and 2 layers, unsorted lengths with 0 and T, aliases
// over every step and the last one with external gradients), against the fused op itself, a custom
// cell (LSTM with RMSNorm on its gates) and a windowed cell against finite differences of float64
// implementations, recompute-on-backward, the blob fetcher, both executors, and malformed nets.
const { StepNetBuilder, RecurrentNetwork } = require('../dist/stepnet');
const { Recurrent } = require('../dist/recurrent');
const ref = require('./reference/recurrent');
const sref = require('./reference/stepnet');
const { numericGradient } = require('./reference/gradcheck');
const { randomFor } = require('./support/random');
const { expectClose } = require('./support/close');

// ||a − b|| / ||b|| <= rel (||a|| with b all zeros); a NaN or infinity in a fails.
const norm = (rel, what) => ({ rel, scale: 'norm', what });

const { tensor } = rnnkit;
const f32 = (a) => Float32Array.from(a);


function unsortedLengths(rng, T, B) {
  const lens = [T, 0];
  for (let b = 2; b < B; b++) lens.push(rng.int(1, T - 1));
  rng.shuffle(lens);
  return Int32Array.from(lens);
}

// Slices one (layer) parameter out of the reference's packed layout.
function packedParams(cfg, W) {
  return ref.paramOffsets(cfg).map((slot) => {
    const out = {};
    for (const kind of ['w_ih', 'w_hh', 'b_ih', 'b_hh']) {
      const s = slot[kind];
      out[kind] = { data: W.subarray(s.offset, s.offset + s.rows * s.cols), rows: s.rows, cols: s.cols, offset: s.offset };
    }
    return out;
  });
}

/** fc + cell step net equivalent to the fused op: one layer per slot, inputs x, states h{l}, c{l}. */
function buildRecurrentNet(cfg, W, { recompute = false } = {}) {
  const b = new StepNetBuilder();
  const H = cfg.hiddenSize;
  b.input('x', cfg.inputSize);
  const slots = packedParams(cfg, W);
  slots.forEach((p, l) => {
    const t = (v, shape) => tensor(f32(v), shape);
    b.param(`W_ih${l}`, t(p.w_ih.data, [p.w_ih.rows, p.w_ih.cols]));
    b.param(`b_ih${l}`, t(p.b_ih.data, [p.b_ih.rows]));
    b.state(`h${l}`, H);
    b.link(`h${l}_prev`, `h${l}`);
    const input = l === 0 ? b.link('x_t', 'x') : `h${l - 1}_t`;
    b.fc(`gx${l}`, input, `W_ih${l}`, `b_ih${l}`);
    if (cfg.mode === 'lstm') {
      b.param(`W_hh${l}`, t(p.w_hh.data, [p.w_hh.rows, p.w_hh.cols]));
      b.param(`b_hh${l}`, t(p.b_hh.data, [p.b_hh.rows]));
      b.state(`c${l}`, H);
      b.link(`c${l}_prev`, `c${l}`);
      b.fc(`gh${l}`, `h${l}_prev`, `W_hh${l}`, `b_hh${l}`);
      b.add(`gates${l}`, `gx${l}`, `gh${l}`);
      b.lstmUnit([`h${l}_t`, `c${l}_t`], `gates${l}`, `c${l}_prev`);
      b.link(`c${l}_t`, `c${l}`, { offset: 1 });
      b.alias(`cy${l}`, `c${l}`, -1);
      if (recompute) b.recompute(`gates${l}`);
    } else if (cfg.linearBeforeReset !== false) {
      b.param(`W_hh${l}`, t(p.w_hh.data, [p.w_hh.rows, p.w_hh.cols]));
      b.param(`b_hh${l}`, t(p.b_hh.data, [p.b_hh.rows]));
      b.fc(`gh${l}`, `h${l}_prev`, `W_hh${l}`, `b_hh${l}`);
      b.gruUnit(`h${l}_t`, `gx${l}`, `gh${l}`, `h${l}_prev`);
    } else {
      const whh = p.w_hh.data;
      b.param(`W_hrz${l}`, t(whh.subarray(0, 2 * H * H), [2 * H, H]));
      b.param(`b_hrz${l}`, t(p.b_hh.data.subarray(0, 2 * H), [2 * H]));
      b.param(`W_hn${l}`, t(whh.subarray(2 * H * H), [H, H]));
      b.param(`b_hn${l}`, t(p.b_hh.data.subarray(2 * H), [H]));
      b.fc(`gh${l}`, `h${l}_prev`, `W_hrz${l}`, `b_hrz${l}`);
      b.gruUnit(`h${l}_t`, `gx${l}`, `gh${l}`, `h${l}_prev`, { linearBeforeReset: false, wHn: `W_hn${l}`, bHn: `b_hn${l}` });
    }
    b.link(`h${l}_t`, `h${l}`, { offset: 1 });
    b.alias(`hy${l}`, `h${l}`, -1);
  });
  b.alias('y', `h${slots.length - 1}`, 1);
  return b.build();
}

// Gathers the step net's parameter gradients back into the packed layout.
function packGradients(cfg, W, params) {
  const out = new Float64Array(W.length);
  const H = cfg.hiddenSize;
  packedParams(cfg, W).forEach((p, l) => {
    const put = (slot, data, at = 0) => out.set(data, slot.offset + at);
    put(p.w_ih, params[`W_ih${l}`].data);
    put(p.b_ih, params[`b_ih${l}`].data);
    if (params[`W_hh${l}`]) {
      put(p.w_hh, params[`W_hh${l}`].data);
      put(p.b_hh, params[`b_hh${l}`].data);
    } else {
      put(p.w_hh, params[`W_hrz${l}`].data);
      put(p.w_hh, params[`W_hn${l}`].data, 2 * H * H);
      put(p.b_hh, params[`b_hrz${l}`].data);
      put(p.b_hh, params[`b_hn${l}`].data, 2 * H);
    }
  });
  return out;
}

function stateInputs(L, B, H, hx, cx) {
  const inputs = {};
  for (let l = 0; l < L; l++) {
    inputs[`h${l}`] = tensor(f32(hx.subarray(l * B * H, (l + 1) * B * H)), [B, H]);
    if (cx) inputs[`c${l}`] = tensor(f32(cx.subarray(l * B * H, (l + 1) * B * H)), [B, H]);
  }
  return inputs;
}

function checkAgainstReference(title, cfg, { T, B, lengths, executor, recompute, sync }) {
  it(title, async function () {
    const rng = randomFor(title);
    const L = cfg.numLayers ?? 1;
    const H = cfg.hiddenSize;
    const W = f32(rng.array(ref.weightsSize(cfg), -0.5, 0.5));
    const x = rng.array(T * B * cfg.inputSize);
    const hx = rng.array(L * B * H);
    const cx = cfg.mode === 'lstm' ? rng.array(L * B * H) : null;
    const seqLengths = lengths ? unsortedLengths(rng, T, B) : null;
    const dy = rng.array(T * B * H);
    const dhy = rng.array(L * B * H);
    const dcy = cx ? rng.array(L * B * H) : null;
    const inputs = { x, hx, cx, seqLengths, weights: W, T, B };
    const want = ref.recurrentForward(cfg, inputs);
    const wantG = ref.recurrentBackward(cfg, inputs, { dy, dhy, dcy });

    const net = buildRecurrentNet(cfg, W, { recompute });
    const feed = { x: tensor(f32(x), [T, B, cfg.inputSize]), ...stateInputs(L, B, H, hx, cx) };
    const opts = { seqLengths, executor };
    const fwd = sync ? net.forwardSync(feed, opts) : await net.forward(feed, opts);
    expect(net.lastExecutor).to.equal(executor);
    expectClose(fwd.outputs.y.data, want.y, norm(1e-5, 'y'));
    for (let l = 0; l < L; l++) {
      expectClose(fwd.outputs[`hy${l}`].data, want.hy.subarray(l * B * H, (l + 1) * B * H), norm(1e-5, `hy${l}`));
      if (cx) expectClose(fwd.outputs[`cy${l}`].data, want.cy.subarray(l * B * H, (l + 1) * B * H), norm(1e-5, `cy${l}`));
    }
    const grads = { y: tensor(f32(dy), [T, B, H]) };
    for (let l = 0; l < L; l++) {
      grads[`hy${l}`] = tensor(f32(dhy.subarray(l * B * H, (l + 1) * B * H)), [1, B, H]);
      if (dcy) grads[`cy${l}`] = tensor(f32(dcy.subarray(l * B * H, (l + 1) * B * H)), [1, B, H]);
    }
    const g = sync ? net.backwardSync(fwd.saved, grads, { executor }) : await net.backward(fwd.saved, grads, { executor });
    expectClose(g.inputs.x.data, wantG.dx, norm(1e-4, 'dx'));
    for (let l = 0; l < L; l++) {
      expectClose(g.inputs[`h${l}`].data, wantG.dhx.subarray(l * B * H, (l + 1) * B * H), norm(1e-4, `dh${l}`));
      if (cx) expectClose(g.inputs[`c${l}`].data, wantG.dcx.subarray(l * B * H, (l + 1) * B * H), norm(1e-4, `dc${l}`));
    }
    expectClose(packGradients(cfg, W, g.params), wantG.dweights, norm(1e-4, 'dweights'));
  });
}

describe('RecurrentNetwork: fc + cell step nets against the Recurrent reference', function () {
  this.timeout(20000);
  const lstm1 = { mode: 'lstm', inputSize: 5, hiddenSize: 7 };
  const lstm2 = { mode: 'lstm', inputSize: 4, hiddenSize: 6, numLayers: 2 };
  checkAgainstReference('LSTM, 1 layer, lengths, sequential', lstm1, { T: 6, B: 4, lengths: true, executor: 'sequential', sync: true });
  checkAgainstReference('LSTM, 1 layer, lengths, wavefront (async)', lstm1, { T: 6, B: 4, lengths: true, executor: 'wavefront' });
  checkAgainstReference('LSTM, 2 layers stacked, wavefront', lstm2, { T: 7, B: 3, executor: 'wavefront' });
  checkAgainstReference('LSTM, 2 layers stacked, lengths, sequential', lstm2, { T: 5, B: 4, lengths: true, executor: 'sequential', sync: true });
  checkAgainstReference('LSTM, 2 layers, gates recomputed on backward', lstm2,
    { T: 5, B: 3, lengths: true, executor: 'wavefront', recompute: true });
  checkAgainstReference('GRU (linear before reset), 2 layers, lengths', { mode: 'gru', inputSize: 3, hiddenSize: 5, numLayers: 2 },
    { T: 5, B: 4, lengths: true, executor: 'wavefront' });
  checkAgainstReference('GRU (ONNX form), lengths', { mode: 'gru', inputSize: 4, hiddenSize: 5, linearBeforeReset: false },
    { T: 5, B: 4, lengths: true, executor: 'sequential', sync: true });
});

describe('RecurrentNetwork: against the fused Recurrent op', function () {
  this.timeout(20000);
  it('a 2-layer fc + lstmUnit step net matches Recurrent forward and every gradient', async function () {
    const rng = randomFor(this.test.title);
    const T = 6, B = 3, I = 4, H = 5;
    const op = new Recurrent({ mode: 'lstm', inputSize: I, hiddenSize: H, numLayers: 2, seed: rng.int(0, 1e6) });
    const cfg = { mode: 'lstm', inputSize: I, hiddenSize: H, numLayers: 2 };
    const W = op.weights.data;
    const x = tensor(f32(rng.array(T * B * I)), [T, B, I]);
    const hx = rng.array(2 * B * H);
    const cx = rng.array(2 * B * H);
    const seqLengths = unsortedLengths(rng, T, B);
    const fused = await op.forward(x, { hx: tensor(f32(hx), [2, B, H]), cx: tensor(f32(cx), [2, B, H]), seqLengths, training: true });
    const net = buildRecurrentNet(cfg, W);
    const fwd = await net.forward({ x, ...stateInputs(2, B, H, hx, cx) }, { seqLengths });
    expectClose(fwd.outputs.y.data, fused.y.data, norm(1e-5, 'y'));
    const dy = tensor(f32(rng.array(T * B * H)), [T, B, H]);
    const gFused = await op.backward(fused.saved, { dy });
    const g = await net.backward(fwd.saved, { y: dy });
    expectClose(g.inputs.x.data, gFused.dx.data, norm(1e-4, 'dx'));
    expectClose(packGradients(cfg, W, g.params), gFused.dweights.data, norm(1e-4, 'dweights'));
    const dhx = new Float32Array(2 * B * H);
    dhx.set(g.inputs.h0.data, 0);
    dhx.set(g.inputs.h1.data, B * H);
    expectClose(dhx, gFused.dhx.data, norm(1e-4, 'dhx'));
  });
});

// Loss Σ w ⊙ outputs for fixed random weights w, in float64, as a function of one flat argument.
function dot(a, w) {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k] * w[k];
  return s;
}

function expectGradClose(analytic, numeric, tol, what) {
  expectClose(analytic, numeric, norm(tol, `${what} (against finite differences)`));
}

describe('RecurrentNetwork: custom cells against finite differences of float64 references', function () {
  this.timeout(20000);

  it('LSTM with RMSNorm on its gates: forward and every gradient', async function () {
    const rng = randomFor(this.test.title);
    const T = 4, B = 2, I = 3, H = 3, eps = 1e-5;
    const p = {
      W_ih: rng.array(4 * H * I), b_ih: rng.array(4 * H), W_hh: rng.array(4 * H * H), b_hh: rng.array(4 * H),
      gamma: rng.array(4 * H, 0.5, 1.5), beta: rng.array(4 * H, -0.2, 0.2),
    };
    const x = rng.array(T * B * I);
    const h0 = rng.array(B * H);
    const c0 = rng.array(B * H);
    const wy = rng.array(T * B * H);
    const wc = rng.array(B * H);
    const b = new StepNetBuilder();
    b.input('x', I); b.state('h', H); b.state('c', H);
    const shapes = { W_ih: [4 * H, I], b_ih: [4 * H], W_hh: [4 * H, H], b_hh: [4 * H], gamma: [4 * H], beta: [4 * H] };
    for (const [name, shape] of Object.entries(shapes)) b.param(name, tensor(f32(p[name]), shape));
    b.link('x_t', 'x'); b.link('h_prev', 'h'); b.link('c_prev', 'c');
    b.fc('gx', 'x_t', 'W_ih', 'b_ih'); b.fc('gh', 'h_prev', 'W_hh', 'b_hh'); b.add('pre', 'gx', 'gh');
    b.rmsNorm('gates', 'pre', 'gamma', 'beta', eps);
    b.lstmUnit(['h_t', 'c_t'], 'gates', 'c_prev');
    b.link('h_t', 'h', { offset: 1 }); b.link('c_t', 'c', { offset: 1 });
    b.alias('y', 'h', 1); b.alias('cy', 'c', -1);
    const net = b.build();
    const fwd = net.forwardSync({ x: tensor(f32(x), [T, B, I]), h: tensor(f32(h0), [B, H]), c: tensor(f32(c0), [B, H]) });
    const want = sref.normLstmForward(p, x, h0, c0, T, B, I, H, eps);
    expectClose(fwd.outputs.y.data, want.y, norm(1e-5, 'y'));
    expectClose(fwd.outputs.cy.data, want.cy, norm(1e-5, 'cy'));
    const g = net.backwardSync(fwd.saved, { y: tensor(f32(wy), [T, B, H]), cy: tensor(f32(wc), [1, B, H]) });
    const loss = () => {
      const o = sref.normLstmForward(p, x, h0, c0, T, B, I, H, eps);
      return dot(o.y, wy) + dot(o.cy, wc);
    };
    for (const name of Object.keys(shapes)) {
      expectGradClose(g.params[name].data, numericGradient(loss, p[name]), 2e-3, `d${name}`);
    }
    expectGradClose(g.inputs.x.data, numericGradient(loss, x), 2e-3, 'dx');
    expectGradClose(g.inputs.h.data, numericGradient(loss, h0), 2e-3, 'dh0');
    expectGradClose(g.inputs.c.data, numericGradient(loss, c0), 2e-3, 'dc0');
  });

  for (const initRank of [3, 1]) {
    it(`windowed link (window 2, k = 2 initial steps, ${initRank}-D init) reading the timestep`, async function () {
      const rng = randomFor(this.test.title);
      const T = 5, B = 3, I = 2, D = 3;
      const p = { W: rng.array(D * (2 * D + I + 1), -0.3, 0.3), b: rng.array(D) };
      const x = rng.array(T * B * I);
      const init = rng.array(initRank === 3 ? 2 * B * D : D);
      const wy = rng.array(T * B * D);
      const wl = rng.array(B * D);
      const b = new StepNetBuilder();
      b.input('x', I);
      b.state('s', D, { initSteps: 2 });
      b.param('W', tensor(f32(p.W), [D, 2 * D + I + 1]));
      b.param('b', tensor(f32(p.b), [D]));
      b.link('x_t', 'x');
      b.link('s_win', 's', { offset: 0, window: 2 });
      b.split(['s_a', 's_b'], 's_win', undefined, 0);
      b.concat('v', ['s_a', 's_b', 'x_t', 'timestep']);
      b.fc('pre', 'v', 'W', 'b');
      b.tanh('s_t', 'pre');
      b.link('s_t', 's', { offset: 2 });
      b.alias('y', 's', 2); b.alias('last', 's', -1);
      const net = b.build();
      const initShape = initRank === 3 ? [2, B, D] : [D];
      const fwd = await net.forward({ x: tensor(f32(x), [T, B, I]), s: tensor(f32(init), initShape) });
      const want = sref.windowForward(p, x, init, initRank, T, B, I, D);
      expectClose(fwd.outputs.y.data, want.y, norm(1e-5, 'y'));
      expectClose(fwd.outputs.last.data, want.last, norm(1e-5, 'last'));
      expect(Array.from(net.fetchBlob('timestep', 3).data)).to.deep.equal([3, 3, 3]);
      expect(net.fetchBlob('s_win', 1).shape).to.deep.equal([2, B, D]);
      const g = await net.backward(fwd.saved, { y: tensor(f32(wy), [T, B, D]), last: tensor(f32(wl), [1, B, D]) });
      const loss = () => {
        const o = sref.windowForward(p, x, init, initRank, T, B, I, D);
        return dot(o.y, wy) + dot(o.last, wl);
      };
      expectGradClose(g.params.W.data, numericGradient(loss, p.W), 1e-3, 'dW');
      expectGradClose(g.params.b.data, numericGradient(loss, p.b), 1e-3, 'db');
      expectGradClose(g.inputs.x.data, numericGradient(loss, x), 1e-3, 'dx');
      expect(g.inputs.s.shape).to.deep.equal(initShape);
      expectGradClose(g.inputs.s.data, numericGradient(loss, init), 1e-3, 'dinit');
    });
  }
});

describe('RecurrentNetwork: blob fetcher', function () {
  it('fetchBlob returns any stored blob of any step and refuses steps, names and params it cannot give', function () {
    const rng = randomFor(this.test.title);
    const T = 4, B = 2, I = 3, H = 4;
    const cfg = { mode: 'lstm', inputSize: I, hiddenSize: H };
    const W = f32(rng.array(ref.weightsSize(cfg), -0.5, 0.5));
    const net = buildRecurrentNet(cfg, W);
    const x = tensor(f32(rng.array(T * B * I)), [T, B, I]);
    const { outputs } = net.forwardSync({ x });
    for (let t = 0; t < T; t++) {
      expect(Array.from(net.fetchBlob('h0_t', t).data)).to.deep.equal(Array.from(outputs.y.data.subarray(t * B * H, (t + 1) * B * H)));
      const gates = net.fetchBlob('gates0', t).data;
      const gx = net.fetchBlob('gx0', t).data;
      const gh = net.fetchBlob('gh0', t).data;
      for (let k = 0; k < gates.length; k++) expect(gates[k]).to.equal(Math.fround(gx[k] + gh[k]));
    }
    expectCode(() => net.fetchBlob('gates0', T), 'ERR_RNNKIT_ARG');
    expectCode(() => net.fetchBlob('nope', 0), 'ERR_RNNKIT_ARG');
    expectCode(() => net.fetchBlob('W_ih0', 0), 'ERR_RNNKIT_ARG');
  });
});

describe('RecurrentNetwork: malformed nets are rejected when built', function () {
  const H = 3;
  function lstmBuilder() {
    const b = new StepNetBuilder();
    b.input('x', 2); b.state('h', H); b.state('c', H);
    b.param('W_ih', tensor(new Float32Array(4 * H * 2), [4 * H, 2]));
    b.param('W_hh', tensor(new Float32Array(4 * H * H), [4 * H, H]));
    b.link('x_t', 'x'); b.link('h_prev', 'h'); b.link('c_prev', 'c');
    return b;
  }
  function finish(b) {
    b.lstmUnit(['h_t', 'c_t'], 'gates', 'c_prev');
    b.link('h_t', 'h', { offset: 1 }); b.link('c_t', 'c', { offset: 1 });
    return b;
  }
  // blob: the name the message must quote (a RegExp when any of several names is right).
  function rejected(build, code, blob) {
    const err = expectCode(() => build().build(), code);
    if (blob instanceof RegExp) expect(err.message).to.match(blob);
    else expect(err.message).to.contain(`'${blob}'`);
  }
  it('unknown blob', () => {
    rejected(() => {
      const b = lstmBuilder();
      b.fc('gx', 'x_t', 'W_ih'); b.fc('gh', 'h_prevv', 'W_hh'); b.add('gates', 'gx', 'gh');
      return finish(b);
    }, 'ERR_RNNKIT_ARG', 'h_prevv');
  });
  it('shape mismatch', () => {
    rejected(() => {
      const b = lstmBuilder();
      b.fc('gx', 'x_t', 'W_ih'); b.fc('gh', 'h_prev', 'W_ih'); b.add('gates', 'gx', 'gh');
      return finish(b);
    }, 'ERR_RNNKIT_SHAPE', 'W_ih');
  });
  it('a cycle within a step', () => {
    rejected(() => {
      const b = lstmBuilder();
      b.fc('gx', 'x_t', 'W_ih'); b.add('gates', 'gx', 'loop'); b.copy('loop', 'gates');
      return finish(b);
    }, 'ERR_RNNKIT_ARG', /cycle within a step through blob '(gates|loop)'/);
  });
  it('links out of range (reading the slot being written, writing at the wrong offset)', () => {
    rejected(() => {
      const b = lstmBuilder();
      b.link('h_now', 'h', { offset: 1 });
      b.fc('gx', 'x_t', 'W_ih'); b.fc('gh', 'h_now', 'W_hh'); b.add('gates', 'gx', 'gh');
      return finish(b);
    }, 'ERR_RNNKIT_ARG', 'h_now');
    rejected(() => {
      const b = lstmBuilder();
      b.fc('gx', 'x_t', 'W_ih'); b.fc('gh', 'h_prev', 'W_hh'); b.add('gates', 'gx', 'gh');
      b.lstmUnit(['h_t', 'c_t'], 'gates', 'c_prev');
      b.link('h_t', 'h', { offset: 2 }); b.link('c_t', 'c', { offset: 1 });
      return b;
    }, 'ERR_RNNKIT_ARG', 'h_t');
    rejected(() => {
      const b = lstmBuilder();
      b.link('gone', 'nowhere');
      return b;
    }, 'ERR_RNNKIT_ARG', 'nowhere');
  });
  it('a state never written, a window past the input at run time, bad forward arguments', async () => {
    rejected(() => {
      const b = lstmBuilder();
      b.fc('gx', 'x_t', 'W_ih'); b.fc('gh', 'h_prev', 'W_hh'); b.add('gates', 'gx', 'gh');
      b.lstmUnit(['h_t', 'c_t'], 'gates', 'c_prev');
      b.link('h_t', 'h', { offset: 1 });
      return b;
    }, 'ERR_RNNKIT_ARG', 'c');
    const b = lstmBuilder();
    b.link('x_next', 'x', { offset: 1 });
    b.fc('gx', 'x_next', 'W_ih'); b.fc('gh', 'h_prev', 'W_hh'); b.add('gates', 'gx', 'gh');
    const net = finish(b).build();
    const x = tensor(new Float32Array(3 * 2 * 2), [3, 2, 2]);
    expectCode(() => net.forwardSync({ x }), 'ERR_RNNKIT_SHAPE');
    expect(() => net.forwardSync({ x }, { steps: 2 })).to.not.throw();
    expectCode(() => net.forwardSync({ x: tensor(new Float32Array(3 * 2 * 3), [3, 2, 3]) }), 'ERR_RNNKIT_SHAPE');
    expectCode(() => net.forwardSync({ x, h: tensor(new Float32Array(2 * 5), [2, 5]) }, { steps: 2 }), 'ERR_RNNKIT_SHAPE');
    expectCode(() => net.forwardSync({ x }, { steps: 2, seqLengths: Int32Array.from([1, 3]) }), 'ERR_RNNKIT_ARG');
    expectCode(() => net.forwardSync({ x, y: x }, { steps: 2 }), 'ERR_RNNKIT_ARG');
    const disposed = tensor(new Float32Array(12), [3, 2, 2]);
    disposed.dispose();
    expectCode(() => net.forwardSync({ x: disposed }, { steps: 2 }), 'ERR_RNNKIT_DISPOSED');
    const { saved } = net.forwardSync({ x }, { steps: 2 });
    saved.release();
    expectCode(() => net.backwardSync(saved, {}), 'ERR_RNNKIT_DISPOSED');
    expectCode(() => new RecurrentNetwork({ ops: [{ type: 'conv', inputs: [], outputs: ['y'] }] }), 'ERR_RNNKIT_ARG');
    expectCode(() => new RecurrentNetwork({ ops: [{ type: 'gruUnit', inputs: [], outputs: ['y'] }] }), 'ERR_RNNKIT_ARG');
  });
});
