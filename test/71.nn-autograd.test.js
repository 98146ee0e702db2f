'use strict';
// The autograd tape (lib/nn/engine.ts): what is recorded and when, accumulation into .grad over
// several backwards, zeroGrad, detach and noGrad, freed graphs and tensors modified in place
// (typed errors), gradients that must not alias, and the hook interface DistributedDataParallel
// builds on: post-accumulate hooks in backward order whose Promises backward() waits for, and
// queueCallback.
const { makeRandom } = require('./reference/random');

const { nn, tensor, autograd } = rnnkit;

const leaf = (values, shape) => {
  const t = tensor(Float32Array.from(values), shape);
  t.requiresGrad = true;
  return t;
};
const values = (t) => Array.from(t.readSync());
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

describe('autograd: recording and backward', function () {
  const rng = makeRandom();
  const note = `seed ${rng.seed}`;

  it('records only when an input requires gradients and grad mode is on', async function () {
    const a = leaf([1, 2, 3], [3]);
    const c = tensor(Float32Array.of(4, 5, 6), [3]);
    const y = await nn.mul(a, c);
    expect(y.requiresGrad).to.equal(true);
    expect(y.isLeaf).to.equal(false);
    expect((await nn.mul(c, c)).requiresGrad).to.equal(false);
    const z = await nn.noGrad(() => nn.mul(a, c));
    expect(z.requiresGrad).to.equal(false);
    expect(nn.noGradSync(() => nn.mulSync(a, c)).requiresGrad).to.equal(false);
    expect(nn.isGradEnabled()).to.equal(true);
    expectCode(() => {
      y.requiresGrad = false;
    }, 'ERR_RNNKIT_ARG');
    const d = y.detach();
    expect(d.requiresGrad).to.equal(false);
    expect(values(d)).to.deep.equal([4, 10, 18]);
    expect(d.sharesStorage(y)).to.equal(true);
  });

  it('noGrad scopes follow async calls: a concurrent call outside still records', async function () {
    const a = leaf([1, 2], [2]);
    const inside = nn.noGrad(async () => {
      await delay(20);
      return nn.tanh(a);
    });
    const outside = (async () => {
      await delay(5);
      return nn.tanh(a);
    })();
    const [i, o] = await Promise.all([inside, outside]);
    expect(i.requiresGrad).to.equal(false);
    expect(o.requiresGrad).to.equal(true);
  });

  it('backward of a scalar fills .grad; gradients accumulate until zeroGrad', async function () {
    const a = leaf([1, -2, 3], [3]);
    const b = leaf([0.5, 0.25, 2], [3]);
    const step = async () => (await nn.sum(await nn.mul(a, b))).backward();
    await step();
    expect(values(a.grad)).to.deep.equal([0.5, 0.25, 2]);
    expect(values(b.grad)).to.deep.equal([1, -2, 3]);
    const gradTensor = a.grad;
    await step();
    expect(a.grad).to.equal(gradTensor);
    expect(values(a.grad)).to.deep.equal([1, 0.5, 4]);
    const opt = new rnnkit.SGD([a, b], { lr: 0.1 });
    opt.zeroGrad();
    expect(a.grad).to.equal(gradTensor);
    expect(values(a.grad)).to.deep.equal([0, 0, 0]);
    opt.zeroGrad({ setToNone: true });
    expect(a.grad).to.equal(null);
    expectCode(() => opt.zeroGrad({ setToNone: true, now: 1 }), 'ERR_RNNKIT_ARG');
  });

  it('a second backward of a freed graph is ERR_RNNKIT_AUTOGRAD; retainGraph keeps it', async function () {
    const a = leaf([1, 2], [2]);
    const loss = await nn.sum(await nn.tanh(a));
    await loss.backward({ retainGraph: true });
    const once = values(a.grad);
    await loss.backward();
    values(a.grad).forEach((v, k) => expect(v).to.be.closeTo(2 * once[k], 1e-6));
    const err = await expectReject(loss.backward(), 'ERR_RNNKIT_AUTOGRAD');
    expect(err.message).to.match(/already been freed/);
    await expectReject(loss.backward({ retain: true }), 'ERR_RNNKIT_ARG');
  });

  it('a saved tensor modified in place by the library before the backward is ERR_RNNKIT_AUTOGRAD', async function () {
    const w = leaf([1, 2, 3], [3]);
    const x = leaf([3, 4, 5], [3]);
    const loss = await nn.sum(await nn.mul(w, x));
    const opt = new rnnkit.SGD([w], { lr: 0.1 });
    w.grad = tensor(Float32Array.of(1, 1, 1), [3]);
    const v = w.version;
    await opt.step();
    expect(w.version).to.equal(v + 1);
    const err = await expectReject(loss.backward(), 'ERR_RNNKIT_AUTOGRAD');
    expect(err.message).to.match(/modified in place/);
    expect(x.grad).to.equal(null);
  });

  it('every in-place write of the library bumps the storage version (views share it)', async function () {
    const out = tensor(new Float32Array(4), [2, 2]);
    let v = out.version;
    await rnnkit.matmul(tensor([1, 2, 3, 4], [2, 2]), tensor([1, 0, 0, 1], [2, 2]), { out });
    expect(out.version).to.equal(++v);
    rnnkit.matmulSync(tensor([1, 2, 3, 4], [2, 2]), tensor([1, 0, 0, 1], [2, 2]), { out, accumulate: true });
    expect(out.version).to.equal(++v);
    const lstm = new nn.LSTM({ inputSize: 2, hiddenSize: 2, seed: 1 });
    const view = lstm.weight_hh_l0;
    v = view.version;
    lstm.recurrent.setParam({ layer: 0, direction: 0, kind: 'b_ih' }, new Float32Array(8));
    expect(view.version).to.equal(++v);
    lstm.loadStateDict(lstm.stateDict());
    expect(view.version).to.be.above(v);
    const g = tensor([1, 2], [2]);
    const p = nn.parameter(tensor([0, 0], [2]));
    p.grad = g;
    v = g.version;
    new rnnkit.SGD([p]).zeroGrad();
    expect(g.version).to.equal(v + 1);
    rnnkit.clipGradNormSync([tensor([3, 4], [2])], 1);
  });

  it('backward needs a scalar or an explicit gradient of the root\'s shape, on a tensor that requires gradients', async function () {
    const a = leaf([1, 2, 3], [3]);
    const y = await nn.mul(a, 3);
    await expectReject(y.backward(), 'ERR_RNNKIT_SHAPE');
    await expectReject(y.backward({ gradient: tensor([1, 1], [2]) }), 'ERR_RNNKIT_SHAPE');
    await y.backward({ gradient: tensor([1, 2, 3], [3]) });
    expect(values(a.grad)).to.deep.equal([3, 6, 9]);
    await expectReject(tensor([1], []).backward(), 'ERR_RNNKIT_ARG');
    const s = leaf([2], []);
    await s.backward();
    expect(values(s.grad)).to.deep.equal([1]);
  });

  it('gradients handed to several inputs never alias (x + x, a + b, reshape and clone pass-throughs)', async function () {
    const a = leaf([1, 2], [2]);
    await (await nn.sum(await nn.add(a, a))).backward();
    expect(values(a.grad)).to.deep.equal([2, 2]);
    const p = leaf([1, 2], [2]);
    const q = leaf([3, 4], [2]);
    await (await nn.sum(await nn.add(p, q))).backward();
    expect(p.grad.sharesStorage(q.grad)).to.equal(false);
    await (await nn.sum(await nn.add(p, q))).backward();
    expect(values(p.grad)).to.deep.equal([2, 2]);
    expect(values(q.grad)).to.deep.equal([2, 2]);
    const r = leaf([1, 2, 3, 4], [2, 2]);
    const viaReshape = await nn.sum(await nn.mul(nn.reshape(r, [-1]), r.clone().reshape([4])));
    await viaReshape.backward();
    expect(values(r.grad)).to.deep.equal([2, 4, 6, 8]);
  });

  it(`a diamond graph sums the gradients of every path (${note})`, async function () {
    const x0 = rng.array(6, -1, 1);
    const x = leaf(x0, [2, 3]);
    const t = await nn.tanh(x);
    const loss = await nn.mean(await nn.add(await nn.mul(t, t), await nn.mul(t, 2)));
    await loss.backward();
    const want = Array.from(x0, (v) => ((2 * Math.tanh(v) + 2) * (1 - Math.tanh(v) ** 2)) / 6);
    values(x.grad).forEach((g, k) => expect(g, note).to.be.closeTo(want[k], 1e-6));
    const y = await nn.tanh(x);
    const ys = y.reshape([3, 2]);
    expect(ys.requiresGrad).to.equal(true);
    x.grad = null;
    await (await nn.sum(ys)).backward();
    values(x.grad).forEach((g, k) => expect(g, note).to.be.closeTo(1 - Math.tanh(x0[k]) ** 2, 1e-6));
  });

  it('backwardSync gives backward\'s gradients', function () {
    const a = leaf([0.5, -1], [2]);
    const loss = nn.sumSync(nn.mulSync(nn.sigmoidSync(a), a));
    loss.backwardSync();
    const s = (v) => 1 / (1 + Math.exp(-v));
    values(a.grad).forEach((g, k) => {
      const v = [0.5, -1][k];
      expect(g).to.be.closeTo(s(v) + v * s(v) * (1 - s(v)), 1e-6);
    });
  });
});

describe('autograd: hooks and queueCallback (the DistributedDataParallel interface)', function () {
  function model() {
    const m = new (class extends nn.Module {
      constructor() {
        super();
        this.embed = new nn.Embedding({ numEmbeddings: 6, embeddingDim: 4, seed: 1 });
        this.rnn = new nn.GRU({ inputSize: 4, hiddenSize: 3, seed: 2 });
        this.head = new nn.Linear({ inFeatures: 3, outFeatures: 6, seed: 3 });
      }

      async forward(ids) {
        const x = await this.embed.forward(ids, [4, 2]);
        const { y } = await this.rnn.forward(x);
        return this.head.forward(y);
      }
    })();
    return m;
  }
  const ids = Int32Array.of(0, 1, 2, 3, 4, 5, 0, 1);
  const targets = Int32Array.of(1, 2, 3, 4, 5, 0, 1, 2);

  it('post-accumulate hooks run once per parameter per backward, head first, after .grad is in', async function () {
    const m = model();
    const order = [];
    const removers = m.namedParameters().map(([name, p]) => p.registerPostAccumulateGradHook((param) => {
      expect(param).to.equal(p);
      expect(param.grad).to.not.equal(null);
      order.push(name);
    }));
    // The head is used twice: its hooks must still run once, after both contributions.
    const logits = await m.forward(ids);
    const again = await m.head.forward((await m.rnn.forward(await m.embed.forward(ids, [4, 2]))).y);
    const loss = await nn.add(await nn.crossEntropy(logits, targets), await nn.crossEntropy(again, targets));
    await loss.backward();
    const names = m.namedParameters().map(([n]) => n);
    expect(order.slice().sort()).to.deep.equal(names.slice().sort());
    expect(order.indexOf('head.weight')).to.be.below(order.indexOf('rnn.weight_ih_l0'));
    expect(order.indexOf('rnn.weight_ih_l0')).to.be.below(order.indexOf('embed.weight'));
    removers.forEach((r) => r());
    order.length = 0;
    await (await nn.crossEntropy(await m.forward(ids), targets)).backward();
    expect(order).to.deep.equal([]);
  });

  it('backward() waits for the hooks\' Promises and the queued callbacks, in order', async function () {
    const m = model();
    const events = [];
    let queued = false;
    for (const [name, p] of m.namedParameters()) {
      p.registerPostAccumulateGradHook(async () => {
        if (!queued) {
          queued = true;
          autograd.queueCallback(async () => {
            events.push('callback 1 start');
            await delay(10);
            autograd.queueCallback(() => events.push('callback 2'));
            events.push('callback 1 end');
          });
        }
        await delay(name === 'head.bias' ? 30 : 1);
        events.push(`hook ${name}`);
      });
    }
    await (await nn.crossEntropy(await m.forward(ids), targets)).backward();
    expect(events).to.include('hook head.bias');
    expect(events.length).to.equal(m.parameters().length + 3);
    expect(events.indexOf('callback 1 end')).to.be.below(events.indexOf('callback 2'));
    expectCode(() => autograd.queueCallback(() => {}), 'ERR_RNNKIT_ARG');
  });

  it('a callback queued from a hook\'s continuation, after the traversal, still runs before backward() resolves', async function () {
    const m = model();
    let ran = false;
    m.embed.weight.registerPostAccumulateGradHook(async () => {
      await delay(15);
      autograd.queueCallback(async () => {
        await delay(5);
        ran = true;
      });
    });
    await (await nn.crossEntropy(await m.forward(ids), targets)).backward();
    expect(ran).to.equal(true);
  });

  it('backward() rejects with the first error of a hook or a callback', async function () {
    const m = model();
    const boom = new Error('hook failed');
    const remove = m.head.weight.registerPostAccumulateGradHook(() => Promise.reject(boom));
    let caught = null;
    try {
      await (await nn.crossEntropy(await m.forward(ids), targets)).backward();
    } catch (err) {
      caught = err;
    }
    expect(caught).to.equal(boom);
    remove();
    const m2 = model();
    m2.head.bias.registerPostAccumulateGradHook(() => autograd.queueCallback(() => {
      throw new RangeError('callback failed');
    }));
    caught = null;
    try {
      await (await nn.crossEntropy(await m2.forward(ids), targets)).backward();
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(RangeError);
  });

  it('backwardSync refuses hooks that return Promises', function () {
    const a = leaf([1, 2], [2]);
    a.registerPostAccumulateGradHook(async () => {});
    const loss = nn.sumSync(nn.mulSync(a, a));
    expectCode(() => loss.backwardSync(), 'ERR_RNNKIT_ARG');
  });

  it('hooks register on leaves only and need a function', async function () {
    const a = leaf([1], [1]);
    const y = await nn.mul(a, 2);
    expectCode(() => y.registerPostAccumulateGradHook(() => {}), 'ERR_RNNKIT_ARG');
    expectCode(() => a.registerPostAccumulateGradHook(null), 'ERR_RNNKIT_ARG');
  });
});
