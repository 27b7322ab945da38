// The paged KV cache: one pool of fixed-size blocks per batch (on the model's device), shared by
// every sequence of that batch; a sequence holds a block table (the pool blocks its positions map
// to, in order), so sequences of any length share one allocation without fragmentation. Layout per
// layer: K and V [blocks * blockSize, kvHeads, D]; logical position p of a sequence with table t is
// row t[p / blockSize] * blockSize + p % blockSize (backend.h, paged_attention).
#pragma once
#include <cstdint>
#include <mutex>
#include <vector>

#include "backend.h"
#include "config.h"

namespace gptoss {

class KvPool {
 public:
  // Allocates (blocks + 1) * block_size rows per layer in kv_type (the model's kvCache), the last block
  // the spare (uninitialised: a row is written before it is read).
  KvPool(Backend& be, const ModelConfig& c, KvCacheType kv_type, int blocks, int block_size);

  int block_size() const { return block_size_; }
  int total_blocks() const { return total_blocks_; }
  int free_blocks() const;
  // Bytes of cache one token takes: K and V of every layer.
  static uint64_t bytes_per_token(const ModelConfig& c, KvCacheType kv_type);

  // Takes `count` blocks for a sequence, all or none: false (nothing taken) when fewer are free.
  bool take(int count, std::vector<int32_t>& out);
  // Returns a sequence's blocks to the pool.
  void give_back(const std::vector<int32_t>& blocks);

  // One block past the pool's, never handed out: padded rows of a step (model/batch.cpp) write their
  // keys and values here, and read them.
  int spare_block() const { return total_blocks_; }

  std::vector<Tensor>& k() { return k_; }
  std::vector<Tensor>& v() { return v_; }

 private:
  int block_size_, total_blocks_;
  mutable std::mutex mutex_;
  std::vector<int32_t> free_;  // a stack: the most recently freed block is reused first (warm in cache)
  std::vector<Tensor> k_, v_;
};

}  // namespace gptoss
