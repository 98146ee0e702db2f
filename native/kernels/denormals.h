// Denormal (subnormal) floats flushed to zero while rnnkit's kernels run. A recurrent op whose
// state decays towards zero produces denormals, and every arithmetic instruction touching one
// takes a slow microcode path on x86 (oneDNN and onnxruntime users have reported 10-30x slower
// LSTMs from it); flushing them costs nothing in accuracy that float32 tolerances can see (a
// denormal is below 1.2e-38).
//
// DenormalGuard, placed at a kernel's entry, sets FTZ and DAZ (x86 MXCSR bits 15 and 6; FZ, bit
// 24 of FPCR, on arm64) on the calling thread and restores the caller's mode, whatever it was, when
// the kernel returns. The compute pool hands the caller's mode to its workers for every job, so
// the whole kernel runs in it. Switch: RNNKIT_FLUSH_DENORMALS=0 in the environment (read once), or
// set_flush_denormals(false), keeps IEEE denormals everywhere; the default is on.
#pragma once
#include <cstdint>

namespace rnnkit {

bool flush_denormals();
void set_flush_denormals(bool on);

// The calling thread's floating-point control word (MXCSR on x86-64, FPCR on arm64; 0 elsewhere).
uint32_t fp_mode();
void set_fp_mode(uint32_t mode);
// The bits of fp_mode() that flush denormals (FTZ | DAZ, or FZ).
uint32_t fp_flush_bits();

class DenormalGuard {
 public:
  DenormalGuard();
  ~DenormalGuard();
  DenormalGuard(const DenormalGuard&) = delete;
  DenormalGuard& operator=(const DenormalGuard&) = delete;

 private:
  uint32_t saved_;
  bool changed_;
};

}  // namespace rnnkit
