// Standalone check of sgemm / sgemm_packed (native/kernels/sgemm.h) against a float64 reference,
// on every ISA path this CPU supports and with 1 and all threads. Fresh random inputs each run
// (seed printed; pass one as argv[1] to replay). C is poisoned with NaN before beta == 0 products,
// the padding of every leading dimension is poisoned with NaN (it must never be read into a
// result) and the padding of C must come back untouched. Also: a product issued inside a pool job,
// and two callers at once (one of them runs on the pool's serial fallback). Exits nonzero on the
// first mismatch. Then the denormal handling (denormals.h): with flushing on, every thread of a
// product treats denormal inputs as zero and the caller's floating-point mode comes back
// unchanged; with it off, denormal products are exact.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "cpu_features.h"
#include "denormals.h"
#include "parallel.h"
#include "sgemm.h"

using namespace rnnkit;

namespace {

struct Shape {
  int64_t M, N, K;
};

struct Case {
  Shape s;
  bool ta, tb;
  float alpha, beta;
  int64_t pad_a, pad_b, pad_c;
};

const float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Data {
  int64_t rows_a, cols_a, lda, rows_b, cols_b, ldb, ldc;
  std::vector<float> A, B, C0;
  std::vector<double> ref, bound;
};

Data make(const Case& c, std::mt19937& rng) {
  Data d;
  const Shape& s = c.s;
  d.rows_a = c.ta ? s.K : s.M;
  d.cols_a = c.ta ? s.M : s.K;
  d.rows_b = c.tb ? s.N : s.K;
  d.cols_b = c.tb ? s.K : s.N;
  d.lda = d.cols_a + c.pad_a;
  d.ldb = d.cols_b + c.pad_b;
  d.ldc = s.N + c.pad_c;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  auto fill = [&](std::vector<float>& v, int64_t rows, int64_t cols, int64_t ld) {
    v.assign(static_cast<size_t>(std::max<int64_t>(1, rows * ld)), kNaN);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) v[i * ld + j] = u(rng);
  };
  fill(d.A, d.rows_a, d.cols_a, d.lda);
  fill(d.B, d.rows_b, d.cols_b, d.ldb);
  fill(d.C0, s.M, s.N, d.ldc);
  d.ref.assign(static_cast<size_t>(s.M * s.N), 0.0);
  d.bound.assign(static_cast<size_t>(s.M * s.N), 0.0);
  for (int64_t i = 0; i < s.M; ++i)
    for (int64_t j = 0; j < s.N; ++j) {
      double acc = 0, mag = 0;
      for (int64_t p = 0; p < s.K; ++p) {
        double a = c.ta ? d.A[p * d.lda + i] : d.A[i * d.lda + p];
        double b = c.tb ? d.B[j * d.ldb + p] : d.B[p * d.ldb + j];
        acc += a * b;
        mag += std::fabs(a * b);
      }
      double c0 = c.beta == 0.f ? 0.0 : d.C0[i * d.ldc + j];
      d.ref[i * s.N + j] = c.alpha * acc + c.beta * c0;
      d.bound[i * s.N + j] = std::fabs(c.alpha) * mag + std::fabs(c.beta * c0);
    }
  return d;
}

// Float32 forward-error bound of a K-term dot product plus the alpha/beta update: (K + 4) units
// of roundoff times the sum of magnitudes. A wrong tile or a stray element is off by O(bound).
bool check(const Case& c, const Data& d, const std::vector<float>& C, const char* what) {
  const Shape& s = c.s;
  const double u = std::ldexp(1.0, -24);
  for (int64_t i = 0; i < s.M; ++i) {
    for (int64_t j = 0; j < d.ldc; ++j) {
      float got = C[i * d.ldc + j];
      bool ok;
      double want;
      if (j < s.N) {
        want = d.ref[i * s.N + j];
        ok = std::fabs(got - want) <= (s.K + 4) * u * d.bound[i * s.N + j] + 1e-30;
      } else {
        want = d.C0[i * d.ldc + j];
        ok = std::isnan(got) && std::isnan(want);
      }
      if (!ok) {
        std::printf(
            "FAIL %s: M=%lld N=%lld K=%lld transA=%d transB=%d alpha=%g beta=%g pads=%lld,%lld,%lld "
            "at (%lld,%lld): got %.9g want %.9g\n",
            what, (long long)s.M, (long long)s.N, (long long)s.K, c.ta, c.tb, c.alpha, c.beta,
            (long long)c.pad_a, (long long)c.pad_b, (long long)c.pad_c, (long long)i, (long long)j,
            got, want);
        return false;
      }
    }
  }
  return true;
}

std::vector<float> fresh_c(const Case& c, const Data& d) {
  std::vector<float> C = d.C0;
  if (c.beta == 0.f)
    for (int64_t i = 0; i < c.s.M; ++i)
      for (int64_t j = 0; j < c.s.N; ++j) C[i * d.ldc + j] = kNaN;
  return C;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned seed = argc > 1 ? static_cast<unsigned>(std::strtoul(argv[1], nullptr, 10))
                           : std::random_device{}();
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("test_sgemm seed %u (detected ISA %s, %d threads)\n", seed,
              isa_name(detected_isa()), num_threads());

  const std::vector<Isa>& isas = available_isas();

  const std::vector<Shape> shapes = {
      {1, 1, 1},      {1, 17, 31},   {2, 3, 4},      {5, 7, 9},     {8, 64, 33},
      {17, 31, 127},  {31, 17, 1},   {127, 31, 17},  {6, 16, 256},  {12, 32, 384},
      {13, 33, 385},  {9, 100, 7},   {33, 47, 800},  {200, 40, 30}, {20, 4100, 5},
      {64, 1024, 64}, {4, 129, 257}, {300, 500, 257}, {70, 4100, 130}, {0, 5, 3},    {5, 0, 3},
      {5, 3, 0},      {1, 1000, 3},  {3, 1, 1000},  {47, 1, 29},
      // The dot route (transposed, unpacked B, M <= 64): tile edges in M, N and K.
      {64, 100, 70},  {7, 13, 45},   {3, 50, 33},   {10, 29, 100}, {64, 40, 2000}, {1, 257, 1024}};
  const float alphas[] = {1.f, 1.f, -1.5f, 0.75f};
  const float betas[] = {0.f, 1.f, 0.5f, -2.f};
  std::uniform_int_distribution<int> pad(0, 3);

  // Thread counts form the outer loop: the pool is resized twice per run, not per case.
  const int all_threads = num_threads();
  int checks = 0;
  for (int threads : {1, all_threads}) {
    set_num_threads(threads);
    std::mt19937 rng(seed);
    for (const Shape& s : shapes) {
      for (int t = 0; t < 4; ++t) {
        for (int ab = 0; ab < 4; ++ab) {
          Case c{s, (t & 1) != 0, (t & 2) != 0, alphas[ab], betas[ab], pad(rng), pad(rng), pad(rng)};
          if (ab == 3) c.pad_a = c.pad_b = c.pad_c = 0;
          Data d = make(c, rng);
          for (Isa isa : isas) {
            set_active_isa(isa);
            char what[80];
            std::snprintf(what, sizeof what, "sgemm %s %dT", isa_name(isa), threads);
            std::vector<float> C = fresh_c(c, d);
            sgemm(c.ta, c.tb, s.M, s.N, s.K, c.alpha, d.A.data(), d.lda, d.B.data(), d.ldb, c.beta,
                  C.data(), d.ldc);
            if (!check(c, d, C, what)) return 1;
            ++checks;
            // Packed under this ISA, multiplied under every ISA (the active one may change).
            PackedB pb(c.tb, s.K, s.N, d.B.data(), d.ldb);
            for (Isa use : isas) {
              set_active_isa(use);
              std::snprintf(what, sizeof what, "packed(%s) used by %s %dT", isa_name(isa),
                            isa_name(use), threads);
              C = fresh_c(c, d);
              sgemm_packed(c.ta, s.M, c.alpha, d.A.data(), d.lda, pb, c.beta, C.data(), d.ldc);
              if (!check(c, d, C, what)) return 1;
              ++checks;
            }
          }
        }
      }
    }
  }

  // A product issued from inside a pool job runs serially on that thread (no deadlock, same result).
  {
    Case c{{70, 90, 50}, false, true, 1.f, 0.f, 1, 2, 3};
    std::mt19937 rng(seed);
    Data d = make(c, rng);
    std::vector<std::vector<float>> Cs(2, fresh_c(c, d));
    parallel_run(2, [&](int tid, int) {
      sgemm(c.ta, c.tb, c.s.M, c.s.N, c.s.K, c.alpha, d.A.data(), d.lda, d.B.data(), d.ldb, c.beta,
            Cs[tid].data(), d.ldc);
    });
    for (auto& C : Cs) {
      if (!check(c, d, C, "nested")) return 1;
      ++checks;
    }
  }

  // Two callers at once: one gets the pool, the other runs its logical threads one after another
  // on its own thread. Both share-pack B (the serial one packs every chunk itself).
  {
    Case c{{300, 500, 257}, false, false, 1.f, 0.f, 0, 1, 2};
    std::mt19937 rng(seed + 1);
    Data d = make(c, rng);
    for (int round = 0; round < 4; ++round) {
      std::vector<std::vector<float>> Cs(2, fresh_c(c, d));
      std::vector<std::thread> callers;
      for (int t = 0; t < 2; ++t)
        callers.emplace_back([&, t] {
          sgemm(c.ta, c.tb, c.s.M, c.s.N, c.s.K, c.alpha, d.A.data(), d.lda, d.B.data(), d.ldb,
                c.beta, Cs[t].data(), d.ldc);
        });
      for (auto& th : callers) th.join();
      for (auto& C : Cs) {
        if (!check(c, d, C, "concurrent callers")) return 1;
        ++checks;
      }
    }
  }

  // Denormals. A holds only denormals (|a| < 1.2e-38), B ordinary values; 2 threads split N.
  // Flushing on: DAZ on every thread makes each product exactly 0 (a thread left in the IEEE mode
  // would leave denormal results in its half). Flushing off: the denormal products are exact in
  // float64 terms, checked at the usual tolerance. Either way the caller's mode is restored.
  if (fp_flush_bits() != 0) {
    set_num_threads(all_threads);
    Case c{{8, 4096, 64}, false, true, 1.f, 0.f, 0, 0, 0};
    std::mt19937 rng(seed + 2);
    Data d = make(c, rng);
    for (float& a : d.A) a *= 1e-39f;
    for (int64_t i = 0; i < c.s.M; ++i)  // the reference of the denormal A
      for (int64_t j = 0; j < c.s.N; ++j) {
        double acc = 0, mag = 0;
        for (int64_t p = 0; p < c.s.K; ++p) {
          double t = double(d.A[i * d.lda + p]) * d.B[j * d.ldb + p];
          acc += t;
          mag += std::fabs(t);
        }
        d.ref[i * c.s.N + j] = acc;
        d.bound[i * c.s.N + j] = mag;
      }
    for (Isa isa : isas) {
      set_active_isa(isa);
      for (bool packed : {false, true}) {
        for (bool flush : {true, false}) {
          set_flush_denormals(flush);
          const uint32_t mode = fp_mode() & ~fp_flush_bits();
          set_fp_mode(mode);
          std::vector<float> C = fresh_c(c, d);
          // Both routes of a thin product: the dot route (B unpacked) and the packed small-M one.
          if (packed) {
            PackedB pb(true, c.s.K, c.s.N, d.B.data(), d.ldb);
            sgemm_packed(false, c.s.M, 1.f, d.A.data(), d.lda, pb, 0.f, C.data(), d.ldc);
          } else {
            sgemm(false, true, c.s.M, c.s.N, c.s.K, 1.f, d.A.data(), d.lda, d.B.data(), d.ldb, 0.f,
                  C.data(), d.ldc);
          }
          if (fp_mode() != mode) {
            std::printf("FAIL denormals %s: the caller's mode 0x%x came back as 0x%x\n",
                        isa_name(isa), mode, fp_mode());
            return 1;
          }
          if (flush) {
            for (int64_t i = 0; i < c.s.M * c.s.N; ++i)
              if (C[i] != 0.f) {
                std::printf("FAIL denormals %s %s: element %lld is %g, not flushed to 0\n",
                            isa_name(isa), packed ? "packed" : "sgemm", (long long)i, C[i]);
                return 1;
              }
          } else {
            // Denormal results carry fewer significant bits: allow their absolute spacing too.
            const double u = std::ldexp(1.0, -24), ulp = std::ldexp(1.0, -149);
            for (int64_t i = 0; i < c.s.M * c.s.N; ++i)
              if (std::fabs(C[i] - d.ref[i]) > (c.s.K + 4) * (u * d.bound[i] + ulp)) {
                std::printf("FAIL denormals (IEEE) %s: element %lld got %g want %g\n",
                            isa_name(isa), (long long)i, C[i], d.ref[i]);
                return 1;
              }
          }
          ++checks;
        }
      }
      // A caller that already flushes keeps flushing.
      set_flush_denormals(true);
      const uint32_t mode = fp_mode() | fp_flush_bits();
      set_fp_mode(mode);
      std::vector<float> C = fresh_c(c, d);
      sgemm(false, true, c.s.M, c.s.N, c.s.K, 1.f, d.A.data(), d.lda, d.B.data(), d.ldb, 0.f,
            C.data(), d.ldc);
      if (fp_mode() != mode) {
        std::printf("FAIL denormals: a flushing caller's mode 0x%x came back as 0x%x\n", mode,
                    fp_mode());
        return 1;
      }
      set_fp_mode(mode & ~fp_flush_bits());
      ++checks;
    }
  }

  std::printf("test_sgemm: %d checks passed on %zu ISA path(s)\n", checks, isas.size());
  return 0;
}
