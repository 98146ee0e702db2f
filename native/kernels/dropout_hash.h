// Counter-based dropout draws: the same (seed, layer, index) gives the same uniform number on the
// CPU, on a GPU and in the JavaScript reference, so dropout masks agree across backends.
// splitmix64-style finalizer over a key built from the three values.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define RNNKIT_HD __host__ __device__
#else
#define RNNKIT_HD
#endif

namespace rnnkit {

RNNKIT_HD inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) with 24 bits of resolution (exact in float32).
RNNKIT_HD inline float dropout_uniform(uint64_t seed, uint32_t layer, uint64_t index) {
  uint64_t key = mix64(seed + 0x9e3779b97f4a7c15ULL * (static_cast<uint64_t>(layer) + 1)) ^ index;
  uint64_t bits = mix64(key);
  return static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);
}

}  // namespace rnnkit
