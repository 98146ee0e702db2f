// The cell postgemm bodies, written once over the width tag V and instantiated per ISA by thin
// wrappers that carry the target attribute (see activations.h for why this needs no -m flags).
#include "recurrent_cells.h"

#include "activations.h"
#include "isa_target.h"

namespace rnnkit {
namespace cells {
namespace {

using namespace act;

template <class V>
RNNKIT_INLINE void lstm_fwd(const LstmFwdRow& a, int64_t j0, int64_t j1) {
  typedef typename V::F F;
  const int64_t H = a.H;
  for (int64_t j = j0; j < j1; j += V::W) {
    const int64_t n = j1 - j < V::W ? j1 - j : V::W;
    F ai = load<V>(a.gates + j, n) + load<V>(a.hh + j, n) + load<V>(a.bias + j, n);
    F af = load<V>(a.gates + H + j, n) + load<V>(a.hh + H + j, n) + load<V>(a.bias + H + j, n);
    F ag = load<V>(a.gates + 2 * H + j, n) + load<V>(a.hh + 2 * H + j, n) +
           load<V>(a.bias + 2 * H + j, n);
    F ao = load<V>(a.gates + 3 * H + j, n) + load<V>(a.hh + 3 * H + j, n) +
           load<V>(a.bias + 3 * H + j, n);
    F c = load<V>(a.c + j, n);
    if (a.peep) {
      ai += load<V>(a.peep + j, n) * c;
      af += load<V>(a.peep + H + j, n) * c;
    }
    F i = vsigmoid<V>(ai), f = vsigmoid<V>(af), g = vtanh<V>(ag);
    F cn = f * c + i * g;
    if (a.clip > 0.f) cn = vmin<V>(vmax<V>(cn, splat<V>(-a.clip)), splat<V>(a.clip));
    if (a.peep) ao += load<V>(a.peep + 2 * H + j, n) * cn;
    F o = vsigmoid<V>(ao);
    F h = o * vtanh<V>(cn);
    store<V>(a.gates + j, i, n);
    store<V>(a.gates + H + j, f, n);
    store<V>(a.gates + 2 * H + j, g, n);
    store<V>(a.gates + 3 * H + j, o, n);
    store<V>(a.c + j, cn, n);
    if (a.c_out) store<V>(a.c_out + j, cn, n);
    store<V>(a.h + j, h, n);
    if (a.y) store<V>(a.y + j, h, n);
  }
}

template <class V>
RNNKIT_INLINE void gru_fwd_lbr(const GruFwdRow& a, int64_t j0, int64_t j1) {
  typedef typename V::F F;
  const int64_t H = a.H;
  for (int64_t j = j0; j < j1; j += V::W) {
    const int64_t n = j1 - j < V::W ? j1 - j : V::W;
    F r = vsigmoid<V>(load<V>(a.gates + j, n) + load<V>(a.b_ih + j, n) + load<V>(a.hh + j, n) +
                      load<V>(a.b_hh + j, n));
    F z = vsigmoid<V>(load<V>(a.gates + H + j, n) + load<V>(a.b_ih + H + j, n) +
                      load<V>(a.hh + H + j, n) + load<V>(a.b_hh + H + j, n));
    F hn = load<V>(a.hh + 2 * H + j, n) + load<V>(a.b_hh + 2 * H + j, n);
    F nn = vtanh<V>(load<V>(a.gates + 2 * H + j, n) + load<V>(a.b_ih + 2 * H + j, n) + r * hn);
    F h = load<V>(a.h + j, n);
    F hnew = nn + z * (h - nn);
    store<V>(a.gates + j, r, n);
    store<V>(a.gates + H + j, z, n);
    store<V>(a.gates + 2 * H + j, nn, n);
    store<V>(a.gates + 3 * H + j, hn, n);
    store<V>(a.h + j, hnew, n);
    if (a.y) store<V>(a.y + j, hnew, n);
  }
}

template <class V>
RNNKIT_INLINE void gru_fwd_rz(const GruFwdRow& a, int64_t j0, int64_t j1) {
  typedef typename V::F F;
  const int64_t H = a.H;
  for (int64_t j = j0; j < j1; j += V::W) {
    const int64_t n = j1 - j < V::W ? j1 - j : V::W;
    F r = vsigmoid<V>(load<V>(a.gates + j, n) + load<V>(a.b_ih + j, n) + load<V>(a.hh + j, n) +
                      load<V>(a.b_hh + j, n));
    F z = vsigmoid<V>(load<V>(a.gates + H + j, n) + load<V>(a.b_ih + H + j, n) +
                      load<V>(a.hh + H + j, n) + load<V>(a.b_hh + H + j, n));
    store<V>(a.gates + j, r, n);
    store<V>(a.gates + H + j, z, n);
    store<V>(a.rh + j, r * load<V>(a.h + j, n), n);
  }
}

template <class V>
RNNKIT_INLINE void gru_fwd_n(const GruFwdRow& a, int64_t j0, int64_t j1) {
  typedef typename V::F F;
  const int64_t H = a.H;
  for (int64_t j = j0; j < j1; j += V::W) {
    const int64_t n = j1 - j < V::W ? j1 - j : V::W;
    F nn = vtanh<V>(load<V>(a.gates + 2 * H + j, n) + load<V>(a.b_ih + 2 * H + j, n) +
                    load<V>(a.hh + 2 * H + j, n) + load<V>(a.b_hh + 2 * H + j, n));
    F z = load<V>(a.gates + H + j, n);
    F h = load<V>(a.h + j, n);
    F hnew = nn + z * (h - nn);
    store<V>(a.gates + 2 * H + j, nn, n);
    store<V>(a.h + j, hnew, n);
    if (a.y) store<V>(a.y + j, hnew, n);
  }
}

template <class V>
RNNKIT_INLINE void rnn_fwd(const RnnFwdRow& a, int64_t j0, int64_t j1) {
  typedef typename V::F F;
  for (int64_t j = j0; j < j1; j += V::W) {
    const int64_t n = j1 - j < V::W ? j1 - j : V::W;
    F pre = load<V>(a.xp + j, n) + load<V>(a.hh + j, n) + load<V>(a.bias + j, n);
    F h = a.relu ? vmax<V>(pre, splat<V>(0.f)) : vtanh<V>(pre);
    store<V>(a.h + j, h, n);
    if (a.y) store<V>(a.y + j, h, n);
  }
}

template <class V>
RNNKIT_INLINE void lstm_bwd(const LstmBwdRow& a, int64_t j0, int64_t j1) {
  typedef typename V::F F;
  const int64_t H = a.H;
  const F one = splat<V>(1.f);
  for (int64_t j = j0; j < j1; j += V::W) {
    const int64_t n = j1 - j < V::W ? j1 - j : V::W;
    F i = load<V>(a.gates + j, n), f = load<V>(a.gates + H + j, n);
    F g = load<V>(a.gates + 2 * H + j, n), o = load<V>(a.gates + 3 * H + j, n);
    F c = load<V>(a.c + j, n);
    F tc = vtanh<V>(c);
    F dm = load<V>(a.dm + j, n);
    if (a.dy) dm += load<V>(a.dy + j, n);
    if (a.m) store<V>(a.m + j, o * tc, n);
    F dao = dm * tc * o * (one - o);
    F dc = load<V>(a.dc + j, n) + dm * o * (one - tc * tc);
    if (a.peep) dc += dao * load<V>(a.peep + 2 * H + j, n);
    // cuDNN semantics: no gradient flows through a clipped cell state.
    if (a.clip > 0.f) dc = select<V>(vabs<V>(c) < splat<V>(a.clip), dc, splat<V>(0.f));
    F cp = load<V>(a.c_prev + j, n);
    F dai = dc * g * i * (one - i);
    F daf = dc * cp * f * (one - f);
    F dag = dc * i * (one - g * g);
    F dcp = dc * f;
    if (a.peep) dcp += dai * load<V>(a.peep + j, n) + daf * load<V>(a.peep + H + j, n);
    store<V>(a.dgates + j, dai, n);
    store<V>(a.dgates + H + j, daf, n);
    store<V>(a.dgates + 2 * H + j, dag, n);
    store<V>(a.dgates + 3 * H + j, dao, n);
    store<V>(a.dc + j, dcp, n);
  }
}

template <class V>
RNNKIT_INLINE void gru_bwd_lbr(const GruBwdRow& a, int64_t j0, int64_t j1) {
  typedef typename V::F F;
  const int64_t H = a.H;
  const F one = splat<V>(1.f);
  for (int64_t j = j0; j < j1; j += V::W) {
    const int64_t n = j1 - j < V::W ? j1 - j : V::W;
    F r = load<V>(a.gates + j, n), z = load<V>(a.gates + H + j, n);
    F nn = load<V>(a.gates + 2 * H + j, n), hn = load<V>(a.gates + 3 * H + j, n);
    F dh = load<V>(a.dh + j, n);
    if (a.dy) dh += load<V>(a.dy + j, n);
    F hp = load<V>(a.h_prev + j, n);
    F dn = dh * (one - z) * (one - nn * nn);
    F dz = dh * (hp - nn) * z * (one - z);
    F dr = dn * hn * r * (one - r);
    store<V>(a.dgates + j, dr, n);
    store<V>(a.dgates + H + j, dz, n);
    store<V>(a.dgates + 2 * H + j, dn * r, n);
    store<V>(a.dgates + 3 * H + j, dn, n);
    store<V>(a.dh_direct + j, dh * z, n);
  }
}

template <class V>
RNNKIT_INLINE void gru_bwd_zn(const GruBwdRow& a, int64_t j0, int64_t j1) {
  typedef typename V::F F;
  const int64_t H = a.H;
  const F one = splat<V>(1.f);
  for (int64_t j = j0; j < j1; j += V::W) {
    const int64_t n = j1 - j < V::W ? j1 - j : V::W;
    F z = load<V>(a.gates + H + j, n), nn = load<V>(a.gates + 2 * H + j, n);
    F dh = load<V>(a.dh + j, n);
    if (a.dy) dh += load<V>(a.dy + j, n);
    F hp = load<V>(a.h_prev + j, n);
    store<V>(a.dgates + H + j, dh * (hp - nn) * z * (one - z), n);
    store<V>(a.dgates + 2 * H + j, dh * (one - z) * (one - nn * nn), n);
    store<V>(a.dh_direct + j, dh * z, n);
  }
}

template <class V>
RNNKIT_INLINE void gru_bwd_r(const GruBwdRow& a, int64_t j0, int64_t j1) {
  typedef typename V::F F;
  const F one = splat<V>(1.f);
  for (int64_t j = j0; j < j1; j += V::W) {
    const int64_t n = j1 - j < V::W ? j1 - j : V::W;
    F r = load<V>(a.gates + j, n);
    F hp = load<V>(a.h_prev + j, n);
    F drh = load<V>(a.drh + j, n);
    store<V>(a.dgates + j, drh * hp * r * (one - r), n);
    store<V>(a.dh_direct + j, load<V>(a.dh_direct + j, n) + drh * r, n);
    store<V>(a.rh + j, r * hp, n);
  }
}

template <class V>
RNNKIT_INLINE void rnn_bwd(const RnnBwdRow& a, int64_t j0, int64_t j1) {
  typedef typename V::F F;
  const F one = splat<V>(1.f), zero = splat<V>(0.f);
  for (int64_t j = j0; j < j1; j += V::W) {
    const int64_t n = j1 - j < V::W ? j1 - j : V::W;
    F h = load<V>(a.h + j, n);
    F dh = load<V>(a.dh + j, n);
    if (a.dy) dh += load<V>(a.dy + j, n);
    F d = a.relu ? select<V>(h > zero, dh, zero) : dh * (one - h * h);
    store<V>(a.dgates + j, d, n);
  }
}

#define RNNKIT_CELL_SET(NAME, V, ATTR)                                                         \
  ATTR void NAME##_lstm_fwd(const LstmFwdRow& a, int64_t j0, int64_t j1) {                     \
    lstm_fwd<V>(a, j0, j1);                                                                    \
  }                                                                                            \
  ATTR void NAME##_gru_fwd_lbr(const GruFwdRow& a, int64_t j0, int64_t j1) {                   \
    gru_fwd_lbr<V>(a, j0, j1);                                                                 \
  }                                                                                            \
  ATTR void NAME##_gru_fwd_rz(const GruFwdRow& a, int64_t j0, int64_t j1) {                    \
    gru_fwd_rz<V>(a, j0, j1);                                                                  \
  }                                                                                            \
  ATTR void NAME##_gru_fwd_n(const GruFwdRow& a, int64_t j0, int64_t j1) {                     \
    gru_fwd_n<V>(a, j0, j1);                                                                   \
  }                                                                                            \
  ATTR void NAME##_rnn_fwd(const RnnFwdRow& a, int64_t j0, int64_t j1) {                       \
    rnn_fwd<V>(a, j0, j1);                                                                     \
  }                                                                                            \
  ATTR void NAME##_lstm_bwd(const LstmBwdRow& a, int64_t j0, int64_t j1) {                     \
    lstm_bwd<V>(a, j0, j1);                                                                    \
  }                                                                                            \
  ATTR void NAME##_gru_bwd_lbr(const GruBwdRow& a, int64_t j0, int64_t j1) {                   \
    gru_bwd_lbr<V>(a, j0, j1);                                                                 \
  }                                                                                            \
  ATTR void NAME##_gru_bwd_zn(const GruBwdRow& a, int64_t j0, int64_t j1) {                    \
    gru_bwd_zn<V>(a, j0, j1);                                                                  \
  }                                                                                            \
  ATTR void NAME##_gru_bwd_r(const GruBwdRow& a, int64_t j0, int64_t j1) {                     \
    gru_bwd_r<V>(a, j0, j1);                                                                   \
  }                                                                                            \
  ATTR void NAME##_rnn_bwd(const RnnBwdRow& a, int64_t j0, int64_t j1) {                       \
    rnn_bwd<V>(a, j0, j1);                                                                     \
  }                                                                                            \
  const Kernels NAME##_kernels = {NAME##_lstm_fwd,    NAME##_gru_fwd_lbr, NAME##_gru_fwd_rz,  \
                                  NAME##_gru_fwd_n,   NAME##_rnn_fwd,     NAME##_lstm_bwd,    \
                                  NAME##_gru_bwd_lbr, NAME##_gru_bwd_zn,  NAME##_gru_bwd_r,   \
                                  NAME##_rnn_bwd};

RNNKIT_CELL_SET(portable, V4, )
#if defined(__x86_64__) || defined(_M_X64)
RNNKIT_CELL_SET(avx2, V8, RNNKIT_TARGET_AVX2)
RNNKIT_CELL_SET(avx512, V16, RNNKIT_TARGET_AVX512)
#endif
#ifdef RNNKIT_ISA_ARM64
// ASIMD is in every AArch64 CPU, so the portable V4 set already runs on NEON registers; the NEON
// set takes eight lanes (two q registers per operation), which gives the exp/tanh polynomials two
// independent dependency chains per step.
RNNKIT_CELL_SET(neon, V8, RNNKIT_TARGET_NEON)
#endif

}  // namespace

const Kernels& kernels_for(Isa isa) {
#if defined(__x86_64__) || defined(_M_X64)
  if (isa == Isa::avx512) return avx512_kernels;
  if (isa == Isa::avx2) return avx2_kernels;
#endif
#ifdef RNNKIT_ISA_ARM64
  if (isa == Isa::neon) return neon_kernels;
#endif
  (void)isa;
  return portable_kernels;
}

}  // namespace cells
}  // namespace rnnkit
