// The frame the native GPU checkers (native/tools/gpu_check*.cu) share: start-up, pass/fail
// bookkeeping, device arrays, and the lines native/tools/gpu-check.sh reads.
//   <tool>: no CUDA device: skipped (<reason>)        no usable device: exit 0
//   <tool>: FAIL: no usable CUDA device: <reason>      the same with RNNKIT_REQUIRE_GPU=1: exit 2
//   ok   <check>  <detail>  /  FAIL <check>: <why> (seed S)
//   STICKY CUDA ERROR: ...                             the context died: the rest is not run
//   checks: N passed, N failed (seed S)
//   first failure: <check>                             when any failed
// A failed check is followed by a test of the CUDA context: after a sticky error (an illegal
// address, a kernel fault) every later CUDA call fails too, so the checker stops there and names
// the first failure instead of reporting a cascade. RNNKIT_TEST_SEED=<n> replays the inputs.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common.cuh"
#include "cuda_api.h"

namespace gpucheck {

constexpr int kDevice = 0;

struct Options {
  bool quick = false;   // --quick: fewer cases and shorter timings
  bool checks = true;   // --bench-only turns the checks off
  bool bench = true;    // --no-bench turns the timings off
  bool probe = false;   // --probe: report the device (or why there is none) and exit
};

struct State {
  const char* tool = "";
  uint32_t seed = 0;
  std::mt19937 rng;
  int checks = 0, failures = 0;
  std::string first_failure;
};

inline State& state() {
  static State s;
  return s;
}

inline Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      o.quick = true;
    } else if (!std::strcmp(argv[i], "--no-bench")) {
      o.bench = false;
    } else if (!std::strcmp(argv[i], "--bench-only")) {
      o.checks = false;
    } else if (!std::strcmp(argv[i], "--probe")) {
      o.probe = true;
    } else {
      std::fprintf(stderr, "%s: unknown option %s (--quick, --no-bench, --bench-only, --probe)\n", argv[0], argv[i]);
      std::exit(2);
    }
  }
  return o;
}

inline bool gpu_required() {
  const char* v = std::getenv("RNNKIT_REQUIRE_GPU");
  return v && std::strcmp(v, "1") == 0;
}

// Probes device 0. Without a usable one this exits: 0 ("skipped"), or 2 when RNNKIT_REQUIRE_GPU=1,
// so that a driver/runtime mismatch on a GPU box cannot read as a pass. With --probe it then
// prints the device and exits 0.
inline rnnkit::gpu::ProbeResult start(const char* tool, const Options& options) {
  State& s = state();
  s.tool = tool;
  rnnkit::gpu::ProbeResult probe = rnnkit::gpu::probe();
  if (!probe.available) {
    if (gpu_required()) {
      std::printf("%s: FAIL: no usable CUDA device: %s (RNNKIT_REQUIRE_GPU=1 makes this fatal)\n", tool,
                  probe.reason.c_str());
      std::exit(2);
    }
    std::printf("%s: no CUDA device: skipped (%s)\n", tool, probe.reason.c_str());
    std::exit(0);
  }
  if (options.probe) {
    std::printf("%s: device 0: %s\n", tool, probe.devices[0].name.c_str());
    std::exit(0);
  }
  const char* seed_env = std::getenv("RNNKIT_TEST_SEED");
  s.seed = seed_env ? static_cast<uint32_t>(std::strtoul(seed_env, nullptr, 10)) : std::random_device{}();
  s.rng.seed(s.seed);
  return probe;
}

inline std::mt19937& rng() { return state().rng; }

// True when the CUDA context no longer works (a sticky error), with the error in `err`.
inline bool context_lost(std::string* err) {
  const std::string sticky = rnnkit::gpu::sticky_error();
  if (!sticky.empty()) {
    *err = sticky;
    return true;
  }
  cudaError_t e = cudaDeviceSynchronize();
  if (e == cudaSuccess) return false;
  cudaGetLastError();
  e = cudaDeviceSynchronize();  // failing again once cleared: the error is sticky
  if (e == cudaSuccess) return false;
  *err = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
  return true;
}

inline int finish() {
  State& s = state();
  std::printf("\nchecks: %d passed, %d failed (seed %u)\n", s.checks - s.failures, s.failures, s.seed);
  if (s.failures) std::printf("first failure: %s\n", s.first_failure.c_str());
  std::printf("%s: %s\n", s.tool, s.failures ? "FAILED" : "all checks passed");
  return s.failures ? 1 : 0;
}

inline void pass(const std::string& what, const std::string& detail = "") {
  ++state().checks;
  std::printf("ok   %-60s %s\n", what.c_str(), detail.c_str());
}

// A passed check that prints nothing (matrices of thousands of comparisons report a summary).
inline void pass_quietly() { ++state().checks; }

inline void fail(const std::string& what, const std::string& why) {
  State& s = state();
  ++s.checks;
  ++s.failures;
  if (s.first_failure.empty()) s.first_failure = what;
  std::printf("FAIL %s: %s (seed %u)\n", what.c_str(), why.c_str(), s.seed);
  std::fflush(stdout);
  std::string err;
  if (context_lost(&err)) {
    std::printf("STICKY CUDA ERROR: %s; first failure: %s; every later CUDA call of this process would fail, so "
                "the remaining checks were not run\n",
                err.c_str(), s.first_failure.c_str());
    finish();
    std::exit(1);
  }
}

// Runs one check; an exception is its failure.
inline void guarded(const std::string& what, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    fail(what, std::string("threw: ") + e.what());
  }
}

// |got[i] − want[i]| <= tol · bound[i] for every i (NaN fails); passes reporting the worst element.
template <class G, class W>
bool within(const std::string& what, const std::vector<G>& got, const std::vector<W>& want,
            const std::vector<double>& bound, double tol = 1.0) {
  double worst = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
    const double allowed = tol * bound[i] + 1e-30;
    const double ratio = err / allowed;
    if (!(ratio <= 1.0)) {
      char why[200];
      std::snprintf(why, sizeof why, "element %zu: got %.17g, CPU %.17g, allowed %.3g", i, static_cast<double>(got[i]),
                    static_cast<double>(want[i]), allowed);
      fail(what, why);
      return false;
    }
    if (ratio > worst) {
      worst = ratio;
      worst_i = i;
    }
  }
  char detail[64];
  std::snprintf(detail, sizeof detail, "worst %.2f of bound (element %zu)", worst, worst_i);
  pass(what, detail);
  return true;
}

// Bit-for-bit equality with the CPU (NaN must match NaN); reports how many differ and by how many
// ulp at most.
inline bool bitwise(const std::string& what, const std::vector<float>& got, const std::vector<float>& want) {
  auto bits = [](float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    return static_cast<int64_t>(u);
  };
  size_t differ = 0, first = 0;
  int64_t worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (bits(got[i]) == bits(want[i])) continue;
    if (differ++ == 0) first = i;
    worst = std::max<int64_t>(worst, std::llabs(bits(got[i]) - bits(want[i])));
  }
  if (differ) {
    char why[200];
    std::snprintf(why, sizeof why, "%zu of %zu elements differ from the CPU (first %zu: gpu %.9g, cpu %.9g; worst %lld ulp)",
                  differ, want.size(), first, got[first], want[first], static_cast<long long>(worst));
    fail(what, why);
    return false;
  }
  pass(what, "bitwise equal to the CPU (" + std::to_string(want.size()) + " elements)");
  return true;
}

// Median milliseconds of `fn` (queued on device 0's stream) over `reps` runs after one warm-up,
// by CUDA events.
inline double median_ms(int reps, const std::function<void()>& fn) {
  cudaStream_t st = rnnkit::gpu::use_device(kDevice);
  cudaEvent_t a, b;
  rnnkit::gpu::check(cudaEventCreate(&a), "cudaEventCreate");
  rnnkit::gpu::check(cudaEventCreate(&b), "cudaEventCreate");
  fn();
  std::vector<float> ms;
  for (int i = 0; i < reps; ++i) {
    rnnkit::gpu::check(cudaEventRecord(a, st), "cudaEventRecord");
    fn();
    rnnkit::gpu::check(cudaEventRecord(b, st), "cudaEventRecord");
    rnnkit::gpu::check(cudaEventSynchronize(b), "cudaEventSynchronize");
    float t = 0;
    rnnkit::gpu::check(cudaEventElapsedTime(&t, a, b), "cudaEventElapsedTime");
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

inline std::vector<float> random_vector(size_t n, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng());
  return v;
}

// A device array of floats (or of 4-byte values) on device 0, freed on scope exit.
struct Dev {
  Dev() = default;
  explicit Dev(size_t count) : n(count), p(count ? static_cast<float*>(rnnkit::gpu::device_alloc(kDevice, count * 4)) : nullptr) {}
  explicit Dev(const std::vector<float>& h) : Dev(h.size()) { set(h); }
  ~Dev() {
    if (p) rnnkit::gpu::device_free(kDevice, p);
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  void set(const std::vector<float>& h) const {
    if (!h.empty()) rnnkit::gpu::copy_to_device(kDevice, p, h.data(), h.size() * 4);
  }
  std::vector<float> get() const {
    std::vector<float> h(n);
    if (n) rnnkit::gpu::copy_to_host(kDevice, h.data(), p, n * 4);
    return h;
  }
  void poison() const { set(std::vector<float>(n, NAN)); }
  int32_t* ints() const { return reinterpret_cast<int32_t*>(p); }
  size_t n = 0;
  float* p = nullptr;
};

}  // namespace gpucheck
