// Gradient clipping on the device (contract: cuda_train.h): Σ x² over several buffers as chunk
// partials in double (cuda/reduce.cuh, one launch per buffer into its own range of partials) and
// one block's fixed-order sum; clip_grad_norm then computes the factor on the device and the scale
// kernels read it from there, so the decision never travels through the host.
#include <cmath>
#include <vector>

#include "common.cuh"
#include "cuda_train.h"
#include "reduce.cuh"

namespace rnnkit {
namespace gpu {
namespace {

constexpr int kThreads = 256;

struct SquareTerm {
  const float* x;
  __device__ double operator()(int64_t i) const {
    const double v = static_cast<double>(x[i]);
    return v * v;
  }
};

// factor[0] = max_norm / (norm + 1e-6) rounded to float, apply[0] = whether to scale (the norm is
// finite and that factor below 1); also the norm itself as a double and a float.
__global__ void clip_factor_kernel(const double* sum_squares, double max_norm, double* norm, float* norm_f,
                                   float* factor, int* apply) {
  const double total = sqrt(*sum_squares);
  const double coef = max_norm / (total + 1e-6);
  *norm = total;
  if (norm_f) *norm_f = static_cast<float>(total);
  const bool clip = isfinite(total) && coef < 1.0;
  *apply = clip ? 1 : 0;
  *factor = clip ? static_cast<float>(coef) : 1.f;
}

__global__ void scale_by_kernel(float* x, int64_t n, const float* factor, const int* apply) {
  if (!*apply) return;
  const float f = *factor;
  for (int64_t i = thread_index(); i < n; i += thread_count()) x[i] = __fmul_rn(x[i], f);
}

__global__ void scale_kernel(float* x, int64_t n, float s) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) x[i] = __fmul_rn(x[i], s);
}

__global__ void clamp_kernel(float* x, int64_t n, float lo, float hi) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    const float v = x[i] < lo ? lo : x[i];  // NaN stays NaN, as on the CPU
    x[i] = v > hi ? hi : v;
  }
}

// Scratch for one clipping call: the partials of every buffer, then the sum, the factor and the
// apply flag.
struct ClipScratch {
  ClipScratch(int device, const int64_t* sizes, int64_t count)
      : offsets(static_cast<size_t>(count) + 1, 0), chunks(0),
        s(device, (static_cast<size_t>(total_chunks(sizes, count)) + 1) * sizeof(double) + 2 * sizeof(float)) {
    for (int64_t b = 0; b < count; ++b) offsets[b + 1] = offsets[b] + chunks_of(sizes[b]);
    chunks = offsets[count];
  }
  static int64_t total_chunks(const int64_t* sizes, int64_t count) {
    int64_t c = 0;
    for (int64_t b = 0; b < count; ++b) c += chunks_of(sizes[b]);
    return c;
  }
  double* partials() const { return reinterpret_cast<double*>(s.floats()); }
  double* sum() const { return partials() + chunks; }
  float* factor() const { return reinterpret_cast<float*>(partials() + chunks + 1); }
  int* apply() const { return reinterpret_cast<int*>(factor() + 1); }
  std::vector<int64_t> offsets;
  int64_t chunks;
  Scratch s;
};

void queue_sum_squares(int device, cudaStream_t st, const ClipScratch& cs, const float* const* xs,
                       const int64_t* sizes, int64_t count, double* out) {
  for (int64_t b = 0; b < count; ++b) {
    const int64_t chunks = chunks_of(sizes[b]);
    if (chunks == 0) continue;
    chunk_sums_kernel<<<wave_blocks(device, chunks, 1), kChunkThreads, 0, st>>>(sizes[b], cs.partials() + cs.offsets[b],
                                                                                SquareTerm{xs[b]});
    check(cudaGetLastError(), "sum of squares");
  }
  sum_partials_launch(st, cs.partials(), cs.chunks, 1.0, nullptr, out, nullptr);
}

}  // namespace

void sum_squares(int device, double* value, const float* const* xs, const int64_t* sizes, int64_t count) {
  cudaStream_t st = use_device(device);
  const ClipScratch cs(device, sizes, count);
  queue_sum_squares(device, st, cs, xs, sizes, count, value);
  check(cudaStreamSynchronize(st), "sum of squares");
}

void clip_grad_norm(int device, double* value, float* value_f, float* const* xs, const int64_t* sizes,
                    int64_t count, double max_norm) {
  cudaStream_t st = use_device(device);
  const ClipScratch cs(device, sizes, count);
  queue_sum_squares(device, st, cs, xs, sizes, count, cs.sum());
  clip_factor_kernel<<<1, 1, 0, st>>>(cs.sum(), max_norm, value, value_f, cs.factor(), cs.apply());
  check(cudaGetLastError(), "clip factor");
  for (int64_t b = 0; b < count; ++b) {
    if (sizes[b] <= 0) continue;
    scale_by_kernel<<<wave_blocks(device, sizes[b], kThreads), kThreads, 0, st>>>(xs[b], sizes[b], cs.factor(),
                                                                                  cs.apply());
    check(cudaGetLastError(), "clip scale");
  }
  check(cudaStreamSynchronize(st), "clip grad norm");
}

void scale(int device, float* const* xs, const int64_t* sizes, int64_t count, float s) {
  cudaStream_t st = use_device(device);
  for (int64_t b = 0; b < count; ++b) {
    if (sizes[b] <= 0) continue;
    scale_kernel<<<wave_blocks(device, sizes[b], kThreads), kThreads, 0, st>>>(xs[b], sizes[b], s);
    check(cudaGetLastError(), "scale");
  }
  check(cudaStreamSynchronize(st), "scale");
}

void clamp(int device, float* const* xs, const int64_t* sizes, int64_t count, float lo, float hi) {
  cudaStream_t st = use_device(device);
  for (int64_t b = 0; b < count; ++b) {
    if (sizes[b] <= 0) continue;
    clamp_kernel<<<wave_blocks(device, sizes[b], kThreads), kThreads, 0, st>>>(xs[b], sizes[b], lo, hi);
    check(cudaGetLastError(), "clamp");
  }
  check(cudaStreamSynchronize(st), "clamp");
}

}  // namespace gpu
}  // namespace rnnkit
