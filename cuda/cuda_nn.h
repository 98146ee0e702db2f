// The kernels of lib/nn on CUDA device pointers, as seen from the binding and the native checker:
// plain C++ (no CUDA headers), implemented in cuda/nn.cu; the CPU flavor links cuda/stub_nn.cc.
// Contracts: those of native/kernels/nn_elementwise.h, nn_reduce.h and gather.h on device
// pointers, with these notes:
// - broadcast add / mul, affine, accumulate, dropout, broadcast_axis, the gather and the copies
//   give the CPU's bits (the same float operations, never contracted into FMA); sum_axis too: it
//   sums in double in the CPU's order (contiguous rows in chunks of 8192 combined in order,
//   strided columns over l in order); so does the scatter-add (each output element adds its rows
//   in ascending position).
// - tanh and sigmoid use CUDA's tanhf / expf, within a few ulp of the CPU's approximations; their
//   backward is computed from y as on the CPU.
// - Embedding ids are n int32 on the device, checked by the caller (each in [0, V)); nothing is
//   copied to or from the host. An id outside [0, V) anyway gives a NaN row in the gather and is
//   skipped by the scatter-add, never a read or a write outside the table. The scatter-add sorts
//   (id, position) keys in device scratch (8 bytes per id, n rounded up to a power of two).
// Every call returns when its outputs are written. Errors: rnnkit::Error.
#pragma once
#include <cstdint>

#include "nn_elementwise.h"

namespace rnnkit {
namespace gpu {

void nn_activation_forward(int device, float* y, const float* x, int64_t n, Activation f);
void nn_activation_backward(int device, float* dx, const float* dy, const float* y, int64_t n, Activation f);
void nn_broadcast(int device, bool mul, float* out, const float* a, const float* b, int64_t rows, int64_t m);
void nn_affine(int device, float* out, const float* x, int64_t n, float scale, float shift);
void nn_accumulate(int device, float* y, const float* x, int64_t n);
void nn_dropout(int device, float* out, const float* in, int64_t n, float p, uint64_t seed);
void nn_sum_axis(int device, float* out, const float* x, const float* w, int64_t outer, int64_t len, int64_t inner,
                 double scale, bool accumulate);
void nn_broadcast_axis(int device, float* dx, const float* dy, int64_t outer, int64_t len, int64_t inner, float scale);
void nn_embedding_gather(int device, float* out, const float* weight, const int32_t* ids, int64_t n, int64_t V,
                         int64_t D);
void nn_embedding_scatter_add(int device, float* dweight, const float* dy, const int32_t* ids, int64_t n, int64_t V,
                              int64_t D, int64_t padding_idx, bool accumulate);
void nn_copy_block(int device, float* dst, int64_t dst_ld, const float* src, int64_t src_ld, int64_t rows,
                   int64_t cols);

}  // namespace gpu
}  // namespace rnnkit
