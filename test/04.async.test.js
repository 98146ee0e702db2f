'use strict';
// The async pattern: heavy work runs off the event loop, inputs stay pinned while it runs, and a
// Sync twin exists for scripts and worker threads.
const { tensor, zeros, matmul, matmulSync } = rnnkit;

function randomTensor(shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.random() - 0.5;
  return tensor(data, shape);
}

describe('async work and the event loop', () => {
  it('keeps the event loop running while a long native call is in flight', async () => {
    // Grow the problem until one synchronous call takes at least 150 ms on this machine.
    let n = 256;
    let syncMs = 0;
    for (;;) {
      const a = randomTensor([n, n]);
      const t0 = process.hrtime.bigint();
      matmulSync(a, a);
      syncMs = Number(process.hrtime.bigint() - t0) / 1e6;
      if (syncMs >= 150 || n >= 4096) break;
      n *= 2;
    }
    const a = randomTensor([n, n]);
    let ticks = 0;
    const timer = setInterval(() => { ticks += 1; }, 5);
    const t0 = process.hrtime.bigint();
    const promise = matmul(a, a);
    const callMs = Number(process.hrtime.bigint() - t0) / 1e6;
    await promise;
    const totalMs = Number(process.hrtime.bigint() - t0) / 1e6;
    clearInterval(timer);
    expect(callMs, 'the call itself returns at once').to.be.below(Math.max(20, totalMs / 4));
    expect(ticks, `timer ticks during a ${totalMs.toFixed(0)} ms call`).to.be.at.least(3);
  });

  it('async and sync forms give the same result', async () => {
    const a = randomTensor([33, 17]);
    const b = randomTensor([17, 9]);
    const c1 = await matmul(a, b);
    const c2 = matmulSync(a, b);
    expect(c1.data).to.deep.equal(c2.data);
  });

  it('pins inputs: dropping or disposing tensors while the op runs is safe', async () => {
    const results = [];
    for (let i = 0; i < 20; i++) {
      const a = randomTensor([64, 64]);
      const b = randomTensor([64, 64]);
      const want = matmulSync(a, b).data;
      const p = matmul(a, b);
      a.dispose();
      b.dispose();
      results.push(p.then((c) => expect(c.data).to.deep.equal(want)));
    }
    if (global.gc) global.gc();
    await Promise.all(results);
  });

  it('many ops in flight at once all complete with correct results', async () => {
    const a = randomTensor([40, 30]);
    const b = randomTensor([30, 20]);
    const want = matmulSync(a, b).data;
    const all = await Promise.all(Array.from({ length: 200 }, () => matmul(a, b)));
    for (const c of all) expect(c.data).to.deep.equal(want);
  });

  it('async forms reject with typed errors; Sync forms throw them', async () => {
    const a = zeros([2, 3]);
    await expectReject(matmul(a, a), 'ERR_RNNKIT_SHAPE');
    expectCode(() => matmulSync(a, a), 'ERR_RNNKIT_SHAPE');
  });
});
