// Training kernels (contract and update formulas in train.h).
//
// Each optimizer's update is written once, as a template over its lanes: one float (the portable
// path, and the tails of the vector path) or a vector of floats (AVX2 on x86-64, NEON on arm64).
// Both perform the very same float operations in the same order (no FMA, IEEE sqrt and division),
// so the paths agree bit for bit. The vector lanes use the compiler's vector extensions; only sqrt
// needs an intrinsic, because the build keeps errno semantics for sqrt, which stops the compiler
// from vectorizing it. Elementwise work is split over the compute pool in ranges of at least
// kGrain elements; reductions use fixed chunks so their sums do not depend on the thread count.
#include "train.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "activations.h"
#include "cpu_features.h"
#include "isa_target.h"
#include "parallel.h"

#if defined(RNNKIT_ISA_X86)
#include <immintrin.h>
#define RNNKIT_TRAIN_SIMD 1
// No FMA, so that the vector path rounds like the scalar one.
#define RNNKIT_TRAIN_TARGET RNNKIT_TARGET_AVX2_NO_FMA
#elif defined(RNNKIT_ISA_ARM64)
#include <arm_neon.h>
#define RNNKIT_TRAIN_SIMD 1
// Unfused too: the arm64 build turns off multiply-add contraction (isa_target.h).
#define RNNKIT_TRAIN_TARGET RNNKIT_TARGET_NEON
#endif

namespace rnnkit {
namespace {

// Below this many elements per thread the pool's wake-up costs more than the work.
constexpr int64_t kGrain = 32768;
// Elements per partial sum of a reduction: the unit of work and of the fixed summation order.
constexpr int64_t kChunk = 8192;

// One float at a time.
struct ScalarLanes {
  typedef float T;
  static constexpr int W = 1;
  static RNNKIT_INLINE T load(const float* p) { return *p; }
  static RNNKIT_INLINE void store(float* p, T v) { *p = v; }
  static RNNKIT_INLINE T sqrt(T x) { return std::sqrt(x); }
  // b when either is NaN, like the vector max below and x86's maxps.
  static RNNKIT_INLINE T max(T a, T b) { return a > b ? a : b; }
};

#ifdef RNNKIT_TRAIN_SIMD
#if defined(RNNKIT_ISA_X86)
typedef act::V8 SimdV;
// Plain inline (not always_inline): it is inlined once the lane templates sit inside an AVX2
// function, which a template without the target attribute could not do by force.
RNNKIT_TRAIN_TARGET inline SimdV::F simd_sqrt(SimdV::F x) { return _mm256_sqrt_ps(x); }
#else
typedef act::V4 SimdV;
RNNKIT_TRAIN_TARGET inline SimdV::F simd_sqrt(SimdV::F x) { return vsqrtq_f32(x); }
#endif

// SimdV::W floats at a time.
struct SimdLanes {
  typedef SimdV::F T;
  static constexpr int W = SimdV::W;
  static RNNKIT_INLINE T load(const float* p) { return act::load<SimdV>(p, W); }
  static RNNKIT_INLINE void store(float* p, T v) { act::store<SimdV>(p, v, W); }
  static T sqrt(T x) { return simd_sqrt(x); }
  static RNNKIT_INLINE T max(T a, T b) { return act::select<SimdV>(a > b, a, b); }
};

bool use_simd() {
#if defined(RNNKIT_ISA_X86)
  return active_isa() != Isa::portable;
#else
  return active_isa() == Isa::neon;
#endif
}
#endif

// ---------------------------------------------------------------------------------------------
// SGD

template <class L>
RNNKIT_INLINE void sgd_lanes(float* p, const float* g, float* b, int64_t i, const SgdHyper& h) {
  typedef typename L::T T;
  const T pp = L::load(p + i);
  T gg = L::load(g + i);
  if (h.weight_decay != 0.f) gg = gg + h.weight_decay * pp;
  if (h.momentum != 0.f) {
    T bb = gg;
    if (!h.first_step) bb = h.momentum * L::load(b + i) + (1.f - h.dampening) * gg;
    L::store(b + i, bb);
    gg = h.nesterov ? gg + h.momentum * bb : bb;
  }
  L::store(p + i, pp - h.lr * gg);
}

// ---------------------------------------------------------------------------------------------
// Adam / AdamW

template <class L>
RNNKIT_INLINE void adam_lanes(float* p, const float* g, float* m, float* v, float* vmax,
                              int64_t i, const AdamScalars& s) {
  typedef typename L::T T;
  T pp = L::load(p + i);
  T gg = L::load(g + i);
  if (s.decoupled) {
    pp = pp * s.decay;
  } else if (s.wd != 0.f) {
    gg = gg + s.wd * pp;
  }
  const T m0 = L::load(m + i);
  const T mm = m0 + s.one_minus_b1 * (gg - m0);
  const T vv = s.beta2 * L::load(v + i) + s.one_minus_b2 * (gg * gg);
  L::store(m + i, mm);
  L::store(v + i, vv);
  T vh = vv;
  if (vmax) {
    vh = L::max(L::load(vmax + i), vv);
    L::store(vmax + i, vh);
  }
  const T denom = L::sqrt(vh) / s.bc2_sqrt + s.eps;
  L::store(p + i, pp - s.step_size * (mm / denom));
}

// ---------------------------------------------------------------------------------------------
// Adagrad

template <class L>
RNNKIT_INLINE void adagrad_lanes(float* p, const float* g, float* sum, int64_t i,
                                 const AdagradScalars& s) {
  typedef typename L::T T;
  const T pp = L::load(p + i);
  T gg = L::load(g + i);
  if (s.wd != 0.f) gg = gg + s.wd * pp;
  const T ss = L::load(sum + i) + gg * gg;
  L::store(sum + i, ss);
  L::store(p + i, pp - s.clr * (gg / (L::sqrt(ss) + s.eps)));
}

// ---------------------------------------------------------------------------------------------
// RMSprop

template <class L>
RNNKIT_INLINE void rmsprop_lanes(float* p, const float* g, float* sq, float* ga, float* buf,
                                 int64_t i, const RmspropHyper& h) {
  typedef typename L::T T;
  const T pp = L::load(p + i);
  T gg = L::load(g + i);
  if (h.weight_decay != 0.f) gg = gg + h.weight_decay * pp;
  const T a = h.alpha * L::load(sq + i) + (1.f - h.alpha) * (gg * gg);
  L::store(sq + i, a);
  T d;
  if (ga) {
    const T g0 = L::load(ga + i);
    const T gbar = g0 + (1.f - h.alpha) * (gg - g0);
    L::store(ga + i, gbar);
    d = L::sqrt(a - gbar * gbar) + h.eps;
  } else {
    d = L::sqrt(a) + h.eps;
  }
  if (buf) {
    const T b = h.momentum * L::load(buf + i) + gg / d;
    L::store(buf + i, b);
    L::store(p + i, pp - h.lr * b);
  } else {
    L::store(p + i, pp - h.lr * (gg / d));
  }
}

#ifdef RNNKIT_TRAIN_SIMD
// The vector loops: each returns how many leading elements it updated (a multiple of the width).
RNNKIT_TRAIN_TARGET int64_t sgd_simd(float* p, const float* g, float* b, int64_t n,
                                     const SgdHyper& h) {
  int64_t i = 0;
  for (; i + SimdLanes::W <= n; i += SimdLanes::W) sgd_lanes<SimdLanes>(p, g, b, i, h);
  return i;
}

RNNKIT_TRAIN_TARGET int64_t adam_simd(float* p, const float* g, float* m, float* v, float* vmax,
                                      int64_t n, const AdamScalars& s) {
  int64_t i = 0;
  for (; i + SimdLanes::W <= n; i += SimdLanes::W) adam_lanes<SimdLanes>(p, g, m, v, vmax, i, s);
  return i;
}

RNNKIT_TRAIN_TARGET int64_t adagrad_simd(float* p, const float* g, float* sum, int64_t n,
                                         const AdagradScalars& s) {
  int64_t i = 0;
  for (; i + SimdLanes::W <= n; i += SimdLanes::W) adagrad_lanes<SimdLanes>(p, g, sum, i, s);
  return i;
}

RNNKIT_TRAIN_TARGET int64_t rmsprop_simd(float* p, const float* g, float* sq, float* ga,
                                         float* buf, int64_t n, const RmspropHyper& h) {
  int64_t i = 0;
  for (; i + SimdLanes::W <= n; i += SimdLanes::W)
    rmsprop_lanes<SimdLanes>(p, g, sq, ga, buf, i, h);
  return i;
}
#endif

// Runs an optimizer over [0, n) on the pool: `simd(begin, len)` handles a leading part of a range
// (returning how many elements it did) and `scalar(i)` finishes it.
template <class Simd, class Scalar>
void run_elementwise(int64_t n, Simd simd, Scalar scalar) {
#ifdef RNNKIT_TRAIN_SIMD
  const bool vector = use_simd();
#else
  const bool vector = false;
#endif
  parallel_for(n, kGrain, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
    if (vector) i += simd(begin, end - begin);
    for (; i < end; ++i) scalar(i);
  });
}

// Sums fn(chunk) over `chunks` chunks in a fixed order, computing the chunks on the pool when the
// `elements` they cover together are many.
template <class Fn>
double chunked_sum(int64_t chunks, int64_t elements, Fn fn) {
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) partial[c] = fn(c);
  };
  // Many small buffers make many chunks but little work: the pool's wake-up would cost more.
  if (elements < 2 * kGrain) run(0, chunks);
  else parallel_for(chunks, std::max<int64_t>(1, kGrain / kChunk), run);
  double total = 0.0;
  for (double v : partial) total += v;
  return total;
}

// Σ x² over n floats with four double accumulators (short dependency chains).
double sum_squares_range(const float* x, int64_t n) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += double(x[i]) * x[i];
    a1 += double(x[i + 1]) * x[i + 1];
    a2 += double(x[i + 2]) * x[i + 2];
    a3 += double(x[i + 3]) * x[i + 3];
  }
  for (; i < n; ++i) a0 += double(x[i]) * x[i];
  return (a0 + a1) + (a2 + a3);
}

// A chunk of one buffer among several: buffer index and element range.
struct Span {
  int64_t buffer, begin, end;
};

std::vector<Span> split_spans(const int64_t* sizes, int64_t count, int64_t chunk) {
  std::vector<Span> spans;
  for (int64_t b = 0; b < count; ++b)
    for (int64_t s = 0; s < sizes[b]; s += chunk) spans.push_back({b, s, std::min(sizes[b], s + chunk)});
  return spans;
}

// Runs fn(x, begin, end) over every span, on the pool when the buffers are large together.
template <class Fn>
void for_each_span(float* const* xs, const int64_t* sizes, int64_t count, Fn fn) {
  const std::vector<Span> spans = split_spans(sizes, count, kGrain);
  int64_t total = 0;
  for (int64_t b = 0; b < count; ++b) total += sizes[b];
  const int64_t n = static_cast<int64_t>(spans.size());
  parallel_for(n, total < 2 * kGrain ? n : 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) fn(xs[spans[k].buffer], spans[k].begin, spans[k].end);
  });
}

}  // namespace

#ifdef RNNKIT_TRAIN_SIMD
#define RNNKIT_SIMD_PREFIX(call) return call
#else
#define RNNKIT_SIMD_PREFIX(call) return 0
#endif

void sgd_step(float* p, const float* g, float* buf, int64_t n, const SgdHyper& h) {
  run_elementwise(
      n,
      [&](int64_t b, int64_t len) -> int64_t {
        RNNKIT_SIMD_PREFIX(sgd_simd(p + b, g + b, buf ? buf + b : nullptr, len, h));
      },
      [&](int64_t i) { sgd_lanes<ScalarLanes>(p, g, buf, i, h); });
}

AdamScalars adam_scalars(const AdamHyper& h) {
  AdamScalars s;
  s.decoupled = h.decoupled;
  s.decay = static_cast<float>(1.0 - h.lr * h.weight_decay);
  s.wd = static_cast<float>(h.weight_decay);
  s.one_minus_b1 = static_cast<float>(1.0 - h.beta1);
  s.beta2 = static_cast<float>(h.beta2);
  s.one_minus_b2 = static_cast<float>(1.0 - h.beta2);
  const double t = static_cast<double>(h.step);
  s.step_size = static_cast<float>(h.lr / (1.0 - std::pow(h.beta1, t)));
  s.bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(h.beta2, t)));
  s.eps = static_cast<float>(h.eps);
  return s;
}

void adam_step(float* p, const float* g, float* m, float* v, float* vmax, int64_t n,
               const AdamHyper& h) {
  const AdamScalars s = adam_scalars(h);
  run_elementwise(
      n,
      [&](int64_t b, int64_t len) -> int64_t {
        RNNKIT_SIMD_PREFIX(adam_simd(p + b, g + b, m + b, v + b, vmax ? vmax + b : nullptr, len, s));
      },
      [&](int64_t i) { adam_lanes<ScalarLanes>(p, g, m, v, vmax, i, s); });
}

AdagradScalars adagrad_scalars(const AdagradHyper& h) {
  AdagradScalars s;
  s.clr = static_cast<float>(h.lr / (1.0 + static_cast<double>(h.step - 1) * h.lr_decay));
  s.wd = static_cast<float>(h.weight_decay);
  s.eps = static_cast<float>(h.eps);
  return s;
}

void adagrad_step(float* p, const float* g, float* sum, int64_t n, const AdagradHyper& h) {
  const AdagradScalars s = adagrad_scalars(h);
  run_elementwise(
      n,
      [&](int64_t b, int64_t len) -> int64_t {
        RNNKIT_SIMD_PREFIX(adagrad_simd(p + b, g + b, sum + b, len, s));
      },
      [&](int64_t i) { adagrad_lanes<ScalarLanes>(p, g, sum, i, s); });
}

void rmsprop_step(float* p, const float* g, float* square_avg, float* grad_avg, float* buf,
                  int64_t n, const RmspropHyper& h) {
  float* mbuf = h.momentum > 0.f ? buf : nullptr;
  run_elementwise(
      n,
      [&](int64_t b, int64_t len) -> int64_t {
        RNNKIT_SIMD_PREFIX(rmsprop_simd(p + b, g + b, square_avg + b,
                                        grad_avg ? grad_avg + b : nullptr,
                                        mbuf ? mbuf + b : nullptr, len, h));
      },
      [&](int64_t i) { rmsprop_lanes<ScalarLanes>(p, g, square_avg, grad_avg, mbuf, i, h); });
}

double softmax_cross_entropy(float* dlogits, const float* logits, const int32_t* targets,
                             const float* mask, int64_t N, int64_t V, int32_t ignore_index,
                             bool mean) {
  auto weight = [&](int64_t r) -> double {
    if (targets[r] == ignore_index) return 0.0;
    return mask ? static_cast<double>(mask[r]) : 1.0;
  };
  double wsum = 0.0;
  for (int64_t r = 0; r < N; ++r) wsum += weight(r);
  if (wsum == 0.0) {
    if (dlogits) std::fill(dlogits, dlogits + N * V, 0.f);
    return 0.0;
  }
  const double scale = mean ? 1.0 / wsum : 1.0;
  std::vector<double> row_loss(static_cast<size_t>(N), 0.0);
  parallel_for(N, std::max<int64_t>(1, kGrain / std::max<int64_t>(V, 1)), [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(dlogits ? 0 : static_cast<size_t>(V));
    for (int64_t r = begin; r < end; ++r) {
      const double w = weight(r);
      float* d = dlogits ? dlogits + r * V : scratch.data();
      if (w == 0.0) {
        if (dlogits) std::fill(d, d + V, 0.f);
        continue;
      }
      const float* x = logits + r * V;
      float mx = x[0];
      for (int64_t j = 1; j < V; ++j) mx = x[j] > mx ? x[j] : mx;
      double sum = 0.0;
      for (int64_t j = 0; j < V; ++j) {
        d[j] = std::exp(x[j] - mx);
        sum += d[j];
      }
      const double lse = static_cast<double>(mx) + std::log(sum);
      const int32_t t = targets[r];
      row_loss[r] = w * (lse - static_cast<double>(x[t]));
      if (dlogits) {
        const double c = scale * w;
        const float f = static_cast<float>(c / sum);
        for (int64_t j = 0; j < V; ++j) d[j] *= f;
        d[t] = static_cast<float>(static_cast<double>(d[t]) - c);
      }
    }
  });
  double total = 0.0;
  for (double v : row_loss) total += v;
  return total * scale;
}

double mse(float* dy, const float* y, const float* target, int64_t n, bool mean) {
  if (n == 0) return 0.0;
  const double scale = mean ? 1.0 / static_cast<double>(n) : 1.0;
  const float c = static_cast<float>(2.0 * scale);
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  double total = chunked_sum(chunks, n, [&](int64_t k) {
    const int64_t begin = k * kChunk, end = std::min(n, begin + kChunk);
    double acc = 0.0;
    for (int64_t i = begin; i < end; ++i) {
      const double e = static_cast<double>(y[i]) - static_cast<double>(target[i]);
      acc += e * e;
    }
    if (dy)
      for (int64_t i = begin; i < end; ++i) dy[i] = c * (y[i] - target[i]);
    return acc;
  });
  return total * scale;
}

double sum_squares(const float* const* xs, const int64_t* sizes, int64_t count) {
  const std::vector<Span> spans = split_spans(sizes, count, kChunk);
  int64_t elements = 0;
  for (int64_t b = 0; b < count; ++b) elements += sizes[b];
  return chunked_sum(static_cast<int64_t>(spans.size()), elements, [&](int64_t k) {
    const Span& s = spans[k];
    return sum_squares_range(xs[s.buffer] + s.begin, s.end - s.begin);
  });
}

void scale_inplace(float* const* xs, const int64_t* sizes, int64_t count, float s) {
  for_each_span(xs, sizes, count, [s](float* x, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) x[i] = x[i] * s;
  });
}

void clamp_inplace(float* const* xs, const int64_t* sizes, int64_t count, float lo, float hi) {
  for_each_span(xs, sizes, count, [lo, hi](float* x, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float v = x[i] < lo ? lo : x[i];
      x[i] = v > hi ? hi : v;
    }
  });
}

}  // namespace rnnkit
