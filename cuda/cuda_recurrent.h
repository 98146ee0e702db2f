// The Recurrent op on CUDA device pointers, as seen from the binding and the native checker: plain
// C++ (no CUDA headers). Same contract as native/kernels/recurrent.h (semantics, packed weights,
// `=` / `+=` outputs, the opaque `saved` layout, dropout masks from dropout_hash.h), with these
// differences:
// - x, hx, cx, weights, y, hy, cy, saved, dy, dhy, dcy, dx, dhx, dcx and dweights are device
//   pointers on `device`; seq_lengths is a HOST array of B int32 values (or null), checked here.
// - `saved` has exactly the CPU layout, so a CPU forward's saved drives a GPU backward and back.
// - The algorithm is chosen by shape unless forced, and returned (no silent choice):
//   "standard": per layer/direction one input-projection GEMM, then per step the recurrent GEMM
//     (cuda/gemm.cu) and one fused gate/state kernel; directions run on two streams. The backward
//     always runs this way: fused gate gradients per step, weight gradients and dx as large GEMMs.
//   "persistent": one cooperative kernel per layer/direction runs every step with its slice of
//     W_hh held in shared memory and a grid-wide barrier per step. Forward only; LSTM without
//     projection, GRU with linear_before_reset, RNN-tanh/relu; B <= 16; and only when the slices
//     fit the device (checked with the occupancy API).
//   "auto" takes the persistent kernel only where it is expected to win: T >= 16 steps (fewer do
//     not repay the cooperative launch and the W_hh load), a plan where every warp of a block owns
//     W_hh rows and the grid is at most one block per multiprocessor; otherwise the standard one.
// Each call returns when its outputs are written. Errors: rnnkit::Error (arg for a bad config or
// argument, oom, cuda, device).
#pragma once
#include <cstdint>
#include <string>

#include "recurrent.h"

namespace rnnkit {
namespace gpu {

enum class RecurrentAlgo { automatic, standard, persistent };

// The algorithm a forward with this shape would run: "standard" or "persistent", and in `why`
// (when given) the reason for the choice, in words. Forcing persistent where it cannot run throws
// ErrorCode::arg with the reason.
const char* recurrent_forward_algorithm(int device, const RecurrentConfig& cfg, int64_t T, int64_t B,
                                        RecurrentAlgo algo, std::string* why = nullptr);

const char* recurrent_forward(int device, const RecurrentConfig& cfg, int64_t T, int64_t B, bool batch_first,
                              const float* x, const float* hx, const float* cx, const int32_t* seq_lengths,
                              const float* weights, float dropout_p, uint64_t seed, float* y, float* hy, float* cy,
                              float* saved, RecurrentAlgo algo);

const char* recurrent_backward(int device, const RecurrentConfig& cfg, int64_t T, int64_t B, bool batch_first,
                               const float* x, const float* hx, const float* cx, const int32_t* seq_lengths,
                               const float* weights, float dropout_p, uint64_t seed, const float* y,
                               const float* saved, const float* dy, const float* dhy, const float* dcy, float* dx,
                               float* dhx, float* dcx, float* dweights, bool accumulate);

}  // namespace gpu
}  // namespace rnnkit
