'use strict';
// worker_threads: each thread loads the addon (its own instance data and error class) and runs
// ops side by side with the main thread.
const { Worker } = require('worker_threads');
const path = require('path');

const workerSource = `
const { parentPort, workerData } = require('worker_threads');
const r = require(workerData.dist);
const a = r.tensor(Float32Array.from(workerData.a), [workerData.n, workerData.n]);
(async () => {
  let last;
  for (let i = 0; i < 20; i++) last = i % 2 ? r.matmulSync(a, a) : await r.matmul(a, a);
  let code = null;
  try { r.matmulSync(a, r.zeros([3, 3])); } catch (e) { code = e instanceof r.RnnkitError ? e.code : 'wrong class'; }
  parentPort.postMessage({ c: Array.from(last.data), code });
})();
`;

describe('worker_threads', () => {
  it('load the addon and run ops side by side with identical results', async () => {
    const n = 48;
    const a = new Float32Array(n * n).map(() => Math.random() - 0.5);
    const want = rnnkit.matmulSync(rnnkit.tensor(a, [n, n]), rnnkit.tensor(a, [n, n])).data;
    const dist = path.join(__dirname, '..', 'dist');
    const runs = [0, 1, 2].map(() => new Promise((resolve, reject) => {
      const w = new Worker(workerSource, { eval: true, workerData: { dist, a: Array.from(a), n } });
      w.once('message', resolve);
      w.once('error', reject);
    }));
    const main = Array.from({ length: 20 }, () => rnnkit.matmul(rnnkit.tensor(a, [n, n]), rnnkit.tensor(a, [n, n])));
    const results = await Promise.all(runs);
    for (const c of await Promise.all(main)) expect(c.data).to.deep.equal(want);
    for (const r of results) {
      expect(Float32Array.from(r.c)).to.deep.equal(want);
      expect(r.code).to.equal('ERR_RNNKIT_SHAPE');
    }
  });
});
