// Finite-value checks for the opt-in checkFinite mode: scans a Float32Array and reports the index
// of the first NaN or infinity (-1 when all values are finite).
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "parallel.h"

namespace rnnkit {
namespace napi {
namespace {

int64_t FirstNonFinite(const float* p, int64_t n) {
  const int64_t kChunk = int64_t(1) << 16;
  int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<int64_t> first(static_cast<size_t>(chunks), -1);
  parallel_for(chunks, 4, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      int64_t end = std::min(n, (c + 1) * kChunk);
      // Summing x - x is NaN exactly when some x is NaN or infinite, and vectorizes; the exact
      // index is searched only in a chunk that has one.
      float acc = 0.f;
      for (int64_t i = c * kChunk; i < end; ++i) acc += p[i] - p[i];
      if (acc == 0.f) continue;
      for (int64_t i = c * kChunk; i < end; ++i) {
        if (!std::isfinite(p[i])) {
          first[static_cast<size_t>(c)] = i;
          break;
        }
      }
    }
  });
  for (int64_t v : first)
    if (v >= 0) return v;
  return -1;
}

// firstNonFinite(Float32Array) -> index or -1
Napi::Value FirstNonFiniteBinding(const Napi::CallbackInfo& info) {
  Napi::Float32Array a = ArgFloat32(info, 0, "values");
  return Napi::Number::New(info.Env(), static_cast<double>(FirstNonFinite(a.Data(), static_cast<int64_t>(a.ElementLength()))));
}

}  // namespace

void RegisterCheckOps(Napi::Env env, Napi::Object exports) {
  exports.Set("firstNonFinite", Napi::Function::New<Guarded<FirstNonFiniteBinding>>(env, "firstNonFinite"));
}

RNNKIT_REGISTER_OPS(RegisterCheckOps);

}  // namespace napi
}  // namespace rnnkit
