// The device probe: one GpuCaps per device, built once (the runtime's properties plus a probe
// kernel that reports which of this binary's images the driver runs there), and the probe the
// loader asks before it picks a device.
#pragma once
#include <string>

#include "caps.h"

namespace gptoss::cuda {

// The caps of device `dev` (built on first use; later calls return the same record).
const GpuCaps& device_caps(int dev);
// The caps of the calling thread's current device (the launchers' view: the backend sets it per op).
const GpuCaps& current_caps();
// The CUDA architectures this binary was built with (CMake's list, e.g. "80-real;90a-real;120-virtual").
const char* compiled_arch_list();
// Why device `dev` cannot run this binary's kernels ("" when it can).
std::string device_unusable_reason(const GpuCaps& caps);

}  // namespace gptoss::cuda
