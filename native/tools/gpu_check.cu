// gpu_check: the native test-and-bench driver for the CUDA kernels; needs no Node.
//   ./build-cuda/gpu_check [--quick] [--no-bench | --bench-only | --probe]   (RNNKIT_TEST_SEED=<n> replays)
// Without a usable device it prints "no CUDA device: skipped (<reason>)" and exits 0; with
// RNNKIT_REQUIRE_GPU=1 it exits 2 with the CUDA error instead (gpu_check_harness.cuh).
// On a GPU it first checks every CUDA kernel against the CPU kernels (native/kernels) on fresh
// random inputs, with stated error bounds, then times them with CUDA events and prints achieved
// GB/s and TFLOP/s next to limits measured in the same run: device-to-device copy bandwidth, an
// FMA-chain kernel (fp32 rate) and an mma.sync chain kernel (TF32 tensor-core rate, sm_80+).
// Exit status: 0 when every check passes (bench targets are reported, never fatal), 1 otherwise.
//
// Error bounds, per output element, with S = |alpha|·sum_k |op(A)||op(B)| + |beta·C|:
//   saxpy          |d| <= 1e-6 · (|a·x| + |y|)
//   sgemm fp32     |d| <= 1e-5 · S     (both sides fp32; summation orders differ)
//   sgemm tf32     |d| <= 3e-3 · S     (inputs rounded to 10-bit mantissas: <= 2·2^-11 per product)
//   rmsnorm y      |d| <= 2e-5 · (|x·rrms·gamma| + |beta|), rrms 1e-5 relative
//   rmsnorm dx     |d| <= 5e-5 · rrms·(|g| + rrms²·sum|g·x|/cols · |x|), g = dy·gamma
//   dgamma, dbeta  |d| <= 1e-4 · (sum_r |dy·x·rrms| or sum_r |dy|, plus |old| when accumulating)
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common.cuh"
#include "cuda_api.h"
#include "gpu_check_harness.cuh"
#include "kernels.cuh"
#include "rmsnorm.h"
#include "sgemm.h"

using namespace rnnkit;
using namespace gpucheck;  // Dev, pass, fail, guarded, within, median_ms, kDevice, ...

namespace {

// ---- correctness -------------------------------------------------------------------------------

void check_saxpy() {
  const int64_t n = (int64_t(1) << 20) + 3;
  auto x = random_vector(n), y = random_vector(n);
  Dev dx(n), dy(n);
  dx.set(x);
  dy.set(y);
  gpu::saxpy(kDevice, n, 2.5f, dx.p, dy.p);
  auto got = dy.get();
  std::vector<float> want(n);
  std::vector<double> bound(n);
  for (int64_t i = 0; i < n; ++i) {
    want[i] = 2.5f * x[i] + y[i];
    bound[i] = std::fabs(2.5 * x[i]) + std::fabs(y[i]);
  }
  within("saxpy n=2^20+3", got, want, bound, 1e-6);
}

const char* path_name(gpu::GemmPath p) {
  switch (p) {
    case gpu::GemmPath::small_m: return "small-M";
    case gpu::GemmPath::simt: return "SIMT";
    case gpu::GemmPath::tf32: return "TF32";
    default: return "none";
  }
}

// One GEMM case. `pad` widens every leading dimension and `offset` shifts every base pointer by
// floats, which takes the kernels off their float4 paths.
void check_gemm_case(int64_t M, int64_t N, int64_t K, bool ta, bool tb, float alpha, float beta, bool tf32, int pad,
                     int offset, bool device_has_tf32) {
  char name[160];
  std::snprintf(name, sizeof name, "sgemm%s %lldx%lldx%lld ta=%d tb=%d a=%g b=%g pad=%d off=%d", tf32 ? "-tf32" : "",
                static_cast<long long>(M), static_cast<long long>(N), static_cast<long long>(K), ta, tb, alpha, beta,
                pad, offset);
  guarded(name, [&] {
    const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
    const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
    const int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = N + pad;
    const size_t na = offset + a_rows * lda, nb = offset + b_rows * ldb, nc = offset + M * ldc;
    auto A = random_vector(na), B = random_vector(nb), C0 = random_vector(nc);
    Dev dA(na), dB(nb), dC(nc);
    dA.set(A);
    dB.set(B);
    if (beta == 0.f) dC.poison();  // beta == 0 must never read C
    else dC.set(C0);
    cudaStream_t st = gpu::use_device(kDevice);
    const gpu::GemmPath path = gpu::sgemm_launch(kDevice, st, ta, tb, M, N, K, alpha, dA.p + offset, lda,
                                                 dB.p + offset, ldb, beta, dC.p + offset, ldc, tf32);
    gpu::check(cudaStreamSynchronize(st), "sgemm");
    const gpu::GemmPath expected =
        M <= 16 ? gpu::GemmPath::small_m : tf32 && device_has_tf32 ? gpu::GemmPath::tf32 : gpu::GemmPath::simt;
    if (path != expected) {
      fail(name, std::string("took the ") + path_name(path) + " path, expected " + path_name(expected));
      return;
    }
    auto got = dC.get();
    std::vector<float> want = C0;
    sgemm(ta, tb, M, N, K, alpha, A.data() + offset, lda, B.data() + offset, ldb, beta, want.data() + offset, ldc);
    // S = |alpha|·|op(A)|·|op(B)| + |beta·C|, by the CPU kernel on absolute values.
    std::vector<float> absA(na), absB(nb), absC(nc);
    for (size_t i = 0; i < na; ++i) absA[i] = std::fabs(A[i]);
    for (size_t i = 0; i < nb; ++i) absB[i] = std::fabs(B[i]);
    for (size_t i = 0; i < nc; ++i) absC[i] = std::fabs(C0[i]);
    sgemm(ta, tb, M, N, K, std::fabs(alpha), absA.data() + offset, lda, absB.data() + offset, ldb, std::fabs(beta),
          absC.data() + offset, ldc);
    // Compare the M x N window; the padding columns must still hold what was there before.
    std::vector<float> g, w;
    std::vector<double> bound;
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = 0; n < ldc; ++n) {
        const size_t i = offset + m * ldc + n;
        if (n < N) {
          g.push_back(got[i]);
          w.push_back(want[i]);
          bound.push_back(absC[i]);
        } else if (beta == 0.f ? !std::isnan(got[i]) : got[i] != C0[i]) {
          fail(name, "wrote outside the M x N window");
          return;
        }
      }
    }
    within(std::string(name) + " [" + path_name(path) + "]", g, w, bound, tf32 && device_has_tf32 ? 3e-3 : 1e-5);
  });
}

void check_gemm(bool device_has_tf32, bool quick) {
  struct Shape {
    int64_t M, N, K;
  };
  const std::vector<Shape> shapes = {{1, 1, 1},     {3, 5, 7},     {16, 300, 129}, {5, 1000, 64}, {1, 77, 700},
                                     {17, 33, 65},  {128, 128, 8}, {129, 127, 9},  {300, 257, 130},
                                     {64, 64, 0},   {200, 40, 513}};
  for (const Shape& s : shapes) {
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      check_gemm_case(s.M, s.N, s.K, ta, tb, 1.f, 0.f, false, 0, 0, device_has_tf32);
      if (!quick) check_gemm_case(s.M, s.N, s.K, ta, tb, -0.75f, 0.5f, false, 3, 1, device_has_tf32);
    }
  }
  check_gemm_case(100, 100, 100, false, false, 1.f, 1.f, false, 0, 0, device_has_tf32);  // accumulate
  const std::vector<Shape> tf = {{256, 256, 256}, {300, 200, 100}, {129, 257, 33}, {17, 9, 1000}};
  for (const Shape& s : tf) {
    for (int t = 0; t < 4; ++t) {
      check_gemm_case(s.M, s.N, s.K, t & 1, t & 2, 1.f, 0.f, true, 0, 0, device_has_tf32);
      if (!quick) check_gemm_case(s.M, s.N, s.K, t & 1, t & 2, 2.f, 1.f, true, 1, 1, device_has_tf32);
    }
  }
}

void check_rmsnorm_case(int64_t rows, int64_t cols, bool with_beta, int offset) {
  char name[160];
  std::snprintf(name, sizeof name, "rmsnorm %lldx%lld beta=%d off=%d", static_cast<long long>(rows),
                static_cast<long long>(cols), with_beta, offset);
  guarded(name, [&] {
    const size_t n = rows * cols;
    std::uniform_real_distribution<float> scale_d(0.1f, 10.f);
    auto x = random_vector(offset + n);
    const float scale = scale_d(gpucheck::rng());  // rows of a common magnitude other than 1
    for (float& v : x) v *= scale;
    auto gamma = random_vector(offset + cols, 0.5f, 1.5f), beta = random_vector(offset + cols);
    auto dy = random_vector(offset + n);
    const float eps = 1e-6f;
    Dev dX(offset + n), dG(offset + cols), dB(offset + cols), dYv(offset + n), dR(rows), dDY(offset + n),
        dDX(offset + n), dDG(offset + cols), dDB(offset + cols);
    dX.set(x);
    dG.set(gamma);
    dB.set(beta);
    dDY.set(dy);
    dYv.poison();
    dR.poison();
    const float* bptr = with_beta ? dB.p + offset : nullptr;
    gpu::rmsnorm_forward(kDevice, dYv.p + offset, dR.p, dX.p + offset, dG.p + offset, bptr, rows, cols, eps);
    std::vector<float> y(n), r(rows);
    rmsnorm_forward(y.data(), r.data(), x.data() + offset, gamma.data() + offset,
                    with_beta ? beta.data() + offset : nullptr, rows, cols, eps);
    auto gy = dYv.get();
    auto gr = dR.get();
    std::vector<double> by(n), br(rows);
    for (int64_t i = 0; i < rows; ++i) {
      br[i] = std::fabs(r[i]);
      for (int64_t j = 0; j < cols; ++j) {
        by[i * cols + j] = std::fabs(x[offset + i * cols + j] * r[i] * gamma[offset + j]) +
                           (with_beta ? std::fabs(beta[offset + j]) : 0.0);
      }
    }
    within(std::string(name) + " rrms", gr, r, br, 1e-5);
    within(std::string(name) + " y", std::vector<float>(gy.begin() + offset, gy.end()), y, by, 2e-5);

    // Backward from the CPU's rrms, so it is checked on its own; once overwriting, once adding.
    dR.set(r);
    for (int acc = 0; acc < 2; ++acc) {
      auto g0 = random_vector(offset + cols), b0 = random_vector(offset + cols);
      dDX.poison();
      if (acc) {
        dDG.set(g0);
        dDB.set(b0);
      } else {
        dDG.poison();
        dDB.poison();
      }
      gpu::rmsnorm_backward(kDevice, dDX.p + offset, dDG.p + offset, dDB.p + offset, dDY.p + offset,
                            dX.p + offset, dG.p + offset, dR.p, rows, cols, acc == 1);
      std::vector<float> dx(n), dg(g0.begin() + offset, g0.end()), db(b0.begin() + offset, b0.end());
      rmsnorm_backward(dx.data(), dg.data(), db.data(), dy.data() + offset, x.data() + offset, gamma.data() + offset,
                       r.data(), rows, cols, acc == 1);
      std::vector<double> bdx(n), bdg(cols, 0.0), bdb(cols, 0.0);
      for (int64_t i = 0; i < rows; ++i) {
        double sgx = 0;
        for (int64_t j = 0; j < cols; ++j)
          sgx += std::fabs(dy[offset + i * cols + j] * gamma[offset + j] * x[offset + i * cols + j]);
        const double c = static_cast<double>(r[i]) * r[i] * sgx / cols;
        for (int64_t j = 0; j < cols; ++j) {
          const size_t k = offset + i * cols + j;
          bdx[i * cols + j] = r[i] * (std::fabs(dy[k] * gamma[offset + j]) + c * std::fabs(x[k]));
          bdg[j] += std::fabs(dy[k] * x[k] * r[i]);
          bdb[j] += std::fabs(dy[k]);
        }
      }
      if (acc) {
        for (int64_t j = 0; j < cols; ++j) {
          bdg[j] += std::fabs(g0[offset + j]);
          bdb[j] += std::fabs(b0[offset + j]);
        }
      }
      const std::string tag = std::string(name) + (acc ? " +=" : " =");
      auto gdx = dDX.get();
      auto gdg = dDG.get();
      auto gdb = dDB.get();
      within(tag + " dx", std::vector<float>(gdx.begin() + offset, gdx.end()), dx, bdx, 5e-5);
      within(tag + " dgamma", std::vector<float>(gdg.begin() + offset, gdg.end()), dg, bdg, 1e-4);
      within(tag + " dbeta", std::vector<float>(gdb.begin() + offset, gdb.end()), db, bdb, 1e-4);
      if (!acc) {  // the column sums must repeat bit for bit
        gpu::rmsnorm_backward(kDevice, nullptr, dDG.p + offset, nullptr, dDY.p + offset, dX.p + offset,
                              dG.p + offset, dR.p, rows, cols, false);
        auto again = dDG.get();
        if (std::memcmp(again.data(), gdg.data(), gdg.size() * 4) != 0) {
          fail(tag + " dgamma repeat", "differs from the first run bit for bit");
        } else {
          pass(tag + " dgamma repeat", "bitwise equal");
        }
      }
    }
  });
}

void check_rmsnorm(bool quick) {
  struct Case {
    int64_t rows, cols;
  };
  const std::vector<Case> cases = {{1, 1},     {7, 3},      {33, 32},  {64, 100},   {1000, 1024}, {257, 4096},
                                   {8, 4097},  {300, 8192}, {16, 10000}, {5, 20000}, {3, 40000},  {2, 65536}};
  for (const Case& c : cases) {
    check_rmsnorm_case(c.rows, c.cols, true, 0);
    if (!quick) check_rmsnorm_case(c.rows, c.cols, false, 1);
  }
  guarded("rmsnorm rows=0 zeroes dgamma/dbeta", [] {
    Dev dg(8), db(8), dummy(8);
    dg.poison();
    db.poison();
    gpu::rmsnorm_backward(kDevice, nullptr, dg.p, db.p, dummy.p, dummy.p, dummy.p, dummy.p, 0, 8, false);
    std::vector<float> zeros(8, 0.f);
    std::vector<double> ones(8, 1.0);
    within("rmsnorm rows=0 dgamma", dg.get(), zeros, ones, 0.0);
    within("rmsnorm rows=0 dbeta", db.get(), zeros, ones, 0.0);
  });
}

void check_copies() {
  const size_t chunk = gpu::staging_chunk_bytes() / 4;
  for (size_t n : {size_t(1), chunk - 1, chunk, chunk + 1, 2 * chunk + 5, 5 * chunk + 3}) {
    char name[96];
    std::snprintf(name, sizeof name, "pinned copy round trip %zu floats", n);
    guarded(name, [&] {
      auto h = random_vector(n);
      Dev d(n);
      d.set(h);
      auto back = d.get();
      if (std::memcmp(back.data(), h.data(), n * 4) != 0) fail(name, "data differs after the round trip");
      else pass(name);
    });
  }
}

// ---- limits and timing -------------------------------------------------------------------------

__global__ void fma_chain_kernel(float* out, int iters, float b, float c) {
  float a[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) a[j] = threadIdx.x * 1e-3f + j;
  for (int i = 0; i < iters; ++i) {
#pragma unroll
    for (int j = 0; j < 8; ++j) a[j] = fmaf(a[j], b, c);
  }
  float s = 0.f;
#pragma unroll
  for (int j = 0; j < 8; ++j) s += a[j];
  if (s == 12345.678f) out[0] = s;  // keeps the chains alive without a store per thread
}

__global__ void mma_chain_kernel(float* out, int iters) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  float d[4][4] = {};
  const uint32_t a[4] = {threadIdx.x, threadIdx.x + 1, threadIdx.x + 2, threadIdx.x + 3};
  const uint32_t b[2] = {threadIdx.x * 3u, threadIdx.x * 5u};
  for (int i = 0; i < iters; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      asm volatile(
          "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
          "{%0,%1,%2,%3};"
          : "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
  }
  float s = 0.f;
  for (int j = 0; j < 4; ++j) s += d[j][0] + d[j][1] + d[j][2] + d[j][3];
  if (s == 12345.678f) out[0] = s;
#else
  (void)out;
  (void)iters;
#endif
}

struct Row {
  std::string what, achieved, limit, ratio, target;
};
std::vector<Row> g_rows;

void add_row(const std::string& what, double value, const char* unit, double limit, const char* limit_name,
             double target) {
  char a[64], l[64], r[32], t[48];
  std::snprintf(a, sizeof a, "%.1f %s", value, unit);
  std::snprintf(l, sizeof l, "%.1f %s", limit, limit_name);
  std::snprintf(r, sizeof r, "%.0f%%", 100 * value / limit);
  if (target > 0) std::snprintf(t, sizeof t, ">= %.0f%%: %s", 100 * target, value >= target * limit ? "met" : "BELOW");
  else std::snprintf(t, sizeof t, "-");
  g_rows.push_back({what, a, l, r, t});
}

void bench(const cudaDeviceProp& prop, bool has_tf32, bool quick) {
  cudaStream_t st = gpu::use_device(kDevice);
  const int reps = quick ? 3 : 7;
  // Copy bandwidth: device-to-device, read + write counted.
  const size_t copy_floats = size_t(1) << (quick ? 26 : 27);
  double copy_gbs = 0, fma_tflops = 0, tc_tflops = 0;
  {
    Dev a(copy_floats), b(copy_floats);
    const double ms = median_ms(reps, [&] {
      gpu::check(cudaMemcpyAsync(b.p, a.p, copy_floats * 4, cudaMemcpyDeviceToDevice, st), "copy");
    });
    copy_gbs = 2.0 * copy_floats * 4 / (ms * 1e-3) / 1e9;
  }
  {
    Dev out(1);
    const int iters = 4096, blocks = prop.multiProcessorCount * 8, threads = 256;
    const double ms = median_ms(reps, [&] { fma_chain_kernel<<<blocks, threads, 0, st>>>(out.p, iters, 0.999f, 1e-3f); });
    gpu::check(cudaGetLastError(), "fma_chain launch");
    fma_tflops = 2.0 * 8 * iters * double(blocks) * threads / (ms * 1e-3) / 1e12;
    if (has_tf32) {
      const int mma_iters = 2048, warps = 8;
      const double mms = median_ms(reps, [&] { mma_chain_kernel<<<blocks, warps * 32, 0, st>>>(out.p, mma_iters); });
      gpu::check(cudaGetLastError(), "mma_chain launch");
      tc_tflops = 2.0 * 16 * 8 * 8 * 4.0 * mma_iters * double(blocks) * warps / (mms * 1e-3) / 1e12;
    }
  }
  std::printf("\nlimits: copy %.1f GB/s (device-to-device), fp32 FMA %.2f TFLOP/s, TF32 mma.sync %s\n", copy_gbs,
              fma_tflops, has_tf32 ? (std::to_string(tc_tflops) + " TFLOP/s").c_str() : "n/a (needs sm_80)");

  const int64_t S = quick ? 2048 : 4096;
  {
    Dev A(S * S), B(S * S), C(S * S);
    A.set(random_vector(S * S));
    B.set(random_vector(S * S));
    const double flop = 2.0 * S * S * S;
    const double ms = median_ms(reps, [&] {
      gpu::sgemm_launch(kDevice, st, false, false, S, S, S, 1.f, A.p, S, B.p, S, 0.f, C.p, S, false);
    });
    add_row("sgemm fp32 " + std::to_string(S) + "^3", flop / (ms * 1e-3) / 1e12, "TFLOP/s", fma_tflops, "TFLOP/s FMA",
            0.70);
    const double msT = median_ms(reps, [&] {
      gpu::sgemm_launch(kDevice, st, false, true, S, S, S, 1.f, A.p, S, B.p, S, 0.f, C.p, S, false);
    });
    add_row("sgemm fp32 " + std::to_string(S) + "^3 B^T", flop / (msT * 1e-3) / 1e12, "TFLOP/s", fma_tflops,
            "TFLOP/s FMA", 0.70);
    if (has_tf32) {
      const double ms32 = median_ms(reps, [&] {
        gpu::sgemm_launch(kDevice, st, false, false, S, S, S, 1.f, A.p, S, B.p, S, 0.f, C.p, S, true);
      });
      add_row("sgemm tf32 " + std::to_string(S) + "^3", flop / (ms32 * 1e-3) / 1e12, "TFLOP/s", tc_tflops,
              "TFLOP/s mma", 0.50);
    }
    // Batch-sized products (h·W_hhᵀ): memory-bound on B, so GB/s against the copy rate.
    for (bool tb : {true, false}) {
      const int64_t M = 8, N = 4096, K = 1024;
      const double msS = median_ms(reps, [&] {
        gpu::sgemm_launch(kDevice, st, false, tb, M, N, K, 1.f, A.p, K, B.p, tb ? K : N, 0.f, C.p, N, false);
      });
      add_row(std::string("sgemm small-M 8x4096x1024") + (tb ? " B^T" : ""), (K * N + M * K + M * N) * 4.0 / (msS * 1e-3) / 1e9,
              "GB/s", copy_gbs, "GB/s copy", 0);
    }
  }
  struct Shape {
    int64_t rows, cols;
  };
  const std::vector<Shape> shapes = {{16384, 1024}, {8192, 4096}, {2048, 16384}, {256, 65536}};
  for (const Shape& s : shapes) {
    const int64_t rows = quick ? s.rows / 4 : s.rows, cols = s.cols, n = rows * cols;
    Dev x(n), y(n), dy(n), dx(n), gamma(cols), beta(cols), r(rows), dg(cols), db(cols);
    x.set(random_vector(n));
    dy.set(random_vector(n));
    gamma.set(random_vector(cols));
    beta.set(random_vector(cols));
    const double msF = median_ms(reps, [&] {
      gpu::rmsnorm_forward_launch(kDevice, st, y.p, r.p, x.p, gamma.p, beta.p, rows, cols, 1e-6f);
    });
    const std::string shape = std::to_string(rows) + "x" + std::to_string(cols);
    add_row("rmsnorm fwd " + shape, 2.0 * n * 4 / (msF * 1e-3) / 1e9, "GB/s", copy_gbs, "GB/s copy", 0.85);
    Dev ws(gpu::rmsnorm_backward_workspace_floats(kDevice, rows, cols, true));
    const double msB = median_ms(reps, [&] {
      gpu::rmsnorm_backward_launch(kDevice, st, ws.p, dx.p, dg.p, db.p, dy.p, x.p, gamma.p, r.p, rows,
                                   cols, false);
    });
    add_row("rmsnorm bwd " + shape, 3.0 * n * 4 / (msB * 1e-3) / 1e9, "GB/s", copy_gbs, "GB/s copy", 0.85);
  }
  std::printf("\n%-34s %-18s %-22s %-7s %s\n", "kernel", "achieved", "limit (this run)", "ratio", "target");
  for (const Row& row : g_rows)
    std::printf("%-34s %-18s %-22s %-7s %s\n", row.what.c_str(), row.achieved.c_str(), row.limit.c_str(),
                row.ratio.c_str(), row.target.c_str());
  std::printf("(bytes counted: rmsnorm fwd reads x and writes y, bwd reads x and dy and writes dx; medians of %d)\n",
              reps);
}

}  // namespace

int main(int argc, char** argv) {
  const gpucheck::Options opt = gpucheck::parse_options(argc, argv);
  const gpu::ProbeResult probe = gpucheck::start("gpu_check", opt);
  cudaDeviceProp prop;
  try {
    gpu::use_device(kDevice);
    gpu::check(cudaGetDeviceProperties(&prop, kDevice), "cudaGetDeviceProperties");
  } catch (const std::exception& e) {
    std::printf("gpu_check: FAIL: device 0 unusable: %s\n", e.what());
    return 1;
  }
  const bool has_tf32 = prop.major >= 8;
  std::printf("gpu_check: %s (sm_%d%d, %d SMs, %.1f GiB), driver %d, runtime %d, built for", prop.name, prop.major,
              prop.minor, prop.multiProcessorCount, prop.totalGlobalMem / 1073741824.0, probe.driver_version,
              probe.runtime_version);
  for (const auto& a : probe.architectures) std::printf(" %s", a.c_str());
  std::printf("; seed %u (RNNKIT_TEST_SEED replays)\n", gpucheck::state().seed);
  guarded("GEMM code architecture", [&] {
    const int arch = gpu::gemm_compiled_arch(kDevice);
    const std::string detail = "loaded code is sm_" + std::to_string(arch / 10) + ", TF32 path " +
                               (arch >= 800 ? "available" : "unavailable");
    if (has_tf32 && arch < 800) fail("GEMM code architecture", detail + " on a TF32-capable device");
    else pass("GEMM code architecture", detail);
  });
  std::printf("\n");

  if (opt.checks) {
    check_copies();
    guarded("saxpy", check_saxpy);
    check_gemm(has_tf32, opt.quick);
    check_rmsnorm(opt.quick);
    guarded("out-of-memory", [] {
      try {
        gpu::device_alloc(kDevice, size_t(1) << 50);
        fail("out-of-memory", "a 1 PiB allocation succeeded");
      } catch (const Error& e) {
        if (e.code() != ErrorCode::oom) fail("out-of-memory", std::string("wrong code: ") + e.what());
        else pass("out-of-memory -> ErrorCode::oom", e.what());
      }
    });
  }
  if (opt.bench) guarded("bench", [&] { bench(prop, has_tf32, opt.quick); });
  return gpucheck::finish();
}
