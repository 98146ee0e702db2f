'use strict';
// Float64 references of the lib/nn kernels and functions, written from their mathematical
// definitions (not from native/kernels): activations and their derivatives, broadcasting
// arithmetic, reductions, concatenation, embedding lookups and their gradients, and dropout with
// the counter-based mask of dropout_hash.h (ported in reference/recurrent.js).
const { dropoutUniform } = require('./recurrent');

const ACTIVATIONS = {
  tanh: { f: Math.tanh, df: (x) => 1 - Math.tanh(x) ** 2 },
  sigmoid: { f: (x) => 1 / (1 + Math.exp(-x)), df: (x) => { const s = 1 / (1 + Math.exp(-x)); return s * (1 - s); } },
  relu: { f: (x) => (Number.isNaN(x) ? x : Math.max(x, 0)), df: (x) => (x > 0 ? 1 : 0) },
};

const map = (a, f) => Float64Array.from(a, f);

function activation(kind, x) {
  return map(x, ACTIVATIONS[kind].f);
}

function activationBackward(kind, dy, x) {
  return map(dy, (g, i) => g * ACTIVATIONS[kind].df(x[i]));
}

// out[i] = a[i] op b[i mod m]
function broadcast(op, a, b) {
  const m = b.length;
  return map(a, (v, i) => (op === 'add' ? v + b[i % m] : v * b[i % m]));
}

// out[o, i] = scale · Σ_l x[o, l, i] · (w ? w[o, l, i] : 1)
function sumAxis(x, w, outer, len, inner, scale) {
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let l = 0; l < len; l++) {
      for (let i = 0; i < inner; i++) {
        const k = (o * len + l) * inner + i;
        out[o * inner + i] += x[k] * (w ? w[k] : 1);
      }
    }
  }
  return map(out, (v) => v * scale);
}

function broadcastAxis(dy, outer, len, inner, scale) {
  const dx = new Float64Array(outer * len * inner);
  for (let o = 0; o < outer; o++) for (let l = 0; l < len; l++) for (let i = 0; i < inner; i++) dx[(o * len + l) * inner + i] = scale * dy[o * inner + i];
  return dx;
}

// parts[k] viewed [outer, cols_k], side by side.
function concat(parts, outer) {
  const cols = parts.map((p) => p.length / outer);
  const total = cols.reduce((a, b) => a + b, 0);
  const out = new Float64Array(outer * total);
  for (let r = 0; r < outer; r++) {
    let at = 0;
    parts.forEach((p, k) => {
      for (let c = 0; c < cols[k]; c++) out[r * total + at + c] = p[r * cols[k] + c];
      at += cols[k];
    });
  }
  return out;
}

function embedding(weight, ids, D) {
  const out = new Float64Array(ids.length * D);
  ids.forEach((id, k) => {
    for (let d = 0; d < D; d++) out[k * D + d] = weight[id * D + d];
  });
  return out;
}

function embeddingBackward(dy, ids, V, D, paddingIdx) {
  const dw = new Float64Array(V * D);
  ids.forEach((id, k) => {
    if (id === paddingIdx) return;
    for (let d = 0; d < D; d++) dw[id * D + d] += dy[k * D + d];
  });
  return dw;
}

// Inverted dropout: x / (1 − p) where the draw u_i >= p (p as float32, like the kernels), else 0.
function dropout(x, p, seed) {
  const pf = Math.fround(p);
  return map(x, (v, i) => (dropoutUniform(seed, 0, i) >= pf ? v / (1 - pf) : 0));
}

module.exports = { ACTIVATIONS, activation, activationBackward, broadcast, sumAxis, broadcastAxis, concat, embedding, embeddingBackward, dropout };
