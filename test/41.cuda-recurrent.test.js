'use strict';
// The Recurrent op on CUDA tensors through the public class, against the same op on the CPU (same
// config and seed, so the same weights): every mode and option of the CPU test matrix, forward and
// backward, relative error <= 1e-4 of each output's largest magnitude (fp32 on both sides). Also:
// lastRun names the GPU algorithm, device weights follow setParam and writes through `weights`,
// dweights accumulate into the CPU tensor, disposed inputs are refused. The @gpu suites skip
// without a device; the binding's argument checks run everywhere (the CPU flavor has the bindings,
// whose gpu:: calls refuse with ERR_RNNKIT_DEVICE).
const { Recurrent, tensor } = rnnkit;
const { native } = require('../dist/native');
const { makeRandom } = require('./reference/random');
const { expectClose } = require('./support/close');
const { randomF32: f32 } = require('./support/random');

const cases = require('./cases/recurrent');

const TOL = cases.cuda.tol;

// One case of the matrix: the same op on 'cpu' and 'cuda', the same inputs on each device.
async function runCase(rng, cfg, opts) {
  const { T, B, lens, dropout, accumulate } = opts;
  const cpu = new Recurrent({ ...cfg, device: 'cpu' });
  const gpu = new Recurrent({ ...cfg, device: 'cuda' });
  const D = cfg.bidirectional ? 2 : 1;
  const L = cfg.numLayers || 1;
  const R = cfg.projSize || cfg.hiddenSize;
  const lstm = cfg.mode === 'lstm';
  const xShape = cfg.batchFirst ? [B, T, cfg.inputSize] : [T, B, cfg.inputSize];
  const yShape = cfg.batchFirst ? [B, T, D * R] : [T, B, D * R];
  const x = tensor(f32(rng, T * B * cfg.inputSize), xShape);
  const hx = tensor(f32(rng, L * D * B * R), [L * D, B, R]);
  const cx = lstm ? tensor(f32(rng, L * D * B * cfg.hiddenSize), [L * D, B, cfg.hiddenSize]) : null;
  const seqLengths = lens ? Int32Array.from(rng.shuffle([T, 0, ...Array.from({ length: B - 2 }, () => rng.int(0, T))])) : null;
  const fwd = { hx, cx, seqLengths, training: true, dropout: dropout > 0, dropoutSeed: rng.int(0, 2 ** 30) };
  const want = cpu.forwardSync(x, fwd);
  const got = await gpu.forward(x.to('cuda'), { ...fwd, hx: hx.to('cuda'), cx: cx && cx.to('cuda') });
  expect(gpu.lastRun.device).to.equal('cuda:0');
  expect(gpu.lastRun.fallback).to.equal(null);
  expect(['standard', 'persistent']).to.include(gpu.lastRun.algorithm);
  expect(got.y.device).to.equal('cuda:0');
  const seed = rng.seed;
  expectClose(await got.y.read(), want.y.data, { rel: TOL, scale: 'max', floor: 1e-3, what: 'y', seed: seed });
  expectClose(await got.hy.read(), want.hy.data, { rel: TOL, scale: 'max', floor: 1e-3, what: 'hy', seed: seed });
  if (lstm) expectClose(await got.cy.read(), want.cy.data, { rel: TOL, scale: 'max', floor: 1e-3, what: 'cy', seed: seed });

  const dy = tensor(f32(rng, T * B * D * R), yShape);
  const dhy = tensor(f32(rng, L * D * B * R), [L * D, B, R]);
  const dcy = lstm ? tensor(f32(rng, L * D * B * cfg.hiddenSize), [L * D, B, cfg.hiddenSize]) : null;
  const dw0 = f32(rng, cpu.weights.size);
  const dwCpu = accumulate ? tensor(dw0.slice(), cpu.weights.shape) : null;
  const dwGpu = accumulate ? tensor(dw0.slice(), cpu.weights.shape) : null;
  const wantG = cpu.backwardSync(want.saved, { dy, dhy, dcy, accumulate, dweights: dwCpu });
  const gotG = gpu.backwardSync(got.saved, {
    dy: dy.to('cuda'), dhy: dhy.to('cuda'), dcy: dcy && dcy.to('cuda'), accumulate, dweights: dwGpu,
  });
  expect(gpu.lastRun.op).to.equal('backward');
  expect(gpu.lastRun.algorithm).to.equal('standard');
  expect(gotG.dx.device).to.equal('cuda:0');
  expect(gotG.dweights.device).to.equal('cpu');
  expectClose(gotG.dx.readSync(), wantG.dx.data, { rel: TOL, scale: 'max', floor: 1e-3, what: 'dx', seed: seed });
  expectClose(gotG.dhx.readSync(), wantG.dhx.data, { rel: TOL, scale: 'max', floor: 1e-3, what: 'dhx', seed: seed });
  if (lstm) expectClose(gotG.dcx.readSync(), wantG.dcx.data, { rel: TOL, scale: 'max', floor: 1e-3, what: 'dcx', seed: seed });
  expectClose(gotG.dweights.data, wantG.dweights.data, { rel: TOL, scale: 'max', floor: 1e-3, what: 'dweights', seed: seed });
  got.saved.release();
  cpu.dispose();
  gpu.dispose();
}

describe('@gpu CUDA Recurrent: parity with the CPU op', function () {
  this.timeout(60000);
  before(function () {
    skipWithoutGpu(this);
  });

  for (const { title, cfg, lens, accumulate } of cases.cuda.CASES) {
    it(title, async function () {
      const rng = makeRandom();
      const T = rng.int(1, 5);
      await runCase(rng, cfg, { T, B: lens ? 4 : rng.int(1, 3), lens, dropout: cfg.dropout, accumulate });
    });
  }

  it('wide layers with a batch of 16 (persistent forward where it fits) and B = 40 (standard)', async function () {
    for (const mode of ['lstm', 'gru', 'rnn_tanh']) {
      for (const B of [16, 40]) {
        const rng = makeRandom();
        await runCase(rng, { mode, inputSize: 24, hiddenSize: 256, numLayers: 2, bidirectional: true, seed: B },
          { T: 8, B, lens: true, dropout: 0, accumulate: false });
      }
    }
  });
});

describe('@gpu CUDA Recurrent: device weights and inputs', function () {
  this.timeout(30000);
  before(function () {
    skipWithoutGpu(this);
  });

  function pair(rng) {
    const cfg = { mode: 'lstm', inputSize: 3, hiddenSize: 6, numLayers: 1, seed: 7 };
    const cpu = new Recurrent({ ...cfg, device: 'cpu' });
    const gpu = new Recurrent({ ...cfg, device: 'cuda' });
    const x = tensor(f32(rng, 4 * 2 * 3), [4, 2, 3]);
    return { cpu, gpu, x, xg: x.to('cuda') };
  }

  it('re-uploads the weights after setParam and after a write through weights.data', function () {
    const rng = makeRandom();
    const { cpu, gpu, x, xg } = pair(rng);
    gpu.forwardSync(xg);
    const values = f32(rng, 4 * 6 * 3);
    cpu.setParam({ layer: 0, direction: 0, kind: 'w_ih' }, values);
    gpu.setParam({ layer: 0, direction: 0, kind: 'w_ih' }, values);
    expectClose(gpu.forwardSync(xg).y.readSync(), cpu.forwardSync(x).y.data, { rel: TOL, scale: 'max', floor: 1e-3, what: 'y after setParam', seed: rng.seed });
    cpu.weights.data[0] += 0.5;
    gpu.weights.data[0] += 0.5;
    expectClose(gpu.forwardSync(xg).y.readSync(), cpu.forwardSync(x).y.data, { rel: TOL, scale: 'max', floor: 1e-3, what: 'y after a data write', seed: rng.seed });
  });

  it('the algorithm option forces the forward algorithm, algorithmFor says what would run, both agree with the CPU', function () {
    const rng = makeRandom();
    const cfg = { mode: 'lstm', inputSize: 5, hiddenSize: 64, numLayers: 1, seed: 3 };
    const cpu = new Recurrent({ ...cfg, device: 'cpu' });
    const x = tensor(f32(rng, 6 * 4 * 5), [6, 4, 5]);
    const want = cpu.forwardSync(x).y.data;
    for (const algorithm of ['standard', 'persistent']) {
      const gpu = new Recurrent({ ...cfg, device: 'cuda', algorithm });
      expect(gpu.algorithm).to.equal(algorithm);
      expect(gpu.algorithmFor(6, 4)).to.include({ device: 'cuda:0', algorithm, fallback: null });
      expectClose(gpu.forwardSync(x.to('cuda')).y.readSync(), want, { rel: TOL, scale: 'max', floor: 1e-3, what: `y (${algorithm})`, seed: rng.seed });
      expect(gpu.lastRun.algorithm).to.equal(algorithm);
    }
    const auto = new Recurrent({ ...cfg, device: 'cuda' });
    auto.forwardSync(x.to('cuda'));
    expect(auto.lastRun.algorithm).to.equal(auto.algorithmFor(6, 4).algorithm);
    const proj = new Recurrent({ ...cfg, projSize: 8, device: 'cuda', algorithm: 'persistent' });
    expectCode(() => proj.forwardSync(x.to('cuda')), 'ERR_RNNKIT_ARG');
  });

  it('copies hx from the CPU, runs inputs on the CPU with a reason, refuses a disposed y', async function () {
    const rng = makeRandom();
    const { cpu, gpu, x, xg } = pair(rng);
    const hx = tensor(f32(rng, 2 * 6), [1, 2, 6]);
    const f = await gpu.forward(xg, { hx, training: true });
    expect(gpu.lastRun.device).to.equal('cuda:0');
    expectClose(await f.y.read(), cpu.forwardSync(x, { hx }).y.data, { rel: TOL, scale: 'max', floor: 1e-3, what: 'y', seed: rng.seed });
    gpu.forwardSync(x);
    expect(gpu.lastRun.device).to.equal('cpu');
    expect(gpu.lastRun.fallback).to.match(/inputs are on the CPU/);
    f.y.dispose();
    expectCode(() => gpu.backwardSync(f.saved, {}), 'ERR_RNNKIT_DISPOSED');
    f.saved.release();
    expectCode(() => gpu.backwardSync(f.saved, {}), 'ERR_RNNKIT_DISPOSED');
  });
});

describe('CUDA Recurrent bindings: argument checks (every flavor)', function () {
  const cfg = {
    mode: 'lstm', inputSize: 3, hiddenSize: 4, numLayers: 1, bidirectional: false, skipInput: false, projSize: 0,
    cellClip: 0, peepholes: false, linearBeforeReset: true,
  };

  it('exposes the three bindings', function () {
    for (const name of ['cudaRecurrentForward', 'cudaRecurrentBackward', 'cudaRecurrentAlgorithm']) {
      expect(native()[name], name).to.be.a('function');
    }
  });

  it('refuses a bad config, a non-buffer x and bad sizes with typed errors', function () {
    const f = native().cudaRecurrentForward;
    const args = (over) => ({
      config: cfg, T: 2, B: 2, batchFirst: false, x: null, hx: null, cx: null, seqLengths: null, weights: null,
      dropout: 0, seed: 0, y: null, hy: null, cy: null, saved: null, algorithm: 'auto', async: false, ...over,
    });
    expectCode(() => f(args({ config: { ...cfg, mode: 'lstmx' } })), 'ERR_RNNKIT_ARG');
    expectCode(() => f(args({ config: { ...cfg, hiddenSize: 0 } })), 'ERR_RNNKIT_ARG');
    expectCode(() => f(args({ T: -1 })), 'ERR_RNNKIT_ARG');
    expectCode(() => f(args({ x: new Float32Array(12) })), 'ERR_RNNKIT_ARG');
    expectCode(() => f(args({ T: 2 ** 30, B: 2 ** 30 })), 'ERR_RNNKIT_SHAPE');
    expectCode(() => f(args({ algoritm: 'auto' })), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaRecurrentBackward({ config: cfg, T: 1, B: 1, batchFirst: false, x: {} }), 'ERR_RNNKIT_ARG');
  });

  it('algorithm choice: refuses unknown names; without CUDA it refuses with ERR_RNNKIT_DEVICE', function () {
    expectCode(() => native().cudaRecurrentAlgorithm(cfg, 8, 4, 0, 'fastest'), 'ERR_RNNKIT_ARG');
    if (cudaAvailable()) {
      expect(native().cudaRecurrentAlgorithm(cfg, 8, 4, 0, 'standard')).to.equal('standard');
      expect(['standard', 'persistent']).to.include(native().cudaRecurrentAlgorithm(cfg, 8, 4, 0, 'auto'));
      expectCode(() => native().cudaRecurrentAlgorithm({ ...cfg, projSize: 2 }, 8, 4, 0, 'persistent'), 'ERR_RNNKIT_ARG');
    } else {
      expectCode(() => native().cudaRecurrentAlgorithm(cfg, 8, 4, 0, 'auto'), 'ERR_RNNKIT_DEVICE');
    }
  });
});
