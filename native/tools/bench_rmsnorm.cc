// RMSNorm bandwidth: GB/s of rmsnorm_forward and rmsnorm_backward next to a memcpy probe run on
// the same pool threads in the same process, for each ISA path the machine supports. Bytes are
// those that must move: forward reads x and writes y, backward reads x and dy and writes dx (the
// per-column and per-row vectors are negligible). Every repeat works on a different set of
// buffers, and the sets together are several times the last-level cache, so each run starts cold
// like the copy probe does. The probe runs right before each timed kernel call, so both see the
// same machine load (shared machines drift by 2x within seconds); the table shows medians of
// the repeats and the median of the per-repeat ratios.
//
// Usage: bench_rmsnorm [repeats]   (threads: RNNKIT_NUM_THREADS; ISA: all supported)
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "cpu_features.h"
#include "parallel.h"
#include "rmsnorm.h"

using namespace rnnkit;

namespace {

// Footprint of the buffer sets a benchmark cycles through: well above the last-level cache of
// current server parts, so no repeat finds its inputs already cached.
constexpr int64_t kColdBytes = int64_t{512} << 20;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Copy bandwidth of the pool threads, each copying its own slice (counted as read + write). Each
// call copies the next chunk of a buffer several times the last-level cache, so it starts cold.
class CopyProbe {
 public:
  CopyProbe() : src_(kColdBytes / 2, 1), dst_(kColdBytes / 2, 0) {}

  double gbs() {
    const int64_t off = kChunk * (next_++ % (static_cast<int64_t>(src_.size()) / kChunk));
    auto t0 = std::chrono::steady_clock::now();
    parallel_run(0, [&](int tid, int n) {
      int64_t b0 = off + kChunk * tid / n, b1 = off + kChunk * (tid + 1) / n;
      std::memcpy(dst_.data() + b0, src_.data() + b0, static_cast<size_t>(b1 - b0));
    });
    return 2.0 * kChunk / seconds_since(t0) / 1e9;
  }

 private:
  static constexpr int64_t kChunk = int64_t{32} << 20;
  std::vector<char> src_, dst_;
  int64_t next_ = 0;
};

struct BufferSet {
  std::vector<float> x, y, dy, dx, rrms;
};

struct Rates {
  double kernel, copy, ratio;  // medians
};

struct Result {
  Rates forward, backward;
};

// Times `kernel` (moving `bytes`) `repeats` times, each right after a copy probe.
template <typename Kernel>
Rates time_against_copy(CopyProbe& probe, double bytes, int repeats, Kernel kernel) {
  std::vector<double> k, c, ratio;
  for (int rep = 0; rep < repeats; ++rep) {
    c.push_back(probe.gbs());
    auto t0 = std::chrono::steady_clock::now();
    kernel(rep);
    k.push_back(bytes / seconds_since(t0) / 1e9);
    ratio.push_back(k.back() / c.back());
  }
  return {median(k), median(c), median(ratio)};
}

Result bench_shape(CopyProbe& probe, int64_t rows, int64_t cols, int repeats, std::mt19937& rng) {
  const int64_t n = rows * cols;
  const int64_t set_bytes = n * 4 * static_cast<int64_t>(sizeof(float));
  const int sets = static_cast<int>(std::max<int64_t>(2, kColdBytes / set_bytes));
  std::normal_distribution<float> dist;
  std::vector<float> gamma(cols), beta(cols), dgamma(cols), dbeta(cols);
  for (auto& g : gamma) g = dist(rng);
  for (auto& b : beta) b = dist(rng);
  std::vector<BufferSet> bufs(sets);
  for (auto& b : bufs) {
    b.x.resize(n);
    b.dy.resize(n);
    for (int64_t i = 0; i < n; ++i) b.x[i] = dist(rng), b.dy[i] = dist(rng);
    b.y.assign(n, 0.f);
    b.dx.assign(n, 0.f);
    b.rrms.assign(rows, 0.f);
  }
  // Warm-up: faults every page in and fills rrms for the backward.
  for (auto& b : bufs) {
    rmsnorm_forward(b.y.data(), b.rrms.data(), b.x.data(), gamma.data(), beta.data(), rows, cols,
                    1e-6f);
    rmsnorm_backward(b.dx.data(), dgamma.data(), dbeta.data(), b.dy.data(), b.x.data(),
                     gamma.data(), b.rrms.data(), rows, cols, false);
  }
  Result result;
  result.forward = time_against_copy(probe, 2.0 * n * sizeof(float), repeats, [&](int rep) {
    BufferSet& b = bufs[rep % sets];
    rmsnorm_forward(b.y.data(), b.rrms.data(), b.x.data(), gamma.data(), beta.data(), rows, cols,
                    1e-6f);
  });
  result.backward = time_against_copy(probe, 3.0 * n * sizeof(float), repeats, [&](int rep) {
    BufferSet& b = bufs[rep % sets];
    rmsnorm_backward(b.dx.data(), dgamma.data(), dbeta.data(), b.dy.data(), b.x.data(),
                     gamma.data(), b.rrms.data(), rows, cols, false);
  });
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(3, std::atoi(argv[1])) : 21;
  const int64_t shapes[][2] = {{4096, 1024}, {1024, 4096}, {64, 65536}, {16384, 1024},
                               {1, 65536},   {8192, 64}};
  std::mt19937 rng(1);

  std::printf("bench_rmsnorm: %d threads, medians of %d repeats, cold buffers\n", num_threads(),
              repeats);
  CopyProbe probe;
  probe.gbs();  // faults the probe's pages in
  std::printf("%-8s %11s | %8s %8s %6s | %8s %8s %6s\n", "isa", "rows x cols", "fwd GB/s",
              "copy", "ratio", "bwd GB/s", "copy", "ratio");
  const std::vector<Isa>& isas = available_isas();
  for (auto isa = isas.rbegin(); isa != isas.rend(); ++isa) {
    set_active_isa(*isa);
    for (const auto& shape : shapes) {
      Result r = bench_shape(probe, shape[0], shape[1], repeats, rng);
      char dims[32];
      std::snprintf(dims, sizeof dims, "%lldx%lld", static_cast<long long>(shape[0]),
                    static_cast<long long>(shape[1]));
      std::printf("%-8s %11s | %8.1f %8.1f %5.0f%% | %8.1f %8.1f %5.0f%%\n",
                  isa_name(*isa), dims, r.forward.kernel, r.forward.copy,
                  100 * r.forward.ratio, r.backward.kernel, r.backward.copy,
                  100 * r.backward.ratio);
      std::fflush(stdout);
    }
  }
  return 0;
}
