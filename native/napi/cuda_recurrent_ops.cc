// Recurrent op bindings on CUDA device buffers (cuda/cuda_recurrent.h), each with the Dispatch
// async/Sync pattern; the promise (or the Sync return value) is the algorithm that ran.
//
// Every field is checked before a kernel sees it by the parser the CPU binding shares
// (recurrent_args.h: the config, T and B, every buffer's exact size against the sizes the kernel
// layer derives, the sequence lengths copied and range-checked, the dropout value); here, in
// addition, one device for all buffers and no output sharing memory with an input or with another
// output (ERR_RNNKIT_ARG). Jobs capture shared references to every allocation they touch (no
// JavaScript pins needed), so a buffer disposed from JavaScript while a job runs stays valid until
// the job ends. In the CPU flavor the gpu:: calls throw ERR_RNNKIT_DEVICE (and no DeviceBuffer can
// exist there to get this far).
//
// cudaRecurrentForward({ ...the fields of recurrentForward, algorithm }) -> 'standard' | 'persistent'
// cudaRecurrentBackward({ ...the fields of recurrentBackward }) -> 'standard'
// cudaRecurrentAlgorithm(cfg, T, B, device, algorithm) -> what a forward would run
// cudaRecurrentAlgorithmReason(cfg, T, B, device, algorithm) -> why, in words
// algorithm: 'auto' | 'standard' | 'persistent'.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "async.h"
#include "common.h"
#include "cuda_recurrent.h"
#include "device_buffer.h"
#include "recurrent.h"
#include "recurrent_args.h"

namespace rnnkit {
namespace napi {
namespace {

// The CUDA flavor of the parser: DeviceBuffers (nullptr is an absent buffer).
struct DeviceBuffers {
  using Handle = Alloc;
  static Handle Read(Napi::Env env, Napi::Value v, const char* what, bool optional) {
    return optional ? DeviceOptOf(env, v, what) : DeviceOf(env, v, what);
  }
  static bool Present(const Handle& a) { return a != nullptr; }
  static uint64_t Bytes(const Handle& a) { return a->bytes; }
  static float* Data(const Handle& a) { return static_cast<float*>(a->ptr); }
};

using Args = RecurrentArgs<DeviceBuffers>;

// One device for every buffer; no output shares memory with an input or another output (a kernel
// would read what it has already overwritten).
void RequireDevicePlacement(Napi::Env env, const Args& a) {
  int device = -1;
  const std::vector<RecurrentBufferSpec>& specs = RecurrentBuffers(a.call.pass);
  for (const RecurrentBufferSpec& b : specs) {
    const Alloc& p = a.buf[b.id];
    if (!p) continue;
    if (device >= 0 && p->device != device)
      Throw(env, ErrorCode::device, "all buffers of a CUDA Recurrent call must be on the same device");
    device = p->device;
  }
  for (size_t k = 0; k < specs.size(); ++k) {
    const Alloc& o = a.buf[specs[k].id];
    if (!o || !specs[k].output) continue;
    for (const RecurrentBufferSpec& in : specs)
      if (!in.output && SharesMemory(a.buf[in.id], o))
        Throw(env, ErrorCode::arg, std::string(specs[k].name) + " must not share memory with " + in.name);
    for (size_t m = k + 1; m < specs.size(); ++m)
      if (specs[m].output && SharesMemory(a.buf[specs[m].id], o))
        Throw(env, ErrorCode::arg,
              std::string(specs[k].name) + " and " + specs[m].name + " must be different buffers");
  }
}

gpu::RecurrentAlgo AlgoOf(Napi::Env env, Napi::Value v) {
  const std::string a = StringOf(env, v, "algorithm");
  if (a == "auto") return gpu::RecurrentAlgo::automatic;
  if (a == "standard") return gpu::RecurrentAlgo::standard;
  if (a == "persistent") return gpu::RecurrentAlgo::persistent;
  Throw(env, ErrorCode::arg, "algorithm must be one of auto, standard, persistent");
}

Napi::Value Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args a(info, RecurrentPass::forward, {"algorithm"});
  const gpu::RecurrentAlgo algo = AlgoOf(env, a.fields.Get("algorithm"));
  RequireDevicePlacement(env, a);
  const RecurrentCall c = a.call;
  // The jobs hold the allocations (shared references), the pointers come from them.
  std::vector<Alloc> held(a.buf, a.buf + kBufferCount);
  float *x = a.ptr(kX), *hx = a.ptr(kHx), *cx = a.ptr(kCx), *w = a.ptr(kWeights);
  float *y = a.ptr(kY), *hy = a.ptr(kHy), *cy = a.ptr(kCy), *saved = a.ptr(kSaved);
  const int device = a.buf[kX]->device;
  auto algorithm = std::make_shared<std::string>();
  return Dispatch(env, c.async,
                  [=] {
                    (void)held;
                    *algorithm = gpu::recurrent_forward(device, c.cfg, c.T, c.B, c.batch_first, x, hx, cx,
                                                        c.lengths(), w, c.dropout, c.seed, y, hy, cy, saved, algo);
                  },
                  {}, [algorithm](Napi::Env e) -> Napi::Value { return Napi::String::New(e, *algorithm); });
}

Napi::Value Backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args a(info, RecurrentPass::backward);
  RequireDevicePlacement(env, a);
  const RecurrentCall c = a.call;
  std::vector<Alloc> held(a.buf, a.buf + kBufferCount);
  float *x = a.ptr(kX), *hx = a.ptr(kHx), *cx = a.ptr(kCx), *w = a.ptr(kWeights);
  float *y = a.ptr(kY), *saved = a.ptr(kSaved), *dy = a.ptr(kDy), *dhy = a.ptr(kDhy), *dcy = a.ptr(kDcy);
  float *dx = a.ptr(kDx), *dhx = a.ptr(kDhx), *dcx = a.ptr(kDcx), *dw = a.ptr(kDweights);
  const int device = a.buf[kX]->device;
  auto algorithm = std::make_shared<std::string>();
  return Dispatch(env, c.async,
                  [=] {
                    (void)held;
                    *algorithm = gpu::recurrent_backward(device, c.cfg, c.T, c.B, c.batch_first, x, hx, cx,
                                                         c.lengths(), w, c.dropout, c.seed, y, saved, dy, dhy, dcy,
                                                         dx, dhx, dcx, dw, c.accumulate);
                  },
                  {}, [algorithm](Napi::Env e) -> Napi::Value { return Napi::String::New(e, *algorithm); });
}

// Algorithm / AlgorithmReason(cfg, T, B, device, algorithm): the algorithm a forward would run,
// or the reason for that choice in words.
template <bool kReason>
Napi::Value Algorithm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const RecurrentConfig c = ArgRecurrentConfig(info, 0);
  const int64_t T = ArgInt(info, 1, "T", 0, kMaxSteps);
  const int64_t B = ArgInt(info, 2, "B", 0, kMaxSteps);
  const int device = static_cast<int>(ArgInt(info, 3, "device", 0, 1023));
  recurrent_sizes(c, T, B);
  std::string why;
  const char* algorithm =
      gpu::recurrent_forward_algorithm(device, c, T, B, AlgoOf(env, info.Length() > 4 ? info[4] : env.Undefined()), &why);
  return Napi::String::New(env, kReason ? why : std::string(algorithm));
}

}  // namespace

void RegisterCudaRecurrentOps(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaRecurrentForward", Napi::Function::New<Guarded<Forward>>(env, "cudaRecurrentForward"));
  exports.Set("cudaRecurrentBackward", Napi::Function::New<Guarded<Backward>>(env, "cudaRecurrentBackward"));
  exports.Set("cudaRecurrentAlgorithm", Napi::Function::New<Guarded<Algorithm<false>>>(env, "cudaRecurrentAlgorithm"));
  exports.Set("cudaRecurrentAlgorithmReason",
              Napi::Function::New<Guarded<Algorithm<true>>>(env, "cudaRecurrentAlgorithmReason"));
}

RNNKIT_REGISTER_OPS(RegisterCudaRecurrentOps);

}  // namespace napi
}  // namespace rnnkit
