// gpu_check_nn: the CUDA kernels of lib/nn (cuda_nn.h) and fill against the CPU kernels of
// native/kernels/nn_elementwise.h, nn_reduce.h and gather.h; needs no Node.
//   ./build-cuda/gpu_check_nn [--quick] [--probe]   (RNNKIT_TEST_SEED replays)
// Without a usable device it prints "no CUDA device: skipped (<reason>)" and exits 0; with
// RNNKIT_REQUIRE_GPU=1 it exits 2 with the CUDA error instead (gpu_check_harness.cuh).
// Fresh random inputs, outputs poisoned with NaN first (accumulating ones start from random
// values). What must hold:
//   broadcast add / mul, affine, accumulate, dropout (both directions), sum_axis (contiguous rows
//   in chunks, strided columns, with and without w, accumulating), broadcast_axis, the embedding
//   gather and scatter-add from device ids (padding row, repeated ids, accumulating, n not a
//   power of two for the scatter-add's sort), copy_block, fill: bit for bit equal to the CPU
//   (cuda_nn.h promises it); ids outside [0, V) on the device: NaN rows from the gather, skipped
//   by the scatter-add (no fault, the other rows exact)
//   tanh, sigmoid: |gpu − cpu| <= 3e-7 + 4e-7·|cpu| (CUDA's tanhf / expf against the CPU's
//   approximations, both within about 1e-7); relu bit for bit
//   activation backward: |gpu − cpu| <= 2.4e-7·|dy|·(1 + y²) (the CPU may fuse a multiply-add)
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common.cuh"
#include "cuda_api.h"
#include "cuda_nn.h"
#include "gather.h"
#include "gpu_check_harness.cuh"
#include "nn_elementwise.h"
#include "nn_reduce.h"

using namespace rnnkit;
using namespace gpucheck;  // Dev, pass, fail, guarded, within, kDevice, ...

namespace {

void check_elementwise(int64_t n) {
  const std::string at = " n=" + std::to_string(n);
  const std::vector<float> x = random_vector(n, -6.f, 6.f), b = random_vector(n), y0 = random_vector(n);
  Dev dx(x), db(b), out(n);
  const char* names[] = {"tanh", "sigmoid", "relu"};
  for (int f = 0; f < 3; ++f) {
    guarded(std::string(names[f]) + at, [&] {
      std::vector<float> want(n);
      activation_forward(want.data(), x.data(), n, static_cast<Activation>(f));
      out.poison();
      gpu::nn_activation_forward(kDevice, out.p, dx.p, n, static_cast<Activation>(f));
      const std::vector<float> got = out.get();
      if (f == 2) {
        bitwise(std::string("relu") + at, got, want);
      } else {
        std::vector<double> bound(n);
        for (int64_t i = 0; i < n; ++i) bound[i] = 3e-7 + 4e-7 * std::fabs(want[i]);
        within(std::string(names[f]) + at, got, want, bound);
      }
      // Backward from the CPU's y.
      Dev dyv(want), ddy(b), ddx(n);
      ddx.poison();
      std::vector<float> wdx(n);
      activation_backward(wdx.data(), b.data(), want.data(), n, static_cast<Activation>(f));
      gpu::nn_activation_backward(kDevice, ddx.p, ddy.p, dyv.p, n, static_cast<Activation>(f));
      std::vector<double> bound(n);
      for (int64_t i = 0; i < n; ++i) bound[i] = 2.4e-7 * std::fabs(b[i]) * (1.0 + double(want[i]) * want[i]);
      within(std::string(names[f]) + " backward" + at, ddx.get(), wdx, bound);
    });
  }
  guarded("broadcast, affine, accumulate, dropout" + at, [&] {
    const int64_t m = n % 7 == 0 ? 7 : 1 + n % 13, rows = n / m;
    std::vector<float> want(rows * m);
    Dev bb(random_vector(m));
    const std::vector<float> hb = bb.get();
    for (int mul = 0; mul < 2; ++mul) {
      (mul ? broadcast_mul : broadcast_add)(want.data(), x.data(), hb.data(), rows, m);
      out.poison();
      gpu::nn_broadcast(kDevice, mul == 1, out.p, dx.p, bb.p, rows, m);
      std::vector<float> got = out.get();
      got.resize(rows * m);
      bitwise(std::string(mul ? "broadcast mul" : "broadcast add") + at, got, want);
    }
    std::vector<float> wa(n);
    affine(wa.data(), x.data(), n, -0.37f, 1.25f);
    out.poison();
    gpu::nn_affine(kDevice, out.p, dx.p, n, -0.37f, 1.25f);
    bitwise("affine" + at, out.get(), wa);
    std::vector<float> acc = y0;
    accumulate(acc.data(), x.data(), n);
    out.set(y0);
    gpu::nn_accumulate(kDevice, out.p, dx.p, n);
    bitwise("accumulate" + at, out.get(), acc);
    std::vector<float> wd(n);
    dropout_forward(wd.data(), x.data(), n, 0.3f, 12345);
    out.poison();
    gpu::nn_dropout(kDevice, out.p, dx.p, n, 0.3f, 12345);
    bitwise("dropout" + at, out.get(), wd);
  });
}

void check_reductions() {
  struct Shape {
    int64_t outer, len, inner;
  };
  for (const Shape& s : {Shape{1, 1, 1}, Shape{3, 5, 1}, Shape{1, 100003, 1}, Shape{4, 20000, 1}, Shape{1, 37, 65},
                         Shape{6, 129, 300}, Shape{2, 0, 3}}) {
    char name[96];
    std::snprintf(name, sizeof name, "sum_axis [%lld, %lld, %lld]", static_cast<long long>(s.outer),
                  static_cast<long long>(s.len), static_cast<long long>(s.inner));
    guarded(name, [&] {
      const int64_t n = s.outer * s.len * s.inner, m = s.outer * s.inner;
      const std::vector<float> x = random_vector(n), w = random_vector(n), old = random_vector(m);
      Dev dx(x), dw(w), out(m);
      for (int variant = 0; variant < 3; ++variant) {
        const bool with_w = variant == 1, acc = variant == 2;
        std::vector<float> want = acc ? old : std::vector<float>(m, 0.f);
        sum_axis(want.data(), x.data(), with_w ? w.data() : nullptr, s.outer, s.len, s.inner, 0.5, acc);
        if (acc) out.set(old);
        else out.poison();
        gpu::nn_sum_axis(kDevice, out.p, dx.p, with_w ? dw.p : nullptr, s.outer, s.len, s.inner, 0.5, acc);
        bitwise(std::string(name) + (with_w ? " x·w" : acc ? " +=" : ""), out.get(), want);
      }
      if (s.len > 0) {
        const std::vector<float> dy = random_vector(m);
        Dev ddy(dy), ddx(n);
        ddx.poison();
        std::vector<float> want(n);
        broadcast_axis(want.data(), dy.data(), s.outer, s.len, s.inner, -1.5f);
        gpu::nn_broadcast_axis(kDevice, ddx.p, ddy.p, s.outer, s.len, s.inner, -1.5f);
        bitwise(std::string("broadcast_axis") + (name + 8), ddx.get(), want);
      }
    });
  }
}

void check_gather() {
  for (int64_t n : {int64_t(1), int64_t(300), int64_t(5000)}) {
    const std::string at = " n=" + std::to_string(n);
    guarded("embedding" + at, [&] {
      const int64_t V = 50, D = 33;
      std::vector<int32_t> ids(n);
      for (int64_t k = 0; k < n; ++k) ids[k] = static_cast<int32_t>(rng()() % (k % 3 ? V : 4));  // repeats
      const std::vector<float> weight = random_vector(V * D), dy = random_vector(n * D), old = random_vector(V * D);
      Dev dw(weight), out(n * D), ddy(dy), dgrad(V * D), dids(n);
      gpu::copy_to_device(kDevice, dids.p, ids.data(), n * 4);
      std::vector<float> want(n * D);
      embedding_gather(want.data(), weight.data(), ids.data(), n, D);
      out.poison();
      gpu::nn_embedding_gather(kDevice, out.p, dw.p, dids.ints(), n, V, D);
      bitwise("embedding gather" + at, out.get(), want);
      for (int acc = 0; acc < 2; ++acc) {
        const int64_t padding = acc ? -1 : 2;
        std::vector<float> wg = acc ? old : std::vector<float>(V * D, 0.f);
        embedding_scatter_add(wg.data(), dy.data(), ids.data(), n, V, D, padding, acc == 1);
        if (acc) dgrad.set(old);
        else dgrad.poison();
        gpu::nn_embedding_scatter_add(kDevice, dgrad.p, ddy.p, dids.ints(), n, V, D, padding, acc == 1);
        bitwise(std::string("embedding scatter-add") + (acc ? " +=" : " padding 2") + at, dgrad.get(), wg);
      }
    });
  }
  guarded("embedding ids outside [0, V) on the device", [] {
    const int64_t V = 6, D = 5, n = 7;
    const std::vector<int32_t> ids = {1, -1, 5, 6, INT32_MAX, INT32_MIN, 1};
    // The CPU's picture with each bad id read as row 0, which no good id uses: the padding row.
    std::vector<int32_t> valid = ids;
    for (int32_t& id : valid) id = id < 0 || id >= V ? 0 : id;
    const std::vector<float> weight = random_vector(V * D), dy = random_vector(n * D);
    Dev dw(weight), out(n * D), ddy(dy), dgrad(V * D), dids(n);
    gpu::copy_to_device(kDevice, dids.p, ids.data(), n * 4);
    std::vector<float> want(n * D);
    embedding_gather(want.data(), weight.data(), valid.data(), n, D);
    gpu::nn_embedding_gather(kDevice, out.p, dw.p, dids.ints(), n, V, D);
    std::vector<float> got = out.get();
    bool nan_rows = true;
    for (int64_t k = 0; k < n; ++k) {
      if (ids[k] == valid[k]) continue;
      for (int64_t c = 0; c < D; ++c) nan_rows = nan_rows && std::isnan(got[k * D + c]);
      std::copy(want.begin() + k * D, want.begin() + (k + 1) * D, got.begin() + k * D);
    }
    if (!nan_rows) fail("embedding gather, bad ids", "a row of a bad id is not NaN");
    else bitwise("embedding gather, bad ids give NaN rows", got, want);
    std::vector<float> wg(V * D, 0.f);
    embedding_scatter_add(wg.data(), dy.data(), valid.data(), n, V, D, 0, false);
    gpu::nn_embedding_scatter_add(kDevice, dgrad.p, ddy.p, dids.ints(), n, V, D, -1, false);
    bitwise("embedding scatter-add skips bad ids", dgrad.get(), wg);
  });
  guarded("copy_block and fill", [] {
    const int64_t rows = 17, cols = 9, sld = 13, dld = 20;
    const std::vector<float> src = random_vector(rows * sld), dst0 = random_vector(rows * dld);
    std::vector<float> want = dst0;
    copy_block(want.data() + 3, dld, src.data() + 2, sld, rows - 1, cols);
    Dev ds(src), dd(dst0);
    gpu::nn_copy_block(kDevice, dd.p + 3, dld, ds.p + 2, sld, rows - 1, cols);
    bitwise("copy_block", dd.get(), want);
    Dev f(100003);
    f.poison();
    gpu::fill(kDevice, f.p, static_cast<int64_t>(f.n), -2.5f);
    bitwise("fill", f.get(), std::vector<float>(f.n, -2.5f));
  });
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_options(argc, argv);
  const gpu::ProbeResult probe = start("gpu_check_nn", opt);
  std::printf("gpu_check_nn: %s; seed %u (RNNKIT_TEST_SEED replays)\n\n", probe.devices[0].name.c_str(), state().seed);
  if (opt.checks) {
    for (int64_t n : {int64_t(1), int64_t(1003), int64_t(70001)}) check_elementwise(n);
    if (!opt.quick) check_elementwise((int64_t(1) << 20) + 5);
    check_reductions();
    check_gather();
  }
  return finish();
}
