// Checks rmsnorm_forward / rmsnorm_backward against a double-precision reference written here,
// independently of the kernels, and the analytic gradients against central finite differences of
// that reference. Runs every ISA path the machine supports and several pool sizes (which select
// the row split and the column split). Fresh random inputs each run; RMSNORM_SEED=<n> replays one.
// Exit status is nonzero when any check fails.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "parallel.h"
#include "rmsnorm.h"

using namespace rnnkit;

namespace {

constexpr double kForwardTol = 1e-5;
constexpr double kBackwardTol = 1e-4;
const float kNaN = std::numeric_limits<float>::quiet_NaN();

int g_failures = 0;
int g_checks = 0;
std::string g_context;

void fail(const std::string& what) {
  ++g_failures;
  if (g_failures <= 30) std::printf("FAIL [%s] %s\n", g_context.c_str(), what.c_str());
}

void check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) fail(what);
}

// Max-norm relative error of `got` against `want` over [begin, end), relative to at least
// `floor`; NaN anywhere is an error.
double relative_error(const float* got, const double* want, int64_t begin, int64_t end,
                      double floor = 0) {
  double err = 0, scale = floor;
  for (int64_t i = begin; i < end; ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();
    err = std::max(err, std::fabs(got[i] - want[i]));
    scale = std::max(scale, std::fabs(want[i]));
  }
  return scale > 0 ? err / scale : err;
}

void check_close(const char* name, const float* got, const double* want, int64_t n, double tol,
                 double floor = 0) {
  double e = relative_error(got, want, 0, n, floor);
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s: relative error %.3g > %.1g", name, e, tol);
  check(e <= tol, buf);
}

// Row by row, since rows of very different scale have very different dx magnitudes. dx is a
// difference of two terms that nearly cancel in narrow rows (for cols = 1 it is ~0 whatever the
// input), so its error is measured against the larger term, rrms*dy*gamma (`floors`).
void check_close_rows(const char* name, const float* got, const double* want, int64_t rows,
                      int64_t cols, double tol, const double* floors = nullptr) {
  double worst = 0;
  for (int64_t r = 0; r < rows; ++r)
    worst = std::max(worst, relative_error(got, want, r * cols, (r + 1) * cols,
                                           floors ? floors[r] : 0.0));
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s: worst row relative error %.3g > %.1g", name, worst, tol);
  check(worst <= tol, buf);
}

// ---- double-precision reference -------------------------------------------------------------

double ref_rrms(const float* x, int64_t cols, double eps) {
  double ss = 0;
  for (int64_t j = 0; j < cols; ++j) ss += static_cast<double>(x[j]) * x[j];
  return 1.0 / std::sqrt(ss / cols + eps);
}

// Loss of one row for the gradient checks: sum_j y_j * w_j, in double, with x given in double.
double ref_row_loss(const std::vector<double>& x, const std::vector<double>& gamma,
                    const std::vector<double>& beta, const double* w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  double r = 1.0 / std::sqrt(ss / x.size() + eps);
  double loss = 0;
  for (size_t j = 0; j < x.size(); ++j) loss += (x[j] * r * gamma[j] + beta[j]) * w[j];
  return loss;
}

struct Reference {
  std::vector<double> y, rrms, dx, dgamma, dbeta;
  std::vector<double> dx_floor;  // per row: max_j |rrms * dy * gamma|
  // max_j |x * rrms * gamma| + |beta|: y's terms, so that a y cancelled by beta (one column
  // with x * rrms * gamma close to -beta) is judged against the size of what was added.
  double y_floor = 0;
  // max_j of the sums of |terms| of dgamma_j and dbeta_j (sums over rows): their float32 error
  // scales with these, not with the sums themselves, which cancel (for cols = 1, x * rrms = ±1 and
  // dgamma is a random-signed sum of dy: a seed once left it at 1/50 of its terms' size and the
  // kernel's float32 sum 1.4e-4 off relative to it).
  double g_floor = 0, b_floor = 0;
};

Reference reference(const std::vector<float>& x, const std::vector<float>& gamma,
                    const float* beta, const std::vector<float>& dy, int64_t rows, int64_t cols,
                    double eps) {
  Reference ref;
  ref.y.resize(rows * cols);
  ref.rrms.resize(rows);
  ref.dx.resize(rows * cols);
  ref.dgamma.assign(cols, 0.0);
  ref.dbeta.assign(cols, 0.0);
  ref.dx_floor.assign(rows, 0.0);
  std::vector<double> g_abs(cols, 0.0), b_abs(cols, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = &x[r * cols];
    const float* dyr = &dy[r * cols];
    double rr = ref_rrms(xr, cols, eps);
    // The kernels receive rrms rounded to float; the reference gradient uses the same value so
    // that the comparison measures the kernels' arithmetic, not that rounding.
    double rf = static_cast<float>(rr);
    ref.rrms[r] = rr;
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) {
      ref.y[r * cols + j] = xr[j] * rr * gamma[j] + (beta ? beta[j] : 0.0);
      ref.y_floor = std::max(ref.y_floor, std::fabs(xr[j] * rr * gamma[j]) + (beta ? std::fabs(beta[j]) : 0.0));
      s += static_cast<double>(dyr[j]) * gamma[j] * xr[j];
    }
    for (int64_t j = 0; j < cols; ++j) {
      ref.dx[r * cols + j] = rf * dyr[j] * gamma[j] - rf * rf * rf * s * xr[j] / cols;
      ref.dx_floor[r] = std::max(ref.dx_floor[r], std::fabs(rf * dyr[j] * gamma[j]));
      ref.dgamma[j] += static_cast<double>(dyr[j]) * xr[j] * rf;
      ref.dbeta[j] += dyr[j];
      g_abs[j] += std::fabs(static_cast<double>(dyr[j]) * xr[j] * rf);
      b_abs[j] += std::fabs(dyr[j]);
    }
  }
  for (int64_t j = 0; j < cols; ++j) {
    ref.g_floor = std::max(ref.g_floor, g_abs[j]);
    ref.b_floor = std::max(ref.b_floor, b_abs[j]);
  }
  return ref;
}

// ---- random inputs --------------------------------------------------------------------------

std::mt19937_64 g_rng;

std::vector<float> normal(int64_t n, double scale = 1.0) {
  std::normal_distribution<float> d(0.f, static_cast<float>(scale));
  std::vector<float> v(n);
  for (auto& e : v) e = d(g_rng);
  return v;
}

// Rows of widely different magnitudes, since the norm must be scale-invariant.
std::vector<float> random_rows(int64_t rows, int64_t cols) {
  std::uniform_real_distribution<double> exponent(-3, 3);
  std::vector<float> x = normal(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    float s = static_cast<float>(std::pow(10.0, exponent(g_rng)));
    for (int64_t j = 0; j < cols; ++j) x[r * cols + j] *= s;
  }
  return x;
}

std::vector<float> random_gamma(int64_t cols) {
  std::uniform_real_distribution<float> d(0.5f, 1.5f);
  std::vector<float> g(cols);
  for (auto& e : g) e = (g_rng() & 1) ? d(g_rng) : -d(g_rng);
  return g;
}

std::vector<float> poisoned(int64_t n) { return std::vector<float>(n, kNaN); }

// ---- cases ----------------------------------------------------------------------------------

void run_case(int64_t rows, int64_t cols, bool with_beta, bool accumulate, float eps) {
  std::vector<float> x = random_rows(rows, cols), gamma = random_gamma(cols);
  std::vector<float> beta = normal(cols), dy = normal(rows * cols);
  const float* beta_p = with_beta ? beta.data() : nullptr;
  Reference ref = reference(x, gamma, beta_p, dy, rows, cols, eps);

  std::vector<float> y = poisoned(rows * cols), rrms = poisoned(rows);
  rmsnorm_forward(y.data(), rrms.data(), x.data(), gamma.data(), beta_p, rows, cols, eps);
  check_close("y", y.data(), ref.y.data(), rows * cols, kForwardTol, ref.y_floor);
  check_close_rows("rrms", rrms.data(), ref.rrms.data(), rows, 1, kForwardTol);

  // Accumulating gradients start from random values the kernel must add to.
  std::vector<float> init_g = normal(cols), init_b = normal(cols);
  std::vector<float> dx = poisoned(rows * cols);
  std::vector<float> dgamma = accumulate ? init_g : poisoned(cols);
  std::vector<float> dbeta = accumulate ? init_b : poisoned(cols);
  rmsnorm_backward(dx.data(), dgamma.data(), dbeta.data(), dy.data(), x.data(), gamma.data(),
                   rrms.data(), rows, cols, accumulate);
  std::vector<double> want_g = ref.dgamma, want_b = ref.dbeta;
  if (accumulate) {
    for (int64_t j = 0; j < cols; ++j) want_g[j] += init_g[j], want_b[j] += init_b[j];
  }
  check_close_rows("dx", dx.data(), ref.dx.data(), rows, cols, kBackwardTol,
                   ref.dx_floor.data());
  check_close("dgamma", dgamma.data(), want_g.data(), cols, kBackwardTol, ref.g_floor);
  check_close("dbeta", dbeta.data(), want_b.data(), cols, kBackwardTol, ref.b_floor);

  // Same inputs, same pool: bit-identical gradients.
  std::vector<float> dx2 = poisoned(rows * cols);
  std::vector<float> dgamma2 = accumulate ? init_g : poisoned(cols);
  std::vector<float> dbeta2 = accumulate ? init_b : poisoned(cols);
  rmsnorm_backward(dx2.data(), dgamma2.data(), dbeta2.data(), dy.data(), x.data(), gamma.data(),
                   rrms.data(), rows, cols, accumulate);
  check(dx2 == dx && dgamma2 == dgamma && dbeta2 == dbeta, "backward not deterministic");

  // Each output on its own: the skipped ones must stay untouched.
  std::vector<float> dx_only = poisoned(rows * cols), g_only = poisoned(cols);
  rmsnorm_backward(dx_only.data(), nullptr, nullptr, dy.data(), x.data(), gamma.data(),
                   rrms.data(), rows, cols, false);
  check(dx_only == dx, "dx alone differs from dx with weight gradients");
  rmsnorm_backward(nullptr, g_only.data(), nullptr, dy.data(), x.data(), gamma.data(),
                   rrms.data(), rows, cols, false);
  check_close("dgamma alone", g_only.data(), ref.dgamma.data(), cols, kBackwardTol, ref.g_floor);
}

// Analytic gradients against central differences of the double forward, loss = sum(y * w).
void run_finite_differences(int64_t rows, int64_t cols, float eps) {
  std::vector<float> x = random_rows(rows, cols), gamma = random_gamma(cols);
  std::vector<float> beta = normal(cols), w = normal(rows * cols);
  std::vector<float> y(rows * cols), rrms(rows), dx = poisoned(rows * cols);
  std::vector<float> dgamma = poisoned(cols), dbeta = poisoned(cols);
  rmsnorm_forward(y.data(), rrms.data(), x.data(), gamma.data(), beta.data(), rows, cols, eps);
  rmsnorm_backward(dx.data(), dgamma.data(), dbeta.data(), w.data(), x.data(), gamma.data(),
                   rrms.data(), rows, cols, false);

  std::vector<double> gd(gamma.begin(), gamma.end()), bd(beta.begin(), beta.end());
  const int64_t probes = std::min<int64_t>(cols, 24);
  std::uniform_int_distribution<int64_t> pick(0, cols - 1);
  double worst = 0;
  for (int64_t r = 0; r < std::min<int64_t>(rows, 4); ++r) {
    std::vector<double> xr(x.begin() + r * cols, x.begin() + (r + 1) * cols);
    std::vector<double> wr(w.begin() + r * cols, w.begin() + (r + 1) * cols);
    double rms = 1.0 / ref_rrms(&x[r * cols], cols, 0.0);
    double h = 1e-3 * rms;
    double row_scale = 0;
    for (int64_t j = 0; j < cols; ++j) {
      double term = static_cast<double>(rrms[r]) * w[r * cols + j] * gamma[j];
      row_scale = std::max({row_scale, std::fabs(term), std::fabs(double{dx[r * cols + j]})});
    }
    for (int64_t p = 0; p < probes; ++p) {
      int64_t j = probes == cols ? p : pick(g_rng);
      double keep = xr[j];
      xr[j] = keep + h;
      double up = ref_row_loss(xr, gd, bd, wr.data(), eps);
      xr[j] = keep - h;
      double down = ref_row_loss(xr, gd, bd, wr.data(), eps);
      xr[j] = keep;
      double fd = (up - down) / (2 * h);
      worst = std::max(worst, std::fabs(dx[r * cols + j] - fd) / row_scale);
    }
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "dx vs finite differences: relative error %.3g", worst);
  check(worst <= kBackwardTol, buf);

  // dgamma and dbeta: the loss is linear in them, so the difference quotient is exact up to
  // rounding; this checks the summation over rows and the r scaling. Each is a float32 sum over
  // rows, judged against the size of its terms (sum of |w·x·r| and of |w|), not of the result: with
  // one column, x·r = ±1 and thousands of rows can cancel to a small sum (RMSNORM_SEED=
  // 7056274280095023981, rows 4097, cols 1: 1.4e-4 of the result, 4e-7 of the terms).
  double worst_g = 0, worst_b = 0, scale_g = 0, scale_b = 0;
  for (int64_t j = 0; j < cols; ++j) {
    double terms_g = 0, terms_b = 0;
    for (int64_t r = 0; r < rows; ++r) {
      terms_g += std::fabs(double{w[r * cols + j]} * x[r * cols + j] * rrms[r]);
      terms_b += std::fabs(double{w[r * cols + j]});
    }
    scale_g = std::max({scale_g, std::fabs(double{dgamma[j]}), terms_g});
    scale_b = std::max({scale_b, std::fabs(double{dbeta[j]}), terms_b});
  }
  for (int64_t p = 0; p < std::min<int64_t>(cols, 8); ++p) {
    int64_t j = pick(g_rng);
    double fd_g = 0, fd_b = 0;
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<double> xr(x.begin() + r * cols, x.begin() + (r + 1) * cols);
      std::vector<double> wd(w.begin() + r * cols, w.begin() + (r + 1) * cols);
      double hg = 1e-3, keep_g = gd[j], keep_b = bd[j];
      gd[j] = keep_g + hg;
      double up = ref_row_loss(xr, gd, bd, wd.data(), eps);
      gd[j] = keep_g - hg;
      double down = ref_row_loss(xr, gd, bd, wd.data(), eps);
      gd[j] = keep_g;
      fd_g += (up - down) / (2 * hg);
      bd[j] = keep_b + hg;
      up = ref_row_loss(xr, gd, bd, wd.data(), eps);
      bd[j] = keep_b - hg;
      down = ref_row_loss(xr, gd, bd, wd.data(), eps);
      bd[j] = keep_b;
      fd_b += (up - down) / (2 * hg);
    }
    worst_g = std::max(worst_g, std::fabs(dgamma[j] - fd_g) / scale_g);
    worst_b = std::max(worst_b, std::fabs(dbeta[j] - fd_b) / scale_b);
  }
  std::snprintf(buf, sizeof buf, "dgamma/dbeta vs finite differences: %.3g / %.3g", worst_g,
                worst_b);
  check(worst_g <= kBackwardTol && worst_b <= kBackwardTol, buf);
}

// NaN and Inf inputs propagate instead of crashing or leaking into other rows; eps = 0 with an
// all-zero row gives rrms = Inf and y = NaN, as documented in rmsnorm.h.
void run_non_finite(int64_t cols) {
  const int64_t rows = 4;
  std::vector<float> x = normal(rows * cols), gamma = random_gamma(cols), beta = normal(cols);
  x[1 * cols + cols / 2] = kNaN;
  x[2 * cols + cols / 3] = std::numeric_limits<float>::infinity();
  std::fill(x.begin() + 3 * cols, x.begin() + 4 * cols, 0.f);
  std::vector<float> y = poisoned(rows * cols), rrms = poisoned(rows);
  rmsnorm_forward(y.data(), rrms.data(), x.data(), gamma.data(), beta.data(), rows, cols, 0.f);
  Reference ref = reference(x, gamma, beta.data(), x, 1, cols, 0.0);
  check(relative_error(y.data(), ref.y.data(), 0, cols) <= kForwardTol, "finite row disturbed");
  bool row1_nan = std::isnan(rrms[1]), row3_inf = std::isinf(rrms[3]) && rrms[3] > 0;
  for (int64_t j = 0; j < cols; ++j) {
    row1_nan = row1_nan && std::isnan(y[1 * cols + j]);
    row3_inf = row3_inf && std::isnan(y[3 * cols + j]);
  }
  check(row1_nan, "NaN in x did not make its row NaN");
  check(rrms[2] == 0.f && std::isnan(y[2 * cols + cols / 3]), "Inf in x: expected rrms 0, y NaN");
  check(row3_inf, "eps 0 with an all-zero row: expected rrms Inf and y NaN");

  // A NaN in dy spoils its row of dx and its column of dgamma/dbeta, nothing else.
  std::vector<float> xs = normal(rows * cols), dy = normal(rows * cols), r(rows);
  std::vector<float> ys(rows * cols);
  rmsnorm_forward(ys.data(), r.data(), xs.data(), gamma.data(), nullptr, rows, cols, 1e-6f);
  const int64_t bad = cols - 1;
  dy[2 * cols + bad] = kNaN;
  std::vector<float> dx = poisoned(rows * cols), dg = poisoned(cols), db = poisoned(cols);
  rmsnorm_backward(dx.data(), dg.data(), db.data(), dy.data(), xs.data(), gamma.data(), r.data(),
                   rows, cols, false);
  bool ok = std::isnan(dg[bad]) && std::isnan(db[bad]);
  for (int64_t j = 0; j < cols; ++j) {
    ok = ok && std::isnan(dx[2 * cols + j]) && std::isfinite(dx[j]);
    if (j != bad) ok = ok && std::isfinite(dg[j]) && std::isfinite(db[j]);
  }
  check(ok, "NaN in dy did not stay in its row of dx and its column of dgamma/dbeta");
}

std::string describe(Isa isa, const char* mode, int64_t rows, int64_t cols) {
  return std::string(isa_name(isa)) + " " + mode + " rows=" +
         std::to_string(rows) + " cols=" + std::to_string(cols);
}

}  // namespace

int main() {
  uint64_t seed = std::random_device{}();
  seed = (seed << 32) ^ std::random_device{}();
  if (const char* env = std::getenv("RMSNORM_SEED")) seed = std::strtoull(env, nullptr, 10);
  g_rng.seed(seed);
  std::printf("test_rmsnorm: seed %llu (replay with RMSNORM_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));

  const int64_t widths[] = {1, 3, 17, 1023, 1024, 4096, 65536};
  const float eps_values[] = {1e-6f, 0.f, 1e-2f};
  // "pool" uses every pool thread (row split, or column split for few wide rows); "serial" calls
  // the kernels from inside a pool job, where they run on one thread. Other pool sizes: run again
  // with RNNKIT_NUM_THREADS=<n> (resizing the pool from here would race its worker start-up).
  const char* modes[] = {"pool", "serial"};

  for (Isa isa : available_isas()) {
    set_active_isa(isa);
    for (const char* mode : modes) {
      auto body = [&] {
        int case_no = 0;
        for (int64_t cols : widths) {
          // An odd count above 2^21 elements: uneven thread shares, and outputs large enough
          // for the streaming-store paths (1023 makes them start unaligned).
          const int64_t many =
              std::max<int64_t>(64, std::min<int64_t>(4096, (int64_t{1} << 21) / cols)) + 1;
          // 17 rows: more than one float block of gradient rows on one thread.
          for (int64_t rows : {int64_t{1}, int64_t{5}, int64_t{17}, many}) {
            for (int variant = 0; variant < 4; ++variant) {
              bool with_beta = variant & 1, accumulate = variant & 2;
              float eps = eps_values[case_no++ % 3];
              g_context = describe(isa, mode, rows, cols) + " beta=" + std::to_string(with_beta) +
                          " acc=" + std::to_string(accumulate) + " eps=" + std::to_string(eps);
              run_case(rows, cols, with_beta, accumulate, eps);
            }
            g_context = describe(isa, mode, rows, cols) + " finite differences";
            run_finite_differences(rows, cols, eps_values[case_no % 3]);
          }
          g_context = describe(isa, mode, 4, cols) + " non-finite";
          run_non_finite(cols);
        }
      };
      if (mode == modes[0]) {
        body();
      } else {
        parallel_run(1, [&](int, int) { body(); });
      }
      std::printf("  %-8s %-6s (%d pool threads): %d failures so far\n",
                  isa_name(isa), mode, num_threads(), g_failures);
      std::fflush(stdout);
    }
  }

  std::printf("test_rmsnorm: %d checks, %d failed; ISA paths run: up to %s (detected)\n", g_checks,
              g_failures, isa_name(detected_isa()));
  if (g_failures) std::printf("replay with RMSNORM_SEED=%llu\n", static_cast<unsigned long long>(seed));
  return g_failures ? 1 : 0;
}
