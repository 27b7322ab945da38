// A small fork-join pool for the CPU kernels. A decode step of gpt-oss-20b issues ~250 ops, so a
// dispatch must cost microseconds: workers spin (with pause) for a while after each job before
// sleeping on a condition variable, and the calling thread takes part in every job.
//
// Size: GPTOSS_THREADS when set, else the CPUs in this process's affinity mask (sched_getaffinity).
// Concurrency: one job at a time. A parallel_for issued while another is running (another JS thread,
// a worker thread, or a nested call from inside a job) runs inline on its caller instead of waiting.
//
// Adaptive (opt-in: GPTOSS_POOL_ADAPTIVE=1 or ops.setPoolAdaptive; off by default because on a quiet
// 2-core box it settled on one thread and halved 20b decode, 5.03 vs 11.17 tok/s, bench/RESULTS.md): a fork-join job loses to one thread when a
// worker that took a chunk is preempted (a loaded machine: the caller waits out the worker's time slice,
// milliseconds, for a job of ~100 us), yet two threads also get twice the share of a loaded machine's
// CPUs. Which wins depends on the load, so the pool measures it: jobs run in windows of 512 (a few
// decode steps), all threads or inline on the caller; each kind of job (its size) keeps its mean wall
// time each way, a window's jobs are costed both ways from those means, the faster way runs, and every
// few windows the other way runs once to keep its means current.
//
// Pinning (GPTOSS_PIN=1, off by default): worker i is bound to the (i+1)-th CPU of the process's
// affinity mask, the first left to the calling thread (not pinned: it is Node's). Worth it on a
// dedicated many-core machine; on a shared one it stops the scheduler moving a worker off a busy core.
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
  // Restart with `threads` (>= 1) threads (nothing to do when it has that many); waits for a running
  // job to finish. The adaptive scores are kept per pool size.
  void set_threads(int threads);
  // The adaptive choice between all threads and the caller alone (see above); on by default. Turning
  // it off and on keeps its scores.
  void set_adaptive(bool on);
  bool adaptive() const;
  // Jobs run on all threads / inline by the adaptive choice since start (for benchmarks and tests).
  struct Counts {
    uint64_t parallel = 0, inline_ = 0;
  };
  Counts counts() const;

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
