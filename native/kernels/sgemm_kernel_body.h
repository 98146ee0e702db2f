// The register-tile micro-kernel, written once for every ISA path. Each ISA file includes this
// inside its own anonymous namespace after defining
//   RNNKIT_SGEMM_TARGET  the function attribute of that ISA (empty for portable C++), and
//   struct Vec           a float vector of Vec::W lanes: reg, zero, load, store, bcast, fma, mul, add,
//                        hsum (the sum of the lanes),
// so that the AVX-512 path runs exactly the logic the other paths test. Deliberately no include
// guard: it is meant to be instantiated once per ISA translation unit. Needs <array>, <cstdint>,
// <utility> and sgemm_internal.h included first.

// One k step of an M x NV tile: acc += A(:, p) * B(p, :).
template <int M, int NV>
RNNKIT_SGEMM_TARGET inline void step(typename Vec::reg (&acc)[M][NV], const float* a, int64_t rs_a,
                                     const float* b) {
  typename Vec::reg bv[NV];
#pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) bv[j] = Vec::load(b + j * Vec::W);
#pragma GCC unroll 32
  for (int i = 0; i < M; ++i) {
    typename Vec::reg av = Vec::bcast(a + i * rs_a);
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = Vec::fma(av, bv[j], acc[i][j]);
  }
}

// M rows by NV vectors of C. kPackedA fixes A's strides at compile time (rs 1, cs M), so the
// broadcasts use constant offsets from one moving pointer.
template <int M, int NV, bool kPackedA>
RNNKIT_SGEMM_TARGET void tile(int m, int n, int64_t k, float alpha, const float* a, int64_t rs_a,
                              int64_t cs_a, const float* b, int64_t ldb, float beta, float* c,
                              int64_t ldc) {
  using reg = typename Vec::reg;
  constexpr int W = Vec::W;
  // FMA latency x pipes needs about 8 independent chains; thin tiles (M = 1, 2: the batch-1
  // recurrent step) get them by splitting k over KS accumulator sets.
  constexpr int KS = M * NV >= 8 ? 1 : (M * NV >= 4 ? 2 : 4);
  if (kPackedA) {
    rs_a = 1;
    cs_a = M;
  }
  // C is touched once per K block, long after its lines left the caches: start fetching the
  // tile now so the stores at the end do not stall on it.
#pragma GCC unroll 32
  for (int i = 0; i < M; ++i) {
    __builtin_prefetch(c + i * ldc, 1);
    __builtin_prefetch(c + i * ldc + NV * W - 1, 1);
  }
  reg acc[KS][M][NV];
#pragma GCC unroll 4
  for (int s = 0; s < KS; ++s)
#pragma GCC unroll 32
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[s][i][j] = Vec::zero();

  int64_t p = 0;
  if (KS > 1) {
    for (; p + KS <= k; p += KS) {
#pragma GCC unroll 4
      for (int s = 0; s < KS; ++s) step<M, NV>(acc[s], a + s * cs_a, rs_a, b + s * ldb);
      a += KS * cs_a;
      b += KS * ldb;
    }
  }
#pragma GCC unroll 4
  for (; p < k; ++p) {
    step<M, NV>(acc[0], a, rs_a, b);
    a += cs_a;
    b += ldb;
  }
#pragma GCC unroll 4
  for (int s = 1; s < KS; ++s)
#pragma GCC unroll 32
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[0][i][j] = Vec::add(acc[0][i][j], acc[s][i][j]);

  const int rows = kPackedA ? m : M;
  const reg va = Vec::bcast(&alpha);
  const reg vb = Vec::bcast(&beta);
#pragma GCC unroll 32
  for (int i = 0; i < M; ++i) {
    if (i >= rows) break;
    float* ci = c + i * ldc;
    if (n == NV * W) {
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) {
        reg r = Vec::mul(va, acc[0][i][j]);
        if (beta == 1.f)
          r = Vec::add(r, Vec::load(ci + j * W));
        else if (beta != 0.f)
          r = Vec::fma(vb, Vec::load(ci + j * W), r);
        Vec::store(ci + j * W, r);
      }
    } else {
      // Partial tile (right edge of C): spill the row and store only the n valid columns.
      alignas(64) float t[NV * W];
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) Vec::store(t + j * W, acc[0][i][j]);
      if (beta == 0.f) {
        for (int j = 0; j < n; ++j) ci[j] = alpha * t[j];
      } else {
        for (int j = 0; j < n; ++j) ci[j] = alpha * t[j] + beta * ci[j];
      }
    }
  }
}

// Dot-product tile (KernelSet::dot): M rows of A against N rows of B, both contiguous along k,
// one vector accumulator per (i, j) reduced at the end. Thin tiles split k over KS accumulator
// sets to keep enough independent FMA chains in flight.
template <int M, int N>
RNNKIT_SGEMM_TARGET void dot_tile(int64_t k, float alpha, const float* a, int64_t lda,
                                  const float* b, int64_t ldb, float beta, float* c,
                                  int64_t ldc) {
  using reg = typename Vec::reg;
  constexpr int W = Vec::W;
  constexpr int KS = M * N >= 8 ? 1 : (M * N >= 4 ? 2 : 4);
  reg acc[KS][M][N];
#pragma GCC unroll 4
  for (int s = 0; s < KS; ++s)
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < N; ++j) acc[s][i][j] = Vec::zero();
  int64_t p = 0;
  for (; p + KS * W <= k; p += KS * W) {
#pragma GCC unroll 4
    for (int s = 0; s < KS; ++s) {
      reg bv[N];
#pragma GCC unroll 8
      for (int j = 0; j < N; ++j) bv[j] = Vec::load(b + j * ldb + p + s * W);
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) {
        reg av = Vec::load(a + i * lda + p + s * W);
#pragma GCC unroll 8
        for (int j = 0; j < N; ++j) acc[s][i][j] = Vec::fma(av, bv[j], acc[s][i][j]);
      }
    }
  }
  for (; p + W <= k; p += W) {
    reg bv[N];
#pragma GCC unroll 8
    for (int j = 0; j < N; ++j) bv[j] = Vec::load(b + j * ldb + p);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      reg av = Vec::load(a + i * lda + p);
#pragma GCC unroll 8
      for (int j = 0; j < N; ++j) acc[0][i][j] = Vec::fma(av, bv[j], acc[0][i][j]);
    }
  }
#pragma GCC unroll 4
  for (int s = 1; s < KS; ++s)
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < N; ++j) acc[0][i][j] = Vec::add(acc[0][i][j], acc[s][i][j]);
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < N; ++j) {
      float sum = Vec::hsum(acc[0][i][j]);
      // The k tail (fewer than W elements) in scalar code.
      for (int64_t q = p; q < k; ++q) sum += a[i * lda + q] * b[j * ldb + q];
      float* cij = c + i * ldc + j;
      *cij = beta == 0.f ? alpha * sum : alpha * sum + beta * *cij;
    }
  }
}

template <int DM, int DN, int... I>
constexpr std::array<void (*)(int64_t, float, const float*, int64_t, const float*, int64_t, float,
                              float*, int64_t),
                     sizeof...(I)>
dot_table(std::integer_sequence<int, I...>) {
  return {{&dot_tile<I / DN + 1, I % DN + 1>...}};
}

template <int MR, int NV, int... I>
constexpr std::array<sgemm_detail::MicroKernel, sizeof...(I)> strided_table(
    std::integer_sequence<int, I...>) {
  return {{&tile<I + 1, NV, false>...}};
}

// Kernel set of this ISA with an MR x (NV * Vec::W) register tile; a_in_l1 picks the loop order
// of KernelSet::nq (its chunk width is derived from the caches at run time).
template <int MR, int NV, int DM = 4, int DN = 3>
sgemm_detail::KernelSet make_kernel_set(Isa isa, int kc, int mc, int nc, bool a_in_l1 = false) {
  struct Entry {
    static void packed(int m, int n, int64_t k, float alpha, const float* a, int64_t rs_a,
                       int64_t cs_a, const float* b, int64_t ldb, float beta, float* c,
                       int64_t ldc) {
      tile<MR, NV, true>(m, n, k, alpha, a, rs_a, cs_a, b, ldb, beta, c, ldc);
    }
    static void strided(int m, int n, int64_t k, float alpha, const float* a, int64_t rs_a,
                        int64_t cs_a, const float* b, int64_t ldb, float beta, float* c,
                        int64_t ldc) {
      static constexpr auto table = strided_table<MR, NV>(std::make_integer_sequence<int, MR>());
      table[m - 1](m, n, k, alpha, a, rs_a, cs_a, b, ldb, beta, c, ldc);
    }
    static void dot(int m, int n, int64_t k, float alpha, const float* a, int64_t lda,
                    const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
      static constexpr auto table = dot_table<DM, DN>(std::make_integer_sequence<int, DM * DN>());
      table[(m - 1) * DN + (n - 1)](k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
  };
  return sgemm_detail::KernelSet{isa,          MR, NV * Vec::W, kc, mc,     nc,
                                 a_in_l1 ? 1 : 0, &Entry::packed, &Entry::strided, DM, DN,
                                 &Entry::dot};
}
