'use strict';
// The training pieces on CUDA: optimizer steps (bit for bit the CPU kernels' results, state kept on
// the device), clipping, losses, Linear and RMSNorm objects on the device, the run records, and a
// whole training step that copies nothing to the host but the loss (counted by the native copy
// counter). The @gpu suites need a device (RNNKIT_REQUIRE_GPU=1 makes its absence a failure); the
// argument checks, the no-device errors and the CPU run records run everywhere.
const { makeRandom } = require('./reference/random');
const { expectClose } = require('./support/close');
const { randomF32 } = require('./support/random');
const { trainingStep } = require('./support/train-step');
const ref = require('./reference/train');
const rmsnormRef = require('./reference/rmsnorm');
const { native } = require('../dist/native');
const train = require('../dist/train');
const { cpuKernels, kernelsFor } = require('../dist/nn/kernels');

const { tensor, indexTensor, backendInfo, RMSNorm, nn } = rnnkit;

function bitsEqual(a, b, what) {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  expect(a.length, what).to.equal(b.length);
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i]) throw new Error(`${what}: element ${i} is ${a[i]} on the GPU, ${b[i]} on the CPU`);
  }
}

const copies = () => backendInfo().cuda.copies;

describe('CUDA training bindings: argument checks (every flavor)', function () {
  const names = ['cudaSgdStep', 'cudaAdamStep', 'cudaAdagradStep', 'cudaRmspropStep', 'cudaSoftmaxCrossEntropy', 'cudaMseLoss',
    'cudaSumSquares', 'cudaClipGradNorm', 'cudaScaleBuffers', 'cudaClampBuffers', 'cudaFill', 'cudaNnActivationForward',
    'cudaNnActivationBackward', 'cudaNnBroadcastBinary', 'cudaNnAffine', 'cudaNnAccumulate', 'cudaNnDropout', 'cudaNnSumAxis',
    'cudaNnBroadcastAxis', 'cudaNnEmbeddingForward', 'cudaNnEmbeddingBackward', 'cudaNnCopyBlock'];

  it('exist and refuse what is not a DeviceBuffer with ERR_RNNKIT_ARG', function () {
    const f = new Float32Array(4);
    for (const name of names) expect(native()[name], name).to.be.a('function');
    expectCode(() => native().cudaSgdStep(f, f, null, 0.1, 0, 0, 0, false, true, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaAdamStep(f, f, f, f, null, 1e-3, 0.9, 0.999, 1e-8, 0, 1, false, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaAdagradStep(f, f, f, 0.1, 0, 0, 1e-10, 1, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaRmspropStep(f, f, f, null, null, 0.1, 0.99, 1e-8, 0, 0, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaSoftmaxCrossEntropy(f, new Int32Array(1), null, null, null, 1, 4, -100, true, true, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaMseLoss(f, f, null, null, true, true, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaSumSquares([f], false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaSumSquares(f, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaClipGradNorm([f], 1, null, true, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaScaleBuffers([f], 2, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaClampBuffers([f], -1, 1, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaFill(f, 0, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaNnActivationForward(0, f, f, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaNnActivationForward(3, f, f, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaNnBroadcastBinary(0, f, f, f, 1, 4, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaNnSumAxis(f, null, f, 1, 4, 1, 1, false, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaNnEmbeddingForward(f, new Int32Array(1), f, 1, 4, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaNnCopyBlock(f, 0, 4, f, 0, 4, 1, 4, false), 'ERR_RNNKIT_ARG');
  });

  it('an empty buffer list sums to 0 without touching a device', function () {
    expect(native().cudaSumSquares([], false)).to.equal(0);
    expect(native().cudaClipGradNorm([], 1, null, true, false)).to.equal(0);
  });
});

describe('CUDA training: without a device (the messages users see)', function () {
  before(function () {
    if (cudaAvailable()) this.skip();
  });

  it('a CUDA RMSNorm, a CUDA device buffer and a CUDA fill say why there is no device', function () {
    const err = expectCode(() => new RMSNorm({ size: 4, device: 'cuda' }), 'ERR_RNNKIT_DEVICE');
    expect(err.message).to.contain(backendInfo().cuda.reason);
    expectCode(() => new (native().DeviceBuffer)(0, 16), 'ERR_RNNKIT_DEVICE');
    expectCode(() => rnnkit.zeros([4], { device: 'cuda' }), 'ERR_RNNKIT_DEVICE');
  });

  it('backendInfo reports no sticky error and counts no copies', function () {
    const c = backendInfo().cuda;
    expect(c.stickyError).to.equal(null);
    expect(c.copies).to.deep.equal({ toDevice: 0, toDeviceBytes: 0, toHost: 0, toHostBytes: 0 });
  });
});

describe('CUDA training: run records on the CPU (every flavor)', function () {
  it('optimizers, losses, clipping and RMSNorm say they ran on the CPU with nothing copied', async function () {
    const rng = makeRandom();
    const p = tensor(randomF32(rng, 10), [10]);
    const g = tensor(randomF32(rng, 10), [10]);
    const opt = new train.Adam([p], { lr: 1e-3 });
    await opt.step([g]);
    expect(opt.lastRun).to.deep.equal({ op: 'step', devices: ['cpu'], fallback: null });
    const st = opt.stateOf(p);
    expect(st.device).to.equal('cpu');
    expect(st.buffers.expAvg).to.be.instanceOf(Float32Array);
    await train.crossEntropy(tensor(randomF32(rng, 12), [3, 4]), new Int32Array([0, 1, 2]));
    await train.clipGradNorm([g], 0.1);
    const norm = new RMSNorm({ size: 4 });
    norm.forwardSync(tensor(randomF32(rng, 8), [2, 4]));
    expect(norm.lastRun).to.deep.equal({ op: 'rmsNorm', device: 'cpu', fallback: null });
    const runs = backendInfo().lastRuns;
    for (const op of ['Adam.step', 'crossEntropy', 'clipGradNorm', 'rmsNorm']) {
      expect(runs[op], op).to.deep.equal({ op, device: 'cpu', fallback: null });
    }
  });

  it("clipGradNorm refuses unknown options and returns the norm as a tensor with norm: 'tensor'", async function () {
    const rng = makeRandom();
    const values = randomF32(rng, 50);
    let want = 0;
    for (const v of values) want += v * v;
    want = Math.sqrt(want);
    const t = await train.clipGradNorm([tensor(values.slice(), [50])], 1e9, { norm: 'tensor' });
    expect(t.shape).to.deep.equal([1]);
    expect(t.data[0]).to.be.closeTo(want, 1e-6 * want);
    await expectReject(train.clipGradNorm([tensor(values, [50])], 1, { frobnicate: true }), 'ERR_RNNKIT_ARG');
    expectCode(() => train.clipGradNormSync([tensor(values, [50])], 1, { norm: 'float' }), 'ERR_RNNKIT_ARG');
  });
});

describe('@gpu CUDA training: optimizers on the device', function () {
  before(function () {
    skipWithoutGpu(this);
  });

  const makers = [
    ['SGD', (ps) => new train.SGD(ps, { lr: 0.05 })],
    ['SGD momentum 0.9, dampening 0.1, weight decay', (ps) => new train.SGD(ps, { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 })],
    ['SGD Nesterov', (ps) => new train.SGD(ps, { lr: 0.05, momentum: 0.8, nesterov: true })],
    ['Adam', (ps) => new train.Adam(ps, { lr: 1e-2, weightDecay: 0.01 })],
    ['Adam amsgrad', (ps) => new train.Adam(ps, { lr: 1e-2, amsgrad: true })],
    ['AdamW', (ps) => new train.AdamW(ps, { lr: 1e-2 })],
    ['Adagrad', (ps) => new train.Adagrad(ps, { lr: 0.1, lrDecay: 0.01, initialAccumulatorValue: 0.1 })],
    ['RMSprop centered, momentum', (ps) => new train.RMSprop(ps, { lr: 0.01, centered: true, momentum: 0.9, weightDecay: 0.001 })],
  ];
  for (const [name, make] of makers) {
    it(`${name}: three steps give the CPU's bits, state on the device, stateDict equal`, async function () {
      const rng = makeRandom();
      const sizes = [1, 1003, 70001];
      const init = sizes.map((n) => randomF32(rng, n));
      const cpu = init.map((v, k) => tensor(v.slice(), [sizes[k]]));
      const gpu = init.map((v, k) => tensor(v.slice(), [sizes[k]], { device: 'cuda' }));
      const oc = make(cpu);
      const og = make(gpu);
      for (let step = 0; step < 3; step++) {
        const grads = sizes.map((n) => randomF32(rng, n));
        oc.stepSync(grads.map((g, k) => tensor(g, [sizes[k]])));
        if (step % 2) og.stepSync(grads.map((g, k) => tensor(g, [sizes[k]], { device: 'cuda' })));
        else await og.step(grads.map((g, k) => tensor(g, [sizes[k]], { device: 'cuda' })));
        expect(og.lastRun).to.deep.equal({ op: 'step', devices: ['cuda:0'], fallback: null });
      }
      gpu.forEach((t, k) => bitsEqual(t.readSync(), cpu[k].data, `${name} parameter ${k} (seed ${rng.seed})`));
      const sc = oc.stateDict();
      const sg = og.stateDict();
      for (const [index, st] of Object.entries(sc.state)) {
        expect(sg.state[index].step).to.equal(st.step);
        for (const [key, buf] of Object.entries(st.buffers)) bitsEqual(sg.state[index].buffers[key], buf, `${name} state ${index}.${key}`);
      }
      // Plain SGD keeps no buffer (only its step count): nothing to find on a device.
      const firstBuffer = Object.keys(sc.state[0].buffers)[0];
      if (firstBuffer !== undefined) expect(og.stateOf(gpu[0]).buffers[firstBuffer].device).to.equal('cuda:0');
      else expect(Object.keys(og.stateOf(gpu[0]).buffers)).to.deep.equal([]);
    });
  }

  it('loadStateDict puts the state on the device; a CPU gradient is copied over and the run says so', function () {
    const rng = makeRandom();
    const v = randomF32(rng, 64);
    const a = tensor(v.slice(), [64]);
    const b = tensor(v.slice(), [64], { device: 'cuda' });
    const oa = new train.Adam([a], { lr: 0.01 });
    oa.stepSync([tensor(randomF32(rng, 64), [64])]);
    const ob = new train.Adam([b], { lr: 0.01 });
    ob.loadStateDict(oa.stateDict());
    expect(ob.stateOf(b).buffers.expAvg.device).to.equal('cuda:0');
    b.dispose();
    const c = tensor(a.data.slice(), [64], { device: 'cuda' });
    const oc = new train.Adam([c], { lr: 0.01 });
    oc.loadStateDict(oa.stateDict());
    const g = randomF32(rng, 64);
    oa.stepSync([tensor(g, [64])]);
    oc.stepSync([tensor(g, [64])]);
    expect(oc.lastRun.fallback).to.match(/gradient of parameter 0 was on cpu: copied to cuda:0/);
    bitsEqual(c.readSync(), a.data, 'resumed on the device');
  });
});

describe('@gpu CUDA training: clipping, losses, Linear', function () {
  before(function () {
    skipWithoutGpu(this);
  });

  it('clipGradNorm on the device: the norm, the scaled gradients, the tensor form, NaN', async function () {
    const rng = makeRandom();
    const sizes = [3, 8193, 40000];
    const host = sizes.map((n) => randomF32(rng, n));
    let sq = 0;
    for (const h of host) for (const v of h) sq += v * v;
    const total = Math.sqrt(sq);
    const grads = host.map((h, k) => tensor(h.slice(), [sizes[k]], { device: 'cuda' }));
    const norm = await train.clipGradNorm(grads, total / 2);
    expect(norm).to.be.closeTo(total, 1e-12 * total);
    const f = Math.fround(total / 2 / (total + 1e-6));
    grads.forEach((g, k) => expectClose(g.readSync(), host[k].map((v) => v * f), { abs: 0, rel: 2.4e-7, what: `clipped ${k}`, seed: rng.seed }));
    expect(backendInfo().lastRuns.clipGradNorm).to.deep.equal({ op: 'clipGradNorm', device: 'cuda:0', fallback: null });
    const t = train.clipGradNormSync(grads, 1e9, { norm: 'tensor' });
    expect(t.device).to.equal('cuda:0');
    expect(t.readSync()[0]).to.be.closeTo(total / 2, 1e-5 * total);
    const bad = tensor(new Float32Array([1, NaN, 2]), [3], { device: 'cuda' });
    expect(Number.isNaN(train.clipGradNormSync([bad], 1))).to.equal(true);
    expect(Array.from(bad.readSync())).to.deep.equal([1, NaN, 2]);
    expectCode(() => train.clipGradNormSync([bad], 1, { errorIfNonfinite: true }), 'ERR_RNNKIT_NONFINITE');
    train.clipGradValueSync(grads, 0.01);
    for (const g of grads) for (const v of g.readSync()) expect(Math.abs(v)).to.be.at.most(Math.fround(0.01));
  });

  it('crossEntropy and mseLoss on the device against float64 references', async function () {
    const rng = makeRandom();
    for (const [N, V] of [[1, 1], [37, 5], [64, 3000]]) {
      const logits = randomF32(rng, N * V, -6, 6);
      const targets = Int32Array.from({ length: N }, (_, r) => (r % 9 === 4 ? -100 : rng.int(0, V - 1)));
      const mask = Float32Array.from({ length: N }, (_, r) => (r % 5 === 2 ? 0 : rng.uniform(0.5, 1.5)));
      for (const mean of [true, false]) {
        const want = ref.crossEntropy(logits, targets, V, { mask, mean });
        const got = await train.crossEntropy(tensor(logits, [N, V], { device: 'cuda' }), targets,
          { mask, reduction: mean ? 'mean' : 'sum' });
        expect(got.dlogits.device).to.equal('cuda:0');
        expect(got.loss).to.be.closeTo(want.loss, 1e-5 * Math.max(1, Math.abs(want.loss)));
        expectClose(got.dlogits.readSync(), want.dlogits, { abs: 1e-7, rel: 1e-5, what: `dlogits N=${N} V=${V} mean=${mean}`, seed: rng.seed });
      }
    }
    expect(backendInfo().lastRuns.crossEntropy.device).to.equal('cuda:0');
    const y = randomF32(rng, 1000);
    const t = randomF32(rng, 1000);
    const want = ref.mse(y, t, true);
    const got = train.mseLossSync(tensor(y, [1000], { device: 'cuda' }), tensor(t, [1000], { device: 'cuda' }));
    expect(got.loss).to.be.closeTo(want.loss, 1e-9 * want.loss);
    expectClose(got.dinput.readSync(), want.dy, { abs: 1e-9, rel: 1e-6, what: 'mse dy', seed: rng.seed });
  });

  it('Linear on the device: forward and backward against float64, bias parts equal to the CPU bits', async function () {
    const rng = makeRandom();
    const [N, I, O] = [33, 17, 9];
    const cpu = new train.Linear({ inFeatures: I, outFeatures: O, seed: 5 });
    const gpu = new train.Linear({ inFeatures: I, outFeatures: O, seed: 5, device: 'cuda' });
    const x = randomF32(rng, N * I);
    const dy = randomF32(rng, N * O);
    const y = await gpu.forward(tensor(x, [N, I], { device: 'cuda' }));
    expect(y.device).to.equal('cuda:0');
    const want = ref.linear(x, cpu.weight.data, cpu.bias.data, N, I, O);
    expectClose(y.readSync(), want, { abs: 1e-6, rel: 1e-5, what: 'linear y', seed: rng.seed });
    const g = gpu.backwardSync(tensor(x, [N, I], { device: 'cuda' }), tensor(dy, [N, O], { device: 'cuda' }));
    const wg = ref.linearBackward(x, cpu.weight.data, dy, N, I, O);
    expectClose(g.dx.readSync(), wg.dx, { abs: 1e-6, rel: 1e-5, what: 'linear dx', seed: rng.seed });
    expectClose(g.dweight.readSync(), wg.dW, { abs: 1e-6, rel: 1e-5, what: 'linear dweight', seed: rng.seed });
    const c = cpu.backwardSync(tensor(x, [N, I]), tensor(dy, [N, O]));
    bitsEqual(g.dbias.readSync(), c.dbias.data, 'linear dbias');
  });
});

describe('@gpu CUDA training: RMSNorm objects on the device', function () {
  before(function () {
    skipWithoutGpu(this);
  });

  it('forward and backward run the CUDA kernels with gamma, beta and their gradients on the device', async function () {
    const rng = makeRandom();
    const [rows, cols] = [12, 300];
    const gamma = randomF32(rng, cols, 0.5, 1.5);
    const beta = randomF32(rng, cols);
    const x = randomF32(rng, rows * cols, -3, 3);
    const dy = randomF32(rng, rows * cols);
    const norm = new RMSNorm({ size: cols, gamma, beta, device: 'cuda' });
    expect(norm.gamma.device).to.equal('cuda:0');
    const xd = tensor(x, [rows, cols], { device: 'cuda' });
    const f = await norm.forward(xd);
    expect(norm.lastRun).to.deep.equal({ op: 'rmsNorm', device: 'cuda:0', fallback: null });
    const want = rmsnormRef.forward(x, gamma, beta, rows, cols, 1e-6);
    expectClose(f.y.readSync(), want.y, { abs: 1e-6, rel: 2e-5, what: 'y', seed: rng.seed });
    const g = norm.backwardSync({ x: xd, rrms: f.rrms, dy: tensor(dy, [rows, cols], { device: 'cuda' }) });
    expect(g.dgamma.device).to.equal('cuda:0');
    expect(norm.lastRun.device).to.equal('cuda:0');
    const wg = rmsnormRef.backward(dy, x, gamma, rows, cols, 1e-6);
    expectClose(g.dx.readSync(), wg.dx, { abs: 1e-6, rel: 5e-5, what: 'dx', seed: rng.seed });
    expectClose(g.dgamma.readSync(), wg.dgamma, { abs: 1e-5, rel: 1e-4, what: 'dgamma', seed: rng.seed });
    expectClose(g.dbeta.readSync(), wg.dbeta, { abs: 1e-5, rel: 1e-4, what: 'dbeta', seed: rng.seed });
    // A CPU x with gamma on the device: the CPU kernels on host copies, y on the device of x (lib/rmsnorm.ts).
    const cpuX = norm.forwardSync(tensor(x, [rows, cols]));
    expect(cpuX.y.device).to.equal('cpu');
    expectClose(cpuX.y.data, want.y, { abs: 1e-6, rel: 2e-5, what: 'y (host run)', seed: rng.seed });
    expect(norm.lastRun.fallback).to.match(/ran on the CPU with host copies/);
  });
});

describe('@gpu CUDA training: a whole step stays on the device', function () {
  before(function () {
    skipWithoutGpu(this);
  });

  it('Linear → crossEntropy → backward → clipGradNorm → Adam copies only the targets in and the loss out', async function () {
    const rng = makeRandom();
    const [N, I, V] = [64, 32, 50];
    const model = new train.Linear({ inFeatures: I, outFeatures: V, seed: 3, device: 'cuda' });
    const params = [model.weight, model.bias];
    const opt = new train.Adam(params, { lr: 1e-2 });
    const x = tensor(randomF32(rng, N * I), [N, I], { device: 'cuda' });
    const targets = Int32Array.from({ length: N }, () => rng.int(0, V - 1));
    const step = async () => {
      const logits = await model.forward(x);
      const { loss, dlogits } = await train.crossEntropy(logits, targets);
      const g = await model.backward(x, dlogits);
      await train.clipGradNorm([g.dweight, g.dbias], 1, { norm: 'tensor' });
      await opt.step([g.dweight, g.dbias]);
      return loss;
    };
    const first = await step();  // warm-up: state buffers, the allocator's cache, the GEMM architecture probe
    const before = copies();
    const second = await step();
    const after = copies();
    expect(second).to.be.below(first);
    expect(after.toHost - before.toHost, 'copies to the host').to.equal(1);
    expect(after.toHostBytes - before.toHostBytes).to.equal(8);
    expect(after.toDevice - before.toDevice, 'copies to the device').to.equal(1);
    expect(after.toDeviceBytes - before.toDeviceBytes).to.equal(N * 4);
    const runs = backendInfo().lastRuns;
    for (const op of ['crossEntropy', 'clipGradNorm', 'Adam.step']) expect(runs[op].device, op).to.equal('cuda:0');
    expect(backendInfo().cuda.stickyError).to.equal(null);
  });
});

describe('@gpu CUDA nn kernels: parity with the CPU set', function () {
  before(function () {
    skipWithoutGpu(this);
  });

  const host = (t) => (t.device === 'cpu' ? t.data : t.readSync());

  it('every method runs on the device with the CPU bits (tanh and sigmoid within a few ulp)', async function () {
    const rng = makeRandom();
    const k = kernelsFor('cuda:0');
    const [rows, m] = [3, 70001];
    const x = tensor(randomF32(rng, rows * m, -6, 6), [rows, m]);
    const dy = tensor(randomF32(rng, rows * m), [rows, m]);
    const b = tensor(randomF32(rng, m), [m]);
    const xd = x.to('cuda');
    const dyd = dy.to('cuda');
    const same = (got, want, what) => {
      expect(got.device, what).to.equal('cuda:0');
      expect(got.shape, what).to.deep.equal(want.shape);
      bitsEqual(host(got), host(want), `${what} (seed ${rng.seed})`);
    };
    for (const kind of ['tanh', 'sigmoid', 'relu']) {
      const y = await k.activation(kind, xd, true);
      const want = cpuKernels.activation(kind, x, false);
      if (kind === 'relu') same(y, want, 'relu');
      else expectClose(host(y), want.data, { abs: 3e-7, rel: 4e-7, what: kind, seed: rng.seed });
      const dx = k.activationBackward(kind, dyd, want.to('cuda'), false);
      const wdx = cpuKernels.activationBackward(kind, dy, want, false);
      expectClose(host(dx), wdx.data, { abs: 1e-7, rel: 5e-7, what: `${kind} backward`, seed: rng.seed });
    }
    for (const op of ['add', 'mul']) same(await k.broadcast(op, xd, b.to('cuda'), rows, true), cpuKernels.broadcast(op, x, b, rows, false), op);
    same(k.affine(xd, -0.37, 1.25, false), cpuKernels.affine(x, -0.37, 1.25, false), 'affine');
    same(k.dropout(false, xd, 0.3, 77, false), cpuKernels.dropout(false, x, 0.3, 77, false), 'dropout');
    for (const [outer, len, inner] of [[1, rows * m, 1], [rows, m, 1], [1, rows, m]]) {
      const want = cpuKernels.sumAxis(x, dy, outer, len, inner, 0.5, null, [outer * inner], false);
      same(await k.sumAxis(xd, dyd, outer, len, inner, 0.5, null, [outer * inner], true), want, `sumAxis ${outer}x${len}x${inner}`);
      const wb = cpuKernels.broadcastAxis(want, outer, len, inner, 2, [rows * m], false);
      same(k.broadcastAxis(want.to('cuda'), outer, len, inner, 2, [rows * m], false), wb, `broadcastAxis ${outer}x${len}x${inner}`);
    }
    const into = tensor(randomF32(rng, m), [m]);
    const intoD = into.to('cuda');
    cpuKernels.sumAxis(x, null, 1, rows, m, 1, into, [m], false);
    same(k.sumAxis(xd, null, 1, rows, m, 1, intoD, [m], false), into, 'sumAxis into');
    const acc = dy.to('cuda');
    k.accumulate(acc, xd, false);
    const accH = tensor(dy.data.slice(), dy.shape);
    cpuKernels.accumulate(accH, x, false);
    same(acc, accH, 'accumulate');
    const weight = tensor(randomF32(rng, 50 * 16), [50, 16]);
    const ids = Int32Array.from({ length: 300 }, (_, i) => (i % 4 ? rng.int(0, 49) : 3));
    same(await k.embedding(weight.to('cuda'), ids, [300, 16], true), cpuKernels.embedding(weight, ids, [300, 16], false), 'embedding');
    const g = tensor(randomF32(rng, 300 * 16), [300, 16]);
    same(k.embeddingBackward(g.to('cuda'), ids, [50, 16], 3, null, false), cpuKernels.embeddingBackward(g, ids, [50, 16], 3, null, false),
      'embeddingBackward');
    const parts = [x.reshape([rows, m]), dy.reshape([rows, m])];
    const cat = await k.concat(parts.map((t) => t.to('cuda')), rows, [rows, 2 * m], true);
    same(cat, cpuKernels.concat(parts, rows, [rows, 2 * m], false), 'concat');
    const pieces = k.split(cat, rows, [[rows, m], [rows, m]], false);
    pieces.forEach((p, i) => same(p, parts[i], `split ${i}`));
    const z = tensor(randomF32(rng, 10), [10], { device: 'cuda' });
    k.fill(z, 0);
    expect(Array.from(z.readSync())).to.deep.equal(new Array(10).fill(0));
  });
});

describe('@gpu CUDA nn: a model training step stays on the device', function () {
  before(function () {
    skipWithoutGpu(this);
  });

  // The batch as Int32Arrays: uploaded by each step (the ids for the gather and again for the
  // scatter-add, the targets); as IndexTensors uploaded once: nothing.
  for (const [kind, uploads] of [['Int32Array', 3], ['IndexTensor', 0]]) {
    it(`Embedding → RMSNorm → tanh → Linear → crossEntropy → backward → clip → Adam, batch as ${kind}: ${uploads} uploads, the loss out`, async function () {
      const rng = makeRandom();
      const [V, D, T, B] = [40, 16, 8, 4];
      class Model extends nn.Module {
        constructor() {
          super();
          this.embed = new nn.Embedding({ numEmbeddings: V, embeddingDim: D, seed: 1 });
          this.norm = new nn.RMSNorm({ normalizedShape: D });
          this.head = new nn.Linear({ inFeatures: D, outFeatures: V, seed: 2 });
        }

        async forward(ids) {
          const x = await this.embed.forward(ids, [T, B]);
          return this.head.forward(await nn.tanh(await this.norm.forward(x)));
        }
      }
      const model = new Model().to('cuda');
      const opt = new train.Adam(model.parameters(), { lr: 1e-2 });
      const batch = () => Int32Array.from({ length: T * B }, () => rng.int(0, V - 1));
      const [ids, targets] = kind === 'Int32Array' ? [batch(), batch()]
        : [indexTensor(batch(), [T, B], { device: 'cuda' }), indexTensor(batch(), [T * B], { device: 'cuda' })];
      const step = trainingStep(model, opt, ids, targets);
      const first = (await step()).item();
      const before = copies();
      const loss = await step();
      const during = copies();
      const value = loss.item();
      const after = copies();
      expect(value).to.be.below(first);
      expect(during.toHost - before.toHost, 'copies to the host during the step').to.equal(0);
      expect(after.toHost - during.toHost, 'the loss read').to.equal(1);
      expect(after.toHostBytes - during.toHostBytes).to.equal(4);
      expect(during.toDevice - before.toDevice, 'copies to the device').to.equal(uploads);
      for (const p of model.parameters()) expect(p.device).to.equal('cuda:0');
      const runs = backendInfo().lastRuns;
      for (const op of ['Embedding', 'crossEntropy']) expect(runs[op], op).to.deep.equal({ op, device: 'cuda:0', fallback: null });
      for (const op of ['clipGradNorm', 'Adam.step']) expect(runs[op].device, op).to.equal('cuda:0');
    });
  }
});
