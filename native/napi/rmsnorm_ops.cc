// RMSNorm bindings over CPU buffers (kernel contract in native/kernels/rmsnorm.h):
//   rmsnormForward(x, gamma, beta|null, y, rrms, rows, cols, eps, async)
//   rmsnormBackward(dy, x, gamma, rrms, dx|null, dgamma|null, dbeta|null, rows, cols,
//                   accumulate, async)
// Every argument is checked here, whatever lib/ already did: each array must hold exactly the
// elements its role needs, eps must be finite and >= 0, and no output may overlap another array
// (the kernels read inputs after writing outputs of the same row).
#include <cmath>
#include <string>
#include <vector>

#include "async.h"
#include "common.h"
#include "rmsnorm.h"

namespace rnnkit {
namespace napi {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 40;

struct Span {
  Napi::Float32Array array;  // empty when the optional argument was null
  const char* what;
  bool output;
};

// The binding's one length rule (common.h) for a present array.
void RequireExact(Napi::Env env, const Span& s, int64_t count) {
  if (!s.array.IsEmpty()) RequireLength(env, s.array.ElementLength(), count, s.what);
}

// Outputs may overlap nothing else; inputs may share memory with each other.
void RequireNoOverlap(Napi::Env env, const std::vector<Span>& spans) {
  for (size_t i = 0; i < spans.size(); ++i) {
    for (size_t j = i + 1; j < spans.size(); ++j) {
      const Span& a = spans[i];
      const Span& b = spans[j];
      if (a.array.IsEmpty() || b.array.IsEmpty() || !(a.output || b.output)) continue;
      const char* a0 = reinterpret_cast<const char*>(a.array.Data());
      const char* b0 = reinterpret_cast<const char*>(b.array.Data());
      const char* a1 = a0 + a.array.ElementLength() * sizeof(float);
      const char* b1 = b0 + b.array.ElementLength() * sizeof(float);
      if (a0 < b1 && b0 < a1) {
        Throw(env, ErrorCode::arg, std::string(a.what) + " and " + b.what + " share memory");
      }
    }
  }
}

void RequireSize(Napi::Env env, int64_t rows, int64_t cols) {
  if (cols > 0 && rows > kMaxDim / cols) Throw(env, ErrorCode::shape, "rows * cols is too large");
}

float ArgEps(const Napi::CallbackInfo& info, size_t i) {
  double eps = ArgNumber(info, i, "eps");
  if (!std::isfinite(eps) || eps < 0 || static_cast<float>(eps) > 3.4e38f) {
    Throw(info.Env(), ErrorCode::arg, "eps must be a finite number >= 0");
  }
  return static_cast<float>(eps);
}

Napi::Value RmsnormForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Span x{ArgFloat32(info, 0, "x"), "x", false};
  Span gamma{ArgFloat32(info, 1, "gamma"), "gamma", false};
  Span beta{ArgFloat32Opt(info, 2, "beta"), "beta", false};
  Span y{ArgFloat32(info, 3, "y"), "y", true};
  Span rrms{ArgFloat32(info, 4, "rrms"), "rrms", true};
  const int64_t rows = ArgInt(info, 5, "rows", 0, kMaxDim);
  const int64_t cols = ArgInt(info, 6, "cols", 1, kMaxDim);
  const float eps = ArgEps(info, 7);
  const bool async = ArgBool(info, 8, "async");
  RequireSize(env, rows, cols);
  RequireExact(env, x, rows * cols);
  RequireExact(env, y, rows * cols);
  RequireExact(env, gamma, cols);
  RequireExact(env, beta, cols);
  RequireExact(env, rrms, rows);
  RequireNoOverlap(env, {x, gamma, beta, y, rrms});

  float* py = y.array.Data();
  float* pr = rrms.array.Data();
  const float* px = x.array.Data();
  const float* pg = gamma.array.Data();
  const float* pb = beta.array.IsEmpty() ? nullptr : beta.array.Data();
  std::vector<Napi::Value> pins{x.array, gamma.array, y.array, rrms.array};
  if (pb) pins.push_back(beta.array);
  return Dispatch(env, async, [=] { rmsnorm_forward(py, pr, px, pg, pb, rows, cols, eps); }, pins);
}

Napi::Value RmsnormBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Span dy{ArgFloat32(info, 0, "dy"), "dy", false};
  Span x{ArgFloat32(info, 1, "x"), "x", false};
  Span gamma{ArgFloat32(info, 2, "gamma"), "gamma", false};
  Span rrms{ArgFloat32(info, 3, "rrms"), "rrms", false};
  Span dx{ArgFloat32Opt(info, 4, "dx"), "dx", true};
  Span dgamma{ArgFloat32Opt(info, 5, "dgamma"), "dgamma", true};
  Span dbeta{ArgFloat32Opt(info, 6, "dbeta"), "dbeta", true};
  const int64_t rows = ArgInt(info, 7, "rows", 0, kMaxDim);
  const int64_t cols = ArgInt(info, 8, "cols", 1, kMaxDim);
  const bool accumulate = ArgBool(info, 9, "accumulate");
  const bool async = ArgBool(info, 10, "async");
  RequireSize(env, rows, cols);
  RequireExact(env, dy, rows * cols);
  RequireExact(env, x, rows * cols);
  RequireExact(env, dx, rows * cols);
  RequireExact(env, gamma, cols);
  RequireExact(env, dgamma, cols);
  RequireExact(env, dbeta, cols);
  RequireExact(env, rrms, rows);
  RequireNoOverlap(env, {dy, x, gamma, rrms, dx, dgamma, dbeta});

  float* pdx = dx.array.IsEmpty() ? nullptr : dx.array.Data();
  float* pdg = dgamma.array.IsEmpty() ? nullptr : dgamma.array.Data();
  float* pdb = dbeta.array.IsEmpty() ? nullptr : dbeta.array.Data();
  const float* pdy = dy.array.Data();
  const float* px = x.array.Data();
  const float* pg = gamma.array.Data();
  const float* pr = rrms.array.Data();
  std::vector<Napi::Value> pins{dy.array, x.array, gamma.array, rrms.array};
  for (const Span* s : {&dx, &dgamma, &dbeta})
    if (!s->array.IsEmpty()) pins.push_back(s->array);
  return Dispatch(env, async,
                  [=] { rmsnorm_backward(pdx, pdg, pdb, pdy, px, pg, pr, rows, cols, accumulate); },
                  pins);
}

}  // namespace

void RegisterRmsnormOps(Napi::Env env, Napi::Object exports) {
  exports.Set("rmsnormForward", Napi::Function::New<Guarded<RmsnormForward>>(env, "rmsnormForward"));
  exports.Set("rmsnormBackward", Napi::Function::New<Guarded<RmsnormBackward>>(env, "rmsnormBackward"));
}

RNNKIT_REGISTER_OPS(RegisterRmsnormOps);

}  // namespace napi
}  // namespace rnnkit
