// Device probe, per-device streams, the caching allocator, host<->device copies (counted, see
// copy_counts) and CUDA errors (the first one that leaves the context unusable is remembered and
// named by every later error).
// The allocator keeps freed blocks by exact rounded size and hands them out again, so ops do not
// pay for cudaMalloc/cudaFree; on out-of-memory it empties the cache and retries once.
// Host<->device copies are staged through a pinned buffer per device: a pageable cudaMemcpy makes
// the driver stage through its own small buffer anyway, and owning the buffer lets the host-side
// memcpy of one chunk overlap the DMA of the previous one.
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstring>
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

namespace {

// Errors after which the context is unusable: every later call returns them again.
bool is_sticky(cudaError_t err) {
  switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
      return true;
    default:
      return false;
  }
}

std::mutex sticky_mutex;
std::string sticky_first;  // guarded by sticky_mutex

std::atomic<uint64_t> copies_to_device{0}, bytes_to_device{0}, copies_to_host{0}, bytes_to_host{0};

}  // namespace

void throw_cuda(cudaError_t err, const char* what) {
  cudaGetLastError();  // clear a non-sticky error so later calls are not poisoned
  std::ostringstream msg;
  msg << what << ": " << cudaGetErrorName(err) << " (" << static_cast<int>(err)
      << "): " << cudaGetErrorString(err);
  {
    std::lock_guard<std::mutex> lk(sticky_mutex);
    if (!sticky_first.empty()) {
      msg << " [the CUDA context has been unusable since: " << sticky_first << "]";
    } else if (is_sticky(err)) {
      sticky_first = msg.str();
      msg << " [sticky: the CUDA context of this process is now unusable; every later CUDA call fails]";
    }
  }
  throw Error(err == cudaErrorMemoryAllocation ? ErrorCode::oom : ErrorCode::cuda, msg.str());
}

std::string sticky_error() {
  std::lock_guard<std::mutex> lk(sticky_mutex);
  return sticky_first;
}

void count_copy(bool to_device, size_t bytes) {
  (to_device ? copies_to_device : copies_to_host).fetch_add(1, std::memory_order_relaxed);
  (to_device ? bytes_to_device : bytes_to_host).fetch_add(bytes, std::memory_order_relaxed);
}

CopyCounts copy_counts() {
  CopyCounts c;
  c.to_device = copies_to_device.load();
  c.to_device_bytes = bytes_to_device.load();
  c.to_host = copies_to_host.load();
  c.to_host_bytes = bytes_to_host.load();
  return c;
}

namespace {

constexpr int kMaxDevices = 64;
constexpr size_t kStagingChunk = size_t(4) << 20;

struct DeviceState {
  std::mutex mutex;
  cudaStream_t stream = nullptr;
  int multiprocessors = 0;
  std::multimap<size_t, void*> free_blocks;
  std::unordered_map<void*, size_t> live_blocks;
  size_t cached = 0, used = 0;
};

// Two pinned chunks and the events that say when the DMA last using each one has finished. Its own
// mutex: a long copy must not hold up allocations.
struct Staging {
  std::mutex mutex;
  char* host = nullptr;
  cudaEvent_t done[2] = {nullptr, nullptr};
  bool unavailable = false;
};

DeviceState& state(int device) {
  static DeviceState* states = new DeviceState[kMaxDevices];
  return states[device];
}

Staging& staging(int device) {
  static Staging* stagings = new Staging[kMaxDevices];
  return stagings[device];
}

// Called with the device current and the staging mutex held. False when pinned memory or events
// cannot be had (container limits on locked memory, for one): the copy then goes pageable.
bool ensure_staging(Staging& sg) {
  if (sg.host) return true;
  if (sg.unavailable) return false;
  void* p = nullptr;
  if (cudaHostAlloc(&p, 2 * kStagingChunk, cudaHostAllocPortable) != cudaSuccess) {
    cudaGetLastError();
    sg.unavailable = true;
    return false;
  }
  for (cudaEvent_t& e : sg.done) {
    if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming) != cudaSuccess) {
      cudaGetLastError();
      for (cudaEvent_t& made : sg.done) {
        if (made) cudaEventDestroy(made);
        made = nullptr;
      }
      cudaFreeHost(p);
      sg.unavailable = true;
      return false;
    }
  }
  sg.host = static_cast<char*>(p);
  return true;
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

int multiprocessors(int device) {
  use_device(device);
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lk(s.mutex);
  if (s.multiprocessors == 0) {
    check(cudaDeviceGetAttribute(&s.multiprocessors, cudaDevAttrMultiProcessorCount, device),
          "cudaDeviceGetAttribute(multiprocessors)");
  }
  return s.multiprocessors;
}

unsigned wave_blocks(int device, int64_t n, int threads) {
  const int64_t wanted = (n + threads - 1) / threads;
  const int64_t wave = int64_t(multiprocessors(device)) * 8;
  return static_cast<unsigned>(wanted < wave ? wanted : wave);
}

void launched_and_done(cudaStream_t st, const char* what) {
  check(cudaGetLastError(), what);
  check(cudaStreamSynchronize(st), what);
}

size_t staging_chunk_bytes() { return kStagingChunk; }

ProbeResult probe() {
  ProbeResult r;
  r.built = true;
  r.architectures = split_archs(RNNKIT_CUDA_ARCHS);
  cudaRuntimeGetVersion(&r.runtime_version);
  if (cudaDriverGetVersion(&r.driver_version) != cudaSuccess) {
    cudaGetLastError();
    r.driver_version = 0;
  }
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    std::ostringstream msg;
    if (r.driver_version == 0) msg << "no NVIDIA driver found (libcuda.so.1 could not be loaded); ";
    msg << "cudaGetDeviceCount: " << cudaGetErrorName(err) << " (" << static_cast<int>(err)
        << "): " << cudaGetErrorString(err) << " (driver " << r.driver_version / 1000 << "."
        << r.driver_version % 1000 / 10 << ", runtime " << r.runtime_version / 1000 << "."
        << r.runtime_version % 1000 / 10 << ")";
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
  if (bytes == 0) return;
  count_copy(true, bytes);
  Staging& sg = staging(device);
  std::lock_guard<std::mutex> lk(sg.mutex);
  if (!ensure_staging(sg)) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st), "cudaMemcpyAsync(host to device)");
    check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
    return;
  }
  const char* from = static_cast<const char*>(src);
  char* to = static_cast<char*>(dst);
  for (size_t off = 0, i = 0; off < bytes; off += kStagingChunk, ++i) {
    const size_t n = std::min(kStagingChunk, bytes - off);
    const int half = static_cast<int>(i & 1);
    char* chunk = sg.host + half * kStagingChunk;
    // The DMA that last read this half (two chunks ago, or an earlier copy) must be done.
    check(cudaEventSynchronize(sg.done[half]), "cudaEventSynchronize(staging)");
    std::memcpy(chunk, from + off, n);
    check(cudaMemcpyAsync(to + off, chunk, n, cudaMemcpyHostToDevice, st), "cudaMemcpyAsync(host to device)");
    check(cudaEventRecord(sg.done[half], st), "cudaEventRecord(staging)");
  }
  check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
}

void copy_to_host(int device, void* dst, const void* src, size_t bytes) {
  cudaStream_t st = use_device(device);
  if (bytes == 0) return;
  count_copy(false, bytes);
  Staging& sg = staging(device);
  std::lock_guard<std::mutex> lk(sg.mutex);
  if (!ensure_staging(sg)) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, st), "cudaMemcpyAsync(device to host)");
    check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
    return;
  }
  const char* from = static_cast<const char*>(src);
  char* to = static_cast<char*>(dst);
  const size_t chunks = (bytes + kStagingChunk - 1) / kStagingChunk;
  // Chunk i lands in half i&1; chunk i+1 is queued before chunk i is copied out, so the DMA runs
  // while the host copies. Half (i+1)&1 was last read out in the previous iteration.
  auto queue = [&](size_t i) {
    const size_t off = i * kStagingChunk;
    const int half = static_cast<int>(i & 1);
    check(cudaMemcpyAsync(sg.host + half * kStagingChunk, from + off, std::min(kStagingChunk, bytes - off),
                          cudaMemcpyDeviceToHost, st),
          "cudaMemcpyAsync(device to host)");
    check(cudaEventRecord(sg.done[half], st), "cudaEventRecord(staging)");
  };
  queue(0);
  for (size_t i = 0; i < chunks; ++i) {
    if (i + 1 < chunks) queue(i + 1);
    const size_t off = i * kStagingChunk;
    const int half = static_cast<int>(i & 1);
    check(cudaEventSynchronize(sg.done[half]), "cudaEventSynchronize(staging)");
    std::memcpy(to + off, sg.host + half * kStagingChunk, std::min(kStagingChunk, bytes - off));
  }
}

void copy_device_to_device(int device, void* dst, const void* src, size_t bytes) {
  cudaStream_t st = use_device(device);
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, st), "cudaMemcpyAsync(device to device)");
  check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
}

}  // namespace gpu
}  // namespace rnnkit
