// Recurrent op bindings (native/kernels/recurrent.h): sizes, forward (inference or training) and
// backward on CPU Float32Arrays, each with the Dispatch async/Sync pattern.
//
// lib/recurrent-cpu.ts checks arguments first; everything is checked again here by the parser the
// CUDA binding shares (recurrent_args.h), so that no JavaScript value can make a kernel read or
// write out of bounds: the config fields and their ranges, every array's exact length against the
// sizes the kernel layer derives (recurrent_sizes, overflow-checked), and the range of every
// sequence length.
//
// recurrentForward({ config, T, B, batchFirst, x, hx, cx, seqLengths, weights, dropout, seed, y, hy,
//                    cy, saved, async }): saved null means inference; hx, cx, hy, cy may be null.
// recurrentBackward({ config, T, B, batchFirst, x, hx, cx, seqLengths, weights, dropout, seed, y,
//                     saved, dy, dhy, dcy, dx, dhx, dcx, dweights, accumulate, async }): what the
//   training forward took and produced; dy, dhy, dcy, dhx, dcx may be null.
// config (a plain object): { mode: 'lstm'|'gru'|'rnn_tanh'|'rnn_relu', inputSize, hiddenSize,
//   numLayers, bidirectional, skipInput, projSize, cellClip, peepholes, linearBeforeReset }
#include <cstdint>
#include <string>
#include <vector>

#include "async.h"
#include "common.h"
#include "cpu_features.h"
#include "recurrent.h"
#include "recurrent_args.h"

namespace rnnkit {
namespace napi {
namespace {

// The CPU flavor of the parser: Float32Arrays (an empty handle is an absent buffer).
struct HostArrays {
  using Handle = Napi::Float32Array;
  static Handle Read(Napi::Env env, Napi::Value v, const char* what, bool optional) {
    return optional ? Float32OptOf(env, v, what) : Float32Of(env, v, what);
  }
  static bool Present(const Handle& a) { return !a.IsEmpty(); }
  static uint64_t Bytes(const Handle& a) { return static_cast<uint64_t>(a.ElementLength()) * sizeof(float); }
  static float* Data(const Handle& a) { return const_cast<float*>(a.Data()); }
};

using Args = RecurrentArgs<HostArrays>;

// The arrays a job reads or writes, pinned until it ends.
std::vector<Napi::Value> Pins(const Args& a) {
  std::vector<Napi::Value> pins;
  for (const RecurrentBufferSpec& b : RecurrentBuffers(a.call.pass))
    if (HostArrays::Present(a.buf[b.id])) pins.push_back(a.buf[b.id]);
  return pins;
}

// recurrentWeightsSize(cfg) -> number of floats in the packed weights
Napi::Value WeightsSize(const Napi::CallbackInfo& info) {
  RecurrentConfig c = ArgRecurrentConfig(info, 0);
  return Napi::Number::New(info.Env(), static_cast<double>(recurrent_sizes(c, 0, 0).weights));
}

// recurrentSavedSize(cfg, T, B) -> number of floats a training forward saves
Napi::Value SavedSize(const Napi::CallbackInfo& info) {
  RecurrentConfig c = ArgRecurrentConfig(info, 0);
  const int64_t T = ArgInt(info, 1, "T", 0, kMaxSteps);
  const int64_t B = ArgInt(info, 2, "B", 0, kMaxSteps);
  return Napi::Number::New(info.Env(), static_cast<double>(recurrent_sizes(c, T, B).saved));
}

// recurrentInfo() -> { isa, algorithm }: what the next call runs.
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", Napi::String::New(env, isa_name(active_isa())));
  o.Set("algorithm", Napi::String::New(env, "cpu-gemm-fused-cell"));
  return o;
}

Napi::Value Forward(const Napi::CallbackInfo& info) {
  const Args a(info, RecurrentPass::forward);
  const RecurrentCall c = a.call;
  float *x = a.ptr(kX), *hx = a.ptr(kHx), *cx = a.ptr(kCx), *w = a.ptr(kWeights);
  float *y = a.ptr(kY), *hy = a.ptr(kHy), *cy = a.ptr(kCy), *saved = a.ptr(kSaved);
  return Dispatch(info.Env(), c.async,
                  [=] {
                    recurrent_forward(c.cfg, c.T, c.B, c.batch_first, x, hx, cx, c.lengths(), w, c.dropout,
                                      c.seed, y, hy, cy, saved);
                  },
                  Pins(a));
}

Napi::Value Backward(const Napi::CallbackInfo& info) {
  const Args a(info, RecurrentPass::backward);
  const RecurrentCall c = a.call;
  float *x = a.ptr(kX), *hx = a.ptr(kHx), *cx = a.ptr(kCx), *w = a.ptr(kWeights);
  float *y = a.ptr(kY), *saved = a.ptr(kSaved), *dy = a.ptr(kDy), *dhy = a.ptr(kDhy), *dcy = a.ptr(kDcy);
  float *dx = a.ptr(kDx), *dhx = a.ptr(kDhx), *dcx = a.ptr(kDcx), *dw = a.ptr(kDweights);
  return Dispatch(info.Env(), c.async,
                  [=] {
                    recurrent_backward(c.cfg, c.T, c.B, c.batch_first, x, hx, cx, c.lengths(), w, c.dropout,
                                       c.seed, y, saved, dy, dhy, dcy, dx, dhx, dcx, dw, c.accumulate);
                  },
                  Pins(a));
}

}  // namespace

void RegisterRecurrentOps(Napi::Env env, Napi::Object exports) {
  exports.Set("recurrentWeightsSize", Napi::Function::New<Guarded<WeightsSize>>(env, "recurrentWeightsSize"));
  exports.Set("recurrentSavedSize", Napi::Function::New<Guarded<SavedSize>>(env, "recurrentSavedSize"));
  exports.Set("recurrentInfo", Napi::Function::New<Guarded<Info>>(env, "recurrentInfo"));
  exports.Set("recurrentForward", Napi::Function::New<Guarded<Forward>>(env, "recurrentForward"));
  exports.Set("recurrentBackward", Napi::Function::New<Guarded<Backward>>(env, "recurrentBackward"));
}

RNNKIT_REGISTER_OPS(RegisterRecurrentOps);

}  // namespace napi
}  // namespace rnnkit
