// RMSNorm bandwidth: GB/s of rmsnorm_forward and rmsnorm_backward next to a memcpy probe run on
// the same pool threads in the same process, for each ISA path the machine supports. Bytes are
// those that must move: forward reads x and writes y, backward reads x and dy and writes dx (the
// per-column and per-row vectors are negligible). Every repeat works on a different set of
// buffers, and the sets together are several times the last-level cache, so each run starts cold
// like the copy probe does. Reports medians of the repeats.
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

// Copy bandwidth of the pool threads, each copying its own slice (counted as read + write).
double copy_bandwidth(int repeats) {
  const int64_t bytes = kColdBytes / 2;
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  std::vector<double> rates;
  for (int rep = 0; rep <= repeats; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    parallel_run(0, [&](int tid, int n) {
      int64_t b0 = bytes * tid / n, b1 = bytes * (tid + 1) / n;
      std::memcpy(dst.data() + b0, src.data() + b0, static_cast<size_t>(b1 - b0));
    });
    double t = seconds_since(t0);
    if (rep > 0) rates.push_back(2.0 * bytes / t / 1e9);  // the first run only faults pages in
  }
  return median(rates);
}

struct BufferSet {
  std::vector<float> x, y, dy, dx, rrms;
};

struct Result {
  double forward_gbs, backward_gbs;
};

Result bench_shape(int64_t rows, int64_t cols, int repeats, std::mt19937& rng) {
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
  std::vector<double> fwd, bwd;
  for (int rep = 0; rep < repeats; ++rep) {
    BufferSet& b = bufs[rep % sets];
    auto t0 = std::chrono::steady_clock::now();
    rmsnorm_forward(b.y.data(), b.rrms.data(), b.x.data(), gamma.data(), beta.data(), rows, cols,
                    1e-6f);
    fwd.push_back(2.0 * n * sizeof(float) / seconds_since(t0) / 1e9);
  }
  for (int rep = 0; rep < repeats; ++rep) {
    BufferSet& b = bufs[rep % sets];
    auto t0 = std::chrono::steady_clock::now();
    rmsnorm_backward(b.dx.data(), dgamma.data(), dbeta.data(), b.dy.data(), b.x.data(),
                     gamma.data(), b.rrms.data(), rows, cols, false);
    bwd.push_back(3.0 * n * sizeof(float) / seconds_since(t0) / 1e9);
  }
  return {median(fwd), median(bwd)};
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(3, std::atoi(argv[1])) : 21;
  const int64_t shapes[][2] = {{4096, 1024}, {1024, 4096}, {64, 65536}, {16384, 1024},
                               {1, 65536},   {8192, 64}};
  std::mt19937 rng(1);

  std::printf("bench_rmsnorm: %d threads, medians of %d repeats, cold buffers\n", num_threads(),
              repeats);
  const double copy = copy_bandwidth(repeats);
  std::printf("memcpy probe (%d threads): %.1f GB/s\n\n", num_threads(), copy);
  std::printf("%-8s %13s %12s %7s %12s %7s\n", "isa", "rows x cols", "fwd GB/s", "% copy",
              "bwd GB/s", "% copy");
  for (int isa = static_cast<int>(detected_isa()); isa >= 0; --isa) {
    set_active_isa(static_cast<Isa>(isa));
    for (const auto& shape : shapes) {
      Result r = bench_shape(shape[0], shape[1], repeats, rng);
      char dims[32];
      std::snprintf(dims, sizeof dims, "%lldx%lld", static_cast<long long>(shape[0]),
                    static_cast<long long>(shape[1]));
      std::printf("%-8s %13s %12.1f %6.0f%% %12.1f %6.0f%%\n", isa_name(static_cast<Isa>(isa)),
                  dims, r.forward_gbs, 100 * r.forward_gbs / copy, r.backward_gbs,
                  100 * r.backward_gbs / copy);
      std::fflush(stdout);
    }
  }
  std::printf("\nmemcpy probe again: %.1f GB/s\n", copy_bandwidth(repeats));
  return 0;
}
