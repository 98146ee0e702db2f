// Driver of sgemm.h: picks the kernel set of the active ISA at each call, then one of two routes.
//  - Small M (the per-timestep recurrent products, batch <= 64): A is read in place by the
//    strided micro-kernel and the whole K runs in registers; threads split N, so each keeps its
//    own slice of B in its own L2 across calls.
//  - Otherwise the blocked route (nc / kc / mc loops, A packed into mr-row panels, B into
//    nr-column panels unless it was packed up front), threads own disjoint 2-D tiles of C.
//    Threads that share columns of C share one packed copy of B: each K block of B is cut into
//    chunks that whichever thread gets there first claims and packs, and the others wait only for
//    chunks already claimed. A claimed chunk is always being packed by a running thread that waits
//    on nothing, so the pool's serial fallback for nested or concurrent calls (one logical thread
//    after another) cannot deadlock: the first logical thread simply packs every chunk itself.
#include "sgemm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>

#include "cache_info.h"
#include "cpu_features.h"
#include "denormals.h"
#include "host_cache.h"
#include "parallel.h"
#include "sgemm_internal.h"

namespace rnnkit {

using sgemm_detail::KernelSet;

namespace {

// Up to kSmallM rows A is read in place; up to kMediumM rows too while A (M x K) fits in half of
// L2 (at least 64 Ki floats) beside one B panel (medium_a_floats). Measured with
// native/tools/bench_sgemm on Zen 3 (512 KiB L2): for the recurrent shapes (M 32-64, K <= 1024)
// this beats packing A and re-reading C per K block; on a 1 MiB L2 (Zen 4/5) the same holds for
// the backward's step product (M 64, K = 4H = 2048: 146 -> 170 GFLOP/s on one thread).
constexpr int64_t kSmallM = 8;
constexpr int64_t kMediumM = 64;
constexpr int64_t kMediumAFloatsMin = 64 * 1024;
constexpr int64_t kPortableSmallM = 2;
// Rows of a packed panel per block of the transposing copies (pack_a / pack_b): 16 floats of a
// source row, one cache line.
constexpr int64_t kTransposeRows = 16;
// The dot route (transposed, unpacked B): up to this many rows of A, while A fits in half of a
// 1 MiB L2 (it is re-read from L2 for every few rows of B).
constexpr int64_t kDotMaxM = 64;
constexpr int64_t kDotAFloats = 128 * 1024;
// Floating-point operations per thread below which extra threads cost more than they save. The
// small-M route asks for more: its per-call work is a few microseconds, the same order as waking
// a pool worker, and with the 2-thread pool shared with other processes (as on the 2-core bench
// machine) split products of 0.5 and 2 MFLOP ran 4-10x slower than on one thread (bench_sgemm,
// M = 1, H = 256 and 512), while 8 MFLOP (H = 1024) still gained from a second thread.
constexpr double kFlopsPerThread = 2.0e5;
constexpr double kSmallMFlopsPerThread = 2.5e6;
// A shared packed B up to this many floats (16 MiB: a 2048 x 2048 B) stays allocated on the
// calling thread for the next call; a larger one is freed after its call, where a fresh allocation
// costs about 1% of the product.
constexpr size_t kSharedBKeepFloats = size_t(4) << 20;
// Panels per shared-B chunk: enough work per claim that the atomics cost nothing, few enough
// that threads split the packing of one K block evenly.
constexpr int64_t kSharedBGroup = 4;

const KernelSet& base_kernels(Isa isa) {
#if defined(__x86_64__)
  if (isa == Isa::avx512) return sgemm_detail::kernels_avx512();
  if (isa == Isa::avx2) return sgemm_detail::kernels_avx2();
#endif
#if defined(__aarch64__)
  if (isa == Isa::neon) return sgemm_detail::kernels_neon();
#endif
  (void)isa;
  return sgemm_detail::kernels_portable();
}

int64_t clamp_down(int64_t v, int64_t multiple, int64_t lo, int64_t hi) {
  v = v / multiple * multiple;
  return std::max(lo, std::min(hi, v));
}

// The cache blocks of a kernel set, from the cache sizes read at run time (cache_info.h):
//  kc: a kc x 256-float slab takes half of L2 (kc = L2 / 2 KiB, 128..1024). The B sliver
//      (kc x nr) and the A micro-panel (mr x kc) both stream from L2 at these sizes; a long kc
//      amortises the C tile's loads and stores. Measured on 2048^3 (CPU time, 1 thread, Zen 4,
//      1 MiB L2): kc 512 ran 8-10% faster than 256 or 384 on both the AVX2 and the AVX-512
//      kernels, 768 and 1024 no faster; 256 was the measured best on Zen 3's 512 KiB L2.
//  mc: the mc x kc A block takes a quarter of L2 (mc beyond ~100 rows changed nothing measurable);
//  nc: the kc x nc B block at most half of L3, and at most the set's own nc (beyond a few
//      thousand columns the B block only costs L3 space).
// With the A-in-L1 order (KernelSet::nq > 0, the AVX-512 set):
//  kc: the A micro-panel (mr x kc) takes half of L1 (48 KiB L1, mr 12: kc 512);
//  nq: the kc x nq chunk of B panels that passes under it takes 3/8 of L2 (2 MiB L2: 384 columns).
//  Measured on 2048^3 (1 thread, Sapphire Rapids, 48 KiB L1, 2 MiB L2; the block loops over
//  pre-packed operands, each round against the lone micro-kernel timed in between): 0.94-0.95 of
//  the lone kernel's rate against 0.82-0.87 for the B-sliver-in-L1 order at its best blocks (kc
//  256-1024): the C tile's loads and stores, at a 2048-float row stride from L3, were the loss.
// RNNKIT_SGEMM_BLOCKS="kc,mc,nc,nq" overrides any of them (0 or empty keeps the derived value;
// nq -1 switches the A-in-L1 order off), for tuning on a new machine.
KernelSet tune(const KernelSet& base) {
  KernelSet ks = base;
  const CacheSizes& cs = cache_sizes();
  const int64_t f = sizeof(float);
  const bool a_in_l1 = base.nq > 0;
  int64_t kc = a_in_l1 ? clamp_down(cs.l1d / 2 / (ks.mr * f), 16, 128, 1024)
                       : clamp_down(cs.l2 / (2 * 256 * f), 16, 128, 1024);
  int64_t mc = clamp_down(cs.l2 / 4 / (kc * f), ks.mr, ks.mr, 4096 / ks.mr * ks.mr);
  int64_t nc = clamp_down(cs.l3 / 2 / (kc * f), ks.nr, ks.nr, base.nc / ks.nr * ks.nr);
  int64_t nq = a_in_l1 ? clamp_down(cs.l2 * 3 / 8 / (kc * f), ks.nr, ks.nr, 1 << 16) : 0;
  if (const char* env = std::getenv("RNNKIT_SGEMM_BLOCKS")) {
    long long v[4] = {0, 0, 0, 0};
    std::sscanf(env, "%lld,%lld,%lld,%lld", &v[0], &v[1], &v[2], &v[3]);
    if (v[0] > 0) kc = std::min<long long>(v[0], 1 << 16);
    if (v[1] > 0) mc = std::max<int64_t>(ks.mr, std::min<long long>(v[1], 1 << 16) / ks.mr * ks.mr);
    if (v[2] > 0) nc = std::max<int64_t>(ks.nr, std::min<long long>(v[2], 1 << 20) / ks.nr * ks.nr);
    if (v[3] > 0) nq = std::max<int64_t>(ks.nr, std::min<long long>(v[3], 1 << 20) / ks.nr * ks.nr);
    if (v[3] < 0) nq = 0;
  }
  ks.kc = static_cast<int>(kc);
  ks.mc = static_cast<int>(mc);
  ks.nc = static_cast<int>(nc);
  ks.nq = static_cast<int>(nq);
  return ks;
}

const KernelSet& kernels_for(Isa isa) {
  // One tuned copy per ISA, built on first use (thread-safe static initialisation).
  static const KernelSet sets[4] = {tune(base_kernels(Isa::portable)), tune(base_kernels(Isa::avx2)),
                                    tune(base_kernels(Isa::avx512)), tune(base_kernels(Isa::neon))};
  return sets[static_cast<int>(isa)];
}

// 64-byte aligned float storage (one cache line per vector row of a panel), from the host block
// cache (host_cache.h), so packed weights of one call reuse the pages of the last.
class AlignedFloats {
 public:
  float* data() const { return data_; }
  size_t size() const { return size_; }
  void reserve(size_t n) {
    if (n <= size_) return;
    block_ = HostBlock((n + 16) * sizeof(float));
    uintptr_t p = reinterpret_cast<uintptr_t>(block_.get());
    data_ = reinterpret_cast<float*>((p + 63) & ~uintptr_t(63));
    size_ = n;
  }

 private:
  HostBlock block_;
  float* data_ = nullptr;
  size_t size_ = 0;
};

// Per-thread packing buffers; pool threads persist, so steady-state calls allocate nothing.
float* scratch(int slot, size_t n) {
  thread_local AlignedFloats bufs[2];
  bufs[slot].reserve(n);
  return bufs[slot].data();
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Where the columns of op(B) live: panels of `width` columns, `panel_stride` floats apart, rows
// `ldb` floats apart inside a panel. A plain row-major B is one infinitely wide panel.
struct BPanels {
  const float* base;
  int64_t ldb;
  int64_t width;
  int64_t panel_stride;
  const float* at(int64_t k, int64_t col) const {
    int64_t panel = col / width;
    return base + panel * panel_stride + (col - panel * width) + k * ldb;
  }
};

struct Problem {
  int64_t M, N, K;
  float alpha, beta;
  const float* A;
  int64_t rs_a, cs_a;  // A(i, p) = A[i * rs_a + p * cs_a]
  const float* B;      // unpacked op(B), or null when `packed` is set
  int64_t ldb;
  bool trans_b;
  const BPanels* packed;
  float* C;
  int64_t ldc;
};

void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.f)
      std::fill(c, c + N, 0.f);
    else if (beta != 1.f)
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

// Copies op(B)[p0 : p0 + kc, j0 : j0 + cols] into panels of nr columns (kc x nr each, zero-padded
// on the right).
void pack_b(const Problem& pr, int64_t p0, int64_t kc, int64_t j0, int64_t cols, int nr,
            float* dst) {
  for (int64_t jp = 0; jp < cols; jp += nr, dst += kc * nr) {
    int64_t w = std::min<int64_t>(nr, cols - jp);
    if (!pr.trans_b) {
      const float* src = pr.B + p0 * pr.ldb + j0 + jp;
      // Rows of nr floats: an inlined copy (a memcpy call per 128-byte row cost more than the copy).
      if (w == nr) {
        for (int64_t p = 0; p < kc; ++p)
          for (int j = 0; j < nr; ++j) dst[p * nr + j] = src[p * pr.ldb + j];
      } else {
        for (int64_t p = 0; p < kc; ++p) {
          for (int64_t j = 0; j < w; ++j) dst[p * nr + j] = src[p * pr.ldb + j];
          for (int64_t j = w; j < nr; ++j) dst[p * nr + j] = 0.f;
        }
      }
    } else {
      // A transposing copy, in blocks of kTransposeRows rows of the panel: the block's rows
      // (kTransposeRows * nr floats, contiguous) stay in L1 while the w source rows pass over it.
      // Column by column over the whole panel (kc * nr floats, beyond L1 for kc >= 384) had each
      // store miss: 19% of a 512 x 2048 x 512 product with B transposed.
      const float* src = pr.B + (j0 + jp) * pr.ldb + p0;
      for (int64_t p = 0; p < kc; p += kTransposeRows) {
        const int64_t pe = std::min<int64_t>(kTransposeRows, kc - p);
        float* d = dst + p * nr;
        for (int64_t j = 0; j < w; ++j) {
          const float* sj = src + j * pr.ldb + p;
          for (int64_t q = 0; q < pe; ++q) d[q * nr + j] = sj[q];
        }
        for (int64_t q = 0; q < pe; ++q)
          for (int64_t j = w; j < nr; ++j) d[q * nr + j] = 0.f;
      }
    }
  }
}

// Copies A[i0 : i0 + rows, p0 : p0 + kc] into panels of mr rows (kc x mr each, zero-padded below).
void pack_a(const Problem& pr, int64_t i0, int64_t rows, int64_t p0, int64_t kc, int mr,
            float* dst) {
  if (pr.rs_a == 1) {
    // op(A) = a transposed, column-major A: row p of the block is contiguous in memory. Read each
    // once, front to back, and deal its mr-float pieces out to the panels (panel by panel instead,
    // every panel re-read the cache lines it shares with its neighbours, at a stride of lda that
    // maps them all to the same L1 sets: 13% of a 2048 x 512 x 4096 product with A transposed).
    for (int64_t p = 0; p < kc; ++p) {
      const float* s = pr.A + i0 + (p0 + p) * pr.cs_a;
      float* d = dst + p * mr;
      int64_t ip = 0;
      for (; ip + mr <= rows; ip += mr, d += kc * mr)
        for (int i = 0; i < mr; ++i) d[i] = s[ip + i];
      if (ip < rows) {
        const int64_t h = rows - ip;
        for (int64_t i = 0; i < h; ++i) d[i] = s[ip + i];
        for (int64_t i = h; i < mr; ++i) d[i] = 0.f;
      }
    }
    return;
  }
  for (int64_t ip = 0; ip < rows; ip += mr, dst += kc * mr) {
    int64_t h = std::min<int64_t>(mr, rows - ip);
    const float* src = pr.A + (i0 + ip) * pr.rs_a + p0 * pr.cs_a;
    // Row-major A: transposing, in blocks of kTransposeRows rows of the panel (as pack_b).
    for (int64_t p = 0; p < kc; p += kTransposeRows) {
      const int64_t pe = std::min<int64_t>(kTransposeRows, kc - p);
      float* d = dst + p * mr;
      for (int64_t i = 0; i < h; ++i) {
        const float* s = src + i * pr.rs_a + p * pr.cs_a;
        for (int64_t q = 0; q < pe; ++q) d[q * mr + i] = s[q * pr.cs_a];
      }
      for (int64_t q = 0; q < pe; ++q)
        for (int64_t i = h; i < mr; ++i) d[q * mr + i] = 0.f;
    }
  }
}

// op(B) packed once per call for all threads, in the full-K panel layout of PackedB, chunk by
// chunk on demand (see the top of this file).
class SharedB {
 public:
  SharedB(const Problem& pr, int nr, int64_t kc) : pr_(pr), nr_(nr), kc_(kc) {
    panels_ = (pr.N + nr - 1) / nr;
    groups_ = (panels_ + kSharedBGroup - 1) / kSharedBGroup;
    kblocks_ = (pr.K + kc - 1) / kc;
    size_t floats = static_cast<size_t>(panels_ * pr.K * nr);
    AlignedFloats* buf = &own_;
    if (floats <= kSharedBKeepFloats) {
      thread_local AlignedFloats kept;
      buf = &kept;
    }
    buf->reserve(floats);
    data_ = buf->data();
    layout_ = BPanels{data_, nr, nr, pr.K * nr};
    state_.reset(new std::atomic<uint8_t>[static_cast<size_t>(kblocks_ * groups_)]);
    for (int64_t i = 0; i < kblocks_ * groups_; ++i) state_[i].store(kFree, std::memory_order_relaxed);
  }

  const BPanels& layout() const { return layout_; }

  // Returns once rows [pc, pc + kc) of the panels holding columns [j0, j1) are packed. Thread
  // `tid` of `nt` starts claiming at its own share of the chunks, so threads rarely collide.
  void ensure(int64_t pc, int64_t j0, int64_t j1, int tid, int nt) {
    const int64_t g0 = j0 / nr_ / kSharedBGroup;
    const int64_t g1 = ((j1 + nr_ - 1) / nr_ + kSharedBGroup - 1) / kSharedBGroup;
    const int64_t count = g1 - g0, start = count * tid / nt;
    std::atomic<uint8_t>* st = &state_[static_cast<size_t>(pc / kc_ * groups_)];
    for (int64_t i = 0; i < count; ++i) {
      int64_t g = g0 + (start + i) % count;
      uint8_t expected = kFree;
      if (st[g].compare_exchange_strong(expected, kPacking, std::memory_order_acquire)) {
        pack_group(pc, g);
        st[g].store(kReady, std::memory_order_release);
      }
    }
    for (int64_t g = g0; g < g1; ++g)
      for (int spins = 0; st[g].load(std::memory_order_acquire) != kReady; ++spins)
        if (spins > 64) std::this_thread::yield();
  }

 private:
  static constexpr uint8_t kFree = 0, kPacking = 1, kReady = 2;

  void pack_group(int64_t pc, int64_t g) {
    const int64_t kc = std::min(kc_, pr_.K - pc);
    const int64_t p1 = std::min(panels_, (g + 1) * kSharedBGroup);
    for (int64_t p = g * kSharedBGroup; p < p1; ++p) {
      int64_t j = p * nr_;
      pack_b(pr_, pc, kc, j, std::min<int64_t>(nr_, pr_.N - j), nr_,
             data_ + p * layout_.panel_stride + pc * nr_);
    }
  }

  const Problem& pr_;
  const int nr_;
  const int64_t kc_;
  int64_t panels_, groups_, kblocks_;
  AlignedFloats own_;
  float* data_;
  BPanels layout_;
  std::unique_ptr<std::atomic<uint8_t>[]> state_;
};

// The most floats of A the in-place-A route takes for M up to kMediumM: half of L2, at least
// kMediumAFloatsMin.
int64_t medium_a_floats() {
  static const int64_t v = std::max<int64_t>(kMediumAFloatsMin, cache_sizes().l2 / 2 / int64_t(sizeof(float)));
  return v;
}

// Small-M route over columns [n0, n1): every row of C, the whole K per register tile.
void small_m_columns(const KernelSet& ks, const Problem& pr, int64_t n0, int64_t n1) {
  const int nr = ks.nr;
  for (int64_t j = n0; j < n1; j += nr) {
    int64_t w = std::min<int64_t>(nr, n1 - j);
    const float* b;
    int64_t ldb;
    if (pr.packed) {
      b = pr.packed->at(0, j);
      ldb = pr.packed->ldb;
    } else if (!pr.trans_b && w == nr) {
      b = pr.B + j;
      ldb = pr.ldb;
    } else {
      // Transposed B, or the right edge of a plain B (a full-width read could run past its end).
      float* buf = scratch(1, static_cast<size_t>(pr.K * nr));
      pack_b(pr, 0, pr.K, j, w, nr, buf);
      b = buf;
      ldb = nr;
    }
    for (int64_t i = 0; i < pr.M; i += ks.mr) {
      int m = static_cast<int>(std::min<int64_t>(ks.mr, pr.M - i));
      ks.strided_a(m, static_cast<int>(w), pr.K, pr.alpha, pr.A + i * pr.rs_a, pr.rs_a, pr.cs_a,
                   b, ldb, pr.beta, pr.C + i * pr.ldc + j, pr.ldc);
    }
  }
}

int64_t block_k(const KernelSet& ks, const Problem& pr) { return std::min<int64_t>(ks.kc, pr.K); }

// Blocked route over the C tile [m0, m1) x [n0, n1). With `shared`, B comes from that shared
// packed copy (thread `tid` of `nt` helps pack it); otherwise from pr.packed, or this thread packs
// its own blocks.
void blocked_tile(const KernelSet& ks, const Problem& pr, int64_t m0, int64_t m1, int64_t n0,
                  int64_t n1, SharedB* shared = nullptr, int tid = 0, int nt = 1) {
  const int mr = ks.mr, nr = ks.nr;
  const int64_t kc_max = block_k(ks, pr);
  const int64_t mc_max = std::min<int64_t>(ks.mc, round_up(m1 - m0, mr));
  const int64_t nc_max = std::min<int64_t>(ks.nc, round_up(n1 - n0, nr));
  const BPanels* prepacked = shared ? &shared->layout() : pr.packed;
  float* a_buf = scratch(0, static_cast<size_t>(mc_max * kc_max));
  float* b_buf = prepacked ? nullptr : scratch(1, static_cast<size_t>(nc_max * kc_max));
  for (int64_t jc = n0; jc < n1; jc += nc_max) {
    int64_t nc = std::min(nc_max, n1 - jc);
    for (int64_t pc = 0; pc < pr.K; pc += kc_max) {
      int64_t kc = std::min(kc_max, pr.K - pc);
      // Later K blocks add onto what the first one wrote.
      float beta = pc == 0 ? pr.beta : 1.f;
      BPanels bp;
      if (prepacked) {
        if (shared) shared->ensure(pc, jc, jc + nc, tid, nt);
        bp = *prepacked;
        bp.base = prepacked->at(pc, 0);
      } else {
        pack_b(pr, pc, kc, jc, nc, nr, b_buf);
        bp = BPanels{b_buf, nr, nr, kc * nr};
      }
      const int64_t col0 = prepacked ? jc : 0;
      for (int64_t ic = m0; ic < m1; ic += mc_max) {
        int64_t mc = std::min(mc_max, m1 - ic);
        pack_a(pr, ic, mc, pc, kc, mr, a_buf);
        if (ks.nq > 0) {
          // A micro-panel in L1, a chunk of nq columns of B panels in L2 passing under it.
          for (int64_t jq = 0; jq < nc; jq += ks.nq) {
            const int64_t jq1 = std::min<int64_t>(nc, jq + ks.nq);
            for (int64_t ir = 0; ir < mc; ir += mr) {
              int h = static_cast<int>(std::min<int64_t>(mr, mc - ir));
              float* c = pr.C + (ic + ir) * pr.ldc + jc;
              for (int64_t jr = jq; jr < jq1; jr += nr) {
                int w = static_cast<int>(std::min<int64_t>(nr, nc - jr));
                ks.packed_a(h, w, kc, pr.alpha, a_buf + ir * kc, 1, mr, bp.at(0, col0 + jr),
                            bp.ldb, beta, c + jr, pr.ldc);
              }
            }
          }
          continue;
        }
        for (int64_t jr = 0; jr < nc; jr += nr) {
          int w = static_cast<int>(std::min<int64_t>(nr, nc - jr));
          const float* b = bp.at(0, col0 + jr);
          float* c = pr.C + ic * pr.ldc + jc + jr;
          for (int64_t ir = 0; ir < mc; ir += mr) {
            int h = static_cast<int>(std::min<int64_t>(mr, mc - ir));
            ks.packed_a(h, w, kc, pr.alpha, a_buf + ir * kc, 1, mr, b, bp.ldb, beta,
                        c + ir * pr.ldc, pr.ldc);
          }
        }
      }
    }
  }
}

int threads_for(const Problem& pr, double flops_per_thread) {
  double flops = 2.0 * pr.M * pr.N * pr.K;
  int64_t by_work = static_cast<int64_t>(flops / flops_per_thread);
  int nt = num_threads();
  if (in_parallel_region()) return 1;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nt, by_work)));
}

// Dot route over rows [n0, n1) of a transposed, unpacked B: each group of dn rows of B is read
// once from memory and stays in L1 while every row of A (M x K, in L2) passes over it.
void dot_columns(const KernelSet& ks, const Problem& pr, int64_t n0, int64_t n1) {
  for (int64_t j = n0; j < n1; j += ks.dn) {
    int n = static_cast<int>(std::min<int64_t>(ks.dn, n1 - j));
    const float* b = pr.B + j * pr.ldb;
    for (int64_t i = 0; i < pr.M; i += ks.dm) {
      int m = static_cast<int>(std::min<int64_t>(ks.dm, pr.M - i));
      ks.dot(m, n, pr.K, pr.alpha, pr.A + i * pr.rs_a, pr.rs_a, b, pr.ldb, pr.beta,
             pr.C + i * pr.ldc + j, pr.ldc);
    }
  }
}

void run_dot(const KernelSet& ks, const Problem& pr) {
  int64_t groups = (pr.N + ks.dn - 1) / ks.dn;
  int nt = static_cast<int>(std::min<int64_t>(threads_for(pr, kSmallMFlopsPerThread), groups));
  if (nt <= 1) {
    dot_columns(ks, pr, 0, pr.N);
    return;
  }
  parallel_run(nt, [&](int tid, int total) {
    int64_t n0 = std::min(pr.N, groups * tid / total * ks.dn);
    int64_t n1 = std::min(pr.N, groups * (tid + 1) / total * ks.dn);
    if (n0 < n1) dot_columns(ks, pr, n0, n1);
  });
}

void run_small_m(const KernelSet& ks, const Problem& pr) {
  int64_t panels = (pr.N + ks.nr - 1) / ks.nr;
  int nt = static_cast<int>(std::min<int64_t>(threads_for(pr, kSmallMFlopsPerThread), panels));
  auto columns = &small_m_columns;
  if (nt <= 1) {
    columns(ks, pr, 0, pr.N);
    return;
  }
  parallel_run(nt, [&](int tid, int total) {
    int64_t n0 = std::min(pr.N, panels * tid / total * ks.nr);
    int64_t n1 = std::min(pr.N, panels * (tid + 1) / total * ks.nr);
    if (n0 < n1) columns(ks, pr, n0, n1);
  });
}

void run_blocked(const KernelSet& ks, const Problem& pr) {
  int nt = threads_for(pr, kFlopsPerThread);
  int64_t mblocks = (pr.M + ks.mr - 1) / ks.mr;
  int64_t nblocks = (pr.N + ks.nr - 1) / ks.nr;
  // Thread grid tm x tn: the one that packs the least per thread (A is packed once per nc block
  // of a thread's columns; B, unless packed up front, is shared by the tm threads of a column
  // group) while giving every thread at least one register tile.
  int tm = 1, tn = 1;
  double best = -1;
  for (int a = 1; a <= nt; ++a) {
    if (nt % a != 0) continue;
    int b = nt / a;
    if (a > mblocks || b > nblocks) continue;
    double rows = static_cast<double>(pr.M) / a, cols = static_cast<double>(pr.N) / b;
    double a_packs = rows * pr.K * std::ceil(cols / ks.nc);
    double b_packs = pr.packed ? 0.0 : cols * pr.K / a;
    double cost = a_packs + b_packs;
    if (best < 0 || cost < best) best = cost, tm = a, tn = b;
  }
  if (best < 0) tm = tn = 1;
  if (tm * tn <= 1) {
    blocked_tile(ks, pr, 0, pr.M, 0, pr.N);
    return;
  }
  std::unique_ptr<SharedB> shared;
  if (!pr.packed && tm > 1) shared.reset(new SharedB(pr, ks.nr, block_k(ks, pr)));
  parallel_run(tm * tn, [&](int tid, int) {
    int ti = tid / tn, tj = tid % tn;
    int64_t m0 = std::min(pr.M, mblocks * ti / tm * ks.mr);
    int64_t m1 = std::min(pr.M, mblocks * (ti + 1) / tm * ks.mr);
    int64_t n0 = std::min(pr.N, nblocks * tj / tn * ks.nr);
    int64_t n1 = std::min(pr.N, nblocks * (tj + 1) / tn * ks.nr);
    if (m0 < m1 && n0 < n1) blocked_tile(ks, pr, m0, m1, n0, n1, shared.get(), ti, tm);
  });
}

void run(const KernelSet& ks, const Problem& pr) {
  if (pr.M <= 0 || pr.N <= 0) return;
  if (pr.K <= 0 || pr.alpha == 0.f) {
    scale_c(pr.M, pr.N, pr.beta, pr.C, pr.ldc);
    return;
  }
  // The portable strided kernel runs far below its packed twin beyond a row or two (measured:
  // 2 vs 18 GFLOP/s at M = 8), so on that path only the thinnest products skip packing A.
  const bool portable = ks.isa == Isa::portable;
  // A transposed, unpacked B (nn.Linear's x * W^T, user GEMMs) with few rows of A: dot products
  // along K read B once, in place. Packing its panels (the route below) costs as much as the
  // product itself at these sizes.
  if (pr.trans_b && !pr.packed && pr.cs_a == 1 && pr.M <= kDotMaxM && pr.M * pr.K <= kDotAFloats &&
      pr.K >= ks.nr) {
    run_dot(ks, pr);
    return;
  }
  bool small = pr.M <= (portable ? kPortableSmallM : kSmallM);
  bool medium = !portable && pr.M <= kMediumM && pr.M * pr.K <= medium_a_floats();
  if (small || medium)
    run_small_m(ks, pr);
  else
    run_blocked(ks, pr);
}

}  // namespace

struct PackedB::Impl {
  const KernelSet* kernels;  // the set whose nr the panels were cut for
  BPanels panels;
  AlignedFloats data;
};

PackedB::PackedB(bool trans_b, int64_t K, int64_t N, const float* B, int64_t ldb)
    : K_(K), N_(N), impl_(new Impl) {
  const KernelSet& ks = kernels_for(active_isa());
  const int nr = ks.nr;
  int64_t panels = (N + nr - 1) / nr;
  impl_->kernels = &ks;
  impl_->data.reserve(static_cast<size_t>(std::max<int64_t>(1, panels * K * nr)));
  impl_->panels = BPanels{impl_->data.data(), nr, nr, K * nr};
  if (K <= 0 || N <= 0) return;
  Problem pr{};
  pr.B = B;
  pr.ldb = ldb;
  pr.trans_b = trans_b;
  float* dst = impl_->data.data();
  parallel_for(panels, 8, [&](int64_t p0, int64_t p1) {
    int64_t j0 = p0 * nr, j1 = std::min(N, p1 * nr);
    pack_b(pr, 0, K, j0, j1 - j0, nr, dst + p0 * K * nr);
  });
}

PackedB::~PackedB() = default;

size_t PackedB::bytes() const { return impl_->data.size() * sizeof(float); }

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
  DenormalGuard denormal_guard;  // FTZ/DAZ for this call, the caller's mode restored (denormals.h)
  Problem pr{M, N, K, alpha, beta, A, trans_a ? 1 : lda, trans_a ? lda : 1,
             B, ldb, trans_b, nullptr, C, ldc};
  run(kernels_for(active_isa()), pr);
}

void sgemm_packed(bool trans_a, int64_t M, float alpha, const float* A, int64_t lda,
                  const PackedB& B, float beta, float* C, int64_t ldc) {
  DenormalGuard denormal_guard;  // FTZ/DAZ for this call, the caller's mode restored (denormals.h)
  const PackedB::Impl& pb = B.impl();
  // The active set can read the panels when its tile width divides theirs (sub-panels at the
  // panel's row stride); otherwise fall back to the set they were packed for, which the CPU
  // supports since it was active when they were packed.
  const KernelSet* ks = &kernels_for(active_isa());
  if (pb.panels.width % ks->nr != 0) ks = pb.kernels;
  Problem pr{M, B.cols(), B.rows(), alpha, beta, A, trans_a ? 1 : lda, trans_a ? lda : 1,
             nullptr, 0, false, &pb.panels, C, ldc};
  run(*ks, pr);
}

}  // namespace rnnkit
