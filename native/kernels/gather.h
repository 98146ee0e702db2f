// Row gathers and block copies of lib/nn: the Embedding lookup and its gradient, and the strided
// copies that concat and its backward are made of.
//
//   embedding_gather       out[k, :] = weight[ids[k], :] for k < n (rows of D floats). Every id
//                          must lie in [0, V) (the binding checks and names the first one that
//                          does not).
//   embedding_scatter_add  dweight[ids[k], :] += dy[k, :] for every k with ids[k] != padding_idx
//                          (padding_idx < 0: none), after zeroing dweight ([V, D]) unless
//                          `accumulate`. Threads own disjoint column ranges and add in ascending
//                          k, so the sums do not depend on the thread count and never race.
//   copy_block             dst[r·dst_ld + c] = src[r·src_ld + c] for r < rows, c < cols.
// Outputs must not alias inputs.
#pragma once
#include <cstdint>

namespace rnnkit {

void embedding_gather(float* out, const float* weight, const int32_t* ids, int64_t n, int64_t D);

void embedding_scatter_add(float* dweight, const float* dy, const int32_t* ids, int64_t n, int64_t V,
                           int64_t D, int64_t padding_idx, bool accumulate);

void copy_block(float* dst, int64_t dst_ld, const float* src, int64_t src_ld, int64_t rows, int64_t cols);

}  // namespace rnnkit
