// Internal to the recurrent op: the fused elementwise part of each cell ("postgemm") for one batch
// row and a range [j0, j1) of hidden units, forward and backward, one set per ISA. The time loop
// in recurrent.cc runs the GEMMs and calls these between them. Every pointer is already offset to
// the row; gate blocks are H floats apart. Equations: docs/recurrent-semantics.md.
#pragma once
#include <cstdint>

#include "cpu_features.h"

namespace rnnkit {
namespace cells {

struct LstmFwdRow {
  float* gates;        // [4H] in: x-projection (i f g o); out: activations
  const float* hh;     // [4H] W_hh h_prev
  const float* bias;   // [4H] b_ih + b_hh
  const float* peep;   // [3H] (i f o) or null
  float* c;            // [H] cell state, in/out
  float* c_out;        // [H] copy of the new cell state for backward, or null
  float* h;            // [H] new h, or o⊙tanh(c) when a projection follows
  float* y;            // [H] copy of h into the layer output, or null
  float clip;          // 0 = none
  int64_t H;
};

// GRU. linear_before_reset keeps [r z n hn] in `gates` (hn = W_hn h + b_hn); the ONNX form keeps
// [r z n] and runs in two passes around the GEMM W_hn (r⊙h).
struct GruFwdRow {
  float* gates;        // in: x-projection r z n; out: activations (see above)
  const float* hh;     // [3H] W_hh h_prev (ONNX form: r z from h_prev, n from r⊙h_prev)
  const float* b_ih;   // [3H]
  const float* b_hh;   // [3H]
  float* h;            // [H] state, in/out (read only in the first ONNX pass)
  float* y;            // [H] or null
  float* rh;           // [H] ONNX first pass out: r⊙h_prev
  int64_t H;
};

struct RnnFwdRow {
  const float* xp;     // [H] x-projection
  const float* hh;     // [H]
  const float* bias;   // [H] b_ih + b_hh
  float* h;            // [H] state, in/out
  float* y;            // [H] or null
  bool relu;
  int64_t H;
};

struct LstmBwdRow {
  const float* gates;  // [4H] i f g o activations
  const float* c;      // [H] c_t (after clipping)
  const float* c_prev; // [H]
  const float* dm;     // [H] dL/d(o⊙tanh c) from later steps (or through the projection)
  const float* dy;     // [H] added to dm, or null
  float* dc;           // [H] in: dL/dc_t from step t+1; out: dL/dc_{t-1}
  float* dgates;       // [4H] out: dL/d pre-activations
  float* m;            // [H] out: o⊙tanh(c) for the projection's weight gradient, or null
  const float* peep;   // [3H] or null
  float clip;
  int64_t H;
};

struct GruBwdRow {
  const float* gates;  // activations as the forward left them
  const float* h_prev; // [H]
  const float* dh;     // [H] dL/dh_t from later steps
  const float* dy;     // [H] added to dh, or null
  float* dgates;       // linear_before_reset: [dr dz dhn dn]; ONNX form: [dr dz dn]
  float* dh_direct;    // [H] out: the part of dL/dh_{t-1} that bypasses W_hh
  const float* drh;    // [H] ONNX second pass: W_hnᵀ dn
  float* rh;           // [H] ONNX second pass out: r⊙h_prev
  int64_t H;
};

struct RnnBwdRow {
  const float* h;      // [H] h_t
  const float* dh;     // [H]
  const float* dy;     // [H] or null
  float* dgates;       // [H]
  bool relu;
  int64_t H;
};

struct Kernels {
  void (*lstm_fwd)(const LstmFwdRow&, int64_t j0, int64_t j1);
  void (*gru_fwd_lbr)(const GruFwdRow&, int64_t j0, int64_t j1);
  void (*gru_fwd_rz)(const GruFwdRow&, int64_t j0, int64_t j1);
  void (*gru_fwd_n)(const GruFwdRow&, int64_t j0, int64_t j1);
  void (*rnn_fwd)(const RnnFwdRow&, int64_t j0, int64_t j1);
  void (*lstm_bwd)(const LstmBwdRow&, int64_t j0, int64_t j1);
  void (*gru_bwd_lbr)(const GruBwdRow&, int64_t j0, int64_t j1);
  void (*gru_bwd_zn)(const GruBwdRow&, int64_t j0, int64_t j1);
  void (*gru_bwd_r)(const GruBwdRow&, int64_t j0, int64_t j1);
  void (*rnn_bwd)(const RnnBwdRow&, int64_t j0, int64_t j1);
};

// The set for `isa` (falls back to the best compiled set not above it).
const Kernels& kernels_for(Isa isa);

}  // namespace cells
}  // namespace rnnkit
