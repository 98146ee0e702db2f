'use strict';
// The matmul case table: shapes [M, N, K] and float32-fit tolerances (relative to the sum of
// |a·b| per element) for the public-API test (05), the SGEMM ISA/thread sweep (06) and the CUDA
// parity test (40). A new shape is one entry here.
const u = 2 ** -24;

module.exports = {
  transposes: [[false, false], [false, true], [true, false], [true, true]],
  // test/05: through matmul / matmulSync, outputs poisoned.
  api: {
    shapes: [[1, 1, 1], [1, 7, 3], [5, 1, 9], [17, 31, 13], [64, 128, 96], [3, 257, 65]],
    accumulate: [9, 11, 5],
    rel: 2e-6,
  },
  // test/06: ones, a single row/column, odd, primes, small-M widths past one register tile, the
  // medium-M route, 300x500x257 (blocked, several row and column tiles per thread) and 66x400x530
  // (blocked with at least 2 K blocks at every derived kc up to 512, a partial row panel, and on
  // AVX-512 two column chunks of the A-in-L1 order with a partial last one; small enough for the
  // sanitizer suite, which skips 300x500x257).
  sgemm: {
    shapes: [[1, 1, 1], [1, 37, 19], [23, 1, 29], [7, 5, 3], [13, 29, 31], [8, 100, 17],
      [61, 67, 71], [97, 131, 263], [300, 500, 257], [66, 400, 530]],
    // Operands full of denormals (the kernels flush them): the dot route of a transposed B, small M, blocked.
    denormals: [[8, 96, 64], [40, 33, 100], [130, 70, 90]],
    // (K + 4) u: the float32 error bound of a K-term dot product plus the update.
    rel: (K) => (K + 4) * u,
  },
  // test/40: small-M (M <= 16), SIMT-tiled, odd edges and K = 0.
  cuda: {
    shapes: [[1, 1, 1], [4, 300, 129], [16, 65, 33], [17, 31, 13], [130, 129, 70], [64, 64, 0]],
    accumulate: [40, 33, 21],
    rel: 1e-5,
    tf32: { shape: [150, 140, 96], rel: 3e-3 },
    cpuTf32: { shape: [2, 2, 3], rel: 2e-6 },
  },
};
