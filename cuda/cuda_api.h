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
  std::string reason;      // why not available (empty when available)
  int driver_version = 0;  // e.g. 12040 for 12.4; 0 when no driver
  int runtime_version = 0;
  std::vector<std::string> architectures;  // SASS/PTX targets compiled in, e.g. "sm_90"
  std::vector<DeviceInfo> devices;
};

// Probed once, then cached (free memory figures refreshed on each call).
ProbeResult probe();

// Device memory through a per-device caching allocator. Throws ErrorCode::oom with the sizes
// involved when the device is out of memory (after releasing the cache and retrying once).
void* device_alloc(int device, size_t bytes);
void device_free(int device, void* ptr);
// Bytes held by the cache (not handed out) and bytes in use, for tests and diagnostics.
size_t cached_bytes(int device);
size_t used_bytes(int device);
void release_cache(int device);

// Copies on the device's stream; they return when the data has arrived.
void copy_to_device(int device, void* dst, const void* src, size_t bytes);
void copy_to_host(int device, void* dst, const void* src, size_t bytes);
void copy_device_to_device(int device, void* dst, const void* src, size_t bytes);

// y = a·x + y over n floats on the device: the kernel that proves the whole path works.
void saxpy(int device, int64_t n, float a, const float* x, float* y);

}  // namespace gpu
}  // namespace rnnkit
