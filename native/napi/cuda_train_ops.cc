// Training ops on CUDA device buffers (cuda/cuda_train.h): optimizer steps in place, the losses,
// gradient clipping, and fill (cuda_api.h). The twins of train_ops.cc (same argument
// order, device buffers for float arrays); every function takes `async` last. Checked here: buffer
// kinds and sizes, one device, outputs that share memory with inputs (the same buffer or
// overlapping slices), host targets against V (before they are uploaded; device targets, an
// IndexTensor's, are checked in lib/). Jobs hold shared references to every allocation they touch.
//
// Scalar results (a loss, a norm) stay on the device unless asked for: `out` (a DeviceBuffer of
// one float, or null) receives the value as float32, and with `read` true the call returns the
// value as a number — one 8-byte copy to the host, counted like every other (backendInfo().cuda
// .copies). Host inputs (host targets, a host mask) are uploaded inside the job, counted too.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "async.h"
#include "common.h"
#include "cuda_api.h"
#include "cuda_train.h"
#include "device_buffer.h"

namespace rnnkit {
namespace napi {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 40;

int64_t FloatsIn(const Alloc& a) { return static_cast<int64_t>(a->bytes / sizeof(float)); }

// No two given buffers may share memory, as one buffer or as overlapping slices (in-place steps
// read and write each once).
void RequirePairwiseDistinct(Napi::Env env, const std::vector<std::pair<Alloc, const char*>>& all) {
  for (size_t k = 0; k < all.size(); ++k)
    for (size_t m = k + 1; m < all.size(); ++m)
      if (SharesMemory(all[k].first, all[m].first))
        Throw(env, ErrorCode::arg, std::string(all[k].second) + " and " + all[m].second + " must not share memory");
}

// Device scratch that returns to the allocator when the job ends.
struct DeviceScratch {
  DeviceScratch(int device, size_t bytes) : alloc(std::make_shared<DeviceAllocation>(device, bytes)) {}
  double* doubles() const { return static_cast<double*>(alloc->ptr); }
  std::shared_ptr<DeviceAllocation> alloc;
};

// The result of a job that may read one double back: the number, or undefined.
Result MaybeNumber(bool read, std::shared_ptr<double> value) {
  if (!read) return Result();
  return [value](Napi::Env e) -> Napi::Value { return Napi::Number::New(e, *value); };
}

// Copies the device double to *out when asked (8 bytes, counted).
void ReadBack(int device, bool read, const DeviceScratch& s, double* out) {
  if (read) gpu::copy_to_host(device, out, s.doubles(), sizeof(double));
}

// cudaSgdStep(p, g, buf|null, lr, momentum, dampening, weightDecay, nesterov, firstStep, async)
Napi::Value CudaSgdStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc p = ArgDevice(info, 0, "param");
  Alloc g = ArgDevice(info, 1, "grad");
  Alloc buf = ArgDeviceOpt(info, 2, "momentumBuffer");
  SgdHyper h;
  h.lr = static_cast<float>(ArgNumber(info, 3, "lr"));
  h.momentum = static_cast<float>(ArgNumber(info, 4, "momentum"));
  h.dampening = static_cast<float>(ArgNumber(info, 5, "dampening"));
  h.weight_decay = static_cast<float>(ArgNumber(info, 6, "weightDecay"));
  h.nesterov = ArgBool(info, 7, "nesterov");
  h.first_step = ArgBool(info, 8, "firstStep");
  bool async = ArgBool(info, 9, "async");
  const int64_t n = FloatsIn(p);
  RequireFloats(env, g, n, "grad");
  if (h.momentum != 0.f && !buf) Throw(env, ErrorCode::arg, "momentum needs a momentum buffer");
  RequireFloats(env, buf, n, "momentumBuffer");
  RequireSameDevice(env, {p, g, buf});
  RequirePairwiseDistinct(env, {{p, "param"}, {g, "grad"}, {buf, "momentumBuffer"}});
  return Dispatch(env, async, [=] { gpu::sgd_step(p->device, Floats(p), Floats(g), Floats(buf), n, h); }, {});
}

// cudaAdamStep(p, g, m, v, vmax|null, lr, beta1, beta2, eps, weightDecay, step, decoupled, async)
Napi::Value CudaAdamStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc p = ArgDevice(info, 0, "param");
  Alloc g = ArgDevice(info, 1, "grad");
  Alloc m = ArgDevice(info, 2, "expAvg");
  Alloc v = ArgDevice(info, 3, "expAvgSq");
  Alloc vmax = ArgDeviceOpt(info, 4, "maxExpAvgSq");
  AdamHyper h;
  h.lr = ArgNumber(info, 5, "lr");
  h.beta1 = ArgNumber(info, 6, "beta1");
  h.beta2 = ArgNumber(info, 7, "beta2");
  h.eps = ArgNumber(info, 8, "eps");
  h.weight_decay = ArgNumber(info, 9, "weightDecay");
  h.step = ArgInt(info, 10, "step", 1, int64_t(1) << 53);
  h.decoupled = ArgBool(info, 11, "decoupled");
  bool async = ArgBool(info, 12, "async");
  const int64_t n = FloatsIn(p);
  RequireFloats(env, g, n, "grad");
  RequireFloats(env, m, n, "expAvg");
  RequireFloats(env, v, n, "expAvgSq");
  RequireFloats(env, vmax, n, "maxExpAvgSq");
  RequireSameDevice(env, {p, g, m, v, vmax});
  RequirePairwiseDistinct(env, {{p, "param"}, {g, "grad"}, {m, "expAvg"}, {v, "expAvgSq"}, {vmax, "maxExpAvgSq"}});
  return Dispatch(env, async,
                  [=] { gpu::adam_step(p->device, Floats(p), Floats(g), Floats(m), Floats(v), Floats(vmax), n, h); }, {});
}

// cudaAdagradStep(p, g, sum, lr, lrDecay, weightDecay, eps, step, async)
Napi::Value CudaAdagradStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc p = ArgDevice(info, 0, "param");
  Alloc g = ArgDevice(info, 1, "grad");
  Alloc sum = ArgDevice(info, 2, "sum");
  AdagradHyper h;
  h.lr = ArgNumber(info, 3, "lr");
  h.lr_decay = ArgNumber(info, 4, "lrDecay");
  h.weight_decay = ArgNumber(info, 5, "weightDecay");
  h.eps = ArgNumber(info, 6, "eps");
  h.step = ArgInt(info, 7, "step", 1, int64_t(1) << 53);
  bool async = ArgBool(info, 8, "async");
  const int64_t n = FloatsIn(p);
  RequireFloats(env, g, n, "grad");
  RequireFloats(env, sum, n, "sum");
  RequireSameDevice(env, {p, g, sum});
  RequirePairwiseDistinct(env, {{p, "param"}, {g, "grad"}, {sum, "sum"}});
  return Dispatch(env, async, [=] { gpu::adagrad_step(p->device, Floats(p), Floats(g), Floats(sum), n, h); }, {});
}

// cudaRmspropStep(p, g, squareAvg, gradAvg|null, buf|null, lr, alpha, eps, weightDecay, momentum, async)
Napi::Value CudaRmspropStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc p = ArgDevice(info, 0, "param");
  Alloc g = ArgDevice(info, 1, "grad");
  Alloc sq = ArgDevice(info, 2, "squareAvg");
  Alloc ga = ArgDeviceOpt(info, 3, "gradAvg");
  Alloc buf = ArgDeviceOpt(info, 4, "momentumBuffer");
  RmspropHyper h;
  h.lr = static_cast<float>(ArgNumber(info, 5, "lr"));
  h.alpha = static_cast<float>(ArgNumber(info, 6, "alpha"));
  h.eps = static_cast<float>(ArgNumber(info, 7, "eps"));
  h.weight_decay = static_cast<float>(ArgNumber(info, 8, "weightDecay"));
  h.momentum = static_cast<float>(ArgNumber(info, 9, "momentum"));
  bool async = ArgBool(info, 10, "async");
  const int64_t n = FloatsIn(p);
  RequireFloats(env, g, n, "grad");
  RequireFloats(env, sq, n, "squareAvg");
  RequireFloats(env, ga, n, "gradAvg");
  if (h.momentum > 0.f && !buf) Throw(env, ErrorCode::arg, "momentum needs a momentum buffer");
  RequireFloats(env, buf, n, "momentumBuffer");
  RequireSameDevice(env, {p, g, sq, ga, buf});
  RequirePairwiseDistinct(env, {{p, "param"}, {g, "grad"}, {sq, "squareAvg"}, {ga, "gradAvg"}, {buf, "momentumBuffer"}});
  return Dispatch(env, async,
                  [=] { gpu::rmsprop_step(p->device, Floats(p), Floats(g), Floats(sq), Floats(ga), Floats(buf), n, h); },
                  {});
}

// A host Float32Array copied now (the values checked on this thread are the ones uploaded).
std::shared_ptr<std::vector<float>> HostCopy(Napi::Float32Array a) {
  if (a.IsEmpty()) return nullptr;
  return std::make_shared<std::vector<float>>(a.Data(), a.Data() + a.ElementLength());
}

// cudaSoftmaxCrossEntropy(logits, targets: Int32Array | DeviceBuffer, mask: Float32Array | DeviceBuffer | null,
//   dlogits|null, out|null, N, V, ignoreIndex, mean, read, async) -> loss (number) when read
Napi::Value CudaSoftmaxCrossEntropy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc logits = ArgDevice(info, 0, "logits");
  const Ids targets = ArgIds(info, 1, "targets");
  const bool host_mask = info.Length() > 2 && info[2].IsTypedArray();
  Napi::Float32Array hmask = host_mask ? ArgFloat32(info, 2, "mask") : Napi::Float32Array();
  Alloc dmask = host_mask ? nullptr : ArgDeviceOpt(info, 2, "mask");
  Alloc dlogits = ArgDeviceOpt(info, 3, "dlogits");
  Alloc out = ArgDeviceOpt(info, 4, "out");
  int64_t N = ArgInt(info, 5, "N", 0, kMaxDim);
  int64_t V = ArgInt(info, 6, "V", 1, int64_t(1) << 31);
  int32_t ignore = static_cast<int32_t>(ArgInt(info, 7, "ignoreIndex", INT32_MIN, INT32_MAX));
  bool mean = ArgBool(info, 8, "mean");
  bool read = ArgBool(info, 9, "read");
  bool async = ArgBool(info, 10, "async");
  RequireFloats(env, logits, N * V, "logits");
  RequireCount(env, static_cast<uint64_t>(targets.count), N, "targets");
  if (host_mask) RequireLength(env, hmask.ElementLength(), N, "mask");
  RequireFloats(env, dmask, N, "mask");
  RequireFloats(env, dlogits, N * V, "dlogits");
  RequireFloats(env, out, 1, "out");
  RequireSameDevice(env, {logits, targets.device, dmask, dlogits, out});
  RequireDistinct(env, dlogits, {logits, targets.device, dmask}, "dlogits");
  RequireDistinct(env, out, {logits, targets.device, dmask, dlogits}, "out");
  auto m = HostCopy(hmask);
  for (int64_t r = 0; targets.host && r < N; ++r) {
    const int32_t tr = (*targets.host)[r];
    if (tr == ignore || (m && (*m)[r] == 0.f)) continue;
    if (tr < 0 || tr >= V)
      Throw(env, ErrorCode::arg,
            "target " + std::to_string(tr) + " at row " + std::to_string(r) + " is outside [0, " + std::to_string(V) + ")");
  }
  auto value = std::make_shared<double>(0.0);
  return Dispatch(
      env, async,
      [=] {
        const int dev = logits->device;
        DeviceScratch scalar(dev, sizeof(double));
        Alloc keep;
        const int32_t* t = IdsOnDevice(dev, targets, keep);
        std::unique_ptr<DeviceAllocation> um;
        if (m) {
          um.reset(new DeviceAllocation(dev, static_cast<size_t>(N) * sizeof(float)));
          gpu::copy_to_device(dev, um->ptr, m->data(), static_cast<size_t>(N) * sizeof(float));
        }
        const float* mask_ptr = um ? static_cast<const float*>(um->ptr) : Floats(dmask);
        gpu::softmax_cross_entropy(dev, scalar.doubles(), Floats(out), Floats(dlogits), Floats(logits), t, mask_ptr, N, V,
                                   ignore, mean);
        ReadBack(dev, read, scalar, value.get());
      },
      {}, MaybeNumber(read, value));
}

// cudaMseLoss(y, target, dy|null, out|null, mean, read, async) -> loss when read
Napi::Value CudaMseLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc y = ArgDevice(info, 0, "input");
  Alloc t = ArgDevice(info, 1, "target");
  Alloc dy = ArgDeviceOpt(info, 2, "dinput");
  Alloc out = ArgDeviceOpt(info, 3, "out");
  bool mean = ArgBool(info, 4, "mean");
  bool read = ArgBool(info, 5, "read");
  bool async = ArgBool(info, 6, "async");
  const int64_t n = FloatsIn(y);
  RequireFloats(env, t, n, "target");
  RequireFloats(env, dy, n, "dinput");
  RequireFloats(env, out, 1, "out");
  RequireSameDevice(env, {y, t, dy, out});
  RequireDistinct(env, dy, {y, t}, "dinput");
  RequireDistinct(env, out, {y, t, dy}, "out");
  auto value = std::make_shared<double>(0.0);
  return Dispatch(
      env, async,
      [=] {
        DeviceScratch scalar(y->device, sizeof(double));
        gpu::mse(y->device, scalar.doubles(), Floats(out), Floats(dy), Floats(y), Floats(t), n, mean);
        ReadBack(y->device, read, scalar, value.get());
      },
      {}, MaybeNumber(read, value));
}

// Pointers and sizes of a buffer list, for the job.
struct BufferList {
  std::vector<Alloc> allocs;
  std::vector<float*> ptrs;
  std::vector<int64_t> sizes;
  int device() const { return allocs.empty() ? 0 : allocs.front()->device; }
  int64_t count() const { return static_cast<int64_t>(allocs.size()); }
};

std::shared_ptr<BufferList> ArgBufferList(const Napi::CallbackInfo& info, size_t i, const char* what) {
  auto list = std::make_shared<BufferList>();
  list->allocs = ArgDeviceList(info, i, what);
  for (const Alloc& a : list->allocs) {
    list->ptrs.push_back(Floats(a));
    list->sizes.push_back(FloatsIn(a));
  }
  return list;
}

// cudaSumSquares(buffers, async) -> Σ x² (one double read back)
Napi::Value CudaSumSquares(const Napi::CallbackInfo& info) {
  auto list = ArgBufferList(info, 0, "buffers");
  bool async = ArgBool(info, 1, "async");
  auto value = std::make_shared<double>(0.0);
  return Dispatch(
      info.Env(), async,
      [list, value] {
        if (list->count() == 0) return;
        DeviceScratch scalar(list->device(), sizeof(double));
        gpu::sum_squares(list->device(), scalar.doubles(), list->ptrs.data(), list->sizes.data(), list->count());
        ReadBack(list->device(), true, scalar, value.get());
      },
      {}, MaybeNumber(true, value));
}

// cudaClipGradNorm(buffers, maxNorm, out|null, read, async) -> the norm before clipping when read
Napi::Value CudaClipGradNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto list = ArgBufferList(info, 0, "buffers");
  double max_norm = ArgNumber(info, 1, "maxNorm");
  Alloc out = ArgDeviceOpt(info, 2, "out");
  bool read = ArgBool(info, 3, "read");
  bool async = ArgBool(info, 4, "async");
  if (!(max_norm >= 0)) Throw(env, ErrorCode::arg, "maxNorm must be a number >= 0");
  RequireFloats(env, out, 1, "out");
  if (out && list->count() > 0 && out->device != list->device())
    Throw(env, ErrorCode::device, "out must be on the device of the buffers");
  for (const Alloc& a : list->allocs)
    if (SharesMemory(a, out)) Throw(env, ErrorCode::arg, "out must not share memory with one of the buffers");
  auto value = std::make_shared<double>(0.0);
  return Dispatch(
      env, async,
      [list, max_norm, out, read, value] {
        const int dev = out ? out->device : list->device();
        if (list->count() == 0) {
          if (out) gpu::fill(dev, Floats(out), 1, 0.f);
          return;
        }
        DeviceScratch scalar(dev, sizeof(double));
        gpu::clip_grad_norm(dev, scalar.doubles(), Floats(out), list->ptrs.data(), list->sizes.data(), list->count(),
                            max_norm);
        ReadBack(dev, read, scalar, value.get());
      },
      {}, MaybeNumber(read, value));
}

// cudaScaleBuffers(buffers, s, async): x *= s
Napi::Value CudaScaleBuffers(const Napi::CallbackInfo& info) {
  auto list = ArgBufferList(info, 0, "buffers");
  float s = static_cast<float>(ArgNumber(info, 1, "scale"));
  bool async = ArgBool(info, 2, "async");
  return Dispatch(
      info.Env(), async,
      [list, s] {
        if (list->count()) gpu::scale(list->device(), list->ptrs.data(), list->sizes.data(), list->count(), s);
      },
      {});
}

// cudaClampBuffers(buffers, lo, hi, async): x = min(max(x, lo), hi)
Napi::Value CudaClampBuffers(const Napi::CallbackInfo& info) {
  auto list = ArgBufferList(info, 0, "buffers");
  float lo = static_cast<float>(ArgNumber(info, 1, "lo"));
  float hi = static_cast<float>(ArgNumber(info, 2, "hi"));
  bool async = ArgBool(info, 3, "async");
  return Dispatch(
      info.Env(), async,
      [list, lo, hi] {
        if (list->count()) gpu::clamp(list->device(), list->ptrs.data(), list->sizes.data(), list->count(), lo, hi);
      },
      {});
}

// cudaFill(buffer, value, async): every float of the buffer = value
Napi::Value CudaFill(const Napi::CallbackInfo& info) {
  Alloc b = ArgDevice(info, 0, "buffer");
  float v = static_cast<float>(ArgNumber(info, 1, "value"));
  bool async = ArgBool(info, 2, "async");
  return Dispatch(info.Env(), async, [b, v] { gpu::fill(b->device, Floats(b), FloatsIn(b), v); }, {});
}

}  // namespace

void RegisterCudaTrainOps(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaSgdStep", Napi::Function::New<Guarded<CudaSgdStep>>(env, "cudaSgdStep"));
  exports.Set("cudaAdamStep", Napi::Function::New<Guarded<CudaAdamStep>>(env, "cudaAdamStep"));
  exports.Set("cudaAdagradStep", Napi::Function::New<Guarded<CudaAdagradStep>>(env, "cudaAdagradStep"));
  exports.Set("cudaRmspropStep", Napi::Function::New<Guarded<CudaRmspropStep>>(env, "cudaRmspropStep"));
  exports.Set("cudaSoftmaxCrossEntropy",
              Napi::Function::New<Guarded<CudaSoftmaxCrossEntropy>>(env, "cudaSoftmaxCrossEntropy"));
  exports.Set("cudaMseLoss", Napi::Function::New<Guarded<CudaMseLoss>>(env, "cudaMseLoss"));
  exports.Set("cudaSumSquares", Napi::Function::New<Guarded<CudaSumSquares>>(env, "cudaSumSquares"));
  exports.Set("cudaClipGradNorm", Napi::Function::New<Guarded<CudaClipGradNorm>>(env, "cudaClipGradNorm"));
  exports.Set("cudaScaleBuffers", Napi::Function::New<Guarded<CudaScaleBuffers>>(env, "cudaScaleBuffers"));
  exports.Set("cudaClampBuffers", Napi::Function::New<Guarded<CudaClampBuffers>>(env, "cudaClampBuffers"));
  exports.Set("cudaFill", Napi::Function::New<Guarded<CudaFill>>(env, "cudaFill"));
}

RNNKIT_REGISTER_OPS(RegisterCudaTrainOps);

}  // namespace napi
}  // namespace rnnkit
