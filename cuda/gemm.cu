// SGEMM on the device, our own kernels (no cuBLAS, so the CUDA flavor needs only the driver).
// Contract: cuda_api.h sgemm (= native/kernels/sgemm.h on device pointers): row-major,
// C = alpha*op(A)*op(B) + beta*C, beta == 0 never reads C, K == 0 gives beta*C.
//
// Three kernels, chosen per call:
// - small M (M <= 16: batch-sized products such as h·W_hhᵀ): memory-bound, so each block streams
//   a slice of B once with coalesced loads while op(A) sits in shared memory; K is split over
//   lanes (B transposed) or warps (B plain) and reduced in a fixed order.
// - SIMT fp32: 128x128 block tile, k-step 8, 256 threads with 8x8 outputs each; tiles are staged
//   through registers into double-buffered shared memory kept k-major ([k][m], [k][n]) so the
//   inner loop reads four float4 per 64 FMAs whatever the transposes.
// - TF32 (opt-in, sm_80+): the same tiling with k-step 16 and mma.sync m16n8k8 (8 warps of 64x32);
//   inputs are rounded to TF32 (cvt.rna) once, when stored to shared memory; accumulation is fp32.
// Tiles beyond M, N or K are zero-filled on load and masked on store, so any shape and leading
// dimension works; float4 loads and stores are used where alignment allows.
#include <cstdint>
#include <mutex>
#include <sstream>

#include "common.cuh"
#include "cuda_api.h"
#include "kernels.cuh"

namespace rnnkit {
namespace gpu {
namespace {

constexpr int kTile = 128;            // block tile in M and N
constexpr int kThreads = 256;
constexpr int kStride = kTile + 8;    // shared row stride: +8 floats keeps mma fragment reads conflict-free
constexpr int kSmallM = 16;
constexpr int kSmallChunk = 256;      // k values of op(A) held in shared memory at a time

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

__device__ __forceinline__ float round_tf32(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return __uint_as_float(r);
#else
  return x;
#endif
}

// One operand tile of op(X) with `BK` k values and kTile rows in the other dimension ("mn": m for
// A, n for B), fetched to registers and then stored k-major into shared memory S[k][mn].
// KContig: X is stored [mn][k] (k contiguous, element mn*ld + k); otherwise [k][mn].
template <bool KContig, int BK, bool TF32>
struct TileLoader {
  static constexpr int kVectors = kTile * BK / 4 / kThreads;
  float4 r[kVectors];

  __device__ __forceinline__ void load(const float* X, int64_t ld, int64_t mn0, int64_t k0, int64_t MN,
                                       int64_t K, bool vec_ok) {
#pragma unroll
    for (int v = 0; v < kVectors; ++v) {
      const int linear = v * kThreads + static_cast<int>(threadIdx.x);
      int64_t mn, k;  // first of the 4 elements; they run along the contiguous dimension
      if (KContig) {
        mn = mn0 + linear / (BK / 4);
        k = k0 + (linear % (BK / 4)) * 4;
      } else {
        k = k0 + linear / (kTile / 4);
        mn = mn0 + (linear % (kTile / 4)) * 4;
      }
      const float* p = X + (KContig ? mn * ld + k : k * ld + mn);
      const bool row_ok = KContig ? mn < MN : k < K;
      const int64_t lead = KContig ? k : mn, lead_end = KContig ? K : MN;
      if (vec_ok && row_ok && lead + 3 < lead_end) {
        r[v] = *reinterpret_cast<const float4*>(p);
      } else {
        r[v].x = row_ok && lead + 0 < lead_end ? p[0] : 0.f;
        r[v].y = row_ok && lead + 1 < lead_end ? p[1] : 0.f;
        r[v].z = row_ok && lead + 2 < lead_end ? p[2] : 0.f;
        r[v].w = row_ok && lead + 3 < lead_end ? p[3] : 0.f;
      }
    }
  }

  __device__ __forceinline__ void store(float (*S)[kStride]) const {
#pragma unroll
    for (int v = 0; v < kVectors; ++v) {
      const int linear = v * kThreads + static_cast<int>(threadIdx.x);
      float4 q = r[v];
      if (TF32) {
        q.x = round_tf32(q.x);
        q.y = round_tf32(q.y);
        q.z = round_tf32(q.z);
        q.w = round_tf32(q.w);
      }
      if (KContig) {
        const int mn = linear / (BK / 4), k = (linear % (BK / 4)) * 4;
        S[k + 0][mn] = q.x;
        S[k + 1][mn] = q.y;
        S[k + 2][mn] = q.z;
        S[k + 3][mn] = q.w;
      } else {
        const int k = linear / (kTile / 4), mn = (linear % (kTile / 4)) * 4;
        *reinterpret_cast<float4*>(&S[k][mn]) = q;
      }
    }
  }
};

struct GemmArgs {
  int64_t M, N, K;
  float alpha, beta;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float* C;
  int64_t ldc;
  bool a_vec, b_vec, c_vec;  // float4 access allowed (16-byte base, leading dimension % 4 == 0)
};

__device__ __forceinline__ float epilogue(const GemmArgs& g, float acc, const float* c) {
  return g.beta == 0.f ? g.alpha * acc : g.alpha * acc + g.beta * *c;
}

// Writes 4 consecutive outputs of row m starting at column n.
__device__ __forceinline__ void store4(const GemmArgs& g, int64_t m, int64_t n, const float* acc) {
  if (m >= g.M) return;
  float* c = g.C + m * g.ldc + n;
  if (g.c_vec && n + 3 < g.N) {
    float4 out = make_float4(g.alpha * acc[0], g.alpha * acc[1], g.alpha * acc[2], g.alpha * acc[3]);
    if (g.beta != 0.f) {
      const float4 old = *reinterpret_cast<const float4*>(c);
      out.x += g.beta * old.x;
      out.y += g.beta * old.y;
      out.z += g.beta * old.z;
      out.w += g.beta * old.w;
    }
    *reinterpret_cast<float4*>(c) = out;
    return;
  }
  for (int j = 0; j < 4; ++j) {
    if (n + j < g.N) c[j] = epilogue(g, acc[j], c + j);
  }
}

template <bool TA, bool TB>
__global__ void __launch_bounds__(kThreads, 2) sgemm_simt_kernel(GemmArgs g) {
  __shared__ __align__(16) float As[2][8][kStride];
  __shared__ __align__(16) float Bs[2][8][kStride];
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * kTile;
  // op(A)[m][k] is A[m*lda + k] unless transposed; op(B)[k][n] is B[n*ldb + k] when transposed.
  TileLoader<!TA, 8, false> la;
  TileLoader<TB, 8, false> lb;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;

  la.load(g.A, g.lda, m0, 0, g.M, g.K, g.a_vec);
  lb.load(g.B, g.ldb, n0, 0, g.N, g.K, g.b_vec);
  la.store(As[0]);
  lb.store(Bs[0]);
  __syncthreads();
  int buf = 0;
  for (int64_t k0 = 0; k0 < g.K; k0 += 8) {
    const bool more = k0 + 8 < g.K;
    if (more) {  // next tile to registers while this one is multiplied
      la.load(g.A, g.lda, m0, k0 + 8, g.M, g.K, g.a_vec);
      lb.load(g.B, g.ldb, n0, k0 + 8, g.N, g.K, g.b_vec);
    }
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
      // Rows ty*4..+3 and 64+ty*4..+3, columns tx*4..+3 and 64+tx*4..+3: float4 reads that a
      // warp serves as broadcasts (A) or two conflict-free wavefronts (B).
      const float4 a0 = *reinterpret_cast<const float4*>(&As[buf][kk][ty * 4]);
      const float4 a1 = *reinterpret_cast<const float4*>(&As[buf][kk][64 + ty * 4]);
      const float4 b0 = *reinterpret_cast<const float4*>(&Bs[buf][kk][tx * 4]);
      const float4 b1 = *reinterpret_cast<const float4*>(&Bs[buf][kk][64 + tx * 4]);
      const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    if (more) {
      // Buffer buf^1 was last read in the previous iteration, which ended with a barrier.
      la.store(As[buf ^ 1]);
      lb.store(Bs[buf ^ 1]);
    }
    __syncthreads();
    buf ^= 1;
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int64_t m = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
    store4(g, m, n0 + tx * 4, &acc[i][0]);
    store4(g, m, n0 + 64 + tx * 4, &acc[i][4]);
  }
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
__device__ __forceinline__ void mma_tf32(float* d, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif

// Launched only where the kernel was compiled for sm_80+ (tf32_supported); on older targets its
// body is empty and the host never picks it.
template <bool TA, bool TB>
__global__ void __launch_bounds__(kThreads, 2) sgemm_tf32_kernel(GemmArgs g) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int BK = 16;
  __shared__ __align__(16) float As[2][BK][kStride];
  __shared__ __align__(16) float Bs[2][BK][kStride];
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * kTile;
  TileLoader<!TA, BK, true> la;
  TileLoader<TB, BK, true> lb;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int grp = lane >> 2, tig = lane & 3;  // PTX groupID / threadID_in_group
  const int wm = (warp / 4) * 64, wn = (warp % 4) * 32;
  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.f;

  la.load(g.A, g.lda, m0, 0, g.M, g.K, g.a_vec);
  lb.load(g.B, g.ldb, n0, 0, g.N, g.K, g.b_vec);
  la.store(As[0]);
  lb.store(Bs[0]);
  __syncthreads();
  int buf = 0;
  for (int64_t k0 = 0; k0 < g.K; k0 += BK) {
    const bool more = k0 + BK < g.K;
    if (more) {
      la.load(g.A, g.lda, m0, k0 + BK, g.M, g.K, g.a_vec);
      lb.load(g.B, g.ldb, n0, k0 + BK, g.N, g.K, g.b_vec);
    }
#pragma unroll
    for (int ks = 0; ks < BK; ks += 8) {
      // Fragments of m16n8k8 (.tf32): A a0 (row g, k t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4);
      // B b0 (k t, col g), b1 (k t+4, col g). Shared is k-major, so both read S[k][row or col].
      uint32_t af[4][4], bf[4][2];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int r = wm + i * 16 + grp;
        af[i][0] = __float_as_uint(As[buf][ks + tig][r]);
        af[i][1] = __float_as_uint(As[buf][ks + tig][r + 8]);
        af[i][2] = __float_as_uint(As[buf][ks + tig + 4][r]);
        af[i][3] = __float_as_uint(As[buf][ks + tig + 4][r + 8]);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int c = wn + j * 8 + grp;
        bf[j][0] = __float_as_uint(Bs[buf][ks + tig][c]);
        bf[j][1] = __float_as_uint(Bs[buf][ks + tig + 4][c]);
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mma_tf32(acc[i][j], af[i], bf[j]);
    }
    if (more) {
      la.store(As[buf ^ 1]);
      lb.store(Bs[buf ^ 1]);
    }
    __syncthreads();
    buf ^= 1;
  }
  // Accumulator q of a fragment: row g + (q/2)*8, column 2t + (q%2).
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int64_t m = m0 + wm + i * 16 + grp + (q >> 1) * 8;
        const int64_t n = n0 + wn + j * 8 + tig * 2 + (q & 1);
        if (m < g.M && n < g.N) {
          float* c = g.C + m * g.ldc + n;
          *c = epilogue(g, acc[i][j][q], c);
        }
      }
    }
  }
#endif
}

// op(A) for k in [k0, k0 + kSmallChunk) into S[k - k0][m] (zero beyond M or K). Row stride
// kSmallM + 1 so lanes reading different k for one m hit different banks.
template <bool TA>
__device__ __forceinline__ void load_small_a(float (*S)[kSmallM + 1], const GemmArgs& g, int64_t k0) {
  for (int idx = threadIdx.x; idx < kSmallM * kSmallChunk; idx += blockDim.x) {
    int m, k;
    if (TA) {  // A stored [K][M]: m fastest reads along A's rows
      k = idx / kSmallM;
      m = idx % kSmallM;
    } else {
      m = idx / kSmallChunk;
      k = idx % kSmallChunk;
    }
    const int64_t kg = k0 + k;
    float v = 0.f;
    if (m < g.M && kg < g.K) v = TA ? g.A[kg * g.lda + m] : g.A[m * g.lda + kg];
    S[k][m] = v;
  }
}

// B transposed (stored [N][K], each column of op(B) contiguous): a warp per output column, lanes
// over k, then a butterfly sum per row (identical on every lane, so lane m writes row m).
template <bool TA>
__global__ void __launch_bounds__(kThreads) sgemm_small_m_bt_kernel(GemmArgs g) {
  __shared__ float S[kSmallChunk][kSmallM + 1];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * (kThreads / 32) + warp;
  float acc[kSmallM];
#pragma unroll
  for (int m = 0; m < kSmallM; ++m) acc[m] = 0.f;
  const float* bcol = g.B + (n < g.N ? n : 0) * g.ldb;
  for (int64_t k0 = 0; k0 < g.K; k0 += kSmallChunk) {
    load_small_a<TA>(S, g, k0);
    __syncthreads();
    const int kend = static_cast<int>(g.K - k0 < kSmallChunk ? g.K - k0 : kSmallChunk);
    if (n < g.N) {
      for (int k = lane; k < kend; k += 32) {
        const float b = bcol[k0 + k];
#pragma unroll
        for (int m = 0; m < kSmallM; ++m) acc[m] = fmaf(S[k][m], b, acc[m]);
      }
    }
    __syncthreads();
  }
  if (n >= g.N) return;
  float mine = 0.f;
#pragma unroll
  for (int m = 0; m < kSmallM; ++m) {
    float v = acc[m];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == m) mine = v;
  }
  if (lane < g.M) {
    float* c = g.C + lane * g.ldc + n;
    *c = epilogue(g, mine, c);
  }
}

// B plain (stored [K][N]): lanes over 32 output columns (coalesced rows of B), the 8 warps over k;
// the warps' partial sums are added in warp order through shared memory.
template <bool TA>
__global__ void __launch_bounds__(kThreads) sgemm_small_m_bn_kernel(GemmArgs g) {
  constexpr int kWarps = kThreads / 32;
  __shared__ float S[kSmallChunk][kSmallM + 1];
  __shared__ float partial[kWarps][kSmallM][32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * 32 + lane;
  float acc[kSmallM];
#pragma unroll
  for (int m = 0; m < kSmallM; ++m) acc[m] = 0.f;
  for (int64_t k0 = 0; k0 < g.K; k0 += kSmallChunk) {
    load_small_a<TA>(S, g, k0);
    __syncthreads();
    const int kend = static_cast<int>(g.K - k0 < kSmallChunk ? g.K - k0 : kSmallChunk);
    if (n < g.N) {
      for (int k = warp; k < kend; k += kWarps) {
        const float b = g.B[(k0 + k) * g.ldb + n];
#pragma unroll
        for (int m = 0; m < kSmallM; ++m) acc[m] = fmaf(S[k][m], b, acc[m]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int m = 0; m < kSmallM; ++m) partial[warp][m][lane] = acc[m];
  __syncthreads();
  for (int idx = threadIdx.x; idx < kSmallM * 32; idx += kThreads) {
    const int m = idx / 32, l = idx % 32;
    const int64_t col = static_cast<int64_t>(blockIdx.x) * 32 + l;
    if (m >= g.M || col >= g.N) continue;
    float s = 0.f;
    for (int w = 0; w < kWarps; ++w) s += partial[w][m][l];
    float* c = g.C + m * g.ldc + col;
    *c = epilogue(g, s, c);
  }
}

// The architecture the device code of this file was compiled for, as loaded on the device: the
// __CUDA_ARCH__ of the SASS the driver picked, or of the PTX it JIT-compiled. Every kernel of the
// file, sgemm_tf32_kernel included, comes from that one image.
__global__ void compiled_arch_kernel(int* out) {
#if defined(__CUDA_ARCH__)
  *out = __CUDA_ARCH__;
#endif
}

bool tf32_supported(int device) { return gemm_compiled_arch(device) >= 800; }

void launch_big(bool ta, bool tb, bool tf32, dim3 grid, cudaStream_t st, const GemmArgs& g) {
  const int key = (ta ? 1 : 0) | (tb ? 2 : 0) | (tf32 ? 4 : 0);
  switch (key) {
    case 0: sgemm_simt_kernel<false, false><<<grid, kThreads, 0, st>>>(g); break;
    case 1: sgemm_simt_kernel<true, false><<<grid, kThreads, 0, st>>>(g); break;
    case 2: sgemm_simt_kernel<false, true><<<grid, kThreads, 0, st>>>(g); break;
    case 3: sgemm_simt_kernel<true, true><<<grid, kThreads, 0, st>>>(g); break;
    case 4: sgemm_tf32_kernel<false, false><<<grid, kThreads, 0, st>>>(g); break;
    case 5: sgemm_tf32_kernel<true, false><<<grid, kThreads, 0, st>>>(g); break;
    case 6: sgemm_tf32_kernel<false, true><<<grid, kThreads, 0, st>>>(g); break;
    default: sgemm_tf32_kernel<true, true><<<grid, kThreads, 0, st>>>(g); break;
  }
}

}  // namespace

// Decided once per device by running compiled_arch_kernel: cudaFuncAttributes::ptxVersion cannot
// tell, since a SASS-only build (e.g. 90-real) may report 0 there.
int gemm_compiled_arch(int device) {
  static std::mutex mu;
  static int known[64] = {};
  if (device < 0 || device >= 64) return 0;
  std::lock_guard<std::mutex> lk(mu);
  if (known[device] == 0) {
    cudaStream_t st = use_device(device);
    Scratch out(device, sizeof(int));
    int arch = 0;
    check(cudaMemsetAsync(out.floats(), 0, sizeof(int), st), "cudaMemsetAsync(arch probe)");
    compiled_arch_kernel<<<1, 1, 0, st>>>(reinterpret_cast<int*>(out.floats()));
    check(cudaGetLastError(), "arch probe launch");
    count_copy(false, sizeof(int));
    check(cudaMemcpyAsync(&arch, out.floats(), sizeof(int), cudaMemcpyDeviceToHost, st), "cudaMemcpyAsync(arch probe)");
    check(cudaStreamSynchronize(st), "arch probe");
    known[device] = arch > 0 ? arch : -1;
  }
  return known[device];
}

GemmPath sgemm_launch(int device, cudaStream_t stream, bool trans_a, bool trans_b, int64_t M, int64_t N,
                      int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                      float beta, float* C, int64_t ldc, bool tf32) {
  if (M <= 0 || N <= 0) return GemmPath::none;
  GemmArgs g{M, N, K, alpha, beta, A, lda, B, ldb, C, ldc,
             aligned16(A) && lda % 4 == 0, aligned16(B) && ldb % 4 == 0, aligned16(C) && ldc % 4 == 0};
  GemmPath path;
  if (M <= kSmallM) {
    path = GemmPath::small_m;
    if (trans_b) {
      const int64_t blocks = (N + kThreads / 32 - 1) / (kThreads / 32);
      if (trans_a) sgemm_small_m_bt_kernel<true><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(g);
      else sgemm_small_m_bt_kernel<false><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(g);
    } else {
      const int64_t blocks = (N + 31) / 32;
      if (trans_a) sgemm_small_m_bn_kernel<true><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(g);
      else sgemm_small_m_bn_kernel<false><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(g);
    }
  } else {
    const int64_t mt = (M + kTile - 1) / kTile, nt = (N + kTile - 1) / kTile;
    if (mt > 0x7fffffff || nt > 65535) {
      std::ostringstream msg;
      msg << "sgemm: [" << M << ", " << N << "] output exceeds the CUDA grid (at most " << int64_t(65535) * kTile
          << " columns)";
      throw Error(ErrorCode::shape, msg.str());
    }
    const bool use_tf32 = tf32 && tf32_supported(device);
    path = use_tf32 ? GemmPath::tf32 : GemmPath::simt;
    launch_big(trans_a, trans_b, use_tf32, dim3(static_cast<unsigned>(mt), static_cast<unsigned>(nt)), stream, g);
  }
  check(cudaGetLastError(), "sgemm launch");
  return path;
}

void sgemm(int device, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
           bool tf32) {
  cudaStream_t st = use_device(device);
  if (sgemm_launch(device, st, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, tf32) ==
      GemmPath::none)
    return;
  check(cudaStreamSynchronize(st), "sgemm");
}

}  // namespace gpu
}  // namespace rnnkit
