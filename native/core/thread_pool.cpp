#include "thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
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

// The adaptive choice's memory: per job kind, the mean wall time (ns) run both ways.
struct JobKind {
  uint64_t key = 0;  // 0: empty slot
  double parallel_ns = 0, inline_ns = 0;
  uint32_t calls = 0;
};
constexpr int kKinds = 128;
constexpr double kDecay = 1.0 / 8;  // weight of the newest sample in the running mean
}  // namespace

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
  int nthreads = 1;
  std::vector<std::thread> workers;

  // The current job. `claim` packs (generation << 32 | next chunk): a thread takes a chunk with a
  // CAS that also checks the generation, so a late worker can never touch a finished job.
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0, chunk = 1, nchunks = 0;
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
  std::atomic<bool> adaptive{env_flag("GPTOSS_POOL_ADAPTIVE", true)};
  JobKind kinds[kKinds];
  std::atomic<uint64_t> ran_parallel{0}, ran_inline{0};
  bool pin = env_flag("GPTOSS_PIN", false);

  void run_chunks(uint32_t gen) {
    for (;;) {
      uint64_t w = claim.load(std::memory_order_acquire);
      if (uint32_t(w >> 32) != gen) return;
      int64_t idx = int64_t(w & 0xffffffffu);
      if (idx >= nchunks) return;
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
    for (JobKind& k : kinds) k = JobKind{};
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

  // Which way to run a job of this kind: true = all threads. Both ways are tried first; then the
  // faster one, with the other every `explore`-th call (16 when they are within 25%, 64 within 2x,
  // 256 beyond) so a change of load is noticed at a bounded cost.
  JobKind& kind_of(int64_t n, int64_t grain) {
    const uint64_t key = (uint64_t(n) << 20 ^ uint64_t(grain)) | 1;
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    JobKind& k = kinds[(h >> 40) % kKinds];
    if (k.key != key) k = JobKind{key, 0, 0, 0};  // a new kind (or a collision: start over)
    return k;
  }
  static bool choose_parallel(JobKind& k) {
    const uint32_t c = k.calls++;
    if (k.parallel_ns == 0) return true;
    if (k.inline_ns == 0) return false;
    const bool par_better = k.parallel_ns <= k.inline_ns;
    const double ratio = par_better ? k.inline_ns / k.parallel_ns : k.parallel_ns / k.inline_ns;
    const uint32_t explore = ratio < 1.25 ? 16 : ratio < 2 ? 64 : 256;
    return (c % explore == explore - 1) ? !par_better : par_better;
  }
  static void record(double& mean, double ns) { mean = mean == 0 ? ns : mean + (ns - mean) * kDecay; }

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
  JobKind* kind = nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  if (p.adaptive.load(std::memory_order_relaxed)) {
    kind = &p.kind_of(n, grain);
    if (!Impl::choose_parallel(*kind)) {
      lk.unlock();  // the pool is free for another caller meanwhile
      fn(0, n);
      const double ns = double(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
      std::lock_guard<std::mutex> relock(p.dispatch);
      // The slot may have been taken over by another kind meanwhile; record only if it is still ours.
      if (kind->key == ((uint64_t(n) << 20 ^ uint64_t(grain)) | 1)) Impl::record(kind->inline_ns, ns);
      p.ran_inline.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  // A few chunks per thread: dynamic balance without many CAS round trips.
  int64_t max_chunks = int64_t(p.nthreads) * 4;
  int64_t chunk = (n + max_chunks - 1) / max_chunks;
  chunk = (chunk + grain - 1) / grain * grain;
  p.fn = &fn;
  p.n = n;
  p.chunk = chunk;
  p.nchunks = (n + chunk - 1) / chunk;
  p.done.store(0, std::memory_order_relaxed);
  p.error = nullptr;
  uint32_t gen = p.generation.load(std::memory_order_relaxed) + 1;
  p.claim.store(uint64_t(gen) << 32, std::memory_order_release);
  p.generation.store(gen, std::memory_order_seq_cst);
  if (p.sleepers.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> sl(p.sleep_mutex);
    p.wake.notify_all();
  }
  t_inside_job = true;
  p.run_chunks(gen);
  while (p.done.load(std::memory_order_acquire) < p.nchunks) GPTOSS_PAUSE();
  t_inside_job = false;
  if (kind) {
    Impl::record(kind->parallel_ns,
                 double(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count()));
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
  impl_->adaptive = on;
  for (JobKind& k : impl_->kinds) k = JobKind{};
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
