// The final step of the deterministic reductions (contract: cuda/reduce.cuh).
#include "common.cuh"
#include "reduce.cuh"

namespace rnnkit {
namespace gpu {
namespace {

constexpr int kThreads = 1024;

__global__ void __launch_bounds__(kThreads)
    sum_partials_kernel(const double* partials, int64_t count, double scale, const double* divisor, double* out,
                        float* out_f) {
  __shared__ double shared[kThreads];
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) s += partials[i];
  const double m = divisor ? (*divisor == 0.0 ? 0.0 : 1.0 / *divisor) : scale;
  const double total = block_sum<kThreads>(s, shared) * m;
  if (threadIdx.x == 0) {
    *out = total;
    if (out_f) *out_f = static_cast<float>(total);
  }
}

}  // namespace

void sum_partials_launch(cudaStream_t st, const double* partials, int64_t count, double scale,
                         const double* divisor, double* out, float* out_f) {
  sum_partials_kernel<<<1, kThreads, 0, st>>>(partials, count, scale, divisor, out, out_f);
  check(cudaGetLastError(), "sum of partials");
}

}  // namespace gpu
}  // namespace rnnkit
