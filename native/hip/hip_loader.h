// Finds the HIP backend at run time: the ROCm runtime (libamdhip64, dlopen'ed) and this build's
// HIP plugin (gpt_oss_hip.so next to the .node). Part of the addon itself and free of any ROCm
// link dependency, so one .node works with or without ROCm (hip_plugin.h says why a plugin).
#pragma once
#include <memory>
#include <string>

#include "model/backend.h"

namespace gptoss {

// "" when hip:0..count-1 are usable; else why HIP is unavailable (no HIP in this build, no ROCm
// runtime, no AMD GPU, runtime too old, plugin missing or from another build, no code for the GPU).
std::string hip_probe(int* device_count);
// The backend of hip:index; throws a gptoss::Error naming the reason when HIP is unavailable.
std::shared_ptr<Backend> make_hip_backend(int index);

// What this build carries for HIP, for diagnostics and tests: loads the runtime and the plugin
// (without touching a device) and says how far it got.
struct HipBuildInfo {
  bool built = false;         // the plugin was built with this addon (GPTOSS_HIP=ON and a HIP toolchain)
  std::string plugin_path;    // where the loader looks for it
  std::string runtime;        // the libamdhip64 soname that loaded ("" when none did)
  int runtime_version = 0;    // hipRuntimeGetVersion (major * 10000000 + minor * 100000 + patch)
  bool plugin_loaded = false;
  std::string archs;          // the plugin's offload archs ("gfx942,gfx90a") once loaded
  std::string error;          // why the runtime or plugin did not load ("" when both did)
};
HipBuildInfo hip_build_info();

}  // namespace gptoss
