// Interim straightforward implementation of sgemm.h (correct, not fast); replaced by the packed,
// ISA-dispatched kernels of the CPU-core issue.
#include "sgemm.h"

#include "parallel.h"

namespace rnnkit {

struct PackedB::Impl {
  std::vector<float> data;  // op(B) row-major [K, N]
};

PackedB::PackedB(bool trans_b, int64_t K, int64_t N, const float* B, int64_t ldb)
    : K_(K), N_(N), impl_(new Impl) {
  impl_->data.resize(static_cast<size_t>(K * N));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      impl_->data[k * N + n] = trans_b ? B[n * ldb + k] : B[k * ldb + n];
}
PackedB::~PackedB() = default;
size_t PackedB::bytes() const { return impl_->data.size() * sizeof(float); }

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
  parallel_for(M, 1, [&](int64_t m0, int64_t m1) {
    std::vector<float> acc(static_cast<size_t>(N));
    for (int64_t m = m0; m < m1; ++m) {
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t k = 0; k < K; ++k) {
        float a = trans_a ? A[k * lda + m] : A[m * lda + k];
        if (trans_b) {
          for (int64_t n = 0; n < N; ++n) acc[n] += a * B[n * ldb + k];
        } else {
          const float* b = B + k * ldb;
          for (int64_t n = 0; n < N; ++n) acc[n] += a * b[n];
        }
      }
      float* c = C + m * ldc;
      for (int64_t n = 0; n < N; ++n) c[n] = alpha * acc[n] + (beta == 0.f ? 0.f : beta * c[n]);
    }
  });
}

void sgemm_packed(bool trans_a, int64_t M, float alpha, const float* A, int64_t lda,
                  const PackedB& B, float beta, float* C, int64_t ldc) {
  sgemm(trans_a, false, M, B.cols(), B.rows(), alpha, A, lda, B.impl().data.data(), B.cols(), beta,
        C, ldc);
}

}  // namespace rnnkit
