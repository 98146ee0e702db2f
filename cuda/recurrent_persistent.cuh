// Internal interface between the Recurrent driver (cuda/recurrent.cu) and the persistent forward
// kernel (cuda/recurrent_persistent.cu). See cuda_recurrent.h for when it runs.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace rnnkit {
namespace gpu {

// One layer/direction of a forward, everything already on the device.
struct PersistentLayer {
  int mode;               // 0 lstm, 1 gru (linear before reset), 2 rnn_tanh, 3 rnn_relu
  int64_t T, B, H, GW;    // GW: floats per gate row (4H LSTM / GRU, H RNN)
  int64_t in_st, in_sb;   // row(t, b) of the gate rows
  int64_t out_st, out_sb, DR, out_col;  // y row(t, b)·DR + out_col
  int reverse;            // 1: steps run t = T-1..0
  float* gates;           // [rows, GW] in: x-projection; out: activations (the saved layout)
  float* cells_out;       // LSTM saved cell states [rows, H] or null
  const float* w_hh;      // [G·H, H]
  const float* b_ih;
  const float* b_hh;
  const float* peep;      // [3H] or null
  float clip;
  const int32_t* len;     // [B] on the device
  float* h;               // [2, B, H]: h[0] holds the initial state; the final state ends in h[T % 2]
  float* c;               // [B, H] LSTM cell state in/out
  float* y;
};

// Blocks and hidden units per block for this shape, or false with `why` set.
struct PersistentPlan {
  int blocks = 0, units = 0;
  size_t smem = 0;
  int sms = 0;             // multiprocessors of the device
  int rows_per_block = 0;  // W_hh rows a block holds: G·units (8 warps share them)
};
bool persistent_plan(int device, int mode, int64_t B, int64_t H, PersistentPlan* plan, std::string* why);

void persistent_forward_launch(cudaStream_t stream, const PersistentPlan& plan, const PersistentLayer& a);

}  // namespace gpu
}  // namespace rnnkit
