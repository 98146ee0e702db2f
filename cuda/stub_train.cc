// The CPU flavor's stand-in for cuda_train.h: every call throws ERR_RNNKIT_DEVICE.
#include "cuda_train.h"

#include "errors.h"

namespace rnnkit {
namespace gpu {
namespace {

[[noreturn]] void not_built() {
  throw Error(ErrorCode::device,
              "this rnnkit binary was built without CUDA (CPU flavor): the CUDA training kernels are not in it");
}

}  // namespace

void sgd_step(int, float*, const float*, float*, int64_t, const SgdHyper&) { not_built(); }
void adam_step(int, float*, const float*, float*, float*, float*, int64_t, const AdamHyper&) { not_built(); }
void adagrad_step(int, float*, const float*, float*, int64_t, const AdagradHyper&) { not_built(); }
void rmsprop_step(int, float*, const float*, float*, float*, float*, int64_t, const RmspropHyper&) { not_built(); }
void softmax_cross_entropy(int, double*, float*, float*, const float*, const int32_t*, const float*, int64_t, int64_t,
                           int32_t, bool) {
  not_built();
}
void mse(int, double*, float*, float*, const float*, const float*, int64_t, bool) { not_built(); }
void sum_squares(int, double*, const float* const*, const int64_t*, int64_t) { not_built(); }
void clip_grad_norm(int, double*, float*, float* const*, const int64_t*, int64_t, double) { not_built(); }
void scale(int, float* const*, const int64_t*, int64_t, float) { not_built(); }
void clamp(int, float* const*, const int64_t*, int64_t, float, float) { not_built(); }

}  // namespace gpu
}  // namespace rnnkit
