// The CUDA side as seen from the binding: plain C++ (no CUDA headers), so native/napi can include
// it in both flavors. The CUDA flavor implements it in cuda/*.cu; the CPU flavor links
// cuda/stub.cc, where probe() says CUDA was not built and every other call throws
// ERR_RNNKIT_DEVICE. All functions throw rnnkit::Error (native/kernels/errors.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rnnkit {
namespace gpu {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  size_t total_bytes = 0, free_bytes = 0;
  int multiprocessors = 0;
};

struct ProbeResult {
  bool built = false;      // this binary contains CUDA code
  bool available = false;  // built, a driver answered, and at least one device is usable
  std::string reason;      // why not available, with the CUDA error (empty when available)
  int driver_version = 0;  // e.g. 12040 for 12.4; 0 when no driver
  int runtime_version = 0;
  std::vector<std::string> architectures;  // SASS/PTX targets compiled in, e.g. "sm_90"
  std::vector<DeviceInfo> devices;
};

// Probed once, then cached (free memory figures refreshed on each call).
ProbeResult probe();

// The first error that left the CUDA context of this process unusable (an illegal address, a
// kernel fault, a failed assertion): every later CUDA call fails with it, and every later error
// message names it. Empty while none happened.
std::string sticky_error();

// Host<->device copies made by this process (each copy_to_device / copy_to_host call is one, and
// so is every small upload the kernels make themselves), for tests and reports that check that
// work stays on the device.
struct CopyCounts {
  uint64_t to_device = 0, to_device_bytes = 0, to_host = 0, to_host_bytes = 0;
};
CopyCounts copy_counts();

// Device memory through a per-device caching allocator. Throws ErrorCode::oom with the sizes
// involved when the device is out of memory (after releasing the cache and retrying once).
void* device_alloc(int device, size_t bytes);
void device_free(int device, void* ptr);
// Bytes held by the cache (not handed out) and bytes in use, for tests and diagnostics.
size_t cached_bytes(int device);
size_t used_bytes(int device);
void release_cache(int device);

// Copies on the device's stream; they return when the data has arrived. Host<->device copies go
// through a pinned staging buffer per device, in chunks of staging_chunk_bytes() (two chunks in
// flight, so the host-side memcpy of one overlaps the DMA of the other); when pinned memory cannot
// be had they fall back to a plain pageable copy.
void copy_to_device(int device, void* dst, const void* src, size_t bytes);
void copy_to_host(int device, void* dst, const void* src, size_t bytes);
void copy_device_to_device(int device, void* dst, const void* src, size_t bytes);
size_t staging_chunk_bytes();

// dst[0..n) = value on the device (no host copy). Returns when written.
void fill(int device, float* dst, int64_t n, float value);

// y = a·x + y over n floats on the device: the kernel that proves the whole path works.
void saxpy(int device, int64_t n, float a, const float* x, float* y);

// Row-major SGEMM on the device, the contract of native/kernels/sgemm.h: C = alpha*op(A)*op(B) +
// beta*C with op(A) [M, K], op(B) [K, N]; beta == 0 never reads C. `tf32` allows the tensor-core
// path (inputs rounded to TF32, fp32 accumulation) on devices of compute capability 8.0 and up;
// products with M <= 16 and older devices stay in fp32. Returns when C is written.
void sgemm(int device, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc, bool tf32);

// RMSNorm on the device, the contract of native/kernels/rmsnorm.h (outputs `=`, dgamma/dbeta `+=`
// when accumulating, any of dx/dgamma/dbeta may be null). dgamma/dbeta are reduced without float
// atomics (per-block partials, then a fixed-order reduction), so results are bitwise repeatable on
// a given device. Return when the outputs are written.
void rmsnorm_forward(int device, float* y, float* rrms, const float* x, const float* gamma,
                     const float* beta, int64_t rows, int64_t cols, float eps);
void rmsnorm_backward(int device, float* dx, float* dgamma, float* dbeta, const float* dy,
                      const float* x, const float* gamma, const float* rrms, int64_t rows,
                      int64_t cols, bool accumulate);

}  // namespace gpu
}  // namespace rnnkit
