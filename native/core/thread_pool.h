// A small fork-join pool for the CPU kernels. A decode step of gpt-oss-20b issues ~250 ops, so a
// dispatch must cost microseconds: workers spin (with pause) for a while after each job before
// sleeping on a condition variable, and the calling thread takes part in every job.
//
// Size: GPTOSS_THREADS when set, else the CPUs in this process's affinity mask (sched_getaffinity).
// Concurrency: one job at a time. A parallel_for issued while another is running (another JS thread,
// a worker thread, or a nested call from inside a job) runs inline on its caller instead of waiting.
#pragma once
#include <cstdint>
#include <functional>

namespace gptoss {

class ThreadPool;

// The process-wide pool (created on first use).
ThreadPool& thread_pool();

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const;
  // Restart with `threads` (>= 1) threads; waits for a running job to finish.
  void set_threads(int threads);

  // Calls fn(begin, end) over disjoint ranges covering [0, n). Ranges hold at least `grain`
  // items (except the last) and are handed out dynamically, so a preempted thread delays nothing.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

  struct Impl;

 private:
  Impl* impl_;
};

// Shorthand for thread_pool().parallel_for.
inline void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1) {
  thread_pool().parallel_for(n, fn, grain);
}

// Threads the pool starts with: GPTOSS_THREADS, else the affinity mask's CPU count.
int default_thread_count();

}  // namespace gptoss
