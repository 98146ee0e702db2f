#include "cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define RNNKIT_X86 1
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#define RNNKIT_ARM64_LINUX 1
#endif

namespace rnnkit {
namespace {

#ifdef RNNKIT_X86
unsigned long long xgetbv0() {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

Isa detect() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::portable;
  bool fma = c & (1u << 12);
  bool osxsave = c & (1u << 27);
  bool avx = c & (1u << 28);
  if (!osxsave || !avx) return Isa::portable;
  unsigned long long xcr0 = xgetbv0();
  bool ymm_state = (xcr0 & 0x6) == 0x6;
  bool zmm_state = (xcr0 & 0xe6) == 0xe6;
  if (!ymm_state || __get_cpuid_max(0, nullptr) < 7) return Isa::portable;
  __cpuid_count(7, 0, a, b, c, d);
  bool avx2 = b & (1u << 5);
  bool avx512f = b & (1u << 16);
  bool avx512dq = b & (1u << 17);
  bool avx512bw = b & (1u << 30);
  bool avx512vl = b & (1u << 31);
  if (avx512f && avx512dq && avx512bw && avx512vl && fma && zmm_state) return Isa::avx512;
  if (avx2 && fma) return Isa::avx2;
  return Isa::portable;
}
#elif defined(__aarch64__)
Isa detect() {
#ifdef RNNKIT_ARM64_LINUX
  // AArch64 requires ASIMD, but the kernel still reports it; trust what it says.
  if (!(getauxval(AT_HWCAP) & HWCAP_ASIMD)) return Isa::portable;
#endif
  return Isa::neon;
}
#else
Isa detect() { return Isa::portable; }
#endif

std::vector<Isa> list_available() {
  std::vector<Isa> isas{Isa::portable};
  switch (detected_isa()) {
    case Isa::avx512: isas.push_back(Isa::avx2); isas.push_back(Isa::avx512); break;
    case Isa::avx2: isas.push_back(Isa::avx2); break;
    case Isa::neon: isas.push_back(Isa::neon); break;
    case Isa::portable: break;
  }
  return isas;
}

Isa initial_active() {
  Isa forced;
  const char* env = std::getenv("RNNKIT_ISA");
  if (env && parse_isa(env, &forced) && isa_available(forced)) return forced;
  return detected_isa();
}

std::atomic<int>& active_slot() {
  static std::atomic<int> slot{static_cast<int>(initial_active())};
  return slot;
}

}  // namespace

Isa detected_isa() {
  static const Isa isa = detect();
  return isa;
}

Isa active_isa() { return static_cast<Isa>(active_slot().load(std::memory_order_relaxed)); }

const std::vector<Isa>& available_isas() {
  static const std::vector<Isa> isas = list_available();
  return isas;
}

bool isa_available(Isa isa) {
  for (Isa a : available_isas())
    if (a == isa) return true;
  return false;
}

bool set_active_isa(Isa isa) {
  if (!isa_available(isa)) return false;
  active_slot().store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    case Isa::neon: return "neon";
    default: return "portable";
  }
}

bool parse_isa(const char* name, Isa* out) {
  if (!name) return false;
  for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512, Isa::neon}) {
    if (std::strcmp(name, isa_name(isa)) == 0) {
      *out = isa;
      return true;
    }
  }
  return false;
}

const char* isa_names() { return "portable, avx2, avx512, neon"; }

}  // namespace rnnkit
