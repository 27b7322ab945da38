#include "cpu_features.h"

#include <atomic>
#include <cstdlib>

#include "core/error.h"

namespace gptoss::cpu {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Neon: return "neon";
  }
  return "?";
}

Isa parse_isa(const std::string& s) {
  if (s == "scalar") return Isa::Scalar;
  if (s == "avx2") return Isa::Avx2;
  if (s == "avx512") return Isa::Avx512;
  if (s == "neon") return Isa::Neon;
  throw range_error("unknown CPU ISA '" + s + "' (expected scalar, avx2, avx512 or neon)");
}

Isa best_isa() {
#if defined(__x86_64__) && defined(GPTOSS_CPU_X86_KERNELS)
  static const Isa best = [] {
    __builtin_cpu_init();
    // The avx512 kernels use F (vpermps on zmm), BW and VL; avx2 kernels use FMA too.
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
      return Isa::Avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
    return Isa::Scalar;
  }();
  return best;
#elif defined(__aarch64__)
  return Isa::Neon;
#else
  return Isa::Scalar;
#endif
}

Isa clamp_isa(Isa isa) {
  const Isa best = best_isa();
  if (isa == Isa::Scalar || isa == best) return isa;
  const bool x86 = isa == Isa::Avx2 || isa == Isa::Avx512;
  const bool best_x86 = best == Isa::Avx2 || best == Isa::Avx512;
  if (x86 && best_x86) return int(isa) < int(best) ? isa : best;
  return best;
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
