// The one parser of the recurrent calls, shared by the CPU binding (recurrent_ops.cc, buffers are
// Float32Arrays) and the CUDA one (cuda_recurrent_ops.cc, buffers are DeviceBuffers). A call is
// one object of named fields (lib/native.ts NativeRecurrentForward / NativeRecurrentBackward):
//   forward:  { config, T, B, batchFirst, x, hx, cx, seqLengths, weights, dropout, seed, y, hy, cy,
//               saved, async } (+ algorithm on CUDA)
//   backward: { config, T, B, batchFirst, x, hx, cx, seqLengths, weights, dropout, seed, y, saved,
//               dy, dhy, dcy, dx, dhx, dcx, dweights, accumulate, async }
// Unknown fields are refused; the config, T and B are read first, then every size the call implies
// comes from the kernel layer (recurrent_sizes, which checks its own formulas for overflow), then
// every buffer is checked against the exact float count it must hold (one rule for both flavors);
// cx / cy / dcy / dcx exist for LSTM only. Sequence lengths are copied on the JavaScript thread and
// range-checked, so JavaScript writing to the Int32Array while an async job runs cannot slip an
// unchecked value past the check.
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "recurrent.h"

namespace rnnkit {
namespace napi {

constexpr int64_t kMaxSteps = int64_t(1) << 31;  // T and B
constexpr int64_t kMaxSeed = (int64_t(1) << 53) - 1;

// Argument i as a RecurrentConfig ({ mode, inputSize, hiddenSize, numLayers, projSize,
// bidirectional, skipInput, peepholes, linearBeforeReset, cellClip }), validated.
RecurrentConfig ArgRecurrentConfig(const Napi::CallbackInfo& info, size_t i);
RecurrentConfig RecurrentConfigOf(Napi::Env env, Napi::Value v);

enum class RecurrentPass { forward, backward };

// The buffers of a recurrent call, in the order they are read.
enum RecurrentBuffer {
  kX, kHx, kCx, kWeights, kY, kHy, kCy, kSaved, kDy, kDhy, kDcy, kDx, kDhx, kDcx, kDweights, kBufferCount
};

struct RecurrentBufferSpec {
  RecurrentBuffer id;
  const char* name;
  bool optional;   // null / undefined allowed
  bool lstm_only;  // a cell state: refused for the other modes
  bool output;     // written by the call
};

// The buffer fields of a pass.
const std::vector<RecurrentBufferSpec>& RecurrentBuffers(RecurrentPass pass);
// The floats buffer `id` must hold exactly.
int64_t RecurrentBufferFloats(const RecurrentSizes& s, RecurrentBuffer id);

// The scalar fields of a call.
struct RecurrentCall {
  RecurrentPass pass;
  RecurrentConfig cfg;
  int64_t T = 0, B = 0;
  RecurrentSizes sizes;
  bool batch_first = false;
  float dropout = 0.f;
  uint64_t seed = 0;
  bool accumulate = false;  // backward
  bool async = false;
  std::shared_ptr<std::vector<int32_t>> lens;  // empty: every sequence has length T
  const int32_t* lengths() const { return lens->empty() ? nullptr : lens->data(); }
};

// Reads the scalar fields of info[0] (refusing unknown ones; `extra` are the flavor's own, e.g.
// "algorithm") and returns the object for the buffer fields.
ArgObject ReadRecurrentCall(const Napi::CallbackInfo& info, RecurrentPass pass,
                            const std::vector<const char*>& extra, RecurrentCall* call);

// ERR_RNNKIT_SHAPE unless a present buffer holds exactly `count` floats; `have_bytes` its size.
void RequireRecurrentFloats(Napi::Env env, uint64_t have_bytes, int64_t count, const char* what);

// A parsed call: the scalars and, per buffer, the flavor's handle. Flavor provides
//   using Handle;  static Handle Read(Napi::Env, Napi::Value, const char* what, bool optional);
//   static bool Present(const Handle&);  static uint64_t Bytes(const Handle&);
//   static float* Data(const Handle&);
template <class Flavor>
struct RecurrentArgs {
  RecurrentCall call;
  typename Flavor::Handle buf[kBufferCount];

  RecurrentArgs(const Napi::CallbackInfo& info, RecurrentPass pass, const std::vector<const char*>& extra = {})
      : fields(ReadRecurrentCall(info, pass, extra, &call)) {
    Napi::Env env = info.Env();
    for (const RecurrentBufferSpec& b : RecurrentBuffers(pass)) {
      buf[b.id] = Flavor::Read(env, fields.Get(b.name), b.name, b.optional);
      if (!Flavor::Present(buf[b.id])) continue;
      if (b.lstm_only && !call.sizes.lstm)
        Throw(env, ErrorCode::arg, std::string(b.name) + " applies to mode lstm only");
      RequireRecurrentFloats(env, Flavor::Bytes(buf[b.id]), RecurrentBufferFloats(call.sizes, b.id), b.name);
    }
  }

  // The pointer the kernel gets: null for an absent buffer and for one of zero floats (a training
  // forward whose saved size is 0 keeps nothing; T·B = 0 reads no x).
  float* ptr(RecurrentBuffer id) const {
    if (!Flavor::Present(buf[id]) || RecurrentBufferFloats(call.sizes, id) == 0) return nullptr;
    return Flavor::Data(buf[id]);
  }

  ArgObject fields;  // the call object, for the flavor's own fields
};

}  // namespace napi
}  // namespace rnnkit
