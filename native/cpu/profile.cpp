#include "profile.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

namespace gptoss::cpu {

class OpProfile {
 public:
  std::mutex mu;
  struct Entry {
    double seconds = 0, cpu_seconds = 0;
    int64_t calls = 0;
  };
  std::map<std::string, Entry> acc;
};

static void print_profile() {
  OpProfile* p = op_profile();
  std::lock_guard<std::mutex> lk(p->mu);
  std::fprintf(stderr, "GPTOSS_PROFILE: %-40s %10s %10s %9s %10s\n", "op", "total ms", "cpu ms", "calls", "us/call");
  for (auto& [k, v] : p->acc)
    std::fprintf(stderr, "GPTOSS_PROFILE: %-40s %10.1f %10.1f %9ld %10.1f\n", k.c_str(), v.seconds * 1e3, v.cpu_seconds * 1e3,
                 long(v.calls), v.seconds * 1e6 / double(v.calls));
}

OpProfile* op_profile() {
  static OpProfile* p = [] {
    if (!std::getenv("GPTOSS_PROFILE")) return static_cast<OpProfile*>(nullptr);
    std::atexit(print_profile);
    return new OpProfile();  // never freed: printed at exit
  }();
  return p;
}

void op_profile_add(OpProfile* p, const char* name, const std::string& detail, double seconds, double cpu_seconds) {
  std::lock_guard<std::mutex> lk(p->mu);
  auto& e = p->acc[detail.empty() ? std::string(name) : std::string(name) + " " + detail];
  e.seconds += seconds;
  e.cpu_seconds += cpu_seconds;
  e.calls += 1;
}

std::string profile_shape_key(const Tensor& x, const Tensor& w) {
  if (!op_profile()) return {};
  return std::string(x.dim(0) == 1 ? "n=1 " : "n>1 ") + dtype_name(w.dtype) + shape_str(w.shape);
}

}  // namespace gptoss::cpu
