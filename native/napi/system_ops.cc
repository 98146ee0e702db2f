// Process-wide settings and introspection: error class registration, backend info, threads, ISA.
#include "common.h"
#include "cpu_features.h"
#include "cuda_api.h"
#include "host_cache.h"
#include "live_objects.h"
#include "parallel.h"

namespace rnnkit {
namespace napi {
namespace {

// init(RnnkitError): errors raised natively are built with lib's class from then on.
Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) Throw(env, ErrorCode::arg, "init needs the RnnkitError class");
  env.GetInstanceData<AddonData>()->error_ctor = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

Napi::Value BackendInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  gpu::ProbeResult p = gpu::probe();
  o.Set("flavor", Napi::String::New(env, p.built ? "cuda" : "cpu"));
  o.Set("isa", Napi::String::New(env, isa_name(active_isa())));
  o.Set("detectedIsa", Napi::String::New(env, isa_name(detected_isa())));
  const std::vector<Isa>& isas = available_isas();
  Napi::Array available = Napi::Array::New(env, isas.size());
  for (size_t i = 0; i < isas.size(); ++i) available.Set(i, Napi::String::New(env, isa_name(isas[i])));
  o.Set("availableIsas", available);
  o.Set("numThreads", Napi::Number::New(env, num_threads()));
  o.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("built", Napi::Boolean::New(env, p.built));
  cuda.Set("available", Napi::Boolean::New(env, p.available));
  cuda.Set("reason", p.available ? env.Null() : Napi::String::New(env, p.reason));
  cuda.Set("driverVersion", Napi::Number::New(env, p.driver_version));
  cuda.Set("runtimeVersion", Napi::Number::New(env, p.runtime_version));
  Napi::Array archs = Napi::Array::New(env, p.architectures.size());
  for (size_t i = 0; i < p.architectures.size(); ++i) archs.Set(i, Napi::String::New(env, p.architectures[i]));
  cuda.Set("architectures", archs);
  Napi::Array devs = Napi::Array::New(env, p.devices.size());
  for (size_t i = 0; i < p.devices.size(); ++i) {
    const gpu::DeviceInfo& d = p.devices[i];
    Napi::Object dv = Napi::Object::New(env);
    dv.Set("index", Napi::Number::New(env, d.index));
    dv.Set("name", Napi::String::New(env, d.name));
    dv.Set("computeCapability", Napi::String::New(env, std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor)));
    dv.Set("totalMemory", Napi::Number::New(env, static_cast<double>(d.total_bytes)));
    dv.Set("freeMemory", Napi::Number::New(env, static_cast<double>(d.free_bytes)));
    dv.Set("multiprocessors", Napi::Number::New(env, d.multiprocessors));
    devs.Set(i, dv);
  }
  cuda.Set("devices", devs);
  const std::string sticky = gpu::sticky_error();
  cuda.Set("stickyError", sticky.empty() ? env.Null() : Napi::String::New(env, sticky));
  const gpu::CopyCounts c = gpu::copy_counts();
  Napi::Object copies = Napi::Object::New(env);
  copies.Set("toDevice", Napi::Number::New(env, static_cast<double>(c.to_device)));
  copies.Set("toDeviceBytes", Napi::Number::New(env, static_cast<double>(c.to_device_bytes)));
  copies.Set("toHost", Napi::Number::New(env, static_cast<double>(c.to_host)));
  copies.Set("toHostBytes", Napi::Number::New(env, static_cast<double>(c.to_host_bytes)));
  cuda.Set("copies", copies);
  o.Set("cuda", cuda);
  o.Set("liveObjects", LiveObjects(env));
  const HostCacheStats hc = host_cache_stats();
  Napi::Object cache = Napi::Object::New(env);
  cache.Set("cachedBytes", Napi::Number::New(env, static_cast<double>(hc.cached_bytes)));
  cache.Set("limitBytes", Napi::Number::New(env, static_cast<double>(hc.limit_bytes)));
  cache.Set("inUseBytes", Napi::Number::New(env, static_cast<double>(hc.in_use_bytes)));
  cache.Set("hits", Napi::Number::New(env, static_cast<double>(hc.hits)));
  cache.Set("misses", Napi::Number::New(env, static_cast<double>(hc.misses)));
  o.Set("hostCache", cache);
  return o;
}

// releaseHostCache() -> the bytes of idle working-memory blocks freed (host_cache.h).
Napi::Value ReleaseHostCache(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(host_cache_release()));
}

// setHostCacheLimit(bytes): the idle bytes the cache may keep (RNNKIT_HOST_CACHE_MB at start).
Napi::Value SetHostCacheLimit(const Napi::CallbackInfo& info) {
  host_cache_set_limit(static_cast<size_t>(ArgInt(info, 0, "bytes", 0, int64_t(1) << 50)));
  return info.Env().Undefined();
}

// setHostCachePoison(on) (tests): working memory handed out is NaN-filled first.
Napi::Value SetHostCachePoison(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBoolean()) Throw(env, ErrorCode::arg, "setHostCachePoison(on): on must be a boolean");
  host_cache_set_poison(info[0].As<Napi::Boolean>().Value());
  return env.Undefined();
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  set_num_threads(static_cast<int>(ArgInt(info, 0, "n", 0, 1024)));
  return Napi::Number::New(info.Env(), num_threads());
}

Napi::Value NumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), num_threads()); }

// setIsa(name) -> the path now active; ERR_RNNKIT_ARG when this CPU cannot run it.
Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "isa");
  Isa isa;
  if (!parse_isa(name.c_str(), &isa)) Throw(env, ErrorCode::arg, "unknown ISA '" + name + "' (" + isa_names() + ")");
  if (!set_active_isa(isa))
    Throw(env, ErrorCode::arg, "this CPU cannot run the " + name + " path (best: " + isa_name(detected_isa()) + ")");
  return Napi::String::New(env, isa_name(active_isa()));
}

}  // namespace

void RegisterSystemOps(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New<Guarded<Init>>(env, "init"));
  exports.Set("backendInfo", Napi::Function::New<Guarded<BackendInfo>>(env, "backendInfo"));
  exports.Set("setNumThreads", Napi::Function::New<Guarded<SetNumThreads>>(env, "setNumThreads"));
  exports.Set("numThreads", Napi::Function::New<Guarded<NumThreads>>(env, "numThreads"));
  exports.Set("releaseHostCache", Napi::Function::New<Guarded<ReleaseHostCache>>(env, "releaseHostCache"));
  exports.Set("setHostCacheLimit", Napi::Function::New<Guarded<SetHostCacheLimit>>(env, "setHostCacheLimit"));
  exports.Set("setHostCachePoison", Napi::Function::New<Guarded<SetHostCachePoison>>(env, "setHostCachePoison"));
  exports.Set("setIsa", Napi::Function::New<Guarded<SetIsa>>(env, "setIsa"));
}

RNNKIT_REGISTER_OPS(RegisterSystemOps);

}  // namespace napi
}  // namespace rnnkit
