'use strict';
// GEMM: rnnkit's sgemm against OpenBLAS (as it detects this CPU, and forced to OPENBLAS_CORETYPE
// = Haswell), oneDNN's dnnl_sgemm, onnxruntime-node (MLAS, B as a constant initializer) and
// TensorFlow.js (cpu and wasm backends), next to the FMA peak measured in the same run. The
// shapes are bench/shapes.js's GEMM_CASES: 2048³ (all threads and 1 thread), the recurrent step
// h[M, H]·W_hhᵀ (N = 4H, K = H; W_hh packed once for ours) and the input projections of S1–S5.
// Ours and the BLAS peers are timed inside C++ (native benchSgemm / benchPeerSgemm), so JavaScript
// overhead never enters their figures; the BLAS peers are loaded with dlopen in child processes
// (bench/peers/gemm-peer.js). onnxruntime-node and TF.js are timed through their JavaScript APIs,
// as a Node user calls them, after their output is checked against ours.
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

// This CPU may not be recognised by the installed OpenBLAS; Haswell is its AVX2 kernel set.
const CORETYPE = 'Haswell';


function runPeer(peer, env, c, timing) {
  const job = JSON.stringify({ peer, cases: [c], ...timing });
  const child = spawnSync(process.execPath, [path.join(__dirname, '..', 'peers', 'gemm-peer.js'), job], {
    env, encoding: 'utf8', maxBuffer: 16 << 20,
  });
  if (child.status !== 0) return { error: (child.stderr || '').trim().split('\n').pop() || `exit ${child.status}` };
  const outp = JSON.parse(child.stdout.trim().split('\n').pop());
  if (outp.missing) return { missing: true };
  return { info: outp.info, t: outp.results[0] };
}


// Seconds-based { median, min, max } from C++ → a millisecond summary.
const secToMs = (t) => ({ median: t.median * 1e3, min: t.min * 1e3, max: t.max * 1e3, spread: (t.max - t.min) / t.median, samples: [t.min * 1e3, t.median * 1e3, t.max * 1e3] });
// A time summary (ms) → a GFLOP/s summary (fastest time gives the highest rate).
const rate = (t, flops) => ({ median: flops / t.median / 1e6, min: flops / t.max / 1e6, max: flops / t.min / 1e6, samples: t.samples, spread: t.spread });

module.exports = {
  description: 'sgemm vs OpenBLAS, oneDNN, onnxruntime-node (MLAS), TensorFlow.js cpu/wasm: GFLOP/s and % of the FMA peak',
  async run({ rnnkit, native, harness, shapes, peers, quick }) {
    const allThreads = Math.min(2, os.cpus().length);
    const timing = quick ? { warmup: 1, repeats: 3, minMs: 10 } : { warmup: 2, repeats: 7, minMs: 40 };
    // In-process JavaScript peers: a call predicted to take longer than this is skipped (TF.js's
    // cpu backend runs 2048³ at about 0.5 GFLOP/s: half a minute a call).
    const budgetMs = quick ? 1500 : 4000;
    const list = shapes.GEMM_CASES.filter((c) => (quick ? c.quick : true))
      .map((c) => ({ ...c, threads: c.threads === 'all' ? allThreads : c.threads }));
    const monitor = harness.noiseMonitor(native, allThreads);

    const baseEnv = { ...process.env };
    delete baseEnv.OPENBLAS_CORETYPE;
    const blasPeers = [
      { key: 'openblas', title: 'OpenBLAS', peer: 'openblas', env: baseEnv, found: peers.openblas.found },
      { key: 'openblasCore', title: `OpenBLAS ${CORETYPE}`, peer: 'openblas', env: { ...baseEnv, OPENBLAS_CORETYPE: CORETYPE }, found: peers.openblas.found },
      { key: 'dnnl', title: 'oneDNN', peer: 'dnnl', env: baseEnv, found: peers.onednn.found || !!peers.onednn.gemmOnly },
    ];
    const ortPeer = peers.ort.found ? harness.tryRequire('./peers/ort') : null;
    const ort = ortPeer ? ortPeer.load() : null;
    const tfPeer = peers.tfjsCpu.found || peers.tfjsWasm.found ? harness.tryRequire('./peers/tfjs') : null;
    const tf = tfPeer ? await tfPeer.load({ threads: allThreads }) : null;
    const jsPeers = [
      { key: 'ort', title: 'onnxruntime', found: !!ort, run: (c, data) => ortPeer.gemm(ort, { ...c, ...data }, { threads: c.threads, measure: harness.measure, timing }) },
      ...['cpu', 'wasm'].map((backend) => ({
        key: `tfjs${backend === 'cpu' ? 'Cpu' : 'Wasm'}`, title: `tfjs ${backend}`,
        found: !!(peers[backend === 'cpu' ? 'tfjsCpu' : 'tfjsWasm'].found && tf && !tf.missing && tf.backends[backend] && tf.backends[backend].ok),
        why: tf && !tf.missing && tf.backends[backend] && !tf.backends[backend].ok ? tf.backends[backend].reason : null,
        // B already [K, N] (transposed once, untimed), as a TF.js user would store weights: wasm
        // runs only the untransposed product in XNNPACK (10x faster than its transB loop).
        run: (c, data) => tfPeer.gemm(backend, { ...c, ...data }, { measure: harness.measure, timing, budgetMs, pretransposeB: true }),
      })),
    ];
    for (const p of jsPeers) if (!p.found && p.why) process.stdout.write(`${p.title}: unavailable (${p.why})\n`);
    const allPeers = [...blasPeers, ...jsPeers];
    const notes = [];
    const bestRate = {}; // GFLOP/s each JS peer reached so far: predicts whether the next case fits the budget

    // Calibrate the JavaScript peers on a small product, so that a case predicted to take longer
    // than the budget is skipped before its first call (2048³ on TF.js cpu: half a minute).
    for (const p of jsPeers) {
      if (!p.found || p.key === 'ort') continue;
      const c = { M: 256, N: 256, K: 256, transB: false, threads: allThreads };
      const t = await p.run(c, { a: harness.randomArray(256 * 256, 3), b: harness.randomArray(256 * 256, 4), expected: null });
      if (!t.error) bestRate[p.key] = shapes.gemmFlops(c) / t.median / 1e6;
    }

    // Row by row: ours, then every peer back to back. On a shared machine the load drifts; a
    // ratio means something only between figures taken close together.
    const rows = [];
    for (const c of list) {
      const flops = shapes.gemmFlops(c);
      const label = `${c.name}${c.threads === 1 ? ' 1T' : ''}`;
      rnnkit.setNumThreads(c.threads);
      const ours = secToMs(native.benchSgemm(c.M, c.N, c.K, c.transA, c.transB, c.packed, timing.repeats, timing.minMs));
      const fmaPeakGflops = native.fmaPeak(c.threads);
      if (c.threads === allThreads) monitor.notePeak(fmaPeakGflops);
      monitor.note(ours);
      const row = { shape: label, threads: c.threads, flops, oursMs: ours, ours: rate(ours, flops), fmaPeakGflops };
      for (const p of blasPeers) {
        if (!p.found) continue;
        const r = runPeer(p.peer, p.env, c, timing);
        if (r.missing || r.error) {
          p.found = false;
          process.stdout.write(`${p.title}: ${r.missing ? 'missing' : `failed: ${r.error}`}\n`);
          continue;
        }
        const t = secToMs(r.t);
        monitor.note(t);
        row[p.key] = rate(t, flops);
      }
      // The JavaScript peers need the operands and our result (to check theirs).
      if (jsPeers.some((p) => p.found)) {
        const a = harness.randomArray(c.M * c.K, 1);
        const b = harness.randomArray(c.N * c.K, 2);
        const expected = rnnkit.matmulSync(rnnkit.tensor(a, [c.M, c.K]), rnnkit.tensor(b, c.transB ? [c.N, c.K] : [c.K, c.N]), { transB: c.transB }).data;
        for (const p of jsPeers) {
          if (!p.found || (p.key !== 'ort' && c.threads !== allThreads)) continue;
          if (bestRate[p.key] && flops / bestRate[p.key] / 1e6 > budgetMs) {
            row[`${p.key}Note`] = `skipped: ~${(flops / bestRate[p.key] / 1e9).toFixed(0)} s a call`;
            continue;
          }
          rnnkit.setNumThreads(c.threads);
          const t = await p.run(c, { a, b, expected });
          if (t.error) {
            notes.push(`${p.title} ${label}: ${t.error}`);
            continue;
          }
          monitor.note(t);
          row[p.key] = rate(t, flops);
          bestRate[p.key] = Math.max(bestRate[p.key] || 0, row[p.key].median);
          if (t.budgetExceeded) notes.push(`${p.title} ${label}: one call took ${(t.median / 1e3).toFixed(1)} s, over the ${budgetMs / 1e3} s budget: a single sample`);
        }
      }
      for (const p of allPeers) if (row[p.key]) row[`vs_${p.key}`] = row.ours.median / row[p.key].median;
      rnnkit.setNumThreads(0);
      rows.push(row);
      process.stdout.write(`  ${label}: ours ${row.ours.median.toFixed(1)} GFLOP/s` +
        allPeers.filter((p) => row[p.key]).map((p) => `, ${p.title} ${row[p.key].median.toFixed(1)}`).join('') + '\n');
    }
    const noise = monitor.finish();
    // % of peak against the best probe of the run (the row's own probe may have caught a dip).
    for (const r of rows) r.peak = r.ours.median / (r.threads === allThreads ? noise.fmaPeakBest : r.fmaPeakGflops);

    const shown = allPeers.filter((p) => rows.some((r) => r[p.key]));
    const f = harness.fmt;
    harness.printTable(`sgemm GFLOP/s, median (min–max) of ${timing.repeats} after warm-up`, [
      { key: 'shape', title: 'shape' },
      { key: 'ours', title: 'rnnkit', fmt: f.num },
      ...shown.map((p) => ({ key: p.key, title: p.title, fmt: f.num })),
    ], rows);
    harness.printTable('sgemm speed ratios (rnnkit vs peer: > 1 = rnnkit faster), the FMA peak probed right after each row, and rnnkit against the best probe of the run', [
      { key: 'shape', title: 'shape' },
      ...shown.map((p) => ({ key: `vs_${p.key}`, title: `vs ${p.title}`, fmt: f.ratio })),
      { key: 'fmaPeakGflops', title: 'FMA peak', fmt: f.num },
      { key: 'peak', title: 'rnnkit % of peak', fmt: f.pct },
    ], rows);
    // The targets of issue 17, in the suite's convention (speed ratios, > 1 = rnnkit faster).
    const targets = [];
    for (const r of rows) {
      if (r.threads !== allThreads) continue;
      if (r.shape.startsWith('2048³')) {
        targets.push({ case: r.shape, measure: 'vs oneDNN', target: 0.95, value: r.vs_dnnl });
        targets.push({ case: r.shape, measure: 'rnnkit % of the FMA peak', target: 0.85, value: r.peak, format: f.pct });
      } else if (r.shape.startsWith('proj')) {
        targets.push({ case: r.shape, measure: 'vs oneDNN', target: 0.95, value: r.vs_dnnl });
      } else if (r.shape.startsWith('linear')) {
        targets.push({ case: r.shape, measure: 'vs oneDNN (B unpacked)', target: 1.0, value: r.vs_dnnl });
      }
    }
    const targetRows = harness.printTargets('Targets (issue 17; ratios are speed ratios, > 1 = rnnkit faster)', targets);
    for (const r of rows) for (const p of jsPeers) if (r[`${p.key}Note`]) notes.push(`${p.title} ${r.shape}: ${r[`${p.key}Note`]}`);
    if (harness.tfjsWasmNote(tf)) notes.push(harness.tfjsWasmNote(tf));
    for (const n of notes) process.stdout.write(`note: ${n}\n`);

    const peerInfo = Object.fromEntries(allPeers.map((p) => [p.key, p.found ? p.title : 'missing']));
    const brief = harness.briefRows(rows);
    const file = harness.save('gemm', { threads: allThreads, timing, noise, peers: peerInfo, notes, rows: brief, targets: targetRows }, {
      title: 'sgemm GFLOP/s (higher is better)', rows, label: 'shape', unit: 'GFLOP/s',
      series: [{ key: 'ours', title: 'rnnkit' }, ...shown.map((p) => ({ key: p.key, title: p.title }))],
    });
    process.stdout.write(`wrote ${file}\n`);
    return { noise, peers: peerInfo, rows: brief, targets: targetRows };
  },
};
