// Helpers shared by every binding file: typed errors, argument unpacking that never lets a
// JavaScript value crash the process, and the wrapper that maps C++ exceptions to RnnkitError.
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"

namespace rnnkit {
namespace napi {

struct AddonData {
  Napi::FunctionReference error_ctor;          // lib's RnnkitError(code, message)
  Napi::FunctionReference device_buffer_ctor;  // DeviceBuffer class
};

Napi::Object MakeError(Napi::Env env, ErrorCode code, const std::string& message);
Napi::Object MakeError(Napi::Env env, const char* code, const std::string& message);
[[noreturn]] void Throw(Napi::Env env, ErrorCode code, const std::string& message);

// Each binding file registers its functions with RNNKIT_REGISTER_OPS(fn) at file scope; the
// module entry calls them all, so adding an op family touches no shared file.
using RegisterFn = void (*)(Napi::Env env, Napi::Object exports);
bool AddRegistration(RegisterFn fn);
void RegisterAll(Napi::Env env, Napi::Object exports);
#define RNNKIT_REGISTER_OPS(fn) \
  static const bool rnnkit_registered_##fn = ::rnnkit::napi::AddRegistration(fn)

// Argument unpacking. `what` names the argument in the error message. The *Of forms read one
// value (a field of an argument object, see ArgObject); the Arg forms read argument i.
Napi::Float32Array Float32Of(Napi::Env env, Napi::Value v, const char* what);
Napi::Float32Array Float32OptOf(Napi::Env env, Napi::Value v, const char* what);
Napi::Int32Array Int32OptOf(Napi::Env env, Napi::Value v, const char* what);
int64_t IntOf(Napi::Env env, Napi::Value v, const char* what, int64_t lo, int64_t hi);
double NumberOf(Napi::Env env, Napi::Value v, const char* what);
bool BoolOf(Napi::Env env, Napi::Value v, const char* what);
std::string StringOf(Napi::Env env, Napi::Value v, const char* what);

// Argument i as one object of named fields: unknown keys are refused (ERR_RNNKIT_ARG naming the
// key and the allowed ones); an absent field reads as undefined.
class ArgObject {
 public:
  ArgObject(const Napi::CallbackInfo& info, size_t i, const char* what, const std::vector<const char*>& allowed);
  Napi::Env Env() const { return env_; }
  Napi::Value Get(const char* name) const;

 private:
  Napi::Env env_;
  Napi::Object obj_;
};

Napi::Float32Array ArgFloat32(const Napi::CallbackInfo& info, size_t i, const char* what);
// Returns an empty array when the argument is null or undefined.
Napi::Float32Array ArgFloat32Opt(const Napi::CallbackInfo& info, size_t i, const char* what);
Napi::Int32Array ArgInt32Opt(const Napi::CallbackInfo& info, size_t i, const char* what);
// Integer in [lo, hi]; rejects non-numbers, NaN, fractions and out-of-range values.
int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* what, int64_t lo, int64_t hi);
double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* what);
bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* what);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what);
// A GEMM's shape as every matmul binding takes it: M, N, K (integers in [lo, hi]), then transA and
// transB, from argument `first` on; the element counts of op(A), op(B) and C, and the leading dimensions.
struct GemmShape {
  int64_t M, N, K;
  bool ta, tb;
  int64_t a_size() const { return M * K; }
  int64_t b_size() const { return K * N; }
  int64_t c_size() const { return M * N; }
  int64_t lda() const { return ta ? M : K; }
  int64_t ldb() const { return tb ? K : N; }
};
GemmShape ArgGemmShape(const Napi::CallbackInfo& info, size_t first, int64_t lo, int64_t hi);

// What the CPU and CUDA matmul bindings share: (a, b, out, M, N, K, transA, transB, accumulate, ...),
// the buffers read by the flavor's `read(info, i, what)` and their sizes checked by its
// `require(buffer, floats, what)`; dimensions up to 2^31.
template <class Buf>
struct MatmulCall {
  Buf a, b, c;
  GemmShape g;
  bool accumulate;
};

template <class Read, class Require>
auto ReadMatmulCall(const Napi::CallbackInfo& info, Read read, Require require)
    -> MatmulCall<decltype(read(info, size_t(0), ""))> {
  MatmulCall<decltype(read(info, size_t(0), ""))> m{read(info, 0, "a"), read(info, 1, "b"), read(info, 2, "out"),
                                                     ArgGemmShape(info, 3, 0, int64_t(1) << 31),
                                                     ArgBool(info, 8, "accumulate")};
  require(m.a, m.g.a_size(), "a");
  require(m.b, m.g.b_size(), "b");
  require(m.c, m.g.c_size(), "out");
  return m;
}
// A size argument in [lo, 2^40]; a·b·c as an element count, ERR_RNNKIT_SHAPE when it could not
// be addressed (over 2^46).
int64_t Size(const Napi::CallbackInfo& info, size_t i, const char* what, int64_t lo = 0);
int64_t Elements(Napi::Env env, int64_t a, int64_t b, int64_t c = 1);
// Embedding ids as a private copy (an async kernel must see the values checked here): an
// Int32Array, each id in [0, V), else a typed error naming the first position out of range.
std::shared_ptr<std::vector<int32_t>> CheckedIds(Napi::Env env, Napi::Int32Array ids, int64_t V);
// The same check on ids already copied.
void RequireIdsBelow(Napi::Env env, const std::vector<int32_t>& ids, int64_t V);
// The one length rule for a whole operand: it holds exactly `count` elements (ERR_RNNKIT_SHAPE
// naming `what` otherwise). RequireLength is the same for a typed array; RequireSpan is for a
// strided region inside a larger array (at least `end` elements).
void RequireCount(Napi::Env env, uint64_t have, int64_t count, const char* what);
inline void RequireLength(Napi::Env env, size_t have, int64_t count, const char* what) {
  RequireCount(env, have, count, what);
}
void RequireSpan(Napi::Env env, size_t have, int64_t end, const char* what);

// A JavaScript exception raised while a binding read its arguments: an RnnkitError as it is; any
// other (a caller's getter or Proxy trap that threw) becomes ERR_RNNKIT_ARG with it as `cause`.
Napi::Value TypedJsError(Napi::Env env, const Napi::Error& e);

// Wraps a binding function: rnnkit::Error, std::bad_alloc and other C++ exceptions become
// RnnkitError with a code instead of escaping into Node, and so does a caller's exception.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    return F(info);
  } catch (const Napi::Error& e) {
    throw Napi::Error(env, TypedJsError(env, e));
  } catch (const Error& e) {
    throw Napi::Error(env, MakeError(env, e.code(), e.what()));
  } catch (const std::bad_alloc&) {
    throw Napi::Error(env, MakeError(env, ErrorCode::oom, "out of host memory"));
  } catch (const std::exception& e) {
    throw Napi::Error(env, MakeError(env, ErrorCode::internal, e.what()));
  }
}

}  // namespace napi
}  // namespace rnnkit
