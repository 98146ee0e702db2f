// Recurrent op driver. Each of recurrent_forward / recurrent_backward is one loop over layers and
// directions; per layer/direction it runs the input projection of all timesteps as one large sgemm
// (input_projection), then one time loop, in which only h·W_hhᵀ runs:
// - FusedForward / FusedBackward for the single-pass configurations (RecurrentDims::single_pass:
//   LSTM without projection, linear-before-reset GRU, plain RNNs; FusedForward also for the ONNX
//   GRU form, with two rounds per step): one parallel region for all
//   steps, slices of hidden units each owning their columns of the step GEMM (their part of W_hh
//   packed once per call) and their cell update, one barrier per step;
// - UnfusedForward / UnfusedBackward for projections and the ONNX GRU form, which need a GEMM
//   between two cell passes: a packed step GEMM, then fused elementwise passes
//   (recurrent_cells.cc) split over batch rows and hidden chunks.
// The backward then takes dW_ih, dW_hh, the biases (WeightGradients) and the layer-input gradient
// (input_gradient) as large GEMMs over all steps at once.
//
// Row orders (RowOrder, recurrent_layout.h): a [T·B, F] buffer is addressed by row(t, b) =
// t·st + b·sb. The caller's x and y use the caller's order (batch_first or not), so no transposed
// copy is made; the gate and gradient buffers of a layer follow the order of that layer's input,
// so the big GEMMs run over plain rows.
#include "recurrent.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "cpu_features.h"
#include "denormals.h"
#include "dropout_hash.h"
#include "errors.h"
#include "host_cache.h"
#include "parallel.h"
#include "recurrent_cells.h"
#include "recurrent_layout.h"
#include "sgemm.h"

namespace rnnkit {
namespace {

using Mode = RecurrentConfig::Mode;

constexpr const char* kWho = "recurrent";

[[noreturn]] void fail(const std::string& msg) { recurrent_fail(kWho, msg); }

// Float storage from the host block cache (host_cache.h: large blocks are reused across calls,
// already faulted in); Buf(n) is uninitialized, Buf(n, v) filled.
using Buf = HostFloats;

std::unique_ptr<PackedB> pack(bool trans, int64_t K, int64_t N, const float* B, int64_t ldb) {
  try {
    return std::unique_ptr<PackedB>(new PackedB(trans, K, N, B, ldb));
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::oom, "recurrent: cannot allocate packed weights");
  }
}

// Runs fn(b, j0, j1) over every batch row and a split of [0, H) fine enough to feed all threads
// when the batch is small (B = 1 still spreads over the hidden units).
template <class Fn>
void for_rows(int64_t B, int64_t H, const Fn& fn) {
  const int64_t nt = num_threads();
  int64_t per_row = B >= 2 * nt ? 1 : (4 * nt + B - 1) / B;
  int64_t chunk = (H + per_row - 1) / per_row;
  chunk = std::max<int64_t>(64, (chunk + 15) / 16 * 16);
  per_row = (H + chunk - 1) / chunk;
  const int64_t grain = std::max<int64_t>(1, 2048 / chunk);
  parallel_for(B * per_row, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / per_row, j0 = (i % per_row) * chunk;
      fn(b, j0, std::min(H, j0 + chunk));
    }
  });
}

// dst[idx] = src[idx] · mask(idx) / (1 − p) over a sequence-major [T·B, F] layer output.
void apply_dropout(float* dst, const float* src, int64_t n, int64_t layer, float p, uint64_t seed) {
  const float scale = 1.f / (1.f - p);
  parallel_for(n, 16384, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      dst[i] = dropout_uniform(seed, static_cast<uint32_t>(layer), static_cast<uint64_t>(i)) >= p
                   ? src[i] * scale
                   : 0.f;
  });
}

void copy_state(float* dst, const float* src, int64_t n) {
  if (src)
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  else
    std::fill(dst, dst + n, 0.f);
}

// dst[c] (+)= Σ_rows src[row·ld + c] for c in [0, ncols); inactive rows hold zeros.
void column_sums(float* dst, const float* src, int64_t ld, int64_t rows, int64_t ncols,
                 bool accumulate) {
  parallel_for(ncols, 64, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      if (!accumulate) dst[c] = 0.f;
    for (int64_t r = 0; r < rows; ++r) {
      const float* s = src + r * ld;
      for (int64_t c = c0; c < c1; ++c) dst[c] += s[c];
    }
  });
}

struct Lengths {
  std::unique_ptr<int32_t[]> v;
  Lengths(const int32_t* lens, int64_t T, int64_t B) : v(new int32_t[static_cast<size_t>(B)]) {
    for (int64_t b = 0; b < B; ++b) v[b] = lens ? lens[b] : static_cast<int32_t>(T);
  }
  bool active(int64_t t, int64_t b) const { return t < v[b]; }
};


// Per-step scheduler of the fused time loops: the hidden units are cut into slices; at every step
// each slice is claimed by exactly one thread (a thread first tries the slices of its own share,
// so in steady state it keeps the same slices, and their weights stay in its caches), and a thread
// leaves the step only when every slice of it is done. That is the loop's one barrier per step.
// Claims rather than fixed ownership keep it correct when the pool runs the logical threads one
// after another (nested or concurrent callers): the first one then simply does every slice.
class StepSlices {
 public:
  explicit StepSlices(int64_t n) : n_(n), claim_(new std::atomic<int64_t>[static_cast<size_t>(n)]) {
    for (int64_t i = 0; i < n; ++i) claim_[i].store(-1, std::memory_order_relaxed);
  }
  int64_t count() const { return n_; }

  template <class Fn>
  void run_step(int64_t step, int tid, int nt, const Fn& fn) {
    const int64_t start = n_ * tid / nt;
    for (int64_t i = 0; i < n_; ++i) {
      const int64_t k = (start + i) % n_;
      int64_t expected = step - 1;
      if (claim_[k].load(std::memory_order_relaxed) != expected ||
          !claim_[k].compare_exchange_strong(expected, step, std::memory_order_acq_rel))
        continue;
      // A failed slice still counts as done, so no thread waits forever; the error is rethrown
      // after the loop.
      if (!failed_.load(std::memory_order_relaxed)) {
        try {
          fn(k);
        } catch (...) {
          record(std::current_exception());
        }
      }
      done_.fetch_add(1, std::memory_order_acq_rel);
    }
    const int64_t target = (step + 1) * n_;
    for (int spins = 0; done_.load(std::memory_order_acquire) < target; ++spins)
      if (spins > 256) std::this_thread::yield();
  }

  void rethrow() {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void record(std::exception_ptr e) {
    bool expected = false;
    if (failed_.compare_exchange_strong(expected, true)) error_ = e;
  }
  const int64_t n_;
  std::unique_ptr<std::atomic<int64_t>[]> claim_;
  std::atomic<int64_t> done_{0};
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;
};

// Slices of [0, H) for the fused loops: two per thread (slack for a thread the OS delays), each a
// multiple of 16 units (whole micro-kernel panels, whole cache lines) and at least 32 wide.
std::vector<int64_t> unit_slices(int64_t H) {
  const int64_t nt = in_parallel_region() ? 1 : num_threads();
  int64_t n = std::max<int64_t>(1, std::min<int64_t>(2 * nt, H / 32));
  std::vector<int64_t> bounds{0};
  for (int64_t k = 1; k < n; ++k) bounds.push_back(std::min(H, (H * k / n + 15) / 16 * 16));
  bounds.push_back(H);
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  return bounds;
}

// Batch rows by decreasing length (stable), so that the sequences still running at step t are
// the first active(t) rows: the per-step GEMM then runs on those only.
struct SortedRows {
  std::vector<int64_t> perm;    // sorted index -> batch row
  std::vector<int64_t> active;  // [T] number of sequences with length > t
  SortedRows(const int32_t* lens, int64_t T, int64_t B) : perm(B), active(T, B) {
    for (int64_t b = 0; b < B; ++b) perm[b] = b;
    if (!lens) return;
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return lens[a] > lens[b]; });
    std::vector<int64_t> count(T + 1, 0);
    for (int64_t b = 0; b < B; ++b) ++count[lens[b]];
    int64_t running = B;
    for (int64_t t = 0; t < T; ++t) {
      running -= count[t];
      active[t] = running;
    }
  }
};
}  // namespace

int64_t recurrent_gate_count(RecurrentConfig::Mode mode) {
  switch (mode) {
    case Mode::lstm: return 4;
    case Mode::gru: return 3;
    default: return 1;
  }
}

void recurrent_validate(const RecurrentConfig& c) {
  if (c.mode != Mode::lstm && c.mode != Mode::gru && c.mode != Mode::rnn_tanh &&
      c.mode != Mode::rnn_relu)
    fail("unknown mode");
  if (c.input_size < 1) fail("input_size must be >= 1");
  if (c.hidden_size < 1) fail("hidden_size must be >= 1");
  if (c.num_layers < 1) fail("num_layers must be >= 1");
  if (c.proj_size < 0) fail("proj_size must be >= 0");
  if (c.proj_size > 0 && c.mode != Mode::lstm) fail("proj_size applies to LSTM only");
  if (c.peepholes && c.mode != Mode::lstm) fail("peepholes apply to LSTM only");
  if (!(c.cell_clip >= 0.f)) fail("cell_clip must be >= 0");
  if (c.cell_clip > 0.f && c.mode != Mode::lstm) fail("cell_clip applies to LSTM only");
  if (c.skip_input && c.input_size != c.hidden_size)
    fail("skip input needs input_size == hidden_size");
}

RecurrentSizes recurrent_sizes(const RecurrentConfig& cfg, int64_t T, int64_t B) {
  const RecurrentDims dm(cfg);
  if (T < 0 || B < 0) fail("T and B must be >= 0");
  RecurrentSizes s;
  s.T = T;
  s.B = B;
  s.I = dm.I;
  s.H = dm.H;
  s.R = dm.R;
  s.LD = dm.L * dm.D;
  s.DR = dm.D * dm.R;
  s.lstm = dm.lstm;
  const CheckedSize w{"the packed weights"}, sv{"the saved activations"}, io{"x or y"}, st{"the states"};
  s.weights = 0;
  for (int64_t l = 0; l < dm.L; ++l) s.weights = w.add(s.weights, w.mul(dm.D, dm.block_size(l)));
  const int64_t TB = io.mul(T, B);
  s.x = io.mul(TB, s.I);
  s.y = io.mul(TB, s.DR);
  s.h_states = st.mul(s.LD, B, s.R);
  s.c_states = dm.lstm ? st.mul(s.LD, B, s.H) : 0;
  // Per step and batch row: every layer/direction's gates (and cells), the outputs of all layers
  // but the last (RecurrentSavedLayout).
  const int64_t per_row = sv.add(sv.mul(s.LD, dm.saved_step_width()), sv.mul(dm.L - 1, s.DR));
  s.saved = sv.mul(TB, per_row);
  return s;
}

int64_t recurrent_weights_size(const RecurrentConfig& cfg) { return recurrent_sizes(cfg, 0, 0).weights; }

ParamSlot recurrent_param_slot(const RecurrentConfig& cfg, int64_t layer, int64_t dir,
                               ParamKind kind) {
  RecurrentDims dm(cfg);
  if (layer < 0 || layer >= dm.L) fail("layer out of range");
  if (dir < 0 || dir >= dm.D) fail("direction out of range");
  RecurrentSlots s = slots_of(dm, layer, dir);
  const int64_t GH = dm.G * dm.H;
  switch (kind) {
    case ParamKind::w_ih:
      return dm.has_wih(layer) ? ParamSlot{s.w_ih, GH, dm.in_size(layer)} : ParamSlot{s.w_ih, 0, 0};
    case ParamKind::w_hh: return {s.w_hh, GH, dm.R};
    case ParamKind::b_ih: return {s.b_ih, 1, GH};
    case ParamKind::b_hh: return {s.b_hh, 1, GH};
    case ParamKind::w_proj: return dm.proj ? ParamSlot{s.w_proj, dm.R, dm.H} : ParamSlot{s.w_proj, 0, 0};
    case ParamKind::w_peephole: return dm.peep ? ParamSlot{s.peep, 1, 3 * dm.H} : ParamSlot{s.peep, 0, 0};
  }
  fail("unknown parameter kind");
}

int64_t recurrent_saved_size(const RecurrentConfig& cfg, int64_t T, int64_t B) {
  return recurrent_sizes(cfg, T, B).saved;
}

namespace {

// What the forward time loop of one layer and direction takes, fused or not.
struct ForwardLayer {
  const RecurrentDims& dm;
  const cells::Kernels& K;
  int64_t T, B, d;
  const float* w_hh;
  const float* bias_sum;  // LSTM / RNN
  const float* b_ih;      // GRU
  const float* b_hh;
  const float* peep;
  float* gates;           // [T·B, GW] x-projection in, activations out (in_seq rows)
  float* cells_out;       // LSTM training: [T·B, H] (in_seq rows) or null
  float* out;             // layer output, out_seq rows, D·R wide
  RowOrder in_seq, out_seq;
  const float* h0;        // [B, R] or null (zeros)
  const float* c0;        // [B, H] or null
  float* hy;              // [B, R] or null
  float* cy;              // [B, H] or null
};

// The fused forward time loop of one layer and direction (LSTM, linear-before-reset GRU, plain
// RNNs; no projection). One parallel region for all T steps: a slice of hidden units owns its
// columns of h·W_hhᵀ (its rows of W_hh packed once, by whichever thread packs them) and the cell
// update of those units, so a step needs one barrier instead of a GEMM region plus a cell region.
// h is double-buffered by step parity: a step's GEMM reads the previous h of every unit while the
// slices write the new one. State rows are kept in SortedRows order, so the GEMM of step t covers
// only the sequences still running.
struct FusedForward : ForwardLayer {
  const SortedRows& rows;

  void run() const {
    const int64_t H = dm.H, G = dm.G, GH = G * H;
    const std::vector<int64_t> bounds = unit_slices(H);
    const int64_t ns = static_cast<int64_t>(bounds.size()) - 1;
    Buf hbuf(2 * B * H), cbuf(dm.lstm ? B * H : 0), hh(B * GH), rh(dm.onnx_gru ? B * H : 0);
    for (int64_t k = 0; k < B; ++k) {
      const int64_t b = rows.perm[k];
      copy_state(hbuf.get() + k * H, h0 ? h0 + b * H : nullptr, H);
      if (dm.lstm) copy_state(cbuf.get() + k * H, c0 ? c0 + b * H : nullptr, H);
    }
    // packed[k * G + g]: op(B) = (rows g·H + [u0, u1) of W_hh)ᵀ, [H, u1 − u0].
    std::vector<std::unique_ptr<PackedB>> packed(static_cast<size_t>(ns * G));
    parallel_for(ns * G, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t k = i / G, g = i % G, u0 = bounds[k];
        packed[i] = pack(true, H, bounds[k + 1] - u0, w_hh + (g * H + u0) * H, H);
      }
    });
    StepSlices sched(ns);
    parallel_run(0, [&](int tid, int nt) {
      for (int64_t step = 0; step < T; ++step) {
        if (dm.onnx_gru) {
          // Two rounds per step: the n block multiplies r⊙h_prev, which needs every unit's r.
          for (int phase = 0; phase < 2; ++phase)
            sched.run_step(2 * step + phase, tid, nt, [&](int64_t k) {
              onnx_gru_slice_step(step, phase, bounds[k], bounds[k + 1], k, packed, hbuf.get(),
                                  hh.get(), rh.get());
            });
          continue;
        }
        sched.run_step(step, tid, nt, [&](int64_t k) {
          slice_step(step, bounds[k], bounds[k + 1], k, packed, hbuf.get(), cbuf.get(), hh.get());
        });
      }
    });
    sched.rethrow();
    const float* hT = hbuf.get() + (T % 2) * B * H;
    for (int64_t k = 0; k < B; ++k) {
      const int64_t b = rows.perm[k];
      if (hy) std::memcpy(hy + b * H, hT + k * H, static_cast<size_t>(H) * 4);
      if (cy && dm.lstm) std::memcpy(cy + b * H, cbuf.get() + k * H, static_cast<size_t>(H) * 4);
    }
  }

  // ONNX-form GRU, one slice of units [u0, u1): phase 0 runs the r and z columns of h_prev·W_hhᵀ
  // and the first cell pass (r, z, r⊙h_prev into rh); phase 1, after the barrier, the n columns of
  // rh·W_hhᵀ and the second pass (n and the new h, updated in place in hn, which phase 0 seeded
  // with h_prev).
  void onnx_gru_slice_step(int64_t step, int phase, int64_t u0, int64_t u1, int64_t k,
                           const std::vector<std::unique_ptr<PackedB>>& packed, float* hbuf,
                           float* hh, float* rh) const {
    const int64_t H = dm.H, G = dm.G, GW = dm.gate_width(), GH = G * H, DR = dm.D * dm.R;
    const int64_t t = d == 0 ? step : T - 1 - step;
    const int64_t M = rows.active[t], nu = u1 - u0;
    const float* hp = hbuf + (step % 2) * B * H;
    float* hn = hbuf + ((step + 1) % 2) * B * H;
    auto row_args = [&](int64_t r) {
      const int64_t b = rows.perm[r];
      return cells::GruFwdRow{gates + in_seq.row(t, b) * GW, hh + r * GH, b_ih, b_hh, hn + r * H,
                              out + out_seq.row(t, b) * DR + d * H, rh + r * H, H};
    };
    if (phase == 0) {
      if (M > 0)
        for (int64_t g = 0; g < 2; ++g)
          sgemm_packed(false, M, 1.f, hp, H, *packed[k * G + g], 0.f, hh + g * H + u0, GH);
      for (int64_t r = 0; r < B; ++r)
        std::memcpy(hn + r * H + u0, hp + r * H + u0, static_cast<size_t>(nu) * 4);
      for (int64_t r = M; r < B; ++r)
        std::fill_n(out + out_seq.row(t, rows.perm[r]) * DR + d * H + u0, nu, 0.f);
      for (int64_t r = 0; r < M; ++r) K.gru_fwd_rz(row_args(r), u0, u1);
      return;
    }
    if (M > 0) sgemm_packed(false, M, 1.f, rh, H, *packed[k * G + 2], 0.f, hh + 2 * H + u0, GH);
    for (int64_t r = 0; r < M; ++r) K.gru_fwd_n(row_args(r), u0, u1);
  }

  void slice_step(int64_t step, int64_t u0, int64_t u1, int64_t k,
                  const std::vector<std::unique_ptr<PackedB>>& packed, float* hbuf, float* cbuf,
                  float* hh) const {
    const int64_t H = dm.H, G = dm.G, GW = dm.gate_width(), GH = G * H, DR = dm.D * dm.R;
    const int64_t t = d == 0 ? step : T - 1 - step;
    const int64_t M = rows.active[t], nu = u1 - u0;
    const float* hp = hbuf + (step % 2) * B * H;
    float* hn = hbuf + ((step + 1) % 2) * B * H;
    if (M > 0)
      for (int64_t g = 0; g < G; ++g)
        sgemm_packed(false, M, 1.f, hp, H, *packed[k * G + g], 0.f, hh + g * H + u0, GH);
    // Finished sequences carry their state; the GRU cell updates h in place, so it starts from
    // the previous h too.
    for (int64_t r = dm.gru ? 0 : M; r < B; ++r)
      std::memcpy(hn + r * H + u0, hp + r * H + u0, static_cast<size_t>(nu) * 4);
    for (int64_t r = M; r < B; ++r)
      std::fill_n(out + out_seq.row(t, rows.perm[r]) * DR + d * H + u0, nu, 0.f);
    for (int64_t r = 0; r < M; ++r) {
      const int64_t b = rows.perm[r];
      const int64_t row = in_seq.row(t, b);
      float* y = out + out_seq.row(t, b) * DR + d * H;
      if (dm.lstm) {
        cells::LstmFwdRow a{gates + row * GW, hh + r * GH, bias_sum, peep, cbuf + r * H,
                            cells_out ? cells_out + row * H : nullptr, hn + r * H, y, dm.clip, H};
        K.lstm_fwd(a, u0, u1);
      } else if (dm.gru) {
        cells::GruFwdRow a{gates + row * GW, hh + r * GH, b_ih, b_hh, hn + r * H, y, nullptr, H};
        K.gru_fwd_lbr(a, u0, u1);
      } else {
        cells::RnnFwdRow a{gates + row * GW, hh + r * GH, bias_sum, hn + r * H, y,
                           dm.mode == Mode::rnn_relu, H};
        K.rnn_fwd(a, u0, u1);
      }
    }
  }
};

// The fused backward time loop of one layer and direction (the configurations of FusedForward).
// A slice of units at step s first finishes dL/dh_{t_prev} for its units (the gate gradients of
// the previous step times its columns of W_hh, which needs every unit's gate gradients: the
// barrier), then runs the gate gradients of step s for its units. One barrier per step; the last
// round only finishes dL/dh for dhx. Rows of finished sequences keep their dh and have zero gate
// gradients (pre-filled by the caller).
struct FusedBackward {
  const RecurrentDims& dm;
  const cells::Kernels& K;
  int64_t T, B, d;
  const float* w_hh;
  const float* peep;
  const float* gates;        // saved activations (in_seq rows) or null (plain RNNs)
  const float* cells_saved;  // LSTM
  const float* out;          // layer output (out_seq rows)
  const float* dout;         // or null
  RowOrder in_seq, out_seq;
  const Lengths& len;
  const float* hx_l;         // [B, H] or null
  const float* cx_l;
  const float* zeros;        // [H]
  float* dgates;             // [T·B, GW] (in_seq rows)
  float* dh_state;           // [B, H] in: dhy; out: dhx
  float* dc_state;           // [B, H] LSTM
  float* dh_tmp;             // [B, H]

  void run() const {
    const int64_t H = dm.H, GH = dm.G * H;
    const std::vector<int64_t> bounds = unit_slices(H);
    const int64_t ns = static_cast<int64_t>(bounds.size()) - 1;
    // packed[k]: op(B) = columns [u0, u1) of W_hh [G·H, H].
    std::vector<std::unique_ptr<PackedB>> packed(static_cast<size_t>(ns));
    parallel_for(ns, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t k = i0; k < i1; ++k)
        packed[k] = pack(false, GH, bounds[k + 1] - bounds[k], w_hh + bounds[k], H);
    });
    StepSlices sched(ns);
    parallel_run(0, [&](int tid, int nt) {
      for (int64_t step = 0; step <= T; ++step)
        sched.run_step(step, tid, nt,
                       [&](int64_t k) { slice_step(step, bounds[k], bounds[k + 1], *packed[k]); });
    });
    sched.rethrow();
  }

  void slice_step(int64_t step, int64_t u0, int64_t u1, const PackedB& pk) const {
    const int64_t H = dm.H, GW = dm.gate_width(), DR = dm.D * dm.R, nu = u1 - u0;
    const int64_t ld_rows = in_seq.sb;
    if (step > 0) {
      const int64_t tp = d == 0 ? T - step : step - 1;
      sgemm_packed(false, B, 1.f, dgates + in_seq.row(tp, 0) * GW, ld_rows * GW, pk,
                   dm.gru ? 1.f : 0.f, dh_tmp + u0, H);
      for (int64_t b = 0; b < B; ++b)
        if (len.active(tp, b))
          std::memcpy(dh_state + b * H + u0, dh_tmp + b * H + u0, static_cast<size_t>(nu) * 4);
    }
    if (step == T) return;
    const int64_t t = d == 0 ? T - 1 - step : step;
    const int64_t tprev = d == 0 ? t - 1 : t + 1;
    for (int64_t b = 0; b < B; ++b) {
      if (!len.active(t, b)) continue;
      const int64_t row = in_seq.row(t, b);
      const bool first = d == 0 ? t == 0 : t == len.v[b] - 1;
      const float* dy = dout ? dout + out_seq.row(t, b) * DR + d * H : nullptr;
      if (dm.lstm) {
        const float* cp = first ? (cx_l ? cx_l + b * H : zeros) : cells_saved + in_seq.row(tprev, b) * H;
        cells::LstmBwdRow a{gates + row * GW, cells_saved + row * H, cp, dh_state + b * H, dy,
                            dc_state + b * H, dgates + row * GW, nullptr, peep, dm.clip, H};
        K.lstm_bwd(a, u0, u1);
      } else if (dm.gru) {
        const float* hp = first ? (hx_l ? hx_l + b * H : zeros) : out + out_seq.row(tprev, b) * DR + d * H;
        cells::GruBwdRow a{gates + row * GW, hp, dh_state + b * H, dy, dgates + row * GW,
                           dh_tmp + b * H, nullptr, nullptr, H};
        K.gru_bwd_lbr(a, u0, u1);
      } else {
        cells::RnnBwdRow a{out + out_seq.row(t, b) * DR + d * H, dh_state + b * H, dy,
                           dgates + row * GW, dm.mode == Mode::rnn_relu, H};
        K.rnn_bwd(a, u0, u1);
      }
    }
  }
};
// The state before step t of sequence b in direction d of the backward: the initial state at its
// first step, else the output (h) or saved cell (c) of the neighbouring step in time order.
struct PrevState {
  const RecurrentDims& dm;
  int64_t d;
  const Lengths& len;
  const float* hx_l;         // [B, R] or null (zeros)
  const float* cx_l;         // [B, H] or null (zeros)
  const float* zeros;        // [max(R, H)]
  const float* out;          // layer output (out_seq rows, D·R wide)
  RowOrder in_seq, out_seq;
  const float* cells_saved;  // LSTM: saved cells (in_seq rows)

  bool first(int64_t t, int64_t b) const { return d == 0 ? t == 0 : t == len.v[b] - 1; }
  int64_t t_prev(int64_t t) const { return d == 0 ? t - 1 : t + 1; }
  const float* h(int64_t t, int64_t b) const {
    if (first(t, b)) return hx_l ? hx_l + b * dm.R : zeros;
    return out + out_seq.row(t_prev(t), b) * dm.D * dm.R + d * dm.R;
  }
  const float* c(int64_t t, int64_t b) const {
    if (first(t, b)) return cx_l ? cx_l + b * dm.H : zeros;
    return cells_saved + in_seq.row(t_prev(t), b) * dm.H;
  }
};

// The forward time loop of the two-pass configurations (LSTM with projection, ONNX GRU): per step
// a packed step GEMM, then the cell pass split over batch rows and hidden chunks (for_rows), with
// a second GEMM between two cell passes (the projection m·W_projᵀ; the n rows of W_hh times r⊙h).
struct UnfusedForward : ForwardLayer {
  const float* w_proj;    // LSTM with projection
  const Lengths& len;

  void run() const {
    const int64_t H = dm.H, R = dm.R, G = dm.G, GW = dm.gate_width(), DR = dm.D * R;
    Buf hh(B * G * H), h_state(B * R), c_state(dm.lstm ? B * H : 0);
    Buf m(dm.proj ? B * H : 0, 0.f), hproj(dm.proj ? B * R : 0), rh(dm.gru ? B * H : 0, 0.f);
    copy_state(h_state.get(), h0, B * R);
    if (dm.lstm) copy_state(c_state.get(), c0, B * H);

    // W_hh is packed as op(B) = W_hhᵀ [R, G·H]; the ONNX GRU form needs the n rows separately
    // because they multiply r⊙h rather than h.
    std::unique_ptr<PackedB> pk_hh = pack(true, R, dm.onnx_gru ? 2 * H : G * H, w_hh, R);
    std::unique_ptr<PackedB> pk_n = dm.onnx_gru ? pack(true, H, H, w_hh + 2 * H * R, R) : nullptr;
    std::unique_ptr<PackedB> pk_proj = dm.proj ? pack(true, H, R, w_proj, H) : nullptr;

    for (int64_t step = 0; step < T; ++step) {
      const int64_t t = d == 0 ? step : T - 1 - step;
      sgemm_packed(false, B, 1.f, h_state.get(), R, *pk_hh, 0.f, hh.get(), G * H);
      for (int64_t b = 0; b < B; ++b)
        if (!len.active(t, b)) std::fill_n(out + out_seq.row(t, b) * DR + d * R, R, 0.f);
      auto yrow = [&](int64_t b) { return out + out_seq.row(t, b) * DR + d * R; };

      if (dm.lstm) {
        for_rows(B, H, [&](int64_t b, int64_t j0, int64_t j1) {
          if (!len.active(t, b)) return;
          const int64_t row = in_seq.row(t, b);
          cells::LstmFwdRow a{gates + row * GW,
                              hh.get() + b * G * H,
                              bias_sum,
                              peep,
                              c_state.get() + b * H,
                              cells_out ? cells_out + row * H : nullptr,
                              m.get() + b * H,
                              nullptr,
                              dm.clip,
                              H};
          K.lstm_fwd(a, j0, j1);
        });
        sgemm_packed(false, B, 1.f, m.get(), H, *pk_proj, 0.f, hproj.get(), R);
        for (int64_t b = 0; b < B; ++b) {
          if (!len.active(t, b)) continue;
          std::memcpy(h_state.get() + b * R, hproj.get() + b * R, static_cast<size_t>(R) * 4);
          std::memcpy(yrow(b), hproj.get() + b * R, static_cast<size_t>(R) * 4);
        }
      } else {
        auto row_args = [&](int64_t b) {
          return cells::GruFwdRow{gates + in_seq.row(t, b) * GW,
                                  hh.get() + b * G * H,
                                  b_ih,
                                  b_hh,
                                  h_state.get() + b * H,
                                  yrow(b),
                                  rh.get() + b * H,
                                  H};
        };
        for_rows(B, H, [&](int64_t b, int64_t j0, int64_t j1) {
          if (len.active(t, b)) K.gru_fwd_rz(row_args(b), j0, j1);
        });
        sgemm_packed(false, B, 1.f, rh.get(), H, *pk_n, 0.f, hh.get() + 2 * H, G * H);
        for_rows(B, H, [&](int64_t b, int64_t j0, int64_t j1) {
          if (len.active(t, b)) K.gru_fwd_n(row_args(b), j0, j1);
        });
      }
    }
    if (hy) std::memcpy(hy, h_state.get(), static_cast<size_t>(B * R) * 4);
    if (cy) std::memcpy(cy, c_state.get(), static_cast<size_t>(B * H) * 4);
  }
};

// Before FusedBackward: every step's h_{t-1} into hprev_all (the weight-gradient GEMMs read it);
// rows past a sequence's end take part in the GEMMs as zeros (h_{t-1} and gate gradients).
void gather_prev_h(const PrevState& prev, int64_t T, int64_t B, float* hprev_all, float* dgates) {
  const int64_t R = prev.dm.R, GW = prev.dm.gate_width();
  parallel_for(T, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = prev.in_seq.row(t, b);
        if (prev.len.active(t, b)) {
          std::memcpy(hprev_all + row * R, prev.h(t, b), static_cast<size_t>(R) * 4);
        } else {
          std::fill_n(dgates + row * GW, GW, 0.f);
          std::fill_n(hprev_all + row * R, R, 0.f);
        }
      }
  });
}

// The backward time loop of the two-pass configurations (the mirror of UnfusedForward): per step
// the gate gradients (with the projection GEMM before the LSTM cell pass; the n-row GEMM between
// the two ONNX GRU passes), then dL/dh_{t-1} = dA_hh · W_hh as one packed GEMM. Fills every step's
// rows of dgates, hprev_all (and rh_all / m_all / dh_all) for the weight gradients.
struct UnfusedBackward {
  const RecurrentDims& dm;
  const cells::Kernels& K;
  int64_t T, B, d;
  const float* w_hh;
  const float* w_proj;       // LSTM with projection
  const float* peep;
  const float* gates;        // saved activations (in_seq rows)
  const float* cells_saved;  // LSTM
  const float* dout;         // layer output gradient (out_seq rows) or null
  const PrevState& prev;
  float* dgates;             // [T·B, GW] (in_seq rows)
  float* hprev_all;          // [T·B, R]
  float* rh_all;             // ONNX GRU: [T·B, H]
  float* m_all;              // projection: [T·B, H]
  float* dh_all;             // projection: [T·B, R]
  float* dh_state;           // [B, R] in: dhy; out: dhx
  float* dc_state;           // [B, H] LSTM
  float* dh_tmp;             // [B, R], zeros on entry

  void run() const {
    const int64_t H = dm.H, R = dm.R, G = dm.G, GW = dm.gate_width(), DR = dm.D * R;
    const Lengths& len = prev.len;
    const RowOrder in_seq = prev.in_seq, out_seq = prev.out_seq;
    Buf dm_buf(dm.proj ? B * H : 0), drh(dm.onnx_gru ? B * H : 0);
    // dL/dh_{t-1} = dA_hh · W_hh: W_hh [G·H, R] is op(B) as stored.
    std::unique_ptr<PackedB> pk_hh = pack(false, dm.onnx_gru ? 2 * H : G * H, R, w_hh, R);
    std::unique_ptr<PackedB> pk_n = dm.onnx_gru ? pack(false, H, H, w_hh + 2 * H * H, H) : nullptr;
    std::unique_ptr<PackedB> pk_proj = dm.proj ? pack(false, R, H, w_proj, H) : nullptr;

    for (int64_t step = 0; step < T; ++step) {
      const int64_t t = d == 0 ? T - 1 - step : step;
      auto dyrow = [&](int64_t b) -> const float* {
        return dout ? dout + out_seq.row(t, b) * DR + d * R : nullptr;
      };
      // Rows of steps past a sequence's end take part in the GEMMs as zeros.
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = in_seq.row(t, b);
        if (len.active(t, b)) {
          std::memcpy(hprev_all + row * R, prev.h(t, b), static_cast<size_t>(R) * 4);
          if (dm.proj) {
            float* dh = dh_all + row * R;
            const float* dyr = dyrow(b);
            for (int64_t j = 0; j < R; ++j) dh[j] = dh_state[b * R + j] + (dyr ? dyr[j] : 0.f);
          }
        } else {
          std::fill_n(dgates + row * GW, GW, 0.f);
          std::fill_n(hprev_all + row * R, R, 0.f);
          if (dm.onnx_gru) std::fill_n(rh_all + row * H, H, 0.f);
          if (dm.proj) {
            std::fill_n(m_all + row * H, H, 0.f);
            std::fill_n(dh_all + row * R, R, 0.f);
          }
        }
      }
      const int64_t ld_rows = in_seq.sb;  // row distance between consecutive b at fixed t
      float* dg_t = dgates + in_seq.row(t, 0) * GW;
      float beta_direct = 0.f;

      if (dm.lstm) {
        sgemm_packed(false, B, 1.f, dh_all + in_seq.row(t, 0) * R, ld_rows * R, *pk_proj, 0.f,
                     dm_buf.get(), H);
        for_rows(B, H, [&](int64_t b, int64_t j0, int64_t j1) {
          if (!len.active(t, b)) return;
          const int64_t row = in_seq.row(t, b);
          cells::LstmBwdRow a{gates + row * GW,
                              cells_saved + row * H,
                              prev.c(t, b),
                              dm_buf.get() + b * H,
                              nullptr,
                              dc_state + b * H,
                              dgates + row * GW,
                              m_all + row * H,
                              peep,
                              dm.clip,
                              H};
          K.lstm_bwd(a, j0, j1);
        });
      } else {
        auto row_args = [&](int64_t b) {
          const int64_t row = in_seq.row(t, b);
          return cells::GruBwdRow{gates + row * GW,
                                  prev.h(t, b),
                                  dh_state + b * R,
                                  dyrow(b),
                                  dgates + row * GW,
                                  dh_tmp + b * R,
                                  drh.get() + b * H,
                                  rh_all + row * H,
                                  H};
        };
        beta_direct = 1.f;
        for_rows(B, H, [&](int64_t b, int64_t j0, int64_t j1) {
          if (len.active(t, b)) K.gru_bwd_zn(row_args(b), j0, j1);
        });
        sgemm_packed(false, B, 1.f, dg_t + 2 * H, ld_rows * GW, *pk_n, 0.f, drh.get(), H);
        for_rows(B, H, [&](int64_t b, int64_t j0, int64_t j1) {
          if (len.active(t, b)) K.gru_bwd_r(row_args(b), j0, j1);
        });
      }
      sgemm_packed(false, B, 1.f, dg_t, ld_rows * GW, *pk_hh, beta_direct, dh_tmp, R);
      for (int64_t b = 0; b < B; ++b)
        if (len.active(t, b))
          std::memcpy(dh_state + b * R, dh_tmp + b * R, static_cast<size_t>(R) * 4);
    }
  }
};

// The weight gradients of one layer/direction over all steps at once, from its gate gradients dg
// [T·B, GW]. Columns of a gradient row: the ih side is [0, G·H) except for linear-before-reset
// GRU, where it is [dr dz] then dn at 3H; the hh side is [0, G·H) ([dr dz dhn] for that GRU form).
struct WeightGradients {
  const RecurrentDims& dm;
  int64_t l, T, B;
  const RecurrentSlots& s;
  const float* dg;
  const float* in;         // layer input [T·B, In] (after dropout)
  const float* hprev_all;  // [T·B, R]
  const float* rh_all;     // ONNX GRU
  const float* dh_all;     // projection
  const float* m_all;      // projection
  const PrevState& prev;   // peepholes: c_{t-1} and the saved cells
  float* dweights;
  bool accumulate;

  void run() const {
    const int64_t H = dm.H, R = dm.R, G = dm.G, GW = dm.gate_width(), TB = T * B;
    const int64_t In = dm.in_size(l);
    const float wbeta = accumulate ? 1.f : 0.f;
    float* dw_ih = dweights + s.w_ih;
    float* dw_hh = dweights + s.w_hh;
    if (dm.has_wih(l)) {
      if (dm.lbr) {
        sgemm(true, false, 2 * H, In, TB, 1.f, dg, GW, in, In, wbeta, dw_ih, In);
        sgemm(true, false, H, In, TB, 1.f, dg + 3 * H, GW, in, In, wbeta, dw_ih + 2 * H * In, In);
      } else {
        sgemm(true, false, G * H, In, TB, 1.f, dg, GW, in, In, wbeta, dw_ih, In);
      }
    }
    if (dm.onnx_gru) {
      sgemm(true, false, 2 * H, H, TB, 1.f, dg, GW, hprev_all, H, wbeta, dw_hh, H);
      sgemm(true, false, H, H, TB, 1.f, dg + 2 * H, GW, rh_all, H, wbeta, dw_hh + 2 * H * H, H);
    } else {
      sgemm(true, false, G * H, R, TB, 1.f, dg, GW, hprev_all, R, wbeta, dw_hh, R);
    }
    // Both bias gradients from one pass over dg (it is the largest buffer of the backward): the
    // column sums of every gate-gradient column, then each bias takes its columns.
    Buf sums(GW);
    column_sums(sums.get(), dg, GW, TB, GW, false);
    auto take = [&](float* dst, const float* src, int64_t n) {
      for (int64_t j = 0; j < n; ++j) dst[j] = (accumulate ? dst[j] : 0.f) + src[j];
    };
    if (dm.lbr) {
      take(dweights + s.b_ih, sums.get(), 2 * H);
      take(dweights + s.b_ih + 2 * H, sums.get() + 3 * H, H);
      take(dweights + s.b_hh, sums.get(), 3 * H);
    } else {
      take(dweights + s.b_ih, sums.get(), G * H);
      take(dweights + s.b_hh, sums.get(), G * H);
    }
    if (dm.proj)
      sgemm(true, false, R, H, TB, 1.f, dh_all, R, m_all, H, wbeta, dweights + s.w_proj, H);
    if (dm.peep) peephole_gradients(dweights + s.peep);
  }

  // Σ over steps of dA_i⊙c_prev, dA_f⊙c_prev and dA_o⊙c: rows outer, a chunk of units inner, so
  // each thread streams contiguous gradient rows.
  void peephole_gradients(float* dp) const {
    const int64_t H = dm.H, GW = dm.gate_width();
    parallel_for(H, 64, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j)
        if (!accumulate) dp[j] = dp[H + j] = dp[2 * H + j] = 0.f;
      for (int64_t t = 0; t < T; ++t)
        for (int64_t b = 0; b < B; ++b) {
          if (!prev.len.active(t, b)) continue;
          const int64_t row = prev.in_seq.row(t, b);
          const float* g = dg + row * GW;
          const float* cp = prev.c(t, b);
          const float* cn = prev.cells_saved + row * H;
          for (int64_t j = j0; j < j1; ++j) {
            dp[j] += g[j] * cp[j];
            dp[H + j] += g[H + j] * cp[j];
            dp[2 * H + j] += g[3 * H + j] * cn[j];
          }
        }
    });
  }
};

// The gradient of layer l's input from direction d's gate gradients dg; the second direction adds
// to the first.
void input_gradient(const RecurrentDims& dm, int64_t l, int64_t d, int64_t TB, const float* dg,
                    const float* w_ih, float* din) {
  const int64_t H = dm.H, G = dm.G, GW = dm.gate_width(), In = dm.in_size(l);
  const float xbeta = d == 0 ? 0.f : 1.f;
  if (dm.has_wih(l)) {
    if (dm.lbr) {
      sgemm(false, false, TB, In, 2 * H, 1.f, dg, GW, w_ih, In, xbeta, din, In);
      sgemm(false, false, TB, In, H, 1.f, dg + 3 * H, GW, w_ih + 2 * H * In, In, 1.f, din, In);
    } else {
      sgemm(false, false, TB, In, G * H, 1.f, dg, GW, w_ih, In, xbeta, din, In);
    }
    return;
  }
  const int64_t n_col = dm.lbr ? 3 * H : 2 * H;  // column of the ih-side n gradient
  parallel_for(TB, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* g = dg + r * GW;
      float* o = din + r * In;
      for (int64_t j = 0; j < H; ++j) {
        float v = 0.f;
        for (int64_t k = 0; k < G; ++k) v += g[(dm.gru && k == 2 ? n_col : k * H) + j];
        o[j] = v + (d == 0 ? 0.f : o[j]);
      }
    }
  });
}

// The input projection of one layer/direction for all steps: gates = in · W_ihᵀ, or (skip input)
// every gate block of a row starts as the row of x.
void input_projection(const RecurrentDims& dm, int64_t l, int64_t TB, const float* in,
                      const float* w_ih, float* gates) {
  const int64_t H = dm.H, G = dm.G, GW = dm.gate_width(), In = dm.in_size(l);
  if (dm.has_wih(l)) {
    sgemm(false, true, TB, G * H, In, 1.f, in, In, w_ih, In, 0.f, gates, GW);
    return;
  }
  parallel_for(TB, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t k = 0; k < G; ++k)
        std::memcpy(gates + r * GW + k * H, in + r * In, static_cast<size_t>(H) * 4);
  });
}
}  // namespace

void recurrent_forward(const RecurrentConfig& cfg, int64_t T, int64_t B, bool batch_first,
                       const float* x, const float* hx, const float* cx,
                       const int32_t* seq_lengths, const float* weights, float dropout_p,
                       uint64_t seed, float* y, float* hy, float* cy, float* saved) {
  DenormalGuard denormal_guard;  // FTZ/DAZ for this call, the caller's mode restored (denormals.h)
  const RecurrentDims dm(cfg);
  recurrent_check_forward(kWho, cfg, T, B, x, weights, dropout_p, seq_lengths, y);
  const int64_t H = dm.H, R = dm.R, D = dm.D, G = dm.G, TB = T * B;
  const int64_t GW = dm.gate_width(), DR = D * R;
  if (TB == 0) {
    for (int64_t k = 0; k < dm.L * D; ++k) {
      if (hy) copy_state(hy + k * B * R, hx ? hx + k * B * R : nullptr, B * R);
      if (cy && dm.lstm) copy_state(cy + k * B * H, cx ? cx + k * B * H : nullptr, B * H);
    }
    return;
  }
  const cells::Kernels& K = cells::kernels_for(active_isa());
  const bool training = saved != nullptr;
  const RecurrentSavedLayout sl{dm, TB};
  const RowOrder user = RowOrder::caller(batch_first, T, B), inner = RowOrder::inner(B);
  const Lengths len(seq_lengths, T, B);
  // The ONNX GRU form runs the fused loop too (two rounds per step); its backward stays two-pass.
  const bool fused = dm.single_pass() || dm.onnx_gru;
  const SortedRows sorted(fused ? seq_lengths : nullptr, fused ? T : 0, B);

  // The x-projection lives in `saved` when the gates are kept; otherwise in a scratch buffer.
  Buf xproj(training && dm.saved_step_width() > 0 ? 0 : TB * GW);
  Buf bias_sum(G * H);
  Buf inter(!training && dm.L > 1 ? (dm.L > 2 ? 2 : 1) * TB * DR : 0);
  Buf dropped(dropout_p > 0.f && dm.L > 1 ? TB * DR : 0);

  const float* prev_out = nullptr;
  for (int64_t l = 0; l < dm.L; ++l) {
    const float* in = x;
    RowOrder in_seq = user;
    if (l > 0) {
      in_seq = inner;
      in = prev_out;
      if (dropout_p > 0.f) {
        apply_dropout(dropped.get(), prev_out, TB * DR, l - 1, dropout_p, seed);
        in = dropped.get();
      }
    }
    const bool last = l == dm.L - 1;
    float* out = last ? y : training ? saved + sl.output(l) : inter.get() + (l % 2) * TB * DR;
    const RowOrder out_seq = last ? user : inner;

    for (int64_t d = 0; d < D; ++d) {
      const RecurrentSlots s = slots_of(dm, l, d);
      const float* w_hh = weights + s.w_hh;
      const float* b_ih = weights + s.b_ih;
      const float* b_hh = weights + s.b_hh;
      const float* peep = dm.peep ? weights + s.peep : nullptr;
      float* gates = xproj.get() ? xproj.get() : saved + sl.gates(l, d);
      float* cells_out = training && dm.lstm ? saved + sl.cells(l, d) : nullptr;
      input_projection(dm, l, TB, in, weights + s.w_ih, gates);
      for (int64_t j = 0; j < G * H; ++j) bias_sum.get()[j] = b_ih[j] + b_hh[j];
      const int64_t sidx = l * D + d;
      const float* h0 = hx ? hx + sidx * B * R : nullptr;
      const float* c0 = dm.lstm && cx ? cx + sidx * B * H : nullptr;
      float* hy_l = hy ? hy + sidx * B * R : nullptr;
      float* cy_l = dm.lstm && cy ? cy + sidx * B * H : nullptr;
      const ForwardLayer layer{dm, K, T, B, d, w_hh, bias_sum.get(), b_ih, b_hh, peep, gates, cells_out, out,
                               in_seq, out_seq, h0, c0, hy_l, cy_l};
      if (fused)
        FusedForward{layer, sorted}.run();
      else
        UnfusedForward{layer, weights + s.w_proj, len}.run();
    }
    prev_out = out;
  }
}

void recurrent_backward(const RecurrentConfig& cfg, int64_t T, int64_t B, bool batch_first,
                        const float* x, const float* hx, const float* cx,
                        const int32_t* seq_lengths, const float* weights, float dropout_p,
                        uint64_t seed, const float* y, const float* saved, const float* dy,
                        const float* dhy, const float* dcy, float* dx, float* dhx, float* dcx,
                        float* dweights, bool accumulate) {
  DenormalGuard denormal_guard;  // FTZ/DAZ for this call, the caller's mode restored (denormals.h)
  const RecurrentDims dm(cfg);
  recurrent_check_backward(kWho, cfg, T, B, x, weights, dropout_p, seq_lengths, y, saved, dx,
                           dweights);
  const int64_t H = dm.H, R = dm.R, D = dm.D, TB = T * B;
  const int64_t GW = dm.gate_width(), DR = D * R;
  if (TB == 0) {
    for (int64_t k = 0; k < dm.L * D; ++k) {
      if (dhx) copy_state(dhx + k * B * R, dhy ? dhy + k * B * R : nullptr, B * R);
      if (dcx && dm.lstm) copy_state(dcx + k * B * H, dcy ? dcy + k * B * H : nullptr, B * H);
    }
    if (!accumulate) std::fill_n(dweights, recurrent_weights_size(cfg), 0.f);
    return;
  }
  const cells::Kernels& K = cells::kernels_for(active_isa());
  const RecurrentSavedLayout sl{dm, TB};
  const RowOrder user = RowOrder::caller(batch_first, T, B), inner = RowOrder::inner(B);
  const Lengths len(seq_lengths, T, B);
  const bool fused = dm.single_pass();

  Buf dgates(TB * GW), hprev_all(TB * R);
  Buf rh_all(dm.onnx_gru ? TB * H : 0), m_all(dm.proj ? TB * H : 0), dh_all(dm.proj ? TB * R : 0);
  Buf dh_state(B * R), dc_state(dm.lstm ? B * H : 0), dh_tmp(B * R, 0.f);
  Buf zeros(std::max(R, H), 0.f);
  Buf dout_buf(dm.L > 1 ? (dm.L > 2 ? 2 : 1) * TB * DR : 0);
  Buf dropped(dropout_p > 0.f && dm.L > 1 ? TB * DR : 0);

  for (int64_t l = dm.L - 1; l >= 0; --l) {
    const bool last = l == dm.L - 1;
    const float* out = last ? y : saved + sl.output(l);
    const RowOrder out_seq = last ? user : inner;
    const float* dout = last ? dy : dout_buf.get() + (l % 2) * TB * DR;
    const RowOrder in_seq = l == 0 ? user : inner;
    const float* in = x;
    float* din = dx;
    if (l > 0) {
      in = saved + sl.output(l - 1);
      din = dout_buf.get() + ((l - 1) % 2) * TB * DR;
      if (dropout_p > 0.f) {
        apply_dropout(dropped.get(), in, TB * DR, l - 1, dropout_p, seed);
        in = dropped.get();
      }
    }

    for (int64_t d = 0; d < D; ++d) {
      const RecurrentSlots s = slots_of(dm, l, d);
      const float* w_hh = weights + s.w_hh;
      const float* peep = dm.peep ? weights + s.peep : nullptr;
      const float* gates = dm.saved_step_width() > 0 ? saved + sl.gates(l, d) : nullptr;
      const float* cells_saved = dm.lstm ? saved + sl.cells(l, d) : nullptr;
      const int64_t sidx = l * D + d;
      const float* hx_l = hx ? hx + sidx * B * R : nullptr;
      const float* cx_l = cx ? cx + sidx * B * H : nullptr;
      copy_state(dh_state.get(), dhy ? dhy + sidx * B * R : nullptr, B * R);
      if (dm.lstm) copy_state(dc_state.get(), dcy ? dcy + sidx * B * H : nullptr, B * H);
      const PrevState prev{dm, d, len, hx_l, cx_l, zeros.get(), out, in_seq, out_seq, cells_saved};

      if (fused) {
        gather_prev_h(prev, T, B, hprev_all.get(), dgates.get());
        FusedBackward{dm, K, T, B, d, w_hh, peep, gates, cells_saved, out, dout, in_seq, out_seq,
                      len, hx_l, cx_l, zeros.get(), dgates.get(), dh_state.get(),
                      dc_state.get(), dh_tmp.get()}
            .run();
      } else {
        UnfusedBackward{dm, K, T, B, d, w_hh, weights + s.w_proj, peep, gates, cells_saved, dout,
                        prev, dgates.get(), hprev_all.get(), rh_all.get(), m_all.get(),
                        dh_all.get(), dh_state.get(), dc_state.get(), dh_tmp.get()}
            .run();
      }
      if (dhx) std::memcpy(dhx + sidx * B * R, dh_state.get(), static_cast<size_t>(B * R) * 4);
      if (dcx && dm.lstm)
        std::memcpy(dcx + sidx * B * H, dc_state.get(), static_cast<size_t>(B * H) * 4);
      WeightGradients{dm, l, T, B, s, dgates.get(), in, hprev_all.get(), rh_all.get(),
                      dh_all.get(), m_all.get(), prev, dweights, accumulate}
          .run();
      input_gradient(dm, l, d, TB, dgates.get(), weights + s.w_ih, din);
    }
    if (l > 0 && dropout_p > 0.f) apply_dropout(din, din, TB * DR, l - 1, dropout_p, seed);
  }
}

}  // namespace rnnkit
