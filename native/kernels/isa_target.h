// The function-level target attributes of the ISA paths (DESIGN §6): every kernel file names a
// path's instruction set through these, so a path means the same instructions everywhere and the
// files build with the library's plain flags. A function carrying one must only run when
// active_isa() (cpu_features.h) allows that path. On other architectures they are not defined;
// the x86 paths are compiled only under RNNKIT_ISA_X86, the arm64 one under RNNKIT_ISA_ARM64.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#define RNNKIT_ISA_X86 1
// The avx2 path: AVX2 with FMA (every AVX2 CPU rnnkit selects it on has FMA; cpu_features.cc).
#define RNNKIT_TARGET_AVX2 __attribute__((target("avx2,fma")))
// AVX2 without FMA, for loops that must round exactly like their scalar twin: with FMA enabled
// the compiler may contract a multiply and an add into one rounding (train.cc).
#define RNNKIT_TARGET_AVX2_NO_FMA __attribute__((target("avx2")))
// The avx512 path: the AVX-512 subsets cpu_features.cc requires for it, with FMA.
#define RNNKIT_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#endif

#if defined(__aarch64__)
#define RNNKIT_ISA_ARM64 1
// The neon path: ASIMD, which every AArch64 CPU has, so the baseline flags already allow it and
// the attribute is empty; it marks the functions of that path like the x86 ones. The arm64 build
// turns off multiply-add contraction (binding.gyp, CMakeLists.txt): fused multiply-adds are
// written out (vfmaq_f32) where a kernel wants them.
#define RNNKIT_TARGET_NEON
#endif
