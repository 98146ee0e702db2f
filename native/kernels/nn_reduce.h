// Reductions of the differentiable functions in lib/nn and the broadcasts that are their backward.
// A tensor is viewed as [outer, len, inner] around the reduced axis (outer = inner = 1 for a sum of
// everything).
//
//   sum_axis        out[o, i] = (accumulate ? out[o, i] : 0) + scale · Σ_l x[o, l, i] · w[o, l, i]
//                   (w null: 1). Each sum is taken in double over l in ascending order, or, for a
//                   long contiguous sum (inner = 1), over fixed chunks of l combined in order, and
//                   rounded to float once together with the accumulated value: the result does not
//                   depend on the thread count. With rows = len, inner = m and outer = 1 it is the
//                   column sum that bias gradients need.
//   broadcast_axis  dx[o, l, i] = scale · dy[o, i]  (`=`)
// out must not alias x or w.
#pragma once
#include <cstdint>

namespace rnnkit {

void sum_axis(float* out, const float* x, const float* w, int64_t outer, int64_t len, int64_t inner,
              double scale, bool accumulate);

void broadcast_axis(float* dx, const float* dy, int64_t outer, int64_t len, int64_t inner, float scale);

}  // namespace rnnkit
