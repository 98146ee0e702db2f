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
//
// With `kinks` (functions with kinks, e.g. a clipped LSTM cell): an element whose central
// difference disagrees is looked at again. If its one-sided differences over eps disagree with
// each other (a kink lies within eps of x, so the central difference averages two slopes), it is
// judged against the one-sided derivatives over a step 100 times smaller instead, on which the
// analytic gradient (the derivative on one side of the kink) must match one. An element without a
// kink keeps its central error.
function gradcheck(f, x, analytic, { eps = 1e-6, floor = 1e-2, kinks = false, tolerance = 1e-6 } = {}) {
  const numeric = numericGradient(f, x, eps);
  if (kinks) {
    const rel = (a, n) => Math.abs(a - n) / Math.max(Math.abs(a), Math.abs(n), floor);
    const oneSided = (k, h) => {
      const saved = x[k];
      const f0 = f(x);
      x[k] = saved + h;
      const right = (f(x) - f0) / h;
      x[k] = saved - h;
      const left = (f0 - f(x)) / h;
      x[k] = saved;
      return { left, right };
    };
    for (let k = 0; k < x.length; k++) {
      if (rel(analytic[k], numeric[k]) <= tolerance) continue;
      const wide = oneSided(k, eps);
      if (rel(wide.left, wide.right) <= 1e-4) continue;
      const near = oneSided(k, eps / 100);
      numeric[k] = rel(analytic[k], near.left) <= rel(analytic[k], near.right) ? near.left : near.right;
    }
  }
  return compareGradients(analytic, numeric, floor);
}

module.exports = { numericGradient, compareGradients, gradcheck };
