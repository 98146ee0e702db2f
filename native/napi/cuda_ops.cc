// Ops on CUDA device buffers: matmul on the CUDA GEMM and RMSNorm forward/backward. Arguments are
// checked here (sizes against buffer bytes, one device, outputs not aliasing inputs) so the
// kernels can trust them. In the CPU flavor the gpu:: calls throw ERR_RNNKIT_DEVICE, and no
// DeviceBuffer can exist there to get this far anyway.
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "async.h"
#include "common.h"
#include "cuda_api.h"
#include "device_buffer.h"
#include "rmsnorm_fields.h"

namespace rnnkit {
namespace napi {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 31;

// cudaMatmul(a, b, out, M, N, K, transA, transB, accumulate, tf32, async)
Napi::Value CudaMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto m = ReadMatmulCall(info, ArgDevice, [env](const Alloc& x, int64_t n, const char* what) {
    RequireFloats(env, x, n, what);
  });
  bool tf32 = ArgBool(info, 9, "tf32");
  bool async = ArgBool(info, 10, "async");
  const Alloc a = m.a, b = m.b, c = m.c;
  const GemmShape g = m.g;
  const bool acc = m.accumulate;
  RequireSameDevice(env, {a, b, c});
  RequireDistinct(env, c, {a, b}, "out");
  return Dispatch(env, async,
                  [=] {
                    gpu::sgemm(c->device, g.ta, g.tb, g.M, g.N, g.K, 1.0f, Floats(a), g.lda(), Floats(b), g.ldb(),
                               acc ? 1.0f : 0.0f, Floats(c), g.N, tf32);
                  },
                  {});
}

// The buffers of an RMSNorm call, read in argument order by its table (rmsnorm_fields.h), then
// checked: each holds the floats its field needs, all on one device, no output sharing memory with
// another buffer.
template <size_t N>
std::array<Alloc, N> NormBuffers(const Napi::CallbackInfo& info, const NormField (&fields)[N]) {
  std::array<Alloc, N> b;
  for (size_t k = 0; k < N; ++k) b[k] = fields[k].optional ? ArgDeviceOpt(info, k, fields[k].name) : ArgDevice(info, k, fields[k].name);
  return b;
}

// What both RMSNorm calls start with: the buffers, then rows and cols (arguments N and N + 1), checked.
template <size_t N>
struct NormCall {
  std::array<Alloc, N> b;
  int64_t rows, cols;
};

template <size_t N>
NormCall<N> ReadNormCall(const Napi::CallbackInfo& info, const NormField (&fields)[N]) {
  Napi::Env env = info.Env();
  NormCall<N> c{NormBuffers(info, fields), ArgInt(info, N, "rows", 0, int64_t(1) << 40), ArgInt(info, N + 1, "cols", 0, kMaxDim - 1)};
  const std::array<Alloc, N>& b = c.b;
  for (size_t k = 0; k < N; ++k) RequireFloats(env, b[k], NormFloats(fields[k].extent, c.rows, c.cols), fields[k].name);
  RequireSameDevice(env, std::vector<Alloc>(b.begin(), b.end()));
  for (size_t k = 0; k < N; ++k) {
    if (!fields[k].output) continue;
    for (size_t m = 0; m < N; ++m)
      if (m != k) RequireDistinct(env, b[k], {b[m]}, fields[k].name);
  }
  return c;
}

Napi::Value CudaRmsnormForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto c = ReadNormCall(info, kNormForward);
  double eps = ArgNumber(info, 7, "eps");
  bool async = ArgBool(info, 8, "async");
  if (!(eps >= 0)) Throw(env, ErrorCode::arg, "eps must be a non-negative number");
  const std::array<Alloc, kNormForwardBuffers> b = c.b;
  const int64_t rows = c.rows, cols = c.cols;
  const float e = static_cast<float>(eps);
  return Dispatch(env, async,
                  [=] {
                    gpu::rmsnorm_forward(b[0]->device, Floats(b[3]), Floats(b[4]), Floats(b[0]), Floats(b[1]), Floats(b[2]),
                                         rows, cols, e);
                  },
                  {});
}

Napi::Value CudaRmsnormBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto c = ReadNormCall(info, kNormBackward);
  bool acc = ArgBool(info, 9, "accumulate");
  bool async = ArgBool(info, 10, "async");
  return Dispatch(env, async,
                  [c, acc] {
                    const std::array<Alloc, kNormBackwardBuffers>& b = c.b;
                    gpu::rmsnorm_backward(b[1]->device, Floats(b[4]), Floats(b[5]), Floats(b[6]), Floats(b[0]), Floats(b[1]),
                                          Floats(b[2]), Floats(b[3]), c.rows, c.cols, acc);
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
