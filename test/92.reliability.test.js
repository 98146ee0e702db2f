'use strict';
// Non-finite values and native memory over time: NaN/Inf propagate through the ops unless the
// opt-in checkFinite mode is on, and creating and dropping many tensors and operator objects
// returns memory to where it started.
const { tensor, zeros, matmulSync, setCheckFinite, RMSNorm } = rnnkit;
const { Recurrent } = require('../dist/recurrent');

describe('non-finite values', () => {
  afterEach(() => setCheckFinite(false));

  it('propagate through matmul, RMSNorm and Recurrent without a crash or a hang', () => {
    const a = tensor([1, NaN, 2, 3], [2, 2]);
    const c = matmulSync(a, tensor([1, 0, 0, 1], [2, 2]));
    expect(Number.isNaN(c.data[1])).to.equal(true);
    expect(c.data[2]).to.equal(2);
    const norm = new RMSNorm({ size: 3 });
    const y = norm.forwardSync(tensor([1, Infinity, 2, 1, 2, 3], [2, 3])).y.data;
    expect(Number.isNaN(y[1])).to.equal(true); // inf·rrms(=0) is NaN; the row's finite values become 0
    expect(Array.from(y.slice(0, 3)).some(Number.isFinite)).to.equal(true);
    expect(Array.from(y.slice(3)).every(Number.isFinite)).to.equal(true);
    for (const mode of ['lstm', 'gru', 'rnn_tanh', 'rnn_relu']) {
      const op = new Recurrent({ mode, inputSize: 2, hiddenSize: 3, device: 'cpu', seed: 1, cellClip: mode === 'lstm' ? 0.5 : 0 });
      const x = zeros([4, 2, 2]);
      x.data[2] = NaN; // step 0, batch element 1
      const y = op.forwardSync(x).y.data;
      expect(Array.from(y.slice(3, 6)).every(Number.isNaN), `${mode}: NaN propagates`).to.equal(true);
      expect(Array.from(y.slice(0, 3)).every(Number.isFinite), `${mode}: other sequences untouched`).to.equal(true);
    }
  });

  it('checkFinite raises ERR_RNNKIT_NONFINITE naming the tensor', async () => {
    setCheckFinite(true);
    const good = tensor([1, 2, 3, 4], [2, 2]);
    const bad = tensor([1, 2, -Infinity, 4], [2, 2]);
    const err = expectCode(() => matmulSync(good, bad), 'ERR_RNNKIT_NONFINITE');
    expect(err.message).to.match(/^b holds a non-finite value \(-Infinity\) at element 2/);
    await expectReject(rnnkit.matmul(bad, good), 'ERR_RNNKIT_NONFINITE');
    const norm = new RMSNorm({ size: 2 });
    expect(expectCode(() => norm.forwardSync(tensor([NaN, 1], [1, 2])), 'ERR_RNNKIT_NONFINITE').message).to.match(/^x /);
    expect(matmulSync(good, good).data[0]).to.equal(7);
    const big = new Float32Array(300000);
    big[299999] = NaN;
    expect(expectCode(() => matmulSync(tensor(big, [1, 300000]), tensor(new Float32Array(300000), [300000, 1])),
      'ERR_RNNKIT_NONFINITE').message).to.contain('element 299999');
    expectCode(() => setCheckFinite('yes'), 'ERR_RNNKIT_ARG');
  });
});

describe('memory over time', function () {
  this.timeout(300000);

  function settle() {
    for (let i = 0; i < 4; i++) global.gc();
    return process.memoryUsage();
  }

  it('creating and dropping many tensors and operator objects returns memory', async function () {
    if (!global.gc) this.skip();
    const round = async () => {
      for (let i = 0; i < 40; i++) {
        const lstm = new Recurrent({ mode: i % 2 ? 'gru' : 'lstm', inputSize: 16, hiddenSize: 32, numLayers: 2, device: 'cpu', seed: i });
        const x = zeros([8, 4, 16]);
        const f = await lstm.forward(x, { training: true });
        await lstm.backward(f.saved, { dy: f.y });
        const norm = new RMSNorm({ size: 16 });
        norm.forwardSync(x);
        for (let j = 0; j < 50; j++) tensor(new Float32Array(4096), [64, 64]).dispose();
        matmulSync(zeros([64, 64]), zeros([64, 64]));
        if (i % 3 === 0) lstm.dispose();
      }
    };
    await round();
    const before = settle();
    for (let r = 0; r < 4; r++) await round();
    const after = settle();
    const abGrowth = after.arrayBuffers - before.arrayBuffers;
    const rssGrowth = after.rss - before.rss;
    expect(abGrowth, `ArrayBuffer memory grew by ${abGrowth} bytes`).to.be.below(2 << 20);
    // AddressSanitizer keeps freed memory in quarantine, so RSS says nothing under test:asan
    // (LeakSanitizer checks native memory there instead).
    if (!/asan/.test(process.env.LD_PRELOAD || '')) {
      expect(rssGrowth, `RSS grew by ${rssGrowth} bytes`).to.be.below(48 << 20);
    }
  });
});

describe('checkFinite in the recurrent op', () => {
  afterEach(() => setCheckFinite(false));

  it('names the non-finite input of forward and backward', () => {
    const lstm = new Recurrent({ mode: 'lstm', inputSize: 2, hiddenSize: 3, device: 'cpu', seed: 2 });
    const x = zeros([3, 1, 2]);
    const f = lstm.forwardSync(x, { training: true });
    setCheckFinite(true);
    const hx = zeros([1, 1, 3]);
    hx.data[1] = NaN;
    expect(expectCode(() => lstm.forwardSync(x, { hx }), 'ERR_RNNKIT_NONFINITE').message).to.match(/^hx /);
    const dy = zeros([3, 1, 3]);
    dy.data[4] = Infinity;
    expect(expectCode(() => lstm.backwardSync(f.saved, { dy }), 'ERR_RNNKIT_NONFINITE').message).to.match(/^dy /);
    expect(lstm.forwardSync(x).y.size).to.equal(9);
  });
});
