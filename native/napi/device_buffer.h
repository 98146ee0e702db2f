// Device memory owned from JavaScript. A DeviceBuffer holds a shared reference to one allocation;
// dispose() drops it at once, the GC finalizer is the safety net, and jobs in flight hold their
// own references, so memory is returned to the caching allocator only when the last user is done.
// Its size is reported to V8 as external memory so the GC sees the pressure.
#pragma once
#include <napi.h>

#include <cstddef>
#include <memory>

namespace rnnkit {
namespace napi {

struct DeviceAllocation {
  DeviceAllocation(int device, size_t bytes);
  ~DeviceAllocation();
  DeviceAllocation(const DeviceAllocation&) = delete;
  DeviceAllocation& operator=(const DeviceAllocation&) = delete;
  int device;
  size_t bytes;
  void* ptr;
};

class DeviceBuffer : public Napi::ObjectWrap<DeviceBuffer> {
 public:
  static Napi::Function Define(Napi::Env env);
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

// Unwraps argument i as a live DeviceBuffer's allocation (typed errors otherwise).
std::shared_ptr<DeviceAllocation> ArgDevice(const Napi::CallbackInfo& info, size_t i, const char* what);

}  // namespace napi
}  // namespace rnnkit
