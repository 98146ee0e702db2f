// Machine-limit probes for the benchmarks (bench/): FMA peak and copy bandwidth, measured in the
// same run as the kernels they are compared with.
#include "async.h"
#include "common.h"
#include "copy_probe.h"
#include "fma_peak.h"

namespace rnnkit {
namespace napi {
namespace {

// fmaPeak(threads, isa?) -> GFLOP/s
Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
  int threads = static_cast<int>(ArgInt(info, 0, "threads", 1, 1024));
  Isa isa = active_isa();
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    std::string name = ArgString(info, 1, "isa");
    if (!parse_isa(name.c_str(), &isa) || !isa_available(isa))
      Throw(info.Env(), ErrorCode::arg, "this CPU cannot run the " + name + " path");
  }
  return Napi::Number::New(info.Env(), fma_peak_gflops(isa, threads));
}

// copyBandwidth(bytes, threads, repeats) -> GB/s (read + write)
Napi::Value CopyBandwidth(const Napi::CallbackInfo& info) {
  size_t bytes = static_cast<size_t>(ArgInt(info, 0, "bytes", 1, int64_t(1) << 34));
  int threads = static_cast<int>(ArgInt(info, 1, "threads", 1, 1024));
  int repeats = static_cast<int>(ArgInt(info, 2, "repeats", 1, 10000));
  return Napi::Number::New(info.Env(), copy_bandwidth_gbs(bytes, threads, repeats));
}

}  // namespace

void RegisterBenchOps(Napi::Env env, Napi::Object exports) {
  exports.Set("fmaPeak", Napi::Function::New<Guarded<FmaPeak>>(env, "fmaPeak"));
  exports.Set("copyBandwidth", Napi::Function::New<Guarded<CopyBandwidth>>(env, "copyBandwidth"));
}

RNNKIT_REGISTER_OPS(RegisterBenchOps);

}  // namespace napi
}  // namespace rnnkit
