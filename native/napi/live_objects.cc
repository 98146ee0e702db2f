#include "live_objects.h"

#include <atomic>

#include "common.h"

namespace rnnkit {
namespace napi {
namespace {

std::atomic<int64_t> counts[static_cast<int>(LiveKind::count)];

Napi::Value LiveObjectsOp(const Napi::CallbackInfo& info) { return LiveObjects(info.Env()); }

}  // namespace

void live_add(LiveKind kind, int64_t delta) { counts[static_cast<int>(kind)].fetch_add(delta, std::memory_order_relaxed); }

Napi::Object LiveObjects(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  const auto get = [](LiveKind k) { return static_cast<double>(counts[static_cast<int>(k)].load(std::memory_order_relaxed)); };
  o.Set("deviceAllocations", Napi::Number::New(env, get(LiveKind::device_allocation)));
  o.Set("stepNets", Napi::Number::New(env, get(LiveKind::step_net)));
  o.Set("stepWorkspaces", Napi::Number::New(env, get(LiveKind::step_workspace)));
  o.Set("asyncJobs", Napi::Number::New(env, get(LiveKind::async_job)));
  return o;
}

void RegisterLiveObjectOps(Napi::Env env, Napi::Object exports) {
  exports.Set("liveObjects", Napi::Function::New<Guarded<LiveObjectsOp>>(env, "liveObjects"));
}

RNNKIT_REGISTER_OPS(RegisterLiveObjectOps);

}  // namespace napi
}  // namespace rnnkit
