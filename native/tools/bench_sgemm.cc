// Quick GFLOP/s timer for sgemm (native/kernels/sgemm.h) on the shapes that matter to rnnkit, next
// to the FMA peak measured in the same run (fma_peak.h), with 1 thread and with all threads.
// Shapes: 2048^3 (plain sgemm), and the recurrent product h[M, H] * W_hh[4H, H]^T for
// M in {1, 8, 32, 64}, H in {256, 512, 1024}, with W_hh packed once (sgemm_packed) and unpacked.
// Each figure is the median of repeated timed samples after a warm-up. RNNKIT_ISA picks the path.
// Usage: bench_sgemm [samples] [substring of the shape names to run]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "fma_peak.h"
#include "parallel.h"
#include "sgemm.h"

using namespace rnnkit;

namespace {

struct Timing {
  double median, best;  // seconds per call
};

// Seconds per call over repeated samples; each sample repeats the call for at least ~20 ms. The
// best sample is printed next to the median because the machine may be shared.
Timing time_call(const std::function<void()>& call, int samples) {
  call();
  auto t0 = std::chrono::steady_clock::now();
  call();
  double once = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int reps = static_cast<int>(std::max(1.0, 0.02 / std::max(once, 1e-9)));
  std::vector<double> times;
  for (int s = 0; s < samples; ++s) {
    auto t = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) call();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count() /
                    reps);
  }
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], times.front()};
}

struct Row {
  std::string name;
  double flops;
  std::function<void()> call;
};

}  // namespace

int main(int argc, char** argv) {
  int samples = argc > 1 ? std::max(1, std::atoi(argv[1])) : 7;
  const std::string filter = argc > 2 ? argv[2] : "";
  const int all = num_threads();
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  auto random_vec = [&](size_t n) {
    std::vector<float> v(n);
    for (auto& x : v) x = u(rng);
    return v;
  };

  std::vector<std::vector<float>> keep;
  std::vector<std::unique_ptr<PackedB>> packs;
  std::vector<Row> rows;
  {
    const int64_t n = 2048;
    keep.push_back(random_vec(n * n));
    keep.push_back(random_vec(n * n));
    keep.push_back(std::vector<float>(n * n));
    float *a = keep[keep.size() - 3].data(), *b = keep[keep.size() - 2].data(),
          *c = keep.back().data();
    rows.push_back({"2048^3 NN", 2.0 * n * n * n,
                    [=] { sgemm(false, false, n, n, n, 1.f, a, n, b, n, 0.f, c, n); }});
  }
  for (int64_t H : {256, 512, 1024}) {
    const int64_t N = 4 * H, K = H;
    keep.push_back(random_vec(N * K));  // W_hh [4H, H]
    const float* w = keep.back().data();
    packs.emplace_back(new PackedB(true, K, N, w, K));
    const PackedB* pb = packs.back().get();
    for (int64_t M : {1, 8, 32, 64}) {
      keep.push_back(random_vec(M * K));
      keep.push_back(std::vector<float>(M * N));
      const float* h = keep[keep.size() - 2].data();
      float* c = keep.back().data();
      char name[64];
      std::snprintf(name, sizeof name, "M=%-3lld H=%-4lld packed", (long long)M, (long long)H);
      rows.push_back({name, 2.0 * M * N * K,
                      [=] { sgemm_packed(false, M, 1.f, h, K, *pb, 1.f, c, N); }});
      std::snprintf(name, sizeof name, "M=%-3lld H=%-4lld NT", (long long)M, (long long)H);
      rows.push_back({name, 2.0 * M * N * K,
                      [=] { sgemm(false, true, M, N, K, 1.f, h, K, w, K, 1.f, c, N); }});
    }
  }

  const Isa isa = active_isa();
  std::vector<int> thread_counts = {1};
  if (all > 1) thread_counts.push_back(all);
  std::vector<double> peak;
  for (int t : thread_counts) {
    set_num_threads(t);
    peak.push_back(fma_peak_gflops(isa, t));
  }
  std::printf("sgemm on %s, median of %d samples\n", isa_name(isa), samples);
  std::printf("%-24s", "FMA peak GFLOP/s");
  for (size_t i = 0; i < thread_counts.size(); ++i)
    std::printf("  %3dT %7.1f                ", thread_counts[i], peak[i]);
  std::printf("\n");
  for (const Row& r : rows) {
    if (r.name.find(filter) == std::string::npos) continue;
    std::printf("%-24s", r.name.c_str());
    for (size_t i = 0; i < thread_counts.size(); ++i) {
      set_num_threads(thread_counts[i]);
      Timing t = time_call(r.call, samples);
      double g = r.flops / t.median * 1e-9;
      std::printf("  %3dT %7.1f (%3.0f%%) best %5.1f", thread_counts[i], g, 100.0 * g / peak[i],
                  r.flops / t.best * 1e-9);
    }
    std::printf("\n");
  }
  set_num_threads(all);
  return 0;
}
