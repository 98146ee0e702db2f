// Counts of the native objects the addon holds on behalf of JavaScript, so that leak and soak
// tests can see every one of them freed: device allocations, compiled step nets, step-net
// workspaces held by a handle, and async jobs in flight. Process-wide (every worker thread's
// addon instance together); exposed as liveObjects() and backendInfo().liveObjects.
#pragma once
#include <napi.h>

#include <cstdint>

namespace rnnkit {
namespace napi {

enum class LiveKind { device_allocation, step_net, step_workspace, async_job, count };

void live_add(LiveKind kind, int64_t delta);

// A member that counts its owner as live from construction to destruction.
template <LiveKind K>
struct LiveMark {
  LiveMark() { live_add(K, 1); }
  LiveMark(const LiveMark&) { live_add(K, 1); }
  LiveMark& operator=(const LiveMark&) = default;
  ~LiveMark() { live_add(K, -1); }
};

// { deviceAllocations, stepNets, stepWorkspaces, asyncJobs }
Napi::Object LiveObjects(Napi::Env env);

}  // namespace napi
}  // namespace rnnkit
