'use strict';
// RMSNorm forward and backward on the CPU: achieved GB/s (bytes the op must move: forward reads x
// and writes y; backward reads dy and x and writes dx) against the copy bandwidth measured in the
// same run, and the speed-up over a plain JavaScript implementation of the same formulas.
// Each kernel is checked against the JavaScript version before it is timed.

const SHAPES = [[4096, 1024], [1024, 4096], [64, 65536], [16384, 1024], [1, 65536], [8192, 64]];
const QUICK_SHAPES = [[1024, 4096], [1, 65536], [8192, 64]];

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

function randomArray(n, scale = 1) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = scale * (Math.random() * 2 - 1);
  return a;
}

function worstRelError(got, want) {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (scale || 1));
  return worst;
}

module.exports = {
  description: 'RMSNorm forward/backward GB/s vs copy bandwidth and plain JavaScript',
  async run({ native, harness, quick }) {
    const threads = native.numThreads();
    const lim = harness.limits(native, threads);
    process.stdout.write(`copy bandwidth ${lim.copyGBs.toFixed(1)} GB/s (read + write), ${threads} threads, ISA ${native.backendInfo().isa}\n`);
    const timing = quick ? { warmup: 1, repeats: 3, minMs: 10 } : { warmup: 2, repeats: 7, minMs: 30 };
    const jsTiming = { warmup: 0, repeats: quick ? 1 : 3, minMs: 0 };
    const rows = [];
    for (const [R, C] of quick ? QUICK_SHAPES : SHAPES) {
      const n = R * C;
      const x = randomArray(n, 3);
      const dy = randomArray(n);
      const gamma = randomArray(C);
      const beta = randomArray(C);
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

      const fwd = () => native.rmsnormForward(x, gamma, beta, y, rrms, R, C, 1e-6, false);
      const bwd = () => native.rmsnormBackward(dy, x, gamma, rrms, dx, dgamma, dbeta, R, C, false, false);
      fwd();
      bwd();
      jsForward(jy, jr, x, gamma, beta, R, C, 1e-6);
      jsBackward(jdx, jdg, jdb, dy, x, gamma, jr, R, C);
      const err = Math.max(worstRelError(y, jy), worstRelError(rrms, jr), worstRelError(dx, jdx),
        worstRelError(dgamma, jdg), worstRelError(dbeta, jdb));
      if (!(err < 1e-3)) throw new Error(`${R}x${C}: kernel and JavaScript disagree (relative error ${err})`);

      const tf = await harness.measure(fwd, timing);
      const tb = await harness.measure(bwd, timing);
      const jf = await harness.measure(() => jsForward(jy, jr, x, gamma, beta, R, C, 1e-6), jsTiming);
      const jb = await harness.measure(() => jsBackward(jdx, jdg, jdb, dy, x, gamma, jr, R, C), jsTiming);
      const fwdBytes = 2 * n * 4;
      const bwdBytes = 3 * n * 4;
      const fwdGBs = fwdBytes / (tf.median * 1e6);
      const bwdGBs = bwdBytes / (tb.median * 1e6);
      rows.push({
        shape: `${R}x${C}`,
        fwdMs: tf.median,
        fwdGBs,
        fwdOfCopy: fwdGBs / lim.copyGBs,
        fwdVsJs: jf.median / tf.median,
        bwdMs: tb.median,
        bwdGBs,
        bwdOfCopy: bwdGBs / lim.copyGBs,
        bwdVsJs: jb.median / tb.median,
        spread: Math.max(tf.spread, tb.spread),
      });
    }
    const cols = [
      { key: 'shape', title: 'rows x cols' },
      { key: 'fwdMs', title: 'fwd ms', fmt: harness.fmt.ms },
      { key: 'fwdGBs', title: 'fwd GB/s', fmt: harness.fmt.num },
      { key: 'fwdOfCopy', title: 'of copy', fmt: harness.fmt.pct },
      { key: 'fwdVsJs', title: 'vs JS', fmt: harness.fmt.ratio },
      { key: 'bwdMs', title: 'bwd ms', fmt: harness.fmt.ms },
      { key: 'bwdGBs', title: 'bwd GB/s', fmt: harness.fmt.num },
      { key: 'bwdOfCopy', title: 'of copy', fmt: harness.fmt.pct },
      { key: 'bwdVsJs', title: 'vs JS', fmt: harness.fmt.ratio },
      { key: 'spread', title: 'spread', fmt: harness.fmt.pct },
    ];
    harness.printTable(`RMSNorm (copy ${lim.copyGBs.toFixed(1)} GB/s measured in this run)`, cols, rows);
    const payload = { limits: lim, rows };
    harness.save('rmsnorm', payload, {
      title: 'RMSNorm achieved bandwidth',
      rows: [...rows, { shape: 'copy', fwdGBs: lim.copyGBs }],
      label: 'shape',
      series: [{ key: 'fwdGBs', title: 'forward' }, { key: 'bwdGBs', title: 'backward' }],
      unit: 'GB/s',
    });
    return payload;
  },
};
