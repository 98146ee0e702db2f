'use strict';
// RMSNorm forward and backward on the CPU: achieved GB/s (the bytes the op must move, counted as
// bench/shapes.js says: forward reads x and writes y; backward reads dy and x and writes dx)
// against the copy bandwidth measured in the same run; and the same op in onnxruntime-node (its
// standard RMSNormalization op, forward only: ORT is an inference runtime), TensorFlow.js cpu and
// wasm (composed of TF.js ops, the backward by tf.grad) and plain JavaScript. Every peer's output
// is checked against ours before it is timed. Ours is called through the native binding (the same
// kernels lib/rmsnorm.ts calls), so the figure is the kernel's.
// oneDNN is not a peer here: its RMS normalization arrived in oneDNN 3.1, and Debian 12 ships 2.6.


function jsForward(y, rrms, x, gamma, beta, rows, cols, eps) {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let ss = 0;
    for (let j = 0; j < cols; j++) ss += x[o + j] * x[o + j];
    const rr = 1 / Math.sqrt(ss / cols + eps);
    rrms[r] = rr;
    for (let j = 0; j < cols; j++) y[o + j] = x[o + j] * rr * gamma[j] + beta[j];
  }
}

function jsBackward(dx, dgamma, dbeta, dy, x, gamma, rrms, rows, cols) {
  dgamma.fill(0);
  dbeta.fill(0);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const rr = rrms[r];
    let s = 0;
    for (let j = 0; j < cols; j++) s += dy[o + j] * gamma[j] * x[o + j];
    const c = (rr * rr * s) / cols;
    for (let j = 0; j < cols; j++) {
      dx[o + j] = rr * (dy[o + j] * gamma[j] - c * x[o + j]);
      dgamma[j] += dy[o + j] * x[o + j] * rr;
      dbeta[j] += dy[o + j];
    }
  }
}

function worstRelError(got, want) {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (scale || 1));
  return worst;
}


module.exports = {
  description: 'RMSNorm forward/backward GB/s vs copy bandwidth, onnxruntime-node, TensorFlow.js cpu/wasm and plain JavaScript',
  async run({ native, harness, shapes, peers, quick }) {
    const threads = native.numThreads();
    const monitor = harness.noiseMonitor(native, threads);
    const lim = harness.limits(native, threads);
    process.stdout.write(`copy bandwidth ${lim.copyGBs.toFixed(1)} GB/s (read + write), ${threads} threads, ISA ${native.backendInfo().isa}\n`);
    const timing = quick ? { warmup: 1, repeats: 3, minMs: 10 } : { warmup: 2, repeats: 7, minMs: 30 };
    const jsTiming = { warmup: 1, repeats: quick ? 1 : 3, minMs: 0 };
    const budgetMs = quick ? 1500 : 4000;
    const ortPeer = peers.ort.found ? harness.tryRequire('./peers/ort') : null;
    const ort = ortPeer ? ortPeer.load() : null;
    const tfPeer = peers.tfjsCpu.found || peers.tfjsWasm.found ? harness.tryRequire('./peers/tfjs') : null;
    const tf = tfPeer ? await tfPeer.load({ threads }) : null;
    const tfBackends = ['cpu', 'wasm'].filter((b) => peers[b === 'cpu' ? 'tfjsCpu' : 'tfjsWasm'].found && tf && !tf.missing && tf.backends[b] && tf.backends[b].ok);
    const notes = [];
    const rows = [];
    const eps = 1e-6;
    for (const c of shapes.RMSNORM_CASES.filter((s) => (quick ? s.quick : true))) {
      const R = c.rows;
      const C = c.cols;
      const n = R * C;
      const x = harness.randomArray(n, 1, 6); // in [-3, 3)
      const dy = harness.randomArray(n, 2, 2);
      const gamma = harness.randomArray(C, 3, 2);
      const beta = harness.randomArray(C, 4, 2);
      // Poisoned outputs: an element the kernel does not write stays NaN and fails the check.
      const y = new Float32Array(n).fill(NaN);
      const rrms = new Float32Array(R).fill(NaN);
      const dx = new Float32Array(n).fill(NaN);
      const dgamma = new Float32Array(C).fill(NaN);
      const dbeta = new Float32Array(C).fill(NaN);
      const jy = new Float32Array(n);
      const jr = new Float32Array(R);
      const jdx = new Float32Array(n);
      const jdg = new Float32Array(C);
      const jdb = new Float32Array(C);

      const fwd = () => native.rmsnormForward(x, gamma, beta, y, rrms, R, C, eps, false);
      const bwd = () => native.rmsnormBackward(dy, x, gamma, rrms, dx, dgamma, dbeta, R, C, false, false);
      fwd();
      bwd();
      jsForward(jy, jr, x, gamma, beta, R, C, eps);
      jsBackward(jdx, jdg, jdb, dy, x, gamma, jr, R, C);
      const err = Math.max(worstRelError(y, jy), worstRelError(rrms, jr), worstRelError(dx, jdx),
        worstRelError(dgamma, jdg), worstRelError(dbeta, jdb));
      if (!(err < 1e-3)) throw new Error(`${c.name}: kernel and JavaScript disagree (relative error ${err})`);

      const row = { shape: c.name };
      const fwdBytes = shapes.rmsnormBytes(c, 'forward');
      const bwdBytes = shapes.rmsnormBytes(c, 'backward');
      row.fwd = await harness.measure(fwd, timing);
      row.bwd = await harness.measure(bwd, timing);
      row.jsFwd = await harness.measure(() => jsForward(jy, jr, x, gamma, beta, R, C, eps), jsTiming);
      row.jsBwd = await harness.measure(() => jsBackward(jdx, jdg, jdb, dy, x, gamma, jr, R, C), jsTiming);
      monitor.note(row.fwd, row.bwd, row.jsFwd, row.jsBwd);
      if (ort) {
        const t = await ortPeer.rmsnorm(ort, { rows: R, cols: C, x, gamma, beta, eps, expectedY: y }, { threads, measure: harness.measure, timing });
        if (t.error) notes.push(`onnxruntime ${c.name}: ${t.error}`);
        else {
          row.ortFwd = t;
          monitor.note(t);
        }
      }
      for (const backend of tfBackends) {
        const k = backend === 'cpu' ? 'tfjsCpu' : 'tfjsWasm';
        const tFwd = await tfPeer.rmsnorm(backend, { rows: R, cols: C, x, gamma, beta, eps, expectedY: y }, { measure: harness.measure, timing, budgetMs });
        if (tFwd.error) notes.push(`tfjs ${backend} ${c.name} forward: ${tFwd.error}`);
        else row[`${k}Fwd`] = tFwd;
        const tBwd = await tfPeer.rmsnormBackward(backend, { rows: R, cols: C, x, gamma, beta, eps, dy, expectedDx: dx }, { measure: harness.measure, timing, budgetMs });
        if (tBwd.error) notes.push(`tfjs ${backend} ${c.name} backward: ${tBwd.error}`);
        else row[`${k}Bwd`] = tBwd;
        monitor.note(tFwd, tBwd);
      }
      row.fwdGBs = fwdBytes / (row.fwd.median * 1e6);
      row.bwdGBs = bwdBytes / (row.bwd.median * 1e6);
      row.fwdOfCopy = row.fwdGBs / lim.copyGBs;
      row.bwdOfCopy = row.bwdGBs / lim.copyGBs;
      for (const p of ['js', 'ort', 'tfjsCpu', 'tfjsWasm']) {
        if (row[`${p}Fwd`]) row[`fwdVs_${p}`] = row[`${p}Fwd`].median / row.fwd.median;
        if (row[`${p}Bwd`]) row[`bwdVs_${p}`] = row[`${p}Bwd`].median / row.bwd.median;
      }
      monitor.probePeak();
      rows.push(row);
      process.stdout.write(`  ${c.name}: fwd ${row.fwd.median.toFixed(3)} ms (${row.fwdGBs.toFixed(1)} GB/s), bwd ${row.bwd.median.toFixed(3)} ms (${row.bwdGBs.toFixed(1)} GB/s)\n`);
    }
    const noise = monitor.finish();
    const fm = harness.fmt;
    const has = (k) => rows.some((r) => r[k] !== undefined);
    const peerCols = [['ort', 'onnxruntime'], ['tfjsCpu', 'tfjs cpu'], ['tfjsWasm', 'tfjs wasm'], ['js', 'plain JS']];
    for (const phase of ['fwd', 'bwd']) {
      const P = phase === 'fwd' ? 'Fwd' : 'Bwd';
      harness.printTable(`RMSNorm ${phase === 'fwd' ? 'forward' : 'backward (dx, dgamma, dbeta)'}, ms per call, median (min–max); ` +
        `GB/s against the ${lim.copyGBs.toFixed(1)} GB/s copy bandwidth measured in this run; "vs X" = X's time / ours (> 1: ours faster)`, [
        { key: 'shape', title: 'rows x cols' },
        { key: phase, title: 'rnnkit', fmt: fm.ms },
        ...peerCols.filter(([k]) => has(`${k}${P}`)).map(([k, title]) => ({ key: `${k}${P}`, title, fmt: fm.ms })),
        { key: `${phase}GBs`, title: 'GB/s', fmt: fm.num },
        { key: `${phase}OfCopy`, title: 'of copy', fmt: fm.pct },
        ...peerCols.filter(([k]) => has(`${phase}Vs_${k}`)).map(([k, title]) => ({ key: `${phase}Vs_${k}`, title: `vs ${title}`, fmt: fm.ratio })),
      ], rows);
    }
    if (!ort) process.stdout.write(`${peers.ort.line}\n`);
    if (!tfBackends.length) process.stdout.write(`${peers.tfjsCpu.line}\n`);
    if (harness.tfjsWasmNote(tf)) notes.push(harness.tfjsWasmNote(tf));
    for (const note of notes) process.stdout.write(`note: ${note}\n`);
    const brief = harness.briefRows(rows);
    const payload = { limits: lim, noise, notes, rows: brief };
    const file = harness.save('rmsnorm', payload, {
      title: 'RMSNorm achieved bandwidth (higher is better)',
      rows: [...rows, { shape: 'copy', fwdGBs: lim.copyGBs }],
      label: 'shape',
      series: [{ key: 'fwdGBs', title: 'forward' }, { key: 'bwdGBs', title: 'backward' }],
      unit: 'GB/s',
    });
    process.stdout.write(`wrote ${file}\n`);
    return payload;
  },
};
