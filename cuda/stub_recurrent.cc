// The CPU flavor's stand-in for cuda_recurrent.h: every call throws ERR_RNNKIT_DEVICE.
#include "cuda_recurrent.h"

#include "errors.h"

namespace rnnkit {
namespace gpu {
namespace {

[[noreturn]] void not_built() {
  throw Error(ErrorCode::device,
              "this rnnkit binary was built without CUDA (CPU flavor): the CUDA Recurrent kernels are not in it");
}

}  // namespace

const char* recurrent_forward_algorithm(int, const RecurrentConfig&, int64_t, int64_t, RecurrentAlgo, std::string*) {
  not_built();
}

const char* recurrent_forward(int, const RecurrentConfig&, int64_t, int64_t, bool, const float*, const float*,
                              const float*, const int32_t*, const float*, float, uint64_t, float*, float*, float*,
                              float*, RecurrentAlgo) {
  not_built();
}

const char* recurrent_backward(int, const RecurrentConfig&, int64_t, int64_t, bool, const float*, const float*,
                               const float*, const int32_t*, const float*, float, uint64_t, const float*, const float*,
                               const float*, const float*, const float*, float*, float*, float*, float*, bool) {
  not_built();
}

}  // namespace gpu
}  // namespace rnnkit
