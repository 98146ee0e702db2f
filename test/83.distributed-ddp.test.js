'use strict';
// nn.DistributedDataParallel on loopback ranks (gloo), and the DistributedSampler: rank 0's
// parameters reach every rank at construction; after every backward each .grad is the average
// over the ranks, so every rank ends a short training run with bit-identical parameters; an
// n-rank run equals a 1-rank run on the n shards side by side within float32 summation error;
// buckets are all-reduced while the backward is still running; models that differ across ranks
// are refused.
const { runRanks, expectClean, skipWithout, newSeed } = require('./dist/ranks');

const { distributed, nn, tensor } = rnnkit;

// max |a - b| / max |ref| over each parameter, the worst of them.
function worstRelative(ref, other) {
  let worst = 0;
  for (const [name, r] of Object.entries(ref)) {
    if (r === null) continue;
    const o = other[name];
    const scale = Math.max(...r.map(Math.abs)) || 1;
    for (let i = 0; i < r.length; i++) worst = Math.max(worst, Math.abs(r[i] - o[i]) / scale);
  }
  return worst;
}

describe('nn.DistributedDataParallel (gloo, loopback)', function () {
  before(function () {
    skipWithout(this, 'gloo');
  });

  for (const [p, opt] of [[2, 'sgd'], [3, 'adam']]) {
    it(`${p} ranks (${opt}): rank 0's parameters everywhere, bit-identical after training, equal to one rank on the ${p} shards side by side`, async function () {
      const seed = newSeed();
      const runs = expectClean(await runRanks('ddp-train', p, { seed, env: () => ({ TEST_OPT: opt, TEST_BUCKET_MB: '0.002' }) }));
      for (const r of runs) {
        expect(r.error, JSON.stringify(r.error)).to.equal(undefined);
        expect(r.initialHashes, `rank ${r.rank} starts from rank 0's parameters`).to.deep.equal(runs[0].initialHashes);
        expect(r.hashes, `rank ${r.rank} ends bit-identical to rank 0`).to.deep.equal(runs[0].hashes);
      }
      expect(runs[0].names[0]).to.equal('module.embed.weight');
      expect(new Set(runs.map((r) => r.losses[0])).size, 'the ranks trained on different data').to.equal(p);
      const [single] = expectClean(await runRanks('ddp-train', 1, { seed, env: () => ({ TEST_OPT: opt, TEST_SHARDS: String(p) }) }));
      // Only the order of float32 sums differs (means over p shards, averaged, vs one mean).
      expect(worstRelative(single.firstGrads, runs[0].firstGrads), `first gradients (seed ${seed})`).to.be.below(1e-5);
      expect(worstRelative(single.params, runs[0].params), `parameters after ${single.losses.length} steps (seed ${seed})`).to.be.below(opt === 'adam' ? 1e-4 : 1e-5);
      expect(single.initialHashes).to.deep.equal(runs[0].initialHashes);
    });
  }

  it('starts a bucket\'s all-reduce while the backward is still running (overlap)', async function () {
    const runs = expectClean(await runRanks('ddp-train', 2, { env: () => ({ TEST_BUCKET_MB: '0.002', TEST_STEPS: '2' }) }));
    for (const r of runs) {
      const step = r.events.slice(0, r.events.indexOf('embedding gradient'));
      expect(step.length, `buckets started before the last gradient: ${r.events.join(', ')}`).to.be.at.least(3);
      expect(r.events.filter((e) => e.startsWith('bucket')).length % 2).to.equal(0);
    }
    expect(runs[0].events).to.deep.equal(runs[1].events);
  });

  it('ranks whose models or buckets differ are refused with ERR_RNNKIT_DIST, not mixed', async function () {
    const runs = await runRanks('ddp-train', 2, { env: (r) => ({ TEST_BUCKET_MB: r === 0 ? '0.002' : '25' }) });
    for (const r of runs) {
      expect(r.result.error.code, r.stderr).to.equal('ERR_RNNKIT_DIST');
      expect(r.result.error.message).to.match(/ranks disagree on a collective/).and.match(/broadcast\(src 0\) of \d+ values \(tag \d+\)/);
    }
  });
});

describe('nn.DistributedDataParallel in this process (a world of one)', function () {
  let pg = null;
  before(async function () {
    skipWithout(this, 'gloo');
    pg = await distributed.initProcessGroup({ backend: 'gloo', rank: 0, worldSize: 1, timeoutMs: 5000 });
  });
  after(async () => {
    if (pg) await pg.destroy();
  });

  it('refuses bad arguments with ERR_RNNKIT_ARG', function () {
    const model = new nn.Linear({ inFeatures: 2, outFeatures: 2, seed: 1 });
    expectCode(() => new nn.DistributedDataParallel(model), 'ERR_RNNKIT_ARG');
    expectCode(() => new nn.DistributedDataParallel(model, {}), 'ERR_RNNKIT_ARG');
    expectCode(() => new nn.DistributedDataParallel({}, { processGroup: pg }), 'ERR_RNNKIT_ARG');
    for (const bucketMB of [0, -1, NaN, '25', 1e9]) expectCode(() => new nn.DistributedDataParallel(model, { processGroup: pg, bucketMB }), 'ERR_RNNKIT_ARG');
    const err = expectCode(() => new nn.DistributedDataParallel(model, { processGroup: pg, bucketSize: 25 }), 'ERR_RNNKIT_ARG');
    expect(err.message).to.match(/unknown key bucketSize in DistributedDataParallel options \(allowed: processGroup, bucketMB\)/);
  });

  it('forwardSync waits for ready; backwardSync cannot wait for the all-reduces (ERR_RNNKIT_ARG); backward works', async function () {
    const model = new nn.Linear({ inFeatures: 3, outFeatures: 2, seed: 2 });
    const ddp = new nn.DistributedDataParallel(model, { processGroup: pg });
    expectCode(() => ddp.forwardSync(tensor([1, 2, 3], [1, 3])), 'ERR_RNNKIT_ARG');
    await ddp.ready;
    const loss = nn.sumSync(ddp.forwardSync(tensor([1, 2, 3], [1, 3])));
    expectCode(() => loss.backwardSync(), 'ERR_RNNKIT_ARG');
    model.zeroGrad({ setToNone: true });
    const again = await nn.sum(await ddp.forward(tensor([1, 2, 3], [1, 3])));
    await again.backward();
    expect(Array.from(model.weight.grad.data)).to.deep.equal([1, 2, 3, 1, 2, 3]);
    expect(Array.from(model.bias.grad.data)).to.deep.equal([1, 1]);
    ddp.detachHooks();
  });
});

describe('DistributedSampler', function () {
  const { DistributedSampler } = distributed;
  const shares = (size, R, opts = {}) => Array.from({ length: R }, (_, rank) => Array.from(new DistributedSampler(size, { numReplicas: R, rank, ...opts })));

  it('splits a data set into disjoint equal shares that cover it, padding by wrapping around', function () {
    for (const [size, R] of [[10, 2], [10, 3], [7, 4], [3, 5], [1, 1]]) {
      const s = shares(size, R);
      const per = Math.ceil(size / R);
      for (const share of s) expect(share.length).to.equal(per);
      const all = s.flat();
      expect(new Set(all).size, `${size} over ${R}`).to.equal(size);
      expect(all.length - size).to.equal(per * R - size);
      for (const i of all) expect(i).to.be.within(0, size - 1);
    }
  });

  it('dropLast cuts to a multiple of the ranks: nothing twice', function () {
    const s = shares(10, 3, { dropLast: true });
    for (const share of s) expect(share.length).to.equal(3);
    expect(new Set(s.flat()).size).to.equal(9);
  });

  it('shuffles the same way on every rank, differently per epoch and seed; in order without shuffle', function () {
    const at = (epoch, seed, rank) => {
      const s = new DistributedSampler(50, { numReplicas: 2, rank, seed });
      s.setEpoch(epoch);
      return Array.from(s.indices());
    };
    const e0 = [...at(0, 3, 0), ...at(0, 3, 1)];
    expect(new Set(e0).size).to.equal(50);
    expect(at(0, 3, 0)).to.deep.equal(at(0, 3, 0));
    expect(at(1, 3, 0)).to.not.deep.equal(at(0, 3, 0));
    expect(at(0, 4, 0)).to.not.deep.equal(at(0, 3, 0));
    expect(shares(6, 2, { shuffle: false })).to.deep.equal([[0, 2, 4], [1, 3, 5]]);
  });

  it('takes its rank from a process group and refuses bad options', async function () {
    skipWithout(this, 'gloo');
    const pg = await distributed.initProcessGroup({ backend: 'gloo', rank: 0, worldSize: 1, timeoutMs: 5000 });
    try {
      const s = new DistributedSampler(4, { processGroup: pg, shuffle: false });
      expect([s.numReplicas, s.rank, s.numSamples]).to.deep.equal([1, 0, 4]);
      expectCode(() => new DistributedSampler(4, { processGroup: pg, rank: 0 }), 'ERR_RNNKIT_ARG');
    } finally {
      await pg.destroy();
    }
    expectCode(() => new DistributedSampler(4), 'ERR_RNNKIT_ARG');
    expectCode(() => new DistributedSampler(-1, { numReplicas: 1, rank: 0 }), 'ERR_RNNKIT_ARG');
    expectCode(() => new DistributedSampler(4, { numReplicas: 2, rank: 2 }), 'ERR_RNNKIT_ARG');
    expectCode(() => new DistributedSampler(4, { numReplicas: 2, rank: 0, shufle: true }), 'ERR_RNNKIT_ARG');
    expectCode(() => new DistributedSampler(4, { numReplicas: 2, rank: 0 }).setEpoch(-1), 'ERR_RNNKIT_ARG');
  });
});
