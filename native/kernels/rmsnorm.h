// RMSNorm over the last axis of a row-major [rows, cols] float32 matrix (Caffe2's RMSNorm and
// RMSNormGradient; the caller folds all leading axes into `rows` and all normalized axes into
// `cols`).
//
// Forward:  rrms[r] = 1 / sqrt(mean_j x[r,j]^2 + eps)
//           y[r,j]  = x[r,j] * rrms[r] * gamma[j] + beta[j]      (beta == nullptr: no bias)
// Backward: with g = dy * gamma and s[r] = sum_j g[r,j] * x[r,j],
//           dx[r,j]   = rrms[r] * g[r,j] - (1/cols) * rrms[r]^3 * s[r] * x[r,j]
//           dgamma[j] = sum_r dy[r,j] * x[r,j] * rrms[r]
//           dbeta[j]  = sum_r dy[r,j]
//
// Output contract: y, rrms and dx are always overwritten (`=`). dgamma and dbeta are overwritten
// when `accumulate` is false and added to (`+=`) when it is true, so gradients of several
// micro-batches can be summed in place. Any of dx, dgamma, dbeta may be nullptr to skip it.
// Outputs must not alias inputs.
//
// Numerics: row sums (mean of squares, s) and the column sums of dgamma/dbeta are accumulated in
// float over short blocks and in double across blocks, so rows of 65536 and thousands of rows keep
// float32 accuracy (squares are formed in float, so rows whose elements are all below ~1e-19 in
// magnitude lose precision to underflow). Results are deterministic for a given thread count. Non-finite inputs
// propagate: a NaN in a row makes that row's y (and dx) NaN; an Inf makes rrms 0 and the Inf
// element NaN. eps = 0 is allowed (Caffe2's code uses 0, lib/ defaults to 1e-6); an all-zero row
// then has rrms = +Inf and y = NaN (0 * Inf), and its dx is NaN.
//
// Work is spread over the compute pool (parallel.h): over rows when there are enough of them,
// otherwise over column ranges of all rows. Called from inside a pool job, it runs serially.
// Vector code follows active_isa() (cpu_features.h). Outputs of 8 MiB and more are written with
// streaming stores (they bypass the cache). The backward keeps per-thread gradient buffers in
// memory owned by the calling thread between calls (up to threads * cols * 24 bytes).
#pragma once
#include <cstdint>

namespace rnnkit {

void rmsnorm_forward(float* y, float* rrms, const float* x, const float* gamma,
                     const float* beta, int64_t rows, int64_t cols, float eps);

void rmsnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                      const float* gamma, const float* rrms, int64_t rows, int64_t cols,
                      bool accumulate);

}  // namespace rnnkit
