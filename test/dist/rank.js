'use strict';
// One rank of a distributed test (started by ranks.js). `node rank.js <scenario>`; prints
// progress lines and, last, one JSON line with what the test checks.
const crypto = require('crypto');
const rk = require('../..');

const scenario = process.argv[2];
const seed = Number(process.env.TEST_SEED);
const TIMEOUT = Number(process.env.TEST_TIMEOUT_MS || 5000);
// The result line; also a file when TEST_RESULT_DIR is set (mpiexec may split long lines).
function report(obj) {
  const line = JSON.stringify(obj);
  if (process.env.TEST_RESULT_DIR) {
    require('fs').writeFileSync(require('path').join(process.env.TEST_RESULT_DIR, `rank-${obj.rank}.json`), line);
  }
  process.stdout.write(line + '\n');
}
const hash = (a) => crypto.createHash('sha256').update(Buffer.from(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

// The same inputs on every rank for every rank: rank r's tensor of call `salt`, values in [-1, 1).
function input(r, n, salt) {
  const rng = new rk.Rng(seed * 7919 + r * 104729 + salt);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform() * 2 - 1;
  return a;
}

// A float64 reduction of every rank's input in one process, and the float32 error allowed.
function reference(op, inputs) {
  const n = inputs[0].length;
  const out = new Float64Array(n);
  const tol = new Float64Array(n);
  const p = inputs.length;
  for (let i = 0; i < n; i++) {
    let v = op === 'max' ? -Infinity : op === 'min' ? Infinity : 0;
    let mag = 0;
    for (const x of inputs) {
      if (op === 'max') v = Math.max(v, x[i]);
      else if (op === 'min') v = Math.min(v, x[i]);
      else v += x[i];
      mag += Math.abs(x[i]);
    }
    out[i] = op === 'avg' ? v / p : v;
    // float32 summation of p terms in any order, then one rounding for avg's division
    tol[i] = op === 'max' || op === 'min' ? 0 : (2 * p * 2 ** -24) * (op === 'avg' ? mag / p : mag) + 1e-30;
  }
  return { out, tol };
}

function worstError(got, ref) {
  let worst = 0;
  let nan = false;
  for (let i = 0; i < got.length; i++) {
    if (!Number.isFinite(got[i])) nan = true;
    const e = Math.abs(got[i] - ref.out[i]);
    worst = Math.max(worst, ref.tol[i] === 0 ? (e === 0 ? 0 : 1e300) : e / ref.tol[i]);
  }
  return nan ? 1e300 : worst;
}

// Up to INLINE values (on up to 16 ranks) travel inside the header frames and are reduced by each
// rank itself; more take the engine's own collective: both sides of that boundary are checked.
const INLINE = 1016;

async function collectives(pg) {
  const p = pg.worldSize;
  const sizes = [0, 1, 7, 1000, INLINE, INLINE + 1, 262147];
  const checks = [];
  let salt = 0;
  for (const op of ['sum', 'avg', 'max', 'min']) {
    for (const n of sizes) {
      salt++;
      const all = Array.from({ length: p }, (_, r) => input(r, n, salt));
      const t = rk.tensor(all[pg.rank].slice(), [n]);
      const back = await pg.allReduce(t, { op });
      checks.push({ what: `allReduce ${op} n=${n}`, error: worstError(t.data, reference(op, all)), hash: hash(t.data), same: back === t });
    }
  }
  for (const op of ['sum', 'max']) {
    salt++;
    const all = Array.from({ length: p }, (_, r) => input(r, 33, salt));
    const t = rk.tensor(all[pg.rank].slice(), [3, 11]);
    pg.allReduceSync(t, { op });
    checks.push({ what: `allReduceSync ${op}`, error: worstError(t.data, reference(op, all)), hash: hash(t.data), same: true });
  }
  for (let src = 0; src < p; src++) {
    for (const n of [1, 1000, INLINE, INLINE + 1, 262147]) {
      salt++;
      const t = rk.tensor(input(pg.rank, n, salt), [n]);
      await pg.broadcast(t, { src });
      const want = input(src, n, salt);
      checks.push({ what: `broadcast src=${src} n=${n}`, error: Buffer.compare(Buffer.from(t.data.buffer), Buffer.from(want.buffer)) === 0 ? 0 : 1e300, hash: hash(t.data), same: true });
    }
  }
  salt++;
  const bs = rk.tensor(input(pg.rank, 5, salt), [5]);
  pg.broadcastSync(bs, { src: p - 1 });
  checks.push({ what: 'broadcastSync', error: hash(bs.data) === hash(input(p - 1, 5, salt)) ? 0 : 1e300, hash: hash(bs.data), same: true });
  for (const [shape, sync] of [[[0], false], [[1], false], [[2, 3], false], [[INLINE], false], [[INLINE + 1], false], [[70001], false], [[4, 2], true]]) {
    salt++;
    const n = shape.reduce((a, b) => a * b, 1);
    const t = rk.tensor(input(pg.rank, n, salt), shape);
    const g = sync ? pg.allGatherSync(t) : await pg.allGather(t);
    const want = new Float32Array(p * n);
    for (let r = 0; r < p; r++) want.set(input(r, n, salt), r * n);
    const shapeOk = JSON.stringify(g.shape) === JSON.stringify([p, ...shape]);
    checks.push({ what: `allGather${sync ? 'Sync' : ''} [${shape}]`, error: shapeOk && hash(g.data) === hash(want) ? 0 : 1e300, hash: hash(g.data), same: true });
  }
  // Barrier: rank r arrives r * 150 ms late; nobody may leave before the last one arrived.
  await new Promise((r) => setTimeout(r, pg.rank * 150));
  const arrived = Date.now();
  await pg.barrier();
  const left = Date.now();
  pg.barrierSync();
  return { checks, arrived, left };
}

// A small character model: Embedding -> 2-layer LSTM -> Linear, with a parameter it never uses.
class TinyLM extends rk.nn.Module {
  constructor(V, seed) {
    super();
    this.embed = new rk.nn.Embedding({ numEmbeddings: V, embeddingDim: 6, seed });
    this.rnn = new rk.nn.LSTM({ inputSize: 6, hiddenSize: 8, numLayers: 2, seed: seed + 1 });
    this.head = new rk.nn.Linear({ inFeatures: 8, outFeatures: V, seed: seed + 2 });
    this.unused = new rk.nn.Linear({ inFeatures: 3, outFeatures: 2, seed: seed + 3 });
  }

  async forward(ids, shape) {
    const x = await this.embed.forward(ids, shape);
    const { y } = await this.rnn.forward(x);
    return this.head.forward(y);
  }
}

// Shard k of step s: ids and next-character targets, [T, b] each.
function shard(step, k, T, b, V) {
  const rng = new rk.Rng(seed * 31 + step * 1009 + k * 7);
  const ids = new Int32Array(T * b);
  const targets = new Int32Array(T * b);
  for (let i = 0; i < ids.length; i++) {
    ids[i] = rng.int(V);
    targets[i] = (ids[i] + 1 + (rng.uniform() < 0.2 ? 1 : 0)) % V;
  }
  return { ids, targets };
}

// Shards lo..hi-1 side by side along the batch: [T, (hi - lo) * b].
function batchOf(step, lo, hi, T, b, V) {
  const parts = [];
  for (let k = lo; k < hi; k++) parts.push(shard(step, k, T, b, V));
  const B = (hi - lo) * b;
  const ids = new Int32Array(T * B);
  const targets = new Int32Array(T * B);
  for (let t = 0; t < T; t++) {
    parts.forEach((p, j) => {
      ids.set(p.ids.subarray(t * b, (t + 1) * b), t * B + j * b);
      targets.set(p.targets.subarray(t * b, (t + 1) * b), t * B + j * b);
    });
  }
  return { ids, targets, B };
}

const snapshot = (model) => Object.fromEntries(model.namedParameters().map(([n, p]) => [n, Array.from(p.data)]));
const gradSnapshot = (model) => Object.fromEntries(model.namedParameters().map(([n, p]) => [n, p.grad ? Array.from(p.grad.data) : null]));

// DDP training: rank r trains on shard r; a world of one trains on TEST_SHARDS shards at once
// (the 1-rank reference of an n-rank run). Parameters start from a rank-dependent seed: the
// broadcast at construction must make them rank 0's.
async function ddpTrain() {
  const V = 11;
  const T = 5;
  const b = 3;
  const steps = Number(process.env.TEST_STEPS || 4);
  const pg = await rk.distributed.initProcessGroup({ timeoutMs: TIMEOUT });
  const shards = pg.worldSize === 1 ? Number(process.env.TEST_SHARDS || 1) : pg.worldSize;
  const model = new TinyLM(V, 100 + pg.rank);
  const ddp = new rk.nn.DistributedDataParallel(model, { processGroup: pg, bucketMB: Number(process.env.TEST_BUCKET_MB || 25) });
  const events = [];
  const allReduceTagged = pg.allReduceTagged.bind(pg);
  pg.allReduceTagged = (t, op, tag) => {
    events.push(`bucket ${tag}`);
    return allReduceTagged(t, op, tag);
  };
  // The embedding's gradient is the backward's last: buckets reduced before it overlapped.
  model.embed.weight.registerPostAccumulateGradHook(() => events.push('embedding gradient'));
  try {
    await ddp.ready;
  } catch (e) {
    report({ rank: pg.rank, error: { code: e.code, message: e.message } });
    return;
  }
  const initialHashes = Object.fromEntries(model.namedParameters().map(([n, p]) => [n, hash(p.data)]));
  const opt = process.env.TEST_OPT === 'adam' ? new rk.Adam(ddp.parameters(), { lr: 0.01 }) : new rk.SGD(ddp.parameters(), { lr: 0.5 });
  let firstGrads = null;
  const losses = [];
  for (let step = 0; step < steps; step++) {
    const lo = pg.worldSize === 1 ? 0 : pg.rank;
    const batch = batchOf(step, lo, lo + (pg.worldSize === 1 ? shards : 1), T, b, V);
    const logits = await ddp.forward(batch.ids, [T, batch.B]);
    const loss = await rk.nn.crossEntropy(logits, batch.targets);
    losses.push(loss.data[0]);
    await loss.backward();
    if (step === 0) firstGrads = gradSnapshot(model);
    await opt.step();
    opt.zeroGrad();
  }
  const params = snapshot(model);
  const hashes = Object.fromEntries(model.namedParameters().map(([n, p]) => [n, hash(p.data)]));
  const names = ddp.namedParameters().map(([n]) => n);
  await pg.destroy();
  report({ rank: pg.rank, worldSize: pg.worldSize, params, hashes, initialHashes, firstGrads, losses, events, names });
}

async function main() {
  const initMethod = process.env.TEST_INIT_METHOD || undefined;
  if (scenario === 'collectives') {
    const pg = await rk.distributed.initProcessGroup({ backend: process.env.TEST_BACKEND || 'auto', timeoutMs: TIMEOUT, initMethod });
    const out = await collectives(pg);
    await pg.destroy();
    report({ rank: pg.rank, worldSize: pg.worldSize, description: pg.description, ...out });
  } else if (scenario === 'ddp-train') {
    await ddpTrain();
  } else if (scenario === 'mismatch') {
    const pg = await rk.distributed.initProcessGroup({ timeoutMs: TIMEOUT });
    const errors = [];
    const attempt = async (f) => {
      try {
        await f();
        errors.push(null);
      } catch (e) {
        errors.push({ code: e.code, message: e.message });
      }
    };
    await attempt(() => pg.allReduce(rk.zeros([10 + pg.rank])));
    await attempt(() => pg.allReduce(rk.zeros([10]), { op: pg.rank === 0 ? 'sum' : 'max' }));
    await attempt(() => pg.broadcast(rk.zeros([4]), { src: pg.rank }));
    await attempt(() => (pg.rank === 0 ? pg.barrier() : pg.allGather(rk.zeros([3]))));
    // One rank's values fit in the header frame, the other's take the engine's collective.
    await attempt(() => pg.allReduce(rk.zeros([INLINE + pg.rank])));
    // The group is still usable: no tensor was changed.
    const t = rk.ones([6]);
    await pg.allReduce(t);
    await pg.destroy();
    report({ rank: pg.rank, errors, after: Array.from(t.data) });
  } else if (scenario === 'peer-dies' || scenario === 'peer-hangs') {
    const pg = await rk.distributed.initProcessGroup({ timeoutMs: TIMEOUT });
    // TEST_COUNT: the all-reduced values (a few: inside the header frames; many: the engine's collective).
    const t = rk.ones([Number(process.env.TEST_COUNT || 100000)]);
    for (let step = 0; step < 5; step++) await pg.allReduce(t);
    process.stdout.write(`ready ${pg.rank}\n`);
    if (pg.rank === 1) {
      if (scenario === 'peer-dies') process.exit(9);
      // Hung: alive, connected, never taking part again.
      setInterval(() => {}, 1000);
      return;
    }
    const start = Date.now();
    const failure = {};
    try {
      for (;;) await pg.allReduce(t);
    } catch (e) {
      Object.assign(failure, { code: e.code, message: e.message, elapsed: Date.now() - start });
    }
    // Later calls fail at once with the first error, and destroy() still returns.
    let again = null;
    const t0 = Date.now();
    try {
      await pg.barrier();
    } catch (e) {
      again = { code: e.code, message: e.message, elapsed: Date.now() - t0 };
    }
    await pg.destroy();
    report({ rank: pg.rank, failure, again });
  } else if (scenario === 'join') {
    // For rendezvous failures: initProcessGroup's error, if any.
    const started = Date.now();
    try {
      const pg = await rk.distributed.initProcessGroup({ timeoutMs: TIMEOUT, initMethod });
      await pg.barrier();
      await pg.destroy();
      report({ ok: true, rank: pg.rank });
    } catch (e) {
      report({ ok: false, code: e.code, message: e.message, elapsed: Date.now() - started });
    }
  } else if (scenario === 'loop') {
    // For the launcher: --steps all-reduces, printing each step with the pid. --ignore-sigterm
    // keeps running after SIGTERM (so a collective reports the dead peer); --exit-on-sigterm N
    // exits with N when SIGTERM comes.
    const arg = (name, fallback) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : fallback);
    if (process.argv.includes('--ignore-sigterm')) process.on('SIGTERM', () => process.stdout.write('SIGTERM ignored\n'));
    if (process.argv.includes('--exit-on-sigterm')) {
      process.on('SIGTERM', () => {
        process.stdout.write('got SIGTERM\n');
        process.exit(Number(arg('--exit-on-sigterm')));
      });
    }
    const steps = Number(arg('--steps', 20));
    const pg = await rk.distributed.initProcessGroup({ timeoutMs: TIMEOUT });
    const t = rk.ones([1000]);
    const started = Date.now();
    try {
      for (let step = 0; step < steps; step++) {
        await pg.allReduce(t, { op: 'avg' });
        process.stdout.write(`step ${step} pid ${process.pid}\n`);
        await new Promise((r) => setTimeout(r, 10));
      }
    } catch (e) {
      process.stdout.write(`failed ${e.code} after ${Date.now() - started} ms: ${e.message}\n`);
      process.exit(1);
    }
    await pg.destroy();
    report({ rank: pg.rank, env: { RANK: process.env.RANK, WORLD_SIZE: process.env.WORLD_SIZE, LOCAL_RANK: process.env.LOCAL_RANK, LOCAL_WORLD_SIZE: process.env.LOCAL_WORLD_SIZE, threads: process.env.RNNKIT_NUM_THREADS }, args: process.argv.slice(3) });
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
}

main().catch((e) => {
  process.stderr.write(`${e.code || ''} ${e.stack}\n`);
  process.exit(1);
});
