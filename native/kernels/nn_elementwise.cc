// Elementwise kernels of lib/nn (contract in nn_elementwise.h). The activations are written once
// over the width tag of activations.h and instantiated per ISA; the rest are plain loops the
// compiler vectorizes.
#include "nn_elementwise.h"

#include <algorithm>

#include "activations.h"
#include "cpu_features.h"
#include "dropout_hash.h"
#include "isa_target.h"
#include "parallel.h"

namespace rnnkit {
namespace {

using namespace act;

// Below this many elements per thread the pool's wake-up costs more than the work.
constexpr int64_t kElementwiseGrain = 32768;

template <class Fn>
void over_ranges(int64_t n, Fn fn) {
  if (n <= 0) return;
  if (n < 2 * kElementwiseGrain) {
    fn(int64_t(0), n);
    return;
  }
  parallel_for(n, kElementwiseGrain, fn);
}

template <class V>
RNNKIT_INLINE void activation_forward_body(float* y, const float* x, int64_t n, Activation f) {
  typedef typename V::F F;
  for (int64_t i = 0; i < n; i += V::W) {
    const int64_t w = n - i < V::W ? n - i : V::W;
    F v = load<V>(x + i, w);
    F r = f == Activation::tanh ? vtanh<V>(v) : f == Activation::sigmoid ? vsigmoid<V>(v) : vmax<V>(v, splat<V>(0.f));
    store<V>(y + i, r, w);
  }
}

template <class V>
RNNKIT_INLINE void activation_backward_body(float* dx, const float* dy, const float* y, int64_t n, Activation f) {
  typedef typename V::F F;
  const F one = splat<V>(1.f), zero = splat<V>(0.f);
  for (int64_t i = 0; i < n; i += V::W) {
    const int64_t w = n - i < V::W ? n - i : V::W;
    F g = load<V>(dy + i, w);
    F v = load<V>(y + i, w);
    F r = f == Activation::tanh ? g * (one - v * v) : f == Activation::sigmoid ? g * (v * (one - v)) : select<V>(v > zero, g, zero);
    store<V>(dx + i, r, w);
  }
}

struct ActivationKernels {
  void (*forward)(float*, const float*, int64_t, Activation);
  void (*backward)(float*, const float*, const float*, int64_t, Activation);
};

#define RNNKIT_ACTIVATION_SET(NAME, V, ATTR)                                                   \
  ATTR void NAME##_forward(float* y, const float* x, int64_t n, Activation f) {                \
    activation_forward_body<V>(y, x, n, f);                                                    \
  }                                                                                            \
  ATTR void NAME##_backward(float* dx, const float* dy, const float* y, int64_t n, Activation f) { \
    activation_backward_body<V>(dx, dy, y, n, f);                                              \
  }                                                                                            \
  const ActivationKernels NAME##_activations = {NAME##_forward, NAME##_backward};

RNNKIT_ACTIVATION_SET(portable, V4, )
#if RNNKIT_ISA_X86
RNNKIT_ACTIVATION_SET(avx2, V8, RNNKIT_TARGET_AVX2)
RNNKIT_ACTIVATION_SET(avx512, V16, RNNKIT_TARGET_AVX512)
#endif
#ifdef RNNKIT_ISA_ARM64
// Eight lanes as two q registers per operation (see the NEON cell set in recurrent_cells.cc).
RNNKIT_ACTIVATION_SET(neon, V8, RNNKIT_TARGET_NEON)
#endif

const ActivationKernels& activations_for(Isa isa) {
#if RNNKIT_ISA_X86
  if (isa == Isa::avx512) return avx512_activations;
  if (isa == Isa::avx2) return avx2_activations;
#endif
#ifdef RNNKIT_ISA_ARM64
  if (isa == Isa::neon) return neon_activations;
#endif
  (void)isa;
  return portable_activations;
}

}  // namespace

void activation_forward(float* y, const float* x, int64_t n, Activation f) {
  const ActivationKernels& k = activations_for(active_isa());
  over_ranges(n, [&](int64_t b, int64_t e) { k.forward(y + b, x + b, e - b, f); });
}

void activation_backward(float* dx, const float* dy, const float* y, int64_t n, Activation f) {
  const ActivationKernels& k = activations_for(active_isa());
  over_ranges(n, [&](int64_t b, int64_t e) { k.backward(dx + b, dy + b, y + b, e - b, f); });
}

namespace {

// out[i] = op(a[i], b[i mod m]) without a division per element: each range walks its rows.
template <class Op>
void broadcast(float* out, const float* a, const float* b, int64_t rows, int64_t m, Op op) {
  over_ranges(rows * m, [&](int64_t begin, int64_t end) {
    int64_t j = begin % m;
    for (int64_t i = begin; i < end;) {
      const int64_t stop = std::min(end, i + (m - j));
      const int64_t shift = j - i;
      for (; i < stop; ++i) out[i] = op(a[i], b[i + shift]);
      j = 0;
    }
  });
}

}  // namespace

void broadcast_add(float* out, const float* a, const float* b, int64_t rows, int64_t m) {
  broadcast(out, a, b, rows, m, [](float x, float y) { return x + y; });
}

void broadcast_mul(float* out, const float* a, const float* b, int64_t rows, int64_t m) {
  broadcast(out, a, b, rows, m, [](float x, float y) { return x * y; });
}

void affine(float* out, const float* x, int64_t n, float scale, float shift) {
  over_ranges(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = x[i] * scale + shift;
  });
}

void accumulate(float* y, const float* x, int64_t n) {
  over_ranges(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] += x[i];
  });
}

namespace {

void dropout_apply(float* out, const float* in, int64_t n, float p, uint64_t seed) {
  const float scale = 1.f / (1.f - p);
  over_ranges(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      out[i] = dropout_uniform(seed, 0, static_cast<uint64_t>(i)) >= p ? in[i] * scale : 0.f;
    }
  });
}

}  // namespace

void dropout_forward(float* y, const float* x, int64_t n, float p, uint64_t seed) {
  dropout_apply(y, x, n, p, seed);
}

void dropout_backward(float* dx, const float* dy, int64_t n, float p, uint64_t seed) {
  dropout_apply(dx, dy, n, p, seed);
}

}  // namespace rnnkit
