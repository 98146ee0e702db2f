'use strict';
// Many async ops in flight at once, across several operator objects and shared input tensors,
// give exactly the results of running them one by one; disposing inputs mid-flight is safe.
const { tensor, matmul, matmulSync } = rnnkit;
const { Recurrent } = require('../dist/recurrent');
const { RMSNorm } = require('../dist/rmsnorm');
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
