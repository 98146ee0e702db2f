'use strict';
// onnxruntime-node as a bench peer for GEMM and RMSNorm forward (inference, CPU execution
// provider): each call builds a one-op model with bench/peers/onnx-model.js (weights / gamma /
// beta as constant initializers), creates a session with the caller's thread count, checks one
// run against the caller's expected output, then times sess.run with the caller's measure().
// Bench only; not part of the library.

const { matmulModel, rmsnormModel, RMSNORM_VARIANTS } = require('./onnx-model');

const MISSING = 'missing: ONNXRUNTIME_NODE_INSTALL=skip npm install --save-dev onnxruntime-node';

/**
 * MatMul on a [K, N] initializer and Gemm (transB attribute) ran within noise of each other in our
 * runs (ORT prepacks the constant B for both); MatMul is the plainer graph. See matmulModel.
 */
const GEMM_VARIANT = 'matmul';

/** The onnxruntime-node module, or null when it is not installed (or fails to load). */
function load() {
  try {
    return require('onnxruntime-node');
  } catch (err) {
    return null;
  }
}

function sessionOptions(threads) {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
}

/** max |got − want| / max |want| (0-scale guarded). */
function relDiff(got, want) {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
  }
  return diff / (scale || 1);
}

/** Checks one run against `expected`, then times sess.run(feeds); releases the session. */
async function checkAndTime(sess, feeds, expected, tol, variant, measure, timing) {
  try {
    const out = (await sess.run(feeds)).y;
    if (!out || out.data.length !== expected.length) {
      return { error: `onnxruntime (${variant}): output has ${out ? out.data.length : 0} elements, expected ${expected.length}` };
    }
    const diff = relDiff(out.data, expected);
    if (!(diff < tol)) {
      return { error: `onnxruntime (${variant}): output differs by ${diff.toExponential(2)} (relative, tolerance ${tol}); not timed` };
    }
    const t = await measure(() => sess.run(feeds), timing);
    return { median: t.median, min: t.min, max: t.max, spread: t.spread, samples: t.samples, variant };
  } catch (err) {
    return { error: `onnxruntime (${variant}): ${err.message}` };
  } finally {
    await sess.release();
  }
}

/**
 * Y [M, N] = A [M, K] · op(B) with B constant (an initializer), as in inference; `b` is [N, K] when
 * transB, else [K, N]. `variant` ('matmul' | 'gemm', see matmulModel) defaults to GEMM_VARIANT.
 * Returns measure()'s timing plus `variant`, or { error }.
 */
async function gemm(ort, { M, N, K, transB = false, a, b, expected, tol = 1e-4, variant = GEMM_VARIANT },
  { threads, measure, timing }) {
  let sess;
  try {
    sess = await ort.InferenceSession.create(matmulModel({ M, N, K, transB, b, variant }), sessionOptions(threads));
  } catch (err) {
    return { error: `onnxruntime (${variant}): ${err.message}` };
  }
  const feeds = { a: new ort.Tensor('float32', a, [M, K]) };
  return checkAndTime(sess, feeds, expected, tol, variant, measure, timing);
}

/**
 * RMSNorm forward over the last axis of x [rows, cols] (gamma, beta [cols]; beta may be null).
 * Tries the variants of rmsnormModel fastest first (or only `variant` when given) and times the
 * first one onnxruntime accepts; `rejected` lists the ones it refused. Returns measure()'s timing
 * plus `variant`, or { error }.
 */
async function rmsnorm(ort, { rows, cols, x, gamma, beta = null, eps = 1e-6, expectedY, tol = 1e-4, variant },
  { threads, measure, timing }) {
  const rejected = [];
  for (const v of variant ? [variant] : RMSNORM_VARIANTS) {
    let sess;
    try {
      sess = await ort.InferenceSession.create(rmsnormModel({ rows, cols, gamma, beta, eps, variant: v }), sessionOptions(threads));
    } catch (err) {
      rejected.push(`${v}: ${err.message.split('\n')[0]}`);
      continue;
    }
    const feeds = { x: new ort.Tensor('float32', x, [rows, cols]) };
    const r = await checkAndTime(sess, feeds, expectedY, tol, v, measure, timing);
    return rejected.length ? { ...r, rejected } : r;
  }
  return { error: `onnxruntime rejected every RMSNorm model: ${rejected.join('; ')}` };
}

module.exports = { MISSING, load, gemm, rmsnorm };
