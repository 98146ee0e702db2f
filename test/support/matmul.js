'use strict';
// The float64 matmul reference: C = op(A) · op(B) for row-major A (M×K, or K×M transposed) and
// B (K×N, or N×K transposed), with the sum of |a·b| per element as the float32 error bound.
function matmulReference(a, b, M, N, K, transA = false, transB = false) {
  const c = new Float64Array(M * N);
  const bound = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      const x = transA ? a[k * M + m] : a[m * K + k];
      const row = m * N;
      for (let n = 0; n < N; n++) {
        const p = x * (transB ? b[n * K + k] : b[k * N + n]);
        c[row + n] += p;
        bound[row + n] += Math.abs(p);
      }
    }
  }
  return { c, bound };
}

module.exports = { matmulReference };

/** ref with c0 added to every element (an accumulating product), bound included. */
function withAccumulate(ref, c0) {
  const c = Float64Array.from(ref.c, (v, i) => v + c0[i]);
  const bound = Float64Array.from(ref.bound, (v, i) => v + Math.abs(c0[i]));
  return { c, bound };
}

module.exports.withAccumulate = withAccumulate;
