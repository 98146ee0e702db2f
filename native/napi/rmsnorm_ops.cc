// RMSNorm bindings over CPU buffers (kernel contract in native/kernels/rmsnorm.h):
//   rmsnormForward(x, gamma, beta|null, y, rrms, rows, cols, eps, async)
//   rmsnormBackward(dy, x, gamma, rrms, dx|null, dgamma|null, dbeta|null, rows, cols,
//                   accumulate, async)
// Every argument is checked here, whatever lib/ already did: each array must hold exactly the
// elements its role needs, eps must be finite and >= 0, and no output may overlap another array
// (the kernels read inputs after writing outputs of the same row).
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "async.h"
#include "common.h"
#include "rmsnorm.h"
#include "rmsnorm_fields.h"

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

// The buffers of a call, read in argument order by its table (rmsnorm_fields.h).
template <size_t N>
std::array<Span, N> ReadSpans(const Napi::CallbackInfo& info, const NormField (&fields)[N]) {
  std::array<Span, N> spans;
  for (size_t k = 0; k < N; ++k) {
    const NormField& f = fields[k];
    spans[k] = Span{f.optional ? ArgFloat32Opt(info, k, f.name) : ArgFloat32(info, k, f.name), f.name, f.output};
  }
  return spans;
}

// Every present array holds exactly the floats its field needs and no output overlaps another
// array; returns the arrays to pin for the call.
template <size_t N>
std::vector<Napi::Value> CheckSpans(Napi::Env env, const std::array<Span, N>& spans, const NormField (&fields)[N],
                                    int64_t rows, int64_t cols) {
  RequireSize(env, rows, cols);
  std::vector<Napi::Value> pins;
  for (size_t k = 0; k < N; ++k) {
    RequireExact(env, spans[k], NormFloats(fields[k].extent, rows, cols));
    if (!spans[k].array.IsEmpty()) pins.push_back(spans[k].array);
  }
  RequireNoOverlap(env, std::vector<Span>(spans.begin(), spans.end()));
  return pins;
}

float* DataOf(Span s) { return s.array.IsEmpty() ? nullptr : s.array.Data(); }

Napi::Value RmsnormForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto s = ReadSpans(info, kNormForward);
  const int64_t rows = ArgInt(info, 5, "rows", 0, kMaxDim);
  const int64_t cols = ArgInt(info, 6, "cols", 1, kMaxDim);
  const float eps = ArgEps(info, 7);
  const bool async = ArgBool(info, 8, "async");
  std::vector<Napi::Value> pins = CheckSpans(env, s, kNormForward, rows, cols);
  float *px = DataOf(s[0]), *pg = DataOf(s[1]), *pb = DataOf(s[2]), *py = DataOf(s[3]), *pr = DataOf(s[4]);
  return Dispatch(env, async, [=] { rmsnorm_forward(py, pr, px, pg, pb, rows, cols, eps); }, pins);
}

Napi::Value RmsnormBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto s = ReadSpans(info, kNormBackward);
  const int64_t rows = ArgInt(info, 7, "rows", 0, kMaxDim);
  const int64_t cols = ArgInt(info, 8, "cols", 1, kMaxDim);
  const bool accumulate = ArgBool(info, 9, "accumulate");
  const bool async = ArgBool(info, 10, "async");
  std::vector<Napi::Value> pins = CheckSpans(env, s, kNormBackward, rows, cols);
  float *pdy = DataOf(s[0]), *px = DataOf(s[1]), *pg = DataOf(s[2]), *pr = DataOf(s[3]);
  float *pdx = DataOf(s[4]), *pdg = DataOf(s[5]), *pdb = DataOf(s[6]);
  return Dispatch(env, async, [=] { rmsnorm_backward(pdx, pdg, pdb, pdy, px, pg, pr, rows, cols, accumulate); }, pins);
}

}  // namespace

void RegisterRmsnormOps(Napi::Env env, Napi::Object exports) {
  exports.Set("rmsnormForward", Napi::Function::New<Guarded<RmsnormForward>>(env, "rmsnormForward"));
  exports.Set("rmsnormBackward", Napi::Function::New<Guarded<RmsnormBackward>>(env, "rmsnormBackward"));
}

RNNKIT_REGISTER_OPS(RegisterRmsnormOps);

}  // namespace napi
}  // namespace rnnkit
