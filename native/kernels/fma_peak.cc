// FMA-peak probe (fma_peak.h). Each thread runs kChains independent accumulator chains; the
// multiplier and addend keep values bounded and the sum is published so nothing is optimized away.
#include "fma_peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "isa_target.h"
#include "parallel.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace rnnkit {
namespace {

constexpr int kChains = 12;  // >= FMA pipes x latency on current x86 cores (2 x 4)
// Neoverse V1/V2 have four 128-bit FMA pipes of latency 4, and NEON has 32 registers.
constexpr int kNeonChains = 16;
constexpr int64_t kIters = 20000000;

std::atomic<float> g_sink{0.f};

#if defined(__x86_64__)
RNNKIT_TARGET_AVX512 double run_avx512(int64_t iters) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.001f * i);
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  __m512 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  g_sink.store(lanes[0] + lanes[15], std::memory_order_relaxed);
  return 2.0 * 16 * kChains * iters;
}

RNNKIT_TARGET_AVX2 double run_avx2(int64_t iters) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(0.001f * i);
  const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
  __m256 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  g_sink.store(lanes[0] + lanes[7], std::memory_order_relaxed);
  return 2.0 * 8 * kChains * iters;
}
#endif

#ifdef RNNKIT_ISA_ARM64
RNNKIT_TARGET_NEON double run_neon(int64_t iters) {
  float32x4_t acc[kNeonChains];
  for (int i = 0; i < kNeonChains; ++i) acc[i] = vdupq_n_f32(0.001f * i);
  const float32x4_t m = vdupq_n_f32(0.999999f), a = vdupq_n_f32(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kNeonChains; ++i) acc[i] = vfmaq_f32(a, acc[i], m);
  float32x4_t s = acc[0];
  for (int i = 1; i < kNeonChains; ++i) s = vaddq_f32(s, acc[i]);
  g_sink.store(vgetq_lane_f32(s, 0) + vgetq_lane_f32(s, 3), std::memory_order_relaxed);
  return 2.0 * 4 * kNeonChains * iters;
}
#endif

// Whatever the compiler makes of 4-lane multiply-adds with the baseline flags (SSE2 or NEON).
double run_portable(int64_t iters) {
  float acc[kChains][4];
  for (int i = 0; i < kChains; ++i)
    for (int l = 0; l < 4; ++l) acc[i][l] = 0.001f * (i + l);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kChains; ++i)
      for (int l = 0; l < 4; ++l) acc[i][l] = acc[i][l] * 0.999999f + 1e-7f;
  float s = 0.f;
  for (int i = 0; i < kChains; ++i)
    for (int l = 0; l < 4; ++l) s += acc[i][l];
  g_sink.store(s, std::memory_order_relaxed);
  return 2.0 * 4 * kChains * iters;
}

double run_one(Isa isa, int64_t iters) {
#if defined(__x86_64__)
  if (isa == Isa::avx512) return run_avx512(iters);
  if (isa == Isa::avx2) return run_avx2(iters);
#endif
#ifdef RNNKIT_ISA_ARM64
  if (isa == Isa::neon) return run_neon(iters);
#endif
  (void)isa;
  return run_portable(iters);
}

}  // namespace

double fma_peak_gflops(Isa isa, int threads) {
  if (!isa_available(isa)) return 0.0;
  threads = std::max(1, std::min(threads, num_threads()));
  const int64_t iters = isa == Isa::portable ? kIters / 2 : kIters;
  run_one(isa, iters / 20);  // wake the core up to its sustained clock
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    std::atomic<double> flops{0.0};
    auto t0 = std::chrono::steady_clock::now();
    parallel_run(threads, [&](int, int) {
      double f = run_one(isa, iters);
      double cur = flops.load();
      while (!flops.compare_exchange_weak(cur, cur + f)) {
      }
    });
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, flops.load() / s * 1e-9);
  }
  return best;
}

double fma_peak_gflops(int threads) { return fma_peak_gflops(detected_isa(), threads); }

}  // namespace rnnkit
