// Run-time choice of the instruction-set path used by the CPU kernels. Detected once from CPUID
// (and the OS's saved-register support); RNNKIT_ISA=portable|avx2|avx512 or set_active_isa()
// forces a path no better than the detected one, so tests can cover each path on one machine.
#pragma once

namespace rnnkit {

enum class Isa { portable = 0, avx2 = 1, avx512 = 2 };

Isa detected_isa();
Isa active_isa();
// Returns false (and changes nothing) when the machine cannot run `isa`.
bool set_active_isa(Isa isa);
const char* isa_name(Isa isa);
// Parses "portable" | "avx2" | "avx512"; returns false on anything else.
bool parse_isa(const char* name, Isa* out);

}  // namespace rnnkit
