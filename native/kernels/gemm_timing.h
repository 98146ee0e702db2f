// GEMM timing for bench/families/gemm.js, done in C++ so that JavaScript call overhead never
// enters a figure (binding: native/napi/gemm_bench_ops.cc). time_sgemm times rnnkit's sgemm /
// sgemm_packed; time_peer_sgemm times OpenBLAS (cblas_sgemm) or oneDNN (dnnl_sgemm), loaded with
// dlopen at call time: neither is ever a link-time dependency of the addon, and a missing one is
// reported, not fatal. Inputs are random in [-1, 1), allocated here; every product is row-major
// C[M, N] = op(A) op(B) with beta = 0. Both return seconds per call over `repeats` samples after
// a warm-up, each sample repeating the call for at least `min_ms`.
#pragma once
#include <cstdint>
#include <string>

namespace rnnkit {

struct GemmTiming {
  double median, min, max;  // seconds per call
};

// packed packs op(B) once before timing (as the recurrent ops do with their weights) and times
// sgemm_packed.
GemmTiming time_sgemm(int64_t M, int64_t N, int64_t K, bool ta, bool tb, bool packed, int repeats,
                      double min_ms);
// Peers: "openblas", "dnnl" (another name throws Error(arg)). gemm_peer_info is false when the
// library is not installed; time_peer_sgemm then throws Error(arg).
bool gemm_peer_info(const std::string& name, std::string* soname, std::string* detail);
GemmTiming time_peer_sgemm(const std::string& name, int64_t M, int64_t N, int64_t K, bool ta, bool tb,
                           int threads, int repeats, double min_ms);

}  // namespace rnnkit
