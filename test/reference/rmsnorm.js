'use strict';
// Float64 reference of RMSNorm over a [rows, cols] row-major matrix, written from the formulas
// (not from the kernels):
//   rrms[r] = 1 / sqrt(mean_j x[r,j]^2 + eps),  y = x * rrms * gamma + beta
// The backward is the plain chain rule through mean, sqrt and the scale, so that finite
// differences of `forward` check it independently of the closed form used by the kernels.

function forward(x, gamma, beta, rows, cols, eps) {
  const y = new Float64Array(rows * cols);
  const rrms = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let j = 0; j < cols; j++) ss += x[r * cols + j] * x[r * cols + j];
    const rr = 1 / Math.sqrt(ss / cols + eps);
    rrms[r] = rr;
    for (let j = 0; j < cols; j++) {
      y[r * cols + j] = x[r * cols + j] * rr * gamma[j] + (beta ? beta[j] : 0);
    }
  }
  return { y, rrms };
}

// Gradients of sum(y * dy) with respect to x, gamma and beta.
function backward(dy, x, gamma, rows, cols, eps) {
  const dx = new Float64Array(rows * cols);
  const dgamma = new Float64Array(cols);
  const dbeta = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let j = 0; j < cols; j++) ss += x[r * cols + j] * x[r * cols + j];
    const ms = ss / cols + eps;
    const rr = 1 / Math.sqrt(ms);
    // d rr / d ms = -1/2 ms^(-3/2); d ms / d x_j = 2 x_j / cols.
    let drr = 0;
    for (let j = 0; j < cols; j++) {
      const k = r * cols + j;
      drr += dy[k] * gamma[j] * x[k];
      dgamma[j] += dy[k] * x[k] * rr;
      dbeta[j] += dy[k];
    }
    const dms = drr * -0.5 * Math.pow(ms, -1.5);
    for (let j = 0; j < cols; j++) {
      const k = r * cols + j;
      dx[k] = dy[k] * gamma[j] * rr + dms * 2 * x[k] / cols;
    }
  }
  return { dx, dgamma, dbeta };
}

module.exports = { forward, backward };
