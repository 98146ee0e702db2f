// Data cache sizes of the CPU the process runs on, read once: from sysfs
// (/sys/devices/system/cpu/cpu0/cache/index*/{level,type,size}) on Linux, else from CPUID
// (deterministic cache parameters: leaf 4 on Intel, 0x8000001D on AMD), else typical values
// (32 KiB / 512 KiB / 8 MiB). Per core for L1 and L2, the whole shared L3 for L3. The SGEMM
// cache blocks are derived from them (sgemm.cc).
#pragma once
#include <cstdint>

namespace rnnkit {

struct CacheSizes {
  int64_t l1d, l2, l3;  // bytes
  const char* source;   // "sysfs", "cpuid" or "default"
};

const CacheSizes& cache_sizes();

}  // namespace rnnkit
