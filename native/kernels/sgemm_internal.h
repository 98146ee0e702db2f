// Internal interface between the SGEMM driver (sgemm.cc) and the per-ISA micro-kernel files
// (sgemm_avx512.cc, sgemm_avx2.cc, sgemm_neon.cc, sgemm_portable.cc). A micro-kernel updates one
// register tile of C: C[m, n] = alpha * A[m, k] * B[k, n] + beta * C, with m <= mr and n <= nr.
// beta == 0 never reads C. B is a panel of nr columns whose rows are ldb floats apart; all nr
// columns must be readable (packed panels are zero-padded), only the first n are stored.
#pragma once
#include <cstdint>

#include "cpu_features.h"

namespace rnnkit {
namespace sgemm_detail {

// a: A(i, p) = a[i * rs_a + p * cs_a].
using MicroKernel = void (*)(int m, int n, int64_t k, float alpha, const float* a, int64_t rs_a,
                             int64_t cs_a, const float* b, int64_t ldb, float beta, float* c,
                             int64_t ldc);

struct KernelSet {
  Isa isa;
  int mr, nr;      // register tile
  int kc, mc, nc;  // cache blocks: kc x nr B sliver in L1, mc x kc A block in L2, kc x nc in L3
  // 0: the loops above (B sliver in L1, the A micro-panels of the A block cycled over it).
  // > 0: the A micro-panel (mr x kc) stays in L1 while the B panels of a chunk of nq columns
  // (kc x nq, in L2) pass under it; kc is then cut to L1 (tune() in sgemm.cc).
  int nq;
  // A packed in mr-row panels (rs_a = 1, cs_a = mr, zero-padded rows): always computes mr rows,
  // stores the first m. The strides passed are ignored.
  MicroKernel packed_a;
  // A read in place with any strides: computes exactly m rows, so it never reads past A.
  MicroKernel strided_a;
  // Dot-product tile for a transposed, unpacked B (the small-M route of C = A * B^T, as nn.Linear
  // calls it): C[i, j] = alpha * sum_p A[i * lda + p] * B[j * ldb + p] + beta * C[i, j] for
  // i < m <= dm, j < n <= dn. Both operands are read in place along K (contiguous), so B is streamed
  // exactly once with no packing; beta == 0 never reads C.
  int dm, dn;
  void (*dot)(int m, int n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
              int64_t ldb, float beta, float* c, int64_t ldc);
};

const KernelSet& kernels_portable();
#if defined(__x86_64__)
const KernelSet& kernels_avx2();
const KernelSet& kernels_avx512();
#endif
#if defined(__aarch64__)
const KernelSet& kernels_neon();
#endif

}  // namespace sgemm_detail
}  // namespace rnnkit
