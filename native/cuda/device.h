// The device probe: one GpuCaps per device, built once (the runtime's properties plus a probe
// kernel that reports which of this binary's images the driver runs there), and the probe the
// loader asks before it picks a device.
#pragma once
#include <string>

#include "arch.cuh"
#include "caps.h"
#include "core/tensor.h"

namespace gptoss::cuda {

// The vendor this compilation of the tree serves: the device kind its backend and tensors carry
// ("cuda:N", or "hip:N" in the HIP plugin) and the API name its messages use.
#if defined(GPTOSS_HIP)
constexpr DeviceKind kGpuKind = DeviceKind::HIP;
constexpr const char* kGpuApi = "HIP";
#else
constexpr DeviceKind kGpuKind = DeviceKind::CUDA;
constexpr const char* kGpuApi = "CUDA";
#endif
inline std::string gpu_device_str(int index) { return Device{kGpuKind, index}.str(); }

// The caps of device `dev` (built on first use; later calls return the same record).
const GpuCaps& device_caps(int dev);
// The caps of the calling thread's current device (the launchers' view: the backend sets it per op).
const GpuCaps& current_caps();
// The CUDA architectures this binary was built with (CMake's list, e.g. "80-real;90a-real;120-virtual").
const char* compiled_arch_list();
// Why device `dev` cannot run this binary's kernels ("" when it can).
std::string device_unusable_reason(const GpuCaps& caps);

}  // namespace gptoss::cuda
