// Shared helpers for the CUDA sources: error checks that turn CUDA failures into rnnkit::Error,
// the per-device stream every op runs on, and scratch memory from the caching allocator.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda_api.h"
#include "errors.h"

namespace rnnkit {
namespace gpu {

[[noreturn]] void throw_cuda(cudaError_t err, const char* what);

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw_cuda(err, what);
}

// Records a host<->device copy made with a raw cudaMemcpy (see copy_counts in cuda_api.h).
void count_copy(bool to_device, size_t bytes);

// Makes `device` current on the calling thread and returns its stream (created on first use).
cudaStream_t use_device(int device);

// Streaming multiprocessors of `device` (cached), for sizing grids to one wave.
int multiprocessors(int device);

// Blocks for n elements at `threads` per block, at most one wave (8 blocks per multiprocessor):
// grid-stride kernels (i = thread_index(); i < n; i += thread_count()) cover the rest.
unsigned wave_blocks(int device, int64_t n, int threads);

// Checks the launch just queued on `st`, then waits for the stream (errors as rnnkit::Error).
void launched_and_done(cudaStream_t st, const char* what);

#ifdef __CUDACC__
// Queues launch(blocks, stream) of a grid-stride kernel over n elements at `threads` per block on
// the device's stream and waits for it (nothing for n <= 0).
template <class Launch>
void launch_and_wait(int device, int64_t n, int threads, const char* what, Launch launch) {
  if (n <= 0) return;
  cudaStream_t st = use_device(device);
  launch(wave_blocks(device, n, threads), st);
  launched_and_done(st, what);
}

__device__ __forceinline__ int64_t thread_index() { return blockIdx.x * int64_t(blockDim.x) + threadIdx.x; }
__device__ __forceinline__ int64_t thread_count() { return int64_t(gridDim.x) * blockDim.x; }
#endif

// Device scratch memory for the life of one op. Every op runs on the device's one stream, so a
// block freed here and handed to the next op is reused in stream order, never concurrently.
class Scratch {
 public:
  Scratch(int device, size_t bytes) : device_(device), ptr_(device_alloc(device, bytes)) {}
  ~Scratch() { device_free(device_, ptr_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  float* floats() const { return static_cast<float*>(ptr_); }

 private:
  int device_;
  void* ptr_;
};

}  // namespace gpu
}  // namespace rnnkit
