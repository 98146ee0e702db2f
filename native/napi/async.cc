#include "async.h"

#include <new>

namespace rnnkit {
namespace napi {

Job::Job(Napi::Env env, Work work, Result result, const std::vector<Napi::Value>& pins)
    : Napi::AsyncWorker(env, "rnnkit"),
      work_(std::move(work)),
      result_(std::move(result)),
      deferred_(Napi::Promise::Deferred::New(env)) {
  pins_.reserve(pins.size());
  for (const Napi::Value& v : pins) {
    if (v.IsObject()) pins_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }
}

void Job::Execute() {
  try {
    work_();
  } catch (const Error& e) {
    code_ = e.code();
    SetError(e.what());
  } catch (const std::bad_alloc&) {
    code_ = ErrorCode::oom;
    SetError("out of host memory");
  } catch (const std::exception& e) {
    code_ = ErrorCode::internal;
    SetError(e.what());
  }
}

void Job::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  try {
    deferred_.Resolve(result_ ? result_(env) : env.Undefined());
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  } catch (const Error& e) {
    deferred_.Reject(MakeError(env, e.code(), e.what()));
  }
}

void Job::OnError(const Napi::Error& e) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  deferred_.Reject(MakeError(env, code_, e.Message()));
}

Napi::Value Dispatch(Napi::Env env, bool async, Work work, const std::vector<Napi::Value>& pins,
                     Result result) {
  if (!async) {
    work();
    return result ? result(env) : env.Undefined();
  }
  Job* job = new Job(env, std::move(work), std::move(result), pins);
  Napi::Promise promise = job->Promise();
  job->Queue();
  return promise;
}

}  // namespace napi
}  // namespace rnnkit
