// The recurrent call parser (recurrent_args.h): the config object, the scalar fields, the sizes
// from the kernel layer, the sequence lengths copied and range-checked, the buffer table.
#include "recurrent_args.h"

#include <cmath>
#include <string>

namespace rnnkit {
namespace napi {
namespace {

constexpr int64_t kMaxFeature = int64_t(1) << 24;  // input, hidden and projection sizes
constexpr int64_t kMaxLayers = 1024;

Napi::Value Field(Napi::Env env, Napi::Object o, const char* name) {
  if (!o.Has(name)) Throw(env, ErrorCode::arg, std::string("config.") + name + " is missing");
  return o.Get(name);
}

int64_t IntField(Napi::Env env, Napi::Object o, const char* name, int64_t lo, int64_t hi) {
  Napi::Value v = Field(env, o, name);
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(lo) ||
      d > static_cast<double>(hi))
    Throw(env, ErrorCode::arg,
          std::string("config.") + name + " must be an integer in [" + std::to_string(lo) + ", " +
              std::to_string(hi) + "]");
  return static_cast<int64_t>(d);
}

bool BoolField(Napi::Env env, Napi::Object o, const char* name) {
  Napi::Value v = Field(env, o, name);
  if (!v.IsBoolean()) Throw(env, ErrorCode::arg, std::string("config.") + name + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

// Copies and checks sequence lengths (B values in 0..T); an empty vector means "all T".
std::shared_ptr<std::vector<int32_t>> SeqLengthsOf(Napi::Env env, const Napi::Int32Array& a, int64_t T,
                                                   int64_t B) {
  auto out = std::make_shared<std::vector<int32_t>>();
  if (a.IsEmpty()) return out;
  if (static_cast<int64_t>(a.ElementLength()) != B)
    Throw(env, ErrorCode::shape,
          "seqLengths holds " + std::to_string(a.ElementLength()) + " values, needs " + std::to_string(B));
  out->assign(a.Data(), a.Data() + B);
  for (int64_t b = 0; b < B; ++b)
    if ((*out)[b] < 0 || (*out)[b] > T)
      Throw(env, ErrorCode::arg,
            "seqLengths[" + std::to_string(b) + "] = " + std::to_string((*out)[b]) + " is outside 0.." +
                std::to_string(T));
  return out;
}

// Dropout probability in [0, 1), not so close to 1 that the float scale overflows.
float DropoutOf(Napi::Env env, Napi::Value v) {
  const double p = NumberOf(env, v, "dropout");
  if (!(p >= 0 && p < 1)) Throw(env, ErrorCode::arg, "dropout must be in [0, 1)");
  // p just below 1 rounds to 1.0f, where the 1/(1-p) scale would be infinite.
  if (static_cast<float>(p) >= 1.f) Throw(env, ErrorCode::arg, "dropout is too close to 1");
  return static_cast<float>(p);
}

}  // namespace

RecurrentConfig RecurrentConfigOf(Napi::Env env, Napi::Value v) {
  if (!v.IsObject() || v.IsArray()) Throw(env, ErrorCode::arg, "config must be an object");
  Napi::Object o = v.As<Napi::Object>();
  RecurrentConfig c;
  Napi::Value mode = Field(env, o, "mode");
  const std::string m = mode.IsString() ? mode.As<Napi::String>().Utf8Value() : std::string();
  if (m == "lstm") c.mode = RecurrentConfig::Mode::lstm;
  else if (m == "gru") c.mode = RecurrentConfig::Mode::gru;
  else if (m == "rnn_tanh") c.mode = RecurrentConfig::Mode::rnn_tanh;
  else if (m == "rnn_relu") c.mode = RecurrentConfig::Mode::rnn_relu;
  else Throw(env, ErrorCode::arg, "config.mode must be one of lstm, gru, rnn_tanh, rnn_relu");
  c.input_size = IntField(env, o, "inputSize", 1, kMaxFeature);
  c.hidden_size = IntField(env, o, "hiddenSize", 1, kMaxFeature);
  c.num_layers = IntField(env, o, "numLayers", 1, kMaxLayers);
  c.proj_size = IntField(env, o, "projSize", 0, kMaxFeature);
  c.bidirectional = BoolField(env, o, "bidirectional");
  c.skip_input = BoolField(env, o, "skipInput");
  c.peepholes = BoolField(env, o, "peepholes");
  c.linear_before_reset = BoolField(env, o, "linearBeforeReset");
  Napi::Value clip = Field(env, o, "cellClip");
  const double cc = clip.IsNumber() ? clip.As<Napi::Number>().DoubleValue() : NAN;
  if (!std::isfinite(cc) || cc < 0 || cc > 3.4e38)
    Throw(env, ErrorCode::arg, "config.cellClip must be a finite number >= 0");
  c.cell_clip = static_cast<float>(cc);
  // recurrent_validate throws rnnkit::Error(arg), which Guarded maps to ERR_RNNKIT_ARG.
  recurrent_validate(c);
  return c;
}

RecurrentConfig ArgRecurrentConfig(const Napi::CallbackInfo& info, size_t i) {
  return RecurrentConfigOf(info.Env(), i < info.Length() ? info[i] : info.Env().Undefined());
}

const std::vector<RecurrentBufferSpec>& RecurrentBuffers(RecurrentPass pass) {
  // id, name, optional, lstm_only, output
  static const std::vector<RecurrentBufferSpec> forward = {
      {kX, "x", false, false, false},       {kHx, "hx", true, false, false},
      {kCx, "cx", true, true, false},       {kWeights, "weights", false, false, false},
      {kY, "y", false, false, true},        {kHy, "hy", true, false, true},
      {kCy, "cy", true, true, true},        {kSaved, "saved", true, false, true},
  };
  static const std::vector<RecurrentBufferSpec> backward = {
      {kX, "x", false, false, false},       {kHx, "hx", true, false, false},
      {kCx, "cx", true, true, false},       {kWeights, "weights", false, false, false},
      {kY, "y", false, false, false},       {kSaved, "saved", false, false, false},
      {kDy, "dy", true, false, false},      {kDhy, "dhy", true, false, false},
      {kDcy, "dcy", true, true, false},     {kDx, "dx", false, false, true},
      {kDhx, "dhx", true, false, true},     {kDcx, "dcx", true, true, true},
      {kDweights, "dweights", false, false, true},
  };
  return pass == RecurrentPass::forward ? forward : backward;
}

int64_t RecurrentBufferFloats(const RecurrentSizes& s, RecurrentBuffer id) {
  switch (id) {
    case kX: case kDx: return s.x;
    case kY: case kDy: return s.y;
    case kHx: case kHy: case kDhy: case kDhx: return s.h_states;
    case kCx: case kCy: case kDcy: case kDcx: return s.c_states;
    case kWeights: case kDweights: return s.weights;
    case kSaved: return s.saved;
    default: return 0;
  }
}

ArgObject ReadRecurrentCall(const Napi::CallbackInfo& info, RecurrentPass pass,
                            const std::vector<const char*>& extra, RecurrentCall* call) {
  Napi::Env env = info.Env();
  std::vector<const char*> allowed = {"config", "T", "B", "batchFirst", "seqLengths", "dropout", "seed"};
  for (const RecurrentBufferSpec& b : RecurrentBuffers(pass)) allowed.push_back(b.name);
  if (pass == RecurrentPass::backward) allowed.push_back("accumulate");
  allowed.push_back("async");
  allowed.insert(allowed.end(), extra.begin(), extra.end());
  ArgObject o(info, 0, pass == RecurrentPass::forward ? "the forward call" : "the backward call", allowed);
  call->pass = pass;
  call->cfg = RecurrentConfigOf(env, o.Get("config"));
  call->T = IntOf(env, o.Get("T"), "T", 0, kMaxSteps);
  call->B = IntOf(env, o.Get("B"), "B", 0, kMaxSteps);
  call->batch_first = BoolOf(env, o.Get("batchFirst"), "batchFirst");
  // rnnkit::Error(shape) when a buffer the call implies would be too large to exist.
  call->sizes = recurrent_sizes(call->cfg, call->T, call->B);
  call->lens = SeqLengthsOf(env, Int32OptOf(env, o.Get("seqLengths"), "seqLengths"), call->T, call->B);
  call->dropout = DropoutOf(env, o.Get("dropout"));
  call->seed = static_cast<uint64_t>(IntOf(env, o.Get("seed"), "seed", 0, kMaxSeed));
  if (pass == RecurrentPass::backward) call->accumulate = BoolOf(env, o.Get("accumulate"), "accumulate");
  call->async = BoolOf(env, o.Get("async"), "async");
  return o;
}

void RequireRecurrentFloats(Napi::Env env, uint64_t have_bytes, int64_t count, const char* what) {
  if (have_bytes != static_cast<uint64_t>(count) * sizeof(float))
    Throw(env, ErrorCode::shape,
          std::string(what) + " holds " + std::to_string(have_bytes / sizeof(float)) + " floats, needs " +
              std::to_string(count));
}

}  // namespace napi
}  // namespace rnnkit
