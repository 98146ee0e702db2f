// Deterministic reductions for the training kernels (cuda/loss.cu, cuda/clip.cu): a fixed tree
// over the threads of a block and a fixed split of the work into blocks, so a result repeats bit
// for bit on a given device whatever else runs. No float atomics.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace rnnkit {
namespace gpu {

// The fold of v over the block by op(kept, incoming), a fixed tree, returned to every thread.
// kThreads (= blockDim.x) is a power of two; `shared` holds kThreads values; every thread of the
// block must call it.
template <int kThreads, class T, class Op>
__device__ __forceinline__ T block_reduce(T v, T* shared, Op op) {
  const int t = threadIdx.x;
  shared[t] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (t < s) shared[t] = op(shared[t], shared[t + s]);
    __syncthreads();
  }
  const T total = shared[0];
  __syncthreads();
  return total;
}

struct SumOp {
  __device__ double operator()(double kept, double incoming) const { return kept + incoming; }
};
// `a > b ? a : b` with a the incoming value: the CPU loop's comparison.
struct MaxOp {
  __device__ float operator()(float kept, float incoming) const { return incoming > kept ? incoming : kept; }
};

// Sum of v over the block (doubles), to every thread.
template <int kThreads>
__device__ __forceinline__ double block_sum(double v, double* shared) {
  return block_reduce<kThreads>(v, shared, SumOp());
}

// Maximum of v over the block, to every thread.
template <int kThreads>
__device__ __forceinline__ float block_max(float v, float* shared) {
  return block_reduce<kThreads>(v, shared, MaxOp());
}

// Per-chunk sums: chunk c covers elements [c·kChunk, (c + 1)·kChunk) of [0, n); block b sums
// chunks b, b + gridDim.x, ..., each thread over kChunk / kChunkThreads strided elements in order,
// then the tree, into partials[c]. `term(i)` is the double to add for element i (it may also
// write an output for i: every element is visited exactly once).
constexpr int kChunkThreads = 256;
constexpr int64_t kChunk = 8192;

inline int64_t chunks_of(int64_t n) { return (n + kChunk - 1) / kChunk; }

template <class Term>
__global__ void __launch_bounds__(kChunkThreads) chunk_sums_kernel(int64_t n, double* partials, Term term) {
  __shared__ double shared[kChunkThreads];
  for (int64_t c = blockIdx.x; c * kChunk < n; c += gridDim.x) {
    double acc = 0.0;
    for (int64_t k = threadIdx.x; k < kChunk; k += kChunkThreads) {
      const int64_t i = c * kChunk + k;
      if (i < n) acc += term(i);
    }
    const double s = block_sum<kChunkThreads>(acc, shared);
    if (threadIdx.x == 0) partials[c] = s;
  }
}

// *out = Σ partials[0..count) · m by one block (each thread sums a strided subset in order, then
// the tree), with m = scale, or m = 1 / *divisor when `divisor` (a device double) is given (0 when
// it is 0); *out_f (when not null) gets the same value rounded to float. Queued on `st`.
void sum_partials_launch(cudaStream_t st, const double* partials, int64_t count, double scale,
                         const double* divisor, double* out, float* out_f);

}  // namespace gpu
}  // namespace rnnkit
