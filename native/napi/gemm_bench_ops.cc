// GEMM timing bindings for bench/families/gemm.js and bench/peers/gemm-peer.js; the harness is
// native/kernels/gemm_timing.h. Each returns { median, min, max } seconds per call.
//   benchSgemm(M, N, K, transA, transB, packed, repeats, minMs)
//   peerInfo(name) -> { soname, detail } or null when the library is not installed
//   benchPeerSgemm(name, M, N, K, transA, transB, threads, repeats, minMs)
#include <cstdint>
#include <string>

#include "common.h"
#include "gemm_timing.h"

namespace rnnkit {
namespace napi {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 16;

Napi::Value TimingObject(Napi::Env env, const GemmTiming& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("median", t.median);
  o.Set("min", t.min);
  o.Set("max", t.max);
  return o;
}

Napi::Value BenchSgemm(const Napi::CallbackInfo& info) {
  const GemmShape g = ArgGemmShape(info, 0, 1, kMaxDim);
  bool packed = ArgBool(info, 5, "packed");
  int repeats = static_cast<int>(ArgInt(info, 6, "repeats", 1, 1000));
  double min_ms = static_cast<double>(ArgInt(info, 7, "minMs", 0, 60000));
  return TimingObject(info.Env(), time_sgemm(g.M, g.N, g.K, g.ta, g.tb, packed, repeats, min_ms));
}

Napi::Value PeerInfo(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0, "peer");
  std::string soname, detail;
  if (!gemm_peer_info(name, &soname, &detail)) return info.Env().Null();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("soname", soname);
  o.Set("detail", detail);
  return o;
}

Napi::Value BenchPeerSgemm(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0, "peer");
  const GemmShape g = ArgGemmShape(info, 1, 1, kMaxDim);
  int threads = static_cast<int>(ArgInt(info, 6, "threads", 1, 1024));
  int repeats = static_cast<int>(ArgInt(info, 7, "repeats", 1, 1000));
  double min_ms = static_cast<double>(ArgInt(info, 8, "minMs", 0, 60000));
  return TimingObject(info.Env(), time_peer_sgemm(name, g.M, g.N, g.K, g.ta, g.tb, threads, repeats, min_ms));
}

}  // namespace

void RegisterGemmBenchOps(Napi::Env env, Napi::Object exports) {
  exports.Set("benchSgemm", Napi::Function::New<Guarded<BenchSgemm>>(env, "benchSgemm"));
  exports.Set("peerInfo", Napi::Function::New<Guarded<PeerInfo>>(env, "peerInfo"));
  exports.Set("benchPeerSgemm", Napi::Function::New<Guarded<BenchPeerSgemm>>(env, "benchPeerSgemm"));
}

RNNKIT_REGISTER_OPS(RegisterGemmBenchOps);

}  // namespace napi
}  // namespace rnnkit
