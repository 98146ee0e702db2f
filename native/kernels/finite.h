// Finite-value scan for the opt-in checkFinite mode (binding: native/napi/check_ops.cc).
#pragma once
#include <cstdint>

namespace rnnkit {

// The index of the first NaN or infinity in p[0, n), or -1 when every value is finite. Runs on
// the compute pool (parallel.h).
int64_t first_non_finite(const float* p, int64_t n);

}  // namespace rnnkit
