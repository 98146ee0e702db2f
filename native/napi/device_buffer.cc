#include "device_buffer.h"

#include <sstream>

#include "async.h"
#include "common.h"
#include "cuda_api.h"

namespace rnnkit {
namespace napi {

DeviceAllocation::DeviceAllocation(int device_, size_t bytes_)
    : device(device_), bytes(bytes_), ptr(gpu::device_alloc(device_, bytes_)) {
  live.emplace();
}

DeviceAllocation::DeviceAllocation(std::shared_ptr<DeviceAllocation> parent_, size_t offset, size_t bytes_)
    : device(parent_->device), bytes(bytes_), ptr(static_cast<char*>(parent_->ptr) + offset), parent(std::move(parent_)) {}

DeviceAllocation::~DeviceAllocation() {
  if (!parent) gpu::device_free(device, ptr);
}

Napi::Function DeviceBuffer::Define(Napi::Env env) {
  return DefineClass(env, "DeviceBuffer",
                     {InstanceMethod<&DeviceBuffer::Dispose>("dispose"),
                      InstanceAccessor<&DeviceBuffer::GetBytes>("bytes"),
                      InstanceAccessor<&DeviceBuffer::GetDevice>("device"),
                      InstanceAccessor<&DeviceBuffer::GetDisposed>("disposed"),
                      InstanceAccessor<&DeviceBuffer::GetAddress>("address")});
}

// new DeviceBuffer(device, bytes); a slice: new DeviceBuffer(External<Alloc>) from deviceBufferSlice
DeviceBuffer::DeviceBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBuffer>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  if (info.Length() == 1 && info[0].IsExternal()) {
    alloc_ = *info[0].As<Napi::External<Alloc>>().Data();
    return;
  }
  int device = static_cast<int>(ArgInt(info, 0, "device", 0, 1023));
  size_t bytes = static_cast<size_t>(ArgInt(info, 1, "bytes", 0, int64_t(1) << 46));
  try {
    alloc_ = std::make_shared<DeviceAllocation>(device, bytes);
  } catch (const Error& e) {
    Throw(env, e.code(), e.what());
  }
  reported_ = bytes;
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(reported_));
}

DeviceBuffer::~DeviceBuffer() {
  alloc_.reset();
  if (reported_ && env_) napi_adjust_external_memory(env_, -static_cast<int64_t>(reported_), nullptr);
}

void DeviceBuffer::Release(Napi::Env env) {
  alloc_.reset();
  if (reported_) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(reported_));
    reported_ = 0;
  }
}

std::shared_ptr<DeviceAllocation> DeviceBuffer::allocation(Napi::Env env, const char* what) const {
  if (!alloc_) Throw(env, ErrorCode::disposed, std::string(what) + " has been disposed");
  return alloc_;
}

Napi::Value DeviceBuffer::Dispose(const Napi::CallbackInfo& info) {
  Release(info.Env());
  return info.Env().Undefined();
}

Napi::Value DeviceBuffer::GetBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), alloc_ ? static_cast<double>(alloc_->bytes) : 0.0);
}

Napi::Value DeviceBuffer::GetDevice(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), alloc_ ? alloc_->device : -1);
}

Napi::Value DeviceBuffer::GetDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !alloc_);
}

// The device pointer, for the optional NCCL collectives addon (native/dist), which runs in the
// same process and CUDA context; the JavaScript side keeps this object alive while it is used.
Napi::Value DeviceBuffer::GetAddress(const Napi::CallbackInfo& info) {
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(alloc_ ? reinterpret_cast<uintptr_t>(alloc_->ptr) : 0));
}

Alloc DeviceOf(Napi::Env env, Napi::Value v, const char* what) {
  AddonData* data = env.GetInstanceData<AddonData>();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(data->device_buffer_ctor.Value()))
    Throw(env, ErrorCode::arg, std::string(what) + " must be a DeviceBuffer");
  return DeviceBuffer::Unwrap(v.As<Napi::Object>())->allocation(env, what);
}

Alloc DeviceOptOf(Napi::Env env, Napi::Value v, const char* what) {
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  return DeviceOf(env, v, what);
}

Alloc ArgDevice(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return DeviceOf(info.Env(), i < info.Length() ? info[i] : info.Env().Undefined(), what);
}

Alloc ArgDeviceOpt(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return DeviceOptOf(info.Env(), i < info.Length() ? info[i] : info.Env().Undefined(), what);
}

std::vector<Alloc> ArgDeviceList(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsArray()) Throw(env, ErrorCode::arg, std::string(what) + " must be an array of DeviceBuffers");
  Napi::Array arr = info[i].As<Napi::Array>();
  AddonData* data = env.GetInstanceData<AddonData>();
  std::vector<Alloc> out;
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    const std::string name = std::string(what) + "[" + std::to_string(k) + "]";
    Napi::Value v = arr.Get(k);
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(data->device_buffer_ctor.Value()))
      Throw(env, ErrorCode::arg, name + " must be a DeviceBuffer");
    out.push_back(DeviceBuffer::Unwrap(v.As<Napi::Object>())->allocation(env, name.c_str()));
    if (out.back()->device != out.front()->device)
      Throw(env, ErrorCode::device, std::string(what) + " must all be on one device");
  }
  return out;
}

void RequireFloats(Napi::Env env, const Alloc& a, int64_t count, const char* what) {
  if (a && static_cast<int64_t>(a->bytes / sizeof(float)) < count) {
    Throw(env, ErrorCode::shape,
          std::string(what) + " holds " + std::to_string(a->bytes / sizeof(float)) + " floats, needs " +
              std::to_string(count));
  }
}

void RequireSameDevice(Napi::Env env, const std::initializer_list<Alloc>& all) {
  RequireSameDevice(env, std::vector<Alloc>(all));
}

void RequireSameDevice(Napi::Env env, const std::vector<Alloc>& all) {
  int device = -1;
  for (const Alloc& a : all) {
    if (!a) continue;
    if (device >= 0 && a->device != device)
      Throw(env, ErrorCode::device, "all buffers of a CUDA op must be on the same device");
    device = a->device;
  }
}

bool SharesMemory(const Alloc& a, const Alloc& b) {
  if (!a || !b) return false;
  if (a->ptr == b->ptr) return true;
  const char* pa = static_cast<const char*>(a->ptr);
  const char* pb = static_cast<const char*>(b->ptr);
  return pa < pb + b->bytes && pb < pa + a->bytes;
}

void RequireDistinct(Napi::Env env, const Alloc& out, const std::initializer_list<Alloc>& others, const char* what) {
  if (!out) return;
  for (const Alloc& a : others) {
    if (SharesMemory(a, out)) Throw(env, ErrorCode::arg, std::string(what) + " must not share memory with an input");
  }
}

Ids ArgIds(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Value v = i < info.Length() ? info[i] : info.Env().Undefined();
  Ids ids;
  if (v.IsTypedArray()) {
    Napi::Int32Array a = Int32OptOf(info.Env(), v, what);
    ids.host = std::make_shared<std::vector<int32_t>>(a.Data(), a.Data() + a.ElementLength());
    ids.count = static_cast<int64_t>(a.ElementLength());
  } else {
    ids.device = DeviceOf(info.Env(), v, what);
    ids.count = static_cast<int64_t>(ids.device->bytes / sizeof(int32_t));
  }
  return ids;
}

const int32_t* IdsOnDevice(int device, const Ids& ids, Alloc& keep) {
  if (ids.device) return static_cast<const int32_t*>(ids.device->ptr);
  const size_t bytes = ids.host->size() * sizeof(int32_t);
  keep = std::make_shared<DeviceAllocation>(device, bytes > 0 ? bytes : sizeof(int32_t));
  if (bytes > 0) gpu::copy_to_device(device, keep->ptr, ids.host->data(), bytes);
  return static_cast<const int32_t*>(keep->ptr);
}

namespace {

// copyToDevice(buffer, Float32Array, async) and copyToHost(buffer, Float32Array, async): the whole
// buffer from or to an array of the same size.
template <bool kToDevice>
Napi::Value HostCopy(const Napi::CallbackInfo& info) {
  const char* device_role = kToDevice ? "destination" : "source";
  const char* host_role = kToDevice ? "source" : "destination";
  auto buf = ArgDevice(info, 0, device_role);
  Napi::Float32Array host = ArgFloat32(info, 1, host_role);
  bool async = ArgBool(info, 2, "async");
  size_t bytes = host.ElementLength() * sizeof(float);
  if (bytes != buf->bytes) Throw(info.Env(), ErrorCode::shape, std::string(host_role) + " and device buffer sizes differ");
  float* p = host.Data();
  return Dispatch(info.Env(), async,
                  [buf, p, bytes] {
                    if (kToDevice) {
                      gpu::copy_to_device(buf->device, buf->ptr, p, bytes);
                    } else {
                      gpu::copy_to_host(buf->device, p, buf->ptr, bytes);
                    }
                  },
                  {host});
}

// copyDeviceToDevice(dst, src, async)
Napi::Value CopyDeviceToDevice(const Napi::CallbackInfo& info) {
  auto dst = ArgDevice(info, 0, "destination");
  auto src = ArgDevice(info, 1, "source");
  bool async = ArgBool(info, 2, "async");
  if (dst->bytes != src->bytes || dst->device != src->device)
    Throw(info.Env(), ErrorCode::shape, "device buffers differ in size or device");
  return Dispatch(info.Env(), async,
                  [dst, src] { gpu::copy_device_to_device(dst->device, dst->ptr, src->ptr, dst->bytes); }, {});
}

// saxpy(a, x, y, async): y = a·x + y on the device
Napi::Value Saxpy(const Napi::CallbackInfo& info) {
  double a = ArgNumber(info, 0, "a");
  auto x = ArgDevice(info, 1, "x");
  auto y = ArgDevice(info, 2, "y");
  bool async = ArgBool(info, 3, "async");
  if (x->bytes != y->bytes || x->device != y->device)
    Throw(info.Env(), ErrorCode::shape, "x and y differ in size or device");
  return Dispatch(info.Env(), async,
                  [x, y, a] {
                    gpu::saxpy(y->device, static_cast<int64_t>(y->bytes / sizeof(float)), static_cast<float>(a),
                               static_cast<const float*>(x->ptr), static_cast<float*>(y->ptr));
                  },
                  {});
}

// deviceBufferSlice(buffer, offsetBytes, bytes) -> a DeviceBuffer over that byte range of buffer's
// memory (a slice of a slice views the same owner). Both must be multiples of 4 (floats) and the
// range inside the buffer; ERR_RNNKIT_DISPOSED for a disposed buffer.
Napi::Value DeviceBufferSlice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc base = ArgDevice(info, 0, "buffer");
  const int64_t offset = ArgInt(info, 1, "offsetBytes", 0, int64_t(1) << 46);
  const int64_t bytes = ArgInt(info, 2, "bytes", 0, int64_t(1) << 46);
  if (offset % sizeof(float) != 0 || bytes % sizeof(float) != 0)
    Throw(env, ErrorCode::arg, "a device buffer slice must start and end on a float (multiples of 4 bytes)");
  if (static_cast<uint64_t>(offset) + static_cast<uint64_t>(bytes) > base->bytes) {
    std::ostringstream msg;
    msg << "a slice of " << bytes << " bytes at " << offset << " does not fit in a device buffer of " << base->bytes << " bytes";
    Throw(env, ErrorCode::shape, msg.str());
  }
  Alloc owner = base->parent ? base->parent : base;
  const size_t at = static_cast<size_t>(static_cast<const char*>(base->ptr) - static_cast<const char*>(owner->ptr)) +
                    static_cast<size_t>(offset);
  Alloc view = std::make_shared<DeviceAllocation>(owner, at, static_cast<size_t>(bytes));
  AddonData* data = env.GetInstanceData<AddonData>();
  return data->device_buffer_ctor.Value().New({Napi::External<Alloc>::New(env, &view)});
}

// deviceMemory(device) -> { used, cached }
Napi::Value DeviceMemory(const Napi::CallbackInfo& info) {
  int device = static_cast<int>(ArgInt(info, 0, "device", 0, 1023));
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("used", Napi::Number::New(info.Env(), static_cast<double>(gpu::used_bytes(device))));
  o.Set("cached", Napi::Number::New(info.Env(), static_cast<double>(gpu::cached_bytes(device))));
  return o;
}

Napi::Value ReleaseCache(const Napi::CallbackInfo& info) {
  int device = static_cast<int>(ArgInt(info, 0, "device", 0, 1023));
  gpu::release_cache(device);
  return info.Env().Undefined();
}

}  // namespace

void RegisterDeviceOps(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DeviceBuffer::Define(env);
  env.GetInstanceData<AddonData>()->device_buffer_ctor = Napi::Persistent(ctor);
  exports.Set("DeviceBuffer", ctor);
  exports.Set("copyToDevice", Napi::Function::New<Guarded<HostCopy<true>>>(env, "copyToDevice"));
  exports.Set("copyToHost", Napi::Function::New<Guarded<HostCopy<false>>>(env, "copyToHost"));
  exports.Set("copyDeviceToDevice", Napi::Function::New<Guarded<CopyDeviceToDevice>>(env, "copyDeviceToDevice"));
  exports.Set("saxpy", Napi::Function::New<Guarded<Saxpy>>(env, "saxpy"));
  exports.Set("deviceBufferSlice", Napi::Function::New<Guarded<DeviceBufferSlice>>(env, "deviceBufferSlice"));
  exports.Set("deviceMemory", Napi::Function::New<Guarded<DeviceMemory>>(env, "deviceMemory"));
  exports.Set("releaseCache", Napi::Function::New<Guarded<ReleaseCache>>(env, "releaseCache"));
}

RNNKIT_REGISTER_OPS(RegisterDeviceOps);

}  // namespace napi
}  // namespace rnnkit
