// The device probe: one GpuCaps per device, built once (the runtime's properties plus a probe
// kernel that reports which of this binary's images the driver runs there), and the probe the
// loader asks before it picks a device.
#pragma once
#include <atomic>
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
// A launcher's state on one device: an int per (device, key, size), 0 until the launcher stores its
// answer (the blocks of a kernel resident at once, the shared memory a kernel was opted in to). A
// function-level static would carry the first device's answer to every other: the runtime sets a
// kernel's attributes per device, and two GPUs of one process can differ in SMs and shared memory.
// Thread-safe; a slot lives as long as the process. key: the kernel; size: what else the answer
// depends on (a launch's dynamic shared memory), 0 if nothing.
std::atomic<int>& launcher_slot(int device, const void* key, int size = 0);
// ... on the calling thread's current device.
template <typename... KArgs>
std::atomic<int>& launcher_slot(void (*kernel)(KArgs...), int size = 0) {
  return launcher_slot(current_caps().device, reinterpret_cast<const void*>(kernel), size);
}
// The CUDA architectures this binary was built with (CMake's list, e.g. "80-real;90a-real;120-virtual").
const char* compiled_arch_list();
// Why device `dev` cannot run this binary's kernels ("" when it can).
std::string device_unusable_reason(const GpuCaps& caps);
// MoeDecodeKind::MmaMxf8's block-scaled MMA (sm_120a; moe_decode_mma.cu) on the calling thread's current device: one
// MX block of 16 rows through the decode kernels' own operand builders and MMA, against the exact dot products on
// the host. true where it agrees; false where it does not, or where the launch fails. The probe runs it before
// MmaMxf8 becomes a Blackwell part's default (GpuCaps::mma_block_scale); gpu_check runs it on the emulation. Call it
// only where e4m3 mma.sync or the block-scaled MMA is compiled (elsewhere its kernel traps).
bool moe_mxf8_selftest();

}  // namespace gptoss::cuda
