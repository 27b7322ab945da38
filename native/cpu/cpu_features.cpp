#include "cpu_features.h"

#include <atomic>
#include <cstdlib>

#include "core/error.h"

namespace gptoss::cpu {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::AvxVnni: return "avxvnni";
    case Isa::Avx512: return "avx512";
    case Isa::Avx512Vnni: return "avx512vnni";
    case Isa::Neon: return "neon";
  }
  return "?";
}

Isa parse_isa(const std::string& s) {
  for (Isa isa : kAllIsas)
    if (s == isa_name(isa)) return isa;
  throw range_error("unknown CPU ISA '" + s + "' (expected scalar, avx2, avxvnni, avx512, avx512vnni or neon)");
}

bool isa_supported(Isa isa) {
  if (isa == Isa::Scalar) return true;
#if defined(__x86_64__) && defined(GPTOSS_CPU_X86_KERNELS)
  static const bool avx2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  }();
  // The avx512 kernels use F (vpermps on zmm), BW, VL and DQ (vinsertf32x8), with the AVX2 ones.
  static const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  switch (isa) {
    case Isa::Avx2: return avx2;
    case Isa::AvxVnni: return avx2 && __builtin_cpu_supports("avxvnni");
    case Isa::Avx512: return avx512;
    case Isa::Avx512Vnni: return avx512 && __builtin_cpu_supports("avx512vnni");
    default: return false;
  }
#elif defined(__aarch64__)
  return isa == Isa::Neon;
#else
  return false;
#endif
}

Isa best_isa() {
  static const Isa best = [] {
    Isa b = Isa::Scalar;
    for (Isa isa : kAllIsas)
      if (isa_supported(isa)) b = isa;
    return b;
  }();
  return best;
}

Isa clamp_isa(Isa isa) {
  const bool x86 = isa != Isa::Scalar && isa != Isa::Neon;
  const Isa best = best_isa();
  if (x86 != (best != Isa::Scalar && best != Isa::Neon)) return isa == Isa::Scalar ? isa : best;
  for (int i = int(isa); i > 0; --i)
    if (isa_supported(Isa(i))) return Isa(i);
  return Isa::Scalar;
}

namespace {
Isa initial_isa() {
  Isa best = best_isa();
  if (const char* env = std::getenv("GPTOSS_CPU_ISA")) {
    try {
      return clamp_isa(parse_isa(env));
    } catch (const Error&) {
      // An unknown value falls back to detection rather than failing every op.
    }
  }
  return best;
}
std::atomic<int>& isa_slot() {
  static std::atomic<int> slot{int(initial_isa())};
  return slot;
}
}  // namespace

Isa current_isa() { return Isa(isa_slot().load(std::memory_order_relaxed)); }

Isa set_cpu_isa(Isa isa) {
  Isa used = clamp_isa(isa);
  isa_slot().store(int(used));
  return used;
}

}  // namespace gptoss::cpu
