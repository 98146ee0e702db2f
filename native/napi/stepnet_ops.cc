// Bindings of the step-net engine (native/kernels/stepnet.h). A compiled net and a forward's
// workspace travel to JavaScript as type-tagged externals holding shared_ptrs, so an async
// backward keeps its workspace alive even if JavaScript drops it. The spec object is read
// field by field with typed errors; structural checks are the compiler's.
#include <limits>
#include <memory>

#include "async.h"
#include "common.h"
#include "live_objects.h"
#include "stepnet.h"

namespace rnnkit {
namespace napi {
namespace {

using stepnet::Net;
using stepnet::Workspace;

constexpr napi_type_tag kNetTag = {0x6f1b2c7e5a3d4e11ULL, 0x9a2f0c4b7d1e6a53ULL};
constexpr napi_type_tag kWorkspaceTag = {0x2c8e4f1a9b7d3c65ULL, 0x51d0e7a3c9f2b846ULL};
constexpr int64_t kMaxDim = int64_t(1) << 31;

struct NetHolder {
  explicit NetHolder(std::shared_ptr<const Net> n) : net(std::move(n)) {}
  std::shared_ptr<const Net> net;
  LiveMark<LiveKind::step_net> live;
};
// Counts as a live workspace until release() drops it or the handle is collected.
struct WorkspaceHolder {
  explicit WorkspaceHolder(std::shared_ptr<Workspace> w) : ws(std::move(w)) { live_add(LiveKind::step_workspace, 1); }
  ~WorkspaceHolder() { drop(); }
  void drop() {
    if (ws) live_add(LiveKind::step_workspace, -1);
    ws.reset();
  }
  std::shared_ptr<Workspace> ws;
};

template <class H>
Napi::Value Wrap(Napi::Env env, H* holder, const napi_type_tag& tag) {
  auto ext = Napi::External<H>::New(env, holder, [](Napi::Env, H* h) { delete h; });
  ext.TypeTag(&tag);
  return ext;
}

template <class H>
H& Unwrap(const Napi::CallbackInfo& info, size_t i, const napi_type_tag& tag, const char* what) {
  if (i >= info.Length() || !info[i].IsExternal() || !info[i].As<Napi::External<H>>().CheckTypeTag(&tag)) {
    Throw(info.Env(), ErrorCode::arg, std::string(what) + " must be a step-net handle");
  }
  return *info[i].As<Napi::External<H>>().Data();
}

Napi::Value Field(Napi::Object o, const char* name) { return o.Get(name); }

std::string StrField(Napi::Env env, Napi::Object o, const char* name, const std::string& where) {
  Napi::Value v = Field(o, name);
  if (!v.IsString()) Throw(env, ErrorCode::arg, where + "." + name + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

int64_t IntField(Napi::Env env, Napi::Object o, const char* name, const std::string& where, int64_t fallback,
                 int64_t lo = -kMaxDim, int64_t hi = kMaxDim) {
  Napi::Value v = Field(o, name);
  if (v.IsUndefined()) return fallback;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : std::numeric_limits<double>::quiet_NaN();
  if (!(d >= lo && d <= hi) || d != static_cast<double>(static_cast<int64_t>(d))) {
    Throw(env, ErrorCode::arg, where + "." + name + " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return static_cast<int64_t>(d);
}

Napi::Array ArrField(Napi::Env env, Napi::Object o, const char* name, const std::string& where) {
  Napi::Value v = Field(o, name);
  if (v.IsUndefined()) return Napi::Array::New(env);
  if (!v.IsArray()) Throw(env, ErrorCode::arg, where + "." + name + " must be an array");
  return v.As<Napi::Array>();
}

Napi::Object ObjAt(Napi::Env env, Napi::Array a, uint32_t i, const std::string& where) {
  Napi::Value v = a.Get(i);
  if (!v.IsObject() || v.IsArray()) Throw(env, ErrorCode::arg, where + "[" + std::to_string(i) + "] must be an object");
  return v.As<Napi::Object>();
}

std::vector<std::string> Strings(Napi::Env env, Napi::Array a, const std::string& where) {
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value v = a.Get(i);
    if (!v.IsString()) Throw(env, ErrorCode::arg, where + "[" + std::to_string(i) + "] must be a string");
    out.push_back(v.As<Napi::String>().Utf8Value());
  }
  return out;
}

// Calls each(entry, where) for every object of the spec's array `name`, where = "spec.name[i]".
template <class Each>
void ForEntries(Napi::Env env, Napi::Object spec, const char* name, Each each) {
  const std::string list = std::string("spec.") + name;
  Napi::Array a = ArrField(env, spec, name, "spec");
  for (uint32_t i = 0; i < a.Length(); ++i) each(ObjAt(env, a, i, list), list + "[" + std::to_string(i) + "]");
}

// An array of integers in [lo, kMaxDim]; anything else throws `message` with `code`.
std::vector<int64_t> Integers(Napi::Env env, Napi::Array a, int64_t lo, ErrorCode code, const std::string& message) {
  std::vector<int64_t> out;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value d = a.Get(k);
    const double n = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : static_cast<double>(lo - 1);
    if (!(n >= static_cast<double>(lo) && n <= static_cast<double>(kMaxDim)) ||
        n != static_cast<double>(static_cast<int64_t>(n))) {
      Throw(env, code, message);
    }
    out.push_back(static_cast<int64_t>(n));
  }
  return out;
}

stepnet::NetSpec ReadSpec(Napi::Env env, Napi::Object o) {
  stepnet::NetSpec s;
  ForEntries(env, o, "inputs", [&](Napi::Object e, const std::string& w) {
    s.inputs.push_back({StrField(env, e, "name", w), IntField(env, e, "size", w, -1, 1)});
  });
  ForEntries(env, o, "states", [&](Napi::Object e, const std::string& w) {
    s.states.push_back({StrField(env, e, "name", w), IntField(env, e, "size", w, -1, 1),
                        IntField(env, e, "initSteps", w, 1, 1, 1 << 20)});
  });
  ForEntries(env, o, "params", [&](Napi::Object e, const std::string& w) {
    stepnet::ParamSpec p;
    p.name = StrField(env, e, "name", w);
    p.shape = Integers(env, ArrField(env, e, "shape", w), 1, ErrorCode::shape, w + ".shape must hold integer dimensions >= 1");
    s.params.push_back(p);
  });
  ForEntries(env, o, "links", [&](Napi::Object e, const std::string& w) {
    s.links.push_back({StrField(env, e, "internal", w), StrField(env, e, "external", w), IntField(env, e, "offset", w, 0),
                       IntField(env, e, "window", w, 1)});
  });
  ForEntries(env, o, "ops", [&](Napi::Object e, const std::string& w) {
    stepnet::OpSpec op;
    op.type = StrField(env, e, "type", w);
    op.inputs = Strings(env, ArrField(env, e, "inputs", w), w + ".inputs");
    op.outputs = Strings(env, ArrField(env, e, "outputs", w), w + ".outputs");
    op.axis = IntField(env, e, "axis", w, 1);
    op.start = IntField(env, e, "start", w, 0);
    op.end = IntField(env, e, "end", w, 0);
    op.sizes = Integers(env, ArrField(env, e, "sizes", w), 0, ErrorCode::arg,
                        w + ".sizes must hold integers in 0.." + std::to_string(kMaxDim));
    Napi::Value eps = Field(e, "eps");
    if (!eps.IsUndefined()) {
      const double v = eps.IsNumber() ? eps.As<Napi::Number>().DoubleValue() : -1;
      if (!(v >= 0 && v <= 3.4e38)) Throw(env, ErrorCode::arg, w + ".eps must be a finite number >= 0");
      op.eps = static_cast<float>(v);
    }
    Napi::Value lbr = Field(e, "linearBeforeReset");
    if (!lbr.IsUndefined()) {
      if (!lbr.IsBoolean()) Throw(env, ErrorCode::arg, w + ".linearBeforeReset must be a boolean");
      op.linear_before_reset = lbr.As<Napi::Boolean>().Value();
    }
    s.ops.push_back(op);
  });
  ForEntries(env, o, "aliases", [&](Napi::Object e, const std::string& w) {
    s.aliases.push_back({StrField(env, e, "src", w), StrField(env, e, "dst", w), IntField(env, e, "offset", w, 0)});
  });
  s.recompute = Strings(env, ArrField(env, o, "recompute", "spec"), "spec.recompute");
  if (!Field(o, "timestep").IsUndefined()) s.timestep = StrField(env, o, "timestep", "spec");
  return s;
}

// stepnetCompile(spec) -> handle
Napi::Value Compile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray()) Throw(env, ErrorCode::arg, "spec must be an object");
  auto net = stepnet::compile(ReadSpec(env, info[0].As<Napi::Object>()));
  return Wrap(env, new NetHolder(net), kNetTag);
}

// stepnetBlobs(handle) -> [{ name, kind, window, size, stored, hoisted }]
Napi::Value Blobs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Net& net = *Unwrap<NetHolder>(info, 0, kNetTag, "net").net;
  auto blobs = stepnet::blob_infos(net);
  Napi::Array out = Napi::Array::New(env, blobs.size());
  for (size_t i = 0; i < blobs.size(); ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", blobs[i].name);
    o.Set("kind", blobs[i].kind);
    o.Set("window", Napi::Number::New(env, static_cast<double>(blobs[i].window)));
    o.Set("size", Napi::Number::New(env, static_cast<double>(blobs[i].size)));
    o.Set("stored", blobs[i].stored);
    o.Set("hoisted", blobs[i].hoisted);
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

// stepnetAliasSlots(handle, T) -> number[]
Napi::Value AliasSlots(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Net& net = *Unwrap<NetHolder>(info, 0, kNetTag, "net").net;
  int64_t T = ArgInt(info, 1, "T", 1, kMaxDim);
  size_t n = stepnet::spec_of(net).aliases.size();
  Napi::Array out = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; ++i) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(stepnet::alias_slots(net, i, T))));
  return out;
}

// stepnetWorkspaceSize(handle, T, B) -> { forward, backward }: floats of working memory
Napi::Value WorkspaceSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Net& net = *Unwrap<NetHolder>(info, 0, kNetTag, "net").net;
  const int64_t T = ArgInt(info, 1, "T", 1, kMaxDim);
  const int64_t B = ArgInt(info, 2, "B", 1, kMaxDim);
  const stepnet::WorkspaceSize w = stepnet::workspace_size(net, T, B);
  Napi::Object o = Napi::Object::New(env);
  o.Set("forward", Napi::Number::New(env, w.forward));
  o.Set("backward", Napi::Number::New(env, w.backward));
  return o;
}

stepnet::Executor ArgExecutor(const Napi::CallbackInfo& info, size_t i) {
  std::string e = ArgString(info, i, "executor");
  if (e == "auto") return stepnet::Executor::automatic;
  if (e == "sequential") return stepnet::Executor::sequential;
  if (e == "wavefront") return stepnet::Executor::wavefront;
  Throw(info.Env(), ErrorCode::arg, "executor must be 'auto', 'sequential' or 'wavefront' (got '" + e + "')");
}

// stepnetExecutor(handle, executor) -> the one a call runs ('sequential' | 'wavefront')
Napi::Value ExecutorOf(const Napi::CallbackInfo& info) {
  const Net& net = *Unwrap<NetHolder>(info, 0, kNetTag, "net").net;
  auto e = stepnet::resolve_executor(net, ArgExecutor(info, 1));
  return Napi::String::New(info.Env(), e == stepnet::Executor::wavefront ? "wavefront" : "sequential");
}

// An array of Float32Array (or null where `nullable`), each checked to hold exactly lengths[i].
std::vector<Napi::Float32Array> ArrayList(const Napi::CallbackInfo& info, size_t i, const char* what,
                                          const std::vector<int64_t>& lengths, bool nullable) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsArray()) Throw(env, ErrorCode::arg, std::string(what) + " must be an array");
  Napi::Array a = info[i].As<Napi::Array>();
  if (a.Length() != lengths.size()) {
    Throw(env, ErrorCode::arg, std::string(what) + " must hold " + std::to_string(lengths.size()) + " entries");
  }
  std::vector<Napi::Float32Array> out;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value v = a.Get(k);
    std::string w = std::string(what) + "[" + std::to_string(k) + "]";
    if ((v.IsNull() || v.IsUndefined()) && nullable) {
      out.push_back(Napi::Float32Array());
      continue;
    }
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      Throw(env, ErrorCode::dtype, w + " must be a Float32Array");
    }
    Napi::Float32Array f = v.As<Napi::Float32Array>();
    if (static_cast<int64_t>(f.ElementLength()) != lengths[k]) {
      Throw(env, ErrorCode::shape, w + " must hold " + std::to_string(lengths[k]) + " floats, got " + std::to_string(f.ElementLength()));
    }
    out.push_back(f);
  }
  return out;
}

std::vector<int64_t> Ints(const Napi::CallbackInfo& info, size_t i, const char* what, size_t count, int64_t lo, int64_t hi) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsArray() || info[i].As<Napi::Array>().Length() != count) {
    Throw(env, ErrorCode::arg, std::string(what) + " must be an array of " + std::to_string(count) + " integers");
  }
  std::vector<int64_t> out;
  Napi::Array a = info[i].As<Napi::Array>();
  for (uint32_t k = 0; k < count; ++k) {
    Napi::Value v = a.Get(k);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1e300;
    if (!(d >= lo && d <= hi) || d != static_cast<double>(static_cast<int64_t>(d))) {
      Throw(env, ErrorCode::arg, std::string(what) + "[" + std::to_string(k) + "] must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
}

const float* DataOr(const Napi::Float32Array& a) { return a.IsEmpty() ? nullptr : a.Data(); }
float* MutOr(Napi::Float32Array& a) { return a.IsEmpty() ? nullptr : a.Data(); }

std::vector<int64_t> ParamLengths(const stepnet::NetSpec& s) {
  std::vector<int64_t> out;
  for (const auto& p : s.params) {
    int64_t n = 1;
    for (int64_t d : p.shape) n *= d;
    out.push_back(n);
  }
  return out;
}

int64_t InitLength(Napi::Env env, const stepnet::StateSpec& st, int rank, int64_t B) {
  return rank == 1 ? st.size : Elements(env, rank == 2 ? 1 : st.init_steps, B, st.size);
}

// stepnetForward(handle, T, B, inputs[], inputSteps[], inits[], initRanks[], params[],
//                seqLengths, aliasOut[], executor, async) -> workspace handle (or a Promise of it)
Napi::Value Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto net = Unwrap<NetHolder>(info, 0, kNetTag, "net").net;
  const auto& s = stepnet::spec_of(*net);
  stepnet::ForwardArgs a;
  a.T = ArgInt(info, 1, "T", 1, kMaxDim);
  a.B = ArgInt(info, 2, "B", 1, kMaxDim);
  a.input_steps = Ints(info, 4, "inputSteps", s.inputs.size(), 1, kMaxDim);
  std::vector<int64_t> in_len;
  for (size_t i = 0; i < s.inputs.size(); ++i) in_len.push_back(Elements(env, a.input_steps[i], a.B, s.inputs[i].size));
  auto inputs = ArrayList(info, 3, "inputs", in_len, false);
  std::vector<int64_t> ranks = Ints(info, 6, "initRanks", s.states.size(), 0, 3);
  std::vector<int64_t> init_len;
  for (size_t k = 0; k < s.states.size(); ++k) init_len.push_back(InitLength(env, s.states[k], static_cast<int>(ranks[k]), a.B));
  auto inits = ArrayList(info, 5, "inits", init_len, true);
  auto params = ArrayList(info, 7, "params", ParamLengths(s), false);
  Napi::Int32Array lens = ArgInt32Opt(info, 8, "seqLengths");
  if (!lens.IsEmpty()) RequireLength(env, lens.ElementLength(), a.B, "seqLengths");
  std::vector<int64_t> out_len;
  for (size_t i = 0; i < s.aliases.size(); ++i) {
    int64_t D = 0;
    for (const auto& st : s.states) if (st.name == s.aliases[i].src) D = st.size;
    out_len.push_back(Elements(env, stepnet::alias_slots(*net, i, a.T), a.B, D));
  }
  auto outs = ArrayList(info, 9, "aliasOut", out_len, false);
  a.executor = ArgExecutor(info, 10);
  bool async = ArgBool(info, 11, "async");
  std::vector<Napi::Value> pins;
  for (auto& v : inputs) { a.inputs.push_back(v.Data()); pins.push_back(v); }
  for (size_t k = 0; k < inits.size(); ++k) {
    a.inits.push_back(DataOr(inits[k]));
    a.init_ranks.push_back(inits[k].IsEmpty() ? 0 : static_cast<int>(ranks[k]));
    if (!inits[k].IsEmpty()) pins.push_back(inits[k]);
  }
  for (auto& v : params) { a.params.push_back(v.Data()); pins.push_back(v); }
  for (auto& v : outs) { a.alias_out.push_back(v.Data()); pins.push_back(v); }
  if (!lens.IsEmpty()) {
    a.seq_lengths = lens.Data();
    pins.push_back(lens);
  }
  auto result = std::make_shared<std::shared_ptr<Workspace>>();
  return Dispatch(env, async, [net, a, result] { *result = stepnet::forward(*net, a); }, pins,
                  [result](Napi::Env e) { return Wrap(e, new WorkspaceHolder(*result), kWorkspaceTag); });
}

// stepnetBackward(handle, workspace, inputs[], params[], aliasGrads[], dInputs[], dInits[],
//                 dParams[], executor, async)
Napi::Value Backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto net = Unwrap<NetHolder>(info, 0, kNetTag, "net").net;
  auto ws = Unwrap<WorkspaceHolder>(info, 1, kWorkspaceTag, "saved").ws;
  if (!ws) Throw(env, ErrorCode::disposed, "saved has been released");
  const auto& s = stepnet::spec_of(*net);
  const int64_t T = stepnet::workspace_steps(*ws), B = stepnet::workspace_batch(*ws);
  std::vector<int64_t> in_len;
  // The input lengths are those of the forward (kept in the workspace as element counts).
  Napi::Value inputs_v = info.Length() > 2 ? info[2] : env.Undefined();
  if (!inputs_v.IsArray()) Throw(env, ErrorCode::arg, "inputs must be an array");
  for (uint32_t k = 0; k < inputs_v.As<Napi::Array>().Length() && k < s.inputs.size(); ++k) {
    Napi::Value v = inputs_v.As<Napi::Array>().Get(k);
    in_len.push_back(v.IsTypedArray() ? static_cast<int64_t>(v.As<Napi::TypedArray>().ElementLength()) : -1);
  }
  for (size_t k = 0; k < s.inputs.size(); ++k) {
    if (k >= in_len.size() || in_len[k] % (B * s.inputs[k].size) != 0 || in_len[k] / (B * s.inputs[k].size) < T) {
      Throw(env, ErrorCode::shape, "inputs[" + std::to_string(k) + "] does not match the forward");
    }
  }
  auto inputs = ArrayList(info, 2, "inputs", in_len, false);
  auto params = ArrayList(info, 3, "params", ParamLengths(s), false);
  std::vector<int64_t> out_len;
  for (size_t i = 0; i < s.aliases.size(); ++i) {
    int64_t D = 0;
    for (const auto& st : s.states) if (st.name == s.aliases[i].src) D = st.size;
    out_len.push_back(stepnet::alias_slots(*net, i, T) * B * D);
  }
  auto grads = ArrayList(info, 4, "aliasGrads", out_len, true);
  auto d_inputs = ArrayList(info, 5, "dInputs", in_len, false);
  std::vector<int64_t> init_len;
  const auto& ranks = stepnet::workspace_init_ranks(*ws);
  for (size_t k = 0; k < s.states.size(); ++k) init_len.push_back(ranks[k] == 0 ? 0 : InitLength(env, s.states[k], ranks[k], B));
  auto d_inits = ArrayList(info, 6, "dInits", init_len, true);
  auto d_params = ArrayList(info, 7, "dParams", ParamLengths(s), false);
  stepnet::BackwardArgs a;
  a.executor = ArgExecutor(info, 8);
  bool async = ArgBool(info, 9, "async");
  std::vector<Napi::Value> pins;
  for (auto& v : inputs) { a.inputs.push_back(v.Data()); pins.push_back(v); }
  for (auto& v : params) { a.params.push_back(v.Data()); pins.push_back(v); }
  for (auto& v : grads) { a.alias_grads.push_back(DataOr(v)); if (!v.IsEmpty()) pins.push_back(v); }
  for (auto& v : d_inputs) { a.d_inputs.push_back(v.Data()); pins.push_back(v); }
  for (auto& v : d_inits) { a.d_inits.push_back(MutOr(v)); if (!v.IsEmpty()) pins.push_back(v); }
  for (auto& v : d_params) { a.d_params.push_back(v.Data()); pins.push_back(v); }
  return Dispatch(env, async, [net, ws, a] { stepnet::backward(*net, *ws, a); }, pins);
}

// stepnetFetch(handle, workspace, name, step, out)
Napi::Value Fetch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto net = Unwrap<NetHolder>(info, 0, kNetTag, "net").net;
  auto ws = Unwrap<WorkspaceHolder>(info, 1, kWorkspaceTag, "saved").ws;
  if (!ws) Throw(env, ErrorCode::disposed, "saved has been released");
  std::string name = ArgString(info, 2, "name");
  int64_t step = ArgInt(info, 3, "step", -kMaxDim, kMaxDim);
  Napi::Float32Array out = ArgFloat32(info, 4, "out");
  for (const auto& b : stepnet::blob_infos(*net)) {
    if (b.name == name) RequireLength(env, out.ElementLength(), b.window * stepnet::workspace_batch(*ws) * b.size, "out");
  }
  stepnet::fetch(*net, *ws, name, step, out.Data());
  return env.Undefined();
}

// stepnetRelease(workspace): frees the forward's buffers now.
Napi::Value Release(const Napi::CallbackInfo& info) {
  Unwrap<WorkspaceHolder>(info, 0, kWorkspaceTag, "saved").drop();
  return info.Env().Undefined();
}

}  // namespace

void RegisterStepnetOps(Napi::Env env, Napi::Object exports) {
  exports.Set("stepnetCompile", Napi::Function::New<Guarded<Compile>>(env, "stepnetCompile"));
  exports.Set("stepnetBlobs", Napi::Function::New<Guarded<Blobs>>(env, "stepnetBlobs"));
  exports.Set("stepnetWorkspaceSize", Napi::Function::New<Guarded<WorkspaceSize>>(env, "stepnetWorkspaceSize"));
  exports.Set("stepnetAliasSlots", Napi::Function::New<Guarded<AliasSlots>>(env, "stepnetAliasSlots"));
  exports.Set("stepnetExecutor", Napi::Function::New<Guarded<ExecutorOf>>(env, "stepnetExecutor"));
  exports.Set("stepnetForward", Napi::Function::New<Guarded<Forward>>(env, "stepnetForward"));
  exports.Set("stepnetBackward", Napi::Function::New<Guarded<Backward>>(env, "stepnetBackward"));
  exports.Set("stepnetFetch", Napi::Function::New<Guarded<Fetch>>(env, "stepnetFetch"));
  exports.Set("stepnetRelease", Napi::Function::New<Guarded<Release>>(env, "stepnetRelease"));
}

RNNKIT_REGISTER_OPS(RegisterStepnetOps);

}  // namespace napi
}  // namespace rnnkit
