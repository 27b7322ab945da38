// The HIP runtime and plugin, loaded on first use (hip_loader.h; hip_plugin.h says why a plugin).
// Order: libamdhip64 with RTLD_GLOBAL (the plugin's HIP calls bind to it), a device count and the
// runtime version through dlsym (plain C entry points, stable across ROCm 5..7), then the plugin,
// which checks that it has code for the GPUs it finds.
#include "hip_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "hip_plugin.h"

#ifndef GPTOSS_HIP_BUILD_ID
#define GPTOSS_HIP_BUILD_ID ""
#endif

namespace gptoss {

namespace {

// The code objects are built as code object v5 (clang's default), which the ROCm 6 runtime loads;
// MI300 itself needs ROCm 6 (AMD's support matrix). Older runtimes are refused with this reason.
constexpr int kMinRuntimeVersion = 60000000;  // HIP_VERSION encoding of 6.0

std::string version_str(int v) {
  return std::to_string(v / 10000000) + "." + std::to_string(v / 100000 % 100);
}

struct Runtime {
  std::string error;   // why it did not load
  std::string soname;  // what loaded
  int version = 0;
  using IntFn = int (*)(int*);
  using NameFn = const char* (*)(int);
  IntFn get_device_count = nullptr;
  NameFn get_error_name = nullptr;
};

struct Plugin {
  std::string path;
  std::string error;  // why it did not load
  const HipPluginApi* api = nullptr;
};

std::mutex& load_mutex() {
  static std::mutex& mu = *new std::mutex;  // never destroyed: a worker thread may probe at exit
  return mu;
}

const Runtime& runtime() {
  static Runtime* rt = nullptr;
  std::lock_guard<std::mutex> lock(load_mutex());
  if (rt) return *rt;
  rt = new Runtime;
  // GPTOSS_HIP_RUNTIME names one file to use instead of the search (a ROCm install off the loader path).
  const char* forced = std::getenv("GPTOSS_HIP_RUNTIME");
  const char* names[] = {"libamdhip64.so.6", "libamdhip64.so.7", "libamdhip64.so.5", "libamdhip64.so",
                         "/opt/rocm/lib/libamdhip64.so"};
  void* handle = nullptr;
  std::string tried;
  for (const char* name : names) {
    const char* file = forced && *forced ? forced : name;
    handle = dlopen(file, RTLD_NOW | RTLD_GLOBAL);
    if (handle) {
      rt->soname = file;
      break;
    }
    const char* e = dlerror();
    tried += std::string(tried.empty() ? "" : "; ") + (e ? e : file);
    if (forced && *forced) break;
  }
  if (!handle) {
    rt->error = "the ROCm runtime (libamdhip64) is not installed or not on the library path (" + tried + ")";
    return *rt;
  }
  auto version = reinterpret_cast<Runtime::IntFn>(dlsym(handle, "hipRuntimeGetVersion"));
  rt->get_device_count = reinterpret_cast<Runtime::IntFn>(dlsym(handle, "hipGetDeviceCount"));
  rt->get_error_name = reinterpret_cast<Runtime::NameFn>(dlsym(handle, "hipGetErrorName"));
  if (!version || !rt->get_device_count || !rt->get_error_name) {
    rt->error = rt->soname + " lacks hipRuntimeGetVersion/hipGetDeviceCount/hipGetErrorName: not a HIP runtime";
    return *rt;
  }
  if (version(&rt->version) != 0) rt->version = 0;
  return *rt;
}

std::string plugin_path() {
  if (const char* p = std::getenv("GPTOSS_HIP_PLUGIN"); p && *p) return p;
  Dl_info info{};
  std::string self = dladdr(reinterpret_cast<void*>(&hip_probe), &info) && info.dli_fname ? info.dli_fname : "";
  const size_t slash = self.rfind('/');
  return (slash == std::string::npos ? std::string(".") : self.substr(0, slash)) + "/gpt_oss_hip.so";
}

const Plugin& plugin() {
#ifndef GPTOSS_HIP_BUILT
  // No plugin to load, so the ROCm runtime is not loaded either.
  static const Plugin* none = [] {
    auto* p = new Plugin;
    p->path = plugin_path();
    p->error = "this build of gpt-oss-node has no HIP backend (it was built without clang++-22 or -19 and the HIP "
               "headers, or with GPTOSS_HIP=OFF); rebuild with them installed (README: Backends)";
    return p;
  }();
  return *none;
#else
  static Plugin* pl = nullptr;
  const Runtime& rt = runtime();  // first: the plugin's undefined HIP symbols need it loaded globally
  std::lock_guard<std::mutex> lock(load_mutex());
  if (pl) return *pl;
  pl = new Plugin;
  pl->path = plugin_path();
  if (!rt.error.empty()) {
    pl->error = rt.error;
    return *pl;
  }
  void* handle = dlopen(pl->path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* e = dlerror();
    pl->error = "could not load the HIP plugin " + pl->path + ": " + (e ? e : "dlopen failed");
    return *pl;
  }
  auto entry = reinterpret_cast<const HipPluginApi* (*)()>(dlsym(handle, GPTOSS_HIP_PLUGIN_ENTRY));
  const HipPluginApi* api = entry ? entry() : nullptr;
  if (!api) {
    pl->error = pl->path + " has no " GPTOSS_HIP_PLUGIN_ENTRY "(): not a gpt-oss-node HIP plugin";
    return *pl;
  }
  if (std::string(api->build_id) != GPTOSS_HIP_BUILD_ID) {
    pl->error = pl->path + " is from another build (build id " + api->build_id + ", the addon's " +
                GPTOSS_HIP_BUILD_ID + "): rebuild both (npx cmake-js compile)";
    return *pl;
  }
  pl->api = api;  // never dlclose'd: backends and tensors it made may live until exit
  return *pl;
#endif
}

}  // namespace

std::string hip_probe(int* device_count) {
  if (device_count) *device_count = 0;
#ifndef GPTOSS_HIP_BUILT
  return plugin().error;
#endif
  const Runtime& rt = runtime();
  if (!rt.error.empty()) return rt.error;
  const std::string via = "ROCm runtime " + version_str(rt.version) + ", " + rt.soname;
  int n = 0;
  const int rc = rt.get_device_count(&n);
  if (rc != 0) return std::string("no usable AMD GPU: ") + rt.get_error_name(rc) + " (hipGetDeviceCount; " + via + ")";
  if (n <= 0) return "no AMD GPU (hipGetDeviceCount found none; " + via + ")";
  if (rt.version < kMinRuntimeVersion)
    return "the ROCm runtime is too old (" + via + "): gpt-oss-node's HIP code objects need ROCm 6.0 or newer";
  const Plugin& pl = plugin();
  if (!pl.api) return pl.error;
  return pl.api->probe(device_count);
}

std::shared_ptr<Backend> make_hip_backend(int index) {
  int count = 0;
  const std::string reason = hip_probe(&count);
  if (!reason.empty()) throw runtime_error("HIP is not available: " + reason);
  if (index < 0 || index >= count)
    throw range_error("hip:" + std::to_string(index) + " does not exist (" + std::to_string(count) + " HIP device" +
                      (count == 1 ? "" : "s") + ")");
  return plugin().api->make_backend(index);
}

HipBuildInfo hip_build_info() {
  HipBuildInfo info;
#ifdef GPTOSS_HIP_BUILT
  info.built = true;
  const Runtime& rt = runtime();
  info.runtime = rt.soname;
  info.runtime_version = rt.version;
#endif
  const Plugin& pl = plugin();
  info.plugin_path = pl.path;
  info.plugin_loaded = pl.api != nullptr;
  if (pl.api) info.archs = pl.api->archs;
  info.error = pl.error;
  return info;
}

}  // namespace gptoss
