// Losses on the device: softmax cross-entropy and mean squared error with their gradients.
// Contract: cuda_train.h (formulas: native/kernels/train.h). Cross-entropy: the total weight Σ w_r
// by one block, then one block per row (max, Σ exp in double, log-sum-exp, the row loss and
// dlogits as the CPU computes them), then the row losses summed by one block; MSE: chunk partials
// (writing dy), then their sum. Every reduction has a fixed order (cuda/reduce.cuh).
#include <cmath>

#include "common.cuh"
#include "cuda_train.h"
#include "reduce.cuh"

namespace rnnkit {
namespace gpu {
namespace {

constexpr int kRowThreads = 256;
constexpr int kSumThreads = 1024;

__device__ __forceinline__ double row_weight(const int32_t* targets, const float* mask, int64_t r, int32_t ignore) {
  if (targets[r] == ignore) return 0.0;
  return mask ? static_cast<double>(mask[r]) : 1.0;
}

__global__ void __launch_bounds__(kSumThreads)
    ce_weight_sum_kernel(const int32_t* targets, const float* mask, int64_t N, int32_t ignore, double* wsum) {
  __shared__ double shared[kSumThreads];
  double s = 0.0;
  for (int64_t r = threadIdx.x; r < N; r += kSumThreads) s += row_weight(targets, mask, r, ignore);
  const double total = block_sum<kSumThreads>(s, shared);
  if (threadIdx.x == 0) *wsum = total;
}

// Row r: loss w·(logsumexp(x) − x[t]) into row_loss[r]; dlogits row = c·softmax(x) − c·onehot(t)
// with c = w (sum) or w / Σw (mean). Every branch below is uniform over the block (it depends on
// the row only), so the barriers inside block_max / block_sum are reached by all threads.
__global__ void __launch_bounds__(kRowThreads)
    ce_rows_kernel(float* dlogits, double* row_loss, const float* logits, const int32_t* targets, const float* mask,
                   int64_t N, int64_t V, int32_t ignore, bool mean, const double* wsum) {
  __shared__ double dsh[kRowThreads];
  __shared__ float fsh[kRowThreads];
  const int tid = threadIdx.x;
  const double total_weight = *wsum;
  for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
    float* d = dlogits ? dlogits + r * V : nullptr;
    const double w = row_weight(targets, mask, r, ignore);
    if (w == 0.0 || total_weight == 0.0) {
      if (d)
        for (int64_t j = tid; j < V; j += kRowThreads) d[j] = 0.f;
      if (tid == 0) row_loss[r] = 0.0;
      continue;
    }
    const float* x = logits + r * V;
    const int32_t t = targets[r];
    if (t < 0 || t >= V) {  // excluded by the binding; never read outside the row
      if (d)
        for (int64_t j = tid; j < V; j += kRowThreads) d[j] = NAN;
      if (tid == 0) row_loss[r] = NAN;
      continue;
    }
    float mx = tid < V ? x[tid] : -INFINITY;
    for (int64_t j = tid + kRowThreads; j < V; j += kRowThreads) mx = x[j] > mx ? x[j] : mx;
    mx = block_max<kRowThreads>(mx, fsh);
    double acc = 0.0;
    for (int64_t j = tid; j < V; j += kRowThreads) {
      const float e = expf(__fsub_rn(x[j], mx));
      if (d) d[j] = e;
      acc += e;
    }
    const double sum = block_sum<kRowThreads>(acc, dsh);
    const double lse = static_cast<double>(mx) + log(sum);
    if (tid == 0) row_loss[r] = w * (lse - static_cast<double>(x[t]));
    if (d) {
      const double c = (mean ? 1.0 / total_weight : 1.0) * w;
      const float f = static_cast<float>(c / sum);
      for (int64_t j = tid; j < V; j += kRowThreads) {
        const float v = __fmul_rn(d[j], f);
        d[j] = j == t ? static_cast<float>(static_cast<double>(v) - c) : v;
      }
    }
  }
}

struct MseTerm {
  float* dy;
  const float* y;
  const float* target;
  float c;
  __device__ double operator()(int64_t i) const {
    const double e = static_cast<double>(y[i]) - static_cast<double>(target[i]);
    if (dy) dy[i] = __fmul_rn(c, __fsub_rn(y[i], target[i]));
    return e * e;
  }
};

// Device scratch of `n` doubles for one call.
class Doubles {
 public:
  Doubles(int device, int64_t n) : s_(device, static_cast<size_t>(n > 0 ? n : 1) * sizeof(double)) {}
  double* get() const { return reinterpret_cast<double*>(s_.floats()); }

 private:
  Scratch s_;
};

}  // namespace

void softmax_cross_entropy(int device, double* value, float* value_f, float* dlogits, const float* logits,
                           const int32_t* targets, const float* mask, int64_t N, int64_t V, int32_t ignore_index,
                           bool mean) {
  cudaStream_t st = use_device(device);
  Doubles wsum(device, 1), row_loss(device, N);
  ce_weight_sum_kernel<<<1, kSumThreads, 0, st>>>(targets, mask, N, ignore_index, wsum.get());
  check(cudaGetLastError(), "cross-entropy weights");
  if (N > 0) {
    const unsigned grid = static_cast<unsigned>(std::min<int64_t>(N, int64_t(multiprocessors(device)) * 8));
    ce_rows_kernel<<<grid, kRowThreads, 0, st>>>(dlogits, row_loss.get(), logits, targets, mask, N, V, ignore_index,
                                                 mean, wsum.get());
    check(cudaGetLastError(), "cross-entropy rows");
  }
  sum_partials_launch(st, row_loss.get(), N, 1.0, mean ? wsum.get() : nullptr, value, value_f);
  check(cudaStreamSynchronize(st), "cross-entropy");
}

void mse(int device, double* value, float* value_f, float* dy, const float* y, const float* target, int64_t n,
         bool mean) {
  cudaStream_t st = use_device(device);
  const int64_t chunks = chunks_of(n);
  Doubles partials(device, chunks);
  const double scale = mean && n > 0 ? 1.0 / static_cast<double>(n) : 1.0;
  if (chunks > 0) {
    const MseTerm term{dy, y, target, static_cast<float>(2.0 * scale)};
    chunk_sums_kernel<<<wave_blocks(device, chunks, 1), kChunkThreads, 0, st>>>(n, partials.get(), term);
    check(cudaGetLastError(), "mse partials");
  }
  sum_partials_launch(st, partials.get(), chunks, scale, nullptr, value, value_f);
  check(cudaStreamSynchronize(st), "mse");
}

}  // namespace gpu
}  // namespace rnnkit
