// Machine-limit probe: memory-copy bandwidth, for reporting memory-bound kernels (RMSNorm,
// elementwise cells) as a fraction of what this machine can move. Copies a buffer of `bytes`
// split over `threads` pool threads and returns the best of `repeats` runs in GB/s, counting
// bytes read plus bytes written (2 x bytes per copy), the same convention the kernel benches use.
#pragma once
#include <cstddef>

namespace rnnkit {

double copy_bandwidth_gbs(size_t bytes, int threads, int repeats);

}  // namespace rnnkit
