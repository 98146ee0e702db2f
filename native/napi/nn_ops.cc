// Bindings of the lib/nn kernels (native/kernels/nn_elementwise.h, nn_reduce.h, gather.h): each
// unpacks Float32Arrays and sizes, checks that every array holds what the sizes say (and that ids
// are in range) before any pointer is used, and runs the kernel on the calling thread or, with
// `async` (always the last argument), on a libuv worker behind a Promise. Sizes are checked here
// only as far as memory safety needs; lib/nn checks shapes and options.
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "async.h"
#include "common.h"
#include "gather.h"
#include "nn_elementwise.h"
#include "nn_reduce.h"

namespace rnnkit {
namespace napi {
namespace {

Activation ArgActivation(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<Activation>(ArgInt(info, i, "activation", 0, 2));
}

// activationForward(kind, x, y, async)
Napi::Value ActivationForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Activation f = ArgActivation(info, 0);
  Napi::Float32Array x = ArgFloat32(info, 1, "x");
  Napi::Float32Array y = ArgFloat32(info, 2, "y");
  bool async = ArgBool(info, 3, "async");
  const int64_t n = static_cast<int64_t>(x.ElementLength());
  RequireLength(env, y.ElementLength(), n, "y");
  const float* px = x.Data();
  float* py = y.Data();
  return Dispatch(env, async, [=] { activation_forward(py, px, n, f); }, {x, y});
}

// activationBackward(kind, dy, y, dx, async)
Napi::Value ActivationBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Activation f = ArgActivation(info, 0);
  Napi::Float32Array dy = ArgFloat32(info, 1, "dy");
  Napi::Float32Array y = ArgFloat32(info, 2, "y");
  Napi::Float32Array dx = ArgFloat32(info, 3, "dx");
  bool async = ArgBool(info, 4, "async");
  const int64_t n = static_cast<int64_t>(dy.ElementLength());
  RequireLength(env, y.ElementLength(), n, "y");
  RequireLength(env, dx.ElementLength(), n, "dx");
  const float *pdy = dy.Data(), *py = y.Data();
  float* pdx = dx.Data();
  return Dispatch(env, async, [=] { activation_backward(pdx, pdy, py, n, f); }, {dy, y, dx});
}

// broadcastBinary(op 0 add | 1 mul, a, b, out, rows, m, async)
Napi::Value BroadcastBinary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool mul = ArgInt(info, 0, "op", 0, 1) == 1;
  Napi::Float32Array a = ArgFloat32(info, 1, "a");
  Napi::Float32Array b = ArgFloat32(info, 2, "b");
  Napi::Float32Array out = ArgFloat32(info, 3, "out");
  const int64_t rows = Size(info, 4, "rows");
  const int64_t m = Size(info, 5, "m", 1);
  bool async = ArgBool(info, 6, "async");
  const int64_t n = Elements(env, rows, m);
  RequireLength(env, a.ElementLength(), n, "a");
  RequireLength(env, b.ElementLength(), m, "b");
  RequireLength(env, out.ElementLength(), n, "out");
  const float *pa = a.Data(), *pb = b.Data();
  float* po = out.Data();
  return Dispatch(env, async, [=] {
    if (mul) broadcast_mul(po, pa, pb, rows, m);
    else broadcast_add(po, pa, pb, rows, m);
  }, {a, b, out});
}

// affine(x, out, scale, shift, async): out = x·scale + shift
Napi::Value Affine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array x = ArgFloat32(info, 0, "x");
  Napi::Float32Array out = ArgFloat32(info, 1, "out");
  const float scale = static_cast<float>(ArgNumber(info, 2, "scale"));
  const float shift = static_cast<float>(ArgNumber(info, 3, "shift"));
  bool async = ArgBool(info, 4, "async");
  const int64_t n = static_cast<int64_t>(x.ElementLength());
  RequireLength(env, out.ElementLength(), n, "out");
  const float* px = x.Data();
  float* po = out.Data();
  return Dispatch(env, async, [=] { affine(po, px, n, scale, shift); }, {x, out});
}

// accumulate(y, x, async): y += x over x's length
Napi::Value Accumulate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array y = ArgFloat32(info, 0, "y");
  Napi::Float32Array x = ArgFloat32(info, 1, "x");
  bool async = ArgBool(info, 2, "async");
  const int64_t n = static_cast<int64_t>(x.ElementLength());
  RequireLength(env, y.ElementLength(), n, "y");
  float* py = y.Data();
  const float* px = x.Data();
  return Dispatch(env, async, [=] { accumulate(py, px, n); }, {y, x});
}

// dropout(backward, input, output, p, seed, async): the forward on x, or the backward on dy
Napi::Value Dropout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool backward = ArgBool(info, 0, "backward");
  Napi::Float32Array in = ArgFloat32(info, 1, "input");
  Napi::Float32Array out = ArgFloat32(info, 2, "output");
  const double p = ArgNumber(info, 3, "p");
  const uint64_t seed = static_cast<uint64_t>(ArgInt(info, 4, "seed", 0, (int64_t(1) << 53) - 1));
  bool async = ArgBool(info, 5, "async");
  if (!(p >= 0.0 && static_cast<float>(p) < 1.f)) Throw(env, ErrorCode::arg, "dropout p must be in [0, 1)");
  const int64_t n = static_cast<int64_t>(in.ElementLength());
  RequireLength(env, out.ElementLength(), n, "output");
  const float* pi = in.Data();
  float* po = out.Data();
  const float pf = static_cast<float>(p);
  return Dispatch(env, async, [=] {
    if (backward) dropout_backward(po, pi, n, pf, seed);
    else dropout_forward(po, pi, n, pf, seed);
  }, {in, out});
}

// sumAxis(x, w|null, out, outer, len, inner, scale, accumulate, async)
Napi::Value SumAxis(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array x = ArgFloat32(info, 0, "x");
  Napi::Float32Array w = ArgFloat32Opt(info, 1, "w");
  Napi::Float32Array out = ArgFloat32(info, 2, "out");
  const int64_t outer = Size(info, 3, "outer"), len = Size(info, 4, "len"), inner = Size(info, 5, "inner");
  const double scale = ArgNumber(info, 6, "scale");
  const bool acc = ArgBool(info, 7, "accumulate");
  bool async = ArgBool(info, 8, "async");
  const int64_t n = Elements(env, outer, len, inner);
  RequireLength(env, x.ElementLength(), n, "x");
  if (!w.IsEmpty()) RequireLength(env, w.ElementLength(), n, "w");
  RequireLength(env, out.ElementLength(), Elements(env, outer, inner), "out");
  const float *px = x.Data(), *pw = w.IsEmpty() ? nullptr : w.Data();
  float* po = out.Data();
  std::vector<Napi::Value> pins{x, out};
  if (!w.IsEmpty()) pins.push_back(w);
  return Dispatch(env, async, [=] { sum_axis(po, px, pw, outer, len, inner, scale, acc); }, pins);
}

// broadcastAxis(dy, dx, outer, len, inner, scale, async)
Napi::Value BroadcastAxis(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array dy = ArgFloat32(info, 0, "dy");
  Napi::Float32Array dx = ArgFloat32(info, 1, "dx");
  const int64_t outer = Size(info, 2, "outer"), len = Size(info, 3, "len"), inner = Size(info, 4, "inner");
  const float scale = static_cast<float>(ArgNumber(info, 5, "scale"));
  bool async = ArgBool(info, 6, "async");
  RequireLength(env, dy.ElementLength(), Elements(env, outer, inner), "dy");
  RequireLength(env, dx.ElementLength(), Elements(env, outer, len, inner), "dx");
  const float* pdy = dy.Data();
  float* pdx = dx.Data();
  return Dispatch(env, async, [=] { broadcast_axis(pdx, pdy, outer, len, inner, scale); }, {dy, dx});
}

// The ids (argument `ids_at`, checked and copied), the table sizes V and D (arguments `at`,
// `at` + 1) and the [V, D] array they index (the weight, or its gradient), checked together.
struct EmbeddingArgs {
  int64_t V, D, n;
  std::shared_ptr<std::vector<int32_t>> ids;
};

EmbeddingArgs ArgEmbedding(const Napi::CallbackInfo& info, size_t ids_at, size_t at, Napi::Float32Array table,
                           const char* table_name) {
  Napi::Env env = info.Env();
  Napi::Int32Array ids = ArgInt32Opt(info, ids_at, "ids");
  const int64_t V = ArgInt(info, at, "V", 1, INT32_MAX), D = Size(info, at + 1, "D", 1);
  RequireLength(env, table.ElementLength(), Elements(env, V, D), table_name);
  auto list = CheckedIds(env, ids, V);
  return {V, D, static_cast<int64_t>(list->size()), list};
}

// embeddingForward(weight, ids, out, V, D, async)
Napi::Value EmbeddingForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array weight = ArgFloat32(info, 0, "weight");
  Napi::Float32Array out = ArgFloat32(info, 2, "out");
  EmbeddingArgs a = ArgEmbedding(info, 1, 3, weight, "weight");
  bool async = ArgBool(info, 5, "async");
  RequireLength(env, out.ElementLength(), Elements(env, a.n, a.D), "out");
  const float* pw = weight.Data();
  float* po = out.Data();
  return Dispatch(env, async, [=] { embedding_gather(po, pw, a.ids->data(), a.n, a.D); }, {weight, out});
}

// embeddingBackward(dy, ids, dweight, V, D, paddingIdx (-1: none), accumulate, async)
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array dy = ArgFloat32(info, 0, "dy");
  Napi::Float32Array dweight = ArgFloat32(info, 2, "dweight");
  EmbeddingArgs a = ArgEmbedding(info, 1, 3, dweight, "dweight");
  const int64_t padding = ArgInt(info, 5, "paddingIdx", -1, INT32_MAX);
  const bool acc = ArgBool(info, 6, "accumulate");
  bool async = ArgBool(info, 7, "async");
  RequireLength(env, dy.ElementLength(), Elements(env, a.n, a.D), "dy");
  const float* pdy = dy.Data();
  float* pdw = dweight.Data();
  return Dispatch(env, async, [=] { embedding_scatter_add(pdw, pdy, a.ids->data(), a.n, a.V, a.D, padding, acc); },
                  {dy, dweight});
}

// copyBlock(src, srcOffset, srcLd, dst, dstOffset, dstLd, rows, cols, async)
Napi::Value CopyBlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float32Array src = ArgFloat32(info, 0, "src");
  const int64_t so = Size(info, 1, "srcOffset"), sld = Size(info, 2, "srcLd");
  Napi::Float32Array dst = ArgFloat32(info, 3, "dst");
  const int64_t dof = Size(info, 4, "dstOffset"), dld = Size(info, 5, "dstLd");
  const int64_t rows = Size(info, 6, "rows"), cols = Size(info, 7, "cols");
  bool async = ArgBool(info, 8, "async");
  if (rows > 0 && cols > 0) {
    if (cols > sld || cols > dld) Throw(env, ErrorCode::shape, "copyBlock: cols exceed a leading dimension");
    RequireSpan(env, src.ElementLength(), so + Elements(env, rows - 1, sld) + cols, "src");
    RequireSpan(env, dst.ElementLength(), dof + Elements(env, rows - 1, dld) + cols, "dst");
  }
  const float* ps = src.Data() + (rows > 0 && cols > 0 ? so : 0);
  float* pd = dst.Data() + (rows > 0 && cols > 0 ? dof : 0);
  return Dispatch(env, async, [=] { copy_block(pd, dld, ps, sld, rows, cols); }, {src, dst});
}

}  // namespace

void RegisterNnOps(Napi::Env env, Napi::Object exports) {
  exports.Set("nnActivationForward", Napi::Function::New<Guarded<ActivationForward>>(env, "nnActivationForward"));
  exports.Set("nnActivationBackward", Napi::Function::New<Guarded<ActivationBackward>>(env, "nnActivationBackward"));
  exports.Set("nnBroadcastBinary", Napi::Function::New<Guarded<BroadcastBinary>>(env, "nnBroadcastBinary"));
  exports.Set("nnAffine", Napi::Function::New<Guarded<Affine>>(env, "nnAffine"));
  exports.Set("nnAccumulate", Napi::Function::New<Guarded<Accumulate>>(env, "nnAccumulate"));
  exports.Set("nnDropout", Napi::Function::New<Guarded<Dropout>>(env, "nnDropout"));
  exports.Set("nnSumAxis", Napi::Function::New<Guarded<SumAxis>>(env, "nnSumAxis"));
  exports.Set("nnBroadcastAxis", Napi::Function::New<Guarded<BroadcastAxis>>(env, "nnBroadcastAxis"));
  exports.Set("nnEmbeddingForward", Napi::Function::New<Guarded<EmbeddingForward>>(env, "nnEmbeddingForward"));
  exports.Set("nnEmbeddingBackward", Napi::Function::New<Guarded<EmbeddingBackward>>(env, "nnEmbeddingBackward"));
  exports.Set("nnCopyBlock", Napi::Function::New<Guarded<CopyBlock>>(env, "nnCopyBlock"));
}

RNNKIT_REGISTER_OPS(RegisterNnOps);

}  // namespace napi
}  // namespace rnnkit
