// Run-time choice of the instruction-set path used by the CPU kernels. Detected once: from CPUID
// (and the OS's saved-register support) on x86-64, from the kernel's hardware capabilities on
// arm64 (ASIMD, i.e. NEON, is part of every AArch64 CPU). RNNKIT_ISA=portable|avx2|avx512|neon or
// set_active_isa() forces any path this CPU can run, so tests can cover each one on one machine.
#pragma once
#include <vector>

namespace rnnkit {

enum class Isa { portable = 0, avx2 = 1, avx512 = 2, neon = 3 };

Isa detected_isa();
Isa active_isa();
// The paths this CPU can run, from portable (always first) to detected_isa() (last).
const std::vector<Isa>& available_isas();
bool isa_available(Isa isa);
// Returns false (and changes nothing) when the machine cannot run `isa`.
bool set_active_isa(Isa isa);
const char* isa_name(Isa isa);
// Parses "portable" | "avx2" | "avx512" | "neon"; returns false on anything else.
bool parse_isa(const char* name, Isa* out);
// The names parse_isa accepts, for error messages: "portable, avx2, avx512, neon".
const char* isa_names();

}  // namespace rnnkit
