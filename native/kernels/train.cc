// Training kernels (contract and update formulas in train.h).
//
// Each optimizer has one scalar element function, used by the portable path and for the tails of
// the AVX2 path, and an AVX2 loop that performs the very same float operations eight lanes at a
// time (no FMA, IEEE sqrt and division), so the two paths agree bit for bit. The AVX2 loops are
// written with intrinsics because the build keeps errno semantics for sqrt, which stops the
// compiler from vectorizing the plain loops. Elementwise work is split over the compute pool in
// ranges of at least kGrain elements; reductions use fixed chunks so their sums do not depend on
// the thread count.
#include "train.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_features.h"
#include "isa_target.h"
#include "parallel.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define RNNKIT_TRAIN_X86 1
#endif

namespace rnnkit {
namespace {

// Below this many elements per thread the pool's wake-up costs more than the work.
constexpr int64_t kGrain = 32768;
// Elements per partial sum of a reduction: the unit of work and of the fixed summation order.
constexpr int64_t kChunk = 8192;

bool use_avx2() {
#if RNNKIT_TRAIN_X86
  return active_isa() != Isa::portable;
#else
  return false;
#endif
}

// Mirrors _mm256_max_ps(a, b) (b when either is NaN), so both paths treat NaN alike.
inline float max_like_avx(float a, float b) { return a > b ? a : b; }

// ---------------------------------------------------------------------------------------------
// SGD

inline void sgd_elem(float* p, const float* g, float* b, int64_t i, const SgdHyper& h) {
  float gg = g[i];
  if (h.weight_decay != 0.f) gg = gg + h.weight_decay * p[i];
  if (h.momentum != 0.f) {
    float bb = h.first_step ? gg : h.momentum * b[i] + (1.f - h.dampening) * gg;
    b[i] = bb;
    gg = h.nesterov ? gg + h.momentum * bb : bb;
  }
  p[i] = p[i] - h.lr * gg;
}

#if RNNKIT_TRAIN_X86
RNNKIT_TARGET_AVX2_NO_FMA int64_t sgd_avx2(float* p, const float* g, float* b, int64_t n,
                                    const SgdHyper& h) {
  const __m256 wd = _mm256_set1_ps(h.weight_decay), mom = _mm256_set1_ps(h.momentum);
  const __m256 damp = _mm256_set1_ps(1.f - h.dampening), lr = _mm256_set1_ps(h.lr);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 pp = _mm256_loadu_ps(p + i);
    __m256 gg = _mm256_loadu_ps(g + i);
    if (h.weight_decay != 0.f) gg = _mm256_add_ps(gg, _mm256_mul_ps(wd, pp));
    if (h.momentum != 0.f) {
      __m256 bb = h.first_step ? gg
                               : _mm256_add_ps(_mm256_mul_ps(mom, _mm256_loadu_ps(b + i)),
                                               _mm256_mul_ps(damp, gg));
      _mm256_storeu_ps(b + i, bb);
      gg = h.nesterov ? _mm256_add_ps(gg, _mm256_mul_ps(mom, bb)) : bb;
    }
    _mm256_storeu_ps(p + i, _mm256_sub_ps(pp, _mm256_mul_ps(lr, gg)));
  }
  return i;
}
#endif

// ---------------------------------------------------------------------------------------------
// Adam / AdamW

inline void adam_elem(float* p, const float* g, float* m, float* v, float* vmax, int64_t i,
                      const AdamScalars& s) {
  float pp = p[i];
  float gg = g[i];
  if (s.decoupled) {
    pp = pp * s.decay;
  } else if (s.wd != 0.f) {
    gg = gg + s.wd * pp;
  }
  float mm = m[i] + s.one_minus_b1 * (gg - m[i]);
  float vv = s.beta2 * v[i] + s.one_minus_b2 * (gg * gg);
  m[i] = mm;
  v[i] = vv;
  float vh = vv;
  if (vmax) {
    vh = max_like_avx(vmax[i], vv);
    vmax[i] = vh;
  }
  float denom = std::sqrt(vh) / s.bc2_sqrt + s.eps;
  p[i] = pp - s.step_size * (mm / denom);
}

#if RNNKIT_TRAIN_X86
RNNKIT_TARGET_AVX2_NO_FMA int64_t adam_avx2(float* p, const float* g, float* m, float* v, float* vmax,
                                     int64_t n, const AdamScalars& s) {
  const __m256 decay = _mm256_set1_ps(s.decay), wd = _mm256_set1_ps(s.wd);
  const __m256 omb1 = _mm256_set1_ps(s.one_minus_b1), b2 = _mm256_set1_ps(s.beta2);
  const __m256 omb2 = _mm256_set1_ps(s.one_minus_b2), step = _mm256_set1_ps(s.step_size);
  const __m256 bc2 = _mm256_set1_ps(s.bc2_sqrt), eps = _mm256_set1_ps(s.eps);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 pp = _mm256_loadu_ps(p + i);
    __m256 gg = _mm256_loadu_ps(g + i);
    if (s.decoupled) {
      pp = _mm256_mul_ps(pp, decay);
    } else if (s.wd != 0.f) {
      gg = _mm256_add_ps(gg, _mm256_mul_ps(wd, pp));
    }
    __m256 m0 = _mm256_loadu_ps(m + i);
    __m256 mm = _mm256_add_ps(m0, _mm256_mul_ps(omb1, _mm256_sub_ps(gg, m0)));
    __m256 vv = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)),
                              _mm256_mul_ps(omb2, _mm256_mul_ps(gg, gg)));
    _mm256_storeu_ps(m + i, mm);
    _mm256_storeu_ps(v + i, vv);
    __m256 vh = vv;
    if (vmax) {
      vh = _mm256_max_ps(_mm256_loadu_ps(vmax + i), vv);
      _mm256_storeu_ps(vmax + i, vh);
    }
    __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vh), bc2), eps);
    _mm256_storeu_ps(p + i, _mm256_sub_ps(pp, _mm256_mul_ps(step, _mm256_div_ps(mm, denom))));
  }
  return i;
}
#endif

// ---------------------------------------------------------------------------------------------
// Adagrad

inline void adagrad_elem(float* p, const float* g, float* sum, int64_t i, const AdagradScalars& s) {
  float gg = g[i];
  if (s.wd != 0.f) gg = gg + s.wd * p[i];
  float ss = sum[i] + gg * gg;
  sum[i] = ss;
  p[i] = p[i] - s.clr * (gg / (std::sqrt(ss) + s.eps));
}

#if RNNKIT_TRAIN_X86
RNNKIT_TARGET_AVX2_NO_FMA int64_t adagrad_avx2(float* p, const float* g, float* sum, int64_t n,
                                        const AdagradScalars& s) {
  const __m256 clr = _mm256_set1_ps(s.clr), wd = _mm256_set1_ps(s.wd), eps = _mm256_set1_ps(s.eps);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 pp = _mm256_loadu_ps(p + i);
    __m256 gg = _mm256_loadu_ps(g + i);
    if (s.wd != 0.f) gg = _mm256_add_ps(gg, _mm256_mul_ps(wd, pp));
    __m256 ss = _mm256_add_ps(_mm256_loadu_ps(sum + i), _mm256_mul_ps(gg, gg));
    _mm256_storeu_ps(sum + i, ss);
    __m256 q = _mm256_div_ps(gg, _mm256_add_ps(_mm256_sqrt_ps(ss), eps));
    _mm256_storeu_ps(p + i, _mm256_sub_ps(pp, _mm256_mul_ps(clr, q)));
  }
  return i;
}
#endif

// ---------------------------------------------------------------------------------------------
// RMSprop

inline void rmsprop_elem(float* p, const float* g, float* sq, float* ga, float* buf, int64_t i,
                         const RmspropHyper& h) {
  float gg = g[i];
  if (h.weight_decay != 0.f) gg = gg + h.weight_decay * p[i];
  float a = h.alpha * sq[i] + (1.f - h.alpha) * (gg * gg);
  sq[i] = a;
  float d;
  if (ga) {
    float gbar = ga[i] + (1.f - h.alpha) * (gg - ga[i]);
    ga[i] = gbar;
    d = std::sqrt(a - gbar * gbar) + h.eps;
  } else {
    d = std::sqrt(a) + h.eps;
  }
  if (buf) {
    float b = h.momentum * buf[i] + gg / d;
    buf[i] = b;
    p[i] = p[i] - h.lr * b;
  } else {
    p[i] = p[i] - h.lr * (gg / d);
  }
}

#if RNNKIT_TRAIN_X86
RNNKIT_TARGET_AVX2_NO_FMA int64_t rmsprop_avx2(float* p, const float* g, float* sq, float* ga, float* buf,
                                        int64_t n, const RmspropHyper& h) {
  const __m256 wd = _mm256_set1_ps(h.weight_decay), alpha = _mm256_set1_ps(h.alpha);
  const __m256 oma = _mm256_set1_ps(1.f - h.alpha), eps = _mm256_set1_ps(h.eps);
  const __m256 mom = _mm256_set1_ps(h.momentum), lr = _mm256_set1_ps(h.lr);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 pp = _mm256_loadu_ps(p + i);
    __m256 gg = _mm256_loadu_ps(g + i);
    if (h.weight_decay != 0.f) gg = _mm256_add_ps(gg, _mm256_mul_ps(wd, pp));
    __m256 a = _mm256_add_ps(_mm256_mul_ps(alpha, _mm256_loadu_ps(sq + i)),
                             _mm256_mul_ps(oma, _mm256_mul_ps(gg, gg)));
    _mm256_storeu_ps(sq + i, a);
    __m256 d;
    if (ga) {
      __m256 g0 = _mm256_loadu_ps(ga + i);
      __m256 gbar = _mm256_add_ps(g0, _mm256_mul_ps(oma, _mm256_sub_ps(gg, g0)));
      _mm256_storeu_ps(ga + i, gbar);
      d = _mm256_add_ps(_mm256_sqrt_ps(_mm256_sub_ps(a, _mm256_mul_ps(gbar, gbar))), eps);
    } else {
      d = _mm256_add_ps(_mm256_sqrt_ps(a), eps);
    }
    if (buf) {
      __m256 b = _mm256_add_ps(_mm256_mul_ps(mom, _mm256_loadu_ps(buf + i)), _mm256_div_ps(gg, d));
      _mm256_storeu_ps(buf + i, b);
      _mm256_storeu_ps(p + i, _mm256_sub_ps(pp, _mm256_mul_ps(lr, b)));
    } else {
      _mm256_storeu_ps(p + i, _mm256_sub_ps(pp, _mm256_mul_ps(lr, _mm256_div_ps(gg, d))));
    }
  }
  return i;
}
#endif

// Runs an optimizer over [0, n) on the pool: `vec(begin, end)` handles a leading part of a range
// (returning how far it got, as an offset from begin) and `elem(i)` finishes it.
template <class Vec, class Elem>
void run_elementwise(int64_t n, Vec vec, Elem elem) {
  const bool avx2 = use_avx2();
  parallel_for(n, kGrain, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
    if (avx2) i += vec(begin, end - begin);
    for (; i < end; ++i) elem(i);
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

void sgd_step(float* p, const float* g, float* buf, int64_t n, const SgdHyper& h) {
  run_elementwise(
      n,
      [&](int64_t b, int64_t len) -> int64_t {
#if RNNKIT_TRAIN_X86
        return sgd_avx2(p + b, g + b, buf ? buf + b : nullptr, len, h);
#else
        (void)b;
        (void)len;
        return 0;
#endif
      },
      [&](int64_t i) { sgd_elem(p, g, buf, i, h); });
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
#if RNNKIT_TRAIN_X86
        return adam_avx2(p + b, g + b, m + b, v + b, vmax ? vmax + b : nullptr, len, s);
#else
        (void)b;
        (void)len;
        return 0;
#endif
      },
      [&](int64_t i) { adam_elem(p, g, m, v, vmax, i, s); });
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
#if RNNKIT_TRAIN_X86
        return adagrad_avx2(p + b, g + b, sum + b, len, s);
#else
        (void)b;
        (void)len;
        return 0;
#endif
      },
      [&](int64_t i) { adagrad_elem(p, g, sum, i, s); });
}

void rmsprop_step(float* p, const float* g, float* square_avg, float* grad_avg, float* buf,
                  int64_t n, const RmspropHyper& h) {
  float* mbuf = h.momentum > 0.f ? buf : nullptr;
  run_elementwise(
      n,
      [&](int64_t b, int64_t len) -> int64_t {
#if RNNKIT_TRAIN_X86
        return rmsprop_avx2(p + b, g + b, square_avg + b, grad_avg ? grad_avg + b : nullptr,
                            mbuf ? mbuf + b : nullptr, len, h);
#else
        (void)b;
        (void)len;
        return 0;
#endif
      },
      [&](int64_t i) { rmsprop_elem(p, g, square_avg, grad_avg, mbuf, i, h); });
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
