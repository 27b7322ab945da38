// The one arch ladder (after ggml-cuda's common.cuh), as plain C++: host code (the capability table,
// the path choosers and their host test) compares archs as 100 * major + 10 * minor; device code
// reads the feature macros of arch.cuh, never __CUDA_ARCH__ directly.
#pragma once

#define GPTOSS_ARCH_AMPERE 800
#define GPTOSS_ARCH_ADA 890
#define GPTOSS_ARCH_HOPPER 900
#define GPTOSS_ARCH_BLACKWELL 1000
#define GPTOSS_ARCH_BLACKWELL_RTX 1200

// Oldest arch the CUDA backend runs on: bf16 mma.sync (m16n8k16) and cp.async arrived with sm_80.
#define GPTOSS_ARCH_MIN GPTOSS_ARCH_AMPERE

namespace gptoss::cuda {
inline int arch_code(int major, int minor) { return 100 * major + 10 * minor; }
inline const char* arch_name(int code) {
  if (code >= GPTOSS_ARCH_BLACKWELL_RTX) return "blackwell (sm_120)";
  if (code >= GPTOSS_ARCH_BLACKWELL) return "blackwell (sm_100)";
  if (code >= GPTOSS_ARCH_HOPPER) return "hopper (sm_90)";
  if (code >= GPTOSS_ARCH_ADA) return "ada (sm_89)";
  if (code >= GPTOSS_ARCH_AMPERE) return "ampere (sm_80/86)";
  return "unsupported (< sm_80)";
}
}  // namespace gptoss::cuda
