'use strict';
// Float64 references of the custom step nets that test/60.stepnet.test.js builds, written from
// their equations (not from the engine): plain loops over [T, B, ·] arrays, forward only; their
// gradients come from central finite differences (reference/gradcheck.js).

const sigmoid = (v) => 1 / (1 + Math.exp(-v));

// y[n] = Σ_k W[n, k] x[k] + b[n]
function affine(W, b, x, N) {
  const K = x.length;
  const y = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let s = b ? b[n] : 0;
    for (let k = 0; k < K; k++) s += W[n * K + k] * x[k];
    y[n] = s;
  }
  return y;
}

function rmsNorm(x, gamma, beta, eps) {
  let ms = 0;
  for (const v of x) ms += v * v;
  const r = 1 / Math.sqrt(ms / x.length + eps);
  return x.map((v, j) => v * r * gamma[j] + (beta ? beta[j] : 0));
}

/**
 * LSTM whose gate pre-activations pass through RMSNorm (gamma, beta over 4H) before the cell:
 * a = RMSNorm(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), then the i f g o LSTM update.
 * p: { W_ih [4H, I], b_ih, W_hh [4H, H], b_hh, gamma [4H], beta [4H] }; h0, c0: [B, H].
 * Returns { y [T, B, H], hy [B, H], cy [B, H] } (all steps full length).
 */
function normLstmForward(p, x, h0, c0, T, B, I, H, eps) {
  const y = new Float64Array(T * B * H);
  const hy = new Float64Array(B * H);
  const cy = new Float64Array(B * H);
  for (let b = 0; b < B; b++) {
    let h = h0.slice(b * H, (b + 1) * H);
    let c = c0.slice(b * H, (b + 1) * H);
    for (let t = 0; t < T; t++) {
      const xt = x.slice((t * B + b) * I, (t * B + b + 1) * I);
      const gx = affine(p.W_ih, p.b_ih, xt, 4 * H);
      const gh = affine(p.W_hh, p.b_hh, h, 4 * H);
      const a = rmsNorm(gx.map((v, j) => v + gh[j]), p.gamma, p.beta, eps);
      const hn = new Float64Array(H);
      const cn = new Float64Array(H);
      for (let j = 0; j < H; j++) {
        cn[j] = sigmoid(a[H + j]) * c[j] + sigmoid(a[j]) * Math.tanh(a[2 * H + j]);
        hn[j] = sigmoid(a[3 * H + j]) * Math.tanh(cn[j]);
      }
      h = hn;
      c = cn;
      y.set(h, (t * B + b) * H);
    }
    hy.set(h, b * H);
    cy.set(c, b * H);
  }
  return { y, hy, cy };
}

/**
 * Windowed cell: s_t = tanh(W [s_{t-2}, s_{t-1}, x_t, t] + b) with two initial steps.
 * init: [2, B, D] (or [D] broadcast to both steps and every row). Returns { y [T, B, D], last [B, D] }.
 */
function windowForward(p, x, init, initRank, T, B, I, D) {
  const seq = new Float64Array((T + 2) * B * D);
  for (let k = 0; k < 2; k++) {
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < D; j++) {
        seq[(k * B + b) * D + j] = initRank === 1 ? init[j] : init[(k * B + b) * D + j];
      }
    }
  }
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      const v = new Float64Array(2 * D + I + 1);
      for (let j = 0; j < D; j++) {
        v[j] = seq[(t * B + b) * D + j];
        v[D + j] = seq[((t + 1) * B + b) * D + j];
      }
      for (let k = 0; k < I; k++) v[2 * D + k] = x[(t * B + b) * I + k];
      v[2 * D + I] = t;
      const s = affine(p.W, p.b, v, D).map(Math.tanh);
      seq.set(s, ((t + 2) * B + b) * D);
    }
  }
  return { y: seq.slice(2 * B * D), last: seq.slice((T + 1) * B * D) };
}

module.exports = { normLstmForward, windowForward };
