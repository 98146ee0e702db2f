// Device probe, per-device streams, the caching allocator and host<->device copies.
// The allocator keeps freed blocks by exact rounded size and hands them out again, so ops do not
// pay for cudaMalloc/cudaFree; on out-of-memory it empties the cache and retries once.
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "common.cuh"
#include "cuda_api.h"

#ifndef RNNKIT_CUDA_ARCHS
#define RNNKIT_CUDA_ARCHS ""
#endif

namespace rnnkit {
namespace gpu {

void throw_cuda(cudaError_t err, const char* what) {
  cudaGetLastError();  // clear the sticky-free error state so later calls are not poisoned
  std::ostringstream msg;
  msg << what << ": " << cudaGetErrorName(err) << " (" << static_cast<int>(err)
      << "): " << cudaGetErrorString(err);
  throw Error(err == cudaErrorMemoryAllocation ? ErrorCode::oom : ErrorCode::cuda, msg.str());
}

namespace {

constexpr int kMaxDevices = 64;

struct DeviceState {
  std::mutex mutex;
  cudaStream_t stream = nullptr;
  std::multimap<size_t, void*> free_blocks;
  std::unordered_map<void*, size_t> live_blocks;
  size_t cached = 0, used = 0;
};

DeviceState& state(int device) {
  static DeviceState* states = new DeviceState[kMaxDevices];
  return states[device];
}

int device_count_or_zero() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

void check_device_index(int device) {
  int n = device_count_or_zero();
  if (device < 0 || device >= n || device >= kMaxDevices) {
    std::ostringstream msg;
    msg << "CUDA device " << device << " does not exist (" << n << " device(s) visible)";
    throw Error(ErrorCode::device, msg.str());
  }
}

size_t round_size(size_t bytes) {
  const size_t kAlign = 512;
  if (bytes == 0) bytes = 1;
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

void release_cache_locked(DeviceState& s) {
  for (auto& kv : s.free_blocks) cudaFree(kv.second);
  s.free_blocks.clear();
  s.cached = 0;
}

std::vector<std::string> split_archs(const char* list) {
  std::vector<std::string> out;
  std::string cur;
  for (const char* p = list; *p; ++p) {
    if (*p == ';' || *p == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(*p);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace

cudaStream_t use_device(int device) {
  check_device_index(device);
  check(cudaSetDevice(device), "cudaSetDevice");
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lk(s.mutex);
  if (!s.stream) check(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  return s.stream;
}

ProbeResult probe() {
  ProbeResult r;
  r.built = true;
  r.architectures = split_archs(RNNKIT_CUDA_ARCHS);
  cudaRuntimeGetVersion(&r.runtime_version);
  cudaError_t derr = cudaDriverGetVersion(&r.driver_version);
  if (derr != cudaSuccess || r.driver_version == 0) {
    cudaGetLastError();
    r.reason = "no NVIDIA driver found (libcuda.so.1 could not be loaded)";
    return r;
  }
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    std::ostringstream msg;
    msg << "cudaGetDeviceCount failed: " << cudaGetErrorName(err) << " (" << static_cast<int>(err)
        << "): " << cudaGetErrorString(err);
    r.reason = msg.str();
    return r;
  }
  if (n == 0) {
    r.reason = "the NVIDIA driver reports no CUDA devices";
    return r;
  }
  for (int i = 0; i < n && i < kMaxDevices; ++i) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    DeviceInfo d;
    d.index = i;
    d.name = prop.name;
    d.cc_major = prop.major;
    d.cc_minor = prop.minor;
    d.total_bytes = prop.totalGlobalMem;
    d.multiprocessors = prop.multiProcessorCount;
    size_t free_b = 0, total_b = 0;
    if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
      d.free_bytes = free_b;
    } else {
      cudaGetLastError();
    }
    r.devices.push_back(d);
  }
  if (r.devices.empty()) {
    r.reason = "no CUDA device could be queried";
    return r;
  }
  r.available = true;
  return r;
}

void* device_alloc(int device, size_t bytes) {
  use_device(device);
  DeviceState& s = state(device);
  size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lk(s.mutex);
  auto it = s.free_blocks.find(size);
  if (it != s.free_blocks.end()) {
    void* p = it->second;
    s.free_blocks.erase(it);
    s.cached -= size;
    s.live_blocks[p] = size;
    s.used += size;
    return p;
  }
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, size);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    release_cache_locked(s);
    err = cudaMalloc(&p, size);
  }
  if (err != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    cudaGetLastError();
    std::ostringstream msg;
    msg << "CUDA device " << device << " out of memory: requested " << size << " bytes; "
        << s.used << " bytes in use by rnnkit, " << free_b << " of " << total_b
        << " bytes free on the device (" << cudaGetErrorName(err) << ")";
    throw Error(err == cudaErrorMemoryAllocation ? ErrorCode::oom : ErrorCode::cuda, msg.str());
  }
  s.live_blocks[p] = size;
  s.used += size;
  return p;
}

void device_free(int device, void* ptr) {
  if (!ptr || device < 0 || device >= kMaxDevices) return;
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lk(s.mutex);
  auto it = s.live_blocks.find(ptr);
  if (it == s.live_blocks.end()) return;
  size_t size = it->second;
  s.live_blocks.erase(it);
  s.used -= size;
  s.free_blocks.emplace(size, ptr);
  s.cached += size;
}

size_t cached_bytes(int device) {
  if (device < 0 || device >= kMaxDevices) return 0;
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lk(s.mutex);
  return s.cached;
}

size_t used_bytes(int device) {
  if (device < 0 || device >= kMaxDevices) return 0;
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lk(s.mutex);
  return s.used;
}

void release_cache(int device) {
  if (device < 0 || device >= kMaxDevices) return;
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lk(s.mutex);
  if (s.cached == 0) return;
  cudaSetDevice(device);
  release_cache_locked(s);
}

void copy_to_device(int device, void* dst, const void* src, size_t bytes) {
  cudaStream_t st = use_device(device);
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st), "cudaMemcpyAsync(host to device)");
  check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
}

void copy_to_host(int device, void* dst, const void* src, size_t bytes) {
  cudaStream_t st = use_device(device);
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, st), "cudaMemcpyAsync(device to host)");
  check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
}

void copy_device_to_device(int device, void* dst, const void* src, size_t bytes) {
  cudaStream_t st = use_device(device);
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, st), "cudaMemcpyAsync(device to device)");
  check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
}

}  // namespace gpu
}  // namespace rnnkit
