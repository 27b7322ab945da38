// Decode steps as CUDA graphs, keyed by (owner, shape_key): the first call captures the step
// (nothing runs while capturing), instantiates and launches it; later calls launch the graph and do
// NOT call the step again, so everything it touches must be persistent device tensors whose contents
// (tokens, positions) change between replays. A step whose capture fails (a host sync or copy inside
// it) runs eagerly from then on.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "common.cuh"
#include "pool.h"

namespace gptoss::cuda {

class StepGraphs {
 public:
  // Only decode-sized steps (shape_key = tokens << 32 | logits rows, gpt_oss.cpp): a prefill graph
  // saves nothing against milliseconds of work, and it kept every per-layer workspace of its capture
  // alive (blocks allocated while capturing stay with the graph): 24 x 377 MB of MoE workspace for a
  // 4096-token prefill, which is where the 20b e2e run's 23 GB peak came from.
  static constexpr int kMaxTokens = 8;
  // A batch's decode step padded to a bucket size (model/batch.cpp, kStepBucketKey: the same bit) is
  // captured at any size: it replays every step of a serving loop, and its buckets are few.
  static constexpr uint64_t kBatchBucket = 1ull << 63;

  explicit StepGraphs(bool enabled) : enabled_(enabled) {}
  ~StepGraphs() { clear(); }
  bool enabled() const { return enabled_; }

  // Run `step` on `stream`, as a graph where possible. op_mu is held for the whole capture (no other
  // thread's op may land inside it); `capturing` is set while the step is being captured.
  void run(uint64_t shape_key, void* owner, cudaStream_t stream, DevicePool& pool, std::recursive_mutex& op_mu,
           bool& capturing, const std::function<void()>& step);
  // Destroy the owner's graphs (their keep-alive blocks return to the pool).
  void forget(void* owner);
  void clear();

 private:
  struct Entry {
    cudaGraphExec_t exec = nullptr;
    std::vector<std::shared_ptr<void>> keep;  // blocks allocated while capturing
  };
  bool enabled_;
  std::mutex mu_;
  std::map<std::pair<void*, uint64_t>, Entry> graphs_;
};

}  // namespace gptoss::cuda
