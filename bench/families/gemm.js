'use strict';
// GEMM: rnnkit's sgemm against OpenBLAS (with and without OPENBLAS_CORETYPE) and oneDNN's
// dnnl_sgemm, next to the FMA peak measured in the same run. Every product is timed inside C++
// (native benchSgemm / benchPeerSgemm) so JavaScript overhead never enters a figure. Peers are
// loaded with dlopen in child processes (bench/peers/gemm-peer.js); a missing one is reported with
// the line that installs it. Shapes: 2048³ (2 and 1 threads); the recurrent step h[M, H]·W_hhᵀ
// (N = 4H, K = H, W_hh packed once for ours); the input projection x[T·B, H]·W_ihᵀ of S1–S5.
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const INSTALL = 'missing: apt-get install libopenblas-dev libdnnl-dev';
// This CPU has AVX2 but not AVX-512; Debian's OpenBLAS 0.3.21 does not recognise it on its own.
const CORETYPE = 'Haswell';

const PROJECTIONS = [
  { name: 'S1', T: 64, B: 32, H: 256 },
  { name: 'S2', T: 64, B: 64, H: 512 },
  { name: 'S3', T: 128, B: 1, H: 512 },
  { name: 'S4', T: 64, B: 32, H: 1024 },
  { name: 'S5', T: 32, B: 16, H: 512 },
];

function cases(threads) {
  const list = [];
  for (const t of threads === 1 ? [1] : [threads, 1]) {
    list.push({ name: `2048³ NN ${t}T`, M: 2048, N: 2048, K: 2048, transA: false, transB: false, packed: false, threads: t });
  }
  for (const H of [256, 512, 1024]) {
    for (const M of [1, 8, 32, 64]) {
      list.push({ name: `step M=${M} H=${H}`, M, N: 4 * H, K: H, transA: false, transB: true, packed: true, threads });
    }
  }
  for (const s of PROJECTIONS) {
    list.push({ name: `proj ${s.name} ${s.T * s.B}x${4 * s.H}x${s.H}`, M: s.T * s.B, N: 4 * s.H, K: s.H, transA: false, transB: true, packed: false, threads });
  }
  return list;
}

function runPeer(peer, env, list, timing) {
  const job = JSON.stringify({ peer, cases: list, ...timing });
  const child = spawnSync(process.execPath, [path.join(__dirname, '..', 'peers', 'gemm-peer.js'), job], {
    env, encoding: 'utf8', maxBuffer: 16 << 20,
  });
  if (child.status !== 0) return { error: (child.stderr || '').trim().split('\n').pop() || `exit ${child.status}` };
  const out = JSON.parse(child.stdout.trim().split('\n').pop());
  if (out.missing) return { missing: true };
  const byName = new Map(out.results.map((r) => [r.name, r]));
  return { info: out.info, byName };
}

module.exports = {
  description: 'sgemm vs OpenBLAS (default core / OPENBLAS_CORETYPE) vs oneDNN, GFLOP/s and % of FMA peak',
  async run({ rnnkit, native, harness, quick }) {
    const threads = Math.min(2, os.cpus().length);
    const timing = quick ? { repeats: 3, minMs: 10 } : { repeats: 7, minMs: 40 };
    const list = cases(threads);
    const limits = {};
    for (const t of new Set(list.map((c) => c.threads))) limits[t] = harness.limits(native, t);

    const baseEnv = { ...process.env };
    delete baseEnv.OPENBLAS_CORETYPE;
    const peers = [
      { key: 'openblas', title: 'OpenBLAS', peer: 'openblas', env: baseEnv },
      { key: 'openblasCore', title: `OpenBLAS ${CORETYPE}`, peer: 'openblas', env: { ...baseEnv, OPENBLAS_CORETYPE: CORETYPE } },
      { key: 'dnnl', title: 'oneDNN', peer: 'dnnl', env: baseEnv },
    ];
    const peerInfo = {};
    // Row by row: ours, the FMA peak and every peer back to back (one child process per peer and
    // row). On a shared machine the load drifts; a ratio means something only between figures
    // taken close together.
    const rows = [];
    for (const c of list) {
      rnnkit.setNumThreads(c.threads);
      const t = native.benchSgemm(c.M, c.N, c.K, c.transA, c.transB, c.packed, timing.repeats, timing.minMs);
      const fmaPeakGflops = native.fmaPeak(c.threads);
      rnnkit.setNumThreads(0);
      const flops = 2 * c.M * c.N * c.K;
      const ours = flops / t.median / 1e9;
      const row = { shape: c.name, threads: c.threads, flops, oursMs: t.median * 1e3, ours,
        oursSpread: (t.max - t.min) / t.median, fmaPeakGflops, peak: ours / fmaPeakGflops };
      for (const p of peers) {
        if (peerInfo[p.key] && !peerInfo[p.key].ok) continue;
        const r = runPeer(p.peer, p.env, [c], timing);
        if (r.missing || r.error) {
          peerInfo[p.key] = { ok: false, text: r.missing ? INSTALL : `failed: ${r.error}` };
          process.stdout.write(`${p.title}: ${peerInfo[p.key].text}\n`);
          continue;
        }
        if (!peerInfo[p.key]) {
          peerInfo[p.key] = { ok: true, text: `${r.info.soname} ${r.info.detail}`.trim() };
          process.stdout.write(`${p.title}: ${peerInfo[p.key].text}\n`);
        }
        row[p.key] = flops / r.byName.get(c.name).median / 1e9;
        row[`${p.key}Ratio`] = ours / row[p.key];
      }
      rows.push(row);
    }

    const columns = [
      { key: 'shape', title: 'shape' },
      { key: 'threads', title: 'thr' },
      { key: 'ours', title: 'ours GF/s', fmt: harness.fmt.num },
      ...peers.map((p) => ({ key: p.key, title: `${p.title} GF/s`, fmt: harness.fmt.num })),
      ...peers.map((p) => ({ key: `${p.key}Ratio`, title: `ours/${p.title}`, fmt: harness.fmt.ratio })),
      { key: 'fmaPeakGflops', title: 'FMA peak', fmt: harness.fmt.num },
      { key: 'peak', title: 'ours/peak', fmt: harness.fmt.pct },
    ];
    harness.printTable(`sgemm, GFLOP/s (median of ${timing.repeats}; FMA peak measured right after each row's timing)`, columns, rows);
    const load = os.loadavg()[0];
    if (load > os.cpus().length * 0.5) {
      process.stdout.write(`note: the machine was shared during this run (load average ${load.toFixed(1)} on ${os.cpus().length} CPUs): absolute figures are low and noisy; compare ratios within a row\n`);
    }
    const file = harness.save('gemm', { threads, timing, limits, peers: peerInfo, rows }, {
      title: 'sgemm GFLOP/s', rows, label: 'shape', unit: 'GFLOP/s',
      series: [{ key: 'ours', title: 'ours' }, ...peers.map((p) => ({ key: p.key, title: p.title }))],
    });
    process.stdout.write(`wrote ${file}\n`);
    return { limits, peers: peerInfo, rows };
  },
};
