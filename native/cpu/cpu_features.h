// Which SIMD level the CPU kernels run at. Detected once (cpuid via __builtin_cpu_supports);
// GPTOSS_CPU_ISA=scalar|avx2|avxvnni|avx512|avx512vnni|neon (or set_cpu_isa, for tests) forces a
// level, clamped to what the CPU has. arm64 builds have neon (Advanced SIMD is baseline on AArch64)
// and scalar. The *vnni levels differ from the level below only in the q8 MXFP4 kernel (vpdpbusd).
#pragma once
#include <string>

namespace gptoss::cpu {

// Avx2 < AvxVnni < Avx512 < Avx512Vnni are levels of one family (a CPU may lack a middle one:
// Ice Lake has AVX-512 VNNI but not AVX-VNNI); Neon is its own family (arm64 only).
enum class Isa { Scalar = 0, Avx2 = 1, AvxVnni = 2, Avx512 = 3, Avx512Vnni = 4, Neon = 5 };
inline constexpr Isa kAllIsas[] = {Isa::Scalar, Isa::Avx2, Isa::AvxVnni, Isa::Avx512, Isa::Avx512Vnni, Isa::Neon};

const char* isa_name(Isa isa);
// Parses "scalar" | "avx2" | "avxvnni" | "avx512" | "avx512vnni" | "neon"; throws RangeError otherwise.
Isa parse_isa(const std::string& s);
// The best level this CPU (and this build) supports.
Isa best_isa();
// The level kernels use now.
Isa current_isa();
// Whether this CPU and build can run `isa`.
bool isa_supported(Isa isa);
// `isa` if this CPU and build have it; else the highest level of its family below it that it has
// (avx512 on an AVX2 CPU: avx2), and best_isa() for another architecture's level (neon on x86).
Isa clamp_isa(Isa isa);
// Force a level; returns the level actually used (clamp_isa).
Isa set_cpu_isa(Isa isa);

}  // namespace gptoss::cpu
