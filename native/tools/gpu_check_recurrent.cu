// gpu_check_recurrent: the CUDA Recurrent op (cuda_recurrent.h) against the CPU op
// (native/kernels/recurrent.h), then timed; needs no Node.
//   ./build-cuda/gpu_check_recurrent [--quick] [--no-bench | --bench-only | --probe] [--shapes FILE]
//   (RNNKIT_TEST_SEED replays; the bench shapes come from bench/shapes.json or FILE, run from the repo root)
// Without a usable device it prints "no CUDA device: skipped (<reason>)" and exits 0; with
// RNNKIT_REQUIRE_GPU=1 it exits 2 with the CUDA error instead (gpu_check_harness.cuh).
// Checks: the CPU test matrix of native/tools/test_recurrent.cc (every mode incl. both GRU forms,
// 1-3 layers, bidirectional, variable lengths in any order incl. 0 and T, batch_first, skip input,
// LSTM projection / clip / peepholes in every combination, dropout, accumulate, absent hx / cx /
// dy / dhy / dcy) plus wider layers, on fresh random inputs with every GPU output but `saved`
// poisoned with NaN first (see run_case). Each forward runs with the standard algorithm and, where
// it applies, the persistent one; the backward runs on the GPU's own saved and on the CPU's saved.
// Bound, per output array: max|gpu - cpu| <= 1e-4 · max(max|cpu|, 1e-3) (fp32 on both sides; the
// two differ by exp/tanh rounding and GEMM summation order). NaN fails.
// Bench: the shapes of bench/shapes.json (native/tools/shape_table.h): S1-S5 and its gpuBench list
// (the DeepBench LSTM training shapes H 512/1024/2048, B 16/32/64/128, T 25, GRU H 1024, B 32,
// T 500, and small batches where the persistent kernel applies); medians of CUDA-event
// times around whole calls, GFLOP/s counted as 2·T·B·G·H·(I + R) per layer and direction
// (backward: twice that). Exit status 0 when every check passes.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common.cuh"
#include "cuda_api.h"
#include "cuda_recurrent.h"
#include "gpu_check_harness.cuh"
#include "recurrent.h"
#include "recurrent_persistent.cuh"
#include "shape_table.h"

using namespace rnnkit;
using Mode = RecurrentConfig::Mode;
using namespace gpucheck;  // Dev, pass, fail, guarded, within, median_ms, kDevice, ...

namespace {

double g_worst = 0;

std::vector<float> rnd(size_t n, float a = 1.f) { return gpucheck::random_vector(n, -a, a); }

bool close(const std::string& what, const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) {
    fail(what, "size " + std::to_string(got.size()) + " vs " + std::to_string(want.size()));
    return false;
  }
  double scale = 1e-3, err = 0;
  size_t at = 0;
  for (float v : want) scale = std::max(scale, std::fabs(static_cast<double>(v)));
  for (size_t i = 0; i < want.size(); ++i) {
    const double e = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (std::isnan(e)) {
      err = NAN;
      at = i;
      break;
    }
    if (e > err) {
      err = e;
      at = i;
    }
  }
  const double rel = err / scale;
  if (!(rel <= 1e-4)) {
    char why[200];
    std::snprintf(why, sizeof why, "relative error %.3g at element %zu (gpu %.9g, cpu %.9g)", rel, at, got[at], want[at]);
    fail(what, why);
    return false;
  }
  gpucheck::pass_quietly();
  g_worst = std::max(g_worst, rel);
  return true;
}

struct Case {
  RecurrentConfig cfg;
  int64_t T = 1, B = 1;
  bool batch_first = false, lengths = false, dropout = false, accumulate = false;
  bool has_hx = true, has_cx = true, has_dy = true, has_dhy = true, has_dcy = true;
};

std::string describe(const Case& cs) {
  const RecurrentConfig& c = cs.cfg;
  const char* m = c.mode == Mode::lstm ? "lstm" : c.mode == Mode::gru ? (c.linear_before_reset ? "gru" : "gru-onnx")
                  : c.mode == Mode::rnn_tanh ? "rnn_tanh" : "rnn_relu";
  char s[240];
  std::snprintf(s, sizeof s, "%s L%lld%s H%lld I%lld T%lld B%lld%s%s%s%s%s%s%s%s", m,
                static_cast<long long>(c.num_layers), c.bidirectional ? " bi" : "", static_cast<long long>(c.hidden_size),
                static_cast<long long>(c.input_size), static_cast<long long>(cs.T), static_cast<long long>(cs.B),
                cs.batch_first ? " bf" : "", cs.lengths ? " lens" : "", c.skip_input ? " skip" : "",
                c.proj_size ? " proj" : "", c.cell_clip > 0 ? " clip" : "", c.peepholes ? " peep" : "",
                cs.dropout ? " dropout" : "", cs.accumulate ? " acc" : "");
  return s;
}

void run_case(const Case& cs) {
  const RecurrentConfig& c = cs.cfg;
  const std::string name = describe(cs);
  const bool lstm = c.mode == Mode::lstm;
  const int64_t T = cs.T, B = cs.B, H = c.hidden_size, R = c.proj_size ? c.proj_size : H;
  const int64_t LD = c.num_layers * (c.bidirectional ? 2 : 1), DR = (c.bidirectional ? 2 : 1) * R;
  const int64_t nw = recurrent_weights_size(c), ns = recurrent_saved_size(c, T, B);
  const float p = cs.dropout ? 0.3f : 0.f;
  const uint64_t seed = gpucheck::rng()();
  std::vector<int32_t> lens;
  if (cs.lengths) {
    // Any order, including 0 and T.
    for (int64_t b = 0; b < B; ++b) lens.push_back(static_cast<int32_t>(b == 0 ? T : b == 1 ? 0 : gpucheck::rng()() % (T + 1)));
    std::shuffle(lens.begin(), lens.end(), gpucheck::rng());
  }
  const int32_t* pl = cs.lengths ? lens.data() : nullptr;
  const float wscale = 1.f / std::sqrt(static_cast<float>(H));
  const std::vector<float> x = rnd(T * B * c.input_size), w = rnd(nw, wscale);
  const std::vector<float> hx = cs.has_hx ? rnd(LD * B * R) : std::vector<float>();
  const std::vector<float> cx = lstm && cs.has_cx ? rnd(LD * B * H) : std::vector<float>();
  const std::vector<float> dy = cs.has_dy ? rnd(T * B * DR) : std::vector<float>();
  const std::vector<float> dhy = cs.has_dhy ? rnd(LD * B * R) : std::vector<float>();
  const std::vector<float> dcy = lstm && cs.has_dcy ? rnd(LD * B * H) : std::vector<float>();
  const std::vector<float> dw0 = cs.accumulate ? rnd(nw) : std::vector<float>(nw, 0.f);
  auto ptr = [](const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); };

  // CPU reference.
  std::vector<float> y(T * B * DR), hy(LD * B * R), cy(lstm ? LD * B * H : 0), saved(ns);
  recurrent_forward(c, T, B, cs.batch_first, ptr(x), ptr(hx), ptr(cx), pl, w.data(), p, seed, y.data(), hy.data(),
                    lstm ? cy.data() : nullptr, ns ? saved.data() : nullptr);
  std::vector<float> dx(T * B * c.input_size), dhx(LD * B * R), dcx(lstm ? LD * B * H : 0), dw = dw0;
  recurrent_backward(c, T, B, cs.batch_first, ptr(x), ptr(hx), ptr(cx), pl, w.data(), p, seed, ptr(y), ptr(saved),
                     ptr(dy), ptr(dhy), ptr(dcy), dx.data(), dhx.data(), lstm ? dcx.data() : nullptr, dw.data(),
                     cs.accumulate);

  Dev gx(x), gw(w), ghx(hx), gcx(cx), gdy(dy), gdhy(dhy), gdcy(dcy);
  std::vector<gpu::RecurrentAlgo> algos = {gpu::RecurrentAlgo::standard};
  try {
    gpu::recurrent_forward_algorithm(kDevice, c, T, B, gpu::RecurrentAlgo::persistent);
    algos.push_back(gpu::RecurrentAlgo::persistent);
  } catch (const Error&) {
    // Not applicable to this shape: the standard run covers it.
  }
  for (gpu::RecurrentAlgo algo : algos) {
    const std::string what = name + (algo == gpu::RecurrentAlgo::persistent ? " [persistent]" : " [standard]");
    // `saved` starts as zeros like the CPU's: neither backend writes the cell states (nor the GRU
    // hn block) of steps past a sequence's end, which no backward reads. Every other output starts
    // as NaN.
    Dev gy(y.size()), ghy(hy.size()), gcy(cy.size()), gsaved(std::vector<float>(saved.size(), 0.f));
    for (const Dev* d : {&gy, &ghy, &gcy}) d->poison();
    gpu::recurrent_forward(kDevice, c, T, B, cs.batch_first, gx.p, ghx.p, gcx.p, pl, gw.p, p, seed, gy.p, ghy.p,
                           gcy.p, ns ? gsaved.p : nullptr, algo);
    bool ok = close(what + " y", gy.get(), y) && close(what + " hy", ghy.get(), hy);
    if (ok && lstm) ok = close(what + " cy", gcy.get(), cy);
    // With every row running, every saved value is meaningful; with lengths, the entries of
    // finished steps are left to each backend (the backward from the CPU's saved covers them).
    if (ok && ns && !cs.lengths) ok = close(what + " saved", gsaved.get(), saved);
    // Inference keeps nothing and must give the same outputs.
    if (ok) {
      gy.poison();
      ghy.poison();
      gpu::recurrent_forward(kDevice, c, T, B, cs.batch_first, gx.p, ghx.p, gcx.p, pl, gw.p, p, seed, gy.p, ghy.p,
                             nullptr, nullptr, algo);
      ok = close(what + " inference y", gy.get(), y) && close(what + " inference hy", ghy.get(), hy);
    }
    if (!ok) continue;
    // Backward from the GPU's saved and, on the standard run, from the CPU's saved.
    for (int from_cpu = 0; from_cpu < (algo == gpu::RecurrentAlgo::standard ? 2 : 1); ++from_cpu) {
      const std::string bw = what + (from_cpu ? " backward(cpu saved)" : " backward");
      Dev cpu_saved(from_cpu ? saved : std::vector<float>());
      Dev cpu_y(from_cpu ? y : std::vector<float>());
      Dev gdx(dx.size()), gdhx(dhx.size()), gdcx(dcx.size()), gdw(dw0);
      for (const Dev* d : {&gdx, &gdhx, &gdcx}) d->poison();
      if (!cs.accumulate) gdw.poison();
      gpu::recurrent_backward(kDevice, c, T, B, cs.batch_first, gx.p, ghx.p, gcx.p, pl, gw.p, p, seed,
                              from_cpu ? cpu_y.p : gy.p, from_cpu ? cpu_saved.p : (ns ? gsaved.p : nullptr), gdy.p,
                              gdhy.p, gdcy.p, gdx.p, gdhx.p, gdcx.p, gdw.p, cs.accumulate);
      bool bok = close(bw + " dx", gdx.get(), dx) && close(bw + " dhx", gdhx.get(), dhx) &&
                 close(bw + " dweights", gdw.get(), dw);
      if (bok && lstm) close(bw + " dcx", gdcx.get(), dcx);
    }
  }
}

void check_matrix(bool quick) {
  struct ModeCase {
    Mode mode;
    bool lbr;
  };
  const ModeCase modes[] = {{Mode::lstm, true}, {Mode::gru, true}, {Mode::gru, false}, {Mode::rnn_tanh, true},
                            {Mode::rnn_relu, true}};
  const int hidden_sizes[] = {5, 8, 17};
  int counter = 0, cases = 0;
  const int failures_before = gpucheck::state().failures;
  for (const ModeCase& mc : modes)
    for (int L : {1, 2, 3})
      for (bool bi : {false, true})
        for (bool lens : {false, true})
          for (bool bf : {false, true}) {
            const bool lstm = mc.mode == Mode::lstm;
            for (int extra = 0; extra < (lstm ? 8 : 1); ++extra) {
              ++counter;
              if (quick && counter % 4 != 0) continue;
              Case cs;
              RecurrentConfig& c = cs.cfg;
              c.mode = mc.mode;
              c.linear_before_reset = mc.lbr;
              c.num_layers = L;
              c.bidirectional = bi;
              c.hidden_size = hidden_sizes[(counter / 3) % 3];
              c.skip_input = counter % 3 == 1;
              c.input_size = c.skip_input ? c.hidden_size : 3 + counter % 4;
              c.proj_size = (extra & 1) ? 3 : 0;
              c.cell_clip = (extra & 2) ? 0.8f : 0.f;
              c.peepholes = (extra & 4) != 0;
              cs.T = 1 + static_cast<int>(gpucheck::rng()() % 5);
              cs.B = lens ? 4 : 1 + static_cast<int>(gpucheck::rng()() % 3);
              cs.batch_first = bf;
              cs.lengths = lens;
              cs.dropout = (counter / 2) % 2 == 1;
              cs.accumulate = counter % 5 == 2;
              cs.has_hx = counter % 7 != 3;
              cs.has_cx = counter % 6 != 1;
              cs.has_dy = counter % 9 != 4;
              cs.has_dhy = counter % 4 != 2;
              cs.has_dcy = counter % 5 != 3;
              try {
                run_case(cs);
              } catch (const std::exception& e) {
                fail(describe(cs), std::string("threw: ") + e.what());
              }
              ++cases;
              if (gpucheck::state().failures - failures_before > 20) {
                std::printf("too many failures, stopping the matrix\n");
                return;
              }
            }
          }
  // Wider layers: many blocks per step, persistent plans with several units per block, B = 16.
  for (const ModeCase& mc : modes)
    for (int64_t H : {130, 512}) {
      Case cs;
      RecurrentConfig& c = cs.cfg;
      c.mode = mc.mode;
      c.linear_before_reset = mc.lbr;
      c.num_layers = 2;
      c.bidirectional = true;
      c.hidden_size = H;
      c.input_size = 7;
      c.peepholes = mc.mode == Mode::lstm;
      cs.T = 6;
      cs.B = H == 512 ? 16 : 3;
      cs.lengths = true;
      cs.dropout = true;
      try {
        run_case(cs);
      } catch (const std::exception& e) {
        fail(describe(cs), std::string("threw: ") + e.what());
      }
      ++cases;
    }
  std::printf("recurrent matrix: %d cases, %d comparisons so far, worst relative error %.3g\n", cases,
              gpucheck::state().checks,
              g_worst);
}

void check_errors() {
  RecurrentConfig c;
  c.input_size = 4;
  c.hidden_size = 4;
  const int32_t bad[2] = {1, 9};
  Dev x(std::vector<float>(2 * 2 * 4, 0.f)), w(recurrent_weights_size(c)), y(2 * 2 * 4);
  try {
    gpu::recurrent_forward(kDevice, c, 2, 2, false, x.p, nullptr, nullptr, bad, w.p, 0.f, 0, y.p, nullptr, nullptr,
                           nullptr, gpu::RecurrentAlgo::automatic);
    fail("seq_lengths out of range", "no error");
  } catch (const Error& e) {
    if (e.code() != ErrorCode::arg) fail("seq_lengths out of range", e.what());
    else gpucheck::pass("seq_lengths out of range -> ErrorCode::arg");
  }
  c.proj_size = 2;
  try {
    gpu::recurrent_forward_algorithm(kDevice, c, 8, 2, gpu::RecurrentAlgo::persistent);
    fail("persistent with projection", "no error");
  } catch (const Error& e) {
    if (e.code() != ErrorCode::arg) fail("persistent with projection", e.what());
    else gpucheck::pass("persistent with projection -> ErrorCode::arg");
  }
}

// The persistent plans: every warp of a block owns W_hh rows (where H allows), the grid is at most
// one block per SM, and 'auto' says why it chose what it chose.
void check_plans() {
  struct ModeCase {
    Mode mode;
    int code, gates;
  };
  const ModeCase modes[] = {{Mode::lstm, 0, 4}, {Mode::gru, 1, 3}, {Mode::rnn_tanh, 2, 1}};
  for (const ModeCase& mc : modes)
    for (int64_t H : {5, 64, 130, 512, 1024})
      for (int64_t B : {1, 16}) {
        const std::string name = std::string(mc.mode == Mode::lstm ? "lstm" : mc.mode == Mode::gru ? "gru" : "rnn_tanh") +
                                 " H" + std::to_string(H) + " B" + std::to_string(B);
        gpucheck::guarded("persistent plan " + name, [&] {
          gpu::PersistentPlan plan;
          std::string why;
          RecurrentConfig c;
          c.mode = mc.mode;
          c.input_size = 8;
          c.hidden_size = H;
          std::string auto_why;
          const char* algo = gpu::recurrent_forward_algorithm(kDevice, c, 64, B, gpu::RecurrentAlgo::automatic, &auto_why);
          if (!gpu::persistent_plan(kDevice, mc.code, B, H, &plan, &why)) {
            gpucheck::pass("persistent plan " + name, "none: " + why + "; auto: " + algo);
            return;
          }
          const int64_t want_rows = std::min<int64_t>(8, mc.gates * H);
          if (plan.rows_per_block < want_rows) {
            fail("persistent plan " + name, std::to_string(plan.rows_per_block) + " W_hh rows for 8 warps");
          } else if (plan.blocks > plan.sms) {
            fail("persistent plan " + name, std::to_string(plan.blocks) + " blocks on " + std::to_string(plan.sms) + " SMs");
          } else {
            gpucheck::pass("persistent plan " + name, std::to_string(plan.blocks) + " blocks x " +
                                                          std::to_string(plan.units) + " units; auto: " + auto_why);
          }
        });
      }
}

// Two threads run persistent forwards of different shapes at once (each plan needs its own shared
// memory size); every result must still equal the CPU op.
void check_concurrent_persistent() {
  gpucheck::guarded("concurrent persistent forwards of two shapes", [] {
    struct Job {
      RecurrentConfig c;
      int64_t T = 20, B = 4;
      std::vector<float> x, w, y;
      std::string error;
    };
    std::vector<Job> jobs(2);
    for (int k = 0; k < 2; ++k) {
      Job& j = jobs[k];
      j.c.mode = Mode::lstm;
      j.c.input_size = 8;
      j.c.hidden_size = k == 0 ? 48 : 384;
      j.x = rnd(j.T * j.B * 8);
      j.w = rnd(recurrent_weights_size(j.c), 1.f / std::sqrt(static_cast<float>(j.c.hidden_size)));
      j.y.resize(j.T * j.B * j.c.hidden_size);
      recurrent_forward(j.c, j.T, j.B, false, j.x.data(), nullptr, nullptr, nullptr, j.w.data(), 0.f, 0, j.y.data(),
                        nullptr, nullptr, nullptr);
    }
    std::vector<std::vector<float>> got(2);
    auto work = [&](int k) {
      Job& j = jobs[k];
      try {
        Dev x(j.x), w(j.w), y(j.y.size());
        for (int rep = 0; rep < 20; ++rep)
          gpu::recurrent_forward(kDevice, j.c, j.T, j.B, false, x.p, nullptr, nullptr, nullptr, w.p, 0.f, 0, y.p,
                                 nullptr, nullptr, nullptr, gpu::RecurrentAlgo::persistent);
        got[k] = y.get();
      } catch (const std::exception& e) {
        j.error = e.what();
      }
    };
    std::thread a(work, 0), b(work, 1);
    a.join();
    b.join();
    for (int k = 0; k < 2; ++k) {
      const std::string what = "concurrent persistent H" + std::to_string(jobs[k].c.hidden_size);
      if (!jobs[k].error.empty()) fail(what, "threw: " + jobs[k].error);
      else if (close(what + " y", got[k], jobs[k].y)) gpucheck::pass(what + " y", "equal to the CPU op");
    }
  });
}

// ---- bench --------------------------------------------------------------------------------------

void bench(const rnnkit_tools::BenchShape& s, bool quick) {
  RecurrentConfig c;
  c.mode = rnnkit_tools::mode_named(s.mode);
  c.linear_before_reset = s.linear_before_reset;
  c.input_size = s.I;
  c.hidden_size = s.H;
  c.num_layers = s.L;
  c.bidirectional = s.D == 2;
  const int64_t T = s.T, B = s.B, I = s.I, H = s.H, D = s.D;
  const int64_t G = recurrent_gate_count(c.mode);
  const int64_t nw = recurrent_weights_size(c), ns = recurrent_saved_size(c, T, B);
  Dev x(rnd(T * B * I)), w(rnd(nw, 1.f / std::sqrt(static_cast<float>(H)))), y(T * B * D * H), hy(s.L * D * B * H);
  Dev cy(c.mode == Mode::lstm ? s.L * D * B * H : 0), saved(ns), dy(rnd(T * B * D * H)), dx(T * B * I),
      dw(nw);
  double flops = 0;
  for (int64_t l = 0; l < s.L; ++l) flops += 2.0 * D * T * B * G * H * ((l == 0 ? I : D * H) + H);
  const int reps = quick ? 3 : 7;
  const char* algo = gpu::recurrent_forward_algorithm(kDevice, c, T, B, gpu::RecurrentAlgo::automatic);
  auto fwd = [&](bool train, gpu::RecurrentAlgo a) {
    return [&, train, a] {
      gpu::recurrent_forward(kDevice, c, T, B, false, x.p, nullptr, nullptr, nullptr, w.p, 0.f, 0, y.p, hy.p, cy.p,
                             train ? saved.p : nullptr, a);
    };
  };
  const double inf = gpucheck::median_ms(reps, fwd(false, gpu::RecurrentAlgo::automatic));
  const double inf_std = gpucheck::median_ms(reps, fwd(false, gpu::RecurrentAlgo::standard));
  double inf_pers = -1;
  try {
    gpu::recurrent_forward_algorithm(kDevice, c, T, B, gpu::RecurrentAlgo::persistent);
    inf_pers = gpucheck::median_ms(reps, fwd(false, gpu::RecurrentAlgo::persistent));
  } catch (const Error&) {
    // The persistent kernel cannot run this shape: "-" in the table.
  }
  // Whether 'auto' took the faster algorithm (within 5%): the heuristic of cuda_recurrent.h, measured.
  const double best = inf_pers > 0 ? std::min(inf_std, inf_pers) : inf_std;
  const char* verdict = inf_pers < 0 ? "only-std" : inf <= 1.05 * best ? "ok" : "WRONG";
  const double trn = gpucheck::median_ms(reps, fwd(true, gpu::RecurrentAlgo::automatic));
  const double bwd = gpucheck::median_ms(reps, [&] {
    gpu::recurrent_backward(kDevice, c, T, B, false, x.p, nullptr, nullptr, nullptr, w.p, 0.f, 0, y.p, saved.p, dy.p,
                            nullptr, nullptr, dx.p, nullptr, nullptr, dw.p, false);
  });
  char pers[16] = "-";
  if (inf_pers > 0) std::snprintf(pers, sizeof pers, "%.3f", inf_pers);
  std::printf("%-28s %-10s %9.3f %8.0f %9.3f %9s %-8s %9.3f %8.0f %9.3f %8.0f %9.3f\n", s.name.c_str(), algo, inf,
              flops / inf * 1e-6, inf_std, pers, verdict, trn, flops / trn * 1e-6, bwd, 2 * flops / bwd * 1e-6, trn + bwd);
}

void run_bench(bool quick, const std::string& shapes_path) {
  std::printf("\nrecurrent bench (fp32; medians of CUDA-event times in ms; GF/s = GFLOP/s):\n");
  std::printf("(auto: the algorithm 'auto' chose; infer-std / infer-pers: each forced; auto-ok: 'auto' within 5%% of the\n"
              " faster of the two)\n");
  std::printf("%-28s %-10s %9s %8s %9s %9s %-8s %9s %8s %9s %8s %9s\n", "shape", "auto", "infer", "GF/s", "infer-std",
              "infer-pers", "auto-ok", "fwd-train", "GF/s", "backward", "GF/s", "train");
  const std::vector<rnnkit_tools::BenchShape> shapes = rnnkit_tools::gpu_bench_shapes(rnnkit_tools::read_shape_table(shapes_path));
  int k = 0;
  for (const auto& s : shapes) {
    if (quick && k++ % 3 != 0) continue;
    try {
      bench(s, quick);
    } catch (const std::exception& e) {
      std::printf("%-28s bench failed: %s\n", s.name.c_str(), e.what());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string shapes_path = rnnkit_tools::shapes_path_option(argc, argv);
  const gpucheck::Options opt = gpucheck::parse_options(argc, argv);
  const gpu::ProbeResult probe = gpucheck::start("gpu_check_recurrent", opt);
  std::printf("gpu_check_recurrent: %s; seed %u (RNNKIT_TEST_SEED replays)\n", probe.devices[0].name.c_str(),
              gpucheck::state().seed);
  if (opt.checks) {
    gpucheck::guarded("recurrent errors", check_errors);
    check_plans();
    check_concurrent_persistent();
    gpucheck::guarded("recurrent matrix", [&] { check_matrix(opt.quick); });
    std::printf("worst relative error %.3g (bound 1e-4)\n", g_worst);
  }
  if (opt.bench) gpucheck::guarded("recurrent bench shapes", [&] { run_bench(opt.quick, shapes_path); });
  return gpucheck::finish();
}
