// Which SIMD level the CPU kernels run at. Detected once (cpuid via __builtin_cpu_supports);
// GPTOSS_CPU_ISA=scalar|avx2|avx512|neon (or set_cpu_isa, for tests) forces a level, clamped to
// what the CPU has. arm64 builds have neon (Advanced SIMD is baseline on AArch64) and scalar.
#pragma once
#include <string>

namespace gptoss::cpu {

// Avx2 < Avx512 are levels of one family; Neon is its own family (arm64 only).
enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2, Neon = 3 };

const char* isa_name(Isa isa);
// Parses "scalar" | "avx2" | "avx512" | "neon"; throws RangeError otherwise.
Isa parse_isa(const std::string& s);
// The best level this CPU (and this build) supports.
Isa best_isa();
// The level kernels use now.
Isa current_isa();
// `isa` if this CPU and build have it; else the highest level of its family below it (avx512 on an
// AVX2 CPU: avx2), and best_isa() for another architecture's level (neon on x86, avx2 on arm64).
Isa clamp_isa(Isa isa);
// Force a level; returns the level actually used (clamp_isa).
Isa set_cpu_isa(Isa isa);

}  // namespace gptoss::cpu
