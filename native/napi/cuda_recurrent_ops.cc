// Recurrent op bindings on CUDA device buffers (cuda/cuda_recurrent.h), each with the Dispatch
// async/Sync pattern; the promise (or the Sync return value) is the algorithm that ran.
//
// Everything is checked here before a kernel sees it, as in recurrent_ops.cc for the CPU op: the
// config fields and ranges, T and B, every buffer's exact size against the config (sizes formed in
// double first, so absurd values throw ERR_RNNKIT_SHAPE instead of overflowing), one device for
// all buffers, outputs that share memory with an input or with each other (ERR_RNNKIT_ARG), the
// sequence lengths (copied on the JavaScript thread, then range-checked) and the dropout value.
// Jobs capture shared references to every allocation they touch (no JavaScript pins needed), so
// a buffer disposed from JavaScript while a job runs stays valid until the job ends. In the CPU flavor the gpu:: calls
// throw ERR_RNNKIT_DEVICE (and no DeviceBuffer can exist there to get this far).
//
// cudaRecurrentForward(cfg, T, B, batchFirst, x, hx, cx, seqLengths, weights, dropout, seed,
//                      y, hy, cy, saved, algorithm, async) -> 'standard' | 'persistent'
// cudaRecurrentBackward(cfg, T, B, batchFirst, x, hx, cx, seqLengths, weights, dropout, seed, y,
//                       saved, dy, dhy, dcy, dx, dhx, dcx, dweights, accumulate, async) -> 'standard'
// cudaRecurrentAlgorithm(cfg, T, B, device, algorithm) -> what a forward would run
// cudaRecurrentAlgorithmReason(cfg, T, B, device, algorithm) -> why, in words
// cfg: as for recurrentForward; algorithm: 'auto' | 'standard' | 'persistent'; saved null means
// inference; hx, cx, hy, cy, seqLengths, dy, dhy, dcy, dhx, dcx may be null.
#include <cmath>
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

using Alloc = std::shared_ptr<DeviceAllocation>;
using Mode = RecurrentConfig::Mode;

// The buffer holds exactly `count` floats.
void RequireExact(Napi::Env env, const Alloc& a, int64_t count, const char* what) {
  if (a && a->bytes != static_cast<uint64_t>(count) * sizeof(float))
    Throw(env, ErrorCode::shape,
          std::string(what) + " holds " + std::to_string(a->bytes / sizeof(float)) + " floats, needs " +
              std::to_string(count));
}

void RequireSameDevice(Napi::Env env, const std::vector<Alloc>& all) {
  int device = -1;
  for (const Alloc& a : all) {
    if (!a) continue;
    if (device >= 0 && a->device != device)
      Throw(env, ErrorCode::device, "all buffers of a CUDA Recurrent call must be on the same device");
    device = a->device;
  }
}

// No output may share memory with an input or with another output (a kernel would read what it
// has already overwritten).
void RequireDistinct(Napi::Env env, const std::vector<std::pair<Alloc, const char*>>& outs,
                     const std::vector<std::pair<Alloc, const char*>>& ins) {
  for (size_t k = 0; k < outs.size(); ++k) {
    const Alloc& o = outs[k].first;
    if (!o) continue;
    for (const auto& in : ins)
      if (in.first && in.first->ptr == o->ptr)
        Throw(env, ErrorCode::arg, std::string(outs[k].second) + " must not share memory with " + in.second);
    for (size_t m = k + 1; m < outs.size(); ++m)
      if (outs[m].first && outs[m].first->ptr == o->ptr)
        Throw(env, ErrorCode::arg, std::string(outs[k].second) + " and " + outs[m].second + " must be different buffers");
  }
}

gpu::RecurrentAlgo ArgAlgo(const Napi::CallbackInfo& info, size_t i) {
  const std::string a = ArgString(info, i, "algorithm");
  if (a == "auto") return gpu::RecurrentAlgo::automatic;
  if (a == "standard") return gpu::RecurrentAlgo::standard;
  if (a == "persistent") return gpu::RecurrentAlgo::persistent;
  Throw(info.Env(), ErrorCode::arg, "algorithm must be one of auto, standard, persistent");
}

float* F(const Alloc& a) { return a ? static_cast<float*>(a->ptr) : nullptr; }

// Optional state buffers only exist for LSTM where they are cell states.
void RequireLstmOnly(Napi::Env env, const RecurrentSizes& s, const std::vector<std::pair<Alloc, const char*>>& cell_bufs) {
  if (s.lstm) return;
  for (const auto& a : cell_bufs)
    if (a.first) Throw(env, ErrorCode::arg, std::string(a.second) + " applies to mode lstm only");
}

Napi::Value Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const RecurrentConfig c = ArgRecurrentConfig(info, 0);
  const int64_t T = ArgInt(info, 1, "T", 0, kMaxSteps);
  const int64_t B = ArgInt(info, 2, "B", 0, kMaxSteps);
  const bool batch_first = ArgBool(info, 3, "batchFirst");
  const RecurrentSizes s = RecurrentSizesOf(env, c, T, B);
  Alloc x = ArgDevice(info, 4, "x");
  Alloc hx = ArgDeviceOpt(info, 5, "hx");
  Alloc cx = ArgDeviceOpt(info, 6, "cx");
  auto lens = ArgSeqLengths(env, ArgInt32Opt(info, 7, "seqLengths"), T, B);
  Alloc w = ArgDevice(info, 8, "weights");
  const float dropout = ArgDropout(info, 9);
  const uint64_t seed = static_cast<uint64_t>(ArgInt(info, 10, "seed", 0, kMaxSeed));
  Alloc y = ArgDevice(info, 11, "y");
  Alloc hy = ArgDeviceOpt(info, 12, "hy");
  Alloc cy = ArgDeviceOpt(info, 13, "cy");
  Alloc saved = ArgDeviceOpt(info, 14, "saved");
  const gpu::RecurrentAlgo algo = ArgAlgo(info, 15);
  const bool async = ArgBool(info, 16, "async");

  const int64_t TB = T * B;
  RequireExact(env, x, TB * s.I, "x");
  RequireExact(env, w, s.weights, "weights");
  RequireExact(env, y, TB * s.DR, "y");
  RequireLstmOnly(env, s, {{cx, "cx"}, {cy, "cy"}});
  RequireExact(env, hx, s.LD * B * s.R, "hx");
  RequireExact(env, cx, s.LD * B * s.H, "cx");
  RequireExact(env, hy, s.LD * B * s.R, "hy");
  RequireExact(env, cy, s.LD * B * s.H, "cy");
  RequireExact(env, saved, s.saved, "saved");
  RequireSameDevice(env, {x, hx, cx, w, y, hy, cy, saved});
  RequireDistinct(env, {{y, "y"}, {hy, "hy"}, {cy, "cy"}, {saved, "saved"}},
                  {{x, "x"}, {hx, "hx"}, {cx, "cx"}, {w, "weights"}});
  const bool training = saved != nullptr;
  auto algorithm = std::make_shared<std::string>();
  return Dispatch(env, async,
                  [=] {
                    *algorithm = gpu::recurrent_forward(
                        x->device, c, T, B, batch_first, F(x), F(hx), F(cx), lens->empty() ? nullptr : lens->data(),
                        F(w), dropout, seed, F(y), F(hy), F(cy), training && s.saved > 0 ? F(saved) : nullptr, algo);
                  },
                  {}, [algorithm](Napi::Env e) -> Napi::Value { return Napi::String::New(e, *algorithm); });
}

Napi::Value Backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const RecurrentConfig c = ArgRecurrentConfig(info, 0);
  const int64_t T = ArgInt(info, 1, "T", 0, kMaxSteps);
  const int64_t B = ArgInt(info, 2, "B", 0, kMaxSteps);
  const bool batch_first = ArgBool(info, 3, "batchFirst");
  const RecurrentSizes s = RecurrentSizesOf(env, c, T, B);
  Alloc x = ArgDevice(info, 4, "x");
  Alloc hx = ArgDeviceOpt(info, 5, "hx");
  Alloc cx = ArgDeviceOpt(info, 6, "cx");
  auto lens = ArgSeqLengths(env, ArgInt32Opt(info, 7, "seqLengths"), T, B);
  Alloc w = ArgDevice(info, 8, "weights");
  const float dropout = ArgDropout(info, 9);
  const uint64_t seed = static_cast<uint64_t>(ArgInt(info, 10, "seed", 0, kMaxSeed));
  Alloc y = ArgDevice(info, 11, "y");
  Alloc saved = ArgDevice(info, 12, "saved");
  Alloc dy = ArgDeviceOpt(info, 13, "dy");
  Alloc dhy = ArgDeviceOpt(info, 14, "dhy");
  Alloc dcy = ArgDeviceOpt(info, 15, "dcy");
  Alloc dx = ArgDevice(info, 16, "dx");
  Alloc dhx = ArgDeviceOpt(info, 17, "dhx");
  Alloc dcx = ArgDeviceOpt(info, 18, "dcx");
  Alloc dw = ArgDevice(info, 19, "dweights");
  const bool accumulate = ArgBool(info, 20, "accumulate");
  const bool async = ArgBool(info, 21, "async");

  const int64_t TB = T * B;
  RequireExact(env, x, TB * s.I, "x");
  RequireExact(env, w, s.weights, "weights");
  RequireExact(env, y, TB * s.DR, "y");
  RequireExact(env, saved, s.saved, "saved");
  RequireExact(env, dx, TB * s.I, "dx");
  RequireExact(env, dw, s.weights, "dweights");
  RequireLstmOnly(env, s, {{cx, "cx"}, {dcy, "dcy"}, {dcx, "dcx"}});
  RequireExact(env, hx, s.LD * B * s.R, "hx");
  RequireExact(env, cx, s.LD * B * s.H, "cx");
  RequireExact(env, dy, TB * s.DR, "dy");
  RequireExact(env, dhy, s.LD * B * s.R, "dhy");
  RequireExact(env, dcy, s.LD * B * s.H, "dcy");
  RequireExact(env, dhx, s.LD * B * s.R, "dhx");
  RequireExact(env, dcx, s.LD * B * s.H, "dcx");
  RequireSameDevice(env, {x, hx, cx, w, y, saved, dy, dhy, dcy, dx, dhx, dcx, dw});
  RequireDistinct(env, {{dx, "dx"}, {dhx, "dhx"}, {dcx, "dcx"}, {dw, "dweights"}},
                  {{x, "x"}, {hx, "hx"}, {cx, "cx"}, {w, "weights"}, {y, "y"}, {saved, "saved"}, {dy, "dy"},
                   {dhy, "dhy"}, {dcy, "dcy"}});
  auto algorithm = std::make_shared<std::string>();
  return Dispatch(env, async,
                  [=] {
                    *algorithm = gpu::recurrent_backward(
                        x->device, c, T, B, batch_first, F(x), F(hx), F(cx), lens->empty() ? nullptr : lens->data(),
                        F(w), dropout, seed, F(y), s.saved > 0 ? F(saved) : nullptr, F(dy), F(dhy), F(dcy), F(dx),
                        F(dhx), F(dcx), F(dw), accumulate);
                  },
                  {}, [algorithm](Napi::Env e) -> Napi::Value { return Napi::String::New(e, *algorithm); });
}

// Algorithm / AlgorithmReason(cfg, T, B, device, algorithm): the algorithm a forward would run,
// or the reason for that choice in words.
template <bool kReason>
Napi::Value Algorithm(const Napi::CallbackInfo& info) {
  const RecurrentConfig c = ArgRecurrentConfig(info, 0);
  const int64_t T = ArgInt(info, 1, "T", 0, kMaxSteps);
  const int64_t B = ArgInt(info, 2, "B", 0, kMaxSteps);
  const int device = static_cast<int>(ArgInt(info, 3, "device", 0, 1023));
  RecurrentSizesOf(info.Env(), c, T, B);
  std::string why;
  const char* algorithm = gpu::recurrent_forward_algorithm(device, c, T, B, ArgAlgo(info, 4), &why);
  return Napi::String::New(info.Env(), kReason ? why : std::string(algorithm));
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
