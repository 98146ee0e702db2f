// Recurrent op bindings (native/kernels/recurrent.h): sizes, forward (inference or training) and
// backward on CPU Float32Arrays, each with the Dispatch async/Sync pattern.
//
// lib/recurrent.ts checks arguments first; everything is checked again here, so that no JavaScript
// value can make a kernel read or write out of bounds: the config fields and their ranges, every
// array's exact length against the config and T, B, and the range of every sequence length. The
// lengths are copied on the JavaScript thread, so JavaScript writing to the Int32Array while an
// async job runs cannot slip an unchecked value past the check. Sizes are multiplied in double
// first, so absurd T, B or config values throw ERR_RNNKIT_SHAPE instead of overflowing int64.
//
// cfg (a plain object): { mode: 'lstm'|'gru'|'rnn_tanh'|'rnn_relu', inputSize, hiddenSize,
//   numLayers, bidirectional, skipInput, projSize, cellClip, peepholes, linearBeforeReset }
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
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

void RequireExact(Napi::Env env, size_t have, int64_t count, const std::string& what) {
  if (static_cast<uint64_t>(have) != static_cast<uint64_t>(count))
    Throw(env, ErrorCode::shape,
          what + " holds " + std::to_string(have) + " values, needs " + std::to_string(count));
}

// Optional float array: empty (null pointer) or exactly `count` values.
const float* OptionalData(Napi::Env env, const Napi::Float32Array& a, int64_t count,
                          const std::string& what) {
  if (a.IsEmpty()) return nullptr;
  RequireExact(env, a.ElementLength(), count, what);
  return count > 0 ? a.Data() : nullptr;
}

// recurrentWeightsSize(cfg) -> number of floats in the packed weights
Napi::Value WeightsSize(const Napi::CallbackInfo& info) {
  RecurrentConfig c = ArgRecurrentConfig(info, 0);
  return Napi::Number::New(info.Env(), static_cast<double>(RecurrentSizesOf(info.Env(), c, 0, 0).weights));
}

// recurrentSavedSize(cfg, T, B) -> number of floats a training forward saves
Napi::Value SavedSize(const Napi::CallbackInfo& info) {
  RecurrentConfig c = ArgRecurrentConfig(info, 0);
  const int64_t T = ArgInt(info, 1, "T", 0, kMaxSteps);
  const int64_t B = ArgInt(info, 2, "B", 0, kMaxSteps);
  return Napi::Number::New(info.Env(), static_cast<double>(RecurrentSizesOf(info.Env(), c, T, B).saved));
}

// recurrentInfo() -> { isa, algorithm }: what the next call runs.
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", Napi::String::New(env, isa_name(active_isa())));
  o.Set("algorithm", Napi::String::New(env, "cpu-gemm-fused-cell"));
  return o;
}

// recurrentForward(cfg, T, B, batchFirst, x, hx, cx, seqLengths, weights, dropout, seed,
//                  y, hy, cy, saved, async)
// saved null: inference; else exactly recurrentSavedSize floats. hy, cy may be null.
Napi::Value Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const RecurrentConfig c = ArgRecurrentConfig(info, 0);
  const int64_t T = ArgInt(info, 1, "T", 0, kMaxSteps);
  const int64_t B = ArgInt(info, 2, "B", 0, kMaxSteps);
  const bool batch_first = ArgBool(info, 3, "batchFirst");
  const RecurrentSizes s = RecurrentSizesOf(env, c, T, B);
  Napi::Float32Array x = ArgFloat32(info, 4, "x");
  Napi::Float32Array hx = ArgFloat32Opt(info, 5, "hx");
  Napi::Float32Array cx = ArgFloat32Opt(info, 6, "cx");
  Napi::Int32Array lens_arr = ArgInt32Opt(info, 7, "seqLengths");
  Napi::Float32Array w = ArgFloat32(info, 8, "weights");
  const float dropout = ArgDropout(info, 9);
  const uint64_t seed = static_cast<uint64_t>(ArgInt(info, 10, "seed", 0, kMaxSeed));
  Napi::Float32Array y = ArgFloat32(info, 11, "y");
  Napi::Float32Array hy = ArgFloat32Opt(info, 12, "hy");
  Napi::Float32Array cy = ArgFloat32Opt(info, 13, "cy");
  Napi::Float32Array saved = ArgFloat32Opt(info, 14, "saved");
  const bool async = ArgBool(info, 15, "async");

  RequireExact(env, x.ElementLength(), s.T * s.B * s.I, "x");
  RequireExact(env, w.ElementLength(), s.weights, "weights");
  RequireExact(env, y.ElementLength(), s.T * s.B * s.DR, "y");
  const float* px = s.T * s.B > 0 ? x.Data() : nullptr;
  const float* phx = OptionalData(env, hx, s.LD * s.B * s.R, "hx");
  if (!s.lstm && !cx.IsEmpty()) Throw(env, ErrorCode::arg, "cx applies to mode lstm only");
  if (!s.lstm && !cy.IsEmpty()) Throw(env, ErrorCode::arg, "cy applies to mode lstm only");
  const float* pcx = OptionalData(env, cx, s.LD * s.B * s.H, "cx");
  float* phy = const_cast<float*>(OptionalData(env, hy, s.LD * s.B * s.R, "hy"));
  float* pcy = const_cast<float*>(OptionalData(env, cy, s.LD * s.B * s.H, "cy"));
  float* py = s.T * s.B > 0 ? y.Data() : nullptr;
  const float* pw = w.Data();
  // Empty weights cannot happen for a valid config, but the kernel refuses a null pointer.
  if (!pw) Throw(env, ErrorCode::arg, "weights are empty");
  // A training forward whose saved size is 0 (one-layer RNN, or T·B = 0) keeps nothing at all.
  float* psaved = nullptr;
  if (!saved.IsEmpty()) {
    RequireExact(env, saved.ElementLength(), s.saved, "saved");
    psaved = s.saved > 0 ? saved.Data() : nullptr;
  }
  auto lens = ArgSeqLengths(env, lens_arr, T, B);
  return Dispatch(env, async,
                  [=] {
                    recurrent_forward(c, T, B, batch_first, px, phx, pcx,
                                      lens->empty() ? nullptr : lens->data(), pw, dropout, seed,
                                      py, phy, pcy, psaved);
                  },
                  {x, hx, cx, w, y, hy, cy, saved});
}

// recurrentBackward(cfg, T, B, batchFirst, x, hx, cx, seqLengths, weights, dropout, seed, y, saved,
//                   dy, dhy, dcy, dx, dhx, dcx, dweights, accumulate, async)
// Takes exactly what the training forward took and produced; dy, dhy, dcy, dhx, dcx may be null.
Napi::Value Backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const RecurrentConfig c = ArgRecurrentConfig(info, 0);
  const int64_t T = ArgInt(info, 1, "T", 0, kMaxSteps);
  const int64_t B = ArgInt(info, 2, "B", 0, kMaxSteps);
  const bool batch_first = ArgBool(info, 3, "batchFirst");
  const RecurrentSizes s = RecurrentSizesOf(env, c, T, B);
  Napi::Float32Array x = ArgFloat32(info, 4, "x");
  Napi::Float32Array hx = ArgFloat32Opt(info, 5, "hx");
  Napi::Float32Array cx = ArgFloat32Opt(info, 6, "cx");
  Napi::Int32Array lens_arr = ArgInt32Opt(info, 7, "seqLengths");
  Napi::Float32Array w = ArgFloat32(info, 8, "weights");
  const float dropout = ArgDropout(info, 9);
  const uint64_t seed = static_cast<uint64_t>(ArgInt(info, 10, "seed", 0, kMaxSeed));
  Napi::Float32Array y = ArgFloat32(info, 11, "y");
  Napi::Float32Array saved = ArgFloat32(info, 12, "saved");
  Napi::Float32Array dy = ArgFloat32Opt(info, 13, "dy");
  Napi::Float32Array dhy = ArgFloat32Opt(info, 14, "dhy");
  Napi::Float32Array dcy = ArgFloat32Opt(info, 15, "dcy");
  Napi::Float32Array dx = ArgFloat32(info, 16, "dx");
  Napi::Float32Array dhx = ArgFloat32Opt(info, 17, "dhx");
  Napi::Float32Array dcx = ArgFloat32Opt(info, 18, "dcx");
  Napi::Float32Array dw = ArgFloat32(info, 19, "dweights");
  const bool accumulate = ArgBool(info, 20, "accumulate");
  const bool async = ArgBool(info, 21, "async");

  const int64_t TB = s.T * s.B;
  RequireExact(env, x.ElementLength(), TB * s.I, "x");
  RequireExact(env, w.ElementLength(), s.weights, "weights");
  RequireExact(env, y.ElementLength(), TB * s.DR, "y");
  RequireExact(env, saved.ElementLength(), s.saved, "saved");
  RequireExact(env, dx.ElementLength(), TB * s.I, "dx");
  RequireExact(env, dw.ElementLength(), s.weights, "dweights");
  if (!s.lstm) {
    for (const auto& a : {std::make_pair(&cx, "cx"), std::make_pair(&dcy, "dcy"), std::make_pair(&dcx, "dcx")})
      if (!a.first->IsEmpty()) Throw(env, ErrorCode::arg, std::string(a.second) + " applies to mode lstm only");
  }
  const float* phx = OptionalData(env, hx, s.LD * s.B * s.R, "hx");
  const float* pcx = OptionalData(env, cx, s.LD * s.B * s.H, "cx");
  const float* pdy = OptionalData(env, dy, TB * s.DR, "dy");
  const float* pdhy = OptionalData(env, dhy, s.LD * s.B * s.R, "dhy");
  const float* pdcy = OptionalData(env, dcy, s.LD * s.B * s.H, "dcy");
  float* pdhx = const_cast<float*>(OptionalData(env, dhx, s.LD * s.B * s.R, "dhx"));
  float* pdcx = const_cast<float*>(OptionalData(env, dcx, s.LD * s.B * s.H, "dcx"));
  const float* px = TB > 0 ? x.Data() : nullptr;
  const float* py = TB > 0 ? y.Data() : nullptr;
  float* pdx = TB > 0 ? dx.Data() : nullptr;
  const float* psaved = s.saved > 0 ? saved.Data() : nullptr;
  const float* pw = w.Data();
  float* pdw = dw.Data();
  if (!pw || !pdw) Throw(env, ErrorCode::arg, "weights are empty");
  auto lens = ArgSeqLengths(env, lens_arr, T, B);
  return Dispatch(env, async,
                  [=] {
                    recurrent_backward(c, T, B, batch_first, px, phx, pcx,
                                       lens->empty() ? nullptr : lens->data(), pw, dropout, seed,
                                       py, psaved, pdy, pdhy, pdcy, pdx, pdhx, pdcx, pdw, accumulate);
                  },
                  {x, hx, cx, w, y, saved, dy, dhy, dcy, dx, dhx, dcx, dw});
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
