// matmul on CPU tensors: C[M,N] = op(A)·op(B) (+ C when accumulating).
#include "async.h"
#include "common.h"
#include "sgemm.h"

namespace rnnkit {
namespace napi {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 31;

// matmul(a, b, c, M, N, K, transA, transB, accumulate, async)
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array a = ArgFloat32(info, 0, "a");
  Napi::Float32Array b = ArgFloat32(info, 1, "b");
  Napi::Float32Array c = ArgFloat32(info, 2, "out");
  int64_t M = ArgInt(info, 3, "M", 0, kMaxDim);
  int64_t N = ArgInt(info, 4, "N", 0, kMaxDim);
  int64_t K = ArgInt(info, 5, "K", 0, kMaxDim);
  bool ta = ArgBool(info, 6, "transA");
  bool tb = ArgBool(info, 7, "transB");
  bool acc = ArgBool(info, 8, "accumulate");
  bool async = ArgBool(info, 9, "async");
  RequireLength(env, a.ElementLength(), M * K, "a");
  RequireLength(env, b.ElementLength(), K * N, "b");
  RequireLength(env, c.ElementLength(), M * N, "out");
  const float* pa = a.Data();
  const float* pb = b.Data();
  float* pc = c.Data();
  return Dispatch(env, async,
                  [=] {
                    sgemm(ta, tb, M, N, K, 1.0f, pa, ta ? M : K, pb, tb ? K : N, acc ? 1.0f : 0.0f, pc, N);
                  },
                  {a, b, c});
}

}  // namespace

void RegisterMatmulOps(Napi::Env env, Napi::Object exports) {
  exports.Set("matmul", Napi::Function::New<Guarded<Matmul>>(env, "matmul"));
}

RNNKIT_REGISTER_OPS(RegisterMatmulOps);

}  // namespace napi
}  // namespace rnnkit
