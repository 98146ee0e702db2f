// AVX2+FMA micro-kernels for sgemm: a 6 x 16 register tile (12 accumulators, 2 B vectors and one
// broadcast fill the 16 ymm registers; 12 independent FMA chains cover 2 pipes x 4-cycle latency).
// Compiled with a function-level target attribute, so the file builds with the library's plain
// flags and only runs when active_isa() says the CPU has AVX2 and FMA.
#if defined(__x86_64__)
#include <immintrin.h>

#include <array>
#include <cstdint>
#include <utility>

#include "isa_target.h"
#include "sgemm_internal.h"

namespace rnnkit {
namespace sgemm_detail {
namespace {

#define RNNKIT_SGEMM_TARGET RNNKIT_TARGET_AVX2

struct Vec {
  using reg = __m256;
  static constexpr int W = 8;
  RNNKIT_SGEMM_TARGET static inline reg zero() { return _mm256_setzero_ps(); }
  RNNKIT_SGEMM_TARGET static inline reg load(const float* p) { return _mm256_loadu_ps(p); }
  RNNKIT_SGEMM_TARGET static inline void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  RNNKIT_SGEMM_TARGET static inline reg bcast(const float* p) { return _mm256_broadcast_ss(p); }
  RNNKIT_SGEMM_TARGET static inline reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  RNNKIT_SGEMM_TARGET static inline reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  RNNKIT_SGEMM_TARGET static inline reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  RNNKIT_SGEMM_TARGET static inline float hsum(reg a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

#include "sgemm_kernel_body.h"

#undef RNNKIT_SGEMM_TARGET

}  // namespace

const KernelSet& kernels_avx2() {
  // kc 256: the 16 KiB B sliver stays in a 32 KiB L1; mc 144: the A block (144 KiB) in L2.
  static const KernelSet set = make_kernel_set<6, 2>(Isa::avx2, 256, 144, 4080);
  return set;
}

}  // namespace sgemm_detail
}  // namespace rnnkit
#endif
