// The buffer arguments of the RMSNorm bindings, the same for the CPU (rmsnorm_ops.cc, Float32Arrays)
// and the CUDA one (cuda_ops.cc, DeviceBuffers): argument k of a call is field k of its table.
// Each field says whether it may be null, whether the kernel writes it, and how many floats it
// holds in rows and cols; each binding reads and checks the buffers by its table, so the two
// flavors cannot disagree on what a call takes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rnnkit {
namespace napi {

enum class NormExtent { rows_cols, cols, rows };

struct NormField {
  const char* name;
  bool optional;
  bool output;
  NormExtent extent;
};

// The floats a field holds for `rows` rows of `cols` features.
inline int64_t NormFloats(NormExtent e, int64_t rows, int64_t cols) {
  return e == NormExtent::rows_cols ? rows * cols : e == NormExtent::cols ? cols : rows;
}

// rmsnormForward(x, gamma, beta | null, y, rrms, rows, cols, eps, async)
constexpr size_t kNormForwardBuffers = 5;
constexpr NormField kNormForward[kNormForwardBuffers] = {
    {"x", false, false, NormExtent::rows_cols},   {"gamma", false, false, NormExtent::cols},
    {"beta", true, false, NormExtent::cols},      {"y", false, true, NormExtent::rows_cols},
    {"rrms", false, true, NormExtent::rows},
};

// rmsnormBackward(dy, x, gamma, rrms, dx | null, dgamma | null, dbeta | null, rows, cols,
//                 accumulate, async)
constexpr size_t kNormBackwardBuffers = 7;
constexpr NormField kNormBackward[kNormBackwardBuffers] = {
    {"dy", false, false, NormExtent::rows_cols}, {"x", false, false, NormExtent::rows_cols},
    {"gamma", false, false, NormExtent::cols},   {"rrms", false, false, NormExtent::rows},
    {"dx", true, true, NormExtent::rows_cols},   {"dgamma", true, true, NormExtent::cols},
    {"dbeta", true, true, NormExtent::cols},
};

}  // namespace napi
}  // namespace rnnkit
