// Training kernels over float32 CPU buffers: in-place optimizer steps, softmax cross-entropy and
// mean squared error (forward and backward in one pass), and the reductions and in-place updates
// that gradient clipping needs.
//
// Optimizer steps follow torch.optim (PyTorch 2.x, single-tensor path, maximize = false). For
// each element, with p the parameter, g its gradient and t >= 1 the step number (counted by the
// caller, incremented before the call):
//   SGD      g' = g + wd·p
//            momentum != 0: b = g' on the first step, else b = momentum·b + (1 − dampening)·g';
//                           g' = nesterov ? g' + momentum·b : b
//            p  = p − lr·g'
//   Adam     g' = g + wd·p                      (AdamW instead: p = p·(1 − lr·wd), g' = g)
//            m  = m + (1 − β1)·(g' − m)         (PyTorch's lerp: β1·m + (1 − β1)·g')
//            v  = β2·v + (1 − β2)·g'·g'
//            amsgrad: v̂ = max(v̂, v), else v̂ = v
//            p  = p − (lr / (1 − β1^t)) · m / (sqrt(v̂) / sqrt(1 − β2^t) + eps)
//   Adagrad  g' = g + wd·p;  s = s + g'·g';  p = p − (lr / (1 + (t − 1)·lr_decay)) · g' / (sqrt(s) + eps)
//   RMSprop  g' = g + wd·p;  a = α·a + (1 − α)·g'·g'
//            centered: ḡ = ḡ + (1 − α)·(g' − ḡ);  d = sqrt(a − ḡ·ḡ) + eps;  else d = sqrt(a) + eps
//            momentum > 0: b = momentum·b + g'/d;  p = p − lr·b;  else p = p − lr·g'/d
// The per-step scalars (bias corrections, decayed rates) are computed in double and rounded to
// float once; the elementwise arithmetic is float, in the order written above, with no fused
// multiply-add, so the portable and vector (AVX2, NEON) paths give identical bits and a resumed
// run continues exactly. State buffers (b, m, v, v̂, s, a, ḡ) hold n floats each and are updated in place.
//
// Losses:
//   softmax_cross_entropy: logits [N, V] row-major, targets [N] int32. Row r has weight
//     w_r = 0 when targets[r] == ignore_index, else mask[r] (1 when mask is null). Its loss is
//     w_r·(logsumexp(logits[r]) − logits[r, targets[r]]), with the log-sum-exp taken around the row
//     maximum. Returns the sum of row losses, or their weighted mean (sum / Σ w_r) when `mean` is
//     set; a batch with Σ w_r = 0 has loss 0 and zero gradient. dlogits (may be null) is
//     overwritten with ∂loss/∂logits = scale·w_r·(softmax(logits[r]) − onehot(targets[r])), where
//     scale is 1 or 1/Σ w_r. Targets of weighted rows must lie in [0, V) (the binding checks).
//   mse: Σ (y − target)² (divided by n when `mean`); dy (may be null) is overwritten with
//     2·scale·(y − target).
// Clipping: sum_squares returns Σ x² over several buffers, accumulated in double; scale and
//   clamp update several buffers in place (x = x·s; x = min(max(x, lo), hi)).
//
// Reductions use fixed-size chunks whose partial sums are combined in a fixed order, so results do
// not depend on the thread count. Large inputs run on the compute pool (parallel.h); called from
// inside a pool job everything runs serially. Outputs must not alias inputs, except that the
// optimizer steps update p and their state in place.
#pragma once
#include <cstdint>

namespace rnnkit {

struct SgdHyper {
  float lr, momentum, dampening, weight_decay;
  bool nesterov;
  bool first_step;  // momentum buffer is initialised from the gradient
};
// buf may be null only when momentum == 0.
void sgd_step(float* p, const float* g, float* buf, int64_t n, const SgdHyper& h);

struct AdamHyper {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;    // t >= 1
  bool decoupled;  // AdamW
};
// vmax null: no amsgrad.
void adam_step(float* p, const float* g, float* m, float* v, float* vmax, int64_t n,
               const AdamHyper& h);

// The float scalars an Adam step uses per element, rounded once from the double hyperparameters
// (the CUDA step, cuda/train.cu, uses the very same ones, so both give the same bits).
struct AdamScalars {
  float decay;        // AdamW: 1 − lr·wd
  float wd;           // Adam: L2 coefficient added to the gradient
  float one_minus_b1, beta2, one_minus_b2;
  float step_size;    // lr / (1 − β1^t)
  float bc2_sqrt;     // sqrt(1 − β2^t)
  float eps;
  bool decoupled;
};
AdamScalars adam_scalars(const AdamHyper& h);

struct AdagradHyper {
  double lr, lr_decay, weight_decay, eps;
  int64_t step;  // t >= 1
};
void adagrad_step(float* p, const float* g, float* sum, int64_t n, const AdagradHyper& h);

struct AdagradScalars {
  float clr;  // lr / (1 + (t − 1)·lr_decay)
  float wd, eps;
};
AdagradScalars adagrad_scalars(const AdagradHyper& h);

struct RmspropHyper {
  float lr, alpha, eps, weight_decay, momentum;
};
// grad_avg null: not centered. buf null: no momentum (required when momentum > 0).
void rmsprop_step(float* p, const float* g, float* square_avg, float* grad_avg, float* buf,
                  int64_t n, const RmspropHyper& h);

double softmax_cross_entropy(float* dlogits, const float* logits, const int32_t* targets,
                             const float* mask, int64_t N, int64_t V, int32_t ignore_index,
                             bool mean);

double mse(float* dy, const float* y, const float* target, int64_t n, bool mean);

double sum_squares(const float* const* xs, const int64_t* sizes, int64_t count);
void scale_inplace(float* const* xs, const int64_t* sizes, int64_t count, float s);
void clamp_inplace(float* const* xs, const int64_t* sizes, int64_t count, float lo, float hi);

}  // namespace rnnkit
