'use strict';
// TensorFlow.js peer of the bench families (gemm, recurrent, rmsnorm, train): the same work written
// the way a TF.js user would write it, run on TF.js's `cpu` backend (plain JavaScript kernels, one
// thread) and on its `wasm` backend (XNNPACK compiled to WebAssembly; SIMD build when the runtime
// validates SIMD; see load() for threads). Bench only; not part of the library.
//
// How each figure is measured:
//  - Every timing function switches to the backend, builds its input tensors once, runs the work
//    once and checks the output against the caller's expected values (max |diff| / max |expected|
//    below `tol`, default 1e-4; otherwise it returns { error } and times nothing), then runs it
//    once more: when that single call takes longer than `budgetMs` (default 2000) it returns that
//    one sample with budgetExceeded: true; else the caller's measure(fn, timing) times it.
//  - The timed fn does the whole call a user pays for: the ops, reading the result back to JS
//    (dataSync(), which on wasm copies the output out of the wasm heap) and disposing every tensor
//    it made. tf.memory().numTensors is compared before and after timing; a leak is an error.
//  - gemm: tf.matMul(a, b, false, transB), a and b tensors made once (opts.pretransposeB: B made
//    [K, N] once and the plain product timed; wasm only runs that one in XNNPACK, whose packed B
//    is cached on the tensor and reused by every call).
//  - lstmInference: 'cell-loop' by default, the fastest of three ways measured with this file on
//    both backends (override with opts.method): 'cell-loop' (tf.basicLSTMCell per step, kernel
//    [I+H, 4H] in its i j f o gate order, forget bias 0), 'ops-loop' (per step
//    tf.fused.matMul(x_t, W_ih^T, bias) + matMul(h, W_hh^T), tf.split, sigmoid / tanh) and 'layers'
//    (tf.layers.lstm, recurrentActivation 'sigmoid', returnSequences, model.predict). The loops
//    take x split into its T steps [B, I] and stack the outputs to [T, B, H]; the layer takes x
//    batch-major [B, T, I]. That split / transpose of x is done once outside the timed call (and
//    the layer's output is transposed back only for the check). Weights are converted once from
//    rnnkit's layout (gate order i f g o, w_ih [4H, I], w_hh [4H, H], b = b_ih + b_hh).
//  - rmsnorm: x · rsqrt(mean(x², last axis) + eps) · gamma + beta in tf.tidy.
//  - rmsnormBackward: dx = tf.grad(f)(x, dy), the vector-Jacobian product of the forward above
//    with dy (the gradient of sum(f(x) · dy) with respect to x, without the extra mul and sum).
//  - trainStep: one-hot x [B, T, V] (made once) -> L x tf.layers.lstm(H, returnSequences,
//    recurrentActivation 'sigmoid') -> dense(V); tf.losses.softmaxCrossEntropy over all B·T
//    positions; tf.variableGrads, global-norm clipping at 5, tf.train.adam(1e-3).applyGradients,
//    all in one tf.tidy; the loss is read back. No output check (different initialization): the
//    first step's loss must be finite and near ln(V).

const MISSING = 'missing: npm install --save-dev @tensorflow/tfjs @tensorflow/tfjs-backend-wasm';
const DEFAULT_TOL = 1e-4;
const DEFAULT_BUDGET_MS = 2000;

// LSTM inference method per backend: the fastest of the three on a 2-core Zen 3 (Node 20, tfjs
// 4.22.0) at T=16 B=8 I=H=64 and T=64 B=32 I=H=256, methods interleaved in one process. cpu:
// cell-loop 6.1 s, layers 6.2-6.6 s, ops-loop 6.9 s at the larger shape (all within noise at the
// smaller); wasm: cell-loop and ops-loop tie at the larger shape (~150 ms), layers ~170 ms;
// cell-loop ahead at the smaller (2.6-2.8 vs 3.2-3.7 ms).
const LSTM_METHOD = { cpu: 'cell-loop', wasm: 'cell-loop' };

const WASM_THREADS_NOTE = 'tfjs-backend-wasm runs single-threaded under Node: its WASM_HAS_MULTITHREAD_SUPPORT '
  + 'flag is false there (tfjs issue #3830), and forcing the threaded build fails because Node\'s worker_threads '
  + 'cannot start the blob: worker script it makes';

let state = null; // the result of the first load()

function nowMs() {
  return Number(process.hrtime.bigint()) / 1e6;
}

function errorText(err) {
  return err && err.message ? err.message : String(err);
}

/**
 * Loads TF.js and both backends once (later calls return the same result). `threads` is asked of
 * the wasm backend (setThreadsCount before it starts); backends.wasm.threads is what it reports.
 */
async function load({ threads } = {}) {
  if (state) return state;
  let tf;
  try {
    tf = require('@tensorflow/tfjs');
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND') return { missing: MISSING };
    throw err;
  }
  const backends = {};

  // The cpu backend prints a "Hi, looks like you are running TensorFlow.js in Node.js" banner on
  // its first tensor (through tfjs's warn(), which production mode silences). Start the backend
  // and make that first tensor with PROD set, then put the flag back so other warnings still show.
  const prod = tf.env().getBool('PROD');
  try {
    tf.env().set('PROD', true);
    if (await tf.setBackend('cpu')) {
      tf.scalar(0).dispose();
      backends.cpu = { ok: true, threads: 1 };
    } else {
      backends.cpu = { ok: false, reason: 'tf.setBackend(\'cpu\') failed' };
    }
  } catch (err) {
    backends.cpu = { ok: false, reason: errorText(err) };
  } finally {
    tf.env().set('PROD', prod);
  }

  let wasm = null;
  try {
    wasm = require('@tensorflow/tfjs-backend-wasm');
  } catch (err) {
    if (!err || err.code !== 'MODULE_NOT_FOUND') throw err;
    backends.wasm = { ok: false, reason: 'missing: npm install --save-dev @tensorflow/tfjs-backend-wasm' };
  }
  if (wasm) {
    const requested = Number.isInteger(threads) && threads > 0 ? threads : require('os').cpus().length;
    try {
      wasm.setThreadsCount(requested);
      if (await tf.setBackend('wasm')) {
        const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
        const multithread = (await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')) === true;
        const actual = wasm.getThreadsCount(); // what XNNPACK's thread pool got
        // The binary the backend picks from these two flags (checked once by watching which .wasm
        // file it reads: tfjs-backend-wasm-simd.wasm on Node 20).
        backends.wasm = {
          ok: true,
          threads: actual,
          simd,
          requestedThreads: requested,
          binary: multithread && simd ? 'tfjs-backend-wasm-threaded-simd.wasm' : simd ? 'tfjs-backend-wasm-simd.wasm' : 'tfjs-backend-wasm.wasm',
          version: wasm.version_wasm,
        };
        if (actual < requested) backends.wasm.note = WASM_THREADS_NOTE;
      } else {
        backends.wasm = { ok: false, reason: 'tf.setBackend(\'wasm\') failed (see the warning above)' };
      }
    } catch (err) {
      backends.wasm = { ok: false, reason: errorText(err) };
    }
  }
  if (backends.cpu.ok) await tf.setBackend('cpu');
  state = { tf, version: tf.version.tfjs, backends };
  return state;
}

/** Switches TF.js to `backend`; returns the module or throws with the reason. */
async function use(backend) {
  const s = state || await load({});
  if (s.missing) throw new Error(s.missing);
  const info = s.backends[backend];
  if (!info) throw new Error(`unknown TF.js backend '${backend}' (cpu | wasm)`);
  if (!info.ok) throw new Error(`TF.js ${backend} backend unavailable: ${info.reason}`);
  if (s.tf.getBackend() !== backend && !(await s.tf.setBackend(backend))) throw new Error(`tf.setBackend('${backend}') failed`);
  return s.tf;
}

/** max |got - expected| / max |expected| (NaN or a length mismatch gives Infinity). */
function relDiff(got, expected) {
  if (got.length !== expected.length) return Infinity;
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - expected[i]);
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : d;
    const e = Math.abs(expected[i]);
    if (e > maxRef) maxRef = e;
  }
  return maxRef > 0 ? maxDiff / maxRef : maxDiff;
}

function differs(rel, tol) {
  return { error: `output differs from the expected values (rel ${rel.toExponential(2)} >= tol ${tol})` };
}

/**
 * The budget run and the caller's measure, with the tensor count checked across both.
 * `fn` must read its result back and dispose every tensor it makes.
 */
async function timeIt(tf, fn, { measure, timing, budgetMs = DEFAULT_BUDGET_MS } = {}) {
  if (typeof measure !== 'function') throw new Error('no measure(fn, timing) given');
  const before = tf.memory().numTensors;
  const t0 = nowMs();
  await fn();
  const t = nowMs() - t0;
  let result;
  if (t > budgetMs) {
    result = { median: t, min: t, max: t, spread: 0, samples: [t], budgetExceeded: true };
  } else {
    result = await measure(fn, timing);
  }
  const leaked = tf.memory().numTensors - before;
  if (leaked !== 0) return { error: `tensors leaked while timing: tf.memory().numTensors grew by ${leaked}` };
  return result;
}

/**
 * The check-then-time sequence of every timing function: one run of fn checked against `expected`
 * (after `view` reorders its output, when given; no check when expected is null), then timeIt.
 * Returns { error } on a mismatch or a leak, else the timing with `rel` (the checked difference).
 */
async function checkThenTime(tf, fn, expected, tol, opts, view = (v) => v) {
  let rel;
  if (expected) {
    rel = relDiff(view(fn()), expected);
    if (!(rel < tol)) return differs(rel, tol);
  } else {
    fn();
  }
  const m = await timeIt(tf, fn, opts);
  return m.error ? m : { ...m, rel };
}

/**
 * Runs body(tf, track) on `backend`; tensors registered with track() are disposed afterwards,
 * and any error becomes { error }.
 */
async function withBackend(backend, body) {
  const owned = [];
  const track = (t) => {
    owned.push(t);
    return t;
  };
  let tf;
  try {
    tf = await use(backend);
    const out = await body(tf, track);
    return { backend, ...out };
  } catch (err) {
    return { error: `tfjs ${backend}: ${errorText(err)}` };
  } finally {
    for (const t of owned) if (t && !t.isDisposed) t.dispose();
  }
}

function tolOf(...sources) {
  for (const s of sources) if (s && typeof s.tol === 'number') return s.tol;
  return DEFAULT_TOL;
}

/**
 * C[M, N] = A[M, K] · op(B), B being [N, K] when transB, else [K, N]: tf.matMul(a, b, false, transB).
 * With opts.pretransposeB (and transB), B is transposed to [K, N] once outside the timed call and
 * the plain product is timed: on wasm only the untransposed product runs in XNNPACK.
 */
async function gemm(backend, { M, N, K, transB = false, a, b, expected, tol }, opts) {
  const t = tolOf({ tol }, opts);
  const pre = transB && !!(opts && opts.pretransposeB);
  return withBackend(backend, async (tf, track) => {
    const ta = track(tf.tensor2d(a, [M, K]));
    const tb = track(pre ? tf.tensor2d(transpose2d(b, N, K), [K, N]) : tf.tensor2d(b, transB ? [N, K] : [K, N]));
    const tr = transB && !pre;
    const fn = () => {
      const c = tf.matMul(ta, tb, false, tr);
      const v = c.dataSync();
      c.dispose();
      return v;
    };
    const m = await checkThenTime(tf, fn, expected, t, opts);
    if (m.error) return m;
    const method = pre ? 'matMul(a, b_KN) (B transposed once outside the timed call)' : `matMul(a, b, false, ${tr})`;
    const out = { ...m, method };
    if (backend === 'wasm') {
      out.note = tr ? 'wasm runs transposeB in its scalar blocked loop, not XNNPACK'
        : 'wasm runs this in XNNPACK, which packs B once and caches it on B\'s tensor';
    }
    return out;
  });
}

/** [rows, cols] row-major -> [cols, rows] row-major. */
function transpose2d(src, rows, cols) {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c];
  return out;
}

/** [T, B, F] <-> [B, T, F]: swaps the first two axes. */
function swap01(src, n0, n1, F) {
  const out = new Float32Array(n0 * n1 * F);
  for (let i = 0; i < n0; i++) {
    for (let j = 0; j < n1; j++) out.set(src.subarray((i * n1 + j) * F, (i * n1 + j + 1) * F), (j * n0 + i) * F);
  }
  return out;
}

/**
 * The three LSTM inference ways. Each builds its tensors once (registered with track) and returns
 * { run: () => y tensor ([T, B, H], or [B, T, H] when batchMajor), batchMajor?, note? }.
 */
const lstmMethods = {
  // Plain ops per step: gates = x_t·W_ih^T + b (tf.fused.matMul) + h·W_hh^T, tf.split, sigmoid / tanh.
  // x is split into its T steps once, outside the timed call: slicing a big tensor inside it is
  // slow on wasm (~4 ms per slice of an 8 MB [T, B, 4H] tensor), which rules out projecting all
  // T inputs in one matMul and slicing the result.
  'ops-loop'(tf, track, { T, B, I, H, x, wIh, wHh, bias }) {
    const xs = tf.unstack(track(tf.tensor3d(x, [T, B, I]))).map(track);
    const wihT = track(tf.tensor2d(transpose2d(wIh, 4 * H, I), [I, 4 * H]));
    const whhT = track(tf.tensor2d(transpose2d(wHh, 4 * H, H), [H, 4 * H]));
    const b = track(tf.tensor1d(bias));
    const run = () => tf.tidy(() => {
      let h = tf.zeros([B, H]);
      let c = tf.zeros([B, H]);
      const ys = [];
      for (let t = 0; t < T; t++) {
        const a = tf.add(tf.fused.matMul({ a: xs[t], b: wihT, bias: b }), tf.matMul(h, whhT));
        const [ai, af, ag, ao] = tf.split(a, 4, 1);
        c = tf.add(tf.mul(tf.sigmoid(af), c), tf.mul(tf.sigmoid(ai), tf.tanh(ag)));
        h = tf.mul(tf.sigmoid(ao), tf.tanh(c));
        ys.push(h);
      }
      return tf.stack(ys);
    });
    return { run, note: 'x split into its T steps once outside the timed call' };
  },
  // tf.basicLSTMCell per step: kernel [I + H, 4H] on concat(x_t, h), gate blocks in order i j f o
  // (j the candidate), forget bias 0.
  'cell-loop'(tf, track, { T, B, I, H, x, wIh, wHh, bias }) {
    const order = [0, 2, 1, 3]; // basicLSTMCell block k holds rnnkit gate order[k] (i f g o)
    const kernel = new Float32Array((I + H) * 4 * H);
    const b = new Float32Array(4 * H);
    for (let k = 0; k < 4; k++) {
      const g = order[k];
      for (let j = 0; j < H; j++) {
        const row = g * H + j; // row of w_ih / w_hh
        const col = k * H + j; // column of the kernel
        for (let i = 0; i < I; i++) kernel[i * 4 * H + col] = wIh[row * I + i];
        for (let i = 0; i < H; i++) kernel[(I + i) * 4 * H + col] = wHh[row * H + i];
        b[col] = bias[row];
      }
    }
    const tk = track(tf.tensor2d(kernel, [I + H, 4 * H]));
    const tb = track(tf.tensor1d(b));
    const forgetBias = track(tf.scalar(0));
    const xs = tf.unstack(track(tf.tensor3d(x, [T, B, I]))).map(track);
    const run = () => tf.tidy(() => {
      let h = tf.zeros([B, H]);
      let c = tf.zeros([B, H]);
      const ys = [];
      for (let t = 0; t < T; t++) {
        [c, h] = tf.basicLSTMCell(forgetBias, tk, tb, xs[t], c, h);
        ys.push(h);
      }
      return tf.stack(ys);
    });
    return { run, note: 'x split into its T steps once outside the timed call' };
  },
  // Keras-style layer: kernel [I, 4H], recurrentKernel [H, 4H], bias [4H], gate order i f c o
  // (the same blocks as rnnkit's i f g o). Input batch-major [B, T, I].
  layers(tf, track, { T, B, I, H, x, wIh, wHh, bias }) {
    const model = tf.sequential();
    // Zero initializers: setWeights replaces them (and the default orthogonal one is slow in JS).
    model.add(tf.layers.lstm({ units: H, returnSequences: true, recurrentActivation: 'sigmoid', inputShape: [T, I],
      kernelInitializer: 'zeros', recurrentInitializer: 'zeros' }));
    track({ dispose: () => model.dispose(), isDisposed: false });
    const weights = [tf.tensor2d(transpose2d(wIh, 4 * H, I), [I, 4 * H]),
      tf.tensor2d(transpose2d(wHh, 4 * H, H), [H, 4 * H]), tf.tensor1d(bias)];
    model.setWeights(weights);
    weights.forEach((w) => w.dispose());
    const xb = track(tf.tensor3d(swap01(x, T, B, I), [B, T, I])); // once, outside the timed fn
    const run = () => model.predict(xb, { batchSize: B });
    return { run, batchMajor: true, note: 'x transposed to [B, T, I] once outside the timed call' };
  },
};

/** Single-layer unidirectional LSTM inference, h0 = c0 = 0; y [T, B, H]. */
async function lstmInference(backend, { T, B, I, H, x, wIh, wHh, bIh, bHh, expectedY, tol }, opts) {
  const t = tolOf({ tol }, opts);
  const method = (opts && opts.method) || LSTM_METHOD[backend] || 'cell-loop';
  if (!lstmMethods[method]) return { error: `unknown LSTM method '${method}' (${Object.keys(lstmMethods).join(' | ')})` };
  return withBackend(backend, async (tf, track) => {
    const bias = new Float32Array(4 * H);
    for (let i = 0; i < 4 * H; i++) bias[i] = bIh[i] + bHh[i];
    const { run, batchMajor, note } = lstmMethods[method](tf, track, { T, B, I, H, x, wIh, wHh, bias });
    const fn = () => {
      const y = run();
      const v = y.dataSync();
      y.dispose();
      return v;
    };
    const m = await checkThenTime(tf, fn, expectedY, t, opts, (got) => (batchMajor ? swap01(got, B, T, H) : got));
    return m.error ? m : { ...m, method, ...(note ? { note } : {}) };
  });
}

/** The RMSNorm forward as TF.js ops (x [rows, cols]; gamma, beta [cols]; beta may be null). */
function rmsnormOps(tf, x, gamma, beta, eps) {
  const rrms = tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps));
  const y = tf.mul(tf.mul(x, rrms), gamma);
  return beta ? tf.add(y, beta) : y;
}

async function rmsnorm(backend, { rows, cols, x, gamma, beta, eps = 1e-6, expectedY, tol }, opts) {
  const t = tolOf({ tol }, opts);
  return withBackend(backend, async (tf, track) => {
    const tx = track(tf.tensor2d(x, [rows, cols]));
    const tg = track(tf.tensor1d(gamma));
    const tb = beta ? track(tf.tensor1d(beta)) : null;
    const fn = () => {
      const y = tf.tidy(() => rmsnormOps(tf, tx, tg, tb, eps));
      const v = y.dataSync();
      y.dispose();
      return v;
    };
    return checkThenTime(tf, fn, expectedY, t, opts);
  });
}

async function rmsnormBackward(backend, { rows, cols, x, gamma, beta, eps = 1e-6, dy, expectedDx, tol }, opts) {
  const t = tolOf({ tol }, opts);
  return withBackend(backend, async (tf, track) => {
    const tx = track(tf.tensor2d(x, [rows, cols]));
    const tg = track(tf.tensor1d(gamma));
    const tb = beta ? track(tf.tensor1d(beta)) : null;
    const tdy = track(tf.tensor2d(dy, [rows, cols]));
    const grad = tf.grad((xx) => rmsnormOps(tf, xx, tg, tb, eps));
    const fn = () => {
      const dx = tf.tidy(() => grad(tx, tdy));
      const v = dx.dataSync();
      dx.dispose();
      return v;
    };
    return checkThenTime(tf, fn, expectedDx, t, opts);
  });
}

/**
 * Runs body with tfjs-layers' "Orthogonal initializer is being called on a matrix with more than
 * 2000 elements" console.warn filtered out (the default recurrent initializer warns for H >= 23).
 */
function quietOrthogonalWarning(body) {
  const warn = console.warn;
  console.warn = (...args) => {
    if (typeof args[0] === 'string' && args[0].startsWith('Orthogonal initializer is being called')) return;
    warn.apply(console, args);
  };
  try {
    return body();
  } finally {
    console.warn = warn;
  }
}

/** One training step of the demo char model (see the header); ids has T·B + 1 token ids < V. */
async function trainStep(backend, { T, B, V, H, L, ids }, opts) {
  return withBackend(backend, async (tf, track) => {
    const n = T * B;
    // Position (b, t) reads ids[b·T + t] and predicts ids[b·T + t + 1].
    // oneHot is made int32 and cast: the wasm OneHot kernel ignores its dtype argument and writes
    // int32 bits into a float32 tensor (tfjs 4.22).
    const oneHot = (from) => track(tf.tidy(() => tf.oneHot(tf.tensor1d(ids.subarray(from, from + n), 'int32'), V)
      .toFloat().reshape([B, T, V])));
    const x = oneHot(0);
    const y = oneHot(1);
    const model = tf.sequential();
    track({ dispose: () => model.dispose(), isDisposed: false });
    quietOrthogonalWarning(() => {
      for (let l = 0; l < L; l++) {
        // glorotUniform, not the default orthogonal recurrent initializer: its QR takes over a
        // minute on the cpu backend at H = 128 and changes nothing in the timed step.
        model.add(tf.layers.lstm({ units: H, returnSequences: true, recurrentActivation: 'sigmoid', recurrentInitializer: 'glorotUniform',
          ...(l === 0 ? { inputShape: [T, V] } : {}) }));
      }
      model.add(tf.layers.dense({ units: V }));
    });
    const optimizer = tf.train.adam(1e-3);
    track({ dispose: () => optimizer.dispose(), isDisposed: false });
    const fn = () => {
      const loss = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x)));
        const names = Object.keys(grads);
        const norm = tf.sqrt(tf.addN(names.map((k) => tf.sum(tf.square(grads[k])))));
        const scale = tf.minimum(1, tf.div(5, tf.add(norm, 1e-6)));
        const clipped = {};
        for (const k of names) clipped[k] = tf.mul(grads[k], scale);
        optimizer.applyGradients(clipped);
        return value;
      });
      const v = loss.dataSync()[0];
      loss.dispose();
      return v;
    };
    const firstLoss = fn(); // also creates Adam's moment variables, before the tensor count is taken
    const lnV = Math.log(V);
    if (!Number.isFinite(firstLoss) || Math.abs(firstLoss - lnV) > 0.25 * lnV) {
      return { error: `first-step loss ${firstLoss} is not near ln(V) = ${lnV.toFixed(3)}` };
    }
    const m = await timeIt(tf, fn, opts);
    return m.error ? m : { ...m, firstLoss };
  });
}

module.exports = { load, gemm, lstmInference, rmsnorm, rmsnormBackward, trainStep, MISSING, lstmMethods: Object.keys(lstmMethods) };
