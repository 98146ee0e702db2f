// Bindings of the lib/nn kernels on CUDA device buffers (cuda/cuda_nn.h): the twins of nn_ops.cc
// with DeviceBuffers for the float arrays. Embedding ids are a host Int32Array (checked here and
// uploaded by the call) or a DeviceBuffer of int32 (an IndexTensor's, checked in lib/; no copy).
// Checked before any pointer is used: buffer kinds, sizes, one device, and the aliasing the
// kernels cannot take (a reduction's or a gather's output over its input, an output over the
// ids). Jobs hold shared references to every allocation they touch.
#include <memory>
#include <string>

#include "async.h"
#include "common.h"
#include "cuda_nn.h"
#include "device_buffer.h"

namespace rnnkit {
namespace napi {
namespace {

Activation ArgActivation(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<Activation>(ArgInt(info, i, "activation", 0, 2));
}

int64_t FloatsIn(const Alloc& a) { return static_cast<int64_t>(a->bytes / sizeof(float)); }

// cudaNnActivationForward(kind, x, y, async)
Napi::Value ActivationForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Activation f = ArgActivation(info, 0);
  Alloc x = ArgDevice(info, 1, "x");
  Alloc y = ArgDevice(info, 2, "y");
  bool async = ArgBool(info, 3, "async");
  const int64_t n = FloatsIn(x);
  RequireFloats(env, y, n, "y");
  RequireSameDevice(env, {x, y});
  return Dispatch(env, async, [=] { gpu::nn_activation_forward(x->device, Floats(y), Floats(x), n, f); }, {});
}

// cudaNnActivationBackward(kind, dy, y, dx, async)
Napi::Value ActivationBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Activation f = ArgActivation(info, 0);
  Alloc dy = ArgDevice(info, 1, "dy");
  Alloc y = ArgDevice(info, 2, "y");
  Alloc dx = ArgDevice(info, 3, "dx");
  bool async = ArgBool(info, 4, "async");
  const int64_t n = FloatsIn(dy);
  RequireFloats(env, y, n, "y");
  RequireFloats(env, dx, n, "dx");
  RequireSameDevice(env, {dy, y, dx});
  return Dispatch(env, async,
                  [=] { gpu::nn_activation_backward(dy->device, Floats(dx), Floats(dy), Floats(y), n, f); }, {});
}

// cudaNnBroadcastBinary(op 0 add | 1 mul, a, b, out, rows, m, async)
Napi::Value BroadcastBinary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool mul = ArgInt(info, 0, "op", 0, 1) == 1;
  Alloc a = ArgDevice(info, 1, "a");
  Alloc b = ArgDevice(info, 2, "b");
  Alloc out = ArgDevice(info, 3, "out");
  const int64_t rows = Size(info, 4, "rows");
  const int64_t m = Size(info, 5, "m", 1);
  bool async = ArgBool(info, 6, "async");
  const int64_t n = Elements(env, rows, m);
  RequireFloats(env, a, n, "a");
  RequireFloats(env, b, m, "b");
  RequireFloats(env, out, n, "out");
  RequireSameDevice(env, {a, b, out});
  if (rows > 1) RequireDistinct(env, out, {b}, "out");
  return Dispatch(env, async,
                  [=] { gpu::nn_broadcast(out->device, mul, Floats(out), Floats(a), Floats(b), rows, m); }, {});
}

// cudaNnAffine(x, out, scale, shift, async): out = x·scale + shift
Napi::Value Affine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc x = ArgDevice(info, 0, "x");
  Alloc out = ArgDevice(info, 1, "out");
  const float scale = static_cast<float>(ArgNumber(info, 2, "scale"));
  const float shift = static_cast<float>(ArgNumber(info, 3, "shift"));
  bool async = ArgBool(info, 4, "async");
  const int64_t n = FloatsIn(x);
  RequireFloats(env, out, n, "out");
  RequireSameDevice(env, {x, out});
  return Dispatch(env, async, [=] { gpu::nn_affine(x->device, Floats(out), Floats(x), n, scale, shift); }, {});
}

// cudaNnAccumulate(y, x, async): y += x over x's length
Napi::Value Accumulate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc y = ArgDevice(info, 0, "y");
  Alloc x = ArgDevice(info, 1, "x");
  bool async = ArgBool(info, 2, "async");
  const int64_t n = FloatsIn(x);
  RequireFloats(env, y, n, "y");
  RequireSameDevice(env, {y, x});
  return Dispatch(env, async, [=] { gpu::nn_accumulate(y->device, Floats(y), Floats(x), n); }, {});
}

// cudaNnDropout(backward, input, output, p, seed, async): the same mask forward and backward
Napi::Value Dropout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArgBool(info, 0, "backward");
  Alloc in = ArgDevice(info, 1, "input");
  Alloc out = ArgDevice(info, 2, "output");
  const double p = ArgNumber(info, 3, "p");
  const uint64_t seed = static_cast<uint64_t>(ArgInt(info, 4, "seed", 0, (int64_t(1) << 53) - 1));
  bool async = ArgBool(info, 5, "async");
  if (!(p >= 0.0 && static_cast<float>(p) < 1.f)) Throw(env, ErrorCode::arg, "dropout p must be in [0, 1)");
  const int64_t n = FloatsIn(in);
  RequireFloats(env, out, n, "output");
  RequireSameDevice(env, {in, out});
  const float pf = static_cast<float>(p);
  return Dispatch(env, async, [=] { gpu::nn_dropout(in->device, Floats(out), Floats(in), n, pf, seed); }, {});
}

// cudaNnSumAxis(x, w|null, out, outer, len, inner, scale, accumulate, async)
Napi::Value SumAxis(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc x = ArgDevice(info, 0, "x");
  Alloc w = ArgDeviceOpt(info, 1, "w");
  Alloc out = ArgDevice(info, 2, "out");
  const int64_t outer = Size(info, 3, "outer"), len = Size(info, 4, "len"), inner = Size(info, 5, "inner");
  const double scale = ArgNumber(info, 6, "scale");
  const bool acc = ArgBool(info, 7, "accumulate");
  bool async = ArgBool(info, 8, "async");
  const int64_t n = Elements(env, outer, len, inner);
  RequireFloats(env, x, n, "x");
  RequireFloats(env, w, n, "w");
  RequireFloats(env, out, Elements(env, outer, inner), "out");
  RequireSameDevice(env, {x, w, out});
  RequireDistinct(env, out, {x, w}, "out");
  return Dispatch(env, async, [=] {
    gpu::nn_sum_axis(x->device, Floats(out), Floats(x), Floats(w), outer, len, inner, scale, acc);
  }, {});
}

// cudaNnBroadcastAxis(dy, dx, outer, len, inner, scale, async)
Napi::Value BroadcastAxis(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc dy = ArgDevice(info, 0, "dy");
  Alloc dx = ArgDevice(info, 1, "dx");
  const int64_t outer = Size(info, 2, "outer"), len = Size(info, 3, "len"), inner = Size(info, 4, "inner");
  const float scale = static_cast<float>(ArgNumber(info, 5, "scale"));
  bool async = ArgBool(info, 6, "async");
  RequireFloats(env, dy, Elements(env, outer, inner), "dy");
  RequireFloats(env, dx, Elements(env, outer, len, inner), "dx");
  RequireSameDevice(env, {dy, dx});
  RequireDistinct(env, dx, {dy}, "dx");
  return Dispatch(env, async,
                  [=] { gpu::nn_broadcast_axis(dy->device, Floats(dx), Floats(dy), outer, len, inner, scale); }, {});
}

// The ids of an embedding call (argument 1) for a table of V rows: host ids are checked here.
Ids ArgEmbeddingIds(const Napi::CallbackInfo& info, int64_t V) {
  Ids ids = ArgIds(info, 1, "ids");
  if (ids.host) RequireIdsBelow(info.Env(), *ids.host, V);
  return ids;
}

// cudaNnEmbeddingForward(weight, ids: Int32Array | DeviceBuffer, out, V, D, async)
Napi::Value EmbeddingForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc weight = ArgDevice(info, 0, "weight");
  Alloc out = ArgDevice(info, 2, "out");
  const int64_t V = ArgInt(info, 3, "V", 1, INT32_MAX), D = Size(info, 4, "D", 1);
  bool async = ArgBool(info, 5, "async");
  RequireFloats(env, weight, Elements(env, V, D), "weight");
  const Ids ids = ArgEmbeddingIds(info, V);
  const int64_t n = ids.count;
  RequireFloats(env, out, Elements(env, n, D), "out");
  RequireSameDevice(env, {weight, out, ids.device});
  RequireDistinct(env, out, {weight, ids.device}, "out");
  return Dispatch(env, async, [=] {
    Alloc keep;
    gpu::nn_embedding_gather(out->device, Floats(out), Floats(weight), IdsOnDevice(out->device, ids, keep), n, V, D);
  }, {});
}

// cudaNnEmbeddingBackward(dy, ids: Int32Array | DeviceBuffer, dweight, V, D, paddingIdx (-1: none), accumulate, async)
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc dy = ArgDevice(info, 0, "dy");
  Alloc dweight = ArgDevice(info, 2, "dweight");
  const int64_t V = ArgInt(info, 3, "V", 1, INT32_MAX), D = Size(info, 4, "D", 1);
  const int64_t padding = ArgInt(info, 5, "paddingIdx", -1, INT32_MAX);
  const bool acc = ArgBool(info, 6, "accumulate");
  bool async = ArgBool(info, 7, "async");
  RequireFloats(env, dweight, Elements(env, V, D), "dweight");
  const Ids ids = ArgEmbeddingIds(info, V);
  const int64_t n = ids.count;
  RequireFloats(env, dy, Elements(env, n, D), "dy");
  RequireSameDevice(env, {dy, dweight, ids.device});
  RequireDistinct(env, dweight, {dy, ids.device}, "dweight");
  return Dispatch(env, async, [=] {
    Alloc keep;
    gpu::nn_embedding_scatter_add(dy->device, Floats(dweight), Floats(dy), IdsOnDevice(dy->device, ids, keep), n, V, D,
                                  padding, acc);
  }, {});
}

// cudaNnCopyBlock(src, srcOffset, srcLd, dst, dstOffset, dstLd, rows, cols, async)
Napi::Value CopyBlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Alloc src = ArgDevice(info, 0, "src");
  const int64_t so = Size(info, 1, "srcOffset"), sld = Size(info, 2, "srcLd");
  Alloc dst = ArgDevice(info, 3, "dst");
  const int64_t dof = Size(info, 4, "dstOffset"), dld = Size(info, 5, "dstLd");
  const int64_t rows = Size(info, 6, "rows"), cols = Size(info, 7, "cols");
  bool async = ArgBool(info, 8, "async");
  const bool any = rows > 0 && cols > 0;
  if (any) {
    if (cols > sld || cols > dld) Throw(env, ErrorCode::shape, "copyBlock: cols exceed a leading dimension");
    RequireFloats(env, src, so + Elements(env, rows - 1, sld) + cols, "src");
    RequireFloats(env, dst, dof + Elements(env, rows - 1, dld) + cols, "dst");
  }
  RequireSameDevice(env, {src, dst});
  RequireDistinct(env, dst, {src}, "dst");
  return Dispatch(env, async, [=] {
    if (any) gpu::nn_copy_block(dst->device, Floats(dst) + dof, dld, Floats(src) + so, sld, rows, cols);
  }, {});
}

}  // namespace

void RegisterCudaNnOps(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaNnActivationForward", Napi::Function::New<Guarded<ActivationForward>>(env, "cudaNnActivationForward"));
  exports.Set("cudaNnActivationBackward", Napi::Function::New<Guarded<ActivationBackward>>(env, "cudaNnActivationBackward"));
  exports.Set("cudaNnBroadcastBinary", Napi::Function::New<Guarded<BroadcastBinary>>(env, "cudaNnBroadcastBinary"));
  exports.Set("cudaNnAffine", Napi::Function::New<Guarded<Affine>>(env, "cudaNnAffine"));
  exports.Set("cudaNnAccumulate", Napi::Function::New<Guarded<Accumulate>>(env, "cudaNnAccumulate"));
  exports.Set("cudaNnDropout", Napi::Function::New<Guarded<Dropout>>(env, "cudaNnDropout"));
  exports.Set("cudaNnSumAxis", Napi::Function::New<Guarded<SumAxis>>(env, "cudaNnSumAxis"));
  exports.Set("cudaNnBroadcastAxis", Napi::Function::New<Guarded<BroadcastAxis>>(env, "cudaNnBroadcastAxis"));
  exports.Set("cudaNnEmbeddingForward", Napi::Function::New<Guarded<EmbeddingForward>>(env, "cudaNnEmbeddingForward"));
  exports.Set("cudaNnEmbeddingBackward", Napi::Function::New<Guarded<EmbeddingBackward>>(env, "cudaNnEmbeddingBackward"));
  exports.Set("cudaNnCopyBlock", Napi::Function::New<Guarded<CopyBlock>>(env, "cudaNnCopyBlock"));
}

RNNKIT_REGISTER_OPS(RegisterCudaNnOps);

}  // namespace napi
}  // namespace rnnkit
