// The pieces of a training step on CUDA device pointers, as seen from the binding and the native
// checker: plain C++ (no CUDA headers). Implemented in cuda/train.cu (optimizer steps),
// cuda/loss.cu (losses) and cuda/clip.cu (gradient clipping); the CPU flavor links cuda/stub_train.cc, where every call throws
// ERR_RNNKIT_DEVICE. Contracts: those of native/kernels/train.h on device pointers, except:
// - Optimizer steps give exactly the bits of the CPU kernels: the same float operations in the
//   same order (intrinsics that are never contracted into FMA, IEEE division and square root),
//   and the same per-step scalars (adam_scalars / adagrad_scalars of train.h).
// - Losses and clipping reduce in double in a fixed order (per-block partials, then one block), so
//   their results repeat bit for bit on a device; they differ from the CPU's only by the summation
//   order and by expf (within 2 ulp of glibc's). Their scalar results (the loss, the norm) are
//   written to device memory: `value` a double, `value_f` (optional) a float rounded from it. The
//   caller decides whether to copy one to the host; nothing here does.
// - Clipping by norm decides on the device whether to scale (norm finite and factor < 1), so a
//   training step needs no round trip through the host for it.
// Every call returns when its outputs are written. Errors: rnnkit::Error (cuda, oom, device).
#pragma once
#include <cstdint>

#include "train.h"

namespace rnnkit {
namespace gpu {

void sgd_step(int device, float* p, const float* g, float* buf, int64_t n, const SgdHyper& h);
void adam_step(int device, float* p, const float* g, float* m, float* v, float* vmax, int64_t n,
               const AdamHyper& h);
void adagrad_step(int device, float* p, const float* g, float* sum, int64_t n, const AdagradHyper& h);
void rmsprop_step(int device, float* p, const float* g, float* square_avg, float* grad_avg, float* buf,
                  int64_t n, const RmspropHyper& h);

// targets: N int32 on the device, already checked (weighted rows in [0, V)); a weighted row whose
// target is out of range anyway gets a NaN loss instead of a read outside its row. mask: N floats
// or null. dlogits may be null.
void softmax_cross_entropy(int device, double* value, float* value_f, float* dlogits, const float* logits,
                           const int32_t* targets, const float* mask, int64_t N, int64_t V, int32_t ignore_index,
                           bool mean);
void mse(int device, double* value, float* value_f, float* dy, const float* y, const float* target, int64_t n,
         bool mean);

// Σ x² over `count` device buffers (pointers and sizes are host arrays) into *value.
void sum_squares(int device, double* value, const float* const* xs, const int64_t* sizes, int64_t count);
// torch.nn.utils.clip_grad_norm_ on the device: norm = sqrt(Σ x²) into *value (and *value_f);
// when the norm is finite and max_norm / (norm + 1e-6) < 1, every x is multiplied by that factor
// rounded once to float (as lib/train/clip.ts does on the CPU).
void clip_grad_norm(int device, double* value, float* value_f, float* const* xs, const int64_t* sizes,
                    int64_t count, double max_norm);
void scale(int device, float* const* xs, const int64_t* sizes, int64_t count, float s);
void clamp(int device, float* const* xs, const int64_t* sizes, int64_t count, float lo, float hi);

}  // namespace gpu
}  // namespace rnnkit
