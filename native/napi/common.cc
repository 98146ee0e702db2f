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

Napi::Value TypedJsError(Napi::Env env, const Napi::Error& e) {
  Napi::Value v = e.Value();
  AddonData* data = env.GetInstanceData<AddonData>();
  if (v.IsObject() && data && !data->error_ctor.IsEmpty()) {
    bool ours = false;
    if (napi_instanceof(env, v, data->error_ctor.Value(), &ours) == napi_ok && ours) return v;
    // instanceof can itself throw (a Proxy in the chain): clear that one too.
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
  }
  Napi::Object err = MakeError(env, ErrorCode::arg, "reading an argument threw: " + e.Message());
  err.Set("cause", v.IsEmpty() ? env.Undefined() : v);
  return err;
}

void Throw(Napi::Env env, ErrorCode code, const std::string& message) {
  throw Napi::Error(env, MakeError(env, code, message));
}

namespace {

Napi::Value Arg(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() ? info[i] : info.Env().Undefined();
}

}  // namespace

Napi::Float32Array Float32Of(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsTypedArray()) Throw(env, ErrorCode::dtype, std::string(what) + " must be a Float32Array");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_float32_array)
    Throw(env, ErrorCode::dtype, std::string(what) + " must be a Float32Array (float32)");
  Napi::Float32Array fa = v.As<Napi::Float32Array>();
  if (fa.ElementLength() > 0 && fa.Data() == nullptr)
    Throw(env, ErrorCode::arg, std::string(what) + " has a detached buffer");
  return fa;
}

Napi::Float32Array Float32OptOf(Napi::Env env, Napi::Value v, const char* what) {
  if (v.IsNull() || v.IsUndefined()) return Napi::Float32Array();
  return Float32Of(env, v, what);
}

Napi::Int32Array Int32OptOf(Napi::Env env, Napi::Value v, const char* what) {
  if (v.IsNull() || v.IsUndefined()) return Napi::Int32Array();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    Throw(env, ErrorCode::dtype, std::string(what) + " must be an Int32Array");
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  if (a.ElementLength() > 0 && a.Data() == nullptr)
    Throw(env, ErrorCode::arg, std::string(what) + " has a detached buffer");
  return a;
}

int64_t IntOf(Napi::Env env, Napi::Value v, const char* what, int64_t lo, int64_t hi) {
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

double NumberOf(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsNumber()) Throw(env, ErrorCode::arg, std::string(what) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool BoolOf(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsBoolean()) Throw(env, ErrorCode::arg, std::string(what) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string StringOf(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsString()) Throw(env, ErrorCode::arg, std::string(what) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

Napi::Float32Array ArgFloat32(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return Float32Of(info.Env(), Arg(info, i), what);
}
Napi::Float32Array ArgFloat32Opt(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return Float32OptOf(info.Env(), Arg(info, i), what);
}
Napi::Int32Array ArgInt32Opt(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return Int32OptOf(info.Env(), Arg(info, i), what);
}
int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* what, int64_t lo, int64_t hi) {
  return IntOf(info.Env(), Arg(info, i), what, lo, hi);
}
double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return NumberOf(info.Env(), Arg(info, i), what);
}
bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return BoolOf(info.Env(), Arg(info, i), what);
}
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return StringOf(info.Env(), Arg(info, i), what);
}
GemmShape ArgGemmShape(const Napi::CallbackInfo& info, size_t first, int64_t lo, int64_t hi) {
  GemmShape g;
  g.M = ArgInt(info, first, "M", lo, hi);
  g.N = ArgInt(info, first + 1, "N", lo, hi);
  g.K = ArgInt(info, first + 2, "K", lo, hi);
  g.ta = ArgBool(info, first + 3, "transA");
  g.tb = ArgBool(info, first + 4, "transB");
  return g;
}

ArgObject::ArgObject(const Napi::CallbackInfo& info, size_t i, const char* what,
                     const std::vector<const char*>& allowed)
    : env_(info.Env()) {
  Napi::Value v = Arg(info, i);
  if (!v.IsObject() || v.IsArray() || v.IsFunction())
    Throw(env_, ErrorCode::arg, std::string(what) + " must be an object of named fields");
  obj_ = v.As<Napi::Object>();
  Napi::Array keys = obj_.GetPropertyNames();
  for (uint32_t k = 0; k < keys.Length(); ++k) {
    const std::string key = keys.Get(k).ToString().Utf8Value();
    bool known = false;
    for (const char* a : allowed) known = known || key == a;
    if (known) continue;
    std::string list;
    for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    Throw(env_, ErrorCode::arg, std::string(what) + " has an unknown field '" + key + "' (known: " + list + ")");
  }
}

Napi::Value ArgObject::Get(const char* name) const { return obj_.Get(name); }

int64_t Size(const Napi::CallbackInfo& info, size_t i, const char* what, int64_t lo) {
  return ArgInt(info, i, what, lo, int64_t(1) << 40);
}

int64_t Elements(Napi::Env env, int64_t a, int64_t b, int64_t c) {
  const double p = static_cast<double>(a) * static_cast<double>(b) * static_cast<double>(c);
  if (p > static_cast<double>(int64_t(1) << 46)) Throw(env, ErrorCode::shape, "sizes too large");
  return a * b * c;
}

void RequireIdsBelow(Napi::Env env, const std::vector<int32_t>& ids, int64_t V) {
  for (size_t k = 0; k < ids.size(); ++k) {
    if (ids[k] < 0 || ids[k] >= V) {
      std::ostringstream msg;
      msg << "ids[" << k << "] = " << ids[k] << " is outside [0, " << V << ")";
      Throw(env, ErrorCode::arg, msg.str());
    }
  }
}

std::shared_ptr<std::vector<int32_t>> CheckedIds(Napi::Env env, Napi::Int32Array ids, int64_t V) {
  if (ids.IsEmpty()) Throw(env, ErrorCode::dtype, "ids must be an Int32Array");
  auto copy = std::make_shared<std::vector<int32_t>>(ids.Data(), ids.Data() + ids.ElementLength());
  RequireIdsBelow(env, *copy, V);
  return copy;
}

void RequireCount(Napi::Env env, uint64_t have, int64_t count, const char* what) {
  if (count < 0 || have != static_cast<uint64_t>(count)) {
    std::ostringstream msg;
    msg << what << " holds " << have << " elements, needs " << count;
    Throw(env, ErrorCode::shape, msg.str());
  }
}

void RequireSpan(Napi::Env env, size_t have, int64_t end, const char* what) {
  if (end < 0 || static_cast<uint64_t>(have) < static_cast<uint64_t>(end)) {
    std::ostringstream msg;
    msg << what << " holds " << have << " elements, needs at least " << end;
    Throw(env, ErrorCode::shape, msg.str());
  }
}

}  // namespace napi
}  // namespace rnnkit
