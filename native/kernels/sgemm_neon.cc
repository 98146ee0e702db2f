// NEON (ASIMD) micro-kernels for sgemm on arm64: an 8 x 12 register tile (24 q-register
// accumulators, 3 B vectors and one broadcast out of 32 registers; 24 independent FMA chains cover
// the 2-4 FMA pipes x 4-cycle latency of Neoverse cores). The same body as the x86 paths
// (sgemm_kernel_body.h), chosen when active_isa() says neon.
#include "isa_target.h"
#ifdef RNNKIT_ISA_ARM64
#include <arm_neon.h>

#include <array>
#include <cstdint>
#include <utility>

#include "sgemm_internal.h"

namespace rnnkit {
namespace sgemm_detail {
namespace {

#define RNNKIT_SGEMM_TARGET RNNKIT_TARGET_NEON

struct Vec {
  using reg = float32x4_t;
  static constexpr int W = 4;
  RNNKIT_SGEMM_TARGET static inline reg zero() { return vdupq_n_f32(0.f); }
  RNNKIT_SGEMM_TARGET static inline reg load(const float* p) { return vld1q_f32(p); }
  RNNKIT_SGEMM_TARGET static inline void store(float* p, reg v) { vst1q_f32(p, v); }
  RNNKIT_SGEMM_TARGET static inline reg bcast(const float* p) { return vld1q_dup_f32(p); }
  // vfmaq_f32(c, a, b) = c + a * b, one rounding.
  RNNKIT_SGEMM_TARGET static inline reg fma(reg a, reg b, reg c) { return vfmaq_f32(c, a, b); }
  RNNKIT_SGEMM_TARGET static inline reg mul(reg a, reg b) { return vmulq_f32(a, b); }
  RNNKIT_SGEMM_TARGET static inline reg add(reg a, reg b) { return vaddq_f32(a, b); }
  RNNKIT_SGEMM_TARGET static inline float hsum(reg a) { return vaddvq_f32(a); }
};

#include "sgemm_kernel_body.h"

#undef RNNKIT_SGEMM_TARGET

}  // namespace

const KernelSet& kernels_neon() {
  // kc 256: the 12 KiB B sliver stays in a 64 KiB L1; mc 128: the A block (128 KiB) in a 1 MiB
  // L2; nc a multiple of the 12-column panel.
  static const KernelSet set = make_kernel_set<8, 3, 4, 6>(Isa::neon, 256, 128, 4080);
  return set;
}

}  // namespace sgemm_detail
}  // namespace rnnkit
#endif
