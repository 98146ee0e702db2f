// gpu_check_train: the CUDA pieces of a training step (cuda_train.h) against the CPU kernels of
// native/kernels/train.h, then timed; needs no Node.
//   ./build-cuda/gpu_check_train [--quick] [--no-bench | --bench-only | --probe]   (RNNKIT_TEST_SEED replays)
// Without a usable device it prints "no CUDA device: skipped (<reason>)" and exits 0; with
// RNNKIT_REQUIRE_GPU=1 it exits 2 with the CUDA error instead (gpu_check_harness.cuh).
// Fresh random inputs, every output poisoned with NaN first. What must hold:
//   optimizer steps (SGD with/without momentum, Nesterov, dampening, weight decay; Adam, AdamW,
//   amsgrad; Adagrad; RMSprop centered/momentum), three steps in a row: p and every state buffer
//   equal to the CPU's bit for bit (cuda_train.h promises it)
//   scale, clamp: bit for bit
//   cross-entropy: |loss − cpu| <= 1e-6 · scale · Σ_r w_r (|lse_r| + |x_r,t|); dlogits
//   |d − cpu| <= 4e-6 · c_r · p_j + 1e-12 · c_r (p the softmax, c_r the row's factor: expf is
//   within 2 ulp of glibc, the sums are in double); MSE loss within 1e-12 relative, dy bit for bit
//   sum of squares and clip_grad_norm: norm within 1e-12 relative of the CPU's; the clipped
//   gradients equal to the CPU's scaled by the CPU's factor within 1 ulp (the factor is the same
//   float unless the two norms straddle a rounding boundary); a NaN gradient clips nothing
//   every reduction repeats bit for bit when run again.
// Bench: medians of CUDA-event times of an Adam step, a cross-entropy forward+backward and a
// clip_grad_norm, as GB/s next to the device-to-device copy rate measured in the same run.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common.cuh"
#include "cuda_api.h"
#include "cuda_train.h"
#include "gpu_check_harness.cuh"
#include "train.h"

using namespace rnnkit;
using namespace gpucheck;  // Dev, pass, fail, guarded, within, median_ms, kDevice, ...

namespace {

std::vector<double> widen(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// One scalar result (a loss, a norm): |got − want| <= allowed.
bool within_scalar(const std::string& what, double got, double want, double allowed) {
  return within(what, std::vector<double>{got}, std::vector<double>{want}, std::vector<double>{allowed});
}

// A device double (the scalar results of losses and clipping), read back.
struct DevDouble {
  DevDouble() : d(2) {}
  double get() const {
    const std::vector<float> h = d.get();
    double v;
    std::memcpy(&v, h.data(), sizeof v);
    return v;
  }
  double* ptr() const { return reinterpret_cast<double*>(d.p); }
  Dev d;
};

// ---- optimizer steps ----------------------------------------------------------------------------

// Runs `steps` steps of an optimizer on both sides from the same state and compares everything.
// `cpu(p, g, state)` and `gpu(p, g, state)` take the state buffers in the same order.
template <class Cpu, class Gpu>
void check_optimizer(const std::string& name, int64_t n, int nstate, bool positive_state, Cpu cpu, Gpu gpu) {
  guarded(name, [&] {
    std::vector<float> p = random_vector(n);
    std::vector<std::vector<float>> state(nstate);
    for (auto& s : state) s = positive_state ? random_vector(n, 0.f, 0.01f) : random_vector(n);
    Dev dp(p);
    std::vector<std::unique_ptr<Dev>> ds;
    for (auto& s : state) ds.emplace_back(new Dev(s));
    for (int step = 1; step <= 3; ++step) {
      const std::vector<float> g = random_vector(n);
      Dev dg(g);
      std::vector<float*> hs, gs;
      for (auto& s : state) hs.push_back(s.data());
      for (auto& s : ds) gs.push_back(s->p);
      cpu(p.data(), g.data(), hs, step);
      gpu(dp.p, dg.p, gs, step);
    }
    bool ok = bitwise(name + " p", dp.get(), p);
    for (int k = 0; k < nstate && ok; ++k) ok = bitwise(name + " state " + std::to_string(k), ds[k]->get(), state[k]);
  });
}

void check_optimizers(bool quick) {
  std::vector<int64_t> sizes = {1, 1000, (int64_t(1) << 20) + 3};
  if (quick) sizes.pop_back();
  for (int64_t n : sizes) {
    const std::string at = " n=" + std::to_string(n);
    struct Sgd {
      float momentum, dampening, wd;
      bool nesterov;
    };
    for (const Sgd& c : {Sgd{0.f, 0.f, 0.f, false}, Sgd{0.9f, 0.f, 0.01f, false}, Sgd{0.9f, 0.f, 0.f, true},
                         Sgd{0.8f, 0.3f, 0.02f, false}}) {
      char name[120];
      std::snprintf(name, sizeof name, "sgd momentum=%g dampening=%g wd=%g nesterov=%d%s", c.momentum, c.dampening, c.wd,
                    c.nesterov, at.c_str());
      auto hyper = [c](int step) { return SgdHyper{0.05f, c.momentum, c.dampening, c.wd, c.nesterov, step == 1}; };
      check_optimizer(
          name, n, c.momentum != 0.f ? 1 : 0, false,
          [&](float* p, const float* g, std::vector<float*>& s, int step) {
            sgd_step(p, g, s.empty() ? nullptr : s[0], n, hyper(step));
          },
          [&](float* p, const float* g, std::vector<float*>& s, int step) {
            gpu::sgd_step(kDevice, p, g, s.empty() ? nullptr : s[0], n, hyper(step));
          });
    }
    for (int variant = 0; variant < 4; ++variant) {
      const bool decoupled = variant & 1, amsgrad = variant & 2;
      const std::string name = std::string(decoupled ? "adamw" : "adam") + (amsgrad ? " amsgrad" : "") + " wd=0.01" + at;
      auto hyper = [decoupled](int step) { return AdamHyper{1e-3, 0.9, 0.999, 1e-8, 0.01, step, decoupled}; };
      check_optimizer(
          name, n, amsgrad ? 3 : 2, true,
          [&](float* p, const float* g, std::vector<float*>& s, int step) {
            adam_step(p, g, s[0], s[1], amsgrad ? s[2] : nullptr, n, hyper(step));
          },
          [&](float* p, const float* g, std::vector<float*>& s, int step) {
            gpu::adam_step(kDevice, p, g, s[0], s[1], amsgrad ? s[2] : nullptr, n, hyper(step));
          });
    }
    auto adagrad = [](int step) { return AdagradHyper{1e-2, 0.01, 0.001, 1e-10, step}; };
    check_optimizer(
        "adagrad lr_decay=0.01 wd=0.001" + at, n, 1, true,
        [&](float* p, const float* g, std::vector<float*>& s, int step) { adagrad_step(p, g, s[0], n, adagrad(step)); },
        [&](float* p, const float* g, std::vector<float*>& s, int step) {
          gpu::adagrad_step(kDevice, p, g, s[0], n, adagrad(step));
        });
    for (int variant = 0; variant < 2; ++variant) {
      const RmspropHyper h{1e-2f, 0.99f, 1e-8f, 0.001f, variant ? 0.9f : 0.f};
      const std::string name = std::string("rmsprop") + (variant ? " centered momentum=0.9" : "") + at;
      check_optimizer(
          name, n, variant ? 3 : 1, true,
          [&](float* p, const float* g, std::vector<float*>& s, int) {
            rmsprop_step(p, g, s[0], variant ? s[1] : nullptr, variant ? s[2] : nullptr, n, h);
          },
          [&](float* p, const float* g, std::vector<float*>& s, int) {
            gpu::rmsprop_step(kDevice, p, g, s[0], variant ? s[1] : nullptr, variant ? s[2] : nullptr, n, h);
          });
    }
  }
}

// ---- losses -------------------------------------------------------------------------------------

void check_cross_entropy_case(int64_t N, int64_t V, bool with_mask, bool mean, bool grad) {
  char name[120];
  std::snprintf(name, sizeof name, "cross-entropy N=%lld V=%lld mask=%d %s grad=%d", static_cast<long long>(N),
                static_cast<long long>(V), with_mask, mean ? "mean" : "sum", grad);
  guarded(name, [&] {
    std::vector<float> logits = random_vector(N * V, -8.f, 8.f);
    std::vector<int32_t> targets(N);
    std::vector<float> mask(N);
    const int32_t ignore = -100;
    for (int64_t r = 0; r < N; ++r) {
      targets[r] = static_cast<int32_t>(gpucheck::rng()() % V);
      if (r % 7 == 3) targets[r] = ignore;
      mask[r] = r % 5 == 1 ? 0.f : 0.5f + static_cast<float>(gpucheck::rng()() % 100) / 100.f;
    }
    const float* hmask = with_mask ? mask.data() : nullptr;
    std::vector<float> want_d(grad ? N * V : 0);
    const double want = softmax_cross_entropy(grad ? want_d.data() : nullptr, logits.data(), targets.data(), hmask, N,
                                              V, ignore, mean);
    Dev dl(logits), dt(N), dm(with_mask ? mask : std::vector<float>()), dd(grad ? N * V : 0);
    if (N) gpu::copy_to_device(kDevice, dt.p, targets.data(), N * 4);
    if (grad) dd.poison();
    DevDouble loss;
    Dev loss_f(1);
    loss_f.poison();
    gpu::softmax_cross_entropy(kDevice, loss.ptr(), loss_f.p, grad ? dd.p : nullptr, dl.p, dt.ints(),
                               with_mask ? dm.p : nullptr, N, V, ignore, mean);
    // The bound: scale · Σ_r w_r (|lse_r| + |x_t|), with lse from the CPU's own numbers.
    double wsum = 0, bound = 0;
    for (int64_t r = 0; r < N; ++r) {
      const double w = targets[r] == ignore ? 0.0 : with_mask ? mask[r] : 1.0;
      if (w == 0) continue;
      wsum += w;
      double mx = logits[r * V], s = 0;
      for (int64_t j = 0; j < V; ++j) mx = std::max(mx, static_cast<double>(logits[r * V + j]));
      for (int64_t j = 0; j < V; ++j) s += std::exp(logits[r * V + j] - mx);
      bound += w * (std::fabs(mx + std::log(s)) + std::fabs(logits[r * V + targets[r]]));
    }
    const double scale = mean && wsum > 0 ? 1.0 / wsum : 1.0;
    const double got = loss.get();
    if (!within_scalar(std::string(name) + " loss", got, want, 1e-6 * scale * bound + 1e-12)) return;
    const float got_f = loss_f.get()[0];
    if (got_f != static_cast<float>(got)) {
      fail(std::string(name) + " loss (float)", "is not the double loss rounded to float");
      return;
    }
    if (grad) {
      std::vector<double> b(N * V);
      for (int64_t r = 0; r < N; ++r) {
        const double w = targets[r] == ignore ? 0.0 : with_mask ? mask[r] : 1.0;
        const double c = scale * w;
        for (int64_t j = 0; j < V; ++j) {
          const double p = c > 0 ? want_d[r * V + j] / c + (j == targets[r] ? 1.0 : 0.0) : 0.0;
          b[r * V + j] = 4e-6 * c * std::fabs(p) + 1e-12 * c;
        }
      }
      const std::vector<float> gd = dd.get();
      if (!within(std::string(name) + " dlogits", widen(gd), widen(want_d), b)) return;
      gpu::softmax_cross_entropy(kDevice, loss.ptr(), nullptr, dd.p, dl.p, dt.ints(), with_mask ? dm.p : nullptr, N, V,
                                 ignore, mean);
      const double again = loss.get();
      const std::vector<float> gd2 = dd.get();
      if (std::memcmp(&again, &got, sizeof got) != 0 || std::memcmp(gd.data(), gd2.data(), gd.size() * 4) != 0)
        fail(std::string(name) + " repeat", "a second run gave other bits");
      else
        pass(std::string(name) + " repeat", "bitwise equal");
    }
  });
}

void check_losses(bool quick) {
  struct Shape {
    int64_t N, V;
  };
  std::vector<Shape> shapes = {{1, 1}, {7, 5}, {64, 1000}, {300, 4099}, {0, 3}};
  if (!quick) shapes.push_back({16, 70000});
  for (const Shape& s : shapes)
    for (int variant = 0; variant < 4; ++variant)
      check_cross_entropy_case(s.N, s.V, variant & 1, variant & 2, variant != 3);
  guarded("cross-entropy with every row ignored", [] {
    const int64_t N = 3, V = 4;
    std::vector<int32_t> t(N, -100);
    Dev dl(random_vector(N * V)), dt(N), dd(N * V);
    gpu::copy_to_device(kDevice, dt.p, t.data(), N * 4);
    dd.poison();
    DevDouble loss;
    gpu::softmax_cross_entropy(kDevice, loss.ptr(), nullptr, dd.p, dl.p, dt.ints(), nullptr, N, V, -100, true);
    if (loss.get() != 0.0) fail("cross-entropy with every row ignored", "loss is not 0");
    else bitwise("cross-entropy with every row ignored: zero dlogits", dd.get(), std::vector<float>(N * V, 0.f));
  });
  for (int64_t n : {int64_t(0), int64_t(1), int64_t(8193), int64_t(1) << 20}) {
    for (bool mean : {false, true}) {
      const std::string name = "mse n=" + std::to_string(n) + (mean ? " mean" : " sum");
      guarded(name, [&] {
        const std::vector<float> y = random_vector(n), t = random_vector(n);
        std::vector<float> dy(n);
        const double want = mse(dy.data(), y.data(), t.data(), n, mean);
        Dev dY(y), dT(t), dD(n);
        dD.poison();
        DevDouble loss;
        gpu::mse(kDevice, loss.ptr(), nullptr, dD.p, dY.p, dT.p, n, mean);
        if (within_scalar(name + " loss", loss.get(), want, 1e-12 * std::fabs(want) + 1e-300)) bitwise(name + " dy", dD.get(), dy);
      });
    }
  }
}

// ---- clipping -----------------------------------------------------------------------------------

struct Buffers {
  std::vector<std::vector<float>> host;
  std::vector<std::unique_ptr<Dev>> dev;
  std::vector<float*> hp, dp;
  std::vector<int64_t> sizes;
  explicit Buffers(const std::vector<int64_t>& ns) {
    for (int64_t n : ns) {
      host.push_back(random_vector(n));
      sizes.push_back(n);
    }
    for (auto& h : host) {
      dev.emplace_back(new Dev(h));
      hp.push_back(h.data());
      dp.push_back(dev.back()->p);
    }
  }
  int64_t count() const { return static_cast<int64_t>(sizes.size()); }
};

void check_clipping() {
  const std::vector<int64_t> ns = {0, 1, 8191, 8192, 8193, 1000003, 77};
  guarded("sum of squares over 7 buffers", [&] {
    Buffers b(ns);
    const double want = sum_squares(b.hp.data(), b.sizes.data(), b.count());
    DevDouble got;
    gpu::sum_squares(kDevice, got.ptr(), b.dp.data(), b.sizes.data(), b.count());
    const double first = got.get();
    if (!within_scalar("sum of squares over 7 buffers", first, want, 1e-12 * want)) return;
    gpu::sum_squares(kDevice, got.ptr(), b.dp.data(), b.sizes.data(), b.count());
    const double again = got.get();
    if (std::memcmp(&first, &again, sizeof again) != 0) fail("sum of squares repeat", "a second run gave other bits");
    else pass("sum of squares repeat", "bitwise equal");
  });
  for (double ratio : {0.5, 2.0}) {
    const std::string name = std::string("clip_grad_norm max_norm = ") + (ratio < 1 ? "norm/2" : "2·norm");
    guarded(name, [&] {
      Buffers b(ns);
      const double total = std::sqrt(sum_squares(b.hp.data(), b.sizes.data(), b.count()));
      const double max_norm = ratio * total;
      DevDouble norm;
      Dev norm_f(1);
      gpu::clip_grad_norm(kDevice, norm.ptr(), norm_f.p, b.dp.data(), b.sizes.data(), b.count(), max_norm);
      if (!within_scalar(name + " norm", norm.get(), total, 1e-12 * total)) return;
      const double coef = max_norm / (total + 1e-6);
      if (coef < 1) scale_inplace(b.hp.data(), b.sizes.data(), b.count(), static_cast<float>(coef));
      for (int64_t k = 0; k < b.count(); ++k) {
        const std::vector<float> got = b.dev[k]->get();
        std::vector<double> bound(got.size());
        for (size_t i = 0; i < got.size(); ++i) bound[i] = std::fabs(b.host[k][i]) * 1.2e-7;
        if (!within(name + " buffer " + std::to_string(k), widen(got), widen(b.host[k]), bound)) return;
      }
    });
  }
  guarded("clip_grad_norm with a NaN gradient clips nothing", [] {
    std::vector<float> g = random_vector(100);
    g[17] = NAN;
    Dev d(g);
    float* ptr = d.p;
    const int64_t n = 100;
    DevDouble norm;
    gpu::clip_grad_norm(kDevice, norm.ptr(), nullptr, &ptr, &n, 1, 1e-3);
    if (!std::isnan(norm.get())) fail("clip_grad_norm with a NaN gradient", "the norm is not NaN");
    else bitwise("clip_grad_norm with a NaN gradient clips nothing", d.get(), g);
  });
  guarded("scale and clamp", [] {
    Buffers b({5, 100000, 3});
    for (auto& h : b.host) h[0] = NAN;
    for (int64_t k = 0; k < b.count(); ++k) b.dev[k]->set(b.host[k]);
    scale_inplace(b.hp.data(), b.sizes.data(), b.count(), 0.37f);
    gpu::scale(kDevice, b.dp.data(), b.sizes.data(), b.count(), 0.37f);
    clamp_inplace(b.hp.data(), b.sizes.data(), b.count(), -0.2f, 0.25f);
    gpu::clamp(kDevice, b.dp.data(), b.sizes.data(), b.count(), -0.2f, 0.25f);
    for (int64_t k = 0; k < b.count(); ++k) bitwise("scale then clamp buffer " + std::to_string(k), b.dev[k]->get(), b.host[k]);
  });
}

// ---- bench --------------------------------------------------------------------------------------

void bench(bool quick) {
  const int reps = quick ? 3 : 9;
  const int64_t n = int64_t(1) << (quick ? 22 : 24);
  Dev a(n), b(n), m(n), v(n);
  a.set(random_vector(n));
  b.set(random_vector(n));
  m.set(std::vector<float>(n, 0.f));
  v.set(std::vector<float>(n, 0.f));
  cudaStream_t st = gpu::use_device(kDevice);
  const double copy_ms = median_ms(reps, [&] {
    gpu::check(cudaMemcpyAsync(b.p, a.p, n * 4, cudaMemcpyDeviceToDevice, st), "copy");
    gpu::check(cudaStreamSynchronize(st), "copy");
  });
  const double copy_gbs = 2.0 * n * 4 / (copy_ms * 1e-3) / 1e9;
  std::printf("\ntrain bench (medians of %d; GB/s counts the bytes each kernel must move; limit: device-to-device "
              "copy %.1f GB/s, this run)\n",
              reps, copy_gbs);
  std::printf("%-44s %10s %10s %7s\n", "kernel", "ms", "GB/s", "of copy");
  auto row = [&](const std::string& what, double ms, double bytes) {
    const double gbs = bytes / (ms * 1e-3) / 1e9;
    std::printf("%-44s %10.4f %10.1f %6.0f%%\n", what.c_str(), ms, gbs, 100 * gbs / copy_gbs);
  };
  int step = 0;
  row("adam step " + std::to_string(n) + " params", median_ms(reps, [&] {
        gpu::adam_step(kDevice, a.p, b.p, m.p, v.p, nullptr, n, AdamHyper{1e-3, 0.9, 0.999, 1e-8, 0, ++step, false});
      }),
      7.0 * n * 4);
  const int64_t count = 20, each = n / count;
  std::vector<float*> xs;
  std::vector<int64_t> sizes(count, each);
  for (int64_t k = 0; k < count; ++k) xs.push_back(a.p + k * each);
  DevDouble norm;
  row("clip_grad_norm 20 buffers, " + std::to_string(count * each) + " values", median_ms(reps, [&] {
        gpu::clip_grad_norm(kDevice, norm.ptr(), nullptr, xs.data(), sizes.data(), count, 1e30);
      }),
      count * each * 4.0);
  const int64_t N = quick ? 1024 : 4096, V = 32000;
  Dev logits(N * V), dlogits(N * V), targets(N);
  logits.set(random_vector(N * V, -4.f, 4.f));
  std::vector<int32_t> t(N);
  for (int64_t r = 0; r < N; ++r) t[r] = static_cast<int32_t>(r * 7919 % V);
  gpu::copy_to_device(kDevice, targets.p, t.data(), N * 4);
  DevDouble loss;
  row("cross-entropy fwd+bwd " + std::to_string(N) + "x" + std::to_string(V), median_ms(reps, [&] {
        gpu::softmax_cross_entropy(kDevice, loss.ptr(), nullptr, dlogits.p, logits.p, targets.ints(), nullptr, N, V,
                                   -100, true);
      }),
      3.0 * N * V * 4);
  std::printf("(adam: reads p, g, m, v and writes p, m, v; cross-entropy: reads the logits twice and writes dlogits; "
              "each call includes its stream synchronization)\n");
}

}  // namespace

int main(int argc, char** argv) {
  const gpucheck::Options opt = gpucheck::parse_options(argc, argv);
  const gpu::ProbeResult probe = gpucheck::start("gpu_check_train", opt);
  std::printf("gpu_check_train: %s; seed %u (RNNKIT_TEST_SEED replays)\n\n", probe.devices[0].name.c_str(),
              gpucheck::state().seed);
  if (opt.checks) {
    check_optimizers(opt.quick);
    check_losses(opt.quick);
    check_clipping();
  }
  if (opt.bench) guarded("bench", [&] { bench(opt.quick); });
  return gpucheck::finish();
}
