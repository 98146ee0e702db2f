'use strict';
// Central finite differences in float64 for any scalar function of a Float64Array.

// ∂f/∂x_k ≈ (f(x + eps·e_k) − f(x − eps·e_k)) / (2·eps). x is perturbed in place and restored.
function numericGradient(f, x, eps = 1e-6) {
  const grad = new Float64Array(x.length);
  for (let k = 0; k < x.length; k++) {
    const saved = x[k];
    x[k] = saved + eps;
    const plus = f(x);
    x[k] = saved - eps;
    const minus = f(x);
    x[k] = saved;
    grad[k] = (plus - minus) / (2 * eps);
  }
  return grad;
}

// Worst element-wise error |a − n| / max(|a|, |n|, floor). The floor keeps components that are
// zero in exact arithmetic (where only rounding noise remains) from reading as large relative
// errors; above it the measure is relative.
function compareGradients(analytic, numeric, floor = 1e-2) {
  if (analytic.length !== numeric.length) {
    throw new Error(`gradcheck: ${analytic.length} analytic vs ${numeric.length} numeric values`);
  }
  let worst = { error: 0, index: -1, analytic: 0, numeric: 0 };
  for (let k = 0; k < analytic.length; k++) {
    const a = analytic[k];
    const n = numeric[k];
    const error = Math.abs(a - n) / Math.max(Math.abs(a), Math.abs(n), floor);
    if (!(error <= worst.error)) worst = { error, index: k, analytic: a, numeric: n };
  }
  return worst;
}

// Checks analytic against finite differences of f at x; returns the worst element.
function gradcheck(f, x, analytic, { eps = 1e-6, floor = 1e-2 } = {}) {
  return compareGradients(analytic, numericGradient(f, x, eps), floor);
}

module.exports = { numericGradient, compareGradients, gradcheck };
