// Machine-limit probe: the FMA throughput of this CPU, for reporting kernels as a fraction of
// peak. Runs chains of independent fused multiply-adds (enough to hide FMA latency) on
// `threads` pool threads at once and returns the best of a few timed runs in GFLOP/s
// (one FMA = 2 flops).
#pragma once

#include "cpu_features.h"

namespace rnnkit {

// Peak with the vector width of `isa` (which must not exceed detected_isa()).
double fma_peak_gflops(Isa isa, int threads);
// Peak with the best ISA this CPU has.
double fma_peak_gflops(int threads);

}  // namespace rnnkit
