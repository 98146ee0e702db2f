// Elementwise kernels on the device: fill, and the bias helpers of Linear (contract: cuda_api.h
// fill, cuda_train.h add_rows / column_sums). add_rows rounds y + bias once, as the CPU's float32
// update does; column_sums gives one thread per column summing the rows in order in double, the
// very order (and so the bits) of the CPU code it stands in for.
#include "common.cuh"
#include "cuda_api.h"
#include "cuda_train.h"

namespace rnnkit {
namespace gpu {
namespace {

constexpr int kThreads = 256;

__global__ void fill_kernel(float* dst, int64_t n, float value) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) dst[i] = value;
}

__global__ void add_rows_kernel(float* y, const float* bias, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t i = thread_index(); i < n; i += thread_count()) y[i] = __fadd_rn(y[i], bias[i % cols]);
}

__global__ void column_sums_kernel(float* dst, const float* src, int64_t rows, int64_t cols, bool accumulate) {
  for (int64_t j = thread_index(); j < cols; j += thread_count()) {
    double s = 0.0;
    for (int64_t r = 0; r < rows; ++r) s += static_cast<double>(src[r * cols + j]);
    dst[j] = static_cast<float>(accumulate ? static_cast<double>(dst[j]) + s : s);
  }
}

}  // namespace

void fill(int device, float* dst, int64_t n, float value) {
  if (n <= 0) return;
  cudaStream_t st = use_device(device);
  fill_kernel<<<wave_blocks(device, n, kThreads), kThreads, 0, st>>>(dst, n, value);
  launched_and_done(st, "fill");
}

void add_rows(int device, float* y, const float* bias, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  cudaStream_t st = use_device(device);
  add_rows_kernel<<<wave_blocks(device, rows * cols, kThreads), kThreads, 0, st>>>(y, bias, rows, cols);
  launched_and_done(st, "add rows");
}

void column_sums(int device, float* dst, const float* src, int64_t rows, int64_t cols, bool accumulate) {
  if (cols <= 0) return;
  cudaStream_t st = use_device(device);
  column_sums_kernel<<<wave_blocks(device, cols, kThreads), kThreads, 0, st>>>(dst, src, rows, cols, accumulate);
  launched_and_done(st, "column sums");
}

}  // namespace gpu
}  // namespace rnnkit
