// The N-API side of a collectives addon (one per engine, the same file in each): a ProcessGroup
// whose collectives run in call order on a communication thread of its own, off the event loop
// and off libuv's worker pool (a collective waits on other processes; holding pool threads would
// starve every other async op). Completions come back through one thread-safe function. The
// typed arrays a collective reads or writes stay referenced until it has finished.
#include <napi.h>

#include <climits>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "collectives.h"
#include "common.h"
#include "dist_error.h"
#include "engine.h"

namespace rnnkit {
namespace dist {

namespace {

using napi::AddonData;
using napi::MakeError;

struct Job {
  std::function<void()> work;                      // on the communication thread; throws on failure
  std::function<Napi::Value(Napi::Env)> result;    // on the JavaScript thread; may be empty
  std::unique_ptr<Napi::Promise::Deferred> deferred;  // async jobs only
  std::vector<Napi::Reference<Napi::Value>> pins;
  const char* code = nullptr;                      // set when work failed
  std::string message;
  // A *Sync call waits on these.
  bool sync = false;
  bool done = false;
  std::mutex done_mutex;
  std::condition_variable done_cv;
};

void Complete(Napi::Env env, Napi::Function, void*, Job* job);
using Completion = Napi::TypedThreadSafeFunction<void, Job, Complete>;

// What the JavaScript object and the communication thread share; the thread holds a reference so
// it may outlive the object (an environment torn down while a collective is still waiting).
struct GroupState {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<Job*> queue;
  bool stop = false;
  bool running = false;
  GroupConfig config;
  std::unique_ptr<CheckedGroup> group;  // touched only on the communication thread
  Completion completion;
  std::thread thread;
  bool shut = false;  // JavaScript thread only
};

// Stops the communication thread once its queue is done. `wait`: join it (destroy() has run, so
// nothing is left that waits on other processes); otherwise, when a collective is still waiting
// (an environment torn down mid-call), let it finish on its own.
void Shut(GroupState& s, bool wait) {
  if (s.shut) return;
  s.shut = true;
  bool busy;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.stop = true;
    busy = s.running || !s.queue.empty();
  }
  s.wake.notify_one();
  if (wait || !busy) {
    s.thread.join();
  } else {
    s.completion.Abort();  // its late completions now return napi_closing
    s.thread.detach();
  }
}

void ShutAtExit(std::shared_ptr<GroupState>* state) {
  Shut(**state, false);
  delete state;
}

void RunJob(Job& job) {
  try {
    job.work();
  } catch (const DistError& e) {
    job.code = e.code();
    job.message = e.what();
  } catch (const std::bad_alloc&) {
    job.code = "ERR_RNNKIT_OOM";
    job.message = "out of host memory in a collective";
  } catch (const std::exception& e) {
    job.code = kDistCode;
    job.message = e.what();
  }
}

void ThreadMain(std::shared_ptr<GroupState> s) {
  for (;;) {
    Job* job;
    {
      std::unique_lock<std::mutex> lock(s->mutex);
      s->wake.wait(lock, [&] { return s->stop || !s->queue.empty(); });
      if (s->queue.empty()) break;
      job = s->queue.front();
      s->queue.pop_front();
      s->running = true;
    }
    RunJob(*job);
    if (job->sync) {
      std::lock_guard<std::mutex> lock(job->done_mutex);
      job->done = true;
      job->done_cv.notify_one();
    } else {
      // When the environment is gone this returns napi_closing: the job's references cannot be
      // released from this thread, so it leaks with the exiting environment.
      s->completion.BlockingCall(job);
    }
    std::lock_guard<std::mutex> lock(s->mutex);
    s->running = false;
  }
  // Without destroy() (an exiting environment): the engine goes without a farewell.
  s->group.reset();
  s->completion.Release();
}

// The connected group, on the communication thread (a call before connect() or after destroy()
// is an error, not a crash).
CheckedGroup& Connected(GroupState& s) {
  if (!s.group) throw DistError("the process group is not connected (connect() first) or has been destroyed");
  return *s.group;
}

Napi::Value Settle(Napi::Env env, Job& job) {
  if (job.code) throw Napi::Error(env, MakeError(env, job.code, job.message));
  return job.result ? job.result(env) : env.Undefined();
}

class ProcessGroup : public Napi::ObjectWrap<ProcessGroup> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ProcessGroup",
                       {InstanceMethod<&ProcessGroup::Connect>("connect"),
                        InstanceMethod<&ProcessGroup::AllReduce>("allReduce"),
                        InstanceMethod<&ProcessGroup::Broadcast>("broadcast"),
                        InstanceMethod<&ProcessGroup::AllGather>("allGather"),
                        InstanceMethod<&ProcessGroup::Barrier>("barrier"),
                        InstanceMethod<&ProcessGroup::Destroy>("destroy")});
  }

  explicit ProcessGroup(const Napi::CallbackInfo& info);
  ~ProcessGroup() override { Shut(*state_, false); }

  // Pending async jobs keep the event loop alive; an idle group does not. The group's last job
  // (destroy) stops its thread.
  void Finished(Napi::Env env) {
    if (--pending_ > 0) return;
    if (destroying_) Shut(*state_, true);
    else state_->completion.Unref(env);
  }

 private:
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value AllReduce(const Napi::CallbackInfo& info);
  Napi::Value Broadcast(const Napi::CallbackInfo& info);
  Napi::Value AllGather(const Napi::CallbackInfo& info);
  Napi::Value Barrier(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);

  template <typename Run>
  Napi::Value InPlace(const Napi::CallbackInfo& info, const char* param_name, int64_t max_param, Run run);
  // Queues `job` behind the earlier calls; returns a Promise, or waits and returns the result.
  Napi::Value Submit(Napi::Env env, std::unique_ptr<Job> job, bool sync);
  struct Span {
    float* data;
    size_t length;
  };
  // Argument i as the memory of a collective, referenced by `job`: a Float32Array for host
  // engines; { address: bigint, length, owner } (device memory, owner kept alive) for NCCL.
  Span Buffer(const Napi::CallbackInfo& info, size_t i, const char* what, Job& job);

  std::shared_ptr<GroupState> state_;
  int pending_ = 0;
  bool destroying_ = false;
};

void Complete(Napi::Env env, Napi::Function, void*, Job* job_ptr) {
  std::unique_ptr<Job> job(job_ptr);
  if (!env) return;
  Napi::HandleScope scope(env);
  ProcessGroup* owner = ProcessGroup::Unwrap(job->pins[0].Value().As<Napi::Object>());
  try {
    job->deferred->Resolve(Settle(env, *job));
  } catch (const Napi::Error& e) {
    job->deferred->Reject(e.Value());
  }
  owner->Finished(env);
}

ProcessGroup::ProcessGroup(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroup>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) napi::Throw(env, ErrorCode::arg, "ProcessGroup needs a config object");
  Napi::Object c = info[0].As<Napi::Object>();
  auto integer = [&](const char* key, int64_t lo, int64_t hi) {
    Napi::Value v = c.Get(key);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1e300;
    if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != static_cast<double>(static_cast<int64_t>(d)))
      napi::Throw(env, ErrorCode::arg, std::string("config.") + key + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return static_cast<int64_t>(d);
  };
  auto text = [&](const char* key) {
    Napi::Value v = c.Get(key);
    if (!v.IsString()) napi::Throw(env, ErrorCode::arg, std::string("config.") + key + " must be a string");
    return v.As<Napi::String>().Utf8Value();
  };
  state_ = std::make_shared<GroupState>();
  GroupConfig& g = state_->config;
  g.world_size = static_cast<int>(integer("worldSize", 1, 1 << 20));
  g.rank = static_cast<int>(integer("rank", 0, g.world_size - 1));
  g.local_rank = static_cast<int>(integer("localRank", 0, 1 << 20));
  g.timeout = std::chrono::milliseconds(integer("timeoutMs", 1, int64_t(1) << 40));
  g.init_kind = text("initKind");
  g.host = text("host");
  g.port = static_cast<int>(integer("port", 0, 65535));
  g.path = text("path");
  g.socket_interface = text("socketInterface");

  state_->completion = Completion::New(env, "rnnkit-dist", 0, 1);
  state_->completion.Unref(env);
  state_->thread = std::thread(ThreadMain, state_);
  env.AddCleanupHook(ShutAtExit, new std::shared_ptr<GroupState>(state_));
}

Napi::Value ProcessGroup::Submit(Napi::Env env, std::unique_ptr<Job> job, bool sync) {
  if (state_->shut || destroying_) napi::Throw(env, ErrorCode::arg, "the process group has been destroyed");
  job->pins.insert(job->pins.begin(), Napi::Reference<Napi::Value>::New(Value(), 1));
  job->sync = sync;
  Napi::Value promise;
  if (!sync) {
    job->deferred = std::make_unique<Napi::Promise::Deferred>(env);
    promise = job->deferred->Promise();
    if (pending_++ == 0) state_->completion.Ref(env);
  }
  Job* raw = job.get();
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->queue.push_back(job.release());
  }
  state_->wake.notify_one();
  if (!sync) return promise;
  std::unique_ptr<Job> owned(raw);
  {
    std::unique_lock<std::mutex> lock(raw->done_mutex);
    raw->done_cv.wait(lock, [&] { return raw->done; });
  }
  return Settle(env, *raw);
}

ProcessGroup::Span ProcessGroup::Buffer(const Napi::CallbackInfo& info, size_t i, const char* what, Job& job) {
  Napi::Env env = info.Env();
  if (!kEngineUsesDeviceMemory) {
    Napi::Float32Array a = napi::ArgFloat32(info, i, what);
    job.pins.push_back(Napi::Reference<Napi::Value>::New(a, 1));
    return Span{a.Data(), a.ElementLength()};
  }
  Napi::Value v = i < info.Length() ? info[i] : env.Undefined();
  if (!v.IsObject()) napi::Throw(env, ErrorCode::arg, std::string(what) + " must be { address, length, owner } of device memory");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value address = o.Get("address"), length = o.Get("length"), owner = o.Get("owner");
  if (!address.IsBigInt() || !length.IsNumber() || !owner.IsObject())
    napi::Throw(env, ErrorCode::arg, std::string(what) + " must be { address: bigint, length: number, owner: object }");
  bool lossless = false;
  uint64_t a = address.As<Napi::BigInt>().Uint64Value(&lossless);
  double n = length.As<Napi::Number>().DoubleValue();
  if (!lossless || a == 0 || !(n >= 0 && n <= 1099511627776.0) || n != static_cast<double>(static_cast<uint64_t>(n)))
    napi::Throw(env, ErrorCode::arg, std::string(what) + " has an invalid address or length");
  job.pins.push_back(Napi::Reference<Napi::Value>::New(owner, 1));
  return Span{reinterpret_cast<float*>(static_cast<uintptr_t>(a)), static_cast<size_t>(n)};
}

bool SyncFlag(const Napi::CallbackInfo& info, size_t i) { return napi::ArgBool(info, i, "sync"); }

// connect(sync) -> { rank, worldSize, description }
Napi::Value ProcessGroup::Connect(const Napi::CallbackInfo& info) {
  struct Joined {
    int rank = 0;
    int size = 0;
    std::string description;
  };
  auto joined = std::make_shared<Joined>();
  auto job = std::make_unique<Job>();
  std::shared_ptr<GroupState> s = state_;
  job->work = [s, joined] {
    if (s->group) throw DistError("connect() was called twice");
    s->group = std::make_unique<CheckedGroup>(CreateEngine(s->config));
    joined->rank = s->group->rank();
    joined->size = s->group->size();
    joined->description = s->group->description();
  };
  job->result = [joined](Napi::Env env) -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("rank", joined->rank);
    o.Set("worldSize", joined->size);
    o.Set("description", joined->description);
    return o;
  };
  return Submit(info.Env(), std::move(job), SyncFlag(info, 0));
}

// (data, an integer in [0, max_param], tag, sync): an in-place collective run(group, data, n, param, tag).
template <typename Run>
Napi::Value ProcessGroup::InPlace(const Napi::CallbackInfo& info, const char* param_name, int64_t max_param, Run run) {
  auto job = std::make_unique<Job>();
  Span data = Buffer(info, 0, "data", *job);
  int64_t param = napi::ArgInt(info, 1, param_name, 0, max_param);
  int32_t tag = static_cast<int32_t>(napi::ArgInt(info, 2, "tag", 0, INT32_MAX));
  std::shared_ptr<GroupState> s = state_;
  job->work = [s, data, param, tag, run] { run(Connected(*s), data.data, data.length, param, tag); };
  return Submit(info.Env(), std::move(job), SyncFlag(info, 3));
}

// allReduce(data, op: 0..3 (sum, avg, max, min), tag, sync)
Napi::Value ProcessGroup::AllReduce(const Napi::CallbackInfo& info) {
  return InPlace(info, "op", 3, [](CheckedGroup& g, float* p, size_t n, int64_t op, int32_t tag) {
    g.AllReduce(p, n, static_cast<ReduceOp>(op), tag);
  });
}

// broadcast(data, root, tag, sync)
Napi::Value ProcessGroup::Broadcast(const Napi::CallbackInfo& info) {
  return InPlace(info, "src", 1 << 20, [](CheckedGroup& g, float* p, size_t n, int64_t root, int32_t tag) {
    g.Broadcast(p, n, static_cast<int>(root), tag);
  });
}

// allGather(input, output of worldSize * input.length values, sync)
Napi::Value ProcessGroup::AllGather(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  Span in = Buffer(info, 0, "input", *job);
  Span out = Buffer(info, 1, "output", *job);
  size_t n = in.length;
  size_t n_out = out.length;
  const float* pin = in.data;
  float* pout = out.data;
  std::shared_ptr<GroupState> s = state_;
  job->work = [s, pin, pout, n, n_out] { Connected(*s).AllGather(pin, n, pout, n_out); };
  return Submit(info.Env(), std::move(job), SyncFlag(info, 2));
}

// barrier(sync)
Napi::Value ProcessGroup::Barrier(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  std::shared_ptr<GroupState> s = state_;
  job->work = [s] { Connected(*s).Barrier(); };
  return Submit(info.Env(), std::move(job), SyncFlag(info, 0));
}

// destroy(sync): after the calls before it; a farewell barrier when the group is healthy.
Napi::Value ProcessGroup::Destroy(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>();
  std::shared_ptr<GroupState> s = state_;
  job->work = [s] {
    if (s->group) s->group->Destroy();
    s->group.reset();
  };
  bool sync = SyncFlag(info, 0);
  Napi::Value r = Submit(info.Env(), std::move(job), sync);
  destroying_ = true;
  if (sync && pending_ == 0) Shut(*state_, true);
  return r;
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) napi::Throw(env, ErrorCode::arg, "init needs the RnnkitError class");
  env.GetInstanceData<AddonData>()->error_ctor = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

Napi::Value Version(const Napi::CallbackInfo& info) {
  try {
    return Napi::String::New(info.Env(), EngineVersion());
  } catch (const DistError& e) {
    throw Napi::Error(info.Env(), MakeError(info.Env(), e.code(), e.what()));
  }
}

void RegisterDist(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New<Init>(env, "init"));
  exports.Set("version", Napi::Function::New<Version>(env, "version"));
  exports.Set("ProcessGroup", ProcessGroup::Define(env));
}

// The module entry is the main addon's (native/napi/addon.cc): instance data, then this.
RNNKIT_REGISTER_OPS(RegisterDist);

}  // namespace

}  // namespace dist
}  // namespace rnnkit

