// Training ops on CPU float arrays (kernels and formulas in native/kernels/train.h): optimizer
// steps that update a parameter and its state in place, softmax cross-entropy and MSE with their
// gradients, and the global-norm / scale / clamp helpers of gradient clipping. Every function takes
// `async` last: true returns a Promise (work on a libuv worker), false runs on the calling thread.
// Sizes come from the parameter (or logits) array; other arrays must hold at least as many
// elements. Hyperparameters are checked in lib/train; here only what could corrupt memory is.
#include <memory>
#include <string>

#include "async.h"
#include "common.h"
#include "train.h"

namespace rnnkit {
namespace napi {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 40;

float* DataOrNull(Napi::Float32Array a) { return a.IsEmpty() ? nullptr : a.Data(); }

// Optional arrays are pinned only when given.
void PinIfSet(std::vector<Napi::Value>* pins, Napi::Float32Array a) {
  if (!a.IsEmpty()) pins->push_back(a);
}

void RequireState(Napi::Env env, Napi::Float32Array a, int64_t n, const char* what) {
  if (!a.IsEmpty()) RequireLength(env, a.ElementLength(), n, what);
}

Napi::Value NumberResult(Napi::Env env, bool async, Work work, const std::vector<Napi::Value>& pins,
                         std::shared_ptr<double> out) {
  return Dispatch(env, async, std::move(work), pins,
                  [out](Napi::Env e) { return Napi::Number::New(e, *out); });
}

// sgdStep(p, g, buf|null, lr, momentum, dampening, weightDecay, nesterov, firstStep, async)
Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array p = ArgFloat32(info, 0, "param");
  Napi::Float32Array g = ArgFloat32(info, 1, "grad");
  Napi::Float32Array buf = ArgFloat32Opt(info, 2, "momentumBuffer");
  SgdHyper h;
  h.lr = static_cast<float>(ArgNumber(info, 3, "lr"));
  h.momentum = static_cast<float>(ArgNumber(info, 4, "momentum"));
  h.dampening = static_cast<float>(ArgNumber(info, 5, "dampening"));
  h.weight_decay = static_cast<float>(ArgNumber(info, 6, "weightDecay"));
  h.nesterov = ArgBool(info, 7, "nesterov");
  h.first_step = ArgBool(info, 8, "firstStep");
  bool async = ArgBool(info, 9, "async");
  const int64_t n = static_cast<int64_t>(p.ElementLength());
  RequireLength(env, g.ElementLength(), n, "grad");
  if (h.momentum != 0.f && buf.IsEmpty()) Throw(env, ErrorCode::arg, "momentum needs a momentum buffer");
  RequireState(env, buf, n, "momentumBuffer");
  float* pp = p.Data();
  const float* pg = g.Data();
  float* pb = DataOrNull(buf);
  std::vector<Napi::Value> pins{p, g};
  PinIfSet(&pins, buf);
  return Dispatch(env, async, [=] { sgd_step(pp, pg, pb, n, h); }, pins);
}

// adamStep(p, g, m, v, vmax|null, lr, beta1, beta2, eps, weightDecay, step, decoupled, async)
Napi::Value AdamStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array p = ArgFloat32(info, 0, "param");
  Napi::Float32Array g = ArgFloat32(info, 1, "grad");
  Napi::Float32Array m = ArgFloat32(info, 2, "expAvg");
  Napi::Float32Array v = ArgFloat32(info, 3, "expAvgSq");
  Napi::Float32Array vmax = ArgFloat32Opt(info, 4, "maxExpAvgSq");
  AdamHyper h;
  h.lr = ArgNumber(info, 5, "lr");
  h.beta1 = ArgNumber(info, 6, "beta1");
  h.beta2 = ArgNumber(info, 7, "beta2");
  h.eps = ArgNumber(info, 8, "eps");
  h.weight_decay = ArgNumber(info, 9, "weightDecay");
  h.step = ArgInt(info, 10, "step", 1, int64_t(1) << 53);
  h.decoupled = ArgBool(info, 11, "decoupled");
  bool async = ArgBool(info, 12, "async");
  const int64_t n = static_cast<int64_t>(p.ElementLength());
  RequireLength(env, g.ElementLength(), n, "grad");
  RequireLength(env, m.ElementLength(), n, "expAvg");
  RequireLength(env, v.ElementLength(), n, "expAvgSq");
  RequireState(env, vmax, n, "maxExpAvgSq");
  float *pp = p.Data(), *pm = m.Data(), *pv = v.Data(), *pvm = DataOrNull(vmax);
  const float* pg = g.Data();
  std::vector<Napi::Value> pins{p, g, m, v};
  PinIfSet(&pins, vmax);
  return Dispatch(env, async, [=] { adam_step(pp, pg, pm, pv, pvm, n, h); }, pins);
}

// adagradStep(p, g, sum, lr, lrDecay, weightDecay, eps, step, async)
Napi::Value AdagradStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array p = ArgFloat32(info, 0, "param");
  Napi::Float32Array g = ArgFloat32(info, 1, "grad");
  Napi::Float32Array sum = ArgFloat32(info, 2, "sum");
  AdagradHyper h;
  h.lr = ArgNumber(info, 3, "lr");
  h.lr_decay = ArgNumber(info, 4, "lrDecay");
  h.weight_decay = ArgNumber(info, 5, "weightDecay");
  h.eps = ArgNumber(info, 6, "eps");
  h.step = ArgInt(info, 7, "step", 1, int64_t(1) << 53);
  bool async = ArgBool(info, 8, "async");
  const int64_t n = static_cast<int64_t>(p.ElementLength());
  RequireLength(env, g.ElementLength(), n, "grad");
  RequireLength(env, sum.ElementLength(), n, "sum");
  float *pp = p.Data(), *ps = sum.Data();
  const float* pg = g.Data();
  return Dispatch(env, async, [=] { adagrad_step(pp, pg, ps, n, h); }, {p, g, sum});
}

// rmspropStep(p, g, squareAvg, gradAvg|null, buf|null, lr, alpha, eps, weightDecay, momentum, async)
Napi::Value RmspropStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array p = ArgFloat32(info, 0, "param");
  Napi::Float32Array g = ArgFloat32(info, 1, "grad");
  Napi::Float32Array sq = ArgFloat32(info, 2, "squareAvg");
  Napi::Float32Array ga = ArgFloat32Opt(info, 3, "gradAvg");
  Napi::Float32Array buf = ArgFloat32Opt(info, 4, "momentumBuffer");
  RmspropHyper h;
  h.lr = static_cast<float>(ArgNumber(info, 5, "lr"));
  h.alpha = static_cast<float>(ArgNumber(info, 6, "alpha"));
  h.eps = static_cast<float>(ArgNumber(info, 7, "eps"));
  h.weight_decay = static_cast<float>(ArgNumber(info, 8, "weightDecay"));
  h.momentum = static_cast<float>(ArgNumber(info, 9, "momentum"));
  bool async = ArgBool(info, 10, "async");
  const int64_t n = static_cast<int64_t>(p.ElementLength());
  RequireLength(env, g.ElementLength(), n, "grad");
  RequireLength(env, sq.ElementLength(), n, "squareAvg");
  RequireState(env, ga, n, "gradAvg");
  if (h.momentum > 0.f && buf.IsEmpty()) Throw(env, ErrorCode::arg, "momentum needs a momentum buffer");
  RequireState(env, buf, n, "momentumBuffer");
  float *pp = p.Data(), *psq = sq.Data(), *pga = DataOrNull(ga), *pb = DataOrNull(buf);
  const float* pg = g.Data();
  std::vector<Napi::Value> pins{p, g, sq};
  PinIfSet(&pins, ga);
  PinIfSet(&pins, buf);
  return Dispatch(env, async, [=] { rmsprop_step(pp, pg, psq, pga, pb, n, h); }, pins);
}

// softmaxCrossEntropy(logits, targets, mask|null, dlogits|null, N, V, ignoreIndex, mean, async)
//   -> loss (number, or a Promise of it)
Napi::Value SoftmaxCrossEntropy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array logits = ArgFloat32(info, 0, "logits");
  Napi::Int32Array targets = ArgInt32Opt(info, 1, "targets");
  Napi::Float32Array mask = ArgFloat32Opt(info, 2, "mask");
  Napi::Float32Array dlogits = ArgFloat32Opt(info, 3, "dlogits");
  int64_t N = ArgInt(info, 4, "N", 0, kMaxDim);
  int64_t V = ArgInt(info, 5, "V", 1, int64_t(1) << 31);
  int32_t ignore = static_cast<int32_t>(ArgInt(info, 6, "ignoreIndex", INT32_MIN, INT32_MAX));
  bool mean = ArgBool(info, 7, "mean");
  bool async = ArgBool(info, 8, "async");
  if (targets.IsEmpty()) Throw(env, ErrorCode::arg, "targets must be an Int32Array");
  RequireLength(env, logits.ElementLength(), N * V, "logits");
  RequireLength(env, targets.ElementLength(), N, "targets");
  RequireState(env, mask, N, "mask");
  RequireState(env, dlogits, N * V, "dlogits");
  // A weighted row reads logits[r, target]: an out-of-range target would read outside the row.
  const int32_t* pt = targets.Data();
  const float* pmask = mask.IsEmpty() ? nullptr : mask.Data();
  for (int64_t r = 0; r < N; ++r) {
    if (pt[r] == ignore || (pmask && pmask[r] == 0.f)) continue;
    if (pt[r] < 0 || pt[r] >= V) {
      Throw(env, ErrorCode::arg, "target " + std::to_string(pt[r]) + " at row " + std::to_string(r) +
                                     " is outside [0, " + std::to_string(V) + ")");
    }
  }
  const float* pl = logits.Data();
  float* pd = DataOrNull(dlogits);
  auto out = std::make_shared<double>(0.0);
  std::vector<Napi::Value> pins{logits, targets};
  PinIfSet(&pins, mask);
  PinIfSet(&pins, dlogits);
  return NumberResult(
      env, async, [=] { *out = softmax_cross_entropy(pd, pl, pt, pmask, N, V, ignore, mean); }, pins, out);
}

// mseLoss(y, target, dy|null, mean, async) -> loss
Napi::Value MseLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array y = ArgFloat32(info, 0, "input");
  Napi::Float32Array t = ArgFloat32(info, 1, "target");
  Napi::Float32Array dy = ArgFloat32Opt(info, 2, "dinput");
  bool mean = ArgBool(info, 3, "mean");
  bool async = ArgBool(info, 4, "async");
  const int64_t n = static_cast<int64_t>(y.ElementLength());
  RequireLength(env, t.ElementLength(), n, "target");
  RequireState(env, dy, n, "dinput");
  const float *py = y.Data(), *ptg = t.Data();
  float* pd = DataOrNull(dy);
  auto out = std::make_shared<double>(0.0);
  std::vector<Napi::Value> pins{y, t};
  PinIfSet(&pins, dy);
  return NumberResult(env, async, [=] { *out = mse(pd, py, ptg, n, mean); }, pins, out);
}

// An array of Float32Arrays unpacked into pointers and sizes (the arrays are pinned by the caller).
struct ArrayList {
  std::vector<float*> ptrs;
  std::vector<int64_t> sizes;
  std::vector<Napi::Value> pins;
};

ArrayList ArgArrayList(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsArray()) Throw(env, ErrorCode::arg, std::string(what) + " must be an array of Float32Array");
  Napi::Array arr = info[i].As<Napi::Array>();
  ArrayList out;
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr.Get(k);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      Throw(env, ErrorCode::dtype, std::string(what) + "[" + std::to_string(k) + "] must be a Float32Array");
    Napi::Float32Array a = v.As<Napi::Float32Array>();
    if (a.ElementLength() > 0 && a.Data() == nullptr)
      Throw(env, ErrorCode::arg, std::string(what) + "[" + std::to_string(k) + "] has a detached buffer");
    out.ptrs.push_back(a.Data());
    out.sizes.push_back(static_cast<int64_t>(a.ElementLength()));
    out.pins.push_back(a);
  }
  return out;
}

// sumSquares(arrays, async) -> Σ x² over all arrays (double accumulation)
Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  auto list = std::make_shared<ArrayList>(ArgArrayList(info, 0, "arrays"));
  bool async = ArgBool(info, 1, "async");
  auto out = std::make_shared<double>(0.0);
  return NumberResult(
      info.Env(), async,
      [list, out] {
        *out = sum_squares(list->ptrs.data(), list->sizes.data(), static_cast<int64_t>(list->ptrs.size()));
      },
      list->pins, out);
}

// scaleArrays(arrays, s, async): x *= s for every array
Napi::Value ScaleArrays(const Napi::CallbackInfo& info) {
  auto list = std::make_shared<ArrayList>(ArgArrayList(info, 0, "arrays"));
  float s = static_cast<float>(ArgNumber(info, 1, "scale"));
  bool async = ArgBool(info, 2, "async");
  return Dispatch(info.Env(), async,
                  [list, s] {
                    scale_inplace(list->ptrs.data(), list->sizes.data(), static_cast<int64_t>(list->ptrs.size()), s);
                  },
                  list->pins);
}

// clampArrays(arrays, lo, hi, async): x = min(max(x, lo), hi) for every array
Napi::Value ClampArrays(const Napi::CallbackInfo& info) {
  auto list = std::make_shared<ArrayList>(ArgArrayList(info, 0, "arrays"));
  float lo = static_cast<float>(ArgNumber(info, 1, "lo"));
  float hi = static_cast<float>(ArgNumber(info, 2, "hi"));
  bool async = ArgBool(info, 3, "async");
  return Dispatch(info.Env(), async,
                  [list, lo, hi] {
                    clamp_inplace(list->ptrs.data(), list->sizes.data(), static_cast<int64_t>(list->ptrs.size()), lo, hi);
                  },
                  list->pins);
}

}  // namespace

void RegisterTrainOps(Napi::Env env, Napi::Object exports) {
  exports.Set("sgdStep", Napi::Function::New<Guarded<SgdStep>>(env, "sgdStep"));
  exports.Set("adamStep", Napi::Function::New<Guarded<AdamStep>>(env, "adamStep"));
  exports.Set("adagradStep", Napi::Function::New<Guarded<AdagradStep>>(env, "adagradStep"));
  exports.Set("rmspropStep", Napi::Function::New<Guarded<RmspropStep>>(env, "rmspropStep"));
  exports.Set("softmaxCrossEntropy", Napi::Function::New<Guarded<SoftmaxCrossEntropy>>(env, "softmaxCrossEntropy"));
  exports.Set("mseLoss", Napi::Function::New<Guarded<MseLoss>>(env, "mseLoss"));
  exports.Set("sumSquares", Napi::Function::New<Guarded<SumSquares>>(env, "sumSquares"));
  exports.Set("scaleArrays", Napi::Function::New<Guarded<ScaleArrays>>(env, "scaleArrays"));
  exports.Set("clampArrays", Napi::Function::New<Guarded<ClampArrays>>(env, "clampArrays"));
}

RNNKIT_REGISTER_OPS(RegisterTrainOps);

}  // namespace napi
}  // namespace rnnkit
