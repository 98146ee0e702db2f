// Vectorized exp / sigmoid / tanh for the recurrent cells, written once over GCC/Clang vector
// extensions and instantiated per ISA: a kernel body templated on a width tag (V4, V8, V16) and
// inlined into a function carrying __attribute__((target(...))) compiles to that ISA's registers,
// so no global -m flag is needed and the portable V4 path builds on any architecture.
// Accuracy: exp within ~2 ulp (Cephes polynomial), sigmoid and tanh within a few ulp absolute,
// and tanh keeps its relative accuracy near zero through a small-argument polynomial.
#pragma once
#include <cstdint>
#include <cstring>

#define RNNKIT_INLINE inline __attribute__((always_inline))

// These helpers take and return 32/64-byte vectors but are always inlined into a function of the
// matching target, so the ABI note GCC emits for them (-Wpsabi) never applies.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace rnnkit {
namespace act {

struct V4 {
  static constexpr int W = 4;
  typedef float F __attribute__((vector_size(16)));
  typedef int32_t I __attribute__((vector_size(16)));
};
struct V8 {
  static constexpr int W = 8;
  typedef float F __attribute__((vector_size(32)));
  typedef int32_t I __attribute__((vector_size(32)));
};
struct V16 {
  static constexpr int W = 16;
  typedef float F __attribute__((vector_size(64)));
  typedef int32_t I __attribute__((vector_size(64)));
};

template <class V>
RNNKIT_INLINE typename V::F splat(float s) {
  typename V::F v;
  for (int i = 0; i < V::W; ++i) v[i] = s;
  return v;
}

// Loads n <= W floats; lanes past n are zero (tails of rows whose length is not a multiple of W).
template <class V>
RNNKIT_INLINE typename V::F load(const float* p, int64_t n) {
  typename V::F v;
  if (n == V::W) {
    std::memcpy(&v, p, sizeof v);
  } else {
    v = splat<V>(0.f);
    for (int64_t i = 0; i < n; ++i) v[i] = p[i];
  }
  return v;
}

template <class V>
RNNKIT_INLINE void store(float* p, typename V::F v, int64_t n) {
  if (n == V::W) {
    std::memcpy(p, &v, sizeof v);
  } else {
    for (int64_t i = 0; i < n; ++i) p[i] = v[i];
  }
}

// Lane-wise mask ? a : b, with mask lanes all-ones or all-zeros (the result of a comparison).
template <class V>
RNNKIT_INLINE typename V::F select(typename V::I mask, typename V::F a, typename V::F b) {
  typename V::I ai, bi;
  std::memcpy(&ai, &a, sizeof a);
  std::memcpy(&bi, &b, sizeof b);
  typename V::I r = (mask & ai) | (~mask & bi);
  typename V::F out;
  std::memcpy(&out, &r, sizeof out);
  return out;
}

// min/max that return `a` when it is NaN (a comparison with NaN is false), so NaN inputs
// propagate through clamps, relu and clipping instead of turning into a finite bound.
template <class V>
RNNKIT_INLINE typename V::F vmin(typename V::F a, typename V::F b) {
  return select<V>(a > b, b, a);
}
template <class V>
RNNKIT_INLINE typename V::F vmax(typename V::F a, typename V::F b) {
  return select<V>(a < b, b, a);
}
template <class V>
RNNKIT_INLINE typename V::F vabs(typename V::F a) {
  typename V::I bits;
  std::memcpy(&bits, &a, sizeof a);
  bits &= 0x7fffffff;
  std::memcpy(&a, &bits, sizeof a);
  return a;
}

// exp(x) = 2^n · e^r with n = round(x / ln 2) and |r| <= ln2 / 2. The input is clamped so that
// 2^n stays a normal float (n in [-126, 127]); beyond that range exp under- or overflows anyway
// as far as the sigmoid and tanh built on it are concerned.
template <class V>
RNNKIT_INLINE typename V::F vexp(typename V::F x) {
  typedef typename V::F F;
  typedef typename V::I I;
  x = vmin<V>(vmax<V>(x, splat<V>(-87.0f)), splat<V>(88.0f));
  // Adding and subtracting 1.5·2^23 rounds to the nearest integer without a round instruction.
  const F magic = splat<V>(12582912.0f);
  F n = (x * splat<V>(1.44269504088896341f) + magic) - magic;
  F r = x - n * splat<V>(0.693359375f);
  r = r - n * splat<V>(-2.12194440e-4f);
  F p = splat<V>(1.9875691500e-4f);
  p = p * r + splat<V>(1.3981999507e-3f);
  p = p * r + splat<V>(8.3334519073e-3f);
  p = p * r + splat<V>(4.1665795894e-2f);
  p = p * r + splat<V>(1.6666665459e-1f);
  p = p * r + splat<V>(5.0000001201e-1f);
  p = p * (r * r) + r + splat<V>(1.0f);
  I e = (__builtin_convertvector(n, I) + 127) << 23;
  F scale;
  std::memcpy(&scale, &e, sizeof scale);
  return p * scale;
}

template <class V>
RNNKIT_INLINE typename V::F vsigmoid(typename V::F x) {
  return splat<V>(1.0f) / (splat<V>(1.0f) + vexp<V>(-x));
}

// tanh(|x|) = 1 − 2 / (e^{2|x|} + 1) loses relative accuracy near zero, so small arguments use the
// odd polynomial x + x³·P(x²) (Cephes tanhf), and the sign is restored afterwards.
template <class V>
RNNKIT_INLINE typename V::F vtanh(typename V::F x) {
  typedef typename V::F F;
  F ax = vabs<V>(x);
  F big = splat<V>(1.0f) - splat<V>(2.0f) / (vexp<V>(ax + ax) + splat<V>(1.0f));
  F z = x * x;
  F p = splat<V>(-5.70498872745e-3f);
  p = p * z + splat<V>(2.06390887954e-2f);
  p = p * z + splat<V>(-5.37397155531e-2f);
  p = p * z + splat<V>(1.33314422036e-1f);
  p = p * z + splat<V>(-3.33332819422e-1f);
  F small = p * z * x + x;
  F big_signed = select<V>(x < splat<V>(0.0f), -big, big);
  return select<V>(ax < splat<V>(0.625f), small, big_signed);
}

}  // namespace act
}  // namespace rnnkit
