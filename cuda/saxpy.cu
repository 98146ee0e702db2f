// y = a·x + y: the smallest real kernel, used by the tests to prove build, load, launch and copy.
#include "common.cuh"
#include "cuda_api.h"

namespace rnnkit {
namespace gpu {
namespace {

__global__ void saxpy_kernel(int64_t n, float a, const float* __restrict__ x, float* __restrict__ y) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = a * x[i] + y[i];
  }
}

}  // namespace

void saxpy(int device, int64_t n, float a, const float* x, float* y) {
  if (n <= 0) return;
  cudaStream_t st = use_device(device);
  int threads = 256;
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks > 65535) blocks = 65535;
  saxpy_kernel<<<static_cast<unsigned>(blocks), threads, 0, st>>>(n, a, x, y);
  check(cudaGetLastError(), "saxpy launch");
  check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
}

}  // namespace gpu
}  // namespace rnnkit
