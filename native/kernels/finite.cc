// Finite-value scan (contract: finite.h).
#include "finite.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "parallel.h"

namespace rnnkit {

int64_t first_non_finite(const float* p, int64_t n) {
  const int64_t kChunk = int64_t(1) << 16;
  int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<int64_t> first(static_cast<size_t>(chunks), -1);
  parallel_for(chunks, 4, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      int64_t end = std::min(n, (c + 1) * kChunk);
      // Summing x - x is NaN exactly when some x is NaN or infinite, and vectorizes; the exact
      // index is searched only in a chunk that has one.
      float acc = 0.f;
      for (int64_t i = c * kChunk; i < end; ++i) acc += p[i] - p[i];
      if (acc == 0.f) continue;
      for (int64_t i = c * kChunk; i < end; ++i) {
        if (!std::isfinite(p[i])) {
          first[static_cast<size_t>(c)] = i;
          break;
        }
      }
    }
  });
  for (int64_t v : first)
    if (v >= 0) return v;
  return -1;
}

}  // namespace rnnkit
