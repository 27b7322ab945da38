// Host test of the fork-join pool (native/core/thread_pool.cpp), compiled with GPTOSS_POOL_TEST_HOOKS
// so that it can force the interleavings that matter (test/thread-pool.test.ts builds and runs it):
//  1. a late worker: a worker that ran the last chunk of one job and loaded the claim word of that
//     job is held there while the caller finishes the job, starts the next one (its fields written,
//     not yet published) and then lets the worker go. The worker must not take a chunk of the new job
//     under the old job's generation: before the fix it did (it compared the old claim index with the
//     new job's chunk count), ran chunks of the new job twice, and its extra `done` count let the
//     caller return while a chunk still ran on the worker, over the caller's dead stack frame (the
//     general protection fault a full test run once hit in a pool thread);
//  2. exact cover under load: two callers and a set_threads resizer drive one pool with jobs of
//     varying sizes; every job must run each of its items exactly once, with no empty or
//     out-of-range chunk. (Also the workload scripts/tsan.sh runs this file under ThreadSanitizer.)
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/tests/check.h"
#include "core/thread_pool.h"

namespace gptoss {
enum class PoolPoint { ClaimLoaded, BeforePublish, LeftJob };
void pool_test_hook(PoolPoint point, uint32_t generation);
}  // namespace gptoss

using namespace gptoss;
using namespace gptoss::test;

namespace {

// The late-worker scenario's state (test 1); the hook does nothing while `phase` is 0.
std::thread::id g_caller;
std::atomic<int> g_phase{0};               // 1: the first job runs; 2: the second one is being set up
std::atomic<bool> g_worker_ran{false};     // the worker ran a chunk of the first job
std::atomic<bool> g_parked{false};         // the worker is held after loading the claim word
std::atomic<uint32_t> g_parked_generation{0};
std::atomic<bool> g_go{false}, g_left{false};

void wait_for(const std::atomic<bool>& flag) {
  while (!flag.load()) std::this_thread::yield();
}
}  // namespace

void gptoss::pool_test_hook(PoolPoint point, uint32_t generation) {
  if (g_phase.load() == 0) return;
  const bool caller = std::this_thread::get_id() == g_caller;
  switch (point) {
    case PoolPoint::ClaimLoaded:
      // The worker's first claim load after it finished a chunk of the first job: hold it there.
      if (!caller && g_worker_ran.load() && !g_parked.exchange(true)) {
        g_parked_generation = generation;
        wait_for(g_go);
      }
      break;
    case PoolPoint::BeforePublish:
      // The second job's fields are written, its claim word not yet: release the worker and wait
      // until it has left the first job (claiming whatever it wrongly could).
      if (caller && g_phase.load() == 2) {
        g_go = true;
        wait_for(g_left);
      }
      break;
    case PoolPoint::LeftJob:
      if (!caller && g_parked.load() && generation == g_parked_generation.load()) g_left = true;
      break;
  }
}

namespace {

void late_worker() {
  g_caller = std::this_thread::get_id();
  const int64_t n2 = 64;
  std::vector<std::atomic<int>> hits(n2);
  std::atomic<int> bad_ranges{0}, calls{0};
  // Declared before the pool: the pool's destructor joins its worker before these go.
  const std::function<void(int64_t, int64_t)> second = [&](int64_t b, int64_t e) {
    calls++;
    if (b < 0 || b >= e || e > n2) bad_ranges++;
    for (int64_t i = std::max<int64_t>(b, 0); i < std::min(e, n2); ++i) hits[size_t(i)]++;
  };
  const std::function<void(int64_t, int64_t)> first = [&](int64_t, int64_t) {
    if (std::this_thread::get_id() == g_caller) wait_for(g_worker_ran);  // the worker takes a chunk
    else g_worker_ran = true;
  };
  {
    ThreadPool pool(2);  // the caller and one worker
    g_phase = 1;
    pool.parallel_for(2, first, 1);  // 2 chunks of 1
    g_phase = 2;
    pool.parallel_for(n2, second, 1);  // 8 chunks of 8
    g_phase = 0;
  }
  check(g_parked.load() && g_left.load(), "late worker: the worker was held at its claim load and left the first job",
        "parked=" + std::to_string(g_parked.load()) + " left=" + std::to_string(g_left.load()));
  int twice = 0, missed = 0;
  for (auto& h : hits) {
    if (h.load() == 0) missed++;
    if (h.load() > 1) twice++;
  }
  check(twice == 0 && missed == 0, "late worker: the second job ran each of its 64 items exactly once",
        std::to_string(twice) + " items ran more than once, " + std::to_string(missed) + " never");
  check(calls.load() == 8 && bad_ranges.load() == 0, "late worker: the second job ran 8 chunks, all in range",
        std::to_string(calls.load()) + " chunks, " + std::to_string(bad_ranges.load()) + " empty or out of range");
}

void exact_cover() {
  ThreadPool pool(3);
  std::atomic<int> wrong_jobs{0}, bad_ranges{0}, jobs{0};
  auto caller = [&](uint32_t seed) {
    std::vector<std::atomic<int>> hits(256);
    for (int j = 0; j < 1500; ++j) {
      seed = seed * 1664525u + 1013904223u;
      const int64_t n = 1 + int64_t(seed >> 8) % 256;
      const int64_t grain = int64_t(1) << ((seed >> 4) % 5);  // 1 .. 16
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        if (b < 0 || b >= e || e > n) bad_ranges++;
        for (int64_t i = std::max<int64_t>(b, 0); i < std::min(e, n); ++i) hits[size_t(i)]++;
      }, grain);
      bool ok = true;
      for (int64_t i = 0; i < n; ++i) ok &= hits[size_t(i)].exchange(0) == 1;
      if (!ok) wrong_jobs++;
      jobs++;
    }
  };
  std::atomic<bool> stop{false};
  std::thread resizer([&] {
    for (int k = 0; k < 20 && !stop.load(); ++k) {
      pool.set_threads(2 + k % 2);
      std::this_thread::yield();
    }
  });
  std::thread a(caller, 12345u), b(caller, 987654u);
  a.join();
  b.join();
  stop = true;
  resizer.join();
  check(wrong_jobs.load() == 0, "exact cover: every job ran each item exactly once",
        std::to_string(wrong_jobs.load()) + " of " + std::to_string(jobs.load()) + " jobs did not");
  check(bad_ranges.load() == 0, "exact cover: no empty or out-of-range chunk", std::to_string(bad_ranges.load()));
}

}  // namespace

int main() {
  late_worker();
  exact_cover();
  return checks_passed("thread pool");
}
