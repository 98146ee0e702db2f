// Scalar cell math of the Recurrent op for one hidden unit, shared by the standard kernels
// (cuda/recurrent.cu) and the persistent kernel (cuda/recurrent_persistent.cu). The equations and
// the order in which terms are added follow native/kernels/recurrent_cells.cc, so the GPU and the
// CPU differ only by rounding in exp/tanh and in the GEMM sums. Equations:
// docs/recurrent-semantics.md.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace rnnkit {
namespace gpu {
namespace cell {

__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

struct LstmState {
  float i, f, g, o, c, h;
};

// pre_* = x-projection + W_hh h + (b_ih + b_hh); peep = {p_i, p_f, p_o} or null terms when absent.
__device__ __forceinline__ LstmState lstm_forward(float pre_i, float pre_f, float pre_g, float pre_o, float c_prev,
                                                  bool peep, float p_i, float p_f, float p_o, float clip) {
  LstmState s;
  if (peep) {
    pre_i += p_i * c_prev;
    pre_f += p_f * c_prev;
  }
  s.i = sigmoid(pre_i);
  s.f = sigmoid(pre_f);
  s.g = tanhf(pre_g);
  float c = s.f * c_prev + s.i * s.g;
  if (clip > 0.f) c = fminf(fmaxf(c, -clip), clip);
  if (peep) pre_o += p_o * c;
  s.o = sigmoid(pre_o);
  s.c = c;
  s.h = s.o * tanhf(c);
  return s;
}

// The LSTM cell of unit j on one row, as both forward kernels run it: pre(k) is gate k's
// pre-activation; the activations go to g (gate-major, H apart), the new cell state to c and, when
// c_out is set, to *c_out; returns h.
template <class Pre>
__device__ __forceinline__ float lstm_unit(const Pre& pre, float* g, int64_t H, int64_t j, float& c,
                                           const float* peep, float clip, float* c_out) {
  const bool pp = peep != nullptr;
  const LstmState s = lstm_forward(pre(0), pre(1), pre(2), pre(3), c, pp, pp ? peep[j] : 0.f, pp ? peep[H + j] : 0.f,
                                   pp ? peep[2 * H + j] : 0.f, clip);
  g[j] = s.i;
  g[H + j] = s.f;
  g[2 * H + j] = s.g;
  g[3 * H + j] = s.o;
  c = s.c;
  if (c_out) *c_out = s.c;
  return s.h;
}

struct LstmGrad {
  float di, df, dg, do_, dc_prev, m;
};

// dm: dL/d(o⊙tanh c) (incl. dy); dc: dL/dc_t from step t+1. cuDNN semantics for the clip: no
// gradient flows through a clipped cell state.
__device__ __forceinline__ LstmGrad lstm_backward(float i, float f, float g, float o, float c, float c_prev, float dm,
                                                  float dc, bool peep, float p_i, float p_f, float p_o, float clip) {
  LstmGrad r;
  const float tc = tanhf(c);
  r.m = o * tc;
  r.do_ = dm * tc * o * (1.f - o);
  dc += dm * o * (1.f - tc * tc);
  if (peep) dc += r.do_ * p_o;
  if (clip > 0.f && !(fabsf(c) < clip)) dc = 0.f;
  r.di = dc * g * i * (1.f - i);
  r.df = dc * c_prev * f * (1.f - f);
  r.dg = dc * i * (1.f - g * g);
  r.dc_prev = dc * f;
  if (peep) r.dc_prev += r.di * p_i + r.df * p_f;
  return r;
}

struct GruState {
  float r, z, n, hn, h;
};

// Linear-before-reset form: hn = W_hn h + b_hn is kept for the backward.
__device__ __forceinline__ GruState gru_lbr_forward(float xr, float xz, float xn, float bir, float biz, float bin,
                                                    float hr, float hz, float hnn, float bhr, float bhz, float bhn,
                                                    float h_prev) {
  GruState s;
  s.r = sigmoid(xr + bir + hr + bhr);
  s.z = sigmoid(xz + biz + hz + bhz);
  s.hn = hnn + bhn;
  s.n = tanhf(xn + bin + s.r * s.hn);
  s.h = s.n + s.z * (h_prev - s.n);
  return s;
}

__device__ __forceinline__ float rnn_forward(float pre, bool relu) { return relu ? fmaxf(pre, 0.f) : tanhf(pre); }

}  // namespace cell
}  // namespace gpu
}  // namespace rnnkit
