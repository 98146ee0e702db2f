// Internal to the recurrent kernels (CPU: recurrent.cc; CUDA: cuda/recurrent.cu): the sizes
// derived from a config and the layout of the `saved` buffer. One definition, because a CPU
// forward's saved must drive a GPU backward and the reverse.
#pragma once
#include <cstdint>

#include "recurrent.h"

namespace rnnkit {

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
  int64_t block_size(int64_t l) const {
    return (has_wih(l) ? G * H * in_size(l) : 0) + G * H * R + 2 * G * H + (proj ? R * H : 0) +
           (peep ? 3 * H : 0);
  }
};

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
