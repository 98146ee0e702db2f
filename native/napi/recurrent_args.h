// Argument checks shared by the CPU and CUDA recurrent bindings.
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "common.h"
#include "recurrent.h"

namespace rnnkit {
namespace napi {

constexpr int64_t kMaxSteps = int64_t(1) << 31;  // T and B
constexpr int64_t kMaxSeed = (int64_t(1) << 53) - 1;

// Derived sizes of a validated config and T, B; every product bounded before it is formed.
struct RecurrentSizes {
  int64_t T, B, I, H, R, LD, DR, weights, saved;
  bool lstm;
};

// Argument i as a RecurrentConfig ({ mode, inputSize, hiddenSize, numLayers, projSize,
// bidirectional, skipInput, peepholes, linearBeforeReset, cellClip }), validated.
RecurrentConfig ArgRecurrentConfig(const Napi::CallbackInfo& info, size_t i);
// ERR_RNNKIT_SHAPE when a buffer the config implies would be too large to exist.
RecurrentSizes RecurrentSizesOf(Napi::Env env, const RecurrentConfig& c, int64_t T, int64_t B);
// Copies and checks sequence lengths (B values in 0..T); an empty vector means "all T".
std::shared_ptr<std::vector<int32_t>> ArgSeqLengths(Napi::Env env, const Napi::Int32Array& a, int64_t T, int64_t B);
// Dropout probability in [0, 1), not so close to 1 that the float scale overflows.
float ArgDropout(const Napi::CallbackInfo& info, size_t i);

}  // namespace napi
}  // namespace rnnkit
