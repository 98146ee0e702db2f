// Single-precision GEMM, row-major: C = alpha * op(A) * op(B) + beta * C, with op(A) [M, K] and
// op(B) [K, N]. beta == 0 overwrites C (its old contents, NaN included, are never read); beta == 1
// accumulates. Leading dimensions are row strides in elements. Runs on the compute pool and uses
// the active ISA path (cpu_features.h). Scratch stays allocated between calls: per pool thread the
// A and B blocks (a few MiB), per calling thread up to 16 MiB of B packed for all threads.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

namespace rnnkit {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc);

// op(B) [K, N] packed once into the micro-kernel's panel layout, for reuse across many products
// (the recurrent weights at every timestep). Immutable after construction; safe to share across
// threads.
class PackedB {
 public:
  PackedB(bool trans_b, int64_t K, int64_t N, const float* B, int64_t ldb);
  ~PackedB();
  PackedB(const PackedB&) = delete;
  PackedB& operator=(const PackedB&) = delete;

  int64_t rows() const { return K_; }  // K
  int64_t cols() const { return N_; }  // N
  size_t bytes() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  int64_t K_, N_;
  std::unique_ptr<Impl> impl_;
};

// C = alpha * op(A) * B + beta * C with B packed.
void sgemm_packed(bool trans_a, int64_t M, float alpha, const float* A, int64_t lda,
                  const PackedB& B, float beta, float* C, int64_t ldc);

}  // namespace rnnkit
