// Times the CPU recurrent kernels on the shapes (I = H, sequence-major): forward inference,
// forward training and backward; medians, GFLOP/s and the bytes a training forward saves. FLOPs
// count the GEMMs only (the oneDNN convention): forward 2·G·H·(I_l + R)·T·B per layer/direction
// (+ 2·R·H·T·B with a projection), backward twice that. A plain sgemm at the shape of the input
// projection is timed alongside as the machine's practical GEMM rate. Never fails on timings.
// The shapes and cases are bench/shapes.json's (native/tools/shape_table.h), the table `npm run
// bench` times: S1-S5 as LSTM, S1 and S2 as GRU (both forms) and RNN tanh.
// Usage: bench_recurrent [--shapes FILE] [filter]  (runs only rows whose label contains `filter`)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "parallel.h"
#include "recurrent.h"
#include "sgemm.h"
#include "shape_table.h"

using namespace rnnkit;
using Mode = RecurrentConfig::Mode;

namespace {

double median_ms(const std::function<void()>& fn) {
  fn();  // warm-up: page faults, pool start, caches
  std::vector<double> ms;
  auto start = std::chrono::steady_clock::now();
  while (ms.size() < 5 || (ms.size() < 50 && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 1.5)) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

void run(const rnnkit_tools::BenchShape& s, const std::string& filter) {
  const std::string& label = s.name;
  if (!filter.empty() && label.find(filter) == std::string::npos) return;
  const Mode mode = rnnkit_tools::mode_named(s.mode);
  RecurrentConfig c;
  c.mode = mode;
  c.linear_before_reset = s.linear_before_reset;
  c.input_size = s.I;
  c.hidden_size = s.H;
  c.num_layers = s.L;
  c.bidirectional = s.D == 2;
  const int64_t T = s.T, B = s.B, I = s.I, H = s.H, D = s.D, G = recurrent_gate_count(mode);
  std::mt19937 rng(7);
  const float k = 1.f / std::sqrt(static_cast<float>(H));
  std::uniform_real_distribution<float> u(-k, k), ux(-1.f, 1.f);
  std::vector<float> w(static_cast<size_t>(recurrent_weights_size(c))), x(static_cast<size_t>(T * B * I));
  for (auto& e : w) e = u(rng);
  for (auto& e : x) e = ux(rng);
  std::vector<float> y(static_cast<size_t>(T * B * D * H)), hy(static_cast<size_t>(s.L * D * B * H)), cy(hy.size());
  std::vector<float> saved(static_cast<size_t>(recurrent_saved_size(c, T, B)));
  std::vector<float> dy(y.size()), dx(x.size()), dhx(hy.size()), dcx(hy.size()), dw(w.size());
  for (auto& e : dy) e = ux(rng);
  float* cyp = mode == Mode::lstm ? cy.data() : nullptr;
  float* dcxp = mode == Mode::lstm ? dcx.data() : nullptr;

  double fwd_flops = 0;
  for (int64_t l = 0; l < s.L; ++l) fwd_flops += 2.0 * G * H * ((l == 0 ? I : D * H) + H) * T * B * D;
  const double inf_ms = median_ms([&] {
    recurrent_forward(c, T, B, false, x.data(), nullptr, nullptr, nullptr, w.data(), 0.f, 1, y.data(), hy.data(), cyp, nullptr);
  });
  const double train_ms = median_ms([&] {
    recurrent_forward(c, T, B, false, x.data(), nullptr, nullptr, nullptr, w.data(), 0.f, 1, y.data(), hy.data(), cyp, saved.data());
  });
  const double bwd_ms = median_ms([&] {
    recurrent_backward(c, T, B, false, x.data(), nullptr, nullptr, nullptr, w.data(), 0.f, 1, y.data(), saved.data(), dy.data(), nullptr, nullptr, dx.data(), dhx.data(), dcxp, dw.data(), false);
  });
  std::printf("%-16s %9.3f %7.1f %9.3f %7.1f %9.3f %7.1f %9.3f %7.1f %8.1f\n", label.c_str(), inf_ms,
              fwd_flops / inf_ms * 1e-6, train_ms, fwd_flops / train_ms * 1e-6, bwd_ms,
              2 * fwd_flops / bwd_ms * 1e-6, train_ms + bwd_ms, 3 * fwd_flops / (train_ms + bwd_ms) * 1e-6,
              static_cast<double>(saved.size()) * 4 / 1e6);
}

// The input-projection GEMM of one LSTM layer at this shape: [T·B, H] x [H, 4H].
double gemm_rate(int64_t M, int64_t N, int64_t K) {
  std::vector<float> a(static_cast<size_t>(M * K), 0.5f), b(static_cast<size_t>(N * K), 0.25f), c(static_cast<size_t>(M * N));
  double ms = median_ms([&] { sgemm(false, true, M, N, K, 1.f, a.data(), K, b.data(), K, 0.f, c.data(), N); });
  return 2.0 * M * N * K / ms * 1e-6;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<rnnkit_tools::BenchShape> cases;
  int64_t pm = 0, pn = 0, pk = 0;  // the input projection of S2: [T·B, I] x [I, 4H]
  try {
    const rnnkit_tools::Json table = rnnkit_tools::read_shape_table(rnnkit_tools::shapes_path_option(argc, argv));
    cases = rnnkit_tools::recurrent_cases(table);
    const rnnkit_tools::Json& s2 = table.at("recurrent").at("S2");
    pm = s2.integer("T") * s2.integer("B"), pn = 4 * s2.integer("H"), pk = s2.integer("I");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_recurrent: %s\n", e.what());
    return 2;
  }
  const std::string filter = argc > 1 ? argv[1] : "";
  std::printf("bench_recurrent: isa %s, %d threads; times are medians in ms, rates GFLOP/s\n",
              isa_name(active_isa()), num_threads());
  std::printf("sgemm [%lld x %lld x %lld] (S2 input projection): %.1f GFLOP/s\n", static_cast<long long>(pm),
              static_cast<long long>(pn), static_cast<long long>(pk), gemm_rate(pm, pn, pk));
  std::printf("%-16s %9s %7s %9s %7s %9s %7s %9s %7s %8s\n", "shape", "infer", "GF/s", "fwd-train",
              "GF/s", "backward", "GF/s", "train", "GF/s", "saved MB");
  for (const auto& s : cases) run(s, filter);
  return 0;
}
