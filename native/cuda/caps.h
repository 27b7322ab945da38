// GpuCaps: what one GPU can do with THIS binary, built once per device (device.cu) and read by every
// path chooser (policy.h). The runtime compute capability alone is not enough: a build without
// 89-real run on an sm_89 card JIT-compiles compute_80 PTX, whose FP8 kernels trap, and a compute_80
// image on an H200 has no griddepcontrol. So the caps carry the arch of the image the driver picked
// for the device (a probe kernel reports its __CUDA_ARCH__ and feature macros, as
// ggml_cuda_highest_compiled_arch answers from __CUDA_ARCH_LIST__) and derive the features from it.
// Plain C++: the choosers and their host test build without CUDA.
#pragma once
#include <cstddef>
#include <string>

#include "arch.h"

namespace gptoss::cuda {

// Tensor-core instruction families, by what the compiled image can issue.
enum class TensorCores { None, MmaSync, Wgmma, Tcgen05, Mfma };
const char* tensor_cores_name(TensorCores t);

// Feature bits of a compiled image (arch.cuh's GPTOSS_HAVE_* macros), as the probe kernel reports them.
enum CompiledFeature : unsigned {
  kFeatMmaSync = 1u,  // bf16 mma.sync m16n8k16 (sm_80+)
  kFeatFp8Mma = 2u,   // e4m3 mma.sync m16n8k32 (sm_89+)
  kFeatPdl = 4u,      // griddepcontrol (sm_90+)
  kFeatWgmma = 8u,    // sm_90a
  kFeatTcgen05 = 16u, // sm_100a
  kFeatMfma = 32u,    // AMD CDNA matrix cores
  kFeatBulkAsync = 64u,  // cp.async.bulk(.tensor) + mbarrier expect-tx (sm_90+)
  kFeatMmaBlockScale = 128u,  // mma.sync kind::mxf8f6f4 / kind::mxf4 block_scale (sm_120a)
};

struct GpuCaps {
  int device = 0;
  std::string name;
  bool amd = false;
  int arch = 0;            // the device's compute capability as arch_code() (900 on an H200)
  int compiled_arch = 0;   // arch of this binary's image that runs on it (800: compute_80 PTX JIT-ed there)
  unsigned compiled = 0;   // CompiledFeature bits of that image
  TensorCores tensor_cores = TensorCores::None;  // best tensor-core family of that image
  bool mma_sync = false;   // bf16 mma.sync kernels compiled (flash attention, GEMM tile, decode MoE)
  bool fp8_mma = false;    // e4m3 mma.sync compiled AND native on the device (sm_89, sm_12x; sm_90 emulates it)
  bool fp8_compiled = false;  // e4m3 mma.sync compiled (runs, natively or emulated)
  bool pdl = false;        // griddepcontrol compiled and the device runs it
  bool bulk_async = false; // TMA bulk copies and mbarrier expect-tx compiled and the device runs them (sm_90+)
  // Block-scaled mma.sync compiled (sm_120a) and the device is a Blackwell RTX part; device.cu then runs
  // moe_mxf8_selftest (one MX block of the decode MoE's MMA against the host) and clears it on a mismatch,
  // setting block_scale_selftest_failed: the path choosers fall back to the e4m3 kernels.
  bool mma_block_scale = false;
  bool block_scale_selftest_failed = false;
  int smem_optin = 0;      // opt-in shared memory a block (bytes; GPTOSS_CUDA_SMEM_LIMIT may lower it)
  int sm_count = 0;        // SMs (CUs on AMD)
  int warp_size = 32;
  size_t total_mem = 0;    // bytes
};

// The pure part of the probe: the caps from what the runtime and the probe kernel reported.
// compiled_arch 0 means the binary has no image for the device (make_caps still fills the rest).
GpuCaps make_caps(int device, const std::string& name, int arch, int compiled_arch, unsigned compiled, int smem_optin,
                  int sm_count, int warp_size, size_t total_mem, bool amd = false);

// The device's arch in its vendor's words: "sm_90"; "gfx942" (AMD: the image's gfx target when the
// plugin has one for it, else the runtime's "gfx94x").
std::string arch_label(const GpuCaps& c);
// "sm_90 hopper, image sm_90a (wgmma, fp8 emulated, pdl), 132 SMs, 227 KB smem a block";
// "gfx942, image gfx942 (mfma), 304 CUs, 64 KB LDS a block"
std::string caps_summary(const GpuCaps& c);

}  // namespace gptoss::cuda
