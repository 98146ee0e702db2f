// Row gathers and block copies of lib/nn (contract in gather.h).
#include "gather.h"

#include <algorithm>
#include <cstring>

#include "parallel.h"

namespace rnnkit {
namespace {

// Below this many floats moved the pool's wake-up costs more than the work.
constexpr int64_t kGrain = 32768;
// Columns per task of the scatter-add: enough to fill a cache line many times over.
constexpr int64_t kScatterColumns = 64;

template <class Fn>
void over_rows(int64_t rows, int64_t row_floats, Fn fn) {
  if (rows <= 0) return;
  if (rows * row_floats < kGrain) {
    fn(int64_t(0), rows);
    return;
  }
  parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(row_floats, 1)), fn);
}

}  // namespace

void embedding_gather(float* out, const float* weight, const int32_t* ids, int64_t n, int64_t D) {
  over_rows(n, D, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) std::memcpy(out + k * D, weight + static_cast<int64_t>(ids[k]) * D, sizeof(float) * D);
  });
}

void embedding_scatter_add(float* dweight, const float* dy, const int32_t* ids, int64_t n, int64_t V,
                           int64_t D, int64_t padding_idx, bool accumulate) {
  if (!accumulate) std::fill(dweight, dweight + V * D, 0.f);
  const int64_t blocks = (D + kScatterColumns - 1) / kScatterColumns;
  auto run = [&](int64_t b, int64_t e) {
    const int64_t c0 = b * kScatterColumns, c1 = std::min(D, e * kScatterColumns);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t row = ids[k];
      if (row == padding_idx) continue;
      float* dst = dweight + row * D;
      const float* src = dy + k * D;
      for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  };
  if (n * D < kGrain || blocks == 1) run(0, blocks);
  else parallel_for(blocks, 1, run);
}

void copy_block(float* dst, int64_t dst_ld, const float* src, int64_t src_ld, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
  over_rows(rows, cols, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) std::memcpy(dst + r * dst_ld, src + r * src_ld, sizeof(float) * cols);
  });
}

}  // namespace rnnkit
