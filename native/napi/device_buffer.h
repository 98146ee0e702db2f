// Device memory owned from JavaScript. A DeviceBuffer holds a shared reference to one allocation;
// dispose() drops it at once, the GC finalizer is the safety net, and jobs in flight hold their
// own references, so memory is returned to the caching allocator only when the last user is done.
// Its size is reported to V8 as external memory so the GC sees the pressure.
//
// A slice (deviceBufferSlice(buffer, offsetBytes, bytes)) is a DeviceBuffer over a sub-range of
// another one's memory: its DeviceAllocation owns nothing and holds a reference to the parent
// allocation, so the memory outlives the parent's dispose() until the slice is disposed or
// collected too. Ops see a slice as any other buffer (ptr, bytes, device); it is not counted as an
// allocation (liveObjects) nor reported as external memory (the parent is).
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <vector>

#include "live_objects.h"

namespace rnnkit {
namespace napi {

struct DeviceAllocation {
  DeviceAllocation(int device, size_t bytes);
  // A view of bytes [offset, offset + bytes) of `parent` (checked by the caller), keeping it alive.
  DeviceAllocation(std::shared_ptr<DeviceAllocation> parent, size_t offset, size_t bytes);
  ~DeviceAllocation();
  DeviceAllocation(const DeviceAllocation&) = delete;
  DeviceAllocation& operator=(const DeviceAllocation&) = delete;
  int device;
  size_t bytes;
  void* ptr;
  // Set for a view: the allocation that owns the memory (ptr is inside it).
  std::shared_ptr<DeviceAllocation> parent;
  std::optional<LiveMark<LiveKind::device_allocation>> live;
};

class DeviceBuffer : public Napi::ObjectWrap<DeviceBuffer> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new DeviceBuffer(device, bytes) from JavaScript; a slice passes its allocation as an External.
  explicit DeviceBuffer(const Napi::CallbackInfo& info);
  ~DeviceBuffer() override;
  // Throws ERR_RNNKIT_DISPOSED after dispose().
  std::shared_ptr<DeviceAllocation> allocation(Napi::Env env, const char* what) const;

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value GetBytes(const Napi::CallbackInfo& info);
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  Napi::Value GetAddress(const Napi::CallbackInfo& info);
  void Release(Napi::Env env);

  std::shared_ptr<DeviceAllocation> alloc_;
  size_t reported_ = 0;
  napi_env env_ = nullptr;
};

using Alloc = std::shared_ptr<DeviceAllocation>;

// Unwraps a value (DeviceOf) or argument i (ArgDevice) as a live DeviceBuffer's allocation (typed
// errors otherwise); the Opt forms give nullptr for null or undefined.
Alloc DeviceOf(Napi::Env env, Napi::Value v, const char* what);
Alloc DeviceOptOf(Napi::Env env, Napi::Value v, const char* what);
Alloc ArgDevice(const Napi::CallbackInfo& info, size_t i, const char* what);
// The same, or nullptr when the argument is null or undefined.
Alloc ArgDeviceOpt(const Napi::CallbackInfo& info, size_t i, const char* what);
// Argument i as an array of live DeviceBuffers, all on one device.
std::vector<Alloc> ArgDeviceList(const Napi::CallbackInfo& info, size_t i, const char* what);

// Checks on the buffers of one CUDA op (absent ones, nullptr, are skipped): ERR_RNNKIT_SHAPE when
// `a` holds fewer than `count` floats; ERR_RNNKIT_DEVICE when they are on different devices;
// ERR_RNNKIT_ARG when `out` shares memory with one of `others`.
void RequireFloats(Napi::Env env, const Alloc& a, int64_t count, const char* what);
void RequireSameDevice(Napi::Env env, const std::initializer_list<Alloc>& all);
void RequireSameDevice(Napi::Env env, const std::vector<Alloc>& all);
void RequireDistinct(Napi::Env env, const Alloc& out, const std::initializer_list<Alloc>& others, const char* what);
// Whether two present buffers share memory: the same pointer, or overlapping byte ranges (slices).
bool SharesMemory(const Alloc& a, const Alloc& b);

// The allocation's memory as floats (nullptr for an absent buffer).
inline float* Floats(const Alloc& a) { return a ? static_cast<float*>(a->ptr) : nullptr; }

// The int32 ids of a CUDA op (embedding ids, cross-entropy targets): a host Int32Array, copied now
// for the caller to check (an async job must see the values checked), or a DeviceBuffer of int32
// values (an IndexTensor's, checked in lib/ from its known bounds; never read on the host).
struct Ids {
  std::shared_ptr<std::vector<int32_t>> host;
  Alloc device;
  int64_t count = 0;
};
// Argument i as ids: ERR_RNNKIT_DTYPE for a typed array other than Int32Array, ERR_RNNKIT_ARG for
// what is neither, ERR_RNNKIT_DISPOSED for a disposed buffer.
Ids ArgIds(const Napi::CallbackInfo& info, size_t i, const char* what);
// In a job: the ids' device memory, or the host values uploaded into `keep` (one counted copy).
const int32_t* IdsOnDevice(int device, const Ids& ids, Alloc& keep);

}  // namespace napi
}  // namespace rnnkit
