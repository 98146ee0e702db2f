// Shared helpers for the CUDA sources: error checks that turn CUDA failures into rnnkit::Error,
// and the per-device stream every op runs on.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "errors.h"

namespace rnnkit {
namespace gpu {

[[noreturn]] void throw_cuda(cudaError_t err, const char* what);

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw_cuda(err, what);
}

// Makes `device` current on the calling thread and returns its stream (created on first use).
cudaStream_t use_device(int device);

}  // namespace gpu
}  // namespace rnnkit
