// GPTOSS_PROFILE=1: wall time per CPU op (and per weight shape for linear, per stage inside moe),
// summed over the process and printed to stderr at exit. Used to split a decode step
// (bench/RESULTS.md, CPU kernels). Off, a scope costs one load and a branch.
#pragma once
#include <chrono>
#include <string>

#include "core/tensor.h"

namespace gptoss::cpu {

class OpProfile;
OpProfile* op_profile();  // nullptr unless GPTOSS_PROFILE is set
void op_profile_add(OpProfile* p, const char* name, const std::string& detail, double seconds);

struct ProfileScope {
  OpProfile* p = op_profile();
  const char* name;
  std::string detail;
  std::chrono::steady_clock::time_point t0;
  explicit ProfileScope(const char* n, std::string d = {}) : name(n), detail(std::move(d)) {
    if (p) t0 = std::chrono::steady_clock::now();
  }
  ~ProfileScope() {
    if (p) op_profile_add(p, name, detail, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
};

// "n=1 bf16[4096, 2880]" for a linear's profile line (empty when profiling is off).
std::string profile_shape_key(const Tensor& x, const Tensor& w);

}  // namespace gptoss::cpu
