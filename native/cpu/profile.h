// GPTOSS_PROFILE=1: wall time and process CPU time (every thread's, CLOCK_PROCESS_CPUTIME_ID) per CPU op
// (and per weight shape for linear, per stage inside moe), summed over the process and printed to
// stderr at exit. Used to split a decode step (bench/RESULTS.md, CPU kernels); on a shared machine the
// CPU time says what an op cost whatever share of the cores it got (a pool worker's spin between ops
// counts in the op it overlaps). Off, a scope costs one load and a branch.
#pragma once
#include <time.h>

#include <chrono>
#include <string>

#include "core/tensor.h"

namespace gptoss::cpu {

class OpProfile;
OpProfile* op_profile();  // nullptr unless GPTOSS_PROFILE is set
void op_profile_add(OpProfile* p, const char* name, const std::string& detail, double seconds, double cpu_seconds);

inline double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

struct ProfileScope {
  OpProfile* p = op_profile();
  const char* name;
  std::string detail;
  std::chrono::steady_clock::time_point t0;
  double cpu0 = 0;
  explicit ProfileScope(const char* n, std::string d = {}) : name(n), detail(std::move(d)) {
    if (p) t0 = std::chrono::steady_clock::now(), cpu0 = process_cpu_seconds();
  }
  ~ProfileScope() {
    if (p)
      op_profile_add(p, name, detail, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                     process_cpu_seconds() - cpu0);
  }
};

// "n=1 bf16[4096, 2880]" for a linear's profile line (empty when profiling is off).
std::string profile_shape_key(const Tensor& x, const Tensor& w);

}  // namespace gptoss::cpu
