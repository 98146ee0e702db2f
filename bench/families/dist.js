'use strict';
// Bench family `dist`: all-reduce of 1, 10 and 100 MB between 2 ranks on this host (loopback),
// through rnnkit's process group (rk.distributed, Gloo underneath: a communication thread, the
// per-call header check, the N-API boundary) against the engine's own figure: Gloo called
// directly from C++ (native/dist/tools/gloo_allreduce_bench.cc) on the same sizes in the same
// run; MPICH through rnnkit as well when it is built. Each time is the median of samples taken
// between barriers. Bus bandwidth = 2(p-1)/p * bytes / time (what each rank sends and receives
// in a ring all-reduce), the β of docs/distributed.md's cost model. Then a training step of the
// demo's model on 2 ranks: compute only, all-reduce after the backward, and DDP (all-reduce
// overlapping the backward), for the share of the step spent waiting on communication.
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..', '..');
const rankScript = path.join(__dirname, '..', 'workers', 'dist-rank.js');
const trainScript = path.join(__dirname, '..', 'workers', 'dist-train.js');
const glooTool = path.join(root, 'native', 'dist', 'build', 'Release', 'gloo_allreduce_bench');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Runs `count` processes of `command args` (each with env(rank)); resolves with rank 0's stdout.
function runProcesses(count, command, args, env) {
  const runs = Array.from({ length: count }, (_, rank) => new Promise((resolve, reject) => {
    const child = spawn(command, typeof args === 'function' ? args(rank) : args, { env: { ...process.env, ...env(rank) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { err += c; });
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${path.basename(command)} rank ${rank} exited ${code}: ${err.trim()}`))));
  }));
  return Promise.all(runs).then((outs) => outs[0]);
}

async function rnnkitAllReduce(backend, reps, sizesMb) {
  const threads = { RNNKIT_NUM_THREADS: '1' };
  if (backend === 'mpi') {
    const out = await runProcesses(1, 'mpiexec', ['-n', '2', process.execPath, rankScript, String(reps), ...sizesMb.map(String)],
      () => ({ ...threads, BENCH_BACKEND: 'mpi' }));
    return JSON.parse(out.trim().split('\n').pop());
  }
  const port = await freePort();
  const out = await runProcesses(2, process.execPath, [rankScript, String(reps), ...sizesMb.map(String)], (rank) => ({
    ...threads, BENCH_BACKEND: 'gloo', RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port),
  }));
  return JSON.parse(out.trim().split('\n').pop());
}

// Step times of the demo's model on 2 ranks with gradients averaged `mode`-wise (dist-train.js).
async function trainingSteps(mode, bucketMB, steps) {
  const port = await freePort();
  const out = await runProcesses(2, process.execPath, [trainScript, mode, String(bucketMB), String(steps)], (rank) => ({
    RNNKIT_NUM_THREADS: '1', RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port),
  }));
  return JSON.parse(out.trim().split('\n').pop());
}

// The share of a training step spent waiting on communication, with and without overlap: the
// exposed communication measured inside each step, and each way's step time against the
// compute-only step (the same two ranks computing, no all-reduce).
async function overlapRows(harness, monitor, steps) {
  const compute = await trainingSteps('none', 25, steps);
  const base = harness.summarize(compute.ms);
  monitor.note(base);
  const rows = [{ way: 'compute only (no all-reduce)', buckets: '—', step: base, wait: null, waiting: null, vsCompute: null }];
  for (const bucketMB of [25, 0.25]) {
    for (const [mode, title] of [['after', 'all-reduce after the backward'], ['ddp', 'DDP: bucket all-reduce during the backward']]) {
      const r = await trainingSteps(mode, bucketMB, steps);
      const step = harness.summarize(r.ms);
      const wait = harness.summarize(r.waitMs);
      const share = harness.summarize(r.waitMs.map((w, i) => w / r.ms[i]));
      monitor.note(step);
      rows.push({ way: `${title} (bucketMB ${bucketMB})`, buckets: String(r.buckets), step, wait, waiting: share.median,
        vsCompute: (step.median - base.median) / step.median });
    }
  }
  return { rows, gradientBytes: compute.gradientBytes };
}

async function glooDirect(reps, sizesMb) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-gloo-bench-'));
  try {
    const out = await runProcesses(2, glooTool, (rank) => [String(rank), '2', dir, String(reps), ...sizesMb.map(String)], () => ({}));
    // `<bytes> <median> <min> <max> <samples...>` per size
    return { sizes: out.trim().split('\n').map((l) => {
      const [bytes, , , , ...ms] = l.split(' ').map(Number);
      return { bytes, ms };
    }) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// The machine is shared: a figure taken a minute after its peer can meet another load. So the
// engine's own figure and rnnkit's (and MPICH's) are taken in alternating rounds, reps/rounds
// samples each, and every summary is over all rounds: both sides see the same conditions.
async function alternating(rounds, reps, sizesMb, ways) {
  const per = Math.max(1, Math.ceil(reps / rounds));
  const merged = ways.map(() => null);
  for (let round = 0; round < rounds; round++) {
    for (let w = 0; w < ways.length; w++) {
      if (merged[w] === false) continue;
      const r = await ways[w](per, sizesMb);
      if (!r) {
        merged[w] = false;
        continue;
      }
      if (!merged[w]) merged[w] = { description: r.description, sizes: r.sizes.map((x) => ({ bytes: x.bytes, ms: [] })) };
      r.sizes.forEach((x, i) => merged[w].sizes[i].ms.push(...x.ms));
    }
  }
  return merged.map((m) => m || null);
}

// α (ms) from the smallest message, β (GB/s) from the largest, and t(p) for a few gradient sizes:
// the demo's model (about 1 MB of float32 gradients), 25 MB (a DDP bucket) and 100 MB.
function costModel(rows) {
  const p = 2;
  const alpha = rows[0].rnnkit.median / (2 * (p - 1));
  const big = rows[rows.length - 1];
  const transfer = Math.max(1e-6, big.rnnkit.median - 2 * (p - 1) * alpha);
  const beta = ((2 * (p - 1)) / p) * big.bytes / 1e9 / (transfer / 1e3);
  const ranks = [2, 8, 64, 512];
  const time = (n, bytes) => 2 * (n - 1) * alpha + ((2 * (n - 1)) / n) * (bytes / 1e9 / beta) * 1e3;
  const gradients = [[1e6, '1 MB (the demo model)'], [25e6, '25 MB (one DDP bucket)'], [100e6, '100 MB']];
  return {
    alpha, beta, ranks,
    rows: gradients.map(([bytes, gradient]) => ({ gradient, ...Object.fromEntries(ranks.map((n) => [`p${n}`, time(n, bytes)])) })),
  };
}

module.exports = {
  description: 'all-reduce 1, 10, 100 MB between 2 ranks on loopback: rnnkit (gloo) vs Gloo called directly from C++; ' +
    'share of a training step waiting on communication, with and without overlap',
  async run({ rnnkit, native, harness, quick }) {
    const status = rnnkit.distributed.backendStatus('gloo');
    if (!status.available || !fs.existsSync(glooTool)) {
      const why = status.reason || `${glooTool} is missing (npm run build:dist)`;
      process.stdout.write(`dist: skipped: ${why}\n`);
      return { skipped: why };
    }
    // The first size (4 bytes) measures latency: the α of the cost model.
    const sizesMb = quick ? [4e-6, 1, 10] : [4e-6, 1, 10, 100];
    const reps = quick ? 5 : 15;
    const monitor = harness.noiseMonitor(native, 2);
    const rounds = quick ? 1 : 3;
    const withMpi = rnnkit.distributed.backendStatus('mpi').available;
    const [engine, ours, mpi] = await alternating(rounds, reps, sizesMb, [
      (n, s) => glooDirect(n, s),
      (n, s) => rnnkitAllReduce('gloo', n, s),
      (n, s) => (withMpi ? rnnkitAllReduce('mpi', n, s).catch(() => null) : Promise.resolve(null)),
    ]);
    monitor.probePeak();
    const busGBs = (bytes, t) => (bytes / 1e9) / (t / 1e3); // 2(p-1)/p = 1 for p = 2
    const rows = sizesMb.map((mb, i) => {
      const label = mb < 1e-3 ? '4 B' : `${mb} MB`;
      const bytes = ours.sizes[i].bytes;
      const rk = harness.summarize(ours.sizes[i].ms);
      const direct = harness.summarize(engine.sizes[i].ms);
      const viaMpi = mpi ? harness.summarize(mpi.sizes[i].ms) : null;
      monitor.note(rk);
      return {
        size: label, bytes, rnnkit: rk, gloo: direct, vsEngine: harness.speedup(rk, direct),
        rnnkitBus: busGBs(bytes, rk.median), glooBus: busGBs(bytes, direct.median), mpi: viaMpi,
        mpiVsEngine: viaMpi ? harness.speedup(viaMpi, direct) : null,
      };
    });
    const overlap = await overlapRows(harness, monitor, quick ? 5 : 20);
    const noise = monitor.finish();
    harness.printTable(`all-reduce (sum, float32) between 2 ranks on 127.0.0.1, ms per call, median (min–max) of ${ours.sizes[0].ms.length} ` +
      `(${rounds} alternating round${rounds > 1 ? 's' : ''} of each way); ` +
      `"vs engine" = Gloo-direct time / rnnkit time (1.00x: no overhead); bus GB/s = 2(p-1)/p * bytes / time; ${ours.description}`, [
      { key: 'size', title: 'size' },
      { key: 'rnnkit', title: 'rnnkit (gloo)', fmt: harness.fmt.ms },
      { key: 'gloo', title: 'Gloo direct (C++)', fmt: harness.fmt.ms },
      { key: 'vsEngine', title: 'vs engine', fmt: harness.fmt.ratio },
      { key: 'rnnkitBus', title: 'rnnkit bus GB/s', fmt: (v) => v.toFixed(2) },
      { key: 'glooBus', title: 'Gloo bus GB/s', fmt: (v) => v.toFixed(2) },
      { key: 'mpi', title: mpi ? `rnnkit (${mpi.description})` : 'rnnkit (mpi): not built', fmt: harness.fmt.ms },
      ...(mpi ? [{ key: 'mpiVsEngine', title: 'mpi vs Gloo direct', fmt: harness.fmt.ratio }] : []),
    ], rows);
    const model = costModel(rows);
    harness.printTable(`ring all-reduce cost model t(p) = 2(p-1)α + 2(p-1)/p * S/β from the rnnkit figures above ` +
      `(α = ${(model.alpha * 1e3).toFixed(1)} µs from the 4-byte median, β = ${model.beta.toFixed(2)} GB/s from the largest size): ` +
      'ms per all-reduce of a gradient of S bytes on p ranks with this α and β (a cluster has its own: see docs/distributed.md)',
    [{ key: 'gradient', title: 'gradient S' }, ...model.ranks.map((p) => ({ key: `p${p}`, title: `p = ${p}`, fmt: harness.fmt.ms }))], model.rows);
    harness.printTable(`training step of the demo's model (Embedding 64 -> LSTM 2x128 -> Linear 81, ${(overlap.gradientBytes / 1e6).toFixed(2)} MB ` +
      'of gradients, batch 16 x 32 per rank) on 2 ranks, 1 thread each, ms per step, median (min–max); ' +
      '"waiting" = the median over steps of exposed communication / step, the exposed communication being the time from the ' +
      'backward\'s last gradient to the averaged gradients all in; "vs compute only" = (step - compute-only step) / step', [
      { key: 'way', title: 'gradients averaged by' }, { key: 'buckets', title: 'buckets' },
      { key: 'step', title: 'step ms', fmt: harness.fmt.ms }, { key: 'wait', title: 'exposed comm. ms', fmt: harness.fmt.ms },
      { key: 'waiting', title: 'waiting', fmt: harness.fmt.pct }, { key: 'vsCompute', title: 'vs compute only', fmt: harness.fmt.pct },
    ], overlap.rows);
    const brief = harness.briefRows(rows);
    harness.save('dist', { noise, rows: brief, description: ours.description, costModel: model, training: harness.briefRows(overlap.rows) }, {
      title: 'all-reduce between 2 ranks (loopback)', rows, label: 'size', unit: 'ms',
      series: [{ key: 'rnnkit', title: 'rnnkit' }, { key: 'gloo', title: 'Gloo direct' }, { key: 'mpi', title: 'rnnkit (mpi)' }],
    });
    return { noise, rows: brief, training: harness.briefRows(overlap.rows) };
  },
};
