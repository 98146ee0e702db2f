// Launch-only entry points of the CUDA kernels: they queue work on `stream` and return at once,
// for callers that time kernels with CUDA events (native/tools/gpu_check.cu). The synchronous
// functions of cuda_api.h wrap them (use_device, launch, wait). Contracts as in cuda_api.h.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace rnnkit {
namespace gpu {

// Which GEMM kernel a call takes: for reports and tests of the dispatch itself.
enum class GemmPath { none, small_m, simt, tf32 };

// __CUDA_ARCH__ of the GEMM code as loaded on `device` (e.g. 900), -1 when it could not be told.
// The TF32 path is taken only where it is 800 or more: its kernel body is empty below sm_80.
int gemm_compiled_arch(int device);

GemmPath sgemm_launch(int device, cudaStream_t stream, bool trans_a, bool trans_b, int64_t M, int64_t N,
                      int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                      float beta, float* C, int64_t ldc, bool tf32);

void rmsnorm_forward_launch(int device, cudaStream_t stream, float* y, float* rrms, const float* x,
                            const float* gamma, const float* beta, int64_t rows, int64_t cols, float eps);

// Floats of scratch the backward needs for its dgamma/dbeta partials (0 when both are null).
size_t rmsnorm_backward_workspace_floats(int device, int64_t rows, int64_t cols, bool want_column_sums);
void rmsnorm_backward_launch(int device, cudaStream_t stream, float* workspace, float* dx, float* dgamma,
                             float* dbeta, const float* dy, const float* x, const float* gamma,
                             const float* rrms, int64_t rows, int64_t cols, bool accumulate);

}  // namespace gpu
}  // namespace rnnkit
