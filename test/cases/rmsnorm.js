'use strict';
// The RMSNorm case table: problem sizes [rows, cols] and the float32-fit tolerances (relative to
// the per-element error bounds below) for the CPU test (30, every ISA path) and the CUDA parity
// test (40). A new case is one entry here.

module.exports = {
  // test/30, per ISA: every width with one row (the column split) and many rows (enough for every
  // thread to take several gradient blocks while keeping the float64 reference quick).
  cpu: {
    widths: [1, 3, 17, 1024, 4096, 65536],
    manyRows: (cols) => Math.max(40, Math.min(600, Math.floor((1 << 19) / cols))),
    // Outputs of 8 MiB and more (streaming stores): row split and column split.
    large: [[40, 65536, { bias: true }], [3, 800000, { bias: false }]],
    // Accumulating into dgamma / dbeta: one thread, row split, column split.
    accumulate: [[300, 64], [600, 512], [2, 100000]],
    eps0: [[50, 33], [1, 5000]],
    tol: { rrms: 2e-6, y: 4e-6, dx: 2e-5, dgamma: 1e-5, dbeta: 1e-5 },
  },
  // test/40: the CUDA kernels' row and column paths, odd widths.
  cuda: {
    shapes: [[3, 1], [37, 7], [64, 32], [50, 1024], [9, 4097], [6, 8192], [3, 9000], [2, 20000]],
    eps: 1e-6,
    tol: { rrms: 1e-5, y: 3e-5, dx: 5e-5, dgamma: 1e-4, dbeta: 1e-4 },
  },
};

/**
 * Per-element error bounds: the sum of the magnitudes of the terms that make up each value, so
 * that cancellation does not tighten the tolerance below float32. y = x·rrms·γ + β,
 * dx = rrms·dy·γ − rrms³·(Σ dy·γ·x)/cols·x, dγ = Σ dy·x·rrms, dβ = Σ dy.
 */
module.exports.errorBounds = function errorBounds({ rows, cols, x, gamma, beta, dy }, rrms) {
  const y = new Float64Array(rows * cols);
  const dx = new Float64Array(rows * cols);
  const dg = new Float64Array(cols);
  const db = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const rr = rrms[r];
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.abs(dy[r * cols + j] * gamma[j] * x[r * cols + j]);
    for (let j = 0; j < cols; j++) {
      const k = r * cols + j;
      y[k] = Math.abs(x[k] * rr * gamma[j]) + (beta ? Math.abs(beta[j]) : 0);
      dx[k] = rr * Math.abs(dy[k] * gamma[j]) + (rr * rr * rr * s / cols) * Math.abs(x[k]);
      dg[j] += Math.abs(dy[k] * x[k] * rr);
      db[j] += Math.abs(dy[k]);
    }
  }
  return { y, dx, dg, db };
};
