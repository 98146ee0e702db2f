// The kernels of lib/nn on the device (contract: cuda_nn.h), and fill (cuda_api.h). Elementwise kernels are grid-stride
// loops over the CPU's element formula with __f*_rn intrinsics (never fused into FMA). sum_axis
// keeps the CPU's summation order exactly: contiguous rows (inner = 1) as one thread per 8192-long
// chunk, then one thread per row adding its chunks in order; strided sums as one thread per output
// walking l in order. The scatter-add sorts the keys (id << 32 | position) on the device (a
// bitonic sort in scratch), so the positions of each id stand together in ascending order; the
// thread of a (run start, column) then adds that id's positions in that order (the CPU's order too).
#include <cmath>

#include "common.cuh"
#include "cuda_api.h"
#include "cuda_nn.h"
#include "dropout_hash.h"

namespace rnnkit {
namespace gpu {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 8192;  // nn_reduce.cc's unit of a long contiguous sum

__global__ void fill_kernel(float* dst, int64_t n, float value) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) dst[i] = value;
}

__global__ void activation_forward_kernel(float* y, const float* x, int64_t n, int f) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    const float v = x[i];
    float r;
    if (f == 0) r = tanhf(v);
    else if (f == 1) r = __fdiv_rn(1.f, __fadd_rn(1.f, expf(-v)));
    else r = isnan(v) ? v : v > 0.f ? v : 0.f;
    y[i] = r;
  }
}

__global__ void activation_backward_kernel(float* dx, const float* dy, const float* y, int64_t n, int f) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    const float g = dy[i], v = y[i];
    float r;
    if (f == 0) r = __fmul_rn(g, __fsub_rn(1.f, __fmul_rn(v, v)));
    else if (f == 1) r = __fmul_rn(g, __fmul_rn(v, __fsub_rn(1.f, v)));
    else r = v > 0.f ? g : 0.f;
    dx[i] = r;
  }
}

__global__ void broadcast_kernel(float* out, const float* a, const float* b, int64_t n, int64_t m, bool mul) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    const float bj = b[i % m];
    out[i] = mul ? __fmul_rn(a[i], bj) : __fadd_rn(a[i], bj);
  }
}

__global__ void affine_kernel(float* out, const float* x, int64_t n, float scale, float shift) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) out[i] = __fadd_rn(__fmul_rn(x[i], scale), shift);
}

__global__ void accumulate_kernel(float* y, const float* x, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) y[i] = __fadd_rn(y[i], x[i]);
}

__global__ void dropout_kernel(float* out, const float* in, int64_t n, float p, float scale, uint64_t seed) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    out[i] = dropout_uniform(seed, 0, static_cast<uint64_t>(i)) >= p ? __fmul_rn(in[i], scale) : 0.f;
  }
}

__device__ __forceinline__ float finish(float old, double sum, double scale, bool accumulate) {
  const double v = scale * sum;
  return static_cast<float>(accumulate ? static_cast<double>(old) + v : v);
}

// partial[o·chunks + c] = Σ of chunk c of row o (x·w when w is given), in order.
__global__ void row_chunks_kernel(double* partial, const float* x, const float* w, int64_t outer, int64_t len,
                                  int64_t chunks) {
  for (int64_t t = thread_index(); t < outer * chunks; t += thread_count()) {
    const int64_t o = t / chunks, begin = (t % chunks) * kChunk;
    const int64_t end = begin + kChunk < len ? begin + kChunk : len;
    const float* xr = x + o * len;
    const float* wr = w ? w + o * len : nullptr;
    double acc = 0.0;
    if (wr) {
      for (int64_t k = begin; k < end; ++k) acc += static_cast<double>(xr[k]) * static_cast<double>(wr[k]);
    } else {
      for (int64_t k = begin; k < end; ++k) acc += static_cast<double>(xr[k]);
    }
    partial[t] = acc;
  }
}

__global__ void row_finish_kernel(float* out, const double* partial, int64_t outer, int64_t chunks, double scale,
                                  bool accumulate) {
  for (int64_t o = thread_index(); o < outer; o += thread_count()) {
    double acc = 0.0;
    for (int64_t c = 0; c < chunks; ++c) acc += partial[o * chunks + c];
    out[o] = finish(out[o], acc, scale, accumulate);
  }
}

__global__ void strided_sum_kernel(float* out, const float* x, const float* w, int64_t outer, int64_t len,
                                   int64_t inner, double scale, bool accumulate) {
  for (int64_t t = thread_index(); t < outer * inner; t += thread_count()) {
    const int64_t o = t / inner, i = t % inner;
    double acc = 0.0;
    for (int64_t l = 0; l < len; ++l) {
      const int64_t at = (o * len + l) * inner + i;
      acc += w ? static_cast<double>(x[at]) * static_cast<double>(w[at]) : static_cast<double>(x[at]);
    }
    out[t] = finish(out[t], acc, scale, accumulate);
  }
}

__global__ void empty_sum_kernel(float* out, int64_t n, double scale, bool accumulate) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) out[i] = finish(out[i], 0.0, scale, accumulate);
}

__global__ void broadcast_axis_kernel(float* dx, const float* dy, int64_t outer, int64_t len, int64_t inner,
                                      float scale) {
  const int64_t n = outer * len * inner;
  for (int64_t t = thread_index(); t < n; t += thread_count()) {
    const int64_t r = t / inner, i = t % inner;
    dx[t] = __fmul_rn(dy[(r / len) * inner + i], scale);
  }
}

// An id outside [0, V) (the caller checks them; this is the last line of defence) gives a NaN row.
__global__ void gather_kernel(float* out, const float* weight, const int32_t* ids, int64_t n, int64_t V, int64_t D) {
  for (int64_t t = thread_index(); t < n * D; t += thread_count()) {
    const int64_t k = t / D, c = t % D;
    const int64_t id = ids[k];
    out[t] = id >= 0 && id < V ? weight[id * D + c] : NAN;
  }
}

constexpr uint64_t kNoKey = ~uint64_t(0);

// keys[k] = id << 32 | k for the ids that get a gradient; the padding row, ids outside [0, V) and
// the slots past n (up to the power of two m) sort last as kNoKey.
__global__ void scatter_keys_kernel(uint64_t* keys, const int32_t* ids, int64_t n, int64_t m, int64_t V,
                                    int64_t padding_idx) {
  for (int64_t k = thread_index(); k < m; k += thread_count()) {
    const int64_t id = k < n ? ids[k] : -1;
    keys[k] = id >= 0 && id < V && id != padding_idx ? static_cast<uint64_t>(id) << 32 | static_cast<uint64_t>(k) : kNoKey;
  }
}

// One compare-exchange pass (j, size) of a bitonic sort of m keys (m a power of two), ascending.
__global__ void bitonic_pass_kernel(uint64_t* keys, int64_t m, int64_t j, int64_t size) {
  for (int64_t i = thread_index(); i < m; i += thread_count()) {
    const int64_t partner = i ^ j;
    if (partner <= i) continue;
    const uint64_t a = keys[i], b = keys[partner];
    if ((a > b) == ((i & size) == 0)) {
      keys[i] = b;
      keys[partner] = a;
    }
  }
}

// Thread (k, c) where sorted key k starts the run of an id adds column c of that id's positions,
// in ascending order, to the gradient row.
__global__ void scatter_add_kernel(float* dweight, const float* dy, const uint64_t* keys, int64_t n, int64_t D) {
  for (int64_t t = thread_index(); t < n * D; t += thread_count()) {
    const int64_t k = t / D, c = t % D;
    const uint64_t key = keys[k];
    const uint64_t id = key >> 32;
    if (key == kNoKey || (k > 0 && keys[k - 1] >> 32 == id)) continue;
    float* dst = dweight + static_cast<int64_t>(id) * D + c;
    float acc = *dst;
    for (int64_t j = k; j < n && keys[j] != kNoKey && keys[j] >> 32 == id; ++j) {
      acc = __fadd_rn(acc, dy[static_cast<int64_t>(keys[j] & 0xffffffffu) * D + c]);
    }
    *dst = acc;
  }
}

}  // namespace

void fill(int device, float* dst, int64_t n, float value) {
  launch_and_wait(device, n, kThreads, "fill", [&](unsigned grid, cudaStream_t st) { fill_kernel<<<grid, kThreads, 0, st>>>(dst, n, value); });
}

void nn_activation_forward(int device, float* y, const float* x, int64_t n, Activation f) {
  launch_and_wait(device, n, kThreads, "activation forward", [&](unsigned grid, cudaStream_t st) {
    activation_forward_kernel<<<grid, kThreads, 0, st>>>(y, x, n, static_cast<int>(f));
  });
}

void nn_activation_backward(int device, float* dx, const float* dy, const float* y, int64_t n, Activation f) {
  launch_and_wait(device, n, kThreads, "activation backward", [&](unsigned grid, cudaStream_t st) {
    activation_backward_kernel<<<grid, kThreads, 0, st>>>(dx, dy, y, n, static_cast<int>(f));
  });
}

void nn_broadcast(int device, bool mul, float* out, const float* a, const float* b, int64_t rows, int64_t m) {
  if (m <= 0) return;
  launch_and_wait(device, rows * m, kThreads, "broadcast", [&](unsigned grid, cudaStream_t st) {
    broadcast_kernel<<<grid, kThreads, 0, st>>>(out, a, b, rows * m, m, mul);
  });
}

void nn_affine(int device, float* out, const float* x, int64_t n, float scale, float shift) {
  launch_and_wait(device, n, kThreads, "affine", [&](unsigned grid, cudaStream_t st) { affine_kernel<<<grid, kThreads, 0, st>>>(out, x, n, scale, shift); });
}

void nn_accumulate(int device, float* y, const float* x, int64_t n) {
  launch_and_wait(device, n, kThreads, "accumulate", [&](unsigned grid, cudaStream_t st) { accumulate_kernel<<<grid, kThreads, 0, st>>>(y, x, n); });
}

void nn_dropout(int device, float* out, const float* in, int64_t n, float p, uint64_t seed) {
  const float scale = 1.f / (1.f - p);
  launch_and_wait(device, n, kThreads, "dropout", [&](unsigned grid, cudaStream_t st) {
    dropout_kernel<<<grid, kThreads, 0, st>>>(out, in, n, p, scale, seed);
  });
}

void nn_sum_axis(int device, float* out, const float* x, const float* w, int64_t outer, int64_t len, int64_t inner,
                 double scale, bool accumulate) {
  if (outer <= 0 || inner <= 0) return;
  cudaStream_t st = use_device(device);
  if (len <= 0) {
    empty_sum_kernel<<<wave_blocks(device, outer * inner, kThreads), kThreads, 0, st>>>(out, outer * inner, scale, accumulate);
  } else if (inner == 1) {
    const int64_t chunks = (len + kChunk - 1) / kChunk;
    Scratch partial(device, static_cast<size_t>(outer * chunks) * sizeof(double));
    double* pp = reinterpret_cast<double*>(partial.floats());
    row_chunks_kernel<<<wave_blocks(device, outer * chunks, kThreads), kThreads, 0, st>>>(pp, x, w, outer, len, chunks);
    check(cudaGetLastError(), "sum_axis chunks");
    row_finish_kernel<<<wave_blocks(device, outer, kThreads), kThreads, 0, st>>>(out, pp, outer, chunks, scale, accumulate);
    launched_and_done(st, "sum_axis");
    return;
  } else {
    strided_sum_kernel<<<wave_blocks(device, outer * inner, kThreads), kThreads, 0, st>>>(out, x, w, outer, len, inner,
                                                                                        scale, accumulate);
  }
  launched_and_done(st, "sum_axis");
}

void nn_broadcast_axis(int device, float* dx, const float* dy, int64_t outer, int64_t len, int64_t inner, float scale) {
  launch_and_wait(device, outer * len * inner, kThreads, "broadcast_axis", [&](unsigned grid, cudaStream_t st) {
    broadcast_axis_kernel<<<grid, kThreads, 0, st>>>(dx, dy, outer, len, inner, scale);
  });
}

void nn_embedding_gather(int device, float* out, const float* weight, const int32_t* ids, int64_t n, int64_t V,
                         int64_t D) {
  launch_and_wait(device, n * D, kThreads, "embedding gather", [&](unsigned grid, cudaStream_t st) {
    gather_kernel<<<grid, kThreads, 0, st>>>(out, weight, ids, n, V, D);
  });
}

void nn_embedding_scatter_add(int device, float* dweight, const float* dy, const int32_t* ids, int64_t n, int64_t V,
                              int64_t D, int64_t padding_idx, bool accumulate) {
  cudaStream_t st = use_device(device);
  if (!accumulate && V * D > 0) {
    check(cudaMemsetAsync(dweight, 0, static_cast<size_t>(V * D) * sizeof(float), st), "cudaMemsetAsync(dweight)");
  }
  if (n <= 0 || D <= 0) {
    launched_and_done(st, "embedding scatter-add");
    return;
  }
  if (n > int64_t(UINT32_MAX)) throw Error(ErrorCode::shape, "embedding scatter-add: more than 2^32 - 1 ids");
  int64_t m = 1;
  while (m < n) m <<= 1;
  Scratch scratch(device, static_cast<size_t>(m) * sizeof(uint64_t));
  uint64_t* keys = reinterpret_cast<uint64_t*>(scratch.floats());
  const unsigned grid = wave_blocks(device, m, kThreads);
  scatter_keys_kernel<<<grid, kThreads, 0, st>>>(keys, ids, n, m, V, padding_idx);
  for (int64_t size = 2; size <= m; size <<= 1) {
    for (int64_t j = size >> 1; j > 0; j >>= 1) bitonic_pass_kernel<<<grid, kThreads, 0, st>>>(keys, m, j, size);
  }
  check(cudaGetLastError(), "embedding scatter-add sort");
  scatter_add_kernel<<<wave_blocks(device, n * D, kThreads), kThreads, 0, st>>>(dweight, dy, keys, n, D);
  launched_and_done(st, "embedding scatter-add");
}

void nn_copy_block(int device, float* dst, int64_t dst_ld, const float* src, int64_t src_ld, int64_t rows,
                   int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  cudaStream_t st = use_device(device);
  check(cudaMemcpy2DAsync(dst, static_cast<size_t>(dst_ld) * 4, src, static_cast<size_t>(src_ld) * 4,
                          static_cast<size_t>(cols) * 4, static_cast<size_t>(rows), cudaMemcpyDeviceToDevice, st),
        "cudaMemcpy2DAsync(copy block)");
  check(cudaStreamSynchronize(st), "copy block");
}

}  // namespace gpu
}  // namespace rnnkit
