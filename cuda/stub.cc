// The CPU flavor's stand-in for the CUDA side: reports that CUDA is not built in.
#include "cuda_api.h"

#include "errors.h"

namespace rnnkit {
namespace gpu {
namespace {

[[noreturn]] void not_built() {
  throw Error(ErrorCode::device,
              "this rnnkit binary was built without CUDA (CPU flavor); build the CUDA flavor with "
              "`npm run build:cuda` or use device 'cpu'");
}

}  // namespace

ProbeResult probe() {
  ProbeResult r;
  r.reason = "the CPU flavor of rnnkit is loaded (built without CUDA)";
  return r;
}

std::string sticky_error() { return std::string(); }
CopyCounts copy_counts() { return CopyCounts(); }

void* device_alloc(int, size_t) { not_built(); }
void device_free(int, void*) {}
size_t cached_bytes(int) { return 0; }
size_t used_bytes(int) { return 0; }
void release_cache(int) {}
void copy_to_device(int, void*, const void*, size_t) { not_built(); }
void copy_to_host(int, void*, const void*, size_t) { not_built(); }
void copy_device_to_device(int, void*, const void*, size_t) { not_built(); }
size_t staging_chunk_bytes() { return 0; }
void fill(int, float*, int64_t, float) { not_built(); }
void saxpy(int, int64_t, float, const float*, float*) { not_built(); }
void sgemm(int, bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float,
           float*, int64_t, bool) {
  not_built();
}
void rmsnorm_forward(int, float*, float*, const float*, const float*, const float*, int64_t, int64_t, float) {
  not_built();
}
void rmsnorm_backward(int, float*, float*, float*, const float*, const float*, const float*, const float*, int64_t,
                      int64_t, bool) {
  not_built();
}

}  // namespace gpu
}  // namespace rnnkit
