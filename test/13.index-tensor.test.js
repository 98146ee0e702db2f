'use strict';
// IndexTensor (lib/index-tensor.ts): creation, shapes, slices as views, known bounds and the exact
// check where they do not prove an op's ids valid, disposal; crossEntropy and nn.Embedding with an
// IndexTensor against the Int32Array path. The @gpu suites: device IndexTensors through both ops
// against the CPU with no copy to the device (the native copy counter), device views, device
// mismatches, and the training bindings' refusal of overlapping buffers.
const { makeRandom } = require('./reference/random');
const { expectClose } = require('./support/close');
const { randomF32 } = require('./support/random');
const { boundsWithin } = require('../dist/index-tensor');
const { native, sliceDevice } = require('../dist/native');
const train = require('../dist/train');

const { tensor, indexTensor, IndexTensor, backendInfo, nn } = rnnkit;
const copies = () => backendInfo().cuda.copies;

function bitsEqual(a, b, what) {
  expect(a.length, what).to.equal(b.length);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) throw new Error(`${what}: element ${i} is ${a[i]}, want ${b[i]}`);
}

/** nn.crossEntropy's loss and logits gradient for `targets` (an Int32Array or an IndexTensor). */
async function nnCrossEntropy(logits, shape, targets, options, device = 'cpu') {
  const x = tensor(logits.slice(), shape, { device });
  x.requiresGrad = true;
  const loss = await nn.crossEntropy(x, targets, options);
  await loss.backward();
  return { loss: loss.item(), grad: x.grad.readSync() };
}

/** An Embedding's output and weight gradient for `ids`, on `device`. */
async function embeddingRun(options, ids, shape, dy, device = 'cpu') {
  const e = new nn.Embedding({ ...options, device });
  const y = await e.forward(ids, shape);
  await (await nn.sum(await nn.mul(y, tensor(dy, y.shape, { device })))).backward();
  return { y: y.readSync(), shape: y.shape, grad: e.weight.grad.readSync() };
}

describe('IndexTensor: creation, shapes and bounds', function () {
  it('copies an Int32Array or a number[] of int32 integers, with exact bounds', function () {
    const data = new Int32Array([4, -100, 7, 0, 7, 2]);
    const t = indexTensor(data, [2, 3]);
    expect(t).to.be.instanceOf(IndexTensor);
    expect(t.shape).to.deep.equal([2, 3]);
    expect([t.device, t.size, t.rank, t.dtype, t.disposed]).to.deep.equal(['cpu', 6, 2, 'int32', false]);
    data[0] = 99;
    expect(Array.from(t.readSync())).to.deep.equal([4, -100, 7, 0, 7, 2]);
    expect(t.bounds).to.deep.equal({ min: -100, max: 7, innerMin: 0, innerMax: 4 });
    const r = t.readSync();
    r[1] = 5;
    expect(t.readSync()[1]).to.equal(-100);
    const u = indexTensor([1, 2, -(2 ** 31), 2 ** 31 - 1]);
    expect(u.shape).to.deep.equal([4]);
    expect(u.bounds).to.deep.equal({ min: -(2 ** 31), max: 2 ** 31 - 1, innerMin: 1, innerMax: 2 });
    expect(indexTensor([3, 3]).bounds).to.deep.equal({ min: 3, max: 3, innerMin: 3, innerMax: 3 });
    expect(indexTensor([0, 9]).bounds).to.deep.equal({ min: 0, max: 9, innerMin: 9, innerMax: 0 });
    expect(indexTensor([], [0, 4]).bounds).to.equal(null);
    expect(indexTensor([5], []).rank).to.equal(0);
    expect(String(t)).to.equal('IndexTensor(int32, [2, 3], cpu)');
  });

  it('read() resolves a copy; to() the same device is the tensor itself', async function () {
    const t = indexTensor([1, 2, 3]);
    expect(Array.from(await t.read())).to.deep.equal([1, 2, 3]);
    expect(t.to('cpu')).to.equal(t);
  });

  it('refuses bad data, shapes and options with typed errors', function () {
    for (const bad of [new Float32Array(2), [1.5], [2 ** 31], [-(2 ** 31) - 1], ['1'], [NaN], null, 3, {}]) {
      expectCode(() => indexTensor(bad), 'ERR_RNNKIT_DTYPE');
    }
    expectCode(() => indexTensor([1, 2, 3], [2, 2]), 'ERR_RNNKIT_SHAPE');
    expectCode(() => indexTensor([1], [-1]), 'ERR_RNNKIT_SHAPE');
    expectCode(() => indexTensor([1], [1], { frobnicate: 1 }), 'ERR_RNNKIT_ARG');
    expectCode(() => indexTensor([1], [1], { device: 'tpu' }), 'ERR_RNNKIT_ARG');
    expectCode(() => new IndexTensor(Symbol('x'), [1], 'cpu', {}, 0, null, false), 'ERR_RNNKIT_ARG');
  });

  it('boundsWithin proves a range, with one exception value, from min, max and the inner range', function () {
    const b = (min, max, innerMin, innerMax) => ({ min, max, innerMin, innerMax });
    expect(boundsWithin(null, 0, 0, null)).to.equal(true);
    expect(boundsWithin(b(0, 9, 1, 8), 0, 9, null)).to.equal(true);
    expect(boundsWithin(b(0, 10, 1, 8), 0, 9, null)).to.equal(false);
    expect(boundsWithin(b(-1, 9, 0, 8), 0, 9, null)).to.equal(false);
    // Targets padded with −100 below the classes, or with the class count above them.
    expect(boundsWithin(b(-100, 9, 0, 8), 0, 9, -100)).to.equal(true);
    expect(boundsWithin(b(-100, 9, -7, 8), 0, 9, -100)).to.equal(false);
    expect(boundsWithin(b(0, 10, 1, 9), 0, 9, 10)).to.equal(true);
    expect(boundsWithin(b(-100, 10, 0, 9), 0, 9, 10)).to.equal(false);
    // Two values only (an empty inner range), and one value inside the inner range.
    expect(boundsWithin(b(-100, 3, 3, -100), 0, 9, -100)).to.equal(true);
    expect(boundsWithin(b(-100, 20, 4, 4), 0, 9, -100)).to.equal(false);
    expect(boundsWithin(b(-100, 5, -100, -100), 0, 9, -100)).to.equal(true);
  });
});

describe('IndexTensor: slices', function () {
  it('are views of rows along the first axis, with their parent\'s bounds', function () {
    const t = indexTensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [4, 3]);
    const s = t.slice(1, 3);
    expect(s.shape).to.deep.equal([2, 3]);
    expect(Array.from(s.readSync())).to.deep.equal([3, 4, 5, 6, 7, 8]);
    expect(s.bounds).to.deep.equal(t.bounds);
    expect(Array.from(t.slice(-1).readSync())).to.deep.equal([9, 10, 11]);
    expect(Array.from(t.slice(2).slice(1).readSync())).to.deep.equal([9, 10, 11]);
    expect(Array.from(t.slice(-3, -2).readSync())).to.deep.equal([3, 4, 5]);
    expect(t.slice(2, 2).shape).to.deep.equal([0, 3]);
    expect(t.slice(4).size).to.equal(0);
    expect(Array.from(indexTensor([5, 6, 7]).slice(1, 2).readSync())).to.deep.equal([6]);
  });

  it('refuse ranges outside the rows, positions that are not integers and scalars', function () {
    const t = indexTensor([1, 2, 3, 4], [4]);
    for (const [a, b] of [[5, undefined], [0, 5], [-5, 2], [3, 2]]) expectCode(() => t.slice(a, b), 'ERR_RNNKIT_SHAPE');
    for (const [a, b] of [[0.5, 2], ['1', 2], [0, null], [NaN, 1]]) expectCode(() => t.slice(a, b), 'ERR_RNNKIT_ARG');
    expectCode(() => indexTensor([1], []).slice(0), 'ERR_RNNKIT_SHAPE');
  });

  it('a slice disposes alone; the parent\'s dispose reaches every slice', function () {
    const t = indexTensor([1, 2, 3, 4]);
    const a = t.slice(0, 2);
    const b = t.slice(2);
    a.dispose();
    a.dispose();
    expect([a.disposed, b.disposed, t.disposed]).to.deep.equal([true, false, false]);
    expectCode(() => a.readSync(), 'ERR_RNNKIT_DISPOSED');
    expect(Array.from(b.readSync())).to.deep.equal([3, 4]);
    t[Symbol.dispose]();
    expect([b.disposed, t.disposed]).to.deep.equal([true, true]);
    expect(String(b)).to.equal('IndexTensor(int32, [2], cpu, disposed)');
    for (const x of [t, b]) {
      expectCode(() => x.readSync(), 'ERR_RNNKIT_DISPOSED');
      expectCode(() => x.slice(0), 'ERR_RNNKIT_DISPOSED');
      expectCode(() => x.to('cpu'), 'ERR_RNNKIT_DISPOSED');
      expectCode(() => x.assertLive('ids'), 'ERR_RNNKIT_DISPOSED');
    }
  });
});

describe('IndexTensor through crossEntropy and nn.Embedding on the CPU', function () {
  it('crossEntropy (both twins, ignoreIndex, mask) gives the Int32Array path\'s loss and gradient', async function () {
    const rng = makeRandom();
    const [N, V] = [24, 7];
    const logits = randomF32(rng, N * V, -4, 4);
    const targets = Int32Array.from({ length: N }, (_, r) => (r % 5 === 1 ? -100 : rng.int(0, V - 1)));
    const mask = Float32Array.from({ length: N }, (_, r) => (r % 7 === 3 ? 0 : 1));
    const ids = indexTensor(targets, [4, 6]);
    for (const options of [undefined, { mask }, { reduction: 'sum' }]) {
      const want = train.crossEntropySync(tensor(logits, [N, V]), targets, options);
      for (const got of [train.crossEntropySync(tensor(logits, [N, V]), ids, options), await train.crossEntropy(tensor(logits, [N, V]), ids, options)]) {
        expect(got.loss).to.equal(want.loss);
        bitsEqual(got.dlogits.data, want.dlogits.data, 'dlogits');
      }
      const a = await nnCrossEntropy(logits, [N, V], ids, options);
      const b = await nnCrossEntropy(logits, [N, V], targets, options);
      expect(a.loss).to.equal(b.loss);
      bitsEqual(a.grad, b.grad, 'nn.crossEntropy grad');
    }
    expect(nn.crossEntropySync(tensor(logits, [N, V]), ids).item()).to.be.closeTo(train.crossEntropySync(tensor(logits, [N, V]), targets).loss, 1e-6);
    expectCode(() => nn.crossEntropySync(tensor(logits, [N, V]), ids.slice(1)), 'ERR_RNNKIT_SHAPE');
    expectCode(() => train.crossEntropySync(tensor(logits, [N, V]), Array.from(targets)), 'ERR_RNNKIT_DTYPE');
    expect(backendInfo().lastRuns.crossEntropy).to.deep.equal({ op: 'crossEntropy', device: 'cpu', fallback: null });
  });

  it('nn.Embedding (both twins, paddingIdx) gives the Int32Array path\'s rows and gradient', async function () {
    const rng = makeRandom();
    const options = { numEmbeddings: 11, embeddingDim: 5, paddingIdx: 3, seed: 7 };
    const data = Int32Array.from({ length: 24 }, (_, k) => (k % 4 === 0 ? 3 : rng.int(0, 10)));
    const ids = indexTensor(data, [4, 6]);
    const dy = randomF32(rng, 24 * 5);
    const want = await embeddingRun(options, data, [4, 6], dy);
    const got = await embeddingRun(options, ids, undefined, dy);
    expect(got.shape).to.deep.equal([4, 6, 5]);
    bitsEqual(got.y, want.y, 'rows');
    bitsEqual(got.grad, want.grad, 'weight gradient');
    const e = new nn.Embedding(options);
    expect(e.forwardSync(ids, [24]).shape).to.deep.equal([24, 5]);
    bitsEqual(e.forwardSync(ids.slice(1, 2)).data, want.y.subarray(30, 60), 'a slice\'s rows');
    expectCode(() => e.forwardSync(ids, [5, 5]), 'ERR_RNNKIT_SHAPE');
    expectCode(() => e.forwardSync(new Float32Array(3)), 'ERR_RNNKIT_DTYPE');
    expect(backendInfo().lastRuns.Embedding).to.deep.equal({ op: 'Embedding', device: 'cpu', fallback: null });
  });

  it('where inherited bounds do not prove the ids, the values are checked exactly (the Int32Array errors) and their bounds kept', async function () {
    const all = indexTensor([-100, 1, 2, 3, 50]);
    const logits = tensor(randomF32(makeRandom(), 40), [4, 10]);
    const head = all.slice(0, 4);
    expect(head.bounds).to.deep.equal({ min: -100, max: 50, innerMin: 1, innerMax: 3 });
    const want = train.crossEntropySync(logits, new Int32Array([-100, 1, 2, 3]));
    expect(train.crossEntropySync(logits, head).loss).to.equal(want.loss);
    expect(head.bounds).to.deep.equal({ min: -100, max: 3, innerMin: 1, innerMax: 2 });
    expect(all.bounds).to.deep.equal({ min: -100, max: 50, innerMin: 1, innerMax: 3 });
    const tail = all.slice(1);
    const a = expectCode(() => train.crossEntropySync(logits, tail), 'ERR_RNNKIT_ARG');
    const b = expectCode(() => train.crossEntropySync(logits, new Int32Array([1, 2, 3, 50])), 'ERR_RNNKIT_ARG');
    expect(a.message).to.equal(b.message);
    // A mask weight of 0 excuses the row, as for an Int32Array.
    expect(train.crossEntropySync(logits, tail, { mask: new Float32Array([1, 1, 1, 0]) }).loss).to.be.a('number');
    const e = new nn.Embedding({ numEmbeddings: 4, embeddingDim: 2, seed: 1 });
    const mid = all.slice(1, 4);
    expect(Array.from(e.forwardSync(mid).data)).to.deep.equal(Array.from(e.forwardSync(new Int32Array([1, 2, 3])).data));
    expect(mid.bounds).to.deep.equal({ min: 1, max: 3, innerMin: 2, innerMax: 2 });
    const c = expectCode(() => e.forwardSync(all.slice(3)), 'ERR_RNNKIT_ARG');
    const d = expectCode(() => e.forwardSync(new Int32Array([3, 50])), 'ERR_RNNKIT_ARG');
    expect(c.message).to.equal(d.message);
    await expectReject(e.forward(all), 'ERR_RNNKIT_ARG');
  });

  it('disposed ids are ERR_RNNKIT_DISPOSED; the backward keeps the ids of its forward', async function () {
    const ids = indexTensor([1, 2, 2, 0]);
    const e = new nn.Embedding({ numEmbeddings: 3, embeddingDim: 2, seed: 1 });
    const y = e.forwardSync(ids);
    ids.dispose();
    await (await nn.sum(y)).backward();
    expect(Array.from(e.weight.grad.data)).to.deep.equal([1, 1, 1, 1, 2, 2]);
    expectCode(() => e.forwardSync(ids), 'ERR_RNNKIT_DISPOSED');
    expectCode(() => train.crossEntropySync(tensor(new Float32Array(12), [4, 3]), ids), 'ERR_RNNKIT_DISPOSED');
    await expectReject(nn.crossEntropy(tensor(new Float32Array(12), [4, 3]), ids), 'ERR_RNNKIT_DISPOSED');
  });
});

describe('IndexTensor: without a CUDA device', function () {
  before(function () {
    if (cudaAvailable()) this.skip();
  });

  it('a CUDA IndexTensor says why there is no device', function () {
    const err = expectCode(() => indexTensor([1, 2], [2], { device: 'cuda' }), 'ERR_RNNKIT_DEVICE');
    expect(err.message).to.contain(backendInfo().cuda.reason);
    expectCode(() => indexTensor([1, 2]).to('cuda'), 'ERR_RNNKIT_DEVICE');
  });
});

describe('@gpu IndexTensor on a CUDA device', function () {
  before(function () {
    skipWithoutGpu(this);
  });

  it('is made with one upload; slices are device views (no copy); reads and moves give the values back', async function () {
    const data = Int32Array.from({ length: 60 }, (_, k) => (k * 7919) % 101 - 3);
    const before = copies();
    const t = indexTensor(data, [12, 5], { device: 'cuda' });
    const s = t.slice(3, 7);
    const after = copies();
    expect(after.toDevice - before.toDevice).to.equal(1);
    expect(after.toDeviceBytes - before.toDeviceBytes).to.equal(240);
    expect(after.toHost - before.toHost).to.equal(0);
    expect([t.device, s.device]).to.deep.equal(['cuda:0', 'cuda:0']);
    expect(s.deviceBuffer.bytes).to.equal(80);
    expect(s.bounds).to.deep.equal(t.bounds);
    expect(Array.from(s.readSync())).to.deep.equal(Array.from(data.subarray(15, 35)));
    expect(Array.from(await s.slice(1, 2).read())).to.deep.equal(Array.from(data.subarray(20, 25)));
    const host = s.to('cpu');
    expect(host.device).to.equal('cpu');
    expect(Array.from(host.readSync())).to.deep.equal(Array.from(data.subarray(15, 35)));
    expect(Array.from(host.to('cuda').readSync())).to.deep.equal(Array.from(data.subarray(15, 35)));
    s.dispose();
    expect(Array.from(t.readSync())).to.deep.equal(Array.from(data));
    const keep = t.slice(0, 1);
    t.dispose();
    expect(keep.disposed).to.equal(true);
    expectCode(() => keep.readSync(), 'ERR_RNNKIT_DISPOSED');
    expectCode(() => keep.deviceBuffer, 'ERR_RNNKIT_DISPOSED');
  });

  it('crossEntropy takes device targets with no copy to the device and matches the CPU', async function () {
    const rng = makeRandom();
    const [N, V] = [96, 300];
    const logits = randomF32(rng, N * V, -6, 6);
    const targets = Int32Array.from({ length: 2 * N }, (_, r) => (r % 9 === 4 ? -100 : rng.int(0, V - 1)));
    const all = indexTensor(targets, [2 * N], { device: 'cuda' });
    const x = tensor(logits, [N, V], { device: 'cuda' });
    for (const [start, options] of [[0, undefined], [N, { reduction: 'sum' }], [N, { mask: Float32Array.from({ length: N }, (_, r) => r % 4) }]]) {
      const want = train.crossEntropySync(tensor(logits, [N, V]), targets.slice(start, start + N), options);
      const before = copies();
      const got = await train.crossEntropy(x, all.slice(start, start + N), options);
      const during = copies();
      expect(during.toDevice - before.toDevice, 'copies to the device').to.equal(options && options.mask ? 1 : 0);
      expect(during.toHost - before.toHost, 'the loss read').to.equal(1);
      expect(backendInfo().lastRuns.crossEntropy).to.deep.equal({ op: 'crossEntropy', device: 'cuda:0', fallback: null });
      expect(got.loss).to.be.closeTo(want.loss, 1e-5 * Math.max(1, Math.abs(want.loss)));
      expectClose(got.dlogits.readSync(), want.dlogits.data, { abs: 1e-7, rel: 1e-5, what: `dlogits from ${start}`, seed: rng.seed });
    }
    const loss = await nnCrossEntropy(logits, [N, V], all.slice(0, N), undefined, 'cuda');
    const cpu = await nnCrossEntropy(logits, [N, V], targets.slice(0, N));
    expect(loss.loss).to.be.closeTo(cpu.loss, 1e-5 * Math.max(1, Math.abs(cpu.loss)));
    expectClose(loss.grad, cpu.grad, { abs: 1e-7, rel: 1e-5, what: 'nn.crossEntropy grad', seed: rng.seed });
  });

  it('crossEntropy reads device targets back only where their bounds do not prove them, and refuses a bad one', function () {
    const all = indexTensor([-100, 1, 2, 3, 50], [5], { device: 'cuda' });
    const x = tensor(randomF32(makeRandom(), 40), [4, 10], { device: 'cuda' });
    const head = all.slice(0, 4);
    const before = copies();
    const got = train.crossEntropySync(x, head);
    const after = copies();
    expect(after.toHost - before.toHost, 'the targets and the loss read').to.equal(2);
    expect(after.toDevice - before.toDevice).to.equal(0);
    expect(backendInfo().lastRuns.crossEntropy.fallback).to.contain('read to the host and checked');
    expect(got.loss).to.equal(train.crossEntropySync(x, new Int32Array([-100, 1, 2, 3])).loss);
    const again = copies();
    train.crossEntropySync(x, head);
    expect(copies().toHost - again.toHost, 'exact bounds kept: only the loss read').to.equal(1);
    expect(backendInfo().lastRuns.crossEntropy.fallback).to.equal(null);
    const a = expectCode(() => train.crossEntropySync(x, all.slice(1)), 'ERR_RNNKIT_ARG');
    const b = expectCode(() => train.crossEntropySync(x, new Int32Array([1, 2, 3, 50])), 'ERR_RNNKIT_ARG');
    expect(a.message).to.equal(b.message);
  });

  it('nn.Embedding takes device ids with no copy: the CPU\'s rows and gradient bit for bit', async function () {
    const rng = makeRandom();
    for (const [n, V, D, paddingIdx] of [[300, 50, 16, 3], [1000, 7, 33, null], [1, 4, 2, 0]]) {
      const options = { numEmbeddings: V, embeddingDim: D, paddingIdx, seed: 7 };
      const data = Int32Array.from({ length: n }, (_, k) => (k % 4 === 0 ? 3 % V : rng.int(0, V - 1)));
      const ids = indexTensor(data, [n], { device: 'cuda' });
      const dy = randomF32(rng, n * D);
      const want = await embeddingRun(options, data, [n], dy);
      const before = copies();
      const e = new nn.Embedding({ ...options, device: 'cuda' });
      const made = copies();
      const y = await e.forward(ids);
      await (await nn.sum(await nn.mul(y, tensor(dy, y.shape, { device: 'cuda' })))).backward();
      const after = copies();
      expect(after.toDevice - made.toDevice, 'uploads: dy only').to.equal(1);
      expect(after.toHost - made.toHost, 'downloads: the sum is not read').to.equal(0);
      expect(made.toDevice - before.toDevice, 'the table').to.equal(1);
      expect(backendInfo().lastRuns.Embedding).to.deep.equal({ op: 'Embedding', device: 'cuda:0', fallback: null });
      bitsEqual(y.readSync(), want.y, `rows n=${n} (seed ${rng.seed})`);
      bitsEqual(e.weight.grad.readSync(), want.grad, `gradient n=${n} (seed ${rng.seed})`);
    }
  });

  it('device mismatches are ERR_RNNKIT_DEVICE; disposed device ids ERR_RNNKIT_DISPOSED', async function () {
    const ids = indexTensor([0, 1, 2], [3], { device: 'cuda' });
    const cpuTable = new nn.Embedding({ numEmbeddings: 3, embeddingDim: 2, seed: 1 });
    expectCode(() => cpuTable.forwardSync(ids), 'ERR_RNNKIT_DEVICE');
    expectCode(() => train.crossEntropySync(tensor(new Float32Array(9), [3, 3]), ids), 'ERR_RNNKIT_DEVICE');
    await expectReject(nn.crossEntropy(tensor(new Float32Array(9), [3, 3]), ids), 'ERR_RNNKIT_DEVICE');
    // A CPU IndexTensor is host data, uploaded like an Int32Array.
    const table = new nn.Embedding({ numEmbeddings: 3, embeddingDim: 2, seed: 1, device: 'cuda' });
    const host = indexTensor([0, 1, 2]);
    bitsEqual(table.forwardSync(host).readSync(), table.forwardSync(ids).readSync(), 'host ids on a device table');
    ids.dispose();
    expectCode(() => table.forwardSync(ids), 'ERR_RNNKIT_DISPOSED');
    expectCode(() => train.crossEntropySync(tensor(new Float32Array(9), [3, 3], { device: 'cuda' }), ids), 'ERR_RNNKIT_DISPOSED');
  });

  it('the training bindings refuse inputs and outputs that overlap without being the same buffer', function () {
    const whole = tensor(new Float32Array(16), [16], { device: 'cuda' }).deviceBuffer;
    const a = sliceDevice(whole, 0, 8);
    const b = sliceDevice(whole, 4, 8);
    const c = sliceDevice(whole, 8, 8);
    const f = tensor(new Float32Array(8), [8], { device: 'cuda' });
    const [m, v] = [f.deviceBuffer, tensor(new Float32Array(8), [8], { device: 'cuda' }).deviceBuffer];
    expectCode(() => native().cudaSgdStep(a, b, null, 0.1, 0, 0, 0, false, true, false), 'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaAdamStep(a, c, b, v, null, 1e-3, 0.9, 0.999, 1e-8, 0, 1, false, false), 'ERR_RNNKIT_ARG');
    native().cudaSgdStep(a, c, null, 0.1, 0, 0, 0, false, true, false);
    native().cudaAdamStep(a, c, m, v, null, 1e-3, 0.9, 0.999, 1e-8, 0, 1, false, false);
    expectCode(() => native().cudaClipGradNorm([a], 1, sliceDevice(whole, 7, 1), true, false), 'ERR_RNNKIT_ARG');
    const logits = sliceDevice(whole, 0, 12);
    const targets = indexTensor([0, 1, 2], [3], { device: 'cuda' }).deviceBuffer;
    expectCode(() => native().cudaSoftmaxCrossEntropy(logits, targets, null, null, sliceDevice(whole, 11, 1), 3, 4, -100, true, true, false),
      'ERR_RNNKIT_ARG');
    expectCode(() => native().cudaSoftmaxCrossEntropy(logits, targets, null, null, null, 4, 3, -100, true, true, false), 'ERR_RNNKIT_SHAPE');
  });
});
