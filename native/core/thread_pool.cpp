#include "thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define GPTOSS_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define GPTOSS_PAUSE() asm volatile("yield")
#else
#define GPTOSS_PAUSE() ((void)0)
#endif

// Test builds only (native/core/tests/thread_pool_test.cpp compiles this file with the macro): the
// points where a job's interleavings are decided call the test's hook, so it can force the rare ones.
#ifdef GPTOSS_POOL_TEST_HOOKS
namespace gptoss {
enum class PoolPoint { ClaimLoaded, BeforePublish, LeftJob };
void pool_test_hook(PoolPoint point, uint32_t generation);
}  // namespace gptoss
#define GPTOSS_POOL_POINT(point, gen) pool_test_hook(PoolPoint::point, gen)
#else
#define GPTOSS_POOL_POINT(point, gen) ((void)0)
#endif

namespace gptoss {

namespace {
thread_local bool t_inside_job = false;  // nested parallel_for runs inline
// How long an idle worker spins before sleeping: long enough to bridge the gap between two ops of
// a decode step, short enough not to steal a core from other processes for long.
constexpr auto kSpin = std::chrono::microseconds(200);

bool env_flag(const char* name, bool fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  return !(v[0] == '0' || v[0] == 'n' || v[0] == 'N' || v[0] == 'f' || v[0] == 'F');
}

// The adaptive choice (see thread_pool.h): jobs run in windows of kWindow jobs one way (all threads or
// inline). Each kind of job (its n and grain: a decode step's ops recur with the same sizes) keeps a
// running mean of its wall time each way, fed by whole windows. At a window's end the two ways are
// compared on the jobs that window ran: the sum, over its kinds measured both ways, of how often each
// ran times its mean each way (so a prefill window and a decode window are never compared with each
// other). The faster way runs next; one window in `explore` runs the other way (every 4th when the two
// are within 25%, every 16th within 2x, every 64th beyond), so a change of load is noticed at a bounded
// cost. Whole windows, not single jobs: one parallel job among inline ones pays the sleeping workers'
// wake-up, which would bias a per-job comparison towards inline.
constexpr int kWindow = 512;
constexpr int kKinds = 256;
constexpr double kDecay = 0.25;  // weight of the newest job in a kind's running mean
struct JobKind {
  uint64_t key = 0;          // 0: empty slot
  double mean_ns[2] = {0, 0};  // [inline, parallel]; 0 = not measured yet
  uint32_t hits = 0;         // jobs of this kind in the current window
};
struct Adaptive {
  bool parallel = true;  // the way the current window runs
  int jobs = 0;
  uint32_t windows = 0;
  JobKind kinds[kKinds];
};
}  // namespace}  // namespace

int default_thread_count() {
  if (const char* env = std::getenv("GPTOSS_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return std::min(n, 1024);
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? int(hc) : 1;
}

struct ThreadPool::Impl {
  std::atomic<int> nthreads{1};  // written under `dispatch`; parallel_for reads it before taking that
  std::vector<std::thread> workers;

  // The current job. `claim` is the whole of what a thread decides on before it owns a chunk:
  // generation << 32 | chunk count << 16 | next chunk. A thread takes a chunk with a CAS on that word,
  // so it can only take a chunk of the job it read, and only while that job has one left; fn, n and
  // chunk are read after the CAS succeeded (they were written before the word was published, with
  // release). The chunk count lives in the word, not beside it: a worker late from the previous job
  // (it ran that job's last chunk and loaded its exhausted word) once read the next job's count while
  // the caller was writing it, found "chunks left", and its CAS on the old, still unpublished word
  // succeeded: it ran a chunk of the new job that was run again later, and its extra `done` count let
  // the caller return while a chunk still ran over the caller's dead stack frame (a protection fault
  // in a pool thread, once in a full test run; native/core/tests/thread_pool_test.cpp forces it).
  static constexpr int64_t kMaxChunks = 0xffff;
  static uint64_t claim_word(uint32_t gen, int64_t nchunks, int64_t next) {
    return uint64_t(gen) << 32 | uint64_t(nchunks) << 16 | uint64_t(next);
  }
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0, chunk = 1;
  std::atomic<uint64_t> claim{0};
  std::atomic<int64_t> done{0};
  std::atomic<uint32_t> generation{0};
  std::atomic<bool> stop{false};
  std::exception_ptr error;
  std::mutex error_mutex;

  std::atomic<int> sleepers{0};
  std::mutex sleep_mutex;
  std::condition_variable wake;

  std::mutex dispatch;  // one job at a time

  // Adaptive choice (guarded by `dispatch`).
  std::atomic<bool> adaptive{env_flag("GPTOSS_POOL_ADAPTIVE", false)};
  Adaptive choice;
  std::map<int, Adaptive> saved;  // per pool size: its scores outlive a resize and come back with it
  std::atomic<uint64_t> ran_parallel{0}, ran_inline{0};
  bool pin = env_flag("GPTOSS_PIN", false);

  void run_chunks(uint32_t gen) {
    for (;;) {
      uint64_t w = claim.load(std::memory_order_acquire);
      GPTOSS_POOL_POINT(ClaimLoaded, gen);
      if (uint32_t(w >> 32) != gen) break;
      const int64_t idx = int64_t(w & 0xffff), nchunks = int64_t(w >> 16 & 0xffff);
      if (idx >= nchunks) break;
      if (!claim.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel)) continue;
      int64_t b = idx * chunk, e = std::min(n, b + chunk);
      try {
        (*fn)(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> lk(error_mutex);
        if (!error) error = std::current_exception();
      }
      done.fetch_add(1, std::memory_order_acq_rel);
    }
    GPTOSS_POOL_POINT(LeftJob, gen);
  }

  // `seen`: the generation when the worker was created. Read there, not here: a job posted before
  // this thread got to run (the first parallel_for right after the pool was made) must not be missed.
  void worker_loop(uint32_t seen) {
    t_inside_job = true;
    for (;;) {
      auto until = std::chrono::steady_clock::now() + kSpin;
      int spins = 0;
      while (generation.load(std::memory_order_acquire) == seen && !stop.load(std::memory_order_relaxed)) {
        GPTOSS_PAUSE();
        if (++spins == 256) {
          spins = 0;
          if (std::chrono::steady_clock::now() > until) {
            std::unique_lock<std::mutex> lk(sleep_mutex);
            sleepers.fetch_add(1, std::memory_order_seq_cst);
            wake.wait(lk, [&] { return generation.load(std::memory_order_seq_cst) != seen || stop.load(); });
            sleepers.fetch_sub(1, std::memory_order_seq_cst);
            break;
          }
        }
      }
      if (stop.load()) return;
      seen = generation.load(std::memory_order_acquire);
      run_chunks(seen);
    }
  }

  void start(int threads) {
    nthreads = std::max(1, threads);
    stop = false;
    choice = saved[nthreads.load()];
    const uint32_t gen = generation.load(std::memory_order_acquire);
    std::vector<int> cpus;
    if (pin) {
      cpu_set_t set;
      CPU_ZERO(&set);
      if (sched_getaffinity(0, sizeof(set), &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; ++c)
          if (CPU_ISSET(c, &set)) cpus.push_back(c);
    }
    for (int i = 1; i < nthreads; ++i) {
      workers.emplace_back([this, gen] { worker_loop(gen); });
      if (cpus.size() > 1) {  // worker i on the (i+1)-th allowed CPU, wrapping past the end
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[size_t(i) % cpus.size()], &one);
        pthread_setaffinity_np(workers.back().native_handle(), sizeof(one), &one);
      }
    }
  }

  // A job (n, grain) took ns the current window's way: update its kind; close the window after kWindow
  // jobs and pick the way of the next one.
  void record(int64_t n, int64_t grain, double ns) {
    Adaptive& a = choice;
    const uint64_t key = (uint64_t(n) << 16 ^ uint64_t(grain)) | 1;
    JobKind& k = a.kinds[(key * 0x9e3779b97f4a7c15ull >> 40) % kKinds];
    if (k.key != key) k = JobKind{key, {0, 0}, 0};  // a new kind (or a collision: start over)
    double& mean = k.mean_ns[a.parallel];
    mean = mean == 0 ? ns : mean + (ns - mean) * kDecay;
    k.hits++;
    if (++a.jobs < kWindow) return;
    double total[2] = {0, 0};
    for (JobKind& j : a.kinds) {
      if (j.hits && j.mean_ns[0] > 0 && j.mean_ns[1] > 0) {
        total[0] += j.hits * j.mean_ns[0];
        total[1] += j.hits * j.mean_ns[1];
      }
      j.hits = 0;
    }
    a.jobs = 0;
    const uint32_t w = ++a.windows;
    if (total[0] == 0) {  // nothing measured both ways yet: try the other way
      a.parallel = !a.parallel;
      return;
    }
    const bool par_better = total[1] <= total[0];
    const double ratio = par_better ? total[0] / total[1] : total[1] / total[0];
    const uint32_t explore = ratio < 1.25 ? 4 : ratio < 2 ? 16 : 64;
    a.parallel = (w % explore == 0) ? !par_better : par_better;
  }


  void shutdown() {
    {
      std::lock_guard<std::mutex> lk(sleep_mutex);
      stop = true;
    }
    wake.notify_all();
    for (auto& t : workers) t.join();
    workers.clear();
  }
};

ThreadPool::ThreadPool(int threads) : impl_(new Impl) { impl_->start(threads); }

ThreadPool::~ThreadPool() {
  impl_->shutdown();
  delete impl_;
}

int ThreadPool::threads() const { return impl_->nthreads; }

void ThreadPool::set_threads(int threads) {
  std::lock_guard<std::mutex> lk(impl_->dispatch);
  if (std::max(1, threads) == impl_->nthreads) return;
  impl_->saved[impl_->nthreads] = impl_->choice;
  impl_->shutdown();
  impl_->start(threads);
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  Impl& p = *impl_;
  if (t_inside_job || p.nthreads == 1 || n <= grain) {
    fn(0, n);
    return;
  }
  std::unique_lock<std::mutex> lk(p.dispatch, std::try_to_lock);
  if (!lk.owns_lock()) {  // another thread's job is running: do ours inline rather than queue
    fn(0, n);
    return;
  }
  const bool adaptive = p.adaptive.load(std::memory_order_relaxed);
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed_ns = [&] {
    return double(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
  };
  if (adaptive && !p.choice.parallel) {
    // Inline while holding `dispatch`: another caller's job runs inline meanwhile too (it would
    // otherwise take the pool and its time would count in this window's score).
    t_inside_job = true;
    try {
      fn(0, n);
    } catch (...) {
      t_inside_job = false;
      throw;
    }
    t_inside_job = false;
    p.record(n, grain, elapsed_ns());
    p.ran_inline.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // A few chunks per thread: dynamic balance without many CAS round trips.
  const int64_t max_chunks = std::min<int64_t>(int64_t(p.nthreads.load()) * 4, Impl::kMaxChunks);
  int64_t chunk = (n + max_chunks - 1) / max_chunks;
  chunk = (chunk + grain - 1) / grain * grain;
  const int64_t nchunks = (n + chunk - 1) / chunk;
  p.fn = &fn;
  p.n = n;
  p.chunk = chunk;
  p.done.store(0, std::memory_order_relaxed);
  p.error = nullptr;
  uint32_t gen = p.generation.load(std::memory_order_relaxed) + 1;
  GPTOSS_POOL_POINT(BeforePublish, gen);
  p.claim.store(Impl::claim_word(gen, nchunks, 0), std::memory_order_release);
  p.generation.store(gen, std::memory_order_seq_cst);
  if (p.sleepers.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> sl(p.sleep_mutex);
    p.wake.notify_all();
  }
  t_inside_job = true;
  p.run_chunks(gen);
  while (p.done.load(std::memory_order_acquire) < nchunks) GPTOSS_PAUSE();
  t_inside_job = false;
  if (adaptive) {
    p.record(n, grain, elapsed_ns());
    p.ran_parallel.fetch_add(1, std::memory_order_relaxed);
  }
  if (p.error) {
    std::exception_ptr e = p.error;
    p.error = nullptr;
    std::rethrow_exception(e);
  }
}

void ThreadPool::set_adaptive(bool on) {
  std::lock_guard<std::mutex> lk(impl_->dispatch);
  impl_->adaptive = on;  // the scores stay: they describe this pool size on this machine
}
bool ThreadPool::adaptive() const { return impl_->adaptive.load(); }
ThreadPool::Counts ThreadPool::counts() const {
  return {impl_->ran_parallel.load(), impl_->ran_inline.load()};
}

ThreadPool& thread_pool() {
  // Never destroyed: at process exit a libuv thread may still be inside parallel_for (a forward pass
  // abandoned by an abort), and a static destructor would free the pool under it. The OS reclaims it.
  static ThreadPool& pool = *new ThreadPool(default_thread_count());
  return pool;
}

}  // namespace gptoss
