#include "denormals.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace rnnkit {
namespace {

bool initial_flush() {
  const char* env = std::getenv("RNNKIT_FLUSH_DENORMALS");
  if (!env) return true;
  return !(std::strcmp(env, "0") == 0 || std::strcmp(env, "false") == 0 || std::strcmp(env, "off") == 0);
}

std::atomic<bool>& flush_flag() {
  static std::atomic<bool> on{initial_flush()};
  return on;
}

}  // namespace

bool flush_denormals() { return flush_flag().load(std::memory_order_relaxed); }
void set_flush_denormals(bool on) { flush_flag().store(on, std::memory_order_relaxed); }

#if defined(__x86_64__) || defined(__i386__)
uint32_t fp_mode() { return _mm_getcsr(); }
void set_fp_mode(uint32_t mode) { _mm_setcsr(mode); }
uint32_t fp_flush_bits() { return (1u << 15) | (1u << 6); }  // FTZ | DAZ
#elif defined(__aarch64__)
uint32_t fp_mode() {
  uint64_t v;
  __asm__ volatile("mrs %0, fpcr" : "=r"(v));
  return static_cast<uint32_t>(v);
}
void set_fp_mode(uint32_t mode) {
  uint64_t v = mode;
  __asm__ volatile("msr fpcr, %0" : : "r"(v));
}
uint32_t fp_flush_bits() { return 1u << 24; }  // FZ
#else
uint32_t fp_mode() { return 0; }
void set_fp_mode(uint32_t) {}
uint32_t fp_flush_bits() { return 0; }
#endif

DenormalGuard::DenormalGuard() : saved_(0), changed_(false) {
  const uint32_t bits = fp_flush_bits();
  if (bits == 0 || !flush_denormals()) return;
  saved_ = fp_mode();
  if ((saved_ & bits) == bits) return;
  set_fp_mode(saved_ | bits);
  changed_ = true;
}

DenormalGuard::~DenormalGuard() {
  if (changed_) set_fp_mode(saved_);
}

}  // namespace rnnkit
