'use strict';
// Gradients through the tape against float64 finite differences of float64 references (fresh
// random inputs, seed in every message): each differentiable function, RMSNorm, Dropout, the
// losses, and composed models Embedding -> LSTM / GRU / RNN (2 layers, bidirectional, sequence
// lengths, a learned initial state) -> Linear -> crossEntropy.
const { makeRandom } = require('./reference/random');
const { numericGradient, compareGradients } = require('./reference/gradcheck');
const nnRef = require('./reference/nn');
const trainRef = require('./reference/train');
const rmsRef = require('./reference/rmsnorm');
const recRef = require('./reference/recurrent');

const { nn, tensor } = rnnkit;

const TOLERANCE = 2e-3;

function f32Leaf(values, shape) {
  const t = tensor(Float32Array.from(values), shape);
  t.requiresGrad = true;
  return t;
}

const dot = (a, b) => a.reduce((s, v, k) => s + v * b[k], 0);

// `dropped` elements are ones whose gradient the op discards by definition (a padding row).
function expectGrad(analytic, f, at, what, dropped = 0) {
  const numeric = numericGradient(f, Float64Array.from(at));
  numeric.fill(0, 0, dropped);
  const worst = compareGradients(analytic, numeric, 1e-2);
  expect(worst.error, `${what}: element ${worst.index} analytic ${worst.analytic} vs numeric ${worst.numeric}`).to.be.below(TOLERANCE);
}

describe('nn gradients: functions against finite differences', function () {
  const rng = makeRandom();
  const note = `seed ${rng.seed}`;
  // Inputs away from relu's kink, where a finite difference is not a derivative.
  const away = (n) => rng.array(n, -2, 2).map((v) => (Math.abs(v) < 0.05 ? v + 0.1 : v));

  for (const kind of ['tanh', 'sigmoid', 'relu']) {
    it(`${kind} (${note})`, async function () {
      const x0 = away(24);
      const w = rng.array(24);
      const x = f32Leaf(x0, [2, 3, 4]);
      const y = await nn[kind](x);
      await y.backward({ gradient: tensor(Float32Array.from(w), [2, 3, 4]) });
      expectGrad(x.grad.data, (v) => dot(nnRef.activation(kind, v), w), Float32Array.from(x0), `${kind} dx (${note})`);
    });
  }

  const pairs = [
    { name: 'same shapes', a: [3, 4], b: [3, 4] },
    { name: 'a bias over rows', a: [2, 3, 4], b: [4] },
    { name: 'a trailing block', a: [2, 3, 4], b: [3, 4] },
    { name: 'a scalar tensor on the left', a: [], b: [2, 5] },
  ];
  for (const op of ['add', 'mul']) {
    for (const c of pairs) {
      it(`${op}: ${c.name} (${note})`, async function () {
        const size = (s) => s.reduce((p, d) => p * d, 1);
        const a0 = Float32Array.from(rng.array(size(c.a)));
        const b0 = Float32Array.from(rng.array(size(c.b)));
        const outShape = size(c.a) >= size(c.b) ? c.a : c.b;
        const w = rng.array(size(outShape));
        const a = f32Leaf(a0, c.a);
        const b = f32Leaf(b0, c.b);
        const y = await nn[op](a, b);
        expect(y.shape).to.deep.equal(outShape);
        await y.backward({ gradient: tensor(Float32Array.from(w), outShape) });
        const f = (av, bv) => {
          const [big, small] = av.length >= bv.length ? [av, bv] : [bv, av];
          return dot(nnRef.broadcast(op, big, small), w);
        };
        expectGrad(a.grad.data, (v) => f(v, b0), a0, `${op} da (${note})`);
        expectGrad(b.grad.data, (v) => f(a0, v), b0, `${op} db (${note})`);
      });
    }
    it(`${op} with a number (${note})`, async function () {
      const x0 = Float32Array.from(rng.array(6));
      const x = f32Leaf(x0, [6]);
      await (await nn.sum(await nn[op](2.5, x))).backward();
      const want = op === 'add' ? 1 : 2.5;
      Array.from(x.grad.data).forEach((g) => expect(g).to.equal(want));
    });
  }

  for (const [name, options] of [['sum', undefined], ['mean', undefined], ['sum', { axis: 1 }], ['mean', { axis: -1, keepDims: true }], ['mean', { axis: 0 }]]) {
    it(`${name} ${JSON.stringify(options ?? {})} (${note})`, async function () {
      const shape = [3, 4, 5];
      const x0 = Float32Array.from(rng.array(60));
      const x = f32Leaf(x0, shape);
      const y = await nn[name](x, options);
      const w = rng.array(y.size);
      await y.backward({ gradient: tensor(Float32Array.from(w), y.shape) });
      const axis = options && options.axis !== undefined ? (options.axis + 3) % 3 : null;
      const ref = (v) => {
        const [outer, len, inner] = axis === null ? [1, 60, 1] : [shape.slice(0, axis).reduce((p, d) => p * d, 1), shape[axis], shape.slice(axis + 1).reduce((p, d) => p * d, 1)];
        return dot(nnRef.sumAxis(v, null, outer, len, inner, name === 'mean' ? 1 / len : 1), w);
      };
      expectGrad(x.grad.data, ref, x0, `${name} dx (${note})`);
    });
  }

  it(`concat along an inner axis, and reshape (${note})`, async function () {
    const parts = [[2, 1, 3], [2, 4, 3], [2, 2, 3]].map((s) => {
      const v = Float32Array.from(rng.array(s.reduce((p, d) => p * d, 1)));
      return { v, t: f32Leaf(v, s), s };
    });
    const y = nn.reshape(await nn.concat(parts.map((p) => p.t), 1), [-1, 6]);
    expect(y.shape).to.deep.equal([7, 6]);
    const w = rng.array(42);
    await y.backward({ gradient: tensor(Float32Array.from(w), [7, 6]) });
    parts.forEach((p, k) => {
      const f = (v) => dot(nnRef.concat(parts.map((q, j) => (j === k ? v : q.v)), 2), w);
      expectGrad(p.t.grad.data, f, p.v, `concat part ${k} (${note})`);
    });
  });

  it(`narrow: the last layer's two directions of a hy-shaped tensor (${note})`, async function () {
    const x0 = Float32Array.from(rng.array(4 * 3 * 5));
    const x = f32Leaf(x0, [4, 3, 5]);
    const y = await nn.narrow(x, 0, 2, 2);
    expect(y.shape).to.deep.equal([2, 3, 5]);
    expect(Array.from(y.data)).to.deep.equal(Array.from(x0.subarray(30, 60)));
    const w = rng.array(30);
    await y.backward({ gradient: tensor(Float32Array.from(w), [2, 3, 5]) });
    expectGrad(x.grad.data, (v) => dot(v.subarray(30, 60), w), x0, `narrow dx (${note})`);
    const z = await nn.narrow(f32Leaf(x0, [4, 3, 5]), -1, 1, 3);
    expect(z.shape).to.deep.equal([4, 3, 3]);
    expect(z.data[0]).to.equal(x0[1]);
    await expectReject(nn.narrow(x, 0, 3, 2), 'ERR_RNNKIT_ARG');
  });

  it(`RMSNorm with a bias: x, weight and bias (${note})`, async function () {
    const rows = 6;
    const cols = 5;
    const norm = new nn.RMSNorm({ normalizedShape: cols, eps: 1e-3, bias: true });
    const g0 = Float32Array.from(rng.array(cols, 0.5, 1.5));
    const b0 = Float32Array.from(rng.array(cols));
    norm.weight.data.set(g0);
    norm.bias.data.set(b0);
    const x0 = Float32Array.from(rng.array(rows * cols));
    const x = f32Leaf(x0, [2, 3, cols]);
    const w = rng.array(rows * cols);
    const y = await norm.forward(x);
    await y.backward({ gradient: tensor(Float32Array.from(w), y.shape) });
    const f = (xv, gv, bv) => dot(rmsRef.forward(xv, gv, bv, rows, cols, 1e-3).y, w);
    expectGrad(x.grad.data, (v) => f(v, g0, b0), x0, `RMSNorm dx (${note})`);
    expectGrad(norm.weight.grad.data, (v) => f(x0, v, b0), g0, `RMSNorm dweight (${note})`);
    expectGrad(norm.bias.grad.data, (v) => f(x0, g0, v), b0, `RMSNorm dbias (${note})`);
  });

  it(`Dropout: the gradient is the mask of the forward (${note})`, async function () {
    const drop = new nn.Dropout({ p: 0.3, seed: rng.int(0, 1000) });
    const x0 = Float32Array.from(rng.array(400, 0.5, 1));
    const x = f32Leaf(x0, [400]);
    const y = await drop.forward(x);
    await (await nn.sum(y)).backward();
    Array.from(y.data).forEach((v, i) => expect(x.grad.data[i]).to.be.closeTo(v === 0 ? 0 : 1 / 0.7, 1e-6));
    drop.eval();
    expect(await drop.forward(x)).to.equal(x);
  });

  it(`mseLoss: input and target (${note})`, async function () {
    const a0 = Float32Array.from(rng.array(12));
    const b0 = Float32Array.from(rng.array(12));
    const a = f32Leaf(a0, [3, 4]);
    const b = f32Leaf(b0, [3, 4]);
    const loss = await nn.mseLoss(a, b);
    expect(loss.item()).to.be.closeTo(trainRef.mse(a0, b0).loss, 1e-6);
    await (await nn.mul(loss, 3)).backward();
    expectGrad(a.grad.data, (v) => 3 * trainRef.mse(v, b0).loss, a0, `mse dinput (${note})`);
    expectGrad(b.grad.data, (v) => 3 * trainRef.mse(a0, v).loss, b0, `mse dtarget (${note})`);
  });

  it(`crossEntropy with a mask and ignored targets, scaled by the incoming gradient (${note})`, async function () {
    const N = 9;
    const V = 5;
    const x0 = Float32Array.from(rng.array(N * V, -2, 2));
    const targets = Int32Array.from({ length: N }, () => rng.int(0, V - 1));
    targets[2] = -100;
    const mask = Float32Array.from({ length: N }, (_, r) => (r === 4 ? 0 : 1));
    const x = f32Leaf(x0, [N, V]);
    const loss = await nn.crossEntropy(x, targets, { mask });
    await (await nn.mul(loss, 0.5)).backward();
    const f = (v) => 0.5 * trainRef.crossEntropy(v, targets, V, { mask }).loss;
    expect(loss.item()).to.be.closeTo(2 * f(x0), 1e-5);
    expectGrad(x.grad.data, f, x0, `crossEntropy dlogits (${note})`);
  });
});

describe('nn gradients: composed models against finite differences', function () {
  const rng = makeRandom();
  const note = `seed ${rng.seed}`;
  const V = 7;
  const E = 5;
  const T = 4;
  const B = 3;

  const cases = [
    { name: 'Embedding -> LSTM (2 layers, bidirectional, lengths) -> Linear -> crossEntropy', make: (s) => new nn.LSTM({ inputSize: E, hiddenSize: 4, numLayers: 2, bidirectional: true, seed: s }), cfg: { mode: 'lstm', hiddenSize: 4, numLayers: 2, bidirectional: true } },
    { name: 'Embedding -> GRU (2 layers, bidirectional, lengths) -> Linear -> crossEntropy', make: (s) => new nn.GRU({ inputSize: E, hiddenSize: 4, numLayers: 2, bidirectional: true, seed: s }), cfg: { mode: 'gru', hiddenSize: 4, numLayers: 2, bidirectional: true } },
    { name: 'Embedding -> LSTM with projection and a learned initial state -> Linear', make: (s) => new nn.LSTM({ inputSize: E, hiddenSize: 4, projSize: 2, seed: s }), cfg: { mode: 'lstm', hiddenSize: 4, projSize: 2 }, state: true },
    { name: 'Embedding -> RNN relu (batchFirst, a learned initial state) -> Linear', make: (s) => new nn.RNN({ inputSize: E, hiddenSize: 4, nonlinearity: 'relu', batchFirst: true, seed: s }), cfg: { mode: 'rnn_relu', hiddenSize: 4, batchFirst: true }, state: true },
  ];

  for (const c of cases) {
    it(`${c.name} (${note})`, async function () {
      const embed = new nn.Embedding({ numEmbeddings: V, embeddingDim: E, paddingIdx: 0, seed: rng.int(0, 1e6) });
      const rnn = c.make(rng.int(0, 1e6));
      const D = c.cfg.bidirectional ? 2 : 1;
      const R = c.cfg.projSize || c.cfg.hiddenSize;
      const L = c.cfg.numLayers || 1;
      const head = new nn.Linear({ inFeatures: D * R, outFeatures: V, seed: rng.int(0, 1e6) });
      const bf = Boolean(c.cfg.batchFirst);
      const ids = Int32Array.from({ length: T * B }, () => rng.int(0, V - 1));
      const targets = Int32Array.from({ length: T * B }, () => rng.int(0, V - 1));
      const lengths = Int32Array.from([T, 2, 3]);
      // Row r of the logits is (t, b) = (r / B, r % B) sequence-major, (r % T, r / T) batch-first.
      const tb = (r) => (bf ? [r % T, Math.floor(r / T)] : [Math.floor(r / B), r % B]);
      const mask = Float32Array.from({ length: T * B }, (_, r) => (tb(r)[0] < lengths[tb(r)[1]] ? 1 : 0));
      const h0 = c.state ? Float32Array.from(rng.array(L * D * B * R, -0.5, 0.5)) : null;
      const hx = c.state ? f32Leaf(h0, [L * D, B, R]) : null;
      const x = await embed.forward(ids, bf ? [B, T] : [T, B]);
      const { y } = await rnn.forward(x, { hx, seqLengths: lengths });
      const loss = await nn.crossEntropy(await head.forward(y), targets, { mask });
      await loss.backward();

      const rnnParams = rnn.parameters();
      const packedGrad = Float64Array.from(rnnParams.flatMap((p) => Array.from(p.grad.data)));
      const cfg = { ...c.cfg, inputSize: E };
      const values = {
        embed: Float64Array.from(embed.weight.data),
        packed: Float64Array.from(rnnParams.flatMap((p) => Array.from(p.data))),
        W: Float64Array.from(head.weight.data),
        b: Float64Array.from(head.bias.data),
        h0: h0 ? Float64Array.from(h0) : null,
      };
      const f = (v) => {
        const xe = nnRef.embedding(v.embed, ids, E);
        const r = recRef.recurrentForward(cfg, { x: xe, hx: v.h0, weights: v.packed, T, B, seqLengths: lengths });
        const logits = trainRef.linear(r.y, v.W, v.b, T * B, D * R, V);
        return trainRef.crossEntropy(logits, targets, V, { mask }).loss;
      };
      expect(loss.item(), note).to.be.closeTo(f(values), 1e-5);
      const check = (name, analytic, dropped) => expectGrad(analytic, (p) => f({ ...values, [name]: p }), values[name], `${c.name} d${name} (${note})`, dropped);
      check('embed', embed.weight.grad.data, E);
      check('packed', packedGrad);
      check('W', head.weight.grad.data);
      check('b', head.bias.grad.data);
      if (hx) check('h0', hx.grad.data);
      Array.from(embed.weight.grad.data.subarray(0, E)).forEach((g) => expect(g, 'the padding row gets no gradient').to.equal(0));
    });
  }
});
