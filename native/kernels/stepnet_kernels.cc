// Row kernels of the step-net ops; contract in stepnet_kernels.h. The transcendental-heavy ones
// (activations, LSTM / GRU units) are written once over the vector types of activations.h and
// instantiated per ISA; the rest are plain loops the compiler vectorizes.
#include "stepnet_kernels.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "activations.h"
#include "isa_target.h"
#include "cpu_features.h"
#include "parallel.h"
#include "sgemm.h"

namespace rnnkit {
namespace stepnet {
namespace {

using act::load;
using act::splat;
using act::store;

// Rows per pool task: enough floats that the hand-off cost stays small.
void for_rows(int64_t rows, int64_t cols, const std::function<void(int64_t, int64_t)>& fn) {
  int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols));
  if (rows <= grain) {
    fn(0, rows);
    return;
  }
  parallel_for(rows, grain, fn);
}

struct UnaryArgs {
  Unary f;
  float* out;
  const float* dy;  // backward only
  const float* y;   // forward: x; backward: the forward output
};

template <class V>
RNNKIT_INLINE void unary_fwd_body(const UnaryArgs& a, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; i += V::W) {
    int64_t n = std::min<int64_t>(V::W, i1 - i);
    auto x = load<V>(a.y + i, n);
    typename V::F r;
    if (a.f == Unary::sigmoid) r = act::vsigmoid<V>(x);
    else if (a.f == Unary::tanh) r = act::vtanh<V>(x);
    else r = act::vmax<V>(x, splat<V>(0.f));
    store<V>(a.out + i, r, n);
  }
}

template <class V>
RNNKIT_INLINE void unary_bwd_body(const UnaryArgs& a, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; i += V::W) {
    int64_t n = std::min<int64_t>(V::W, i1 - i);
    auto y = load<V>(a.y + i, n);
    auto dy = load<V>(a.dy + i, n);
    typename V::F d;
    if (a.f == Unary::sigmoid) d = dy * y * (splat<V>(1.f) - y);
    else if (a.f == Unary::tanh) d = dy * (splat<V>(1.f) - y * y);
    else d = act::select<V>(y > splat<V>(0.f), dy, splat<V>(0.f));
    store<V>(a.out + i, load<V>(a.out + i, n) + d, n);
  }
}

struct LstmArgs {
  float* h;
  float* c;
  const float* gates;
  const float* c_prev;
  // backward
  float* dgates;
  float* dc_prev;
  const float* dh;
  const float* dc;
  int64_t H;
};

template <class V>
RNNKIT_INLINE void lstm_fwd_body(const LstmArgs& a, int64_t r0, int64_t r1) {
  const int64_t H = a.H;
  for (int64_t r = r0; r < r1; ++r) {
    const float* g = a.gates + r * 4 * H;
    for (int64_t j = 0; j < H; j += V::W) {
      int64_t n = std::min<int64_t>(V::W, H - j);
      auto i = act::vsigmoid<V>(load<V>(g + j, n));
      auto f = act::vsigmoid<V>(load<V>(g + H + j, n));
      auto gg = act::vtanh<V>(load<V>(g + 2 * H + j, n));
      auto o = act::vsigmoid<V>(load<V>(g + 3 * H + j, n));
      auto c = f * load<V>(a.c_prev + r * H + j, n) + i * gg;
      store<V>(a.c + r * H + j, c, n);
      store<V>(a.h + r * H + j, o * act::vtanh<V>(c), n);
    }
  }
}

template <class V>
RNNKIT_INLINE void lstm_bwd_body(const LstmArgs& a, int64_t r0, int64_t r1) {
  const int64_t H = a.H;
  const auto one = splat<V>(1.f);
  for (int64_t r = r0; r < r1; ++r) {
    const float* g = a.gates + r * 4 * H;
    float* dg = a.dgates + r * 4 * H;
    for (int64_t j = 0; j < H; j += V::W) {
      int64_t n = std::min<int64_t>(V::W, H - j);
      auto i = act::vsigmoid<V>(load<V>(g + j, n));
      auto f = act::vsigmoid<V>(load<V>(g + H + j, n));
      auto gg = act::vtanh<V>(load<V>(g + 2 * H + j, n));
      auto o = act::vsigmoid<V>(load<V>(g + 3 * H + j, n));
      auto tc = act::vtanh<V>(load<V>(a.c + r * H + j, n));
      auto cp = load<V>(a.c_prev + r * H + j, n);
      auto dh = a.dh ? load<V>(a.dh + r * H + j, n) : splat<V>(0.f);
      auto dc = a.dc ? load<V>(a.dc + r * H + j, n) : splat<V>(0.f);
      dc = dc + dh * o * (one - tc * tc);
      store<V>(dg + j, load<V>(dg + j, n) + dc * gg * i * (one - i), n);
      store<V>(dg + H + j, load<V>(dg + H + j, n) + dc * cp * f * (one - f), n);
      store<V>(dg + 2 * H + j, load<V>(dg + 2 * H + j, n) + dc * i * (one - gg * gg), n);
      store<V>(dg + 3 * H + j, load<V>(dg + 3 * H + j, n) + dh * tc * o * (one - o), n);
      float* dcp = a.dc_prev + r * H + j;
      store<V>(dcp, load<V>(dcp, n) + dc * f, n);
    }
  }
}

struct GruArgs {
  float* h;
  const float* xg;
  const float* hg;
  const float* h_prev;
  float* dxg;
  float* dhg;
  float* dh_prev;
  const float* dh;
  int64_t H;
};

template <class V>
RNNKIT_INLINE void gru_fwd_body(const GruArgs& a, int64_t r0, int64_t r1) {
  const int64_t H = a.H;
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = a.xg + r * 3 * H;
    const float* hh = a.hg + r * 3 * H;
    for (int64_t j = 0; j < H; j += V::W) {
      int64_t n = std::min<int64_t>(V::W, H - j);
      auto rg = act::vsigmoid<V>(load<V>(x + j, n) + load<V>(hh + j, n));
      auto z = act::vsigmoid<V>(load<V>(x + H + j, n) + load<V>(hh + H + j, n));
      auto nn = act::vtanh<V>(load<V>(x + 2 * H + j, n) + rg * load<V>(hh + 2 * H + j, n));
      auto hp = load<V>(a.h_prev + r * H + j, n);
      store<V>(a.h + r * H + j, nn + z * (hp - nn), n);
    }
  }
}

template <class V>
RNNKIT_INLINE void gru_bwd_body(const GruArgs& a, int64_t r0, int64_t r1) {
  const int64_t H = a.H;
  const auto one = splat<V>(1.f);
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = a.xg + r * 3 * H;
    const float* hh = a.hg + r * 3 * H;
    float* dx = a.dxg + r * 3 * H;
    float* dhh = a.dhg + r * 3 * H;
    for (int64_t j = 0; j < H; j += V::W) {
      int64_t n = std::min<int64_t>(V::W, H - j);
      auto rg = act::vsigmoid<V>(load<V>(x + j, n) + load<V>(hh + j, n));
      auto z = act::vsigmoid<V>(load<V>(x + H + j, n) + load<V>(hh + H + j, n));
      auto hn = load<V>(hh + 2 * H + j, n);
      auto nn = act::vtanh<V>(load<V>(x + 2 * H + j, n) + rg * hn);
      auto hp = load<V>(a.h_prev + r * H + j, n);
      auto dh = load<V>(a.dh + r * H + j, n);
      auto dn = dh * (one - z) * (one - nn * nn);
      auto dz = dh * (hp - nn) * z * (one - z);
      auto dr = dn * hn * rg * (one - rg);
      store<V>(dx + j, load<V>(dx + j, n) + dr, n);
      store<V>(dhh + j, load<V>(dhh + j, n) + dr, n);
      store<V>(dx + H + j, load<V>(dx + H + j, n) + dz, n);
      store<V>(dhh + H + j, load<V>(dhh + H + j, n) + dz, n);
      store<V>(dx + 2 * H + j, load<V>(dx + 2 * H + j, n) + dn, n);
      store<V>(dhh + 2 * H + j, load<V>(dhh + 2 * H + j, n) + dn * rg, n);
      float* dhp = a.dh_prev + r * H + j;
      store<V>(dhp, load<V>(dhp, n) + dh * z, n);
    }
  }
}

#define RNNKIT_STEPNET_SET(NAME, VT, ATTR)                                                      \
  ATTR void unary_fwd_##NAME(const UnaryArgs& a, int64_t i0, int64_t i1) {                    \
    unary_fwd_body<act::VT>(a, i0, i1);                                                       \
  }                                                                                           \
  ATTR void unary_bwd_##NAME(const UnaryArgs& a, int64_t i0, int64_t i1) {                    \
    unary_bwd_body<act::VT>(a, i0, i1);                                                       \
  }                                                                                           \
  ATTR void lstm_fwd_##NAME(const LstmArgs& a, int64_t r0, int64_t r1) {                      \
    lstm_fwd_body<act::VT>(a, r0, r1);                                                        \
  }                                                                                           \
  ATTR void lstm_bwd_##NAME(const LstmArgs& a, int64_t r0, int64_t r1) {                      \
    lstm_bwd_body<act::VT>(a, r0, r1);                                                        \
  }                                                                                           \
  ATTR void gru_fwd_##NAME(const GruArgs& a, int64_t r0, int64_t r1) {                        \
    gru_fwd_body<act::VT>(a, r0, r1);                                                         \
  }                                                                                           \
  ATTR void gru_bwd_##NAME(const GruArgs& a, int64_t r0, int64_t r1) {                        \
    gru_bwd_body<act::VT>(a, r0, r1);                                                         \
  }

RNNKIT_STEPNET_SET(portable, V4, )
#if defined(__x86_64__) || defined(_M_X64)
RNNKIT_STEPNET_SET(avx2, V8, RNNKIT_TARGET_AVX2)
#endif
#ifdef RNNKIT_ISA_ARM64
// Eight lanes as two q registers per operation (see the NEON cell set in recurrent_cells.cc).
RNNKIT_STEPNET_SET(neon, V8, RNNKIT_TARGET_NEON)
#endif

// The AVX-512 machines run the AVX2 set: these passes are short next to the GEMMs they sit
// between, so a third instantiation would add code without a measurable gain.
#if defined(__x86_64__) || defined(_M_X64)
#define RNNKIT_PICK(fn) (active_isa() != Isa::portable ? fn##_avx2 : fn##_portable)
#elif defined(RNNKIT_ISA_ARM64)
#define RNNKIT_PICK(fn) (active_isa() == Isa::neon ? fn##_neon : fn##_portable)
#else
#define RNNKIT_PICK(fn) (fn##_portable)
#endif

}  // namespace

void unary_forward(Unary f, float* y, const float* x, int64_t n) {
  UnaryArgs a{f, y, nullptr, x};
  auto k = RNNKIT_PICK(unary_fwd);
  for_rows(n, 1, [&](int64_t i0, int64_t i1) { k(a, i0, i1); });
}

void unary_backward(Unary f, float* dx, const float* dy, const float* y, int64_t n) {
  UnaryArgs a{f, dx, dy, y};
  auto k = RNNKIT_PICK(unary_bwd);
  for_rows(n, 1, [&](int64_t i0, int64_t i1) { k(a, i0, i1); });
}

void add_forward(float* y, const float* a, const float* b, float s, int64_t n) {
  for_rows(n, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] = a[i] + s * b[i];
  });
}

void mul_forward(float* y, const float* a, const float* b, int64_t n) {
  for_rows(n, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] = a[i] * b[i];
  });
}

void accumulate(float* dx, const float* dy, float s, int64_t n) {
  for_rows(n, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) dx[i] += s * dy[i];
  });
}

void mul_backward(float* da, float* db, const float* dy, const float* a, const float* b,
                  int64_t n) {
  for_rows(n, 1, [&](int64_t i0, int64_t i1) {
    if (da) for (int64_t i = i0; i < i1; ++i) da[i] += dy[i] * b[i];
    if (db) for (int64_t i = i0; i < i1; ++i) db[i] += dy[i] * a[i];
  });
}

void lstm_unit_forward(float* h, float* c, const float* gates, const float* c_prev, int64_t rows,
                       int64_t H) {
  LstmArgs a{h, c, gates, c_prev, nullptr, nullptr, nullptr, nullptr, H};
  auto k = RNNKIT_PICK(lstm_fwd);
  for_rows(rows, 4 * H, [&](int64_t r0, int64_t r1) { k(a, r0, r1); });
}

void lstm_unit_backward(float* dgates, float* dc_prev, const float* dh, const float* dc,
                        const float* gates, const float* c_prev, const float* c, int64_t rows,
                        int64_t H) {
  LstmArgs a{nullptr, const_cast<float*>(c), gates, c_prev, dgates, dc_prev, dh, dc, H};
  auto k = RNNKIT_PICK(lstm_bwd);
  for_rows(rows, 6 * H, [&](int64_t r0, int64_t r1) { k(a, r0, r1); });
}

void gru_unit_forward(float* h, const float* xg, const float* hg, const float* h_prev,
                      int64_t rows, int64_t H) {
  GruArgs a{h, xg, hg, h_prev, nullptr, nullptr, nullptr, nullptr, H};
  auto k = RNNKIT_PICK(gru_fwd);
  for_rows(rows, 3 * H, [&](int64_t r0, int64_t r1) { k(a, r0, r1); });
}

void gru_unit_backward(float* dxg, float* dhg, float* dh_prev, const float* dh, const float* xg,
                       const float* hg, const float* h_prev, int64_t rows, int64_t H) {
  GruArgs a{nullptr, xg, hg, h_prev, dxg, dhg, dh_prev, dh, H};
  auto k = RNNKIT_PICK(gru_bwd);
  for_rows(rows, 6 * H, [&](int64_t r0, int64_t r1) { k(a, r0, r1); });
}

namespace {
inline float sigm(float x) { return 1.f / (1.f + std::exp(-x)); }
}  // namespace

void gru_onnx_forward(float* h, float* aux, const float* xg, const float* hg,
                      const float* h_prev, const float* w_hn, const float* b_hn, int64_t rows,
                      int64_t H) {
  // aux = [r⊙h_prev | n]; the n half first holds the GEMM's (r⊙h_prev)·W_hnᵀ + b_hn.
  for_rows(rows, 3 * H, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t j = 0; j < H; ++j) {
        float rg = sigm(xg[r * 3 * H + j] + hg[r * 2 * H + j]);
        aux[r * 2 * H + j] = rg * h_prev[r * H + j];
        aux[r * 2 * H + H + j] = b_hn ? b_hn[j] : 0.f;
      }
    }
  });
  sgemm(false, true, rows, H, H, 1.f, aux, 2 * H, w_hn, H, 1.f, aux + H, 2 * H);
  for_rows(rows, 3 * H, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t j = 0; j < H; ++j) {
        float z = sigm(xg[r * 3 * H + H + j] + hg[r * 2 * H + H + j]);
        float n = std::tanh(xg[r * 3 * H + 2 * H + j] + aux[r * 2 * H + H + j]);
        aux[r * 2 * H + H + j] = n;
        h[r * H + j] = n + z * (h_prev[r * H + j] - n);
      }
    }
  });
}

void gru_onnx_backward(float* dxg, float* dhg, float* dh_prev, float* dw_hn, float* db_hn,
                       const float* dh, const float* aux, const float* xg, const float* hg,
                       const float* h_prev, const float* w_hn, int64_t rows, int64_t H) {
  std::vector<float> dpre(rows * H), drh(rows * H);
  for_rows(rows, 3 * H, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t j = 0; j < H; ++j) {
        float z = sigm(xg[r * 3 * H + H + j] + hg[r * 2 * H + H + j]);
        float n = aux[r * 2 * H + H + j];
        float g = dh[r * H + j];
        float dz = g * (h_prev[r * H + j] - n) * z * (1.f - z);
        float dp = g * (1.f - z) * (1.f - n * n);
        dpre[r * H + j] = dp;
        dxg[r * 3 * H + 2 * H + j] += dp;
        dxg[r * 3 * H + H + j] += dz;
        dhg[r * 2 * H + H + j] += dz;
        dh_prev[r * H + j] += g * z;
      }
    }
  });
  if (db_hn) column_sums(db_hn, dpre.data(), rows, H);
  sgemm(true, false, H, H, rows, 1.f, dpre.data(), H, aux, 2 * H, 1.f, dw_hn, H);
  sgemm(false, false, rows, H, H, 1.f, dpre.data(), H, w_hn, H, 0.f, drh.data(), H);
  for_rows(rows, 3 * H, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t j = 0; j < H; ++j) {
        float rg = sigm(xg[r * 3 * H + j] + hg[r * 2 * H + j]);
        float d = drh[r * H + j];
        float dr = d * h_prev[r * H + j] * rg * (1.f - rg);
        dxg[r * 3 * H + j] += dr;
        dhg[r * 2 * H + j] += dr;
        dh_prev[r * H + j] += d * rg;
      }
    }
  });
}

void move_block(float* out, int64_t out_cols, int64_t out_start, const float* in,
                int64_t in_cols, int64_t in_start, int64_t outer, int64_t len, bool add) {
  for_rows(outer, len, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      float* dst = out + o * out_cols + out_start;
      const float* src = in + o * in_cols + in_start;
      if (add) {
        for (int64_t j = 0; j < len; ++j) dst[j] += src[j];
      } else {
        std::copy(src, src + len, dst);
      }
    }
  });
}

void column_sums(float* db, const float* dy, int64_t rows, int64_t cols) {
  // Columns are split over the pool (each thread owns its columns, so no reduction is needed);
  // the row sums run in double so thousands of rows keep float32 accuracy.
  int64_t grain = std::max<int64_t>(16, 16384 / std::max<int64_t>(1, rows));
  auto body = [&](int64_t c0, int64_t c1) {
    std::vector<double> acc(c1 - c0, 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = dy + r * cols;
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] += row[c];
    }
    for (int64_t c = c0; c < c1; ++c) db[c] += static_cast<float>(acc[c - c0]);
  };
  if (cols <= grain) body(0, cols);
  else parallel_for(cols, grain, body);
}

void broadcast_rows(float* y, const float* b, int64_t rows, int64_t cols) {
  for_rows(rows, cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::copy(b, b + cols, y + r * cols);
  });
}

}  // namespace stepnet
}  // namespace rnnkit
