// The host tests' check counter (core/tests/thread_pool_test.cpp, cuda/tests/mxfp4_layout_test.cpp,
// cuda/tests/policy_test.cpp, cuda/tests/gemm_wgmma_layout_test.cpp): every check counts, a failed one
// prints "FAIL <what> <detail>", and checks_passed prints "<passed> of <checks> <name> checks passed"
// (test/helpers/host-test.ts reads both) and gives main's exit status.
// Header-only: each test is one executable.
#pragma once
#include <cstdio>
#include <string>

namespace gptoss::test {

inline int checks = 0, failed = 0;

inline void check(bool ok, const std::string& what, const std::string& detail = "") {
  ++checks;
  if (!ok) {
    ++failed;
    std::printf("FAIL %s%s%s\n", what.c_str(), detail.empty() ? "" : " ", detail.c_str());
  }
}

inline int checks_passed(const char* name) {
  std::printf("%d of %d %s checks passed\n", checks - failed, checks, name);
  return failed ? 1 : 0;
}

}  // namespace gptoss::test
