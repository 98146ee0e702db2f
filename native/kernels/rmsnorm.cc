// RMSNorm forward and backward (contract in rmsnorm.h).
//
// Each direction is one fused pass per row: a reduction over the row (sum of x^2, or of
// dy*gamma*x), then the elementwise output, which re-reads the row while it is still in cache.
// Rows are spread over threads; when there are too few rows to keep every thread busy, threads
// own column ranges of all rows instead and the row reductions are finished in a second sweep.
// dgamma/dbeta: each thread accumulates its rows into private column buffers (float for a block
// of rows, then double), and the per-thread buffers are summed in parallel over columns, in a
// fixed thread order so that results do not depend on scheduling. Large outputs are written
// with streaming stores, so the passes move only the bytes they must (see kStreamBytes).
#include "rmsnorm.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include "activations.h"
#include "cpu_features.h"
#include "isa_target.h"
#include "parallel.h"

#ifdef RNNKIT_ISA_ARM64
#include <arm_neon.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#define RNNKIT_RMSNORM_X86 1
#endif

namespace rnnkit {
namespace {

// Elements summed in float before a partial sum is widened to double: short enough that the float
// error stays near one ulp per block, long enough that the widening costs nothing.
constexpr int64_t kSumBlock = 512;
// Rows accumulated into the float dgamma/dbeta buffers before they are flushed into double. A
// thread with no more rows than this never needs its double buffers.
constexpr int64_t kGradRowBlock = 16;
// Below this many elements per thread the pool's wake-up costs more than the work. Measured on a
// 2-core Zen 3 shared with other jobs: one row of 65536 took 60 us forward on one thread and
// about 1 ms on two (waking a worker that has to be scheduled first); at 16384 elements per
// thread the pool lost on every shape up to 4 x 65536.
constexpr int64_t kMinElemsPerThread = 65536;
// Columns of dgamma/dbeta summed at once when the per-thread buffers are reduced: the partial
// sums live on the stack, so the reduction allocates nothing.
constexpr int64_t kReduceCols = 256;
// Narrowest column range a thread takes when rows are split by columns.
constexpr int64_t kMinSliceCols = 2048;
// Outputs (y, dx) at least this large are written with streaming stores, which skip the
// read-for-ownership of each line: a third of the forward's traffic, a quarter of the backward's.
// Together with the inputs such outputs fill a good part of a server's last-level cache, so the
// next op would mostly miss on them anyway; smaller outputs are left in cache for it.
constexpr int64_t kStreamBytes = int64_t{8} << 20;

using SumSquaresFn = double (*)(const float* x, int64_t n);
using SumProduct3Fn = double (*)(const float* a, const float* b, const float* c, int64_t n);
// y = x * (r * gamma) + beta; beta may be null.
using ScaleFn = void (*)(float* y, const float* x, const float* gamma, const float* beta, float r,
                         int64_t n, bool stream);
// dx = r*(dy*gamma - c*x) (dx may be null); dg += dy*x*r (may be null); db += dy (may be null).
// The streaming variants write dx with streaming stores.
using BackwardRowFn = void (*)(float* dx, float* dg, float* db, const float* dy, const float* x,
                               const float* gamma, float r, float c, int64_t n);

struct RowKernels {
  SumSquaresFn sum_squares;
  SumProduct3Fn sum_product3;
  ScaleFn scale;
  std::array<BackwardRowFn, 16> backward;  // indexed by backward_index()
};

int backward_index(bool stream, const float* dx, const float* dg, const float* db) {
  return (stream ? 8 : 0) + (dx ? 4 : 0) + (dg ? 2 : 0) + (db ? 1 : 0);
}

// Table of the 16 instantiations Kernel<stream, dx, dg, db>, in backward_index() order.
template <template <bool, bool, bool, bool> class Kernel, size_t... I>
std::array<BackwardRowFn, 16> backward_table(std::index_sequence<I...>) {
  return {{Kernel<(I & 8) != 0, (I & 4) != 0, (I & 2) != 0, (I & 1) != 0>::run...}};
}

// ---------------------------------------------------------------------------------------------
// Portable and NEON paths: one body over the compiler's vector extensions, instantiated with
// plain multiplies and adds (portable: whatever the build targets, SSE2 or NEON registers) and
// with NEON's fused multiply-add. Four accumulators of four lanes keep each float partial short
// and hide the add latency; tails are partial vectors (lanes past the row read as zero).

template <class Lanes>
struct VectorRows {
  typedef act::V4 V;
  typedef V::F F;
  static constexpr int W = V::W;

  static RNNKIT_INLINE double widen_sum(F v) {
    double s = 0;
    for (int l = 0; l < W; ++l) s += v[l];
    return s;
  }

  // Sum over [0, n) of term(i), one vector at a time, with term(i) = f(loaded lanes at i).
  template <class Term>
  static RNNKIT_INLINE double sum(int64_t n, Term term) {
    double total = 0;
    for (int64_t i = 0; i < n; i += kSumBlock) {
      const int64_t end = std::min(n, i + kSumBlock);
      F a0 = act::splat<V>(0.f), a1 = a0, a2 = a0, a3 = a0;
      int64_t j = i;
      for (; j + 4 * W <= end; j += 4 * W) {
        a0 = term(a0, j, W);
        a1 = term(a1, j + W, W);
        a2 = term(a2, j + 2 * W, W);
        a3 = term(a3, j + 3 * W, W);
      }
      for (; j < end; j += W) a0 = term(a0, j, std::min<int64_t>(W, end - j));
      total += widen_sum((a0 + a1) + (a2 + a3));
    }
    return total;
  }

  static double sum_squares(const float* x, int64_t n) {
    return sum(n, [x](F acc, int64_t j, int64_t w) {
      const F v = act::load<V>(x + j, w);
      return Lanes::fma(v, v, acc);
    });
  }

  static double sum_product3(const float* a, const float* b, const float* c, int64_t n) {
    return sum(n, [a, b, c](F acc, int64_t j, int64_t w) {
      return Lanes::fma(act::load<V>(a + j, w) * act::load<V>(b + j, w), act::load<V>(c + j, w),
                        acc);
    });
  }

  // Streaming stores are an x86 matter; these paths ignore `stream`.
  static void scale(float* y, const float* x, const float* gamma, const float* beta, float r,
                    int64_t n, bool) {
    for (int64_t j = 0; j < n; j += W) {
      const int64_t w = std::min<int64_t>(W, n - j);
      const F g = r * act::load<V>(gamma + j, w);
      const F xv = act::load<V>(x + j, w);
      act::store<V>(y + j, beta ? Lanes::fma(xv, g, act::load<V>(beta + j, w)) : xv * g, w);
    }
  }

  template <bool kStream, bool kDx, bool kDg, bool kDb>
  struct Backward {
    static void run(float* dx, float* dg, float* db, const float* dy, const float* x,
                    const float* gamma, float r, float c, int64_t n) {
      if (!(kDx || kDg || kDb)) return;
      for (int64_t j = 0; j < n; j += W) {
        const int64_t w = std::min<int64_t>(W, n - j);
        const F dyv = act::load<V>(dy + j, w);
        const F xv = (kDx || kDg) ? act::load<V>(x + j, w) : act::splat<V>(0.f);
        if (kDx) act::store<V>(dx + j, r * (dyv * act::load<V>(gamma + j, w) - c * xv), w);
        if (kDg) act::store<V>(dg + j, Lanes::fma(dyv * r, xv, act::load<V>(dg + j, w)), w);
        if (kDb) act::store<V>(db + j, dyv + act::load<V>(db + j, w), w);
      }
    }
  };

  static RowKernels kernels() {
    return {sum_squares, sum_product3, scale,
            backward_table<Backward>(std::make_index_sequence<16>())};
  }
};

struct PlainLanes {
  static RNNKIT_INLINE act::V4::F fma(act::V4::F a, act::V4::F b, act::V4::F c) {
    return a * b + c;
  }
};

const RowKernels kPortable = VectorRows<PlainLanes>::kernels();

#ifdef RNNKIT_ISA_ARM64
struct NeonLanes {
  static RNNKIT_INLINE RNNKIT_TARGET_NEON act::V4::F fma(act::V4::F a, act::V4::F b, act::V4::F c) {
    return vfmaq_f32(c, a, b);
  }
};

const RowKernels kNeon = VectorRows<NeonLanes>::kernels();
#endif

#ifdef RNNKIT_RMSNORM_X86
// ---------------------------------------------------------------------------------------------
// AVX2 + FMA. Four accumulators of eight lanes hide the FMA latency; tails use masked loads and
// stores so no element is handled by scalar code.

RNNKIT_TARGET_AVX2 inline __m256d avx2_widen_add(__m256d acc, __m256 v) {
  acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
  return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

RNNKIT_TARGET_AVX2 inline double avx2_hsum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

// Mask selecting the first `rem` (1..7) of eight lanes.
RNNKIT_TARGET_AVX2 inline __m256i avx2_tail_mask(int64_t rem) {
  static const int32_t table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 8 - rem));
}

RNNKIT_TARGET_AVX2 double avx2_sum_squares(const float* x, int64_t n) {
  __m256d total = _mm256_setzero_pd();
  const int64_t n32 = n & ~int64_t{31};
  int64_t i = 0;
  while (i < n32) {
    const int64_t end = std::min(n32, i + kSumBlock);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (; i < end; i += 32) {
      __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
      __m256 v2 = _mm256_loadu_ps(x + i + 16), v3 = _mm256_loadu_ps(x + i + 24);
      a0 = _mm256_fmadd_ps(v0, v0, a0);
      a1 = _mm256_fmadd_ps(v1, v1, a1);
      a2 = _mm256_fmadd_ps(v2, v2, a2);
      a3 = _mm256_fmadd_ps(v3, v3, a3);
    }
    total = avx2_widen_add(total, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  }
  __m256 tail = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    tail = _mm256_fmadd_ps(v, v, tail);
  }
  if (i < n) {
    __m256 v = _mm256_maskload_ps(x + i, avx2_tail_mask(n - i));
    tail = _mm256_fmadd_ps(v, v, tail);
  }
  return avx2_hsum(avx2_widen_add(total, tail));
}

RNNKIT_TARGET_AVX2 double avx2_sum_product3(const float* a, const float* b, const float* c,
                                            int64_t n) {
  __m256d total = _mm256_setzero_pd();
  const int64_t n16 = n & ~int64_t{15};
  int64_t i = 0;
  while (i < n16) {
    const int64_t end = std::min(n16, i + kSumBlock);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    for (; i < end; i += 16) {
      __m256 p0 = _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
      __m256 p1 = _mm256_mul_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
      s0 = _mm256_fmadd_ps(p0, _mm256_loadu_ps(c + i), s0);
      s1 = _mm256_fmadd_ps(p1, _mm256_loadu_ps(c + i + 8), s1);
    }
    total = avx2_widen_add(total, _mm256_add_ps(s0, s1));
  }
  __m256 tail = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8) {
    __m256 p = _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    tail = _mm256_fmadd_ps(p, _mm256_loadu_ps(c + i), tail);
  }
  if (i < n) {
    __m256i m = avx2_tail_mask(n - i);
    __m256 p = _mm256_mul_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
    tail = _mm256_fmadd_ps(p, _mm256_maskload_ps(c + i, m), tail);
  }
  return avx2_hsum(avx2_widen_add(total, tail));
}

template <bool kBeta, bool kStream>
RNNKIT_TARGET_AVX2 void avx2_scale_impl(float* y, const float* x, const float* gamma,
                                        const float* beta, float r, int64_t n) {
  const __m256 rv = _mm256_set1_ps(r);
  int64_t i = 0;
  if (kStream) {
    // Streaming stores need 32-byte alignment; the few leading elements take plain stores.
    for (; i < n && (reinterpret_cast<uintptr_t>(y + i) & 31) != 0; ++i)
      y[i] = x[i] * (r * gamma[i]) + (kBeta ? beta[i] : 0.f);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 g = _mm256_mul_ps(rv, _mm256_loadu_ps(gamma + i));
    __m256 v = kBeta ? _mm256_fmadd_ps(_mm256_loadu_ps(x + i), g, _mm256_loadu_ps(beta + i))
                     : _mm256_mul_ps(_mm256_loadu_ps(x + i), g);
    if (kStream) {
      _mm256_stream_ps(y + i, v);
    } else {
      _mm256_storeu_ps(y + i, v);
    }
  }
  if (i < n) {
    __m256i m = avx2_tail_mask(n - i);
    __m256 g = _mm256_mul_ps(rv, _mm256_maskload_ps(gamma + i, m));
    __m256 v = kBeta ? _mm256_fmadd_ps(_mm256_maskload_ps(x + i, m), g,
                                       _mm256_maskload_ps(beta + i, m))
                     : _mm256_mul_ps(_mm256_maskload_ps(x + i, m), g);
    _mm256_maskstore_ps(y + i, m, v);
  }
}

RNNKIT_TARGET_AVX2 void avx2_scale(float* y, const float* x, const float* gamma,
                                   const float* beta, float r, int64_t n, bool stream) {
  if (beta) {
    stream ? avx2_scale_impl<true, true>(y, x, gamma, beta, r, n)
           : avx2_scale_impl<true, false>(y, x, gamma, beta, r, n);
  } else {
    stream ? avx2_scale_impl<false, true>(y, x, gamma, beta, r, n)
           : avx2_scale_impl<false, false>(y, x, gamma, beta, r, n);
  }
}

// One vector of the backward; `mask` selects the lanes of a partial vector (null: all eight).
template <bool kStream, bool kDx, bool kDg, bool kDb>
RNNKIT_TARGET_AVX2 inline void avx2_backward_step(float* dx, float* dg, float* db,
                                                  const float* dy, const float* x,
                                                  const float* gamma, __m256 rv, __m256 cv,
                                                  int64_t i, const __m256i* mask) {
  auto load = [mask](const float* p) RNNKIT_TARGET_AVX2 {
    return mask ? _mm256_maskload_ps(p, *mask) : _mm256_loadu_ps(p);
  };
  auto store = [mask](float* p, __m256 v) RNNKIT_TARGET_AVX2 {
    mask ? _mm256_maskstore_ps(p, *mask, v) : _mm256_storeu_ps(p, v);
  };
  const __m256 dyv = load(dy + i);
  const __m256 xv = (kDx || kDg) ? load(x + i) : _mm256_setzero_ps();
  if (kDx) {
    __m256 v = _mm256_mul_ps(rv, _mm256_fnmadd_ps(cv, xv, _mm256_mul_ps(dyv, load(gamma + i))));
    if (kStream && !mask) {
      _mm256_stream_ps(dx + i, v);
    } else {
      store(dx + i, v);
    }
  }
  if (kDg) store(dg + i, _mm256_fmadd_ps(_mm256_mul_ps(dyv, rv), xv, load(dg + i)));
  if (kDb) store(db + i, _mm256_add_ps(dyv, load(db + i)));
}

template <bool kStream, bool kDx, bool kDg, bool kDb>
struct Avx2Backward {
  RNNKIT_TARGET_AVX2 static void run(float* dx, float* dg, float* db, const float* dy,
                                     const float* x, const float* gamma, float r, float c,
                                     int64_t n) {
    if (!(kDx || kDg || kDb)) return;
    const __m256 rv = _mm256_set1_ps(r), cv = _mm256_set1_ps(c);
    int64_t i = 0;
    if (kStream && kDx) {
      // Streaming stores need 32-byte alignment: a partial vector first reaches it.
      const int64_t head =
          std::min(n, static_cast<int64_t>((32 - (reinterpret_cast<uintptr_t>(dx) & 31)) & 31) / 4);
      if (head > 0) {
        const __m256i m = avx2_tail_mask(head);
        avx2_backward_step<kStream, kDx, kDg, kDb>(dx, dg, db, dy, x, gamma, rv, cv, 0, &m);
        i = head;
      }
    }
    for (; i + 8 <= n; i += 8)
      avx2_backward_step<kStream, kDx, kDg, kDb>(dx, dg, db, dy, x, gamma, rv, cv, i, nullptr);
    if (i < n) {
      const __m256i m = avx2_tail_mask(n - i);
      avx2_backward_step<kStream, kDx, kDg, kDb>(dx, dg, db, dy, x, gamma, rv, cv, i, &m);
    }
  }
};

const RowKernels kAvx2 = {
    avx2_sum_squares,
    avx2_sum_product3,
    avx2_scale,
    backward_table<Avx2Backward>(std::make_index_sequence<16>()),
};

// ---------------------------------------------------------------------------------------------
// AVX-512: the AVX2 scheme with sixteen lanes and mask registers for the tails.

// GCC 12's AVX-512 headers seed some intrinsics with deliberately undefined values and then warn
// about them (GCC bug 105593); nothing here reads an undefined lane.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

RNNKIT_TARGET_AVX512 inline __m512d avx512_widen_add(__m512d acc, __m512 v) {
  acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
  return _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
}

RNNKIT_TARGET_AVX512 inline __mmask16 avx512_tail_mask(int64_t rem) {
  return static_cast<__mmask16>((1u << rem) - 1u);
}

RNNKIT_TARGET_AVX512 double avx512_sum_squares(const float* x, int64_t n) {
  __m512d total = _mm512_setzero_pd();
  const int64_t n64 = n & ~int64_t{63};
  int64_t i = 0;
  while (i < n64) {
    const int64_t end = std::min(n64, i + kSumBlock);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (; i < end; i += 64) {
      __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
      __m512 v2 = _mm512_loadu_ps(x + i + 32), v3 = _mm512_loadu_ps(x + i + 48);
      a0 = _mm512_fmadd_ps(v0, v0, a0);
      a1 = _mm512_fmadd_ps(v1, v1, a1);
      a2 = _mm512_fmadd_ps(v2, v2, a2);
      a3 = _mm512_fmadd_ps(v3, v3, a3);
    }
    total = avx512_widen_add(total, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  }
  __m512 tail = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_loadu_ps(x + i);
    tail = _mm512_fmadd_ps(v, v, tail);
  }
  if (i < n) {
    __m512 v = _mm512_maskz_loadu_ps(avx512_tail_mask(n - i), x + i);
    tail = _mm512_fmadd_ps(v, v, tail);
  }
  return _mm512_reduce_add_pd(avx512_widen_add(total, tail));
}

RNNKIT_TARGET_AVX512 double avx512_sum_product3(const float* a, const float* b, const float* c,
                                                int64_t n) {
  __m512d total = _mm512_setzero_pd();
  const int64_t n32 = n & ~int64_t{31};
  int64_t i = 0;
  while (i < n32) {
    const int64_t end = std::min(n32, i + kSumBlock);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    for (; i < end; i += 32) {
      __m512 p0 = _mm512_mul_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
      __m512 p1 = _mm512_mul_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
      s0 = _mm512_fmadd_ps(p0, _mm512_loadu_ps(c + i), s0);
      s1 = _mm512_fmadd_ps(p1, _mm512_loadu_ps(c + i + 16), s1);
    }
    total = avx512_widen_add(total, _mm512_add_ps(s0, s1));
  }
  __m512 tail = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    __m512 p = _mm512_mul_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    tail = _mm512_fmadd_ps(p, _mm512_loadu_ps(c + i), tail);
  }
  if (i < n) {
    __mmask16 m = avx512_tail_mask(n - i);
    __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
    tail = _mm512_fmadd_ps(p, _mm512_maskz_loadu_ps(m, c + i), tail);
  }
  return _mm512_reduce_add_pd(avx512_widen_add(total, tail));
}

template <bool kBeta, bool kStream>
RNNKIT_TARGET_AVX512 void avx512_scale_impl(float* y, const float* x, const float* gamma,
                                            const float* beta, float r, int64_t n) {
  const __m512 rv = _mm512_set1_ps(r);
  int64_t i = 0;
  if (kStream) {
    // Streaming stores need 64-byte alignment; the few leading elements take plain stores.
    for (; i < n && (reinterpret_cast<uintptr_t>(y + i) & 63) != 0; ++i)
      y[i] = x[i] * (r * gamma[i]) + (kBeta ? beta[i] : 0.f);
  }
  for (; i + 16 <= n; i += 16) {
    __m512 g = _mm512_mul_ps(rv, _mm512_loadu_ps(gamma + i));
    __m512 v = kBeta ? _mm512_fmadd_ps(_mm512_loadu_ps(x + i), g, _mm512_loadu_ps(beta + i))
                     : _mm512_mul_ps(_mm512_loadu_ps(x + i), g);
    if (kStream) {
      _mm512_stream_ps(y + i, v);
    } else {
      _mm512_storeu_ps(y + i, v);
    }
  }
  if (i < n) {
    __mmask16 m = avx512_tail_mask(n - i);
    __m512 g = _mm512_mul_ps(rv, _mm512_maskz_loadu_ps(m, gamma + i));
    __m512 v = kBeta ? _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), g,
                                       _mm512_maskz_loadu_ps(m, beta + i))
                     : _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), g);
    _mm512_mask_storeu_ps(y + i, m, v);
  }
}

RNNKIT_TARGET_AVX512 void avx512_scale(float* y, const float* x, const float* gamma,
                                       const float* beta, float r, int64_t n, bool stream) {
  if (beta) {
    stream ? avx512_scale_impl<true, true>(y, x, gamma, beta, r, n)
           : avx512_scale_impl<true, false>(y, x, gamma, beta, r, n);
  } else {
    stream ? avx512_scale_impl<false, true>(y, x, gamma, beta, r, n)
           : avx512_scale_impl<false, false>(y, x, gamma, beta, r, n);
  }
}

// One vector of the backward over the lanes in `m`; full vectors may stream dx.
template <bool kStream, bool kDx, bool kDg, bool kDb>
RNNKIT_TARGET_AVX512 inline void avx512_backward_step(float* dx, float* dg, float* db,
                                                      const float* dy, const float* x,
                                                      const float* gamma, __m512 rv, __m512 cv,
                                                      int64_t i, __mmask16 m) {
  const __m512 dyv = _mm512_maskz_loadu_ps(m, dy + i);
  const __m512 xv = (kDx || kDg) ? _mm512_maskz_loadu_ps(m, x + i) : _mm512_setzero_ps();
  if (kDx) {
    __m512 gv = _mm512_maskz_loadu_ps(m, gamma + i);
    __m512 v = _mm512_mul_ps(rv, _mm512_fnmadd_ps(cv, xv, _mm512_mul_ps(dyv, gv)));
    if (kStream && m == 0xffff) {
      _mm512_stream_ps(dx + i, v);
    } else {
      _mm512_mask_storeu_ps(dx + i, m, v);
    }
  }
  if (kDg) {
    __m512 v = _mm512_fmadd_ps(_mm512_mul_ps(dyv, rv), xv, _mm512_maskz_loadu_ps(m, dg + i));
    _mm512_mask_storeu_ps(dg + i, m, v);
  }
  if (kDb) _mm512_mask_storeu_ps(db + i, m, _mm512_add_ps(dyv, _mm512_maskz_loadu_ps(m, db + i)));
}

template <bool kStream, bool kDx, bool kDg, bool kDb>
struct Avx512Backward {
  RNNKIT_TARGET_AVX512 static void run(float* dx, float* dg, float* db, const float* dy,
                                       const float* x, const float* gamma, float r, float c,
                                       int64_t n) {
    if (!(kDx || kDg || kDb)) return;
    const __m512 rv = _mm512_set1_ps(r), cv = _mm512_set1_ps(c);
    int64_t i = 0;
    if (kStream && kDx) {
      // Streaming stores need 64-byte alignment: a partial vector first reaches it.
      const int64_t head =
          std::min(n, static_cast<int64_t>((64 - (reinterpret_cast<uintptr_t>(dx) & 63)) & 63) / 4);
      if (head > 0) {
        avx512_backward_step<kStream, kDx, kDg, kDb>(dx, dg, db, dy, x, gamma, rv, cv, 0,
                                                     avx512_tail_mask(head));
        i = head;
      }
    }
    for (; i + 16 <= n; i += 16)
      avx512_backward_step<kStream, kDx, kDg, kDb>(dx, dg, db, dy, x, gamma, rv, cv, i, 0xffff);
    if (i < n)
      avx512_backward_step<kStream, kDx, kDg, kDb>(dx, dg, db, dy, x, gamma, rv, cv, i,
                                                   avx512_tail_mask(n - i));
  }
};

const RowKernels kAvx512 = {
    avx512_sum_squares,
    avx512_sum_product3,
    avx512_scale,
    backward_table<Avx512Backward>(std::make_index_sequence<16>()),
};

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // RNNKIT_RMSNORM_X86

const RowKernels& kernels() {
  switch (active_isa()) {
#ifdef RNNKIT_RMSNORM_X86
    case Isa::avx512: return kAvx512;
    case Isa::avx2: return kAvx2;
#endif
#ifdef RNNKIT_ISA_ARM64
    case Isa::neon: return kNeon;
#endif
    default: break;
  }
  return kPortable;
}

// Streaming stores are weakly ordered: fence them before the pool reports the job done, so the
// caller (another core) is guaranteed to see them.
void fence_streaming_stores() {
#ifdef RNNKIT_RMSNORM_X86
  _mm_sfence();
#endif
}

// ---------------------------------------------------------------------------------------------
// Work split.

struct Split {
  int threads;        // pool threads to use
  bool by_columns;    // threads own column ranges of all rows rather than ranges of rows
};

Split choose_split(int64_t rows, int64_t cols) {
  int64_t by_work = std::max<int64_t>(1, rows * cols / kMinElemsPerThread);
  int threads = static_cast<int>(std::min<int64_t>(num_threads(), by_work));
  if (threads <= 1 || in_parallel_region()) return {1, false};
  // With fewer than about four rows per thread a row split leaves threads idle (or unbalanced),
  // so wide rows are cut into column ranges instead.
  if (rows >= 4 * static_cast<int64_t>(threads)) return {threads, false};
  int64_t by_cols = cols / kMinSliceCols;
  if (by_cols >= 2) return {static_cast<int>(std::min<int64_t>(threads, by_cols)), true};
  return {static_cast<int>(std::min<int64_t>(threads, rows)), false};
}

// Column range of thread `tid` of `n`, with boundaries on multiples of 16 columns so that threads
// do not share cache lines of rows that start 64-byte aligned.
void column_range(int64_t cols, int tid, int n, int64_t* c0, int64_t* c1) {
  auto edge = [&](int t) { return std::min(cols, (cols * t / n + 15) & ~int64_t{15}); };
  *c0 = edge(tid);
  *c1 = tid + 1 == n ? cols : edge(tid + 1);
}

void row_range(int64_t rows, int tid, int n, int64_t* r0, int64_t* r1) {
  *r0 = rows * tid / n;
  *r1 = rows * (tid + 1) / n;
}

float inverse_rms(double sum_squares, int64_t cols, float eps) {
  return static_cast<float>(1.0 / std::sqrt(sum_squares / static_cast<double>(cols) + eps));
}

// c in dx = rrms * (dy*gamma - c*x): rrms^2 * s / cols. Factoring one rrms out keeps c within
// float range when rrms is huge (eps = 0 and tiny rows), where rrms^3 alone would overflow.
float dx_x_coefficient(float r, double s, int64_t cols) {
  double rd = r;
  return static_cast<float>(rd * rd * s / static_cast<double>(cols));
}

// Scratch memory kept by the calling thread between calls, so that large per-thread gradient
// buffers are not page-faulted in again on every call. It grows to the largest problem seen
// (threads * cols * 24 bytes for the backward).
struct Scratch {
  std::vector<float> floats;
  std::vector<double> doubles;
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// One thread's dgamma/dbeta accumulators over a column range. Rows go into the float buffers a
// block at a time; full blocks are added into the double buffers. A thread that had at most
// kGradRowBlock rows never flushes, and its result stays in the float buffers.
struct GradBuffers {
  float* stage_g;
  float* stage_b;
  double* sum_g;
  double* sum_b;
  int64_t n;

  static bool result_in_stage(int64_t rows) { return rows <= kGradRowBlock; }

  void clear_stage() const {
    if (stage_g) std::fill(stage_g, stage_g + n, 0.f);
    if (stage_b) std::fill(stage_b, stage_b + n, 0.f);
  }
  void flush(bool first) const {
    flush_one(stage_g, sum_g, first);
    flush_one(stage_b, sum_b, first);
  }

 private:
  void flush_one(float* stage, double* sum, bool first) const {
    if (!stage) return;
    for (int64_t j = 0; j < n; ++j) sum[j] = (first ? 0.0 : sum[j]) + stage[j];
    std::fill(stage, stage + n, 0.f);
  }
};

// Carves `slots` sets of gradient buffers of `width` columns (padded to 64 bytes) out of the
// scratch memory; buffers the caller did not ask for are null.
class GradScratch {
 public:
  GradScratch(int slots, int64_t width, bool want_g, bool want_b)
      : stride_((width + 15) & ~int64_t{15}), want_g_(want_g), want_b_(want_b) {
    Scratch& s = scratch();
    size_t need = static_cast<size_t>(slots) * static_cast<size_t>(stride_) * 2 + 16;
    if (s.floats.size() < need) s.floats.resize(need);
    if (s.doubles.size() < need) s.doubles.resize(need);
    floats_ = align64(s.floats.data());
    doubles_ = align64(s.doubles.data());
  }

  GradBuffers slot(int i, int64_t n) const {
    int64_t base = static_cast<int64_t>(i) * stride_ * 2;
    return {want_g_ ? floats_ + base : nullptr, want_b_ ? floats_ + base + stride_ : nullptr,
            want_g_ ? doubles_ + base : nullptr, want_b_ ? doubles_ + base + stride_ : nullptr, n};
  }

 private:
  template <typename T>
  static T* align64(T* p) {
    uintptr_t a = (reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63};
    return reinterpret_cast<T*>(a);
  }

  int64_t stride_;
  bool want_g_, want_b_;
  float* floats_;
  double* doubles_;
};

template <typename T>
void add_into(double* acc, const T* src, int64_t n) {
  for (int64_t j = 0; j < n; ++j) acc[j] += src[j];
}

template <typename T>
void store_gradient(float* out, const T* sum, int64_t n, bool accumulate) {
  for (int64_t j = 0; j < n; ++j) {
    double v = sum[j];
    out[j] = static_cast<float>(accumulate ? static_cast<double>(out[j]) + v : v);
  }
}

// Writes one thread's finished column sums to dgamma/dbeta (column split: no other thread has
// those columns).
void store_gradients(float* dgamma, float* dbeta, const GradBuffers& g, int64_t rows,
                     bool accumulate) {
  const bool in_stage = GradBuffers::result_in_stage(rows);
  if (dgamma) {
    in_stage ? store_gradient(dgamma, g.stage_g, g.n, accumulate)
             : store_gradient(dgamma, g.sum_g, g.n, accumulate);
  }
  if (dbeta) {
    in_stage ? store_gradient(dbeta, g.stage_b, g.n, accumulate)
             : store_gradient(dbeta, g.sum_b, g.n, accumulate);
  }
}

// Runs the fused backward over rows [r0, r1) restricted to columns [c0, c1); `s` yields the full
// row sum of dy*gamma*x for a row (only needed with dx).
template <typename RowSum>
void backward_block(const RowKernels& k, float* dx, const GradBuffers& grads, const float* dy,
                    const float* x, const float* gamma, const float* rrms, int64_t cols,
                    int64_t r0, int64_t r1, int64_t c0, int64_t c1, bool stream, RowSum s) {
  BackwardRowFn row_fn = k.backward[backward_index(stream, dx, grads.stage_g, grads.stage_b)];
  grads.clear_stage();
  bool first_flush = true;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t off = r * cols + c0;
    const float c = dx ? dx_x_coefficient(rrms[r], s(r), cols) : 0.f;
    row_fn(dx ? dx + off : nullptr, grads.stage_g, grads.stage_b, dy + off, x + off, gamma + c0,
           rrms[r], c, c1 - c0);
    const bool block_done = (r - r0) % kGradRowBlock == kGradRowBlock - 1 || r + 1 == r1;
    if (block_done && !GradBuffers::result_in_stage(r1 - r0)) {
      grads.flush(first_flush);
      first_flush = false;
    }
  }
  if (stream) fence_streaming_stores();
}

}  // namespace

void rmsnorm_forward(float* y, float* rrms, const float* x, const float* gamma,
                     const float* beta, int64_t rows, int64_t cols, float eps) {
  if (rows <= 0 || cols <= 0) return;
  const RowKernels& k = kernels();
  const Split split = choose_split(rows, cols);
  const bool stream = rows * cols * static_cast<int64_t>(sizeof(float)) >= kStreamBytes;

  if (!split.by_columns) {
    parallel_run(split.threads, [&](int tid, int n) {
      int64_t r0, r1;
      row_range(rows, tid, n, &r0, &r1);
      for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * cols;
        const float rr = inverse_rms(k.sum_squares(xr, cols), cols, eps);
        rrms[r] = rr;
        k.scale(y + r * cols, xr, gamma, beta, rr, cols, stream);
      }
      if (stream) fence_streaming_stores();
    });
    return;
  }

  // Column split: partial sums of squares per (row, range), then each thread finishes every
  // row's norm in the same order and scales its own range (which it has just read, so it is
  // still in its cache).
  const int nt = split.threads;
  std::vector<double> partial(static_cast<size_t>(rows * nt));
  parallel_run(nt, [&](int tid, int n) {
    int64_t c0, c1;
    column_range(cols, tid, n, &c0, &c1);
    for (int64_t r = 0; r < rows; ++r)
      partial[r * nt + tid] = k.sum_squares(x + r * cols + c0, c1 - c0);
  });
  parallel_run(nt, [&](int tid, int n) {
    int64_t c0, c1;
    column_range(cols, tid, n, &c0, &c1);
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int t = 0; t < nt; ++t) ss += partial[r * nt + t];
      const float rr = inverse_rms(ss, cols, eps);
      if (tid == 0) rrms[r] = rr;
      k.scale(y + r * cols + c0, x + r * cols + c0, gamma + c0, beta ? beta + c0 : nullptr, rr,
              c1 - c0, stream);
    }
    if (stream) fence_streaming_stores();
  });
}

void rmsnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                      const float* gamma, const float* rrms, int64_t rows, int64_t cols,
                      bool accumulate) {
  if (cols <= 0) return;
  if (rows <= 0) {
    // No rows: the gradients of gamma and beta are empty sums.
    if (!accumulate) {
      if (dgamma) std::fill(dgamma, dgamma + cols, 0.f);
      if (dbeta) std::fill(dbeta, dbeta + cols, 0.f);
    }
    return;
  }
  const RowKernels& k = kernels();
  const Split split = choose_split(rows, cols);
  const int nt = split.threads;
  const bool stream = dx && rows * cols * static_cast<int64_t>(sizeof(float)) >= kStreamBytes;

  if (!split.by_columns) {
    GradScratch scratch_buffers(nt, cols, dgamma != nullptr, dbeta != nullptr);
    parallel_run(nt, [&](int tid, int n) {
      int64_t r0, r1;
      row_range(rows, tid, n, &r0, &r1);
      auto row_sum = [&](int64_t r) {
        return k.sum_product3(dy + r * cols, gamma, x + r * cols, cols);
      };
      backward_block(k, dx, scratch_buffers.slot(tid, cols), dy, x, gamma, rrms, cols, r0, r1, 0,
                     cols, stream, row_sum);
    });
    if (!dgamma && !dbeta) return;
    // Sum the per-thread buffers column by column, threads in a fixed order.
    parallel_for(cols, std::max<int64_t>(kReduceCols, kMinElemsPerThread / nt), [&](int64_t c0, int64_t c1) {
      double sum_g[kReduceCols], sum_b[kReduceCols];
      for (int64_t j0 = c0; j0 < c1; j0 += kReduceCols) {
        const int64_t w = std::min(kReduceCols, c1 - j0);
        std::fill(sum_g, sum_g + w, 0.0);
        std::fill(sum_b, sum_b + w, 0.0);
        for (int t = 0; t < nt; ++t) {
          int64_t r0, r1;
          row_range(rows, t, nt, &r0, &r1);
          if (r0 == r1) continue;
          const GradBuffers g = scratch_buffers.slot(t, cols);
          const bool in_stage = GradBuffers::result_in_stage(r1 - r0);
          if (dgamma) {
            in_stage ? add_into(sum_g, g.stage_g + j0, w) : add_into(sum_g, g.sum_g + j0, w);
          }
          if (dbeta) {
            in_stage ? add_into(sum_b, g.stage_b + j0, w) : add_into(sum_b, g.sum_b + j0, w);
          }
        }
        if (dgamma) store_gradient(dgamma + j0, sum_g, w, accumulate);
        if (dbeta) store_gradient(dbeta + j0, sum_b, w, accumulate);
      }
    });
    return;
  }

  // Column split: partial row sums per (row, range) first (only dx needs them); then each thread
  // runs the fused pass over its columns of every row and owns those columns of dgamma/dbeta
  // outright, so no cross-thread reduction is needed.
  std::vector<double> partial;
  if (dx) {
    partial.resize(static_cast<size_t>(rows * nt));
    parallel_run(nt, [&](int tid, int n) {
      int64_t c0, c1;
      column_range(cols, tid, n, &c0, &c1);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t off = r * cols + c0;
        partial[r * nt + tid] = k.sum_product3(dy + off, gamma + c0, x + off, c1 - c0);
      }
    });
  }
  GradScratch scratch_buffers(nt, (cols + nt - 1) / nt + 16, dgamma != nullptr, dbeta != nullptr);
  parallel_run(nt, [&](int tid, int n) {
    int64_t c0, c1;
    column_range(cols, tid, n, &c0, &c1);
    const GradBuffers grads = scratch_buffers.slot(tid, c1 - c0);
    auto row_sum = [&](int64_t r) {
      double s = 0;
      for (int t = 0; t < nt; ++t) s += partial[r * nt + t];
      return s;
    };
    backward_block(k, dx, grads, dy, x, gamma, rrms, cols, 0, rows, c0, c1, stream, row_sum);
    store_gradients(dgamma ? dgamma + c0 : nullptr, dbeta ? dbeta + c0 : nullptr, grads, rows,
                    accumulate);
  });
}

}  // namespace rnnkit
