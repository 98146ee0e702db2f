#include "copy_probe.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "parallel.h"

namespace rnnkit {

double copy_bandwidth_gbs(size_t bytes, int threads, int repeats) {
  bytes = std::max<size_t>(bytes, 4096);
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  double best = 0.0;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    auto t0 = std::chrono::steady_clock::now();
    parallel_run(threads, [&](int tid, int nt) {
      size_t begin = bytes * tid / nt, end = bytes * (tid + 1) / nt;
      std::memcpy(dst.data() + begin, src.data() + begin, end - begin);
    });
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 0) best = std::max(best, 2.0 * bytes / s / 1e9);
  }
  return best;
}

}  // namespace rnnkit
