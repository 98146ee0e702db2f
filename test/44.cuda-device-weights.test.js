'use strict';
// The Recurrent op's packed weights on the device (lib/recurrent-cuda.ts DeviceWeights), the
// device views nn.LSTM / GRU / RNN parameters are made of (Tensor.view over a native slice,
// native/napi/device_buffer.cc deviceBufferSlice), and a 2-layer LSTM training step that copies
// nothing between host and device but the loss (its targets a slice of an IndexTensor uploaded once;
// the native copy counter, backendInfo().cuda.copies).
// The argument checks and the CPU views run everywhere; the @gpu suites need a device
// (RNNKIT_REQUIRE_GPU=1 makes its absence a failure).
const { makeRandom } = require('./reference/random');
const { expectClose } = require('./support/close');
const { randomF32 } = require('./support/random');
const { trainingStep } = require('./support/train-step');
const { native } = require('../dist/native');
const { Tensor } = require('../dist/tensor');
const train = require('../dist/train');

const { tensor, indexTensor, backendInfo, Recurrent, nn } = rnnkit;
const copies = () => backendInfo().cuda.copies;
const TOL = require('./cases/recurrent').cuda.tol;

describe('device buffer slices and tensor views: argument checks (every flavor)', function () {
  it('deviceBufferSlice refuses what is not a DeviceBuffer with ERR_RNNKIT_ARG', function () {
    expect(native().deviceBufferSlice).to.be.a('function');
    for (const bad of [new Float32Array(4), null, undefined, {}, 3]) {
      expectCode(() => native().deviceBufferSlice(bad, 0, 4), 'ERR_RNNKIT_ARG');
    }
  });

  it('a CPU view shares values, version and disposal with its base, and must fit', function () {
    const base = tensor(Float32Array.from({ length: 12 }, (_, i) => i), [12]);
    const v = Tensor.view(base, 4, [2, 3]);
    expect(v.device).to.equal('cpu');
    expect(Array.from(v.data)).to.deep.equal([4, 5, 6, 7, 8, 9]);
    v.data[0] = -1;
    expect(base.data[4]).to.equal(-1);
    base.bumpVersion();
    expect(v.version).to.equal(base.version);
    for (const [offset, shape] of [[7, [6]], [-1, [2]], [0.5, [2]], [12, [1]]]) {
      expectCode(() => Tensor.view(base, offset, shape), 'ERR_RNNKIT_SHAPE');
    }
    base.dispose();
    expect(v.disposed).to.equal(true);
    expectCode(() => v.data, 'ERR_RNNKIT_DISPOSED');
    expectCode(() => Tensor.view(base, 0, [1]), 'ERR_RNNKIT_DISPOSED');
  });

  it('a CPU nn.LSTM keeps its parameters as views of the op\'s host weights', function () {
    const lstm = new nn.LSTM({ inputSize: 3, hiddenSize: 4, numLayers: 2, seed: 5 });
    const w = lstm.recurrent.weights;
    for (const [name, p] of Object.entries(lstm.stateDict())) {
      expect(p.device, name).to.equal('cpu');
      expect(p.sharesStorage(w), name).to.equal(true);
    }
  });
});

describe('@gpu device buffer slices', function () {
  before(function () {
    skipWithoutGpu(this);
  });

  it('view a range of the parent, check bounds, keep the memory alive, and count as no allocation', function () {
    const rng = makeRandom();
    const host = randomF32(rng, 64);
    const t = tensor(host, [64], { device: 'cuda' });
    const live = backendInfo().liveObjects.deviceAllocations;
    const s = native().deviceBufferSlice(t.deviceBuffer, 16 * 4, 32 * 4);
    expect(s.bytes).to.equal(128);
    expect(s.device).to.equal(0);
    expect(backendInfo().liveObjects.deviceAllocations).to.equal(live);
    const got = new Float32Array(32);
    native().copyToHost(s, got, false);
    expect(Array.from(got)).to.deep.equal(Array.from(host.subarray(16, 48)));
    // A slice of a slice views the same memory.
    const s2 = native().deviceBufferSlice(s, 8 * 4, 4 * 4);
    const four = new Float32Array(4);
    native().copyToHost(s2, four, false);
    expect(Array.from(four)).to.deep.equal(Array.from(host.subarray(24, 28)));
    // Writing a slice changes that range of the parent only.
    native().copyToDevice(s2, Float32Array.from([1, 2, 3, 4]), false);
    const all = t.readSync();
    expect(Array.from(all.subarray(24, 28))).to.deep.equal([1, 2, 3, 4]);
    expect(Array.from(all.subarray(0, 24))).to.deep.equal(Array.from(host.subarray(0, 24)));
    expect(Array.from(all.subarray(28))).to.deep.equal(Array.from(host.subarray(28)));
    expectCode(() => native().deviceBufferSlice(t.deviceBuffer, 60 * 4, 8 * 4), 'ERR_RNNKIT_SHAPE');
    expectCode(() => native().deviceBufferSlice(s, 0, 33 * 4), 'ERR_RNNKIT_SHAPE');
    expectCode(() => native().deviceBufferSlice(t.deviceBuffer, 2, 8), 'ERR_RNNKIT_ARG');
    expectCode(() => native().deviceBufferSlice(t.deviceBuffer, 0, 6), 'ERR_RNNKIT_ARG');
    // Overlapping slices are refused as in and out of one op; disjoint ones are not.
    const a = native().deviceBufferSlice(t.deviceBuffer, 0, 8 * 4);
    const b = native().deviceBufferSlice(t.deviceBuffer, 4 * 4, 8 * 4);
    const c = native().deviceBufferSlice(t.deviceBuffer, 8 * 4, 8 * 4);
    expectCode(() => native().cudaNnCopyBlock(a, 0, 8, b, 0, 8, 1, 8, false), 'ERR_RNNKIT_ARG');
    native().cudaNnCopyBlock(a, 0, 8, c, 0, 8, 1, 8, false);
    // The parent disposed: its slices still hold the memory (and its values) until they go too.
    const kept = Array.from(t.readSync().subarray(16, 48));
    t.dispose();
    native().copyToHost(s, got, false);
    expect(Array.from(got)).to.deep.equal(kept);
    for (const x of [s, s2, a, b, c]) x.dispose();
    expectCode(() => native().deviceBufferSlice(s, 0, 4), 'ERR_RNNKIT_DISPOSED');
    expect(backendInfo().cuda.stickyError).to.equal(null);
  });

  it('a device Tensor.view reads and writes its range, shares the version, and goes with its base', function () {
    const rng = makeRandom();
    const host = randomF32(rng, 30);
    const base = tensor(host, [30], { device: 'cuda' });
    const v = Tensor.view(base, 10, [4, 5]);
    expect(v.device).to.equal('cuda:0');
    expect(Array.from(v.readSync())).to.deep.equal(Array.from(host.subarray(10, 30)));
    expect(v.deviceBuffer).to.equal(v.deviceBuffer);
    expect(v.deviceBuffer.bytes).to.equal(80);
    native().cudaFill(v.deviceBuffer, 0.5, false);
    v.bumpVersion();
    expect(base.version).to.equal(v.version);
    const all = base.readSync();
    expect(Array.from(all.subarray(0, 10))).to.deep.equal(Array.from(host.subarray(0, 10)));
    expect(Array.from(all.subarray(10))).to.deep.equal(new Array(20).fill(0.5));
    expect(Array.from(v.clone().readSync())).to.deep.equal(new Array(20).fill(0.5));
    base.dispose();
    expect(v.disposed).to.equal(true);
    expectCode(() => v.deviceBuffer, 'ERR_RNNKIT_DISPOSED');
  });
});

describe('@gpu CUDA Recurrent: the packed weights live on the device', function () {
  this.timeout(30000);
  before(function () {
    skipWithoutGpu(this);
  });

  const cfg = { mode: 'lstm', inputSize: 3, hiddenSize: 5, numLayers: 2, seed: 11 };
  const block = { layer: 1, direction: 0, kind: 'w_hh' };

  it('a device write reaches weights, getParam, exportWeights and a CPU run; setParam reaches the device at once', function () {
    const rng = makeRandom();
    const gpu = new Recurrent({ ...cfg, device: 'cuda' });
    const cpu = new Recurrent({ ...cfg, device: 'cpu' });
    const x = tensor(randomF32(rng, 4 * 2 * 3), [4, 2, 3]);
    const dev = gpu.deviceWeightsSync();
    expect(dev.device).to.equal('cuda:0');
    expect(Array.from(dev.readSync())).to.deep.equal(Array.from(cpu.weights.data));
    // A write on the device (what an optimizer step does): the same on the CPU op's host weights.
    const v0 = gpu.weightsVersion;
    const delta = randomF32(rng, dev.size);
    const d = tensor(delta, dev.shape, { device: 'cuda' });
    native().saxpy(1, d.deviceBuffer, dev.deviceBuffer, false);
    dev.bumpVersion();
    const w = cpu.weights;
    for (let i = 0; i < w.size; i++) w.data[i] += delta[i];
    expect(gpu.weightsVersion).to.not.equal(v0);
    const want = cpu.weights.data;
    expectClose(gpu.weights.data, want, { rel: 1e-6, abs: 1e-6, what: 'weights after a device write', seed: rng.seed });
    expectClose(gpu.getParam(block).data, cpu.getParam(block).data, { rel: 1e-6, abs: 1e-6, what: 'getParam', seed: rng.seed });
    expectClose(gpu.exportWeights('pytorch').weight_hh_l1, cpu.exportWeights('pytorch').weight_hh_l1,
      { rel: 1e-6, abs: 1e-6, what: 'exportWeights', seed: rng.seed });
    // x on the CPU: the op runs on the CPU with the downloaded weights.
    native().saxpy(-0.5, d.deviceBuffer, dev.deviceBuffer, false);
    dev.bumpVersion();
    for (let i = 0; i < w.size; i++) w.data[i] -= 0.5 * delta[i];
    expectClose(gpu.forwardSync(x).y.data, cpu.forwardSync(x).y.data, { rel: 1e-5, abs: 1e-6, what: 'CPU run', seed: rng.seed });
    expect(gpu.lastRun.device).to.equal('cpu');
    // setParam: uploaded at once, into the same device tensor.
    const values = randomF32(rng, 4 * 5 * 5);
    gpu.setParam(block, values);
    cpu.setParam(block, values);
    expect(gpu.deviceWeightsSync()).to.equal(dev);
    const before = copies();
    expectClose(dev.readSync(), cpu.weights.data, { rel: 1e-6, abs: 1e-6, what: 'device after setParam', seed: rng.seed });
    expect(copies().toDevice - before.toDevice, 'no upload left for the next run').to.equal(0);
    expectClose(gpu.forwardSync(x.to('cuda')).y.readSync(), cpu.forwardSync(x).y.data,
      { rel: TOL, scale: 'max', floor: 1e-3, what: 'y after setParam', seed: rng.seed });
    gpu.dispose();
    expect(dev.disposed).to.equal(true);
  });

  it('writes through weights.data are uploaded once; a read of weights alone uploads nothing; both sides written throws', function () {
    const rng = makeRandom();
    const gpu = new Recurrent({ ...cfg, device: 'cuda' });
    const cpu = new Recurrent({ ...cfg, device: 'cpu' });
    const xg = tensor(randomF32(rng, 4 * 2 * 3), [4, 2, 3], { device: 'cuda' });
    gpu.forwardSync(xg);
    void gpu.weights.size;
    let before = copies();
    gpu.forwardSync(xg);
    expect(copies().toDevice - before.toDevice, 'a read of weights alone').to.equal(0);
    gpu.weights.data[3] += 0.25;
    cpu.weights.data[3] += 0.25;
    before = copies();
    const y = gpu.forwardSync(xg).y;
    expect(copies().toDevice - before.toDevice, 'the write through data').to.equal(1);
    expectClose(y.readSync(), cpu.forwardSync(xg.to('cpu')).y.data, { rel: TOL, scale: 'max', floor: 1e-3, what: 'y', seed: rng.seed });
    // A host write through data and a device write since they last matched: refused once, the device values kept.
    const dev = gpu.deviceWeightsSync();
    const w = gpu.weights;
    w.data[0] += 1;
    native().cudaFill(Tensor.view(dev, 1, [1]).deviceBuffer, 2, false);
    dev.bumpVersion();
    const kept = dev.readSync();
    const err = expectCode(() => gpu.forwardSync(xg), 'ERR_RNNKIT_ARG');
    expect(err.message).to.match(/written on the host .* and on the device/);
    expect(kept[1]).to.equal(2);
    expect(Array.from(gpu.weights.data)).to.deep.equal(Array.from(kept));
    gpu.forwardSync(xg);
    gpu.dispose();
  });

  it('a device write between forward and backward is refused; setParam right after starting an async forward reaches it', async function () {
    const rng = makeRandom();
    const gpu = new Recurrent({ ...cfg, device: 'cuda' });
    const cpu = new Recurrent({ ...cfg, device: 'cpu' });
    const x = tensor(randomF32(rng, 3 * 2 * 3), [3, 2, 3]);
    const xg = x.to('cuda');
    const f = gpu.forwardSync(xg, { training: true });
    const dev = gpu.deviceWeightsSync();
    native().cudaFill(Tensor.view(dev, 0, [1]).deviceBuffer, 0.125, false);
    dev.bumpVersion();
    cpu.weights.data[0] = 0.125;
    expectCode(() => gpu.backwardSync(f.saved, {}), 'ERR_RNNKIT_ARG');
    // A host write before an async run is dispatched is uploaded before it (its first await comes first).
    const values = randomF32(rng, 4 * 5 * 5);
    const running = gpu.forward(xg);
    gpu.setParam(block, values);
    cpu.setParam(block, values);
    expectClose((await running).y.readSync(), cpu.forwardSync(x).y.data,
      { rel: TOL, scale: 'max', floor: 1e-3, what: 'y of a run started before setParam', seed: rng.seed });
    gpu.dispose();
  });

  it('a CUDA backward into device dweights downloads nothing and matches the CPU gradients; a CPU saved refuses them', async function () {
    const rng = makeRandom();
    const gpu = new Recurrent({ ...cfg, device: 'cuda' });
    const cpu = new Recurrent({ ...cfg, device: 'cpu' });
    const [T, B] = [5, 3];
    const x = tensor(randomF32(rng, T * B * 3), [T, B, 3]);
    const dy = tensor(randomF32(rng, T * B * 5), [T, B, 5]);
    const want = cpu.backwardSync(cpu.forwardSync(x, { training: true }).saved, { dy });
    const f = await gpu.forward(x.to('cuda'), { training: true });
    const dyd = dy.to('cuda');
    const dw0 = randomF32(rng, gpu.weights.size);
    const dweights = tensor(dw0, [dw0.length], { device: 'cuda' });
    const before = copies();
    const g = await gpu.backward(f.saved, { dy: dyd, dweights, accumulate: true });
    const after = copies();
    expect(after.toHost - before.toHost, 'downloads').to.equal(0);
    expect(after.toDevice - before.toDevice, 'uploads').to.equal(0);
    expect(g.dweights).to.equal(dweights);
    const wantAcc = want.dweights.data.map((v, i) => v + dw0[i]);
    expectClose(dweights.readSync(), wantAcc, { rel: TOL, scale: 'max', floor: 1e-3, what: 'dweights (accumulated)', seed: rng.seed });
    const cpuRun = gpu.forwardSync(x, { training: true });
    expectCode(() => gpu.backwardSync(cpuRun.saved, { dy, dweights }), 'ERR_RNNKIT_DEVICE');
    const other = rnnkit.zeros([dw0.length], { device: 'cuda' });
    expect(gpu.backwardSync(f.saved, { dy: dyd, dweights: other }).dweights.device).to.equal('cuda:0');
    gpu.dispose();
  });
});

describe('@gpu nn recurrent modules on CUDA: parameters are device views of the packed weights', function () {
  this.timeout(60000);
  before(function () {
    skipWithoutGpu(this);
  });

  it('parameters and grads are device views; a step matches the CPU module; stateDict and loadStateDict round-trip', async function () {
    const rng = makeRandom();
    const [T, B, I, H] = [6, 3, 4, 8];
    for (const Cls of [nn.LSTM, nn.GRU, nn.RNN]) {
      const opts = { inputSize: I, hiddenSize: H, numLayers: 2, seed: 21 };
      const cpu = new Cls(opts);
      const gpu = new Cls(opts).to('cuda');
      const packed = gpu.recurrent.deviceWeightsSync();
      const names = Object.keys(cpu.stateDict());
      expect(Object.keys(gpu.stateDict())).to.deep.equal(names);
      for (const [name, p] of Object.entries(gpu.stateDict())) {
        expect(p.device, name).to.equal('cuda:0');
        expect(p.sharesStorage(packed), name).to.equal(true);
        expect(Array.from(p.readSync()), name).to.deep.equal(Array.from(cpu.stateDict()[name].data));
      }
      const x = randomF32(rng, T * B * I);
      const dy = randomF32(rng, T * B * H);
      const loss = async (m, device) => {
        const { y } = await m.forward(tensor(x, [T, B, I], { device }));
        return nn.sum(await nn.mul(y, tensor(dy, [T, B, H], { device })));
      };
      const optC = new train.SGD(cpu.parameters(), { lr: 0.1, momentum: 0.9 });
      const optG = new train.SGD(gpu.parameters(), { lr: 0.1, momentum: 0.9 });
      for (let step = 0; step < 2; step++) {
        await (await loss(cpu, 'cpu')).backward();
        await (await loss(gpu, 'cuda')).backward();
        for (const [name, p] of Object.entries(gpu.stateDict())) {
          expect(p.grad.device, name).to.equal('cuda:0');
          expectClose(p.grad.readSync(), cpu.stateDict()[name].grad.data,
            { rel: TOL, scale: 'max', floor: 1e-3, what: `${Cls.name} ${name}.grad step ${step}`, seed: rng.seed });
        }
        await optC.step();
        await optG.step();
        cpu.zeroGrad();
        gpu.zeroGrad();
      }
      for (const [name, p] of Object.entries(gpu.stateDict())) {
        expectClose(p.readSync(), cpu.stateDict()[name].data, { rel: TOL, scale: 'max', floor: 1e-3, what: `${Cls.name} ${name}`, seed: rng.seed });
      }
      // The op sees the optimizer's writes on the host side too.
      expectClose(gpu.recurrent.weights.data, cpu.recurrent.weights.data, { rel: TOL, scale: 'max', floor: 1e-3, what: 'op weights', seed: rng.seed });
      // loadStateDict writes the device views in place; back to the CPU keeps the values.
      const state = Object.fromEntries(Object.entries(cpu.stateDict()).map(([k, v]) => [k, tensor(v.data.map((e) => e * 0.5), v.shape)]));
      gpu.loadStateDict(state);
      cpu.loadStateDict(state);
      expect(gpu.recurrent.deviceWeightsSync()).to.equal(packed);
      expectClose(packed.readSync(), cpu.recurrent.weights.data, { rel: 0, abs: 0, what: 'after loadStateDict', seed: rng.seed });
      gpu.to('cpu');
      expect(gpu.recurrent.device).to.equal('cpu');
      expect(Array.from(gpu.recurrent.weights.data)).to.deep.equal(Array.from(cpu.recurrent.weights.data));
    }
  });

  it('2-layer LSTM → Linear → crossEntropy → backward → clip → Adam, targets uploaded once as an IndexTensor: the only host copy is the loss out', async function () {
    const rng = makeRandom();
    const [T, B, I, H, V] = [12, 8, 16, 32, 20];
    class Model extends nn.Module {
      constructor() {
        super();
        this.lstm = new nn.LSTM({ inputSize: I, hiddenSize: H, numLayers: 2, seed: 4 });
        this.head = new nn.Linear({ inFeatures: H, outFeatures: V, seed: 5 });
      }

      async forward(x) {
        const { y } = await this.lstm.forward(x);
        return this.head.forward(y.reshape([T * B, H]));
      }
    }
    const model = new Model().to('cuda');
    const opt = new train.Adam(model.parameters(), { lr: 1e-2 });
    const x = tensor(randomF32(rng, T * B * I), [T, B, I], { device: 'cuda' });
    // The data set's targets go to the device once; a step's batch is a slice of them (a device view).
    const dataset = indexTensor(Int32Array.from({ length: 3 * T * B }, () => rng.int(0, V - 1)), [3 * T * B], { device: 'cuda' });
    const targets = dataset.slice(T * B, 2 * T * B);
    const step = trainingStep(model, opt, x, targets);
    const first = (await step()).item();  // warm-up: optimizer state, the packed gradient, the allocator's cache
    for (let k = 0; k < 2; k++) {
      const before = copies();
      const loss = await step();
      const during = copies();
      const value = loss.item();
      const after = copies();
      expect(value, `step ${k + 2}`).to.be.below(first);
      expect(during.toHost - before.toHost, 'copies to the host during the step').to.equal(0);
      expect(after.toHost - during.toHost, 'the loss read').to.equal(1);
      expect(after.toHostBytes - during.toHostBytes).to.equal(4);
      // Nothing: the targets are on the device, and so are the LSTM's weights.
      expect(during.toDevice - before.toDevice, 'copies to the device').to.equal(0);
      expect(during.toDeviceBytes - before.toDeviceBytes).to.equal(0);
    }
    for (const p of model.parameters()) expect(p.device).to.equal('cuda:0');
    expect(model.lstm.recurrent.lastRun).to.include({ op: 'backward', device: 'cuda:0', fallback: null });
    const runs = backendInfo().lastRuns;
    for (const op of ['crossEntropy', 'clipGradNorm', 'Adam.step']) expect(runs[op].device, op).to.equal('cuda:0');
    expect(backendInfo().cuda.stickyError).to.equal(null);
  });
});
