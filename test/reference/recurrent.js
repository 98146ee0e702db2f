'use strict';
// Float64 reference of the fused Recurrent op, written from docs/recurrent-semantics.md alone:
// no kernel code, no shared helpers with lib/. Each sequence is run one step at a time with plain
// loops so that every equation of the contract can be read off the code. The backward replays the
// forward with a tape and applies the chain rule step by step; test/10.reference.test.js checks it
// against finite differences.

const GATE_COUNT = { lstm: 4, gru: 3, rnn_tanh: 1, rnn_relu: 1 };

function normalizeConfig(cfg) {
  if (!Object.prototype.hasOwnProperty.call(GATE_COUNT, cfg.mode)) {
    throw new Error(`reference: unknown mode ${cfg.mode}`);
  }
  const c = {
    mode: cfg.mode,
    G: GATE_COUNT[cfg.mode],
    I: cfg.inputSize,
    H: cfg.hiddenSize,
    L: cfg.numLayers ?? 1,
    D: cfg.bidirectional ? 2 : 1,
    skip: (cfg.inputMode ?? 'linear') === 'skip',
    projSize: cfg.projSize ?? 0,
    cellClip: cfg.cellClip ?? 0,
    peepholes: Boolean(cfg.peepholes),
    linearBeforeReset: cfg.linearBeforeReset ?? true,
    batchFirst: Boolean(cfg.batchFirst),
    dropout: cfg.dropout ?? 0,
    seed: cfg.seed ?? 0,
  };
  if (c.mode !== 'lstm' && (c.projSize > 0 || c.peepholes || c.cellClip > 0)) {
    throw new Error('reference: projSize, peepholes and cellClip apply to LSTM only');
  }
  if (c.skip && c.I !== c.H) throw new Error('reference: skip input needs inputSize == hiddenSize');
  c.R = c.projSize > 0 ? c.projSize : c.H;
  return c;
}

function layerInputSize(c, layer) {
  return layer === 0 ? c.I : c.D * c.R;
}

// One entry per (layer, direction), index layer·D + direction; each present kind is
// { offset, rows, cols } (vectors have cols = 1), in packing order.
function offsetsOf(c) {
  const GH = c.G * c.H;
  const slots = [];
  let offset = 0;
  const take = (rows, cols) => {
    const slot = { offset, rows, cols };
    offset += rows * cols;
    return slot;
  };
  for (let l = 0; l < c.L; l++) {
    for (let d = 0; d < c.D; d++) {
      const slot = { layer: l, direction: d };
      if (!(c.skip && l === 0)) slot.w_ih = take(GH, layerInputSize(c, l));
      slot.w_hh = take(GH, c.R);
      slot.b_ih = take(GH, 1);
      slot.b_hh = take(GH, 1);
      if (c.projSize > 0) slot.w_proj = take(c.R, c.H);
      if (c.peepholes) slot.w_peephole = take(3 * c.H, 1);
      slots.push(slot);
    }
  }
  return { slots, size: offset };
}

function paramOffsets(cfg) {
  return offsetsOf(normalizeConfig(cfg)).slots;
}

function weightsSize(cfg) {
  return offsetsOf(normalizeConfig(cfg)).size;
}

const PARAM_KINDS = ['w_ih', 'w_hh', 'b_ih', 'b_hh', 'w_proj', 'w_peephole'];

// Views of one (layer, direction)'s parameters inside a flat buffer (weights or their gradients).
function paramViews(buffer, slot) {
  const views = {};
  for (const kind of PARAM_KINDS) {
    const s = slot[kind];
    if (s) views[kind] = buffer.subarray(s.offset, s.offset + s.rows * s.cols);
  }
  return views;
}

// ---- dropout: a port of native/kernels/dropout_hash.h with 64-bit wrap-around via BigInt ----

const MASK64 = (1n << 64n) - 1n;

function mix64(z) {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

function dropoutUniform(seed, layer, index) {
  const seed64 = BigInt.asUintN(64, BigInt(seed));
  const key = mix64((seed64 + 0x9e3779b97f4a7c15n * BigInt(layer + 1)) & MASK64) ^ BigInt(index);
  return Number(mix64(key) >> 40n) / 16777216;
}

// Multiplier per element of layer `layer`'s sequence-major output: 0 or 1/(1-p). The draw is
// compared with p rounded to float32 because the kernels hold p as a float.
function dropoutMask(c, layer, length) {
  const p = Math.fround(c.dropout);
  const scale = 1 / (1 - c.dropout);
  const mask = new Float64Array(length);
  for (let idx = 0; idx < length; idx++) {
    mask[idx] = dropoutUniform(c.seed, layer, idx) >= p ? scale : 0;
  }
  return mask;
}

// ---- small dense helpers (row-major matrices) ----

// out[r] += Σ_k M[r, k] v[k]
function addMatVec(out, M, rows, cols, v) {
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let k = 0; k < cols; k++) sum += M[r * cols + k] * v[k];
    out[r] += sum;
  }
}

// out[k] += Σ_r M[r, k] u[r]
function addMatTVec(out, M, rows, cols, u) {
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < cols; k++) out[k] += M[r * cols + k] * u[r];
  }
}

// M[r, k] += u[r] v[k]
function addOuter(M, rows, cols, u, v) {
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < cols; k++) M[r * cols + k] += u[r] * v[k];
  }
}

function addInto(out, v) {
  for (let k = 0; k < v.length; k++) out[k] += v[k];
}

const sigmoid = (v) => 1 / (1 + Math.exp(-v));

// ---- the input term shared by every cell: b_ih + W_ih x, or b_ih + x per gate (skip input) ----

function inputTerm(c, layer, p, x) {
  const GH = c.G * c.H;
  const a = Float64Array.from(p.b_ih);
  if (c.skip && layer === 0) {
    for (let k = 0; k < c.G; k++) for (let j = 0; j < c.H; j++) a[k * c.H + j] += x[j];
  } else {
    addMatVec(a, p.w_ih, GH, x.length, x);
  }
  return a;
}

function inputTermBackward(c, layer, p, g, x, da, dx) {
  const GH = c.G * c.H;
  addInto(g.b_ih, da);
  if (c.skip && layer === 0) {
    for (let k = 0; k < c.G; k++) for (let j = 0; j < c.H; j++) dx[j] += da[k * c.H + j];
  } else {
    addOuter(g.w_ih, GH, x.length, da, x);
    addMatTVec(dx, p.w_ih, GH, x.length, da);
  }
}

// ---- cells: forward returns the step record (new state plus what the backward needs) ----

function lstmStep(c, layer, p, x, hPrev, cPrev) {
  const H = c.H;
  const a = inputTerm(c, layer, p, x);
  addInto(a, p.b_hh);
  addMatVec(a, p.w_hh, 4 * H, c.R, hPrev);
  const peep = (gate, j) => (c.peepholes ? p.w_peephole[gate * H + j] : 0);
  const s = {
    x, hPrev, cPrev,
    i: new Float64Array(H), f: new Float64Array(H), g: new Float64Array(H), o: new Float64Array(H),
    cRaw: new Float64Array(H), c: new Float64Array(H), tanhC: new Float64Array(H),
    m: new Float64Array(H), h: null,
  };
  for (let j = 0; j < H; j++) {
    s.i[j] = sigmoid(a[j] + peep(0, j) * cPrev[j]);
    s.f[j] = sigmoid(a[H + j] + peep(1, j) * cPrev[j]);
    s.g[j] = Math.tanh(a[2 * H + j]);
    s.cRaw[j] = s.f[j] * cPrev[j] + s.i[j] * s.g[j];
    s.c[j] = c.cellClip > 0 ? Math.min(c.cellClip, Math.max(-c.cellClip, s.cRaw[j])) : s.cRaw[j];
    s.o[j] = sigmoid(a[3 * H + j] + peep(2, j) * s.c[j]);
    s.tanhC[j] = Math.tanh(s.c[j]);
    s.m[j] = s.o[j] * s.tanhC[j];
  }
  if (c.projSize > 0) {
    s.h = new Float64Array(c.R);
    addMatVec(s.h, p.w_proj, c.R, H, s.m);
  } else {
    s.h = s.m;
  }
  return s;
}

function lstmStepBackward(c, layer, p, g, s, dh, dc, dx) {
  const H = c.H;
  let dm = dh;
  if (c.projSize > 0) {
    dm = new Float64Array(H);
    addMatTVec(dm, p.w_proj, c.R, H, dh);
    addOuter(g.w_proj, c.R, H, dh, s.m);
  }
  const da = new Float64Array(4 * H);
  const dcPrev = new Float64Array(H);
  for (let j = 0; j < H; j++) {
    const i = s.i[j];
    const f = s.f[j];
    const o = s.o[j];
    const gg = s.g[j];
    const tc = s.tanhC[j];
    const dao = dm[j] * tc * o * (1 - o);
    let dcNew = dc[j] + dm[j] * o * (1 - tc * tc);
    if (c.peepholes) {
      dcNew += dao * p.w_peephole[2 * H + j];
      g.w_peephole[2 * H + j] += dao * s.c[j];
    }
    // cuDNN clipping: a clipped element passes no gradient to anything before the clamp.
    const clipped = c.cellClip > 0 && Math.abs(s.cRaw[j]) > c.cellClip;
    const dcRaw = clipped ? 0 : dcNew;
    const dai = dcRaw * gg * i * (1 - i);
    const daf = dcRaw * s.cPrev[j] * f * (1 - f);
    const dag = dcRaw * i * (1 - gg * gg);
    dcPrev[j] = dcRaw * f;
    if (c.peepholes) {
      dcPrev[j] += dai * p.w_peephole[j] + daf * p.w_peephole[H + j];
      g.w_peephole[j] += dai * s.cPrev[j];
      g.w_peephole[H + j] += daf * s.cPrev[j];
    }
    da[j] = dai;
    da[H + j] = daf;
    da[2 * H + j] = dag;
    da[3 * H + j] = dao;
  }
  const dhPrev = new Float64Array(c.R);
  addInto(g.b_hh, da);
  addOuter(g.w_hh, 4 * H, c.R, da, s.hPrev);
  addMatTVec(dhPrev, p.w_hh, 4 * H, c.R, da);
  inputTermBackward(c, layer, p, g, s.x, da, dx);
  return { dh: dhPrev, dc: dcPrev };
}

function gruStep(c, layer, p, x, hPrev) {
  const H = c.H;
  const gi = inputTerm(c, layer, p, x);
  // Recurrent terms of r and z: rows [0, 2H) of W_hh and b_hh.
  const ghRZ = Float64Array.from(p.b_hh.subarray(0, 2 * H));
  addMatVec(ghRZ, p.w_hh.subarray(0, 2 * H * H), 2 * H, H, hPrev);
  const s = {
    x, hPrev,
    r: new Float64Array(H), z: new Float64Array(H), n: new Float64Array(H),
    ghN: Float64Array.from(p.b_hh.subarray(2 * H)), rh: null, h: new Float64Array(H),
  };
  for (let j = 0; j < H; j++) {
    s.r[j] = sigmoid(gi[j] + ghRZ[j]);
    s.z[j] = sigmoid(gi[H + j] + ghRZ[H + j]);
  }
  const wHN = p.w_hh.subarray(2 * H * H);
  if (c.linearBeforeReset) {
    addMatVec(s.ghN, wHN, H, H, hPrev);
    for (let j = 0; j < H; j++) s.n[j] = Math.tanh(gi[2 * H + j] + s.r[j] * s.ghN[j]);
  } else {
    s.rh = new Float64Array(H);
    for (let j = 0; j < H; j++) s.rh[j] = s.r[j] * hPrev[j];
    addMatVec(s.ghN, wHN, H, H, s.rh);
    for (let j = 0; j < H; j++) s.n[j] = Math.tanh(gi[2 * H + j] + s.ghN[j]);
  }
  for (let j = 0; j < H; j++) s.h[j] = (1 - s.z[j]) * s.n[j] + s.z[j] * hPrev[j];
  return s;
}

function gruStepBackward(c, layer, p, g, s, dh, dx) {
  const H = c.H;
  const dgi = new Float64Array(3 * H);
  const dghRZ = new Float64Array(2 * H);
  const dghN = new Float64Array(H);
  const dr = new Float64Array(H);
  const dhPrev = new Float64Array(H);
  const wHN = p.w_hh.subarray(2 * H * H);
  const gWHN = g.w_hh.subarray(2 * H * H);
  for (let j = 0; j < H; j++) {
    const z = s.z[j];
    const n = s.n[j];
    dhPrev[j] = dh[j] * z;
    const dan = dh[j] * (1 - z) * (1 - n * n);
    dgi[2 * H + j] = dan;
    dghRZ[H + j] = dh[j] * (s.hPrev[j] - n) * z * (1 - z);
    if (c.linearBeforeReset) {
      dghN[j] = dan * s.r[j];
      dr[j] = dan * s.ghN[j];
    } else {
      dghN[j] = dan;
    }
  }
  if (c.linearBeforeReset) {
    addOuter(gWHN, H, H, dghN, s.hPrev);
    addMatTVec(dhPrev, wHN, H, H, dghN);
  } else {
    addOuter(gWHN, H, H, dghN, s.rh);
    const drh = new Float64Array(H);
    addMatTVec(drh, wHN, H, H, dghN);
    for (let j = 0; j < H; j++) {
      dr[j] = drh[j] * s.hPrev[j];
      dhPrev[j] += drh[j] * s.r[j];
    }
  }
  for (let j = 0; j < H; j++) dghRZ[j] = dr[j] * s.r[j] * (1 - s.r[j]);
  addInto(g.b_hh.subarray(0, 2 * H), dghRZ);
  addInto(g.b_hh.subarray(2 * H), dghN);
  addOuter(g.w_hh.subarray(0, 2 * H * H), 2 * H, H, dghRZ, s.hPrev);
  addMatTVec(dhPrev, p.w_hh.subarray(0, 2 * H * H), 2 * H, H, dghRZ);
  dgi.set(dghRZ, 0);
  inputTermBackward(c, layer, p, g, s.x, dgi, dx);
  return { dh: dhPrev, dc: null };
}

function rnnStep(c, layer, p, x, hPrev) {
  const a = inputTerm(c, layer, p, x);
  addInto(a, p.b_hh);
  addMatVec(a, p.w_hh, c.H, c.H, hPrev);
  const h = a.map((v) => (c.mode === 'rnn_relu' ? Math.max(0, v) : Math.tanh(v)));
  return { x, hPrev, a, h };
}

function rnnStepBackward(c, layer, p, g, s, dh, dx) {
  const da = new Float64Array(c.H);
  for (let j = 0; j < c.H; j++) {
    da[j] = dh[j] * (c.mode === 'rnn_relu' ? (s.a[j] > 0 ? 1 : 0) : 1 - s.h[j] * s.h[j]);
  }
  const dhPrev = new Float64Array(c.H);
  addInto(g.b_hh, da);
  addOuter(g.w_hh, c.H, c.H, da, s.hPrev);
  addMatTVec(dhPrev, p.w_hh, c.H, c.H, da);
  inputTermBackward(c, layer, p, g, s.x, da, dx);
  return { dh: dhPrev, dc: null };
}

function cellStep(c, layer, p, x, h, cell) {
  if (c.mode === 'lstm') return lstmStep(c, layer, p, x, h, cell);
  if (c.mode === 'gru') return gruStep(c, layer, p, x, h);
  return rnnStep(c, layer, p, x, h);
}

function cellStepBackward(c, layer, p, g, s, dh, dc, dx) {
  if (c.mode === 'lstm') return lstmStepBackward(c, layer, p, g, s, dh, dc, dx);
  if (c.mode === 'gru') return gruStepBackward(c, layer, p, g, s, dh, dx);
  return rnnStepBackward(c, layer, p, g, s, dh, dx);
}

// ---- layouts ----

// [T, B, F] or [B, T, F] → a sequence-major Float64Array copy.
function toSequenceMajor(a, T, B, F, batchFirst) {
  const out = new Float64Array(T * B * F);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      const src = (batchFirst ? b * T + t : t * B + b) * F;
      for (let k = 0; k < F; k++) out[(t * B + b) * F + k] = a[src + k];
    }
  }
  return out;
}

function fromSequenceMajor(a, T, B, F, batchFirst) {
  if (!batchFirst) return a;
  const out = new Float64Array(T * B * F);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      for (let k = 0; k < F; k++) out[(b * T + t) * F + k] = a[(t * B + b) * F + k];
    }
  }
  return out;
}

function stateSlice(state, index, b, B, size) {
  const out = new Float64Array(size);
  if (state) {
    const start = (index * B + b) * size;
    for (let k = 0; k < size; k++) out[k] = state[start + k];
  }
  return out;
}

function sequenceLengths(seqLengths, T, B) {
  const lens = [];
  for (let b = 0; b < B; b++) {
    const len = seqLengths ? seqLengths[b] : T;
    if (!Number.isInteger(len) || len < 0 || len > T) {
      throw new Error(`reference: seqLengths[${b}] = ${len} is outside 0..${T}`);
    }
    lens.push(len);
  }
  return lens;
}

// Forward direction runs t = 0..len-1; reverse runs t = len-1..0 (each sequence's own last step).
function stepOrder(direction, len) {
  const order = [];
  for (let k = 0; k < len; k++) order.push(direction === 0 ? k : len - 1 - k);
  return order;
}

// The whole forward, keeping every step record: tape[l] = { input, mask, steps[d][b] }.
function forwardWithTape(c, inputs) {
  const { T, B } = inputs;
  const lens = sequenceLengths(inputs.seqLengths, T, B);
  const W = Float64Array.from(inputs.weights);
  const { slots, size } = offsetsOf(c);
  if (W.length !== size) throw new Error(`reference: weights has ${W.length} values, expected ${size}`);
  const isLstm = c.mode === 'lstm';
  const hy = new Float64Array(c.L * c.D * B * c.R);
  const cy = isLstm ? new Float64Array(c.L * c.D * B * c.H) : null;
  const tape = [];
  let layerInput = toSequenceMajor(inputs.x, T, B, c.I, c.batchFirst);
  for (let l = 0; l < c.L; l++) {
    const inSize = layerInputSize(c, l);
    const outSize = c.D * c.R;
    const out = new Float64Array(T * B * outSize);
    const steps = [];
    for (let d = 0; d < c.D; d++) {
      const stateIndex = l * c.D + d;
      const p = paramViews(W, slots[stateIndex]);
      steps.push([]);
      for (let b = 0; b < B; b++) {
        let h = stateSlice(inputs.hx, stateIndex, b, B, c.R);
        let cell = isLstm ? stateSlice(inputs.cx, stateIndex, b, B, c.H) : null;
        const records = [];
        for (const t of stepOrder(d, lens[b])) {
          const x = layerInput.subarray((t * B + b) * inSize, (t * B + b + 1) * inSize);
          const s = cellStep(c, l, p, x, h, cell);
          s.t = t;
          records.push(s);
          out.set(s.h, (t * B + b) * outSize + d * c.R);
          h = s.h;
          cell = isLstm ? s.c : null;
        }
        steps[d].push(records);
        hy.set(h, (stateIndex * B + b) * c.R);
        if (isLstm) cy.set(cell, (stateIndex * B + b) * c.H);
      }
    }
    let mask = null;
    if (l < c.L - 1 && inputs.dropoutOn && c.dropout > 0) {
      mask = dropoutMask(c, l, out.length);
      for (let k = 0; k < out.length; k++) out[k] *= mask[k];
    }
    tape.push({ input: layerInput, mask, steps });
    layerInput = out;
  }
  const y = fromSequenceMajor(layerInput, T, B, c.D * c.R, c.batchFirst);
  return { y, hy, cy, tape, W, slots, lens };
}

/**
 * Forward of the Recurrent op in float64.
 * cfg: { mode, inputSize, hiddenSize, numLayers, bidirectional, inputMode, projSize, cellClip,
 *        peepholes, linearBeforeReset, batchFirst, dropout, seed }
 * inputs: { x, hx?, cx?, seqLengths?, weights, T, B, dropoutOn? }
 * Returns { y, hy, cy } as Float64Arrays (cy is null unless LSTM).
 */
function recurrentForward(cfg, inputs) {
  const { y, hy, cy } = forwardWithTape(normalizeConfig(cfg), inputs);
  return { y, hy, cy };
}

/**
 * Gradients of L = Σ dy⊙y + Σ dhy⊙hy + Σ dcy⊙cy with respect to x, hx, cx and the packed
 * weights; grads = { dy?, dhy?, dcy? } (absent ones are zero).
 * Returns { dx, dhx, dcx, dweights } as Float64Arrays (dcx is null unless LSTM).
 */
function recurrentBackward(cfg, inputs, grads = {}) {
  const c = normalizeConfig(cfg);
  const { T, B } = inputs;
  const { tape, W, slots } = forwardWithTape(c, inputs);
  const isLstm = c.mode === 'lstm';
  const dW = new Float64Array(W.length);
  const dhx = new Float64Array(c.L * c.D * B * c.R);
  const dcx = isLstm ? new Float64Array(c.L * c.D * B * c.H) : null;
  const outSize = c.D * c.R;
  let dOut = grads.dy
    ? toSequenceMajor(grads.dy, T, B, outSize, c.batchFirst)
    : new Float64Array(T * B * outSize);
  let dx = null;
  for (let l = c.L - 1; l >= 0; l--) {
    const inSize = layerInputSize(c, l);
    const dIn = new Float64Array(T * B * inSize);
    for (let d = 0; d < c.D; d++) {
      const stateIndex = l * c.D + d;
      const p = paramViews(W, slots[stateIndex]);
      const g = paramViews(dW, slots[stateIndex]);
      for (let b = 0; b < B; b++) {
        let dh = stateSlice(grads.dhy, stateIndex, b, B, c.R);
        let dc = isLstm ? stateSlice(grads.dcy, stateIndex, b, B, c.H) : null;
        const records = tape[l].steps[d][b];
        for (let k = records.length - 1; k >= 0; k--) {
          const s = records[k];
          const outStart = (s.t * B + b) * outSize + d * c.R;
          const dhTotal = Float64Array.from(dh);
          for (let j = 0; j < c.R; j++) dhTotal[j] += dOut[outStart + j];
          const dxStep = dIn.subarray((s.t * B + b) * inSize, (s.t * B + b + 1) * inSize);
          const back = cellStepBackward(c, l, p, g, s, dhTotal, dc, dxStep);
          dh = back.dh;
          dc = back.dc;
        }
        dhx.set(dh, (stateIndex * B + b) * c.R);
        if (isLstm) dcx.set(dc, (stateIndex * B + b) * c.H);
      }
    }
    if (l > 0) {
      // The layer below produced this layer's input through the dropout mask (if any).
      const mask = tape[l - 1].mask;
      if (mask) for (let k = 0; k < dIn.length; k++) dIn[k] *= mask[k];
      dOut = dIn;
    } else {
      dx = fromSequenceMajor(dIn, T, B, c.I, c.batchFirst);
    }
  }
  return { dx, dhx, dcx, dweights: dW };
}

module.exports = {
  recurrentForward,
  recurrentBackward,
  weightsSize,
  paramOffsets,
  dropoutUniform,
  mix64,
};
