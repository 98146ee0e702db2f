// Optimizer steps on the device. Contract: cuda_train.h (formulas: native/kernels/train.h). Each
// kernel is the CPU element function of native/kernels/train.cc written with __f*_rn intrinsics,
// which nvcc never fuses into an FMA, so every element gets exactly the CPU's bits. One thread per
// element (grid-stride), in place.
#include "common.cuh"
#include "cuda_train.h"

namespace rnnkit {
namespace gpu {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float sub(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float div(float a, float b) { return __fdiv_rn(a, b); }

__global__ void sgd_kernel(float* p, const float* g, float* b, int64_t n, SgdHyper h) {
  const float one_minus_damp = sub(1.f, h.dampening);
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    float gg = g[i];
    if (h.weight_decay != 0.f) gg = add(gg, mul(h.weight_decay, p[i]));
    if (h.momentum != 0.f) {
      const float bb = h.first_step ? gg : add(mul(h.momentum, b[i]), mul(one_minus_damp, gg));
      b[i] = bb;
      gg = h.nesterov ? add(gg, mul(h.momentum, bb)) : bb;
    }
    p[i] = sub(p[i], mul(h.lr, gg));
  }
}

__global__ void adam_kernel(float* p, const float* g, float* m, float* v, float* vmax, int64_t n, AdamScalars s) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    float pp = p[i];
    float gg = g[i];
    if (s.decoupled) {
      pp = mul(pp, s.decay);
    } else if (s.wd != 0.f) {
      gg = add(gg, mul(s.wd, pp));
    }
    const float mm = add(m[i], mul(s.one_minus_b1, sub(gg, m[i])));
    const float vv = add(mul(s.beta2, v[i]), mul(s.one_minus_b2, mul(gg, gg)));
    m[i] = mm;
    v[i] = vv;
    float vh = vv;
    if (vmax) {
      vh = vmax[i] > vv ? vmax[i] : vv;  // the CPU's max (the second operand when either is NaN)
      vmax[i] = vh;
    }
    const float denom = add(div(__fsqrt_rn(vh), s.bc2_sqrt), s.eps);
    p[i] = sub(pp, mul(s.step_size, div(mm, denom)));
  }
}

__global__ void adagrad_kernel(float* p, const float* g, float* sum, int64_t n, AdagradScalars s) {
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    float gg = g[i];
    if (s.wd != 0.f) gg = add(gg, mul(s.wd, p[i]));
    const float ss = add(sum[i], mul(gg, gg));
    sum[i] = ss;
    p[i] = sub(p[i], mul(s.clr, div(gg, add(__fsqrt_rn(ss), s.eps))));
  }
}

__global__ void rmsprop_kernel(float* p, const float* g, float* sq, float* ga, float* buf, int64_t n,
                               RmspropHyper h) {
  const float one_minus_alpha = sub(1.f, h.alpha);
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    float gg = g[i];
    if (h.weight_decay != 0.f) gg = add(gg, mul(h.weight_decay, p[i]));
    const float a = add(mul(h.alpha, sq[i]), mul(one_minus_alpha, mul(gg, gg)));
    sq[i] = a;
    float d;
    if (ga) {
      const float gbar = add(ga[i], mul(one_minus_alpha, sub(gg, ga[i])));
      ga[i] = gbar;
      d = add(__fsqrt_rn(sub(a, mul(gbar, gbar))), h.eps);
    } else {
      d = add(__fsqrt_rn(a), h.eps);
    }
    if (buf) {
      const float b = add(mul(h.momentum, buf[i]), div(gg, d));
      buf[i] = b;
      p[i] = sub(p[i], mul(h.lr, b));
    } else {
      p[i] = sub(p[i], mul(h.lr, div(gg, d)));
    }
  }
}

}  // namespace

void sgd_step(int device, float* p, const float* g, float* buf, int64_t n, const SgdHyper& h) {
  launch_and_wait(device, n, kThreads, "sgd step", [&](unsigned grid, cudaStream_t st) { sgd_kernel<<<grid, kThreads, 0, st>>>(p, g, buf, n, h); });
}

void adam_step(int device, float* p, const float* g, float* m, float* v, float* vmax, int64_t n,
               const AdamHyper& h) {
  const AdamScalars s = adam_scalars(h);
  launch_and_wait(device, n, kThreads, "adam step",
      [&](unsigned grid, cudaStream_t st) { adam_kernel<<<grid, kThreads, 0, st>>>(p, g, m, v, vmax, n, s); });
}

void adagrad_step(int device, float* p, const float* g, float* sum, int64_t n, const AdagradHyper& h) {
  const AdagradScalars s = adagrad_scalars(h);
  launch_and_wait(device, n, kThreads, "adagrad step",
      [&](unsigned grid, cudaStream_t st) { adagrad_kernel<<<grid, kThreads, 0, st>>>(p, g, sum, n, s); });
}

void rmsprop_step(int device, float* p, const float* g, float* square_avg, float* grad_avg, float* buf,
                  int64_t n, const RmspropHyper& h) {
  float* mbuf = h.momentum > 0.f ? buf : nullptr;
  launch_and_wait(device, n, kThreads, "rmsprop step", [&](unsigned grid, cudaStream_t st) {
    rmsprop_kernel<<<grid, kThreads, 0, st>>>(p, g, square_avg, grad_avg, mbuf, n, h);
  });
}

}  // namespace gpu
}  // namespace rnnkit
