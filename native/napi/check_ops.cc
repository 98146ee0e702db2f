// Finite-value check binding for the opt-in checkFinite mode (the scan: native/kernels/finite.h):
// reports the index of the first NaN or infinity of a Float32Array (-1 when all are finite).
#include "common.h"
#include "finite.h"

namespace rnnkit {
namespace napi {
namespace {

// firstNonFinite(Float32Array) -> index or -1
Napi::Value FirstNonFiniteBinding(const Napi::CallbackInfo& info) {
  Napi::Float32Array a = ArgFloat32(info, 0, "values");
  return Napi::Number::New(info.Env(), static_cast<double>(first_non_finite(a.Data(), static_cast<int64_t>(a.ElementLength()))));
}

}  // namespace

void RegisterCheckOps(Napi::Env env, Napi::Object exports) {
  exports.Set("firstNonFinite", Napi::Function::New<Guarded<FirstNonFiniteBinding>>(env, "firstNonFinite"));
}

RNNKIT_REGISTER_OPS(RegisterCheckOps);

}  // namespace napi
}  // namespace rnnkit
