#include "common.h"

#include <cmath>
#include <sstream>

namespace rnnkit {
namespace napi {

namespace {
std::vector<RegisterFn>& registry() {
  static std::vector<RegisterFn> fns;
  return fns;
}
}  // namespace

bool AddRegistration(RegisterFn fn) {
  registry().push_back(fn);
  return true;
}

void RegisterAll(Napi::Env env, Napi::Object exports) {
  for (RegisterFn fn : registry()) fn(env, exports);
}

Napi::Object MakeError(Napi::Env env, const char* code, const std::string& message) {
  AddonData* data = env.GetInstanceData<AddonData>();
  if (data && !data->error_ctor.IsEmpty()) {
    return data->error_ctor.New({Napi::String::New(env, code), Napi::String::New(env, message)});
  }
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err.Value();
}

Napi::Object MakeError(Napi::Env env, ErrorCode code, const std::string& message) {
  return MakeError(env, error_code_name(code), message);
}

void Throw(Napi::Env env, ErrorCode code, const std::string& message) {
  throw Napi::Error(env, MakeError(env, code, message));
}

namespace {

Napi::Value Arg(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() ? info[i] : info.Env().Undefined();
}

Napi::Float32Array AsFloat32(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsTypedArray()) Throw(env, ErrorCode::dtype, std::string(what) + " must be a Float32Array");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_float32_array)
    Throw(env, ErrorCode::dtype, std::string(what) + " must be a Float32Array (float32)");
  Napi::Float32Array fa = v.As<Napi::Float32Array>();
  if (fa.ElementLength() > 0 && fa.Data() == nullptr)
    Throw(env, ErrorCode::arg, std::string(what) + " has a detached buffer");
  return fa;
}

}  // namespace

Napi::Float32Array ArgFloat32(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return AsFloat32(info.Env(), Arg(info, i), what);
}

Napi::Float32Array ArgFloat32Opt(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Value v = Arg(info, i);
  if (v.IsNull() || v.IsUndefined()) return Napi::Float32Array();
  return AsFloat32(info.Env(), v, what);
}

Napi::Int32Array ArgInt32Opt(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Env env = info.Env();
  Napi::Value v = Arg(info, i);
  if (v.IsNull() || v.IsUndefined()) return Napi::Int32Array();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    Throw(env, ErrorCode::dtype, std::string(what) + " must be an Int32Array");
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  if (a.ElementLength() > 0 && a.Data() == nullptr)
    Throw(env, ErrorCode::arg, std::string(what) + " has a detached buffer");
  return a;
}

int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* what, int64_t lo, int64_t hi) {
  Napi::Env env = info.Env();
  Napi::Value v = Arg(info, i);
  if (!v.IsNumber()) Throw(env, ErrorCode::arg, std::string(what) + " must be an integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(lo) ||
      d > static_cast<double>(hi)) {
    std::ostringstream msg;
    msg << what << " must be an integer in [" << lo << ", " << hi << "], got " << d;
    Throw(env, ErrorCode::arg, msg.str());
  }
  return static_cast<int64_t>(d);
}

double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Value v = Arg(info, i);
  if (!v.IsNumber()) Throw(info.Env(), ErrorCode::arg, std::string(what) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Value v = Arg(info, i);
  if (!v.IsBoolean()) Throw(info.Env(), ErrorCode::arg, std::string(what) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Value v = Arg(info, i);
  if (!v.IsString()) Throw(info.Env(), ErrorCode::arg, std::string(what) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

int64_t Size(const Napi::CallbackInfo& info, size_t i, const char* what, int64_t lo) {
  return ArgInt(info, i, what, lo, int64_t(1) << 40);
}

int64_t Elements(Napi::Env env, int64_t a, int64_t b, int64_t c) {
  const double p = static_cast<double>(a) * static_cast<double>(b) * static_cast<double>(c);
  if (p > static_cast<double>(int64_t(1) << 46)) Throw(env, ErrorCode::shape, "sizes too large");
  return a * b * c;
}

std::shared_ptr<std::vector<int32_t>> CheckedIds(Napi::Env env, Napi::Int32Array ids, int64_t V) {
  if (ids.IsEmpty()) Throw(env, ErrorCode::dtype, "ids must be an Int32Array");
  const int32_t* p = ids.Data();
  const size_t n = ids.ElementLength();
  for (size_t k = 0; k < n; ++k) {
    if (p[k] < 0 || p[k] >= V) {
      std::ostringstream msg;
      msg << "ids[" << k << "] = " << p[k] << " is outside [0, " << V << ")";
      Throw(env, ErrorCode::arg, msg.str());
    }
  }
  return std::make_shared<std::vector<int32_t>>(p, p + n);
}

void RequireLength(Napi::Env env, size_t have, int64_t count, const char* what) {
  if (count < 0 || static_cast<uint64_t>(have) < static_cast<uint64_t>(count)) {
    std::ostringstream msg;
    msg << what << " holds " << have << " elements, needs " << count;
    Throw(env, ErrorCode::shape, msg.str());
  }
}

}  // namespace napi
}  // namespace rnnkit
