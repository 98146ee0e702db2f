// Reductions of lib/nn (contract in nn_reduce.h).
#include "nn_reduce.h"

#include <algorithm>
#include <vector>

#include "parallel.h"

namespace rnnkit {
namespace {

// Elements per partial sum of a long contiguous reduction: the unit of the fixed summation order.
constexpr int64_t kChunk = 8192;
// Columns summed together by one task of a strided reduction (its double accumulators).
constexpr int64_t kColumnBlock = 256;
// Below this many elements the pool's wake-up costs more than the work.
constexpr int64_t kGrain = 32768;

inline float finish(float old, double sum, double scale, bool accumulate) {
  const double v = scale * sum;
  return static_cast<float>(accumulate ? static_cast<double>(old) + v : v);
}

double contiguous_sum(const float* x, const float* w, int64_t n) {
  double acc = 0.0;
  if (w) {
    for (int64_t k = 0; k < n; ++k) acc += static_cast<double>(x[k]) * static_cast<double>(w[k]);
  } else {
    for (int64_t k = 0; k < n; ++k) acc += static_cast<double>(x[k]);
  }
  return acc;
}

// Sums of contiguous rows of length len (inner = 1): one output each, long rows in fixed chunks.
void sum_rows_contiguous(float* out, const float* x, const float* w, int64_t outer, int64_t len,
                         double scale, bool accumulate) {
  const int64_t chunks = (len + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(outer * std::max<int64_t>(chunks, 1)), 0.0);
  const int64_t tasks = outer * chunks;
  auto run = [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / chunks, c = t % chunks;
      const int64_t begin = c * kChunk, n = std::min(len, begin + kChunk) - begin;
      const int64_t at = o * len + begin;
      partial[t] = contiguous_sum(x + at, w ? w + at : nullptr, n);
    }
  };
  if (outer * len < kGrain) run(0, tasks);
  else parallel_for(tasks, std::max<int64_t>(1, kGrain / std::min(len, kChunk)), run);
  for (int64_t o = 0; o < outer; ++o) {
    double acc = 0.0;
    for (int64_t c = 0; c < chunks; ++c) acc += partial[o * chunks + c];
    out[o] = finish(out[o], acc, scale, accumulate);
  }
}

// Strided sums (inner > 1): each task owns a block of columns of one o and walks l in order.
void sum_strided(float* out, const float* x, const float* w, int64_t outer, int64_t len, int64_t inner,
                 double scale, bool accumulate) {
  const int64_t blocks = (inner + kColumnBlock - 1) / kColumnBlock;
  auto run = [&](int64_t b, int64_t e) {
    double acc[kColumnBlock];
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / blocks, i0 = (t % blocks) * kColumnBlock;
      const int64_t n = std::min(inner, i0 + kColumnBlock) - i0;
      std::fill(acc, acc + n, 0.0);
      for (int64_t l = 0; l < len; ++l) {
        const int64_t at = (o * len + l) * inner + i0;
        if (w) {
          for (int64_t k = 0; k < n; ++k) acc[k] += static_cast<double>(x[at + k]) * static_cast<double>(w[at + k]);
        } else {
          for (int64_t k = 0; k < n; ++k) acc[k] += static_cast<double>(x[at + k]);
        }
      }
      float* dst = out + o * inner + i0;
      for (int64_t k = 0; k < n; ++k) dst[k] = finish(dst[k], acc[k], scale, accumulate);
    }
  };
  const int64_t tasks = outer * blocks;
  const int64_t per_task = len * std::min(inner, kColumnBlock);
  if (outer * len * inner < kGrain) run(0, tasks);
  else parallel_for(tasks, std::max<int64_t>(1, kGrain / std::max<int64_t>(per_task, 1)), run);
}

}  // namespace

void sum_axis(float* out, const float* x, const float* w, int64_t outer, int64_t len, int64_t inner,
              double scale, bool accumulate) {
  if (outer <= 0 || inner <= 0) return;
  if (len <= 0) {
    for (int64_t k = 0; k < outer * inner; ++k) out[k] = finish(out[k], 0.0, scale, accumulate);
    return;
  }
  if (inner == 1) sum_rows_contiguous(out, x, w, outer, len, scale, accumulate);
  else sum_strided(out, x, w, outer, len, inner, scale, accumulate);
}

void broadcast_axis(float* dx, const float* dy, int64_t outer, int64_t len, int64_t inner, float scale) {
  const int64_t rows = outer * len;
  auto run = [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* src = dy + (r / len) * inner;
      float* dst = dx + r * inner;
      for (int64_t i = 0; i < inner; ++i) dst[i] = src[i] * scale;
    }
  };
  if (rows * inner < kGrain) run(0, rows);
  else parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1)), run);
}

}  // namespace rnnkit
