'use strict';
// nn.Module and the modules: parameter discovery and names (PyTorch's), state dicts and their
// typed errors, strict options, Embedding's checks, train/eval, Sequential, optimizers, clipping
// and schedules on model.parameters(), and a module-built model trained for a few steps equal bit
// for bit to the same model trained through the op-level API.
const { makeRandom } = require('./reference/random');
const { Recurrent } = require('../dist/recurrent');

const { nn, tensor } = rnnkit;

describe('nn.Module: discovery, names, state dicts', function () {
  class Net extends nn.Module {
    constructor() {
      super();
      this.scale = nn.parameter(tensor([1, 2], [2]));
      this.blocks = [new nn.Linear({ inFeatures: 2, outFeatures: 3, seed: 1 }), new nn.Linear({ inFeatures: 3, outFeatures: 2, bias: false, seed: 2 })];
      this.note = 'not a module';
      this.inner = new nn.Sequential(new nn.Embedding({ numEmbeddings: 4, embeddingDim: 2, seed: 3 }), new nn.RMSNorm({ normalizedShape: 2 }));
      this.tied = this.blocks[0];
    }
  }

  it('finds parameters and children in definition order, nested, in arrays, each tensor once', function () {
    const net = new Net();
    expect(net.namedChildren().map(([n]) => n)).to.deep.equal(['blocks.0', 'blocks.1', 'inner', 'tied']);
    expect(net.namedParameters().map(([n, t]) => `${n} [${t.shape}]`)).to.deep.equal([
      'scale [2]', 'blocks.0.weight [3,2]', 'blocks.0.bias [3]', 'blocks.1.weight [2,3]', 'inner.0.weight [4,2]', 'inner.1.weight [2]',
    ]);
    expect(net.parameters().every((p) => p.requiresGrad)).to.equal(true);
    expect(Object.keys(net.stateDict())).to.deep.equal([
      'scale', 'blocks.0.weight', 'blocks.0.bias', 'blocks.1.weight', 'inner.0.weight', 'inner.1.weight', 'tied.weight', 'tied.bias',
    ]);
    expect(net.modules().length).to.equal(6);
    net.blocks[1].weight.requiresGrad = false;
    expect(net.parameters().length).to.equal(6);
  });

  it('recurrent modules have PyTorch\'s parameter names and shapes', function () {
    const names = (m) => m.namedParameters().map(([n, t]) => `${n} [${t.shape}]`);
    expect(names(new nn.LSTM({ inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, projSize: 2 }))).to.deep.equal([
      'weight_ih_l0 [16,3]', 'weight_hh_l0 [16,2]', 'bias_ih_l0 [16]', 'bias_hh_l0 [16]', 'weight_hr_l0 [2,4]',
      'weight_ih_l0_reverse [16,3]', 'weight_hh_l0_reverse [16,2]', 'bias_ih_l0_reverse [16]', 'bias_hh_l0_reverse [16]', 'weight_hr_l0_reverse [2,4]',
      'weight_ih_l1 [16,4]', 'weight_hh_l1 [16,2]', 'bias_ih_l1 [16]', 'bias_hh_l1 [16]', 'weight_hr_l1 [2,4]',
      'weight_ih_l1_reverse [16,4]', 'weight_hh_l1_reverse [16,2]', 'bias_ih_l1_reverse [16]', 'bias_hh_l1_reverse [16]', 'weight_hr_l1_reverse [2,4]',
    ]);
    expect(names(new nn.GRU({ inputSize: 3, hiddenSize: 4, bias: false }))).to.deep.equal(['weight_ih_l0 [12,3]', 'weight_hh_l0 [12,4]']);
    expect(names(new nn.RNN({ inputSize: 3, hiddenSize: 4, nonlinearity: 'relu' }))).to.deep.equal(['weight_ih_l0 [4,3]', 'weight_hh_l0 [4,4]', 'bias_ih_l0 [4]', 'bias_hh_l0 [4]']);
    expect(names(new nn.LSTM({ inputSize: 3, hiddenSize: 4, peepholes: true }))).to.include('weight_peephole_l0 [12]');
  });

  it('recurrent parameters are views of the one packed weight tensor, their gradients views of one packed gradient', async function () {
    const lstm = new nn.LSTM({ inputSize: 3, hiddenSize: 4, numLayers: 2, seed: 5 });
    const packed = lstm.recurrent.weights;
    expect(lstm.parameters().every((p) => p.sharesStorage(packed))).to.equal(true);
    expect(lstm.parameters().reduce((s, p) => s + p.size, 0)).to.equal(packed.size);
    lstm.weight_hh_l1.data[0] = 42;
    expect(lstm.recurrent.getParam({ layer: 1, direction: 0, kind: 'w_hh' }).data[0]).to.equal(42);
    const x = tensor(Float32Array.from({ length: 2 * 2 * 3 }, (_, k) => Math.sin(k)), [2, 2, 3]);
    const { y } = await lstm.forward(x);
    await (await nn.sum(y)).backward();
    const grads = lstm.parameters().map((p) => p.grad);
    expect(grads.every((g) => g.sharesStorage(grads[0]))).to.equal(true);
    const first = Array.from(grads[0].data);
    await (await nn.sum((await lstm.forward(x)).y)).backward();
    Array.from(lstm.parameters()[0].grad.data).forEach((v, k) => expect(v).to.be.closeTo(2 * first[k], 1e-5));
  });

  it('loadStateDict copies values in place and names every missing, unexpected and mismatched key', function () {
    const a = new Net();
    const b = new Net();
    const before = b.blocks[0].weight;
    b.loadStateDict(a.stateDict());
    expect(b.blocks[0].weight).to.equal(before);
    expect(Array.from(b.blocks[0].weight.data)).to.deep.equal(Array.from(a.blocks[0].weight.data));
    const record = { ...a.stateDict(), extra: tensor([1], [1]), 'blocks.0.bias': tensor([1, 2], [2]) };
    delete record.scale;
    const err = expectCode(() => b.loadStateDict(record), 'ERR_RNNKIT_ARG');
    expect(err.message).to.match(/missing keys scale/);
    expect(err.message).to.match(/unexpected keys extra/);
    expect(err.message).to.match(/blocks\.0\.bias is \[2\] in the record, \[3\] here/);
    const loose = { ...a.stateDict(), extra: tensor([1], [1]) };
    delete loose.scale;
    expect(b.loadStateDict(loose, { strict: false })).to.deep.equal({ missingKeys: ['scale'], unexpectedKeys: ['extra'] });
    expectCode(() => b.loadStateDict(a.stateDict(), { strict: true, other: 1 }), 'ERR_RNNKIT_ARG');
    const entries = {};
    for (const [n, t] of Object.entries(a.stateDict())) entries[n] = { shape: t.shape, data: t.data.slice() };
    b.loadStateDict(entries);
  });

  it('saveSafetensors / loadSafetensors round-trip a state dict', function () {
    const os = require('os');
    const path = require('path');
    const fs = require('fs');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-sd-')), 'model.safetensors');
    const a = new Net();
    rnnkit.saveSafetensors(file, a.stateDict());
    const back = rnnkit.loadSafetensors(file);
    const b = new Net();
    b.loadStateDict(back, { strict: true });
    for (const [n, t] of Object.entries(a.stateDict())) expect(Array.from(b.stateDict()[n].data), n).to.deep.equal(Array.from(t.data));
    expectCode(() => rnnkit.loadSafetensors(`${file}.missing`), 'ERR_RNNKIT_ARG');
    fs.rmSync(path.dirname(file), { recursive: true });
  });

  it('train() / eval() reach every module; to() stays put on the CPU and refuses an absent GPU', function () {
    const net = new Net();
    net.eval();
    expect(net.modules().every((m) => m.training === false)).to.equal(true);
    net.train();
    expect(net.modules().every((m) => m.training === true)).to.equal(true);
    const params = net.parameters();
    expect(net.to('cpu')).to.equal(net);
    expect(net.parameters()).to.deep.equal(params);
    if (!cudaAvailable()) expectCode(() => net.to('cuda'), 'ERR_RNNKIT_DEVICE');
  });
});

describe('nn modules: options and checks', function () {
  it('options objects refuse unknown keys, naming them and the allowed ones', function () {
    const err = expectCode(() => new nn.Linear({ inFeatures: 2, outFeatures: 2, bais: true }), 'ERR_RNNKIT_ARG');
    expect(err.message).to.match(/bais/).and.match(/allowed: inFeatures/);
    expectCode(() => new nn.LSTM({ inputSize: 2, hiddenSize: 2, hidden_size: 3 }), 'ERR_RNNKIT_ARG');
    expectCode(() => new nn.GRU({ inputSize: 2, hiddenSize: 2, projSize: 1 }), 'ERR_RNNKIT_ARG');
    expectCode(() => new nn.Embedding({ numEmbeddings: 2, embeddingDim: 2, padding_idx: 0 }), 'ERR_RNNKIT_ARG');
    expectCode(() => new nn.Dropout({ p: 1 }), 'ERR_RNNKIT_ARG');
    expectCode(() => new nn.RMSNorm({ normalizedShape: 0 }), 'ERR_RNNKIT_ARG');
    expectCode(() => new nn.RNN({ inputSize: 2, hiddenSize: 2, nonlinearity: 'gelu' }), 'ERR_RNNKIT_ARG');
    expectCode(() => new nn.Embedding({ numEmbeddings: 3, embeddingDim: 2, paddingIdx: 3 }), 'ERR_RNNKIT_ARG');
    expectCode(() => new nn.Embedding({ numEmbeddings: 2 ** 20, embeddingDim: 2 ** 20 }), 'ERR_RNNKIT_SHAPE');
    expectCode(() => new nn.Linear({ inFeatures: 2 ** 31, outFeatures: 2 ** 31 }), 'ERR_RNNKIT_SHAPE');
  });

  it('Embedding: ids outside the table name their position; shapes and dtypes are checked', async function () {
    const emb = new nn.Embedding({ numEmbeddings: 5, embeddingDim: 3, paddingIdx: -1, seed: 1 });
    expect(emb.paddingIdx).to.equal(4);
    expect(Array.from(emb.weight.data.subarray(12))).to.deep.equal([0, 0, 0]);
    const err = await expectReject(emb.forward(Int32Array.of(0, 1, 2, 7, 1, 1), [2, 3]), 'ERR_RNNKIT_ARG');
    expect(err.message).to.match(/ids\[3\] = 7/);
    expectCode(() => emb.forwardSync(Int32Array.of(-1)), 'ERR_RNNKIT_ARG');
    expectCode(() => emb.forwardSync(Int32Array.of(1, 2), [3]), 'ERR_RNNKIT_SHAPE');
    expectCode(() => emb.forwardSync([1, 2]), 'ERR_RNNKIT_DTYPE');
    const y = emb.forwardSync(Int32Array.of(1, 4, 1), [3, 1]);
    expect(y.shape).to.deep.equal([3, 1, 3]);
    expect(Array.from(y.data.subarray(3, 6))).to.deep.equal([0, 0, 0]);
  });

  it('functions check shapes and devices', async function () {
    const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    await expectReject(nn.add(a, tensor([1, 2], [2])), 'ERR_RNNKIT_SHAPE');
    await expectReject(nn.mul(2, 3), 'ERR_RNNKIT_ARG');
    await expectReject(nn.concat([a, tensor([1, 2], [2, 1])], 0), 'ERR_RNNKIT_SHAPE');
    await expectReject(nn.sum(a, { axis: 2 }), 'ERR_RNNKIT_ARG');
    await expectReject(nn.sum(a, { axes: 1 }), 'ERR_RNNKIT_ARG');
    expectCode(() => nn.reshape(a, [-1, -1]), 'ERR_RNNKIT_SHAPE');
    expect(nn.reshape(a, [3, -1]).shape).to.deep.equal([3, 2]);
    await expectReject(nn.crossEntropy(a, Int32Array.of(0, 1), { grad: true }), 'ERR_RNNKIT_ARG');
    await expectReject(nn.tanh('x'), 'ERR_RNNKIT_ARG');
  });

  it('Sequential chains modules and passes on a recurrent module\'s y', async function () {
    const seq = new nn.Sequential(
      new nn.Embedding({ numEmbeddings: 6, embeddingDim: 4, seed: 1 }),
      new nn.GRU({ inputSize: 4, hiddenSize: 3, seed: 2 }),
      new nn.Linear({ inFeatures: 3, outFeatures: 6, seed: 3 }),
    );
    expect(Object.keys(seq.stateDict())[0]).to.equal('0.weight');
    const logits = await seq.forward(Int32Array.of(0, 1, 2, 3), [2, 2]);
    expect(logits.shape).to.deep.equal([2, 2, 6]);
    const sync = seq.forwardSync(Int32Array.of(0, 1, 2, 3), [2, 2]);
    expect(Array.from(sync.data)).to.deep.equal(Array.from(logits.data));
    expectCode(() => new nn.Sequential(), 'ERR_RNNKIT_ARG');
  });
});

describe('nn training: optimizers and clipping on model.parameters(), and the op-level API', function () {
  const rng = makeRandom();
  const note = `seed ${rng.seed}`;

  it(`a module-built model trained for a few steps equals, bit for bit, the same model trained through the op-level API (${note})`, async function () {
    const [I, H, L, V, T, B] = [5, 8, 2, 7, 6, 3];
    const seeds = { rnn: rng.int(0, 1e9), head: rng.int(0, 1e9) };
    const batches = Array.from({ length: 3 }, () => ({
      x: Float32Array.from(rng.array(T * B * I)),
      targets: Int32Array.from({ length: T * B }, () => rng.int(0, V - 1)),
    }));

    // The op-level program: Recurrent, train.Linear, the loss with its gradient, backward by hand.
    const lstm = new Recurrent({ mode: 'lstm', inputSize: I, hiddenSize: H, numLayers: L, dropout: 0.25, seed: seeds.rnn });
    const dec = new rnnkit.Linear({ inFeatures: H, outFeatures: V, seed: seeds.head });
    const optA = new rnnkit.Adam([lstm.weights, dec.weight, dec.bias], { lr: 0.01 });
    const schedA = new rnnkit.StepLR(optA, { stepSize: 2, gamma: 0.5 });
    const dweights = tensor(new Float32Array(lstm.weights.size), lstm.weights.shape);
    // Clipping sees the same list of arrays as the module program: the PyTorch-named blocks.
    const blocks = new nn.LSTM({ inputSize: I, hiddenSize: H, numLayers: L }).parameters()
      .reduce((acc, p) => {
        acc.list.push(tensor(dweights.data.subarray(acc.at, acc.at + p.size), p.shape));
        acc.at += p.size;
        return acc;
      }, { list: [], at: 0 }).list;
    const normsA = [];
    for (const { x, targets } of batches) {
      const f = await lstm.forward(tensor(x, [T, B, I]), { training: true });
      const logits = await dec.forward(f.y);
      const ce = await rnnkit.crossEntropy(logits, targets);
      const g = await dec.backward(f.y, ce.dlogits);
      await lstm.backward(f.saved, { dy: g.dx, dweights });
      normsA.push(await rnnkit.clipGradNorm([...blocks, g.dweight, g.dbias], 0.5));
      await optA.step([dweights, g.dweight, g.dbias]);
      schedA.step();
    }

    // The module program.
    const model = new (class extends nn.Module {
      constructor() {
        super();
        this.rnn = new nn.LSTM({ inputSize: I, hiddenSize: H, numLayers: L, dropout: 0.25, seed: seeds.rnn });
        this.head = new nn.Linear({ inFeatures: H, outFeatures: V, seed: seeds.head });
      }

      async forward(x) {
        return this.head.forward((await this.rnn.forward(x)).y);
      }
    })();
    const optB = new rnnkit.Adam(model.parameters(), { lr: 0.01 });
    const schedB = new rnnkit.StepLR(optB, { stepSize: 2, gamma: 0.5 });
    const normsB = [];
    for (const { x, targets } of batches) {
      const loss = await nn.crossEntropy(await model.forward(tensor(x, [T, B, I])), targets);
      await loss.backward();
      normsB.push(await rnnkit.clipGradNorm(model.parameters(), 0.5));
      await optB.step();
      optB.zeroGrad();
      schedB.step();
    }
    expect(normsB).to.deep.equal(normsA);
    const same = (a, b) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    expect(same(model.rnn.recurrent.weights.data, lstm.weights.data), `LSTM weights (${note})`).to.equal(true);
    expect(same(model.head.weight.data, dec.weight.data), `Linear weight (${note})`).to.equal(true);
    expect(same(model.head.bias.data, dec.bias.data), `Linear bias (${note})`).to.equal(true);
  });

  it(`forwardSync + backwardSync give the async path's outputs and gradients (${note})`, async function () {
    const build = () => new nn.Sequential(
      new nn.Embedding({ numEmbeddings: 9, embeddingDim: 4, seed: 11 }),
      new nn.LSTM({ inputSize: 4, hiddenSize: 5, numLayers: 2, bidirectional: true, seed: 12 }),
      new nn.Dropout({ p: 0.2, seed: 13 }),
      new nn.RMSNorm({ normalizedShape: 10, bias: true }),
      new nn.Linear({ inFeatures: 10, outFeatures: 9, seed: 14 }),
    );
    const ids = Int32Array.from({ length: 12 }, () => rng.int(0, 8));
    const targets = Int32Array.from({ length: 12 }, () => rng.int(0, 8));
    const a = build();
    const b = build();
    const la = await nn.crossEntropy(await a.forward(ids, [4, 3]), targets);
    await la.backward();
    const lb = nn.crossEntropySync(b.forwardSync(ids, [4, 3]), targets);
    lb.backwardSync();
    expect(lb.item()).to.equal(la.item());
    const gb = b.namedParameters();
    a.namedParameters().forEach(([name, p], k) => expect(Array.from(gb[k][1].grad.data), name).to.deep.equal(Array.from(p.grad.data)));
  });

  it(`optimizers update back-to-back views (a recurrent module's parameters) in one native call, with the same result (${note})`, async function () {
    const { native } = require('../dist/native');
    const binding = native();
    const make = () => {
      const lstm = new nn.LSTM({ inputSize: 3, hiddenSize: 4, numLayers: 2, seed: 21 });
      const x = tensor(Float32Array.from(rng.array(2 * 2 * 3)), [2, 2, 3]);
      return { lstm, x };
    };
    const a = make();
    const b = make();
    b.x.data.set(a.x.data);
    const calls = { adamStep: 0, sgdStep: 0 };
    const original = { adamStep: binding.adamStep, sgdStep: binding.sgdStep };
    for (const k of Object.keys(calls)) {
      binding[k] = (...args) => {
        calls[k]++;
        return original[k].apply(binding, args);
      };
    }
    try {
      const optA = new rnnkit.Adam(a.lstm.parameters(), { lr: 0.01, amsgrad: true });
      const optB = new rnnkit.Adam([b.lstm.recurrent.weights], { lr: 0.01, amsgrad: true });
      for (let k = 0; k < 3; k++) {
        await (await nn.sum((await a.lstm.forward(a.x)).y)).backward();
        await (await nn.sum((await b.lstm.forward(b.x)).y)).backward();
        const packedGrad = tensor(Float32Array.from(b.lstm.parameters().flatMap((p) => Array.from(p.grad.data))), b.lstm.recurrent.weights.shape);
        calls.adamStep = 0;
        await optA.step();
        expect(calls.adamStep).to.equal(1);
        await optB.step([packedGrad]);
        optA.zeroGrad();
        b.lstm.zeroGrad();
        if (k === 1) optA.loadStateDict(optA.stateDict());
      }
      expect(Array.from(a.lstm.recurrent.weights.data)).to.deep.equal(Array.from(b.lstm.recurrent.weights.data));
      const st = optA.stateOf(a.lstm.weight_hh_l1);
      expect(st.step).to.equal(3);
      expect(st.buffers.maxExpAvgSq.length).to.equal(a.lstm.weight_hh_l1.size);
      const sgd = new rnnkit.SGD(a.lstm.parameters(), { lr: 0.1, momentum: 0.9 });
      await (await nn.sum((await a.lstm.forward(a.x)).y)).backward();
      calls.sgdStep = 0;
      sgd.stepSync();
      expect(calls.sgdStep).to.equal(1);
      expect(sgd.stateOf(a.lstm.bias_hh_l0).buffers.momentumBuffer.length).to.equal(a.lstm.bias_hh_l0.size);
    } finally {
      Object.assign(binding, original);
    }
  });

  it('optimizers step from .grad and skip parameters without one; clipping reads .grad', async function () {
    const a = nn.parameter(tensor([1, 2], [2]));
    const b = nn.parameter(tensor([3, 4], [2]));
    const opt = new rnnkit.SGD([a, b], { lr: 0.5 });
    a.grad = tensor([2, 2], [2]);
    opt.stepSync();
    expect(Array.from(a.data)).to.deep.equal([0, 1]);
    expect(Array.from(b.data)).to.deep.equal([3, 4]);
    b.grad = tensor([3, 4], [2]);
    expect(rnnkit.clipGradNormSync([a, b], 1)).to.be.closeTo(Math.sqrt(8 + 25), 1e-6);
    expect(rnnkit.globalNormSync([a.grad, b.grad])).to.be.closeTo(1, 1e-6);
    rnnkit.clipGradValueSync([a, b], 0.1);
    expect(Math.max(...a.grad.data, ...b.grad.data)).to.be.at.most(0.1 + 1e-7);
  });
});
