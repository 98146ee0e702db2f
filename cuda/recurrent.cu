// The Recurrent op on the GPU: the driver of the standard algorithm (contract: cuda_recurrent.h).
// It mirrors native/kernels/recurrent.cc step for step, on device pointers:
// - forward, per layer and direction: one GEMM for the input projection of all steps (cuda/gemm.cu),
//   then per step the recurrent GEMM h·W_hhᵀ (the small-M GEMM kernel: B <= 16 rows stream W_hh
//   once) and one fused gate/state kernel per (batch row, hidden unit); the two directions of a
//   layer run on two streams and join before the next layer.
// - backward, per layer and direction: per step the fused gate-gradient kernel and the GEMM
//   dh_{t-1} = dA·W_hh; after the loop the weight gradients and column sums over all steps at once
//   (deterministic: a fixed summation order, no float atomics); dx after both directions joined,
//   because the second direction adds into the first one's dx.
// Buffers, row orders and the `saved` layout are those of the CPU driver (row(t, b) = t·st + b·sb,
// the caller's order for x and y, the layer input's order for gates and gradients), so any step can
// be compared with the CPU and a saved from either backend drives the other's backward.
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common.cuh"
#include "cuda_api.h"
#include "cuda_recurrent.h"
#include "dropout_hash.h"
#include "kernels.cuh"
#include "recurrent_cells.cuh"
#include "recurrent_layout.h"
#include "recurrent_persistent.cuh"

namespace rnnkit {
namespace gpu {
namespace {

using Mode = RecurrentConfig::Mode;

constexpr const char* kWho = "recurrent (cuda)";

[[noreturn]] void fail(const std::string& msg) { recurrent_fail(kWho, msg); }

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

// Device scratch for one call; every block is returned when the call ends (after its streams have
// drained, see run_guarded).
class Arena {
 public:
  explicit Arena(int device) : device_(device) {}
  float* floats(int64_t n) {
    if (n <= 0) return nullptr;
    blocks_.emplace_back(new Scratch(device_, static_cast<size_t>(n) * sizeof(float)));
    return blocks_.back()->floats();
  }

 private:
  int device_;
  std::vector<std::unique_ptr<Scratch>> blocks_;
};

// A second stream per device for the reverse direction (the first is the device's own stream).
cudaStream_t side_stream(int device) {
  static std::mutex mu;
  static cudaStream_t streams[64] = {};
  std::lock_guard<std::mutex> lk(mu);
  if (device < 0 || device >= 64) throw Error(ErrorCode::device, "CUDA device index out of range");
  if (!streams[device]) check(cudaStreamCreateWithFlags(&streams[device], cudaStreamNonBlocking), "cudaStreamCreate");
  return streams[device];
}

// Main stream, side stream and the two events that fork the side from the main and join it back.
class Streams {
 public:
  explicit Streams(int device) : main(use_device(device)), side(side_stream(device)) {
    check(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming), "cudaEventCreate");
    const cudaError_t err = cudaEventCreateWithFlags(&join_, cudaEventDisableTiming);
    if (err != cudaSuccess) {
      cudaEventDestroy(fork_);
      throw_cuda(err, "cudaEventCreate");
    }
  }
  ~Streams() {
    cudaEventDestroy(fork_);
    cudaEventDestroy(join_);
  }
  Streams(const Streams&) = delete;
  Streams& operator=(const Streams&) = delete;
  void fork() {
    check(cudaEventRecord(fork_, main), "cudaEventRecord");
    check(cudaStreamWaitEvent(side, fork_, 0), "cudaStreamWaitEvent");
  }
  void join() {
    check(cudaEventRecord(join_, side), "cudaEventRecord");
    check(cudaStreamWaitEvent(main, join_, 0), "cudaStreamWaitEvent");
  }
  // Waits for everything queued on both; errors are thrown unless `quiet`.
  void drain(bool quiet) {
    cudaError_t a = cudaStreamSynchronize(side);
    cudaError_t b = cudaStreamSynchronize(main);
    if (quiet) {
      cudaGetLastError();
      return;
    }
    check(a, "recurrent (side stream)");
    check(b, "recurrent");
  }
  cudaStream_t main, side;

 private:
  cudaEvent_t fork_ = nullptr, join_ = nullptr;
};

// Runs `body`, then waits for both streams. On an exception the streams are drained before the
// scratch (owned by the caller, destroyed after this returns) goes back to the allocator, so no
// kernel still in flight can write into a block handed to another op.
template <class Fn>
void run_guarded(Streams& s, const Fn& body) {
  try {
    body();
  } catch (...) {
    s.drain(true);
    throw;
  }
  s.drain(false);
}

void gemm(int device, cudaStream_t st, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  sgemm_launch(device, st, ta, tb, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc, false);
}

void launched(const char* what) { check(cudaGetLastError(), what); }

void copy_or_zero(cudaStream_t st, float* dst, const float* src, int64_t n) {
  if (n <= 0) return;
  if (src)
    check(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * 4, cudaMemcpyDeviceToDevice, st), "cudaMemcpyAsync");
  else
    check(cudaMemsetAsync(dst, 0, static_cast<size_t>(n) * 4, st), "cudaMemsetAsync");
}

void zero(cudaStream_t st, float* dst, int64_t n) { copy_or_zero(st, dst, nullptr, n); }

__global__ void fill_lengths_kernel(int32_t* len, int64_t B, int32_t T) {
  const int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (b < B) len[b] = T;
}

// B lengths on the device: T for every row when lens is null (filled there, no host copy).
const int32_t* upload_lengths(Arena& arena, cudaStream_t st, const int32_t* lens, int64_t T, int64_t B,
                              std::vector<int32_t>& host) {
  int32_t* dev = reinterpret_cast<int32_t*>(arena.floats(B));
  if (!lens) {
    if (B > 0) fill_lengths_kernel<<<blocks_for(B), kThreads, 0, st>>>(dev, B, static_cast<int32_t>(T));
    launched("fill lengths");
    return dev;
  }
  host.assign(lens, lens + B);
  // From pageable memory: the copy is staged before the call returns, so `host` may go away after.
  count_copy(true, static_cast<size_t>(B) * 4);
  check(cudaMemcpyAsync(dev, host.data(), static_cast<size_t>(B) * 4, cudaMemcpyHostToDevice, st), "cudaMemcpyAsync");
  return dev;
}

// ---- elementwise kernels ------------------------------------------------------------------------

__global__ void dropout_kernel(float* dst, const float* src, int64_t n, uint32_t layer, float p, uint64_t seed) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float scale = 1.f / (1.f - p);
  dst[i] = dropout_uniform(seed, layer, static_cast<uint64_t>(i)) >= p ? src[i] * scale : 0.f;
}

// Skip input: every gate block of a row starts as the row of x.
__global__ void skip_gates_kernel(float* gates, const float* in, int64_t rows, int64_t H, int64_t G, int64_t GW) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= rows * H) return;
  const int64_t r = i / H, j = i % H;
  const float v = in[r * H + j];
  for (int64_t k = 0; k < G; ++k) gates[r * GW + k * H + j] = v;
}

struct FwdStep {
  int64_t t, B, H, R, GW, ldhh, DR, dcol;
  RowOrder in, out;
  const int32_t* len;
  float* gates;
  const float* hh;
  const float* b_ih;
  const float* b_hh;
  const float* peep;
  float* c;
  float* c_out;
  float* h;      // [B, R] state
  float* m;      // LSTM with projection: o⊙tanh(c) [B, H]
  float* rh;     // ONNX GRU: r⊙h [B, H]
  float* y;
  float clip;
  bool relu;
};

__global__ void zero_inactive_kernel(FwdStep a) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.B * a.R) return;
  const int64_t b = i / a.R, k = i % a.R;
  if (a.t >= a.len[b]) a.y[a.out.row(a.t, b) * a.DR + a.dcol + k] = 0.f;
}

__global__ void lstm_fwd_kernel(FwdStep a) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.B * a.H) return;
  const int64_t b = i / a.H, j = i % a.H, H = a.H;
  if (a.t >= a.len[b]) return;
  const int64_t row = a.in.row(a.t, b);
  float* g = a.gates + row * a.GW;
  const float* hh = a.hh + b * a.ldhh;
  auto pre = [&](int64_t k) { return g[k * H + j] + hh[k * H + j] + (a.b_ih[k * H + j] + a.b_hh[k * H + j]); };
  const float h = cell::lstm_unit(pre, g, H, j, a.c[b * H + j], a.peep, a.clip, a.c_out ? a.c_out + row * H + j : nullptr);
  if (a.m) {
    a.m[b * H + j] = h;
  } else {
    a.h[b * a.R + j] = h;
    a.y[a.out.row(a.t, b) * a.DR + a.dcol + j] = h;
  }
}

// The projected h of active rows becomes the state and the output.
__global__ void proj_out_kernel(FwdStep a, const float* hproj) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.B * a.R) return;
  const int64_t b = i / a.R, k = i % a.R;
  if (a.t >= a.len[b]) return;
  a.h[b * a.R + k] = hproj[i];
  a.y[a.out.row(a.t, b) * a.DR + a.dcol + k] = hproj[i];
}

__global__ void gru_fwd_lbr_kernel(FwdStep a) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.B * a.H) return;
  const int64_t b = i / a.H, j = i % a.H, H = a.H;
  if (a.t >= a.len[b]) return;
  float* g = a.gates + a.in.row(a.t, b) * a.GW;
  const float* hh = a.hh + b * a.ldhh;
  const cell::GruState s = cell::gru_lbr_forward(g[j], g[H + j], g[2 * H + j], a.b_ih[j], a.b_ih[H + j], a.b_ih[2 * H + j],
                                                 hh[j], hh[H + j], hh[2 * H + j], a.b_hh[j], a.b_hh[H + j],
                                                 a.b_hh[2 * H + j], a.h[b * H + j]);
  g[j] = s.r;
  g[H + j] = s.z;
  g[2 * H + j] = s.n;
  g[3 * H + j] = s.hn;
  a.h[b * H + j] = s.h;
  a.y[a.out.row(a.t, b) * a.DR + a.dcol + j] = s.h;
}

// ONNX GRU, first pass: r and z from h_prev, and r⊙h_prev for the GEMM with W_hn.
__global__ void gru_fwd_rz_kernel(FwdStep a) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.B * a.H) return;
  const int64_t b = i / a.H, j = i % a.H, H = a.H;
  if (a.t >= a.len[b]) return;
  float* g = a.gates + a.in.row(a.t, b) * a.GW;
  const float* hh = a.hh + b * a.ldhh;
  const float r = cell::sigmoid(g[j] + a.b_ih[j] + hh[j] + a.b_hh[j]);
  const float z = cell::sigmoid(g[H + j] + a.b_ih[H + j] + hh[H + j] + a.b_hh[H + j]);
  g[j] = r;
  g[H + j] = z;
  a.rh[b * H + j] = r * a.h[b * H + j];
}

// ONNX GRU, second pass: hh's n block now holds W_hn (r⊙h_prev).
__global__ void gru_fwd_n_kernel(FwdStep a) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.B * a.H) return;
  const int64_t b = i / a.H, j = i % a.H, H = a.H;
  if (a.t >= a.len[b]) return;
  float* g = a.gates + a.in.row(a.t, b) * a.GW;
  const float* hh = a.hh + b * a.ldhh;
  const float n = tanhf(g[2 * H + j] + a.b_ih[2 * H + j] + hh[2 * H + j] + a.b_hh[2 * H + j]);
  const float z = g[H + j];
  const float h = n + z * (a.h[b * H + j] - n);
  g[2 * H + j] = n;
  a.h[b * H + j] = h;
  a.y[a.out.row(a.t, b) * a.DR + a.dcol + j] = h;
}

__global__ void rnn_fwd_kernel(FwdStep a) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.B * a.H) return;
  const int64_t b = i / a.H, j = i % a.H;
  if (a.t >= a.len[b]) return;
  const float* g = a.gates + a.in.row(a.t, b) * a.GW;
  const float h = cell::rnn_forward(g[j] + a.hh[b * a.ldhh + j] + (a.b_ih[j] + a.b_hh[j]), a.relu);
  a.h[b * a.H + j] = h;
  a.y[a.out.row(a.t, b) * a.DR + a.dcol + j] = h;
}

struct BwdStep {
  int64_t t, B, H, R, GW, DR, dcol;
  int d;
  RowOrder in, out;
  const int32_t* len;
  const float* gates;   // saved activations of this layer/direction
  const float* cells;   // saved LSTM cell states
  const float* hx;      // this layer/direction's initial h, or null
  const float* cx;
  const float* out_y;   // this layer's output (h of every step)
  const float* dy;      // gradient of this layer's output, or null
  float* dh;            // [B, R] dL/dh_t
  float* dc;            // [B, H]
  float* dh_tmp;        // [B, R] GEMM output / the part of dL/dh_{t-1} bypassing W_hh
  float* dgates;
  float* hprev_all;     // [rows, R]
  float* dh_all;        // projection: [rows, R] dL/dh incl. dy
  float* m_all;         // projection: [rows, H]
  const float* dm;      // projection: [B, H] dh·W_proj
  const float* drh;     // ONNX GRU: [B, H] dn·W_hn
  float* rh_all;        // ONNX GRU: [rows, H]
  float clip;
  const float* peep;
  bool relu;

  __device__ bool first(int64_t b) const { return d == 0 ? t == 0 : t == len[b] - 1; }
  __device__ int64_t tprev() const { return d == 0 ? t - 1 : t + 1; }
  __device__ float h_prev(int64_t b, int64_t k) const {
    if (first(b)) return hx ? hx[b * R + k] : 0.f;
    return out_y[out.row(tprev(), b) * DR + dcol + k];
  }
  __device__ float c_prev(int64_t b, int64_t j) const {
    if (first(b)) return cx ? cx[b * H + j] : 0.f;
    return cells[in.row(tprev(), b) * H + j];
  }
  __device__ float dy_at(int64_t b, int64_t k) const { return dy ? dy[out.row(t, b) * DR + dcol + k] : 0.f; }
};

// h_prev rows for the W_hh gradient, and (projection) dL/dh including dy for the W_proj products.
__global__ void bwd_prep_kernel(BwdStep a) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.B * a.R) return;
  const int64_t b = i / a.R, k = i % a.R;
  if (a.t >= a.len[b]) return;
  const int64_t row = a.in.row(a.t, b);
  a.hprev_all[row * a.R + k] = a.h_prev(b, k);
  if (a.dh_all) a.dh_all[row * a.R + k] = a.dh[b * a.R + k] + a.dy_at(b, k);
}

__global__ void lstm_bwd_kernel(BwdStep a) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.B * a.H) return;
  const int64_t b = i / a.H, j = i % a.H, H = a.H;
  if (a.t >= a.len[b]) return;
  const int64_t row = a.in.row(a.t, b);
  const float* g = a.gates + row * a.GW;
  const float dm = a.m_all ? a.dm[b * H + j] : a.dh[b * a.R + j] + a.dy_at(b, j);
  const bool pp = a.peep != nullptr;
  const cell::LstmGrad r = cell::lstm_backward(g[j], g[H + j], g[2 * H + j], g[3 * H + j], a.cells[row * H + j],
                                               a.c_prev(b, j), dm, a.dc[b * H + j], pp, pp ? a.peep[j] : 0.f,
                                               pp ? a.peep[H + j] : 0.f, pp ? a.peep[2 * H + j] : 0.f, a.clip);
  float* dg = a.dgates + row * a.GW;
  dg[j] = r.di;
  dg[H + j] = r.df;
  dg[2 * H + j] = r.dg;
  dg[3 * H + j] = r.do_;
  a.dc[b * H + j] = r.dc_prev;
  if (a.m_all) a.m_all[row * H + j] = r.m;
}

__global__ void gru_bwd_lbr_kernel(BwdStep a) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.B * a.H) return;
  const int64_t b = i / a.H, j = i % a.H, H = a.H;
  if (a.t >= a.len[b]) return;
  const int64_t row = a.in.row(a.t, b);
  const float* g = a.gates + row * a.GW;
  const float r = g[j], z = g[H + j], n = g[2 * H + j], hn = g[3 * H + j];
  const float dh = a.dh[b * a.R + j] + a.dy_at(b, j);
  const float hp = a.h_prev(b, j);
  const float dn = dh * (1.f - z) * (1.f - n * n);
  const float dz = dh * (hp - n) * z * (1.f - z);
  const float dr = dn * hn * r * (1.f - r);
  float* dg = a.dgates + row * a.GW;
  dg[j] = dr;
  dg[H + j] = dz;
  dg[2 * H + j] = dn * r;
  dg[3 * H + j] = dn;
  a.dh_tmp[b * a.R + j] = dh * z;
}

__global__ void gru_bwd_zn_kernel(BwdStep a) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.B * a.H) return;
  const int64_t b = i / a.H, j = i % a.H, H = a.H;
  if (a.t >= a.len[b]) return;
  const int64_t row = a.in.row(a.t, b);
  const float* g = a.gates + row * a.GW;
  const float z = g[H + j], n = g[2 * H + j];
  const float dh = a.dh[b * a.R + j] + a.dy_at(b, j);
  const float hp = a.h_prev(b, j);
  float* dg = a.dgates + row * a.GW;
  dg[H + j] = dh * (hp - n) * z * (1.f - z);
  dg[2 * H + j] = dh * (1.f - z) * (1.f - n * n);
  a.dh_tmp[b * a.R + j] = dh * z;
}

__global__ void gru_bwd_r_kernel(BwdStep a) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.B * a.H) return;
  const int64_t b = i / a.H, j = i % a.H, H = a.H;
  if (a.t >= a.len[b]) return;
  const int64_t row = a.in.row(a.t, b);
  const float r = a.gates[row * a.GW + j];
  const float hp = a.h_prev(b, j);
  const float drh = a.drh[b * H + j];
  a.dgates[row * a.GW + j] = drh * hp * r * (1.f - r);
  a.dh_tmp[b * a.R + j] += drh * r;
  a.rh_all[row * H + j] = r * hp;
}

__global__ void rnn_bwd_kernel(BwdStep a) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.B * a.H) return;
  const int64_t b = i / a.H, j = i % a.H;
  if (a.t >= a.len[b]) return;
  const float h = a.out_y[a.out.row(a.t, b) * a.DR + a.dcol + j];
  const float dh = a.dh[b * a.R + j] + a.dy_at(b, j);
  a.dgates[a.in.row(a.t, b) * a.GW + j] = a.relu ? (h > 0.f ? dh : 0.f) : dh * (1.f - h * h);
}

// dL/dh_{t-1} of active rows; finished rows keep their gradient (it flows to their first step).
__global__ void bwd_commit_kernel(BwdStep a) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= a.B * a.R) return;
  const int64_t b = i / a.R;
  if (a.t < a.len[b]) a.dh[i] = a.dh_tmp[i];
}

// dst[c] (+)= Σ_r src[r·ld + c]: one thread per column, rows in order (deterministic).
__global__ void column_sums_kernel(float* dst, const float* src, int64_t ld, int64_t rows, int64_t ncols, bool acc) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= ncols) return;
  float s = acc ? dst[c] : 0.f;
  for (int64_t r = 0; r < rows; ++r) s += src[r * ld + c];
  dst[c] = s;
}

// Σ over active steps of dA_i⊙c_prev, dA_f⊙c_prev and dA_o⊙c (LSTM peepholes).
__global__ void peephole_grad_kernel(BwdStep a, int64_t T, const float* dgates, float* dp, bool acc) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t H = a.H;
  if (j >= H) return;
  float si = acc ? dp[j] : 0.f, sf = acc ? dp[H + j] : 0.f, so = acc ? dp[2 * H + j] : 0.f;
  for (int64_t t = 0; t < T; ++t) {
    a.t = t;
    for (int64_t b = 0; b < a.B; ++b) {
      if (t >= a.len[b]) continue;
      const int64_t row = a.in.row(t, b);
      const float* g = dgates + row * a.GW;
      const float cp = a.c_prev(b, j);
      si += g[j] * cp;
      sf += g[H + j] * cp;
      so += g[3 * H + j] * a.cells[row * H + j];
    }
  }
  dp[j] = si;
  dp[H + j] = sf;
  dp[2 * H + j] = so;
}

// Skip input: dx gets the sum of the ih-side gate gradients (the second direction adds).
__global__ void skip_dx_kernel(float* dx, const float* dg, int64_t rows, int64_t H, int64_t G, int64_t GW, int64_t n_col,
                               bool gru, bool add) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= rows * H) return;
  const int64_t r = i / H, j = i % H;
  const float* g = dg + r * GW;
  float v = 0.f;
  for (int64_t k = 0; k < G; ++k) v += g[(gru && k == 2 ? n_col : k * H) + j];
  dx[r * H + j] = v + (add ? dx[r * H + j] : 0.f);
}

// ---- algorithm choice ---------------------------------------------------------------------------

// The persistent kernel's cell (0 LSTM, 1 GRU, 2 RNN-tanh, 3 RNN-relu); -1 for the two-pass
// configurations (RecurrentDims::single_pass), which it does not cover.
int persistent_mode(const RecurrentDims& dm) {
  if (!dm.single_pass()) return -1;
  if (dm.lstm) return 0;
  if (dm.gru) return 1;
  return dm.mode == Mode::rnn_tanh ? 2 : 3;
}

// Whether the persistent kernel can run this shape; `why` says why not.
bool persistent_fits(int device, const RecurrentDims& dm, int64_t B, PersistentPlan* plan, std::string* why) {
  const int mode = persistent_mode(dm);
  if (mode < 0) {
    *why = "the persistent kernel covers LSTM without projection, GRU with linearBeforeReset and RNN";
    return false;
  }
  if (B < 1 || B > 16) {
    *why = "the persistent kernel needs 1 <= B <= 16";
    return false;
  }
  if (dm.H > 1024) {
    *why = "the persistent kernel needs H <= 1024";
    return false;
  }
  return persistent_plan(device, mode, B, dm.H, plan, why);
}

constexpr int64_t kPersistentMinSteps = 16;

// The forward algorithm for this call; `plan` receives the persistent plan when that is the choice.
// `why` (may be null; only then is the reason built) says why.
const char* choose_forward_algorithm(int device, const RecurrentDims& dm, int64_t T, int64_t B, RecurrentAlgo algo,
                                     PersistentPlan* plan, std::string* why) {
  auto choose = [why](const char* choice, const auto& reason) {
    if (why) *why = std::string(choice) + ": " + reason();
    return choice;
  };
  if (algo == RecurrentAlgo::standard) return choose("standard", [] { return std::string("forced"); });
  std::string unfit;
  const bool fits = T * B > 0 && persistent_fits(device, dm, B, plan, &unfit);
  if (T * B == 0) unfit = "T·B = 0";
  if (algo == RecurrentAlgo::persistent) {
    if (!fits) fail("persistent algorithm unavailable: " + unfit);
    return choose("persistent", [] { return std::string("forced"); });
  }
  if (!fits) return choose("standard", [&] { return unfit; });
  auto shape = [&] {
    return std::to_string(plan->blocks) + " blocks of " + std::to_string(plan->units) + " units (" +
           std::to_string(plan->rows_per_block) + " W_hh rows per 8-warp block, " + std::to_string(plan->smem) +
           " bytes of shared memory) on " + std::to_string(plan->sms) + " SMs";
  };
  if (T < kPersistentMinSteps)
    return choose("standard", [&] {
      return "T = " + std::to_string(T) + " < " + std::to_string(kPersistentMinSteps) +
             " steps do not repay the cooperative launch and the W_hh load (persistent would be " + shape() + ")";
    });
  if (plan->rows_per_block < kThreads / 32)
    return choose("standard", [&] {
      return "H = " + std::to_string(dm.H) + " leaves warps of the persistent blocks idle (" + shape() + ")";
    });
  return choose("persistent",
                [&] { return shape() + ", T = " + std::to_string(T) + ", B = " + std::to_string(B); });
}

}  // namespace

const char* recurrent_forward_algorithm(int device, const RecurrentConfig& cfg, int64_t T, int64_t B,
                                        RecurrentAlgo algo, std::string* why) {
  const RecurrentDims dm(cfg);
  PersistentPlan plan;
  return choose_forward_algorithm(device, dm, T, B, algo, &plan, why);
}

const char* recurrent_forward(int device, const RecurrentConfig& cfg, int64_t T, int64_t B, bool batch_first,
                              const float* x, const float* hx, const float* cx, const int32_t* seq_lengths,
                              const float* weights, float dropout_p, uint64_t seed, float* y, float* hy, float* cy,
                              float* saved, RecurrentAlgo algo) {
  const RecurrentDims dm(cfg);
  recurrent_check_forward(kWho, cfg, T, B, x, weights, dropout_p, seq_lengths, y);
  const int64_t H = dm.H, R = dm.R, D = dm.D, G = dm.G, TB = T * B;
  const int64_t GW = dm.gate_width(), DR = D * R;
  PersistentPlan pplan;
  const char* algorithm = choose_forward_algorithm(device, dm, T, B, algo, &pplan, nullptr);
  const bool persistent = std::string(algorithm) == "persistent";
  Streams streams(device);
  Arena arena(device);
  if (TB == 0) {
    run_guarded(streams, [&] {
      for (int64_t k = 0; k < dm.L * D; ++k) {
        if (hy) copy_or_zero(streams.main, hy + k * B * R, hx ? hx + k * B * R : nullptr, B * R);
        if (cy && dm.lstm) copy_or_zero(streams.main, cy + k * B * H, cx ? cx + k * B * H : nullptr, B * H);
      }
    });
    return algorithm;
  }
  const bool training = saved != nullptr;
  const RecurrentSavedLayout sl{dm, TB};
  const RowOrder user = RowOrder::caller(batch_first, T, B), inner = RowOrder::inner(B);
  std::vector<int32_t> host_len;
  const int32_t* len = upload_lengths(arena, streams.main, seq_lengths, T, B, host_len);

  // Per direction: its own state and step buffers, so the two directions can run side by side.
  struct DirBufs {
    float *xproj, *hh, *h, *c, *m, *hproj, *rh;
  };
  DirBufs bufs[2] = {};
  for (int64_t d = 0; d < D; ++d) {
    bufs[d].xproj = arena.floats(training && dm.saved_step_width() > 0 ? 0 : TB * GW);
    bufs[d].hh = arena.floats(B * G * H);
    bufs[d].h = arena.floats((persistent ? 2 : 1) * B * R);
    bufs[d].c = arena.floats(dm.lstm ? B * H : 0);
    bufs[d].m = arena.floats(dm.proj ? B * H : 0);
    bufs[d].hproj = arena.floats(dm.proj ? B * R : 0);
    bufs[d].rh = arena.floats(dm.gru ? B * H : 0);
  }
  float* inter = arena.floats(!training && dm.L > 1 ? (dm.L > 2 ? 2 : 1) * TB * DR : 0);
  float* dropped = arena.floats(dropout_p > 0.f && dm.L > 1 ? TB * DR : 0);

  run_guarded(streams, [&] {
    const float* prev_out = nullptr;
    for (int64_t l = 0; l < dm.L; ++l) {
      const int64_t In = dm.in_size(l);
      const float* in = x;
      RowOrder in_rows = user;
      if (l > 0) {
        in_rows = inner;
        in = prev_out;
        if (dropout_p > 0.f) {
          dropout_kernel<<<blocks_for(TB * DR), kThreads, 0, streams.main>>>(dropped, prev_out, TB * DR,
                                                                             static_cast<uint32_t>(l - 1), dropout_p, seed);
          launched("dropout");
          in = dropped;
        }
      }
      const bool last = l == dm.L - 1;
      float* out = last ? y : training ? saved + sl.output(l) : inter + (l % 2) * TB * DR;
      const RowOrder out_rows = last ? user : inner;
      // The persistent kernel holds the whole device: its directions run one after the other.
      const bool two_streams = D == 2 && !persistent;
      if (two_streams) streams.fork();

      for (int64_t d = 0; d < D; ++d) {
        cudaStream_t st = d == 1 && two_streams ? streams.side : streams.main;
        const DirBufs& bf = bufs[d];
        const RecurrentSlots s = slots_of(dm, l, d);
        const float* w_ih = weights + s.w_ih;
        const float* w_hh = weights + s.w_hh;
        float* gates = bf.xproj ? bf.xproj : saved + sl.gates(l, d);
        float* cells_out = training && dm.lstm ? saved + sl.cells(l, d) : nullptr;

        if (dm.has_wih(l)) {
          gemm(device, st, false, true, TB, G * H, In, in, In, w_ih, In, 0.f, gates, GW);
        } else {
          skip_gates_kernel<<<blocks_for(TB * H), kThreads, 0, st>>>(gates, in, TB, H, G, GW);
          launched("skip input");
        }
        const int64_t sidx = l * D + d;
        copy_or_zero(st, bf.h, hx ? hx + sidx * B * R : nullptr, B * R);
        if (dm.lstm) copy_or_zero(st, bf.c, cx ? cx + sidx * B * H : nullptr, B * H);

        if (persistent) {
          PersistentLayer p;
          p.mode = persistent_mode(dm);
          p.T = T;
          p.B = B;
          p.H = H;
          p.GW = GW;
          p.in_st = in_rows.st;
          p.in_sb = in_rows.sb;
          p.out_st = out_rows.st;
          p.out_sb = out_rows.sb;
          p.DR = DR;
          p.out_col = d * R;
          p.reverse = d == 1 ? 1 : 0;
          p.gates = gates;
          p.cells_out = cells_out;
          p.w_hh = w_hh;
          p.b_ih = weights + s.b_ih;
          p.b_hh = weights + s.b_hh;
          p.peep = dm.peep ? weights + s.peep : nullptr;
          p.clip = dm.clip;
          p.len = len;
          p.h = bf.h;
          p.c = bf.c;
          p.y = out;
          persistent_forward_launch(st, pplan, p);
          if (hy) copy_or_zero(st, hy + sidx * B * R, bf.h + (T % 2) * B * R, B * R);
          if (cy && dm.lstm) copy_or_zero(st, cy + sidx * B * H, bf.c, B * H);
          continue;
        }

        FwdStep a{};
        a.B = B;
        a.H = H;
        a.R = R;
        a.GW = GW;
        a.ldhh = G * H;
        a.DR = DR;
        a.dcol = d * R;
        a.in = in_rows;
        a.out = out_rows;
        a.len = len;
        a.gates = gates;
        a.hh = bf.hh;
        a.b_ih = weights + s.b_ih;
        a.b_hh = weights + s.b_hh;
        a.peep = dm.peep ? weights + s.peep : nullptr;
        a.c = bf.c;
        a.c_out = cells_out;
        a.h = bf.h;
        a.m = dm.proj ? bf.m : nullptr;
        a.rh = bf.rh;
        a.y = out;
        a.clip = dm.clip;
        a.relu = dm.mode == Mode::rnn_relu;
        const unsigned nb_h = blocks_for(B * H), nb_r = blocks_for(B * R);
        for (int64_t step = 0; step < T; ++step) {
          a.t = d == 0 ? step : T - 1 - step;
          // The ONNX GRU form multiplies only the r and z rows by h; n's rows take r⊙h below.
          gemm(device, st, false, true, B, dm.onnx_gru ? 2 * H : G * H, R, bf.h, R, w_hh, R, 0.f, bf.hh, G * H);
          zero_inactive_kernel<<<nb_r, kThreads, 0, st>>>(a);
          if (dm.lstm) {
            lstm_fwd_kernel<<<nb_h, kThreads, 0, st>>>(a);
            if (dm.proj) {
              gemm(device, st, false, true, B, R, H, bf.m, H, weights + s.w_proj, H, 0.f, bf.hproj, R);
              proj_out_kernel<<<nb_r, kThreads, 0, st>>>(a, bf.hproj);
            }
          } else if (dm.lbr) {
            gru_fwd_lbr_kernel<<<nb_h, kThreads, 0, st>>>(a);
          } else if (dm.gru) {
            gru_fwd_rz_kernel<<<nb_h, kThreads, 0, st>>>(a);
            gemm(device, st, false, true, B, H, H, bf.rh, H, w_hh + 2 * H * R, R, 0.f, bf.hh + 2 * H, G * H);
            gru_fwd_n_kernel<<<nb_h, kThreads, 0, st>>>(a);
          } else {
            rnn_fwd_kernel<<<nb_h, kThreads, 0, st>>>(a);
          }
          launched("recurrent forward step");
        }
        if (hy) copy_or_zero(st, hy + sidx * B * R, bf.h, B * R);
        if (cy && dm.lstm) copy_or_zero(st, cy + sidx * B * H, bf.c, B * H);
      }
      if (two_streams) streams.join();
      prev_out = out;
    }
  });
  return algorithm;
}

const char* recurrent_backward(int device, const RecurrentConfig& cfg, int64_t T, int64_t B, bool batch_first,
                               const float* x, const float* hx, const float* cx, const int32_t* seq_lengths,
                               const float* weights, float dropout_p, uint64_t seed, const float* y,
                               const float* saved, const float* dy, const float* dhy, const float* dcy, float* dx,
                               float* dhx, float* dcx, float* dweights, bool accumulate) {
  const RecurrentDims dm(cfg);
  recurrent_check_backward(kWho, cfg, T, B, x, weights, dropout_p, seq_lengths, y, saved, dx, dweights);
  const int64_t H = dm.H, R = dm.R, D = dm.D, G = dm.G, TB = T * B;
  const int64_t GW = dm.gate_width(), DR = D * R;
  Streams streams(device);
  Arena arena(device);
  if (TB == 0) {
    run_guarded(streams, [&] {
      for (int64_t k = 0; k < dm.L * D; ++k) {
        if (dhx) copy_or_zero(streams.main, dhx + k * B * R, dhy ? dhy + k * B * R : nullptr, B * R);
        if (dcx && dm.lstm) copy_or_zero(streams.main, dcx + k * B * H, dcy ? dcy + k * B * H : nullptr, B * H);
      }
      if (!accumulate) zero(streams.main, dweights, recurrent_weights_size(cfg));
    });
    return "standard";
  }
  const RecurrentSavedLayout sl{dm, TB};
  const RowOrder user = RowOrder::caller(batch_first, T, B), inner = RowOrder::inner(B);
  std::vector<int32_t> host_len;
  const int32_t* len = upload_lengths(arena, streams.main, seq_lengths, T, B, host_len);
  const float wbeta = accumulate ? 1.f : 0.f;

  struct DirBufs {
    float *dgates, *hprev_all, *rh_all, *m_all, *dh_all, *dh, *dc, *dh_tmp, *dm, *drh;
  };
  DirBufs bufs[2] = {};
  for (int64_t d = 0; d < D; ++d) {
    bufs[d].dgates = arena.floats(TB * GW);
    bufs[d].hprev_all = arena.floats(TB * R);
    bufs[d].rh_all = arena.floats(dm.onnx_gru ? TB * H : 0);
    bufs[d].m_all = arena.floats(dm.proj ? TB * H : 0);
    bufs[d].dh_all = arena.floats(dm.proj ? TB * R : 0);
    bufs[d].dh = arena.floats(B * R);
    bufs[d].dc = arena.floats(dm.lstm ? B * H : 0);
    bufs[d].dh_tmp = arena.floats(B * R);
    bufs[d].dm = arena.floats(dm.proj ? B * H : 0);
    bufs[d].drh = arena.floats(dm.onnx_gru ? B * H : 0);
  }
  float* dout_buf = arena.floats(dm.L > 1 ? (dm.L > 2 ? 2 : 1) * TB * DR : 0);
  float* dropped = arena.floats(dropout_p > 0.f && dm.L > 1 ? TB * DR : 0);

  run_guarded(streams, [&] {
    for (int64_t l = dm.L - 1; l >= 0; --l) {
      const int64_t In = dm.in_size(l);
      const bool last = l == dm.L - 1;
      const float* out = last ? y : saved + sl.output(l);
      const RowOrder out_rows = last ? user : inner;
      const float* dout = last ? dy : dout_buf + (l % 2) * TB * DR;
      const RowOrder in_rows = l == 0 ? user : inner;
      const float* in = x;
      float* din = dx;
      if (l > 0) {
        in = saved + sl.output(l - 1);
        din = dout_buf + ((l - 1) % 2) * TB * DR;
        if (dropout_p > 0.f) {
          dropout_kernel<<<blocks_for(TB * DR), kThreads, 0, streams.main>>>(dropped, in, TB * DR,
                                                                             static_cast<uint32_t>(l - 1), dropout_p, seed);
          launched("dropout");
          in = dropped;
        }
      }
      if (D == 2) streams.fork();

      for (int64_t d = 0; d < D; ++d) {
        cudaStream_t st = d == 1 ? streams.side : streams.main;
        const DirBufs& bf = bufs[d];
        const RecurrentSlots s = slots_of(dm, l, d);
        const float* w_hh = weights + s.w_hh;
        const int64_t sidx = l * D + d;
        // Rows of steps past a sequence's end take part in the GEMMs as zeros.
        zero(st, bf.dgates, TB * GW);
        zero(st, bf.hprev_all, TB * R);
        zero(st, bf.rh_all, dm.onnx_gru ? TB * H : 0);
        zero(st, bf.m_all, dm.proj ? TB * H : 0);
        zero(st, bf.dh_all, dm.proj ? TB * R : 0);
        zero(st, bf.dh_tmp, B * R);
        copy_or_zero(st, bf.dh, dhy ? dhy + sidx * B * R : nullptr, B * R);
        if (dm.lstm) copy_or_zero(st, bf.dc, dcy ? dcy + sidx * B * H : nullptr, B * H);

        BwdStep a{};
        a.B = B;
        a.H = H;
        a.R = R;
        a.GW = GW;
        a.DR = DR;
        a.dcol = d * R;
        a.d = static_cast<int>(d);
        a.in = in_rows;
        a.out = out_rows;
        a.len = len;
        a.gates = dm.saved_step_width() > 0 ? saved + sl.gates(l, d) : nullptr;
        a.cells = dm.lstm ? saved + sl.cells(l, d) : nullptr;
        a.hx = hx ? hx + sidx * B * R : nullptr;
        a.cx = cx ? cx + sidx * B * H : nullptr;
        a.out_y = out;
        a.dy = dout;
        a.dh = bf.dh;
        a.dc = bf.dc;
        a.dh_tmp = bf.dh_tmp;
        a.dgates = bf.dgates;
        a.hprev_all = bf.hprev_all;
        a.dh_all = dm.proj ? bf.dh_all : nullptr;
        a.m_all = dm.proj ? bf.m_all : nullptr;
        a.dm = bf.dm;
        a.drh = bf.drh;
        a.rh_all = bf.rh_all;
        a.clip = dm.clip;
        a.peep = dm.peep ? weights + s.peep : nullptr;
        a.relu = dm.mode == Mode::rnn_relu;
        const unsigned nb_h = blocks_for(B * H), nb_r = blocks_for(B * R);
        const int64_t ld_rows = in_rows.sb;  // row distance between consecutive b at fixed t

        for (int64_t step = 0; step < T; ++step) {
          a.t = d == 0 ? T - 1 - step : step;
          float* dg_t = bf.dgates + in_rows.row(a.t, 0) * GW;
          float beta_direct = 0.f;
          bwd_prep_kernel<<<nb_r, kThreads, 0, st>>>(a);
          if (dm.lstm) {
            if (dm.proj)
              gemm(device, st, false, false, B, H, R, bf.dh_all + in_rows.row(a.t, 0) * R, ld_rows * R,
                   weights + s.w_proj, H, 0.f, bf.dm, H);
            lstm_bwd_kernel<<<nb_h, kThreads, 0, st>>>(a);
          } else if (dm.lbr) {
            beta_direct = 1.f;
            gru_bwd_lbr_kernel<<<nb_h, kThreads, 0, st>>>(a);
          } else if (dm.gru) {
            beta_direct = 1.f;
            gru_bwd_zn_kernel<<<nb_h, kThreads, 0, st>>>(a);
            gemm(device, st, false, false, B, H, H, dg_t + 2 * H, ld_rows * GW, w_hh + 2 * H * H, H, 0.f, bf.drh, H);
            gru_bwd_r_kernel<<<nb_h, kThreads, 0, st>>>(a);
          } else {
            rnn_bwd_kernel<<<nb_h, kThreads, 0, st>>>(a);
          }
          launched("recurrent backward step");
          gemm(device, st, false, false, B, R, dm.onnx_gru ? 2 * H : G * H, dg_t, ld_rows * GW, w_hh, R, beta_direct,
               bf.dh_tmp, R);
          bwd_commit_kernel<<<nb_r, kThreads, 0, st>>>(a);
          launched("recurrent backward commit");
        }
        if (dhx) copy_or_zero(st, dhx + sidx * B * R, bf.dh, B * R);
        if (dcx && dm.lstm) copy_or_zero(st, dcx + sidx * B * H, bf.dc, B * H);

        // Weight gradients over all steps at once (column layout as in recurrent.cc).
        float* dw_ih = dweights + s.w_ih;
        float* dw_hh = dweights + s.w_hh;
        const float* dg = bf.dgates;
        if (dm.has_wih(l)) {
          if (dm.lbr) {
            gemm(device, st, true, false, 2 * H, In, TB, dg, GW, in, In, wbeta, dw_ih, In);
            gemm(device, st, true, false, H, In, TB, dg + 3 * H, GW, in, In, wbeta, dw_ih + 2 * H * In, In);
          } else {
            gemm(device, st, true, false, G * H, In, TB, dg, GW, in, In, wbeta, dw_ih, In);
          }
        }
        if (dm.onnx_gru) {
          gemm(device, st, true, false, 2 * H, H, TB, dg, GW, bf.hprev_all, H, wbeta, dw_hh, H);
          gemm(device, st, true, false, H, H, TB, dg + 2 * H, GW, bf.rh_all, H, wbeta, dw_hh + 2 * H * H, H);
        } else {
          gemm(device, st, true, false, G * H, R, TB, dg, GW, bf.hprev_all, R, wbeta, dw_hh, R);
        }
        auto colsum = [&](float* dst, const float* src, int64_t ncols) {
          column_sums_kernel<<<blocks_for(ncols), kThreads, 0, st>>>(dst, src, GW, TB, ncols, accumulate);
        };
        if (dm.lbr) {
          colsum(dweights + s.b_ih, dg, 2 * H);
          colsum(dweights + s.b_ih + 2 * H, dg + 3 * H, H);
          colsum(dweights + s.b_hh, dg, 3 * H);
        } else {
          colsum(dweights + s.b_ih, dg, G * H);
          colsum(dweights + s.b_hh, dg, G * H);
        }
        if (dm.proj)
          gemm(device, st, true, false, R, H, TB, bf.dh_all, R, bf.m_all, H, wbeta, dweights + s.w_proj, H);
        if (dm.peep)
          peephole_grad_kernel<<<blocks_for(H), kThreads, 0, st>>>(a, T, dg, dweights + s.peep, accumulate);
        launched("recurrent weight gradients");
      }
      if (D == 2) streams.join();

      // Gradient of the layer input; the second direction adds to the first.
      for (int64_t d = 0; d < D; ++d) {
        cudaStream_t st = streams.main;
        const RecurrentSlots s = slots_of(dm, l, d);
        const float* w_ih = weights + s.w_ih;
        const float* dg = bufs[d].dgates;
        const float xbeta = d == 0 ? 0.f : 1.f;
        if (dm.has_wih(l)) {
          if (dm.lbr) {
            gemm(device, st, false, false, TB, In, 2 * H, dg, GW, w_ih, In, xbeta, din, In);
            gemm(device, st, false, false, TB, In, H, dg + 3 * H, GW, w_ih + 2 * H * In, In, 1.f, din, In);
          } else {
            gemm(device, st, false, false, TB, In, G * H, dg, GW, w_ih, In, xbeta, din, In);
          }
        } else {
          skip_dx_kernel<<<blocks_for(TB * H), kThreads, 0, st>>>(din, dg, TB, H, G, GW, dm.lbr ? 3 * H : 2 * H,
                                                                 dm.gru, d != 0);
          launched("skip input dx");
        }
      }
      if (l > 0 && dropout_p > 0.f) {
        dropout_kernel<<<blocks_for(TB * DR), kThreads, 0, streams.main>>>(din, din, TB * DR,
                                                                           static_cast<uint32_t>(l - 1), dropout_p, seed);
        launched("dropout");
      }
    }
  });
  return "standard";
}

}  // namespace gpu
}  // namespace rnnkit
