#include "kv_cache.h"

#include <string>

#include "core/error.h"

namespace gptoss {

uint64_t KvPool::bytes_per_token(const ModelConfig& c, KvCacheType kv_type) {
  return uint64_t(c.num_layers) * kv_cache_bytes(kv_type, int64_t(c.num_kv_heads) * c.head_dim);
}

KvPool::KvPool(Backend& be, const ModelConfig& c, KvCacheType kv_type, int blocks, int block_size)
    : block_size_(block_size), total_blocks_(blocks) {
  if (block_size < 1 || block_size > (1 << 16))
    throw range_error("kvPool: blockSize must be in [1, 65536], got " + std::to_string(block_size));
  if (blocks < 1) throw range_error("kvPool: kvBlocks must be at least 1, got " + std::to_string(blocks));
  if ((int64_t(blocks) + 1) * block_size > (int64_t(1) << 31) - 1)
    throw range_error("kvPool: (kvBlocks + 1) * blockSize = " + std::to_string((int64_t(blocks) + 1) * block_size) +
                      " rows exceeds 2^31 - 1");
  const int64_t rows = (int64_t(blocks) + 1) * block_size;  // + the spare block
  for (int l = 0; l < c.num_layers; ++l) {
    k_.push_back(be.empty(kv_type.key, {rows, c.num_kv_heads, c.head_dim}));
    v_.push_back(be.empty(kv_type.value, {rows, c.num_kv_heads, c.head_dim}));
  }
  free_.reserve(size_t(blocks));
  for (int b = blocks - 1; b >= 0; --b) free_.push_back(b);  // block 0 is taken first
}

int KvPool::free_blocks() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return int(free_.size());
}

bool KvPool::take(int count, std::vector<int32_t>& out) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (count < 0 || size_t(count) > free_.size()) return false;
  for (int i = 0; i < count; ++i) {
    out.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void KvPool::give_back(const std::vector<int32_t>& blocks) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) free_.push_back(*it);
}

}  // namespace gptoss
