// Large host scratch blocks kept for reuse across kernel calls.
//
// A recurrent forward or backward needs tens of megabytes of working memory per call (gate
// activations, gate gradients, packed weights). Blocks that large come from mmap in glibc (above
// its 32 MiB ceiling always) and go back to the kernel on free, so every call pays a page fault
// per 4 KiB page on first touch: measured on a 2-core VM, about 9,000 faults and a third of the
// time of an LSTM inference call (T64 B64 H512). HostBlock takes such blocks from a process-wide
// cache instead: a freed block is kept (already faulted in) and handed to the next request of the
// same size class. Blocks of 4 MiB and more are 2 MiB aligned and marked for transparent huge
// pages, so even a first touch costs one fault per 2 MiB.
//
// The cache keeps at most a limit of idle bytes (RNNKIT_HOST_CACHE_MB, default 1024; 0 disables
// it), evicting the oldest idle blocks first; host_cache_release() frees every idle block (the
// public releaseCachedMemory()). In-use blocks are never limited. Sanitizer builds default to 0,
// so a use after free in a kernel still shows. Blocks under 1 MiB bypass the cache (malloc serves
// them well). Contents of a block are unspecified, as with malloc.
#pragma once
#include <cstddef>
#include <cstdint>

namespace rnnkit {

class HostBlock {
 public:
  HostBlock() = default;
  // Throws Error(ErrorCode::oom) when the memory cannot be had.
  explicit HostBlock(size_t bytes);
  ~HostBlock();
  HostBlock(HostBlock&& o) noexcept;
  HostBlock& operator=(HostBlock&& o) noexcept;
  HostBlock(const HostBlock&) = delete;
  HostBlock& operator=(const HostBlock&) = delete;

  void* get() const { return p_; }
  float* floats() const { return static_cast<float*>(p_); }

 private:
  void take(size_t bytes);
  void reset();
  void* p_ = nullptr;
  size_t capacity_ = 0;  // size class; 0 for a block that bypassed the cache
};

// A float array on a HostBlock: the kernels' large working memory (the recurrent drivers' gate and
// gradient buffers, the step net's slabs and states). HostFloats(n) leaves the values unspecified;
// HostFloats(n, v) and assign(n, v) set all n to v (assign keeps the block when it is big enough,
// as std::vector::assign keeps its capacity). Allocation failure throws Error(ErrorCode::oom).
class HostFloats {
 public:
  HostFloats() = default;
  explicit HostFloats(int64_t n) { resize(n); }
  HostFloats(int64_t n, float v) { assign(n > 0 ? static_cast<size_t>(n) : 0, v); }
  void assign(size_t n, float v) {
    resize(static_cast<int64_t>(n));
    float* d = data();
    for (size_t i = 0; i < n; ++i) d[i] = v;
  }
  float* data() const { return n_ ? block_.floats() : nullptr; }
  float* get() const { return data(); }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }

 private:
  void resize(int64_t n) {
    const size_t want = n > 0 ? static_cast<size_t>(n) : 0;
    if (want > cap_) {
      block_ = HostBlock(want * sizeof(float));
      cap_ = want;
    }
    n_ = want;
  }
  HostBlock block_;
  size_t n_ = 0, cap_ = 0;
};

struct HostCacheStats {
  size_t cached_bytes;  // idle blocks held now
  size_t limit_bytes;
  size_t in_use_bytes;  // blocks handed out through the cache and not yet returned
  uint64_t hits;        // requests served from an idle block
  uint64_t misses;      // requests that allocated
};

HostCacheStats host_cache_stats();
// Frees every idle block; returns the bytes freed.
size_t host_cache_release();
// Sets the idle limit (bytes), evicting down to it.
void host_cache_set_limit(size_t bytes);
// Tests: every block handed out from now on is filled with NaN first, so a kernel that reads
// working memory it did not write shows.
void host_cache_set_poison(bool on);

}  // namespace rnnkit
