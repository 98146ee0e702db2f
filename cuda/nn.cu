// The kernels of lib/nn on the device (contract: cuda_nn.h), and fill (cuda_api.h). Elementwise kernels are grid-stride
// loops over the CPU's element formula with __f*_rn intrinsics (never fused into FMA). sum_axis
// keeps the CPU's summation order exactly: contiguous rows (inner = 1) as one thread per 8192-long
// chunk, then one thread per row adding its chunks in order; strided sums as one thread per output
// walking l in order. The scatter-add gives each (row, column) of the gradient to one thread, which
// adds that row's positions in ascending order (the CPU's order too), from a grouping of the ids
// made on the host.
#include <algorithm>
#include <cmath>
#include <vector>

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

__global__ void gather_kernel(float* out, const float* weight, const int32_t* ids, int64_t n, int64_t D) {
  for (int64_t t = thread_index(); t < n * D; t += thread_count()) {
    const int64_t k = t / D, c = t % D;
    out[t] = weight[static_cast<int64_t>(ids[k]) * D + c];
  }
}

// groups: [rows (u) | offsets (u + 1) | positions]; thread (r, c) adds its row's positions in order.
__global__ void scatter_add_kernel(float* dweight, const float* dy, const int32_t* groups, int64_t u, int64_t D) {
  const int32_t* rows = groups;
  const int32_t* offsets = groups + u;
  const int32_t* positions = groups + 2 * u + 1;
  for (int64_t t = thread_index(); t < u * D; t += thread_count()) {
    const int64_t r = t / D, c = t % D;
    float* dst = dweight + static_cast<int64_t>(rows[r]) * D + c;
    float acc = *dst;
    for (int32_t k = offsets[r]; k < offsets[r + 1]; ++k) acc = __fadd_rn(acc, dy[static_cast<int64_t>(positions[k]) * D + c]);
    *dst = acc;
  }
}

// Device copy of host int32 values for one call (counted like every upload).
class DeviceInts {
 public:
  DeviceInts(int device, const std::vector<int32_t>& host) : s_(device, std::max<size_t>(host.size(), 1) * 4) {
    if (!host.empty()) copy_to_device(device, s_.floats(), host.data(), host.size() * 4);
  }
  const int32_t* get() const { return reinterpret_cast<const int32_t*>(s_.floats()); }

 private:
  Scratch s_;
};

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

void nn_embedding_gather(int device, float* out, const float* weight, const int32_t* host_ids, int64_t n, int64_t D) {
  if (n <= 0 || D <= 0) return;
  const DeviceInts ids(device, std::vector<int32_t>(host_ids, host_ids + n));
  launch_and_wait(device, n * D, kThreads, "embedding gather", [&](unsigned grid, cudaStream_t st) {
    gather_kernel<<<grid, kThreads, 0, st>>>(out, weight, ids.get(), n, D);
  });
}

void nn_embedding_scatter_add(int device, float* dweight, const float* dy, const int32_t* host_ids, int64_t n,
                              int64_t V, int64_t D, int64_t padding_idx, bool accumulate) {
  cudaStream_t st = use_device(device);
  if (!accumulate && V * D > 0) {
    check(cudaMemsetAsync(dweight, 0, static_cast<size_t>(V * D) * sizeof(float), st), "cudaMemsetAsync(dweight)");
  }
  // Positions grouped by id, each group in ascending position (a counting sort on the host).
  std::vector<int32_t> count(static_cast<size_t>(V), 0);
  for (int64_t k = 0; k < n; ++k)
    if (host_ids[k] != padding_idx) ++count[host_ids[k]];
  std::vector<int32_t> rows, offsets{0};
  for (int64_t v = 0; v < V; ++v) {
    if (!count[v]) continue;
    rows.push_back(static_cast<int32_t>(v));
    offsets.push_back(offsets.back() + count[v]);
  }
  const int64_t u = static_cast<int64_t>(rows.size());
  std::vector<int32_t> slot(static_cast<size_t>(V), -1);
  for (int64_t r = 0; r < u; ++r) slot[rows[r]] = offsets[r];
  std::vector<int32_t> groups(rows);
  groups.insert(groups.end(), offsets.begin(), offsets.end());
  groups.resize(static_cast<size_t>(2 * u + 1 + offsets.back()));
  for (int64_t k = 0; k < n; ++k)
    if (host_ids[k] != padding_idx) groups[2 * u + 1 + slot[host_ids[k]]++] = static_cast<int32_t>(k);
  if (u == 0 || D <= 0) {
    launched_and_done(st, "embedding scatter-add");
    return;
  }
  const DeviceInts g(device, groups);
  scatter_add_kernel<<<wave_blocks(device, u * D, kThreads), kThreads, 0, st>>>(dweight, dy, g.get(), u, D);
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
