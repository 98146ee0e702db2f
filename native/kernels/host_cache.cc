#include "host_cache.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <string>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "errors.h"

namespace rnnkit {
namespace {

constexpr size_t kMinCached = size_t(1) << 20;   // below: plain malloc
constexpr size_t kHugeFrom = size_t(4) << 20;    // from here: 2 MiB aligned, THP advised
constexpr size_t kHugeAlign = size_t(2) << 20;

#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kDefaultLimitMb = 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr size_t kDefaultLimitMb = 0;
#else
constexpr size_t kDefaultLimitMb = 1024;
#endif
#else
constexpr size_t kDefaultLimitMb = 1024;
#endif

// Size classes: m·2^e with m in [8, 16), so a block wastes under 1/8 of its request and requests
// of nearly equal size share blocks.
size_t size_class(size_t bytes) {
  int e = 0;
  while ((bytes >> e) >= 16) ++e;
  size_t m = bytes >> e;
  if ((m << e) < bytes) ++m;
  return m << e;
}

size_t read_limit() {
  const char* v = std::getenv("RNNKIT_HOST_CACHE_MB");
  if (v && *v) {
    char* end = nullptr;
    const unsigned long long mb = std::strtoull(v, &end, 10);
    if (end && *end == '\0' && mb < (1ull << 40)) return static_cast<size_t>(mb) << 20;
  }
  return kDefaultLimitMb << 20;
}

void* allocate(size_t capacity) {
  void* p = nullptr;
  const size_t align = capacity >= kHugeFrom ? kHugeAlign : 64;
  if (posix_memalign(&p, align, capacity) != 0) return nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (capacity >= kHugeFrom) madvise(p, capacity, MADV_HUGEPAGE);  // advice only: ignore failure
#endif
  return p;
}

struct Cache {
  std::mutex mu;
  std::list<std::pair<size_t, void*>> idle;  // oldest first
  size_t cached = 0, in_use = 0, limit = read_limit();
  uint64_t hits = 0, misses = 0;

  // Frees idle blocks, oldest first, until at most `keep` bytes stay (called with mu held);
  // the freed pointers are returned to be freed outside the lock.
  std::list<std::pair<size_t, void*>> evict_to(size_t keep) {
    std::list<std::pair<size_t, void*>> out;
    while (cached > keep && !idle.empty()) {
      cached -= idle.front().first;
      out.splice(out.end(), idle, idle.begin());
    }
    return out;
  }
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: blocks may be returned during exit
  return *c;
}

void free_all(const std::list<std::pair<size_t, void*>>& blocks) {
  for (const auto& b : blocks) std::free(b.second);
}

[[noreturn]] void out_of_memory(size_t bytes) {
  throw Error(ErrorCode::oom, "cannot allocate " + std::to_string(bytes) + " bytes of working memory");
}

std::atomic<bool> g_poison{false};

}  // namespace

void host_cache_set_poison(bool on) { g_poison.store(on, std::memory_order_relaxed); }

HostBlock::HostBlock(size_t bytes) {
  take(bytes);
  if (p_ && g_poison.load(std::memory_order_relaxed)) std::memset(p_, 0xFF, bytes);  // NaN floats
}

void HostBlock::take(size_t bytes) {
  if (bytes == 0) return;
  if (bytes < kMinCached) {
    p_ = std::malloc(bytes);
    if (!p_) out_of_memory(bytes);
    return;
  }
  const size_t cap = size_class(bytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    for (auto it = c.idle.begin(); it != c.idle.end(); ++it)
      if (it->first == cap) {
        p_ = it->second;
        c.idle.erase(it);
        c.cached -= cap;
        c.in_use += cap;
        ++c.hits;
        capacity_ = cap;
        return;
      }
    ++c.misses;
  }
  p_ = allocate(cap);
  if (!p_) {
    // Idle blocks of other sizes may be what stands in the way.
    std::list<std::pair<size_t, void*>> freed;
    {
      std::lock_guard<std::mutex> lock(c.mu);
      freed = c.evict_to(0);
    }
    free_all(freed);
    p_ = allocate(cap);
    if (!p_) out_of_memory(bytes);
  }
  capacity_ = cap;
  std::lock_guard<std::mutex> lock(c.mu);
  c.in_use += cap;
}

void HostBlock::reset() {
  if (!p_) return;
  if (capacity_ == 0) {
    std::free(p_);
  } else {
    Cache& c = cache();
    std::list<std::pair<size_t, void*>> freed;
    {
      std::lock_guard<std::mutex> lock(c.mu);
      c.in_use -= capacity_;
      if (capacity_ <= c.limit) {
        c.idle.emplace_back(capacity_, p_);
        c.cached += capacity_;
        freed = c.evict_to(c.limit);
      } else {
        freed.emplace_back(capacity_, p_);
      }
    }
    free_all(freed);
  }
  p_ = nullptr;
  capacity_ = 0;
}

HostBlock::~HostBlock() { reset(); }

HostBlock::HostBlock(HostBlock&& o) noexcept : p_(o.p_), capacity_(o.capacity_) {
  o.p_ = nullptr;
  o.capacity_ = 0;
}

HostBlock& HostBlock::operator=(HostBlock&& o) noexcept {
  if (this != &o) {
    reset();
    std::swap(p_, o.p_);
    std::swap(capacity_, o.capacity_);
  }
  return *this;
}

HostCacheStats host_cache_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return HostCacheStats{c.cached, c.limit, c.in_use, c.hits, c.misses};
}

size_t host_cache_release() {
  Cache& c = cache();
  std::list<std::pair<size_t, void*>> freed;
  size_t bytes;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    bytes = c.cached;
    freed = c.evict_to(0);
  }
  free_all(freed);
  return bytes;
}

void host_cache_set_limit(size_t bytes) {
  Cache& c = cache();
  std::list<std::pair<size_t, void*>> freed;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.limit = bytes;
    freed = c.evict_to(bytes);
  }
  free_all(freed);
}

}  // namespace rnnkit
