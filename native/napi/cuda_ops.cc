// Ops on CUDA device buffers: matmul on the CUDA GEMM and RMSNorm forward/backward. Arguments are
// checked here (sizes against buffer bytes, one device, outputs not aliasing inputs) so the
// kernels can trust them. In the CPU flavor the gpu:: calls throw ERR_RNNKIT_DEVICE, and no
// DeviceBuffer can exist there to get this far anyway.
#include <memory>
#include <string>

#include "async.h"
#include "common.h"
#include "cuda_api.h"
#include "device_buffer.h"

namespace rnnkit {
namespace napi {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 31;

// cudaMatmul(a, b, out, M, N, K, transA, transB, accumulate, tf32, async)
Napi::Value CudaMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc a = ArgDevice(info, 0, "a");
  Alloc b = ArgDevice(info, 1, "b");
  Alloc c = ArgDevice(info, 2, "out");
  int64_t M = ArgInt(info, 3, "M", 0, kMaxDim);
  int64_t N = ArgInt(info, 4, "N", 0, kMaxDim);
  int64_t K = ArgInt(info, 5, "K", 0, kMaxDim);
  bool ta = ArgBool(info, 6, "transA");
  bool tb = ArgBool(info, 7, "transB");
  bool acc = ArgBool(info, 8, "accumulate");
  bool tf32 = ArgBool(info, 9, "tf32");
  bool async = ArgBool(info, 10, "async");
  RequireFloats(env, a, M * K, "a");
  RequireFloats(env, b, K * N, "b");
  RequireFloats(env, c, M * N, "out");
  RequireSameDevice(env, {a, b, c});
  RequireDistinct(env, c, {a, b}, "out");
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  return Dispatch(env, async,
                  [=] {
                    gpu::sgemm(c->device, ta, tb, M, N, K, 1.0f, Floats(a), lda, Floats(b), ldb, acc ? 1.0f : 0.0f, Floats(c),
                               N, tf32);
                  },
                  {});
}

// cudaRmsnormForward(x, gamma, beta | null, y, rrms, rows, cols, eps, async)
Napi::Value CudaRmsnormForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc x = ArgDevice(info, 0, "x");
  Alloc gamma = ArgDevice(info, 1, "gamma");
  Alloc beta = ArgDeviceOpt(info, 2, "beta");
  Alloc y = ArgDevice(info, 3, "y");
  Alloc rrms = ArgDevice(info, 4, "rrms");
  int64_t rows = ArgInt(info, 5, "rows", 0, int64_t(1) << 40);
  int64_t cols = ArgInt(info, 6, "cols", 0, kMaxDim - 1);
  double eps = ArgNumber(info, 7, "eps");
  bool async = ArgBool(info, 8, "async");
  if (!(eps >= 0)) Throw(env, ErrorCode::arg, "eps must be a non-negative number");
  RequireFloats(env, x, rows * cols, "x");
  RequireFloats(env, gamma, cols, "gamma");
  RequireFloats(env, beta, cols, "beta");
  RequireFloats(env, y, rows * cols, "y");
  RequireFloats(env, rrms, rows, "rrms");
  RequireSameDevice(env, {x, gamma, beta, y, rrms});
  RequireDistinct(env, y, {x, gamma, beta, rrms}, "y");
  RequireDistinct(env, rrms, {x, gamma, beta}, "rrms");
  const float e = static_cast<float>(eps);
  return Dispatch(env, async,
                  [=] { gpu::rmsnorm_forward(x->device, Floats(y), Floats(rrms), Floats(x), Floats(gamma), Floats(beta), rows, cols, e); },
                  {});
}

// cudaRmsnormBackward(dy, x, gamma, rrms, dx | null, dgamma | null, dbeta | null, rows, cols,
//                     accumulate, async)
Napi::Value CudaRmsnormBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc dy = ArgDevice(info, 0, "dy");
  Alloc x = ArgDevice(info, 1, "x");
  Alloc gamma = ArgDevice(info, 2, "gamma");
  Alloc rrms = ArgDevice(info, 3, "rrms");
  Alloc dx = ArgDeviceOpt(info, 4, "dx");
  Alloc dgamma = ArgDeviceOpt(info, 5, "dgamma");
  Alloc dbeta = ArgDeviceOpt(info, 6, "dbeta");
  int64_t rows = ArgInt(info, 7, "rows", 0, int64_t(1) << 40);
  int64_t cols = ArgInt(info, 8, "cols", 0, kMaxDim - 1);
  bool acc = ArgBool(info, 9, "accumulate");
  bool async = ArgBool(info, 10, "async");
  RequireFloats(env, dy, rows * cols, "dy");
  RequireFloats(env, x, rows * cols, "x");
  RequireFloats(env, gamma, cols, "gamma");
  RequireFloats(env, rrms, rows, "rrms");
  RequireFloats(env, dx, rows * cols, "dx");
  RequireFloats(env, dgamma, cols, "dgamma");
  RequireFloats(env, dbeta, cols, "dbeta");
  RequireSameDevice(env, {dy, x, gamma, rrms, dx, dgamma, dbeta});
  for (const Alloc& out : {dx, dgamma, dbeta}) RequireDistinct(env, out, {dy, x, gamma, rrms}, "an output");
  RequireDistinct(env, dx, {dgamma, dbeta}, "dx");
  RequireDistinct(env, dgamma, {dbeta}, "dgamma");
  return Dispatch(env, async,
                  [=] {
                    gpu::rmsnorm_backward(x->device, Floats(dx), Floats(dgamma), Floats(dbeta), Floats(dy), Floats(x), Floats(gamma), Floats(rrms),
                                          rows, cols, acc);
                  },
                  {});
}

// cudaStagingChunkBytes(): the pinned staging chunk of host<->device copies (0 in the CPU flavor).
Napi::Value CudaStagingChunkBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(gpu::staging_chunk_bytes()));
}

}  // namespace

void RegisterCudaOps(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaMatmul", Napi::Function::New<Guarded<CudaMatmul>>(env, "cudaMatmul"));
  exports.Set("cudaRmsnormForward", Napi::Function::New<Guarded<CudaRmsnormForward>>(env, "cudaRmsnormForward"));
  exports.Set("cudaRmsnormBackward", Napi::Function::New<Guarded<CudaRmsnormBackward>>(env, "cudaRmsnormBackward"));
  exports.Set("cudaStagingChunkBytes",
              Napi::Function::New<Guarded<CudaStagingChunkBytes>>(env, "cudaStagingChunkBytes"));
}

RNNKIT_REGISTER_OPS(RegisterCudaOps);

}  // namespace napi
}  // namespace rnnkit
