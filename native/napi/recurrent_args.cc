// Argument checks shared by the CPU and CUDA recurrent bindings (recurrent_ops.cc,
// cuda_recurrent_ops.cc): the config object, derived sizes bounded before any product is formed,
// sequence lengths copied on the JavaScript thread and range-checked, and the dropout value.
#include "recurrent_args.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace rnnkit {
namespace napi {
namespace {

constexpr int64_t kMaxFeature = int64_t(1) << 24;  // input, hidden and projection sizes
constexpr int64_t kMaxLayers = 1024;
constexpr double kMaxElements = 1125899906842624.0;  // 2^50: beyond any typed array

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

}  // namespace

RecurrentConfig ArgRecurrentConfig(const Napi::CallbackInfo& info, size_t i) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsObject() || info[i].IsArray())
    Throw(env, ErrorCode::arg, "config must be an object");
  Napi::Object o = info[i].As<Napi::Object>();
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


namespace {

int64_t Count(Napi::Env env, std::initializer_list<int64_t> factors, const char* what) {
  double p = 1;
  int64_t n = 1;
  for (int64_t f : factors) {
    p *= static_cast<double>(f);
    if (p > kMaxElements) Throw(env, ErrorCode::shape, std::string(what) + " would be too large");
    n *= f;
  }
  return n;
}

}  // namespace

RecurrentSizes RecurrentSizesOf(Napi::Env env, const RecurrentConfig& c, int64_t T, int64_t B) {
  RecurrentSizes s;
  s.T = T;
  s.B = B;
  s.I = c.input_size;
  s.H = c.hidden_size;
  s.R = c.proj_size > 0 ? c.proj_size : c.hidden_size;
  const int64_t D = c.bidirectional ? 2 : 1;
  s.LD = c.num_layers * D;
  s.DR = D * s.R;
  s.lstm = c.mode == RecurrentConfig::Mode::lstm;
  // Upper bounds of the kernel's own size formulas, so that they cannot overflow.
  const int64_t widest = std::max(std::max(s.I, s.DR), s.H);
  Count(env, {s.LD, 4 * s.H + 1, widest + s.R + s.H + 2}, "the packed weights");
  Count(env, {T, B, s.LD, 5 * s.H + s.R + 1}, "the saved activations");
  Count(env, {T, B, std::max(s.I, s.DR)}, "x or y");
  Count(env, {s.LD, B, std::max(s.H, s.R)}, "the states");
  s.weights = recurrent_weights_size(c);
  s.saved = recurrent_saved_size(c, T, B);
  return s;
}

// Copies and checks sequence lengths (B values in 0..T); an empty vector means "all T".
std::shared_ptr<std::vector<int32_t>> ArgSeqLengths(Napi::Env env, const Napi::Int32Array& a, int64_t T,
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
            "seqLengths[" + std::to_string(b) + "] = " + std::to_string((*out)[b]) +
                " is outside 0.." + std::to_string(T));
  return out;
}

float ArgDropout(const Napi::CallbackInfo& info, size_t i) {
  const double p = ArgNumber(info, i, "dropout");
  if (!(p >= 0 && p < 1)) Throw(info.Env(), ErrorCode::arg, "dropout must be in [0, 1)");
  // p just below 1 rounds to 1.0f, where the 1/(1-p) scale would be infinite.
  if (static_cast<float>(p) >= 1.f) Throw(info.Env(), ErrorCode::arg, "dropout is too close to 1");
  return static_cast<float>(p);
}

}  // namespace napi
}  // namespace rnnkit
