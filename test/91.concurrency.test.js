'use strict';
// Many async ops in flight at once, across several operator objects and shared input tensors,
// give exactly the results of running them one by one; disposing inputs mid-flight is safe. The
// stress test holds 1,000 calls in flight together with dispose() of unrelated tensors and
// garbage collections, compares every result bit for bit, and fails on a hang (a watchdog).
const { tensor, matmul, matmulSync, Linear, crossEntropy, crossEntropySync, rmsNormBackward, rmsNormBackwardSync, StepNetBuilder } = rnnkit;
const { Recurrent } = rnnkit;
const { RMSNorm } = rnnkit;
const { makeRandom } = require('./reference/random');

describe('concurrency under load', () => {
  const rng = makeRandom();
  const T = 6;
  const B = 3;
  const I = 5;
  const H = 7;

  function rt(shape) {
    return tensor(Float32Array.from(rng.array(shape.reduce((a, b) => a * b, 1))), shape);
  }

  it(`hundreds of mixed async ops match sequential results (seed ${rng.seed})`, async () => {
    const lstm = new Recurrent({ mode: 'lstm', inputSize: I, hiddenSize: H, numLayers: 2, device: 'cpu', seed: 3 });
    const gru = new Recurrent({ mode: 'gru', inputSize: I, hiddenSize: H, bidirectional: true, device: 'cpu', seed: 4 });
    const norm = new RMSNorm({ size: I });
    const x = rt([T, B, I]);
    const a = rt([17, 13]);
    const b = rt([13, 11]);
    const jobs = [
      { run: () => lstm.forward(x), sync: () => lstm.forwardSync(x), pick: (r) => r.y.data },
      { run: () => gru.forward(x), sync: () => gru.forwardSync(x), pick: (r) => r.y.data },
      { run: () => norm.forward(x), sync: () => norm.forwardSync(x), pick: (r) => r.y.data },
      { run: () => matmul(a, b), sync: () => matmulSync(a, b), pick: (r) => r.data },
      {
        run: async () => lstm.backward((await lstm.forward(x, { training: true })).saved, { dy: rt0 }),
        sync: () => lstm.backwardSync(lstm.forwardSync(x, { training: true }).saved, { dy: rt0 }),
        pick: (r) => r.dweights.data,
      },
    ];
    const rt0 = rt([T, B, H]);
    const want = jobs.map((j) => j.pick(j.sync()));
    const inFlight = [];
    for (let i = 0; i < 300; i++) {
      const k = i % jobs.length;
      inFlight.push(jobs[k].run().then((r) => ({ k, got: jobs[k].pick(r) })));
    }
    const results = await Promise.all(inFlight);
    for (const { k, got } of results) expect(got, `job ${k}`).to.deep.equal(want[k]);
  });

  /** The bytes of a result, so that equality is bit for bit (NaN and -0 included). */
  const bits = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

  it(`1,000 async calls in flight with dispose() and GC give bitwise the sequential results (seed ${rng.seed})`, async function () {
    this.timeout(600000);
    const lstm = new Recurrent({ mode: 'lstm', inputSize: I, hiddenSize: H, numLayers: 2, dropout: 0.3, device: 'cpu', seed: 6 });
    const gru = new Recurrent({ mode: 'gru', inputSize: I, hiddenSize: H, bidirectional: true, device: 'cpu', seed: 7 });
    const rnn = new Recurrent({ mode: 'rnn_tanh', inputSize: I, hiddenSize: H, batchFirst: true, device: 'cpu', seed: 8 });
    const norm = new RMSNorm({ size: I });
    const linear = new Linear({ inFeatures: I, outFeatures: H, seed: 9 });
    const b = new StepNetBuilder();
    b.input('x', I);
    b.state('h', H);
    b.param('W', rt([H, I]));
    b.param('U', rt([H, H]));
    b.link('x_t', 'x');
    b.link('h_prev', 'h');
    b.fc('a', 'x_t', 'W');
    b.fc('r', 'h_prev', 'U');
    b.add('s', 'a', 'r');
    b.tanh('h_t', 's');
    b.link('h_t', 'h', { offset: 1 });
    b.alias('y', 'h', 1);
    const net = b.build();
    const x = rt([T, B, I]);
    const xb = rt([B, T, I]);
    const dy = rt([T, B, H]);
    const lens = Int32Array.from([T, 2, 0]);
    const a = rt([31, 17]);
    const w = rt([17, 23]);
    const logits = rt([T * B, H]);
    const targets = Int32Array.from({ length: T * B }, (_, k) => k % H);
    const rows = rt([T * B, I]);
    const { rrms } = norm.forwardSync(rows);
    const jobs = [
      { run: () => lstm.forward(x, { seqLengths: lens, training: true, dropoutSeed: 3 }), sync: () => lstm.forwardSync(x, { seqLengths: lens, training: true, dropoutSeed: 3 }), pick: (r) => r.y.data },
      { run: () => gru.forward(x), sync: () => gru.forwardSync(x), pick: (r) => r.hy.data },
      { run: () => rnn.forward(xb), sync: () => rnn.forwardSync(xb), pick: (r) => r.y.data },
      { run: async () => gru.backward((await gru.forward(x, { training: true })).saved, { dhy: rt0 }), sync: () => gru.backwardSync(gru.forwardSync(x, { training: true }).saved, { dhy: rt0 }), pick: (r) => r.dweights.data },
      { run: () => norm.forward(rows), sync: () => norm.forwardSync(rows), pick: (r) => r.y.data },
      { run: () => rmsNormBackward(rows, rrms, rows, norm.gamma), sync: () => rmsNormBackwardSync(rows, rrms, rows, norm.gamma), pick: (r) => r.dx.data },
      { run: () => matmul(a, w, {}), sync: () => matmulSync(a, w, {}), pick: (r) => r.data },
      { run: () => linear.forward(x), sync: () => linear.forwardSync(x), pick: (r) => r.data },
      { run: async () => (await crossEntropy(logits, targets)).dlogits, sync: () => crossEntropySync(logits, targets).dlogits, pick: (r) => r.data },
      { run: () => net.forward({ x }), sync: () => net.forwardSync({ x }), pick: (r) => r.outputs.y.data },
      { run: async () => lstm.backward((await lstm.forward(x, { training: true, dropoutSeed: 1 })).saved, { dy }), sync: () => lstm.backwardSync(lstm.forwardSync(x, { training: true, dropoutSeed: 1 }).saved, { dy }), pick: (r) => r.dx.data },
    ];
    const rt0 = rt([2, B, H]);
    const want = jobs.map((j) => bits(j.pick(j.sync())));
    const started = process.hrtime.bigint();
    const inFlight = [];
    for (let i = 0; i < 1000; i++) {
      const k = i % jobs.length;
      inFlight.push(jobs[k].run().then((r) => ({ i, k, got: bits(jobs[k].pick(r)) })));
      if (i % 10 === 0) {
        const unrelated = rt([8, 8]);
        matmulSync(unrelated, unrelated);
        unrelated.dispose();
      }
      if (i % 250 === 0 && global.gc) global.gc();
    }
    let timer;
    const watchdog = new Promise((resolve) => { timer = setTimeout(() => resolve(null), 300000); });
    const results = await Promise.race([Promise.all(inFlight), watchdog]);
    clearTimeout(timer);
    expect(results, 'calls still pending after 300 s: a hang').to.not.equal(null);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    for (const { i, k, got } of results) expect(got.equals(want[k]), `call ${i} (job ${k}) differs from its sequential result`).to.equal(true);
    // The same 1,000 calls one by one on the calling thread, timed in this run for a ratio (the
    // machine is shared: the ratio means more than either rate).
    const seqStarted = process.hrtime.bigint();
    for (let i = 0; i < 1000; i++) {
      const k = i % jobs.length;
      expect(bits(jobs[k].pick(jobs[k].sync())).equals(want[k]), `sequential call ${i} (job ${k})`).to.equal(true);
    }
    const seqSeconds = Number(process.hrtime.bigint() - seqStarted) / 1e9;
    console.log(`      1000 calls in flight: ${seconds.toFixed(2)} s, ${Math.round(1000 / seconds)} calls/s; ` +
      `one by one (sync): ${seqSeconds.toFixed(2)} s, ${Math.round(1000 / seqSeconds)} calls/s (in flight / one by one: ${(seqSeconds / seconds).toFixed(2)}x)`);
    if (global.gc) global.gc();
    expect(rnnkit.backendInfo().liveObjects.asyncJobs).to.equal(0);
  });

  it('disposing input tensors while ops that use them are in flight is safe', async () => {
    const lstm = new Recurrent({ mode: 'lstm', inputSize: I, hiddenSize: H, device: 'cpu', seed: 5 });
    const runs = [];
    for (let i = 0; i < 50; i++) {
      const x = rt([T, B, I]);
      const want = lstm.forwardSync(x).y.data;
      const p = lstm.forward(x);
      x.dispose();
      runs.push(p.then((r) => expect(r.y.data).to.deep.equal(want)));
    }
    if (global.gc) global.gc();
    await Promise.all(runs);
  });
});
