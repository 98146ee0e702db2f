#include "cache_info.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define RNNKIT_CACHE_X86 1
#endif

namespace rnnkit {
namespace {

// "32K", "1024K", "32M", "65536" (bytes) -> bytes; 0 on anything else.
int64_t parse_size(const char* s) {
  char* end = nullptr;
  long long v = std::strtoll(s, &end, 10);
  if (end == s || v <= 0) return 0;
  while (*end == ' ') ++end;
  if (*end == 'K' || *end == 'k') return v << 10;
  if (*end == 'M' || *end == 'm') return v << 20;
  if (*end == 'G' || *end == 'g') return v << 30;
  return v;
}

bool read_line(const std::string& path, char* buf, size_t n) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return false;
  bool ok = std::fgets(buf, static_cast<int>(n), f) != nullptr;
  std::fclose(f);
  if (ok) buf[std::strcspn(buf, "\n")] = 0;
  return ok;
}

bool from_sysfs(CacheSizes* out) {
  bool any = false;
  for (int i = 0; i < 16; ++i) {
    std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    char level[32], type[32], size[32];
    if (!read_line(dir + "level", level, sizeof level)) break;
    if (!read_line(dir + "type", type, sizeof type) || !read_line(dir + "size", size, sizeof size))
      continue;
    if (std::strcmp(type, "Data") != 0 && std::strcmp(type, "Unified") != 0) continue;
    int64_t bytes = parse_size(size);
    if (bytes <= 0) continue;
    int l = std::atoi(level);
    if (l == 1) out->l1d = bytes;
    else if (l == 2) out->l2 = bytes;
    else if (l == 3) out->l3 = bytes;
    else continue;
    any = true;
  }
  return any;
}

#ifdef RNNKIT_CACHE_X86
// Deterministic cache parameters (same register layout in Intel leaf 4 and AMD 0x8000001D).
bool from_cpuid(CacheSizes* out) {
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
  const bool amd = b == 0x68747541;  // "Auth"enticAMD
  unsigned leaf = 4;
  if (amd) {
    if (__get_cpuid_max(0x80000000u, nullptr) < 0x8000001Du) return false;
    leaf = 0x8000001Du;
  } else if (a < 4) {
    return false;
  }
  bool any = false;
  for (unsigned i = 0; i < 16; ++i) {
    __cpuid_count(leaf, i, a, b, c, d);
    unsigned type = a & 0x1f;  // 0 none, 1 data, 2 instruction, 3 unified
    if (type == 0) break;
    if (type == 2) continue;
    unsigned level = (a >> 5) & 0x7;
    int64_t ways = ((b >> 22) & 0x3ff) + 1, parts = ((b >> 12) & 0x3ff) + 1,
            line = (b & 0xfff) + 1, sets = static_cast<int64_t>(c) + 1;
    int64_t bytes = ways * parts * line * sets;
    if (level == 1) out->l1d = bytes;
    else if (level == 2) out->l2 = bytes;
    else if (level == 3) out->l3 = bytes;
    else continue;
    any = true;
  }
  return any;
}
#endif

CacheSizes detect() {
  CacheSizes s{0, 0, 0, "default"};
  if (from_sysfs(&s)) s.source = "sysfs";
#ifdef RNNKIT_CACHE_X86
  else if (from_cpuid(&s)) s.source = "cpuid";
#endif
  if (s.l1d <= 0) s.l1d = int64_t(32) << 10;
  if (s.l2 <= 0) s.l2 = int64_t(512) << 10;
  if (s.l3 <= 0) s.l3 = int64_t(8) << 20;
  return s;
}

}  // namespace

const CacheSizes& cache_sizes() {
  static const CacheSizes s = detect();
  return s;
}

}  // namespace rnnkit
