// Which SIMD level the CPU kernels run at. Detected once (cpuid via __builtin_cpu_supports);
// GPTOSS_CPU_ISA=scalar|avx2|avx512 (or set_cpu_isa, for tests) forces a level, clamped to what
// the CPU has. arm64 builds run the portable kernels (compiled with NEON by default).
#pragma once
#include <string>

namespace gptoss::cpu {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

const char* isa_name(Isa isa);
// Parses "scalar" | "avx2" | "avx512"; throws RangeError otherwise.
Isa parse_isa(const std::string& s);
// The best level this CPU (and this build) supports.
Isa best_isa();
// The level kernels use now.
Isa current_isa();
// Force a level; returns the level actually used (clamped to best_isa()).
Isa set_cpu_isa(Isa isa);

}  // namespace gptoss::cpu
