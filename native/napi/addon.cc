// Module entry: per-environment instance data (so worker_threads each get their own), then every
// op family registered with RNNKIT_REGISTER_OPS adds its functions.
#include <napi.h>

#include "common.h"

namespace rnnkit {
namespace napi {

Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<AddonData>(new AddonData());
  RegisterAll(env, exports);
  return exports;
}

}  // namespace napi
}  // namespace rnnkit

static Napi::Object InitRnnkit(Napi::Env env, Napi::Object exports) {
  return rnnkit::napi::InitAddon(env, exports);
}

NODE_API_MODULE(rnnkit, InitRnnkit)
