// Internal to the recurrent kernels (CPU: recurrent.cc; CUDA: cuda/recurrent.cu): what both
// drivers share. The sizes derived from a config, the parameter offsets of a layer/direction, the
// row orders of the [T·B, F] buffers, the layout of the `saved` buffer, the call checks and the
// choice between the single-pass (fused / persistent) and the two-pass cell loops. One definition,
// because a CPU forward's saved must drive a GPU backward and the reverse.
#pragma once
#include <cstdint>
#include <string>

#include "errors.h"
#include "recurrent.h"

#ifdef __CUDACC__
#define RNNKIT_HOST_DEVICE __host__ __device__
#else
#define RNNKIT_HOST_DEVICE
#endif

namespace rnnkit {

// Size arithmetic in floats: a product or sum past kMaxFloats (far beyond any buffer, and no int64
// overflow on the way) throws Error(ErrorCode::shape) "<what> would be too large".
constexpr int64_t kMaxFloats = int64_t(1) << 50;
struct CheckedSize {
  const char* what;
  int64_t mul(int64_t a, int64_t b) const {
    if (a < 0 || b < 0 || (b != 0 && a > kMaxFloats / b)) too_large();
    return a * b;
  }
  int64_t mul(int64_t a, int64_t b, int64_t c) const { return mul(mul(a, b), c); }
  int64_t add(int64_t a, int64_t b) const {
    if (a < 0 || b < 0 || a > kMaxFloats - b) too_large();
    return a + b;
  }
  [[noreturn]] void too_large() const { throw Error(ErrorCode::shape, std::string(what) + " would be too large"); }
};

// Derived sizes of a validated config.
struct RecurrentDims {
  RecurrentConfig::Mode mode;
  int64_t G, H, R, D, L, I;
  bool lstm, gru, lbr, onnx_gru, proj, peep, skip;
  float clip;

  explicit RecurrentDims(const RecurrentConfig& c) {
    recurrent_validate(c);
    mode = c.mode;
    G = recurrent_gate_count(c.mode);
    H = c.hidden_size;
    R = c.proj_size > 0 ? c.proj_size : c.hidden_size;
    D = c.bidirectional ? 2 : 1;
    L = c.num_layers;
    I = c.input_size;
    lstm = c.mode == RecurrentConfig::Mode::lstm;
    gru = c.mode == RecurrentConfig::Mode::gru;
    lbr = gru && c.linear_before_reset;
    onnx_gru = gru && !c.linear_before_reset;
    proj = c.proj_size > 0;
    peep = c.peepholes;
    skip = c.skip_input;
    clip = c.cell_clip;
  }
  int64_t in_size(int64_t l) const { return l == 0 ? I : D * R; }
  bool has_wih(int64_t l) const { return !(skip && l == 0); }
  // Width of a gate row: the x-projection, the activations kept for backward and the gate
  // gradients share it (GRU with linear_before_reset keeps W_hn h + b_hn as a fourth block).
  int64_t gate_width() const { return lbr ? 4 * H : G * H; }
  // Floats of `saved` per step and batch row for one layer/direction: gates (none for plain RNNs,
  // whose backward needs only h) and the LSTM cell state.
  int64_t saved_step_width() const {
    if (lstm) return 5 * H;
    if (gru) return gate_width();
    return 0;
  }
  // Floats of one layer/direction's parameter block (overflow-checked).
  int64_t block_size(int64_t l) const {
    const CheckedSize c{"the packed weights"};
    const int64_t GH = c.mul(G, H);
    int64_t n = c.add(c.mul(GH, R), c.mul(2, GH));
    if (has_wih(l)) n = c.add(n, c.mul(GH, l == 0 ? I : c.mul(D, R)));
    if (proj) n = c.add(n, c.mul(R, H));
    if (peep) n = c.add(n, c.mul(3, H));
    return n;
  }
  // Whether a step's cell update needs no GEMM between two cell passes (no projection, not the
  // ONNX GRU form): the configurations of the CPU fused loops (FusedForward / FusedBackward) and of
  // the CUDA persistent kernel. The others run the two-pass loops (UnfusedForward / the standard
  // CUDA step loop).
  bool single_pass() const { return !proj && !onnx_gru; }
};

// Offsets (in floats) of one layer/direction's parameters in the packed weights (layout:
// docs/recurrent-semantics.md). A parameter the config lacks has the offset of the next one.
struct RecurrentSlots {
  int64_t w_ih, w_hh, b_ih, b_hh, w_proj, peep;
};

inline RecurrentSlots slots_of(const RecurrentDims& dm, int64_t l, int64_t d) {
  int64_t off = 0;
  for (int64_t k = 0; k < l; ++k) off += dm.D * dm.block_size(k);
  off += d * dm.block_size(l);
  RecurrentSlots s;
  s.w_ih = off;
  off += dm.has_wih(l) ? dm.G * dm.H * dm.in_size(l) : 0;
  s.w_hh = off;
  off += dm.G * dm.H * dm.R;
  s.b_ih = off;
  off += dm.G * dm.H;
  s.b_hh = off;
  off += dm.G * dm.H;
  s.w_proj = off;
  off += dm.proj ? dm.R * dm.H : 0;
  s.peep = off;
  return s;
}

// Row order of a [T·B, F] buffer: row(t, b) = t·st + b·sb. The caller's x and y use the caller's
// order (batch_first or not); the buffers inside a call are sequence-major.
struct RowOrder {
  int64_t st, sb;
  RNNKIT_HOST_DEVICE int64_t row(int64_t t, int64_t b) const { return t * st + b * sb; }
  static RowOrder caller(bool batch_first, int64_t T, int64_t B) {
    return batch_first ? RowOrder{1, T} : RowOrder{B, 1};
  }
  static RowOrder inner(int64_t B) { return RowOrder{B, 1}; }
};

// The checks of a recurrent call that the binding cannot make (or that a C++ caller skips):
// `who` prefixes the message ("recurrent", "recurrent (cuda)"). Throw Error(ErrorCode::arg).
[[noreturn]] inline void recurrent_fail(const char* who, const std::string& msg) {
  throw Error(ErrorCode::arg, std::string(who) + ": " + msg);
}

inline void recurrent_check_lengths(const char* who, const int32_t* lens, int64_t T, int64_t B) {
  if (!lens) return;
  for (int64_t b = 0; b < B; ++b)
    if (lens[b] < 0 || lens[b] > T)
      recurrent_fail(who, "seq_lengths[" + std::to_string(b) + "] = " + std::to_string(lens[b]) +
                              " is outside 0.." + std::to_string(T));
}

inline void recurrent_check_common(const char* who, const RecurrentConfig& cfg, int64_t T, int64_t B,
                                   const float* x, const float* weights, float dropout_p,
                                   const int32_t* lens) {
  recurrent_sizes(cfg, T, B);  // T, B >= 0 and every size representable
  if (!(dropout_p >= 0.f && dropout_p < 1.f)) recurrent_fail(who, "dropout must be in [0, 1)");
  if (T * B > 0 && !x) recurrent_fail(who, "x is null");
  if (!weights) recurrent_fail(who, "weights are null");
  recurrent_check_lengths(who, lens, T, B);
}

inline void recurrent_check_forward(const char* who, const RecurrentConfig& cfg, int64_t T, int64_t B,
                                    const float* x, const float* weights, float dropout_p,
                                    const int32_t* lens, const float* y) {
  recurrent_check_common(who, cfg, T, B, x, weights, dropout_p, lens);
  if (T * B > 0 && !y) recurrent_fail(who, "y is null");
}

inline void recurrent_check_backward(const char* who, const RecurrentConfig& cfg, int64_t T,
                                     int64_t B, const float* x, const float* weights,
                                     float dropout_p, const int32_t* lens, const float* y,
                                     const float* saved, const float* dx, const float* dweights) {
  recurrent_check_common(who, cfg, T, B, x, weights, dropout_p, lens);
  if (!dweights) recurrent_fail(who, "dweights are null");
  if (T * B > 0 && (!y || !dx)) recurrent_fail(who, "y or dx is null");
  if (T * B > 0 && recurrent_saved_size(cfg, T, B) > 0 && !saved)
    recurrent_fail(who, "saved is null (the forward must run in training mode)");
}

// Offsets (in floats) into `saved`: per layer/direction the gate activations (and LSTM cell
// states), then the outputs of every layer.
struct RecurrentSavedLayout {
  const RecurrentDims& dm;
  int64_t TB;
  int64_t gates(int64_t l, int64_t d) const {
    return (l * dm.D + d) * TB * dm.saved_step_width();
  }
  int64_t cells(int64_t l, int64_t d) const { return gates(l, d) + TB * 4 * dm.H; }
  int64_t output(int64_t l) const {
    return dm.L * dm.D * TB * dm.saved_step_width() + l * TB * dm.D * dm.R;
  }
};

}  // namespace rnnkit
