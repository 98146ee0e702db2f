// The one pattern every op uses: arguments are checked and unpacked on the JavaScript thread, the
// heavy work runs either right away (the *Sync twin) or on a libuv worker behind a Promise. While
// the work is in flight, the JavaScript objects whose memory it touches are pinned by references,
// so a dropped or disposed tensor cannot be collected under it.
#pragma once
#include <napi.h>

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "common.h"
#include "live_objects.h"

namespace rnnkit {
namespace napi {

using Work = std::function<void()>;
// Builds the resolved value on the JavaScript thread after the work (may be empty: undefined).
using Result = std::function<Napi::Value(Napi::Env)>;

class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, Work work, Result result, const std::vector<Napi::Value>& pins);
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  Work work_;
  Result result_;
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> pins_;
  ErrorCode code_ = ErrorCode::internal;
  LiveMark<LiveKind::async_job> live_;
};

// Runs `work` synchronously (returning result(env), or undefined) or queues it and returns a
// Promise. `pins` are the objects (typed arrays, device buffers) the work reads or writes.
Napi::Value Dispatch(Napi::Env env, bool async, Work work, const std::vector<Napi::Value>& pins,
                     Result result = Result());

}  // namespace napi
}  // namespace rnnkit
