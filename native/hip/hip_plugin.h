// The boundary between the addon and its HIP plugin (gpt_oss_hip.so, built by native/hip/hip.cmake).
//
// Why a plugin: the HIP backend is native/cuda/*.cu compiled by clang's HIP mode, whose host code
// calls the HIP runtime (__hipRegisterFatBinary, hipLaunchKernel, ...). Linking those calls into the
// .node would put libamdhip64.so.5 (Debian's, the only one a build machine without ROCm 6 has) in its
// NEEDED list: the addon would not load without ROCm, and would bind the wrong soname under ROCm 6
// on an MI300. So the HIP objects go into a separate shared object with NO NEEDED entry on
// libamdhip64 (its runtime symbols stay undefined); hip_loader.cpp dlopens whichever
// libamdhip64.so.{6,7,5} the machine has with RTLD_GLOBAL, then this plugin, whose undefined
// symbols then bind to that runtime. The kernels keep their <<<>>> launches (one source for both
// vendors) instead of being rewritten as hipModuleLaunchKernel calls on an embedded bundle.
//
// Both sides are built by one CMake build from the same headers (C++ types cross the boundary:
// std::string, std::shared_ptr<Backend>, gptoss::Error); GPTOSS_HIP_BUILD_ID, a hash of the headers
// that define those types, must match or the loader refuses the plugin.
#pragma once
#include <memory>
#include <string>

#include "model/backend.h"

namespace gptoss {

struct HipPluginApi {
  const char* build_id;  // GPTOSS_HIP_BUILD_ID of the plugin's build
  const char* archs;     // offload archs with code in the plugin, ','-separated ("gfx942,gfx90a")
  // "" when at least one device is usable (*device_count = devices); else why not (the runtime's
  // error, no device, or no device this plugin has code for).
  std::string (*probe)(int* device_count);
  // The backend of hip:index (a process-wide singleton per index). Throws gptoss::Error.
  std::shared_ptr<Backend> (*make_backend)(int index);
};

}  // namespace gptoss

// The one symbol the plugin exports.
extern "C" const gptoss::HipPluginApi* gptoss_hip_plugin();
#define GPTOSS_HIP_PLUGIN_ENTRY "gptoss_hip_plugin"
