// RMSNorm forward and backward on the device. Contract: cuda_api.h (= native/kernels/rmsnorm.h on
// device pointers): rrms = 1/sqrt(mean(x^2) + eps), y = x*rrms*gamma + beta; dx =
// rrms*(g - c*x) with g = dy*gamma, c = rrms^2 * sum(g*x) / cols; dgamma = sum_r dy*x*rrms,
// dbeta = sum_r dy; y, rrms, dx `=`, dgamma/dbeta `+=` when accumulating; rows or cols <= 0 do
// nothing (except that rows == 0 zeroes dgamma/dbeta when not accumulating).
//
// Memory-bound, so every path reads each input element from DRAM once:
// - register path (cols <= 32768): a group of `tpr` threads owns a row and keeps it in registers
//   between the reduction and the write; V packets per thread, a packet being a float4 when the
//   row is 16-byte aligned (P = 4) or one float (P = 1). Narrow rows pack several rows per block.
// - wide path (longer rows): one block per row, two sweeps; the second re-reads the row from L2.
// Row sums are warp butterflies (every lane ends with the same bits) plus a fixed-order sum over
// warps. dgamma/dbeta: the backward runs one wave of blocks, each looping over rows and keeping
// its columns' sums in registers (register path: a thread's columns never change) or in its own
// workspace row (wide path); a second kernel adds the per-block partials in a fixed order. No
// float atomics, so results repeat bit for bit on a given device.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>

#include "common.cuh"
#include "cuda_api.h"
#include "kernels.cuh"

namespace rnnkit {
namespace gpu {
namespace {

constexpr int kWideThreads = 512;

// Threads per block the register kernels are compiled for: they bound the registers per thread
// (65536 / threads), and rows that would need more threads take the wide path.
__host__ __device__ constexpr int forward_max_threads(int V) { return V <= 4 ? 1024 : 512; }
__host__ __device__ constexpr int backward_max_threads(int V) { return V <= 2 ? 1024 : V == 4 ? 512 : 256; }

template <int P>
__device__ __forceinline__ void load_packet(const float* base, int p, float* out) {
  if (P == 4) {
    const float4 q = reinterpret_cast<const float4*>(base)[p];
    out[0] = q.x;
    out[1] = q.y;
    out[2] = q.z;
    out[3] = q.w;
  } else {
    out[0] = base[p];
  }
}

template <int P>
__device__ __forceinline__ void store_packet(float* base, int p, const float* v) {
  if (P == 4) {
    reinterpret_cast<float4*>(base)[p] = make_float4(v[0], v[1], v[2], v[3]);
  } else {
    base[p] = v[0];
  }
}

// y's packet p = x's packet v · r · gamma + beta (beta 0 when null): the output of both forwards.
template <int P>
__device__ __forceinline__ void normalize_packet(float* yr, int p, const float* v, float r, const float* gamma,
                                                 const float* beta) {
  float g[P], b[P], out[P];
  load_packet<P>(gamma, p, g);
  if (beta) {
    load_packet<P>(beta, p, b);
  } else {
#pragma unroll
    for (int e = 0; e < P; ++e) b[e] = 0.f;
  }
#pragma unroll
  for (int e = 0; e < P; ++e) out[e] = v[e] * r * g[e] + b[e];
  store_packet<P>(yr, p, out);
}

// out's packet p = (first ? 0 : out's packet p) folded with term(e, acc) per element: the dgamma
// and dbeta accumulations of the backward, which start from zero on the first block of rows.
template <int P, class Term>
__device__ __forceinline__ void accumulate_packet(float* out, int p, bool first, Term term) {
  float acc[P];
  if (first) {
#pragma unroll
    for (int e = 0; e < P; ++e) acc[e] = 0.f;
  } else {
    load_packet<P>(out, p, acc);
  }
#pragma unroll
  for (int e = 0; e < P; ++e) acc[e] = term(e, acc[e]);
  store_packet<P>(out, p, acc);
}

// Sum over the blockDim.x threads that share threadIdx.y, returned to all of them. blockDim.x is a
// power of two up to 32 or a multiple of 32; blockDim.x * blockDim.y is a multiple of 32. Every
// thread of the block must call it (it may use barriers).
__device__ __forceinline__ float row_sum(float v, float* red) {
  const int tpr = blockDim.x;
  if (tpr <= 32) {
    for (int o = tpr / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warps_per_row = tpr / 32;
  const int first = threadIdx.y * warps_per_row;
  if (threadIdx.x % 32 == 0) red[first + threadIdx.x / 32] = v;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < warps_per_row; ++w) total += red[first + w];
  __syncthreads();  // red is reused by the next call
  return total;
}

__device__ __forceinline__ float rrms_of(float sum_squares, int cols, float eps) {
  return static_cast<float>(1.0 / sqrt(static_cast<double>(sum_squares) / cols + eps));
}

template <int P, int V>
__global__ void __launch_bounds__(forward_max_threads(V)) rmsnorm_forward_reg(float* __restrict__ y, float* __restrict__ rrms, const float* __restrict__ x,
                                    const float* __restrict__ gamma, const float* __restrict__ beta,
                                    int64_t rows, int cols, float eps) {
  __shared__ float red[32];
  const int tpr = blockDim.x, tx = threadIdx.x;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool live = row < rows;
  const int packets = cols / P;
  const float* xr = x + (live ? row : 0) * cols;
  float v[V][P];
  float ss = 0.f;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int p = i * tpr + tx;
    if (live && p < packets) {
      load_packet<P>(xr, p, v[i]);
    } else {
#pragma unroll
      for (int e = 0; e < P; ++e) v[i][e] = 0.f;
    }
#pragma unroll
    for (int e = 0; e < P; ++e) ss = fmaf(v[i][e], v[i][e], ss);
  }
  ss = row_sum(ss, red);
  if (!live) return;
  const float r = rrms_of(ss, cols, eps);
  if (tx == 0) rrms[row] = r;
  float* yr = y + row * cols;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int p = i * tpr + tx;
    if (p >= packets) break;
    normalize_packet<P>(yr, p, v[i], r, gamma, beta);
  }
}

template <int P>
__global__ void __launch_bounds__(kWideThreads) rmsnorm_forward_wide(float* __restrict__ y, float* __restrict__ rrms, const float* __restrict__ x,
                                     const float* __restrict__ gamma, const float* __restrict__ beta, int cols,
                                     float eps) {
  __shared__ float red[32];
  const int64_t row = blockIdx.x;
  const int packets = cols / P;
  const float* xr = x + row * cols;
  float ss = 0.f;
  for (int p = threadIdx.x; p < packets; p += blockDim.x) {
    float v[P];
    load_packet<P>(xr, p, v);
#pragma unroll
    for (int e = 0; e < P; ++e) ss = fmaf(v[e], v[e], ss);
  }
  ss = row_sum(ss, red);
  const float r = rrms_of(ss, cols, eps);
  if (threadIdx.x == 0) rrms[row] = r;
  float* yr = y + row * cols;
  for (int p = threadIdx.x; p < packets; p += blockDim.x) {
    float v[P];
    load_packet<P>(xr, p, v);
    normalize_packet<P>(yr, p, v, r, gamma, beta);
  }
}

// part_g/part_b (null when not wanted): one row of `cols` per (block, threadIdx.y).
template <int P, int V>
__global__ void __launch_bounds__(backward_max_threads(V)) rmsnorm_backward_reg(float* __restrict__ dx, float* __restrict__ part_g, float* __restrict__ part_b,
                                     const float* __restrict__ dy, const float* __restrict__ x,
                                     const float* __restrict__ gamma, const float* __restrict__ rrms, int64_t rows,
                                     int cols) {
  __shared__ float red[32];
  const int tpr = blockDim.x, tx = threadIdx.x;
  const int packets = cols / P;
  float gam[V][P], gacc[V][P], bacc[V][P];
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int p = i * tpr + tx;
    if (p < packets) {
      load_packet<P>(gamma, p, gam[i]);
    } else {
#pragma unroll
      for (int e = 0; e < P; ++e) gam[i][e] = 0.f;
    }
#pragma unroll
    for (int e = 0; e < P; ++e) gacc[i][e] = bacc[i][e] = 0.f;
  }
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.y;
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.y; base < rows; base += step) {
    const int64_t row = base + threadIdx.y;
    const bool live = row < rows;
    const float r = live ? rrms[row] : 0.f;
    const float* xr = x + (live ? row : 0) * cols;
    const float* dyr = dy + (live ? row : 0) * cols;
    float xv[V][P], dv[V][P];
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const int p = i * tpr + tx;
      if (live && p < packets) {
        load_packet<P>(xr, p, xv[i]);
        load_packet<P>(dyr, p, dv[i]);
      } else {
#pragma unroll
        for (int e = 0; e < P; ++e) xv[i][e] = dv[i][e] = 0.f;
      }
#pragma unroll
      for (int e = 0; e < P; ++e) s = fmaf(dv[i][e] * gam[i][e], xv[i][e], s);
    }
    s = row_sum(s, red);
    const float c = s * r * r / cols;
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const int p = i * tpr + tx;
      if (live && p < packets && dx) {
        float out[P];
#pragma unroll
        for (int e = 0; e < P; ++e) out[e] = r * (dv[i][e] * gam[i][e] - c * xv[i][e]);
        store_packet<P>(dx + row * cols, p, out);
      }
#pragma unroll
      for (int e = 0; e < P; ++e) {
        gacc[i][e] = fmaf(dv[i][e] * xv[i][e], r, gacc[i][e]);
        bacc[i][e] += dv[i][e];
      }
    }
  }
  const int64_t part = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int p = i * tpr + tx;
    if (p >= packets) break;
    if (part_g) store_packet<P>(part_g + part * cols, p, gacc[i]);
    if (part_b) store_packet<P>(part_b + part * cols, p, bacc[i]);
  }
}

// One block per row at a time (blockDim.y == 1), looping over rows; the block's column sums live
// in its own workspace rows (read-modify-write by the one thread that owns each column).
template <int P>
__global__ void __launch_bounds__(kWideThreads) rmsnorm_backward_wide(float* __restrict__ dx, float* __restrict__ part_g, float* __restrict__ part_b,
                                      const float* __restrict__ dy, const float* __restrict__ x,
                                      const float* __restrict__ gamma, const float* __restrict__ rrms, int64_t rows,
                                      int cols) {
  __shared__ float red[32];
  const int packets = cols / P;
  float* pg = part_g ? part_g + static_cast<int64_t>(blockIdx.x) * cols : nullptr;
  float* pb = part_b ? part_b + static_cast<int64_t>(blockIdx.x) * cols : nullptr;
  bool first = true;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x, first = false) {
    const float r = rrms[row];
    const float* xr = x + row * cols;
    const float* dyr = dy + row * cols;
    float s = 0.f;
    for (int p = threadIdx.x; p < packets; p += blockDim.x) {
      float xv[P], dv[P], g[P];
      load_packet<P>(xr, p, xv);
      load_packet<P>(dyr, p, dv);
      load_packet<P>(gamma, p, g);
#pragma unroll
      for (int e = 0; e < P; ++e) s = fmaf(dv[e] * g[e], xv[e], s);
    }
    s = row_sum(s, red);
    const float c = s * r * r / cols;
    for (int p = threadIdx.x; p < packets; p += blockDim.x) {
      float xv[P], dv[P], g[P], out[P];
      load_packet<P>(xr, p, xv);
      load_packet<P>(dyr, p, dv);
      load_packet<P>(gamma, p, g);
      if (dx) {
#pragma unroll
        for (int e = 0; e < P; ++e) out[e] = r * (dv[e] * g[e] - c * xv[e]);
        store_packet<P>(dx + row * cols, p, out);
      }
      if (pg) accumulate_packet<P>(pg, p, first, [&](int e, float acc) { return fmaf(dv[e] * xv[e], r, acc); });
      if (pb) accumulate_packet<P>(pb, p, first, [&](int e, float acc) { return acc + dv[e]; });
    }
  }
}

// dgamma[j] (+)= sum over parts of part_g[part][j], likewise dbeta; blocks of 32 columns x 32
// part-slices, the slices added in slice order.
__global__ void rmsnorm_column_reduce(float* __restrict__ dgamma, float* __restrict__ dbeta,
                                      const float* __restrict__ part_g, const float* __restrict__ part_b,
                                      int64_t parts, int cols, bool accumulate) {
  __shared__ float sg[32][33];
  __shared__ float sb[32][33];
  const int64_t j = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  float g = 0.f, b = 0.f;
  if (j < cols) {
    for (int64_t p = threadIdx.y; p < parts; p += 32) {
      if (part_g) g += part_g[p * cols + j];
      if (part_b) b += part_b[p * cols + j];
    }
  }
  sg[threadIdx.y][threadIdx.x] = g;
  sb[threadIdx.y][threadIdx.x] = b;
  __syncthreads();
  if (threadIdx.y != 0 || j >= cols) return;
  float tg = 0.f, tb = 0.f;
  for (int y = 0; y < 32; ++y) {
    tg += sg[y][threadIdx.x];
    tb += sb[y][threadIdx.x];
  }
  if (dgamma) dgamma[j] = accumulate ? dgamma[j] + tg : tg;
  if (dbeta) dbeta[j] = accumulate ? dbeta[j] + tb : tb;
}

bool aligned16(const void* p) { return p == nullptr || (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// How a row is spread over threads.
struct Plan {
  int P = 1;        // floats per packet
  int V = 1;        // packets per thread (register path)
  int tpr = 32;     // threads per row
  int rows_per_block = 1;
  bool wide = false;
};

// The fewest packets per thread that keep a row within `preferred` threads; failing that, the
// fewest that fit the kernel's thread limit; failing that, the wide path.
Plan plan_rows(int64_t cols, bool vec_ok, int preferred, int (*max_threads)(int)) {
  Plan pl;
  pl.P = vec_ok && cols % 4 == 0 ? 4 : 1;
  const int64_t packets = cols / pl.P;
  int64_t need = -1;
  for (int V = 1; V <= 8 && need < 0; V *= 2) {
    if ((packets + V - 1) / V <= preferred) {
      pl.V = V;
      need = (packets + V - 1) / V;
    }
  }
  for (int V = 1; V <= 8 && need < 0; V *= 2) {
    if ((packets + V - 1) / V <= max_threads(V)) {
      pl.V = V;
      need = (packets + V - 1) / V;
    }
  }
  if (need < 0) {
    pl.wide = true;
    pl.tpr = kWideThreads;
    return pl;
  }
  if (need <= 32) {
    pl.tpr = 1;
    while (pl.tpr < need) pl.tpr *= 2;
  } else {
    pl.tpr = static_cast<int>((need + 31) / 32 * 32);
  }
  pl.rows_per_block = pl.tpr >= 128 ? 1 : 128 / pl.tpr;
  return pl;
}

int forward_limit(int V) { return forward_max_threads(V); }
int backward_limit(int V) { return backward_max_threads(V); }

void check_cols(int64_t cols) {
  if (cols > 0x7fffffff) {
    std::ostringstream msg;
    msg << "rmsnorm: rows of " << cols << " elements exceed the CUDA kernels' limit of 2^31 - 1";
    throw Error(ErrorCode::shape, msg.str());
  }
}

template <int P>
void launch_forward_reg(const Plan& pl, dim3 grid, dim3 block, cudaStream_t st, float* y, float* rrms,
                        const float* x, const float* gamma, const float* beta, int64_t rows, int cols, float eps) {
  switch (pl.V) {
    case 1: rmsnorm_forward_reg<P, 1><<<grid, block, 0, st>>>(y, rrms, x, gamma, beta, rows, cols, eps); break;
    case 2: rmsnorm_forward_reg<P, 2><<<grid, block, 0, st>>>(y, rrms, x, gamma, beta, rows, cols, eps); break;
    case 4: rmsnorm_forward_reg<P, 4><<<grid, block, 0, st>>>(y, rrms, x, gamma, beta, rows, cols, eps); break;
    default: rmsnorm_forward_reg<P, 8><<<grid, block, 0, st>>>(y, rrms, x, gamma, beta, rows, cols, eps); break;
  }
}

using BackwardKernel = void (*)(float*, float*, float*, const float*, const float*, const float*, const float*,
                                int64_t, int);

template <int P>
BackwardKernel backward_reg_kernel(int V) {
  switch (V) {
    case 1: return rmsnorm_backward_reg<P, 1>;
    case 2: return rmsnorm_backward_reg<P, 2>;
    case 4: return rmsnorm_backward_reg<P, 4>;
    default: return rmsnorm_backward_reg<P, 8>;
  }
}

// The backward's grid: one wave of resident blocks (fewer when there are fewer row groups), so
// each block sees many rows and the partials stay few.
struct BackwardShape {
  Plan plan;
  dim3 grid, block;
  BackwardKernel kernel;
  int64_t parts;  // partial rows per output (grid.x * rows_per_block)
};

BackwardShape backward_shape(int device, int64_t rows, int64_t cols, bool vec_ok) {
  BackwardShape b;
  b.plan = plan_rows(cols, vec_ok, 256, backward_limit);
  const Plan& pl = b.plan;
  int64_t groups;
  if (pl.wide) {
    b.kernel = pl.P == 4 ? rmsnorm_backward_wide<4> : rmsnorm_backward_wide<1>;
    b.block = dim3(pl.tpr, 1);
    groups = rows;
  } else {
    b.kernel = pl.P == 4 ? backward_reg_kernel<4>(pl.V) : backward_reg_kernel<1>(pl.V);
    b.block = dim3(pl.tpr, pl.rows_per_block);
    groups = (rows + pl.rows_per_block - 1) / pl.rows_per_block;
  }
  int per_sm = 0;
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, b.kernel, static_cast<int>(b.block.x * b.block.y), 0),
        "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  const int64_t wave = static_cast<int64_t>(std::max(per_sm, 1)) * multiprocessors(device);
  const int64_t blocks = std::max<int64_t>(1, std::min(groups, wave));
  b.grid = dim3(static_cast<unsigned>(blocks));
  b.parts = blocks * b.block.y;
  return b;
}

}  // namespace

void rmsnorm_forward_launch(int device, cudaStream_t stream, float* y, float* rrms, const float* x,
                            const float* gamma, const float* beta, int64_t rows, int64_t cols, float eps) {
  (void)device;
  if (rows <= 0 || cols <= 0) return;
  check_cols(cols);
  const bool vec_ok = aligned16(y) && aligned16(x) && aligned16(gamma) && aligned16(beta);
  const Plan pl = plan_rows(cols, vec_ok, 256, forward_limit);
  const int c = static_cast<int>(cols);
  if (pl.wide) {
    if (rows > 0x7fffffff) throw Error(ErrorCode::shape, "rmsnorm: too many rows for the wide-row kernel");
    const dim3 grid(static_cast<unsigned>(rows));
    if (pl.P == 4) rmsnorm_forward_wide<4><<<grid, pl.tpr, 0, stream>>>(y, rrms, x, gamma, beta, c, eps);
    else rmsnorm_forward_wide<1><<<grid, pl.tpr, 0, stream>>>(y, rrms, x, gamma, beta, c, eps);
  } else {
    const int64_t blocks = (rows + pl.rows_per_block - 1) / pl.rows_per_block;
    if (blocks > 0x7fffffff) throw Error(ErrorCode::shape, "rmsnorm: too many rows");
    const dim3 grid(static_cast<unsigned>(blocks)), block(pl.tpr, pl.rows_per_block);
    if (pl.P == 4) launch_forward_reg<4>(pl, grid, block, stream, y, rrms, x, gamma, beta, rows, c, eps);
    else launch_forward_reg<1>(pl, grid, block, stream, y, rrms, x, gamma, beta, rows, c, eps);
  }
  check(cudaGetLastError(), "rmsnorm_forward launch");
}

size_t rmsnorm_backward_workspace_floats(int device, int64_t rows, int64_t cols, bool want_column_sums) {
  if (!want_column_sums || rows <= 0 || cols <= 0) return 0;
  check_cols(cols);
  // Alignment (known only at launch) picks float4 or scalar packets, and with them the plan:
  // size for the larger of the two.
  const BackwardShape vec = backward_shape(device, rows, cols, true);
  const BackwardShape scalar = backward_shape(device, rows, cols, false);
  return static_cast<size_t>(std::max(vec.parts, scalar.parts)) * static_cast<size_t>(cols) * 2;
}

void rmsnorm_backward_launch(int device, cudaStream_t stream, float* workspace, float* dx, float* dgamma,
                             float* dbeta, const float* dy, const float* x, const float* gamma,
                             const float* rrms, int64_t rows, int64_t cols, bool accumulate) {
  if (cols <= 0) return;
  check_cols(cols);
  const int c = static_cast<int>(cols);
  const bool sums = dgamma || dbeta;
  const dim3 reduce_grid(static_cast<unsigned>((cols + 31) / 32)), reduce_block(32, 32);
  if (rows <= 0) {
    if (sums && !accumulate) {
      rmsnorm_column_reduce<<<reduce_grid, reduce_block, 0, stream>>>(dgamma, dbeta, nullptr, nullptr, 0, c, false);
      check(cudaGetLastError(), "rmsnorm_backward launch");
    }
    return;
  }
  if (!dx && !sums) return;
  const bool vec_ok = aligned16(dx) && aligned16(dy) && aligned16(x) && aligned16(gamma) && aligned16(workspace);
  const BackwardShape b = backward_shape(device, rows, cols, vec_ok);
  float* part_g = dgamma ? workspace : nullptr;
  float* part_b = dbeta ? workspace + b.parts * cols : nullptr;
  b.kernel<<<b.grid, b.block, 0, stream>>>(dx, part_g, part_b, dy, x, gamma, rrms, rows, c);
  check(cudaGetLastError(), "rmsnorm_backward launch");
  if (sums) {
    rmsnorm_column_reduce<<<reduce_grid, reduce_block, 0, stream>>>(dgamma, dbeta, part_g, part_b, b.parts, c,
                                                                    accumulate);
    check(cudaGetLastError(), "rmsnorm_backward reduce launch");
  }
}

void rmsnorm_forward(int device, float* y, float* rrms, const float* x, const float* gamma, const float* beta,
                     int64_t rows, int64_t cols, float eps) {
  if (rows <= 0 || cols <= 0) return;
  cudaStream_t st = use_device(device);
  rmsnorm_forward_launch(device, st, y, rrms, x, gamma, beta, rows, cols, eps);
  check(cudaStreamSynchronize(st), "rmsnorm_forward");
}

void rmsnorm_backward(int device, float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                      const float* gamma, const float* rrms, int64_t rows, int64_t cols, bool accumulate) {
  if (cols <= 0) return;
  cudaStream_t st = use_device(device);
  const size_t ws = rmsnorm_backward_workspace_floats(device, rows, cols, dgamma || dbeta);
  Scratch scratch(device, std::max<size_t>(ws, 1) * sizeof(float));
  rmsnorm_backward_launch(device, st, scratch.floats(), dx, dgamma, dbeta, dy, x, gamma, rrms, rows, cols,
                          accumulate);
  check(cudaStreamSynchronize(st), "rmsnorm_backward");
}

}  // namespace gpu
}  // namespace rnnkit
