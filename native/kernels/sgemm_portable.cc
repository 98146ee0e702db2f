// Portable C++ micro-kernels for sgemm (any architecture, arm64 included): a 4 x 16 tile held in
// 4-lane float groups that compilers map onto SSE or NEON registers. The fallback path and the
// one used when RNNKIT_ISA=portable.
#include <array>
#include <cstdint>
#include <utility>

#include "sgemm_internal.h"

namespace rnnkit {
namespace sgemm_detail {
namespace {

#define RNNKIT_SGEMM_TARGET

struct Vec {
  struct reg {
    float v[4];
  };
  static constexpr int W = 4;
  static inline reg zero() { return reg{{0.f, 0.f, 0.f, 0.f}}; }
  static inline reg load(const float* p) { return reg{{p[0], p[1], p[2], p[3]}}; }
  static inline void store(float* p, reg r) {
    for (int l = 0; l < W; ++l) p[l] = r.v[l];
  }
  static inline reg bcast(const float* p) { return reg{{*p, *p, *p, *p}}; }
  static inline reg fma(reg a, reg b, reg c) {
    for (int l = 0; l < W; ++l) c.v[l] += a.v[l] * b.v[l];
    return c;
  }
  static inline reg mul(reg a, reg b) {
    for (int l = 0; l < W; ++l) a.v[l] *= b.v[l];
    return a;
  }
  static inline reg add(reg a, reg b) {
    for (int l = 0; l < W; ++l) a.v[l] += b.v[l];
    return a;
  }
  static inline float hsum(reg a) { return (a.v[0] + a.v[1]) + (a.v[2] + a.v[3]); }
};

#include "sgemm_kernel_body.h"

#undef RNNKIT_SGEMM_TARGET

}  // namespace

const KernelSet& kernels_portable() {
  static const KernelSet set = make_kernel_set<4, 4>(Isa::portable, 256, 128, 4096);
  return set;
}

}  // namespace sgemm_detail
}  // namespace rnnkit
