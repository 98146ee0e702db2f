// AVX-512 micro-kernels for sgemm: a 12 x 32 register tile (24 zmm accumulators, 2 B vectors and
// one broadcast out of 32 registers; 24 independent FMA chains cover 2 pipes x 4-cycle latency).
// Compiled with a function-level target attribute, so the file builds with the library's plain
// flags and only runs when active_isa() says the CPU has AVX-512 (F, BW, VL, DQ) and FMA.
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

#define RNNKIT_SGEMM_TARGET RNNKIT_TARGET_AVX512

struct Vec {
  using reg = __m512;
  static constexpr int W = 16;
  RNNKIT_SGEMM_TARGET static inline reg zero() { return _mm512_setzero_ps(); }
  RNNKIT_SGEMM_TARGET static inline reg load(const float* p) { return _mm512_loadu_ps(p); }
  RNNKIT_SGEMM_TARGET static inline void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  RNNKIT_SGEMM_TARGET static inline reg bcast(const float* p) { return _mm512_set1_ps(*p); }
  RNNKIT_SGEMM_TARGET static inline reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  RNNKIT_SGEMM_TARGET static inline reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  RNNKIT_SGEMM_TARGET static inline reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  // All in zmm registers, with zeroing masks: GCC 12 warns on the unmasked forms (and on the
  // 512-to-256 casts) that an undefined pass-through is used uninitialized.
  RNNKIT_SGEMM_TARGET static inline float hsum(reg a) {
    a = _mm512_add_ps(a, _mm512_maskz_shuffle_f32x4(0xFFFF, a, a, 0x4E));
    a = _mm512_add_ps(a, _mm512_maskz_shuffle_f32x4(0xFFFF, a, a, 0xB1));
    a = _mm512_add_ps(a, _mm512_maskz_permute_ps(0xFFFF, a, 0x4E));
    a = _mm512_add_ps(a, _mm512_maskz_permute_ps(0xFFFF, a, 0xB1));
    return _mm512_cvtss_f32(a);
  }
};

#include "sgemm_kernel_body.h"

#undef RNNKIT_SGEMM_TARGET

}  // namespace

const KernelSet& kernels_avx512() {
  // A-in-L1 loop order (KernelSet::nq): the 12-row A micro-panel is the L1-resident operand (48
  // bytes per k step against the B panel's 128), so kc can be twice as long for the same L1 and
  // the C tile is loaded and stored half as often. The blocks given here are replaced by tune().
  static const KernelSet set = make_kernel_set<12, 2, 4, 6>(Isa::avx512, 384, 192, 4096, true);
  return set;
}

}  // namespace sgemm_detail
}  // namespace rnnkit
#endif
