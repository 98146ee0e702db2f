// The CPU flavor's stand-in for cuda_nn.h: every call throws ERR_RNNKIT_DEVICE.
#include "cuda_nn.h"

#include "errors.h"

namespace rnnkit {
namespace gpu {
namespace {

[[noreturn]] void not_built() {
  throw Error(ErrorCode::device, "this rnnkit binary was built without CUDA (CPU flavor): the CUDA nn kernels are not in it");
}

}  // namespace

void nn_activation_forward(int, float*, const float*, int64_t, Activation) { not_built(); }
void nn_activation_backward(int, float*, const float*, const float*, int64_t, Activation) { not_built(); }
void nn_broadcast(int, bool, float*, const float*, const float*, int64_t, int64_t) { not_built(); }
void nn_affine(int, float*, const float*, int64_t, float, float) { not_built(); }
void nn_accumulate(int, float*, const float*, int64_t) { not_built(); }
void nn_dropout(int, float*, const float*, int64_t, float, uint64_t) { not_built(); }
void nn_sum_axis(int, float*, const float*, const float*, int64_t, int64_t, int64_t, double, bool) { not_built(); }
void nn_broadcast_axis(int, float*, const float*, int64_t, int64_t, int64_t, float) { not_built(); }
void nn_embedding_gather(int, float*, const float*, const int32_t*, int64_t, int64_t, int64_t) { not_built(); }
void nn_embedding_scatter_add(int, float*, const float*, const int32_t*, int64_t, int64_t, int64_t, int64_t, bool) {
  not_built();
}
void nn_copy_block(int, float*, int64_t, const float*, int64_t, int64_t, int64_t) { not_built(); }

}  // namespace gpu
}  // namespace rnnkit
