// matmul on CPU tensors: C[M,N] = op(A)·op(B) (+ C when accumulating).
#include "async.h"
#include "common.h"
#include "sgemm.h"

namespace rnnkit {
namespace napi {
namespace {

// matmul(a, b, c, M, N, K, transA, transB, accumulate, async)
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto m = ReadMatmulCall(info, ArgFloat32, [env](const Napi::Float32Array& x, int64_t n, const char* what) {
    RequireLength(env, x.ElementLength(), n, what);
  });
  bool async = ArgBool(info, 9, "async");
  const GemmShape g = m.g;
  const float beta = m.accumulate ? 1.0f : 0.0f;
  Napi::Float32Array a = m.a, b = m.b, c = m.c;
  const float* pa = a.Data();
  const float* pb = b.Data();
  float* pc = c.Data();
  return Dispatch(env, async, [=] { sgemm(g.ta, g.tb, g.M, g.N, g.K, 1.0f, pa, g.lda(), pb, g.ldb(), beta, pc, g.N); },
                  {a, b, c});
}

}  // namespace

void RegisterMatmulOps(Napi::Env env, Napi::Object exports) {
  exports.Set("matmul", Napi::Function::New<Guarded<Matmul>>(env, "matmul"));
}

RNNKIT_REGISTER_OPS(RegisterMatmulOps);

}  // namespace napi
}  // namespace rnnkit
