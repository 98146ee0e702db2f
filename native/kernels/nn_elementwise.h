// Elementwise kernels of the differentiable functions in lib/nn, forward and backward side by side.
// Every kernel writes its output with `=` (none reads it first) except `accumulate`, which adds
// into y. Outputs may alias an input of the same size (each element is read before it is written).
//
//   activation_forward   y = f(x): tanh, sigmoid 1/(1 + e^−x), relu max(x, 0) (NaN stays NaN)
//   activation_backward  dx = dy · f'(x), taken from the forward's output y:
//                        tanh 1 − y², sigmoid y·(1 − y), relu [y > 0]
//   broadcast_add / mul  out[r·m + j] = a[r·m + j] + b[j] (· b[j] for mul), r < rows, j < m: b
//                        repeats over the rows of a (rows = 1 when both have the same shape)
//   affine               out = x·scale + shift
//   accumulate           y += x
//   dropout_forward      y = x / (1 − p) where u ≥ p, else 0, with u = dropout_uniform(seed, 0, i)
//                        (dropout_hash.h); dropout_backward applies the same mask to dy, so no mask
//                        is stored between the two.
// tanh and sigmoid use the vectorized approximations of activations.h (a few ulp). Work of at
// least kElementwiseGrain elements is split over the compute pool (parallel.h).
#pragma once
#include <cstdint>

namespace rnnkit {

enum class Activation { tanh = 0, sigmoid = 1, relu = 2 };

void activation_forward(float* y, const float* x, int64_t n, Activation f);
void activation_backward(float* dx, const float* dy, const float* y, int64_t n, Activation f);

void broadcast_add(float* out, const float* a, const float* b, int64_t rows, int64_t m);
void broadcast_mul(float* out, const float* a, const float* b, int64_t rows, int64_t m);

void affine(float* out, const float* x, int64_t n, float scale, float shift);
void accumulate(float* y, const float* x, int64_t n);

// p in [0, 1).
void dropout_forward(float* y, const float* x, int64_t n, float p, uint64_t seed);
void dropout_backward(float* dx, const float* dy, int64_t n, float p, uint64_t seed);

}  // namespace rnnkit
