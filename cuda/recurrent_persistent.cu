// Persistent forward kernel of the Recurrent op ("Persistent RNNs", Diamos et al. 2016): one
// cooperative launch runs every step of one layer/direction. Block k owns hidden units
// [k·U, k·U + U) and keeps the W_hh rows of those units (all gates) in shared memory for the whole
// sequence, so per step only h (B·H floats) moves: each block reads the full h_{t-1} from global
// memory, computes its gate pre-activations, applies the fused cell update to its own units, writes
// its slice of h_t, and the grid waits at one barrier before the next step. h is double-buffered
// (step s reads buffer s%2 and writes (s+1)%2), so no block overwrites a value another block is
// still reading. Cross-block data goes through L2 (__ldcg / __stcg), never a possibly stale L1.
// Contract and numerics as the standard kernels (recurrent_cells.cuh); what it covers and when it
// is chosen: cuda_recurrent.h. Plan: U at least ceil(8 / G), so each of the 8 warps of a block owns
// a W_hh row, and at least ceil(H / SMs), so the grid is about one block per SM (every extra block
// re-reads all of h each step); the smallest such U whose slices fit the shared memory with all
// blocks co-resident (cudaOccupancyMaxActiveBlocksPerMultiprocessor). The kernel's dynamic shared
// memory limit is raised to the device's opt-in maximum once per device, before any plan or launch:
// the attribute is process-wide, so setting it per plan could let a launch on another thread see a
// smaller limit than its plan assumed.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <mutex>
#include <string>

#include "common.cuh"
#include "recurrent_cells.cuh"
#include "recurrent_persistent.cuh"

namespace cg = cooperative_groups;

namespace rnnkit {
namespace gpu {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBatch = 16;

int gates_of(int mode) { return mode == 0 ? 4 : mode == 1 ? 3 : 1; }

__global__ void __launch_bounds__(kThreads) persistent_forward_kernel(PersistentLayer a, int U) {
  extern __shared__ float smem[];
  cg::grid_group grid = cg::this_grid();
  const int G = a.mode == 0 ? 4 : a.mode == 1 ? 3 : 1;
  const int64_t H = a.H, B = a.B;
  const int64_t GU = int64_t(G) * U;
  float* w_s = smem;              // [G·U, H]: row g·U + u is W_hh row g·H + j0 + u
  float* h_s = w_s + GU * H;      // [B, H]: h_{t-1}
  float* hh_s = h_s + B * H;      // [B, G·U]: W_hh h_{t-1} for this block's rows
  const int64_t j0 = int64_t(blockIdx.x) * U;
  const int nu = static_cast<int>(H - j0 < U ? H - j0 : U);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nwarps = kThreads / 32;

  for (int64_t idx = tid; idx < GU * H; idx += kThreads) {
    const int64_t r = idx / H, k = idx % H;
    const int64_t g = r / U, u = r % U;
    w_s[idx] = u < nu ? a.w_hh[(g * H + j0 + u) * H + k] : 0.f;
  }

  for (int64_t step = 0; step < a.T; ++step) {
    const int64_t t = a.reverse ? a.T - 1 - step : step;
    const float* cur = a.h + (step % 2) * B * H;
    float* nxt = a.h + ((step + 1) % 2) * B * H;
    for (int64_t idx = tid; idx < B * H; idx += kThreads) h_s[idx] = __ldcg(cur + idx);
    __syncthreads();

    // One warp per W_hh row: lanes stride over k (conflict-free shared reads), every batch row
    // accumulates in registers, then a butterfly sum per batch row.
    for (int64_t r = warp; r < GU; r += nwarps) {
      if (r % U >= nu) continue;
      float acc[kMaxBatch];
#pragma unroll
      for (int b = 0; b < kMaxBatch; ++b) acc[b] = 0.f;
      const float* wr = w_s + r * H;
      for (int64_t k = lane; k < H; k += 32) {
        const float w = wr[k];
#pragma unroll
        for (int b = 0; b < kMaxBatch; ++b)
          if (b < B) acc[b] += w * h_s[b * H + k];
      }
#pragma unroll
      for (int b = 0; b < kMaxBatch; ++b) {
        if (b >= B) break;
        float v = acc[b];
        for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
        if (lane == 0) hh_s[b * GU + r] = v;
      }
    }
    __syncthreads();

    for (int64_t idx = tid; idx < B * nu; idx += kThreads) {
      const int64_t b = idx / nu, u = idx % nu, j = j0 + u;
      float* yv = a.y + (t * a.out_st + b * a.out_sb) * a.DR + a.out_col + j;
      if (t >= a.len[b]) {
        __stcg(nxt + b * H + j, h_s[b * H + j]);
        *yv = 0.f;
        continue;
      }
      const int64_t row = t * a.in_st + b * a.in_sb;
      float* g = a.gates + row * a.GW;
      const float* hh = hh_s + b * GU;
      float h;
      if (a.mode == 0) {
        auto pre = [&](int k) { return g[k * H + j] + hh[k * U + u] + (a.b_ih[k * H + j] + a.b_hh[k * H + j]); };
        h = cell::lstm_unit(pre, g, H, j, a.c[b * H + j], a.peep, a.clip,
                            a.cells_out ? a.cells_out + row * H + j : nullptr);
      } else if (a.mode == 1) {
        const cell::GruState s = cell::gru_lbr_forward(g[j], g[H + j], g[2 * H + j], a.b_ih[j], a.b_ih[H + j],
                                                       a.b_ih[2 * H + j], hh[u], hh[U + u], hh[2 * U + u], a.b_hh[j],
                                                       a.b_hh[H + j], a.b_hh[2 * H + j], h_s[b * H + j]);
        g[j] = s.r;
        g[H + j] = s.z;
        g[2 * H + j] = s.n;
        g[3 * H + j] = s.hn;
        h = s.h;
      } else {
        h = cell::rnn_forward(g[j] + hh[u] + (a.b_ih[j] + a.b_hh[j]), a.mode == 3);
      }
      __stcg(nxt + b * H + j, h);
      *yv = h;
    }
    grid.sync();
  }
}

// The opt-in shared memory per block, with the kernel's limit raised to it (once per device).
int enable_max_smem(int device) {
  static std::mutex mu;
  static int limit[64] = {};
  if (device < 0 || device >= 64) throw Error(ErrorCode::device, "CUDA device index out of range");
  std::lock_guard<std::mutex> lk(mu);
  if (limit[device] == 0) {
    int max_smem = 0;
    check(cudaDeviceGetAttribute(&max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), "cudaDeviceGetAttribute");
    check(cudaFuncSetAttribute(persistent_forward_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, max_smem),
          "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
    limit[device] = max_smem;
  }
  return limit[device];
}

}  // namespace

bool persistent_plan(int device, int mode, int64_t B, int64_t H, PersistentPlan* plan, std::string* why) {
  use_device(device);
  int coop = 0, sms = 0;
  check(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, device), "cudaDeviceGetAttribute");
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  if (!coop) {
    *why = "the device does not support cooperative launches";
    return false;
  }
  const int max_smem = enable_max_smem(device);
  const int64_t G = gates_of(mode), warps = kThreads / 32;
  const int64_t busy = (warps + G - 1) / G;  // units that give every warp a W_hh row
  const int64_t one_wave = (H + sms - 1) / sms;
  const int64_t first = std::min(H, std::max(busy, one_wave));
  for (int64_t U = first; U <= H; ++U) {
    const size_t smem = static_cast<size_t>(G * U * H + B * H + B * G * U) * sizeof(float);
    if (smem > static_cast<size_t>(max_smem)) break;
    const int64_t blocks = (H + U - 1) / U;
    int per_sm = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, persistent_forward_kernel, kThreads, smem),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    if (int64_t(per_sm) * sms >= blocks) {
      plan->blocks = static_cast<int>(blocks);
      plan->units = static_cast<int>(U);
      plan->smem = smem;
      plan->sms = sms;
      plan->rows_per_block = static_cast<int>(G * U);
      return true;
    }
  }
  *why = "W_hh (" + std::to_string(G * H * H * 4) + " bytes) does not fit the shared memory of " + std::to_string(sms) +
         " co-resident blocks of at most " + std::to_string(max_smem) + " bytes (with h and the products)";
  return false;
}

void persistent_forward_launch(cudaStream_t stream, const PersistentPlan& plan, const PersistentLayer& layer) {
  PersistentLayer a = layer;
  int U = plan.units;
  void* args[] = {&a, &U};
  check(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(persistent_forward_kernel), dim3(plan.blocks),
                                    dim3(kThreads), args, plan.smem, stream),
        "cudaLaunchCooperativeKernel(recurrent persistent)");
}

}  // namespace gpu
}  // namespace rnnkit
