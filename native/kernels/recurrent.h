// Fused multi-layer recurrent op (cuDNN / Caffe2 `Recurrent`): LSTM, GRU (both reset forms),
// RNN-tanh, RNN-relu; forward and backward on float32 CPU buffers. The semantics and the packed
// weight layout are those of docs/recurrent-semantics.md; this file states the C++ contract.
//
// Shapes (R = proj_size when set, else H; D = 2 when bidirectional; G gates):
//   x  [T, B, I]      (batch_first: [B, T, I])
//   y  [T, B, D·R]    (batch_first: [B, T, D·R])
//   hx, hy [L·D, B, R]; cx, cy [L·D, B, H] (LSTM only); seq_lengths [B] int32 in 0..T.
//   weights / dweights: recurrent_weights_size(cfg) floats, layout per the semantics doc.
//   saved: recurrent_saved_size(cfg, T, B) floats, opaque, written by a training forward.
// Forward: y, hy, cy are overwritten (`=`). `saved` null means inference (nothing is kept);
//   otherwise the forward writes what backward needs: per layer and direction each step's gate
//   activations (and LSTM cell states), plus the outputs of all layers but the last.
//   dropout_p in [0, 1) is applied between layers with masks drawn from `seed`; pass 0 to disable
//   (inference). Null hx / cx mean zeros; null hy / cy are not written; null seq_lengths means
//   every sequence has length T.
// Backward: takes the same config, sizes, x, hx, cx, seq_lengths, weights, dropout_p and seed as
//   the forward that produced `y` and `saved` (dropout masks are recomputed, not stored).
//   Null dy / dhy / dcy are zeros. dx, dhx, dcx are overwritten (`=`; null dhx / dcx are not
//   written); dweights is overwritten, or added into (`+=`) when `accumulate` is set.
// Errors: an invalid config or argument throws rnnkit::Error (ErrorCode::arg); a size that would
//   pass 2^50 floats (recurrent_sizes) throws rnnkit::Error (ErrorCode::shape); failure to
//   allocate the working buffers throws rnnkit::Error (ErrorCode::oom).
// Threads: the kernels run on the compute pool (parallel.h); the GEMMs use sgemm.h.
#pragma once
#include <cstdint>

namespace rnnkit {

struct RecurrentConfig {
  enum class Mode { lstm, gru, rnn_tanh, rnn_relu };
  Mode mode = Mode::lstm;
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  int64_t proj_size = 0;  // LSTM only; 0 = no projection
  int64_t num_layers = 1;
  bool bidirectional = false;
  bool skip_input = false;          // layer 0 adds x to every gate instead of W_ih x; needs I == H
  bool linear_before_reset = true;  // GRU: true = cuDNN / PyTorch form, false = ONNX default
  bool peepholes = false;           // LSTM only
  float cell_clip = 0.f;            // LSTM only; 0 = no clipping
};

enum class ParamKind { w_ih, w_hh, b_ih, b_hh, w_proj, w_peephole };

// rows·cols floats, row-major, at `offset` in the packed weights. A parameter the config does not
// have (w_ih of layer 0 with skip input, w_proj without projection, ...) has rows = cols = 0.
struct ParamSlot {
  int64_t offset, rows, cols;
};

// Every size a call with this config and T, B implies, in floats. Validates the config and T, B >= 0
// (ErrorCode::arg); each formula is checked for overflow: a size past 2^50 floats throws
// ErrorCode::shape naming it ("the packed weights would be too large", ...).
struct RecurrentSizes {
  int64_t T, B, I, H, R, LD, DR;  // R = proj_size or H; LD = layers·directions; DR = directions·R
  int64_t x;         // x and dx [T, B, I]
  int64_t y;         // y and dy [T, B, D·R]
  int64_t h_states;  // hx, hy, dhy, dhx [L·D, B, R]
  int64_t c_states;  // cx, cy, dcy, dcx [L·D, B, H] (LSTM)
  int64_t weights;   // the packed weights and dweights
  int64_t saved;     // what a training forward keeps
  bool lstm;
};
RecurrentSizes recurrent_sizes(const RecurrentConfig& cfg, int64_t T, int64_t B);

// Throws rnnkit::Error(ErrorCode::arg) describing the first invalid field.
void recurrent_validate(const RecurrentConfig& cfg);
int64_t recurrent_gate_count(RecurrentConfig::Mode mode);  // G: 4, 3, 1, 1
// Sizes in floats (those of recurrent_sizes); each validates the config first.
int64_t recurrent_weights_size(const RecurrentConfig& cfg);
ParamSlot recurrent_param_slot(const RecurrentConfig& cfg, int64_t layer, int64_t dir,
                               ParamKind kind);
int64_t recurrent_saved_size(const RecurrentConfig& cfg, int64_t T, int64_t B);

void recurrent_forward(const RecurrentConfig& cfg, int64_t T, int64_t B, bool batch_first,
                       const float* x, const float* hx, const float* cx,
                       const int32_t* seq_lengths, const float* weights, float dropout_p,
                       uint64_t seed, float* y, float* hy, float* cy, float* saved);

void recurrent_backward(const RecurrentConfig& cfg, int64_t T, int64_t B, bool batch_first,
                        const float* x, const float* hx, const float* cx,
                        const int32_t* seq_lengths, const float* weights, float dropout_p,
                        uint64_t seed, const float* y, const float* saved, const float* dy,
                        const float* dhy, const float* dcy, float* dx, float* dhx, float* dcx,
                        float* dweights, bool accumulate);

}  // namespace rnnkit
