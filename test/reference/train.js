'use strict';
// Float64 references of the training ops (written from the PyTorch documentation's formulas,
// independently of native/kernels/train.cc). Optimizer steps return new arrays: { p, state }.

const f64 = (a) => Float64Array.from(a);

// The gradient with L2 weight decay, g + wd·p. A float32 kernel computes it with a rounding error
// of a few ulps of |g| + |wd·p|, which is large against the result when g ≈ −wd·p (cancellation),
// and optimizers that divide by a running RMS (Adam, RMSprop, Adagrad) amplify it. h.nudge (−1, 0
// or +1) moves the float64 value by 4 such ulps, so a test can run the reference at both ends of
// that rounding and allow for the difference instead of failing on an ill-conditioned element.
function decayed(g0, p, h) {
  const g = g0 + h.weightDecay * p;
  if (!h.nudge || h.weightDecay === 0) return g;
  return g + h.nudge * 2 ** -22 * (Math.abs(g0) + Math.abs(h.weightDecay * p));
}

function sgdStep(p0, g0, state, h) {
  const n = p0.length;
  const p = f64(p0);
  const buf = state.buf ? f64(state.buf) : null;
  const out = { buf: null };
  const nb = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let g = decayed(g0[i], p[i], h);
    if (h.momentum !== 0) {
      const b = buf === null ? g : h.momentum * buf[i] + (1 - h.dampening) * g;
      nb[i] = b;
      g = h.nesterov ? g + h.momentum * b : b;
    }
    p[i] -= h.lr * g;
  }
  if (h.momentum !== 0) out.buf = nb;
  return { p, state: out };
}

function adamStep(p0, g0, state, h, decoupled) {
  const n = p0.length;
  const t = state.step + 1;
  const [b1, b2] = h.betas;
  const p = f64(p0);
  const m = state.m ? f64(state.m) : new Float64Array(n);
  const v = state.v ? f64(state.v) : new Float64Array(n);
  const vmax = state.vmax ? f64(state.vmax) : new Float64Array(n);
  const bc1 = 1 - b1 ** t;
  const bc2 = 1 - b2 ** t;
  for (let i = 0; i < n; i++) {
    let g = g0[i];
    if (decoupled) p[i] *= 1 - h.lr * h.weightDecay;
    else g = decayed(g, p[i], h);
    m[i] = b1 * m[i] + (1 - b1) * g;
    v[i] = b2 * v[i] + (1 - b2) * g * g;
    let vh = v[i];
    if (h.amsgrad) vh = vmax[i] = Math.max(vmax[i], v[i]);
    // eps sits outside the bias-corrected square root, as in PyTorch.
    p[i] -= ((h.lr / bc1) * m[i]) / (Math.sqrt(vh) / Math.sqrt(bc2) + h.eps);
  }
  return { p, state: { step: t, m, v, vmax } };
}

function adagradStep(p0, g0, state, h) {
  const n = p0.length;
  const t = state.step + 1;
  const p = f64(p0);
  const sum = state.sum ? f64(state.sum) : new Float64Array(n).fill(h.initialAccumulatorValue);
  const clr = h.lr / (1 + (t - 1) * h.lrDecay);
  for (let i = 0; i < n; i++) {
    const g = decayed(g0[i], p[i], h);
    sum[i] += g * g;
    p[i] -= (clr * g) / (Math.sqrt(sum[i]) + h.eps);
  }
  return { p, state: { step: t, sum } };
}

function rmspropStep(p0, g0, state, h) {
  const n = p0.length;
  const p = f64(p0);
  const sq = state.sq ? f64(state.sq) : new Float64Array(n);
  const ga = state.ga ? f64(state.ga) : new Float64Array(n);
  const buf = state.buf ? f64(state.buf) : new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const g = decayed(g0[i], p[i], h);
    sq[i] = h.alpha * sq[i] + (1 - h.alpha) * g * g;
    let avg;
    if (h.centered) {
      ga[i] = h.alpha * ga[i] + (1 - h.alpha) * g;
      avg = Math.sqrt(sq[i] - ga[i] * ga[i]) + h.eps;
    } else {
      avg = Math.sqrt(sq[i]) + h.eps;
    }
    if (h.momentum > 0) {
      buf[i] = h.momentum * buf[i] + g / avg;
      p[i] -= h.lr * buf[i];
    } else {
      p[i] -= (h.lr * g) / avg;
    }
  }
  return { p, state: { sq, ga, buf } };
}

// Softmax cross-entropy over rows of V logits. weight(r) = 0 for ignoreIndex, else mask[r] or 1.
function crossEntropy(logits, targets, V, { mask = null, ignoreIndex = -100, mean = true } = {}) {
  const N = targets.length;
  let wsum = 0;
  const w = new Float64Array(N);
  for (let r = 0; r < N; r++) {
    w[r] = targets[r] === ignoreIndex ? 0 : mask ? mask[r] : 1;
    wsum += w[r];
  }
  const dlogits = new Float64Array(N * V);
  if (wsum === 0) return { loss: 0, dlogits };
  const scale = mean ? 1 / wsum : 1;
  let loss = 0;
  for (let r = 0; r < N; r++) {
    if (w[r] === 0) continue;
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, logits[r * V + j]);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(logits[r * V + j] - mx);
    const lse = mx + Math.log(s);
    loss += w[r] * (lse - logits[r * V + targets[r]]);
    for (let j = 0; j < V; j++) {
      dlogits[r * V + j] = scale * w[r] * (Math.exp(logits[r * V + j] - lse) - (j === targets[r] ? 1 : 0));
    }
  }
  return { loss: loss * scale, dlogits };
}

function mse(y, t, mean = true) {
  const n = y.length;
  const scale = mean ? 1 / n : 1;
  let loss = 0;
  const dy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const e = y[i] - t[i];
    loss += e * e;
    dy[i] = 2 * scale * e;
  }
  return { loss: loss * scale, dy };
}

// y[N, O] = x[N, I]·Wᵀ + b, and the backward.
function linear(x, W, b, N, I, O) {
  const y = new Float64Array(N * O);
  for (let r = 0; r < N; r++) {
    for (let o = 0; o < O; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < I; i++) s += x[r * I + i] * W[o * I + i];
      y[r * O + o] = s;
    }
  }
  return y;
}

function linearBackward(x, W, dy, N, I, O) {
  const dx = new Float64Array(N * I);
  const dW = new Float64Array(O * I);
  const db = new Float64Array(O);
  for (let r = 0; r < N; r++) {
    for (let o = 0; o < O; o++) {
      const d = dy[r * O + o];
      db[o] += d;
      for (let i = 0; i < I; i++) {
        dx[r * I + i] += d * W[o * I + i];
        dW[o * I + i] += d * x[r * I + i];
      }
    }
  }
  return { dx, dW, db };
}

module.exports = { sgdStep, adamStep, adagradStep, rmspropStep, crossEntropy, mse, linear, linearBackward };
