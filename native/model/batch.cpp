#include "batch.h"

#include <algorithm>
#include <set>
#include <string>

#include "core/error.h"

namespace gptoss {

namespace {
// The model's backend, when it can run a batch (CUDA: not yet, and never a silent fallback).
Backend& batch_backend(const Model& m) {
  if (!m.backend().paged_kv())
    throw runtime_error("createBatchBackend: the batched step and its paged KV cache are not implemented on " +
                        m.backend().describe() + " yet; load the model on the cpu to batch sequences");
  return m.backend();
}
}  // namespace

Batch::Batch(std::shared_ptr<Model> model, int max_sequences, int kv_blocks, int block_size)
    : model_(std::move(model)), pool_(batch_backend(*model_), model_->config(), model_->kv_cache(), kv_blocks, block_size), max_sequences_(max_sequences) {
  if (max_sequences < 1) throw range_error("createBatchBackend: maxSequences must be at least 1, got " + std::to_string(max_sequences));
}

int Batch::open_sequences() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return int(sequences_.size());
}

int Batch::open(int max_tokens) {
  const int limit = model_->config().max_position_embeddings;
  if (max_tokens < 1 || max_tokens > limit)
    throw range_error("open: maxTokens must be in [1, " + std::to_string(limit) + "] (the model's max_position_embeddings), got " +
                      std::to_string(max_tokens));
  const int blocks = (max_tokens + block_size() - 1) / block_size();
  if (blocks > total_blocks())
    throw range_error("open: " + std::to_string(max_tokens) + " tokens need " + std::to_string(blocks) + " blocks of " +
                      std::to_string(block_size()) + ", the pool has " + std::to_string(total_blocks()) + " in all");
  std::lock_guard<std::mutex> lock(mutex_);
  if (int(sequences_.size()) >= max_sequences_) return -1;
  Sequence s;
  if (!pool_.take(blocks, s.blocks)) return -1;
  s.capacity = max_tokens;
  const int id = next_id_++;
  sequences_.emplace(id, std::move(s));
  return id;
}

void Batch::close(int seq) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sequences_.find(seq);
  if (it == sequences_.end()) return;
  if (it->second.busy) {
    it->second.closed = true;  // the step using its blocks finishes first
    return;
  }
  pool_.give_back(it->second.blocks);
  sequences_.erase(it);
}

int Batch::length(int seq) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sequences_.find(seq);
  if (it == sequences_.end() || it->second.closed) throw range_error("length: sequence " + std::to_string(seq) + " is not open");
  return it->second.length();
}

void Batch::reserve(const std::vector<StepItem>& items) {
  const int vocab = model_->config().vocab_size;
  std::lock_guard<std::mutex> lock(mutex_);
  if (items.empty()) throw range_error("step: items is empty");
  std::set<int> seen;
  for (size_t i = 0; i < items.size(); ++i) {
    const StepItem& it = items[i];
    const std::string at = "step: items[" + std::to_string(i) + "]";
    auto s = sequences_.find(it.seq);
    if (s == sequences_.end() || s->second.closed) throw range_error(at + ".seq " + std::to_string(it.seq) + " is not an open sequence");
    if (!seen.insert(it.seq).second) throw range_error(at + ".seq " + std::to_string(it.seq) + " appears twice in one step");
    if (s->second.busy) throw runtime_error(at + ".seq " + std::to_string(it.seq) + " is in a step still running; await it first");
    if (it.tokens.empty()) throw range_error(at + ".tokens is empty (a step appends at least one token)");
    for (size_t j = 0; j < it.tokens.size(); ++j)
      if (it.tokens[j] < 0 || it.tokens[j] >= vocab)
        throw range_error(at + ".tokens[" + std::to_string(j) + "] = " + std::to_string(it.tokens[j]) + " is outside the vocabulary [0, " +
                          std::to_string(vocab) + ")");
    if (int64_t(s->second.length()) + int64_t(it.tokens.size()) > s->second.capacity)
      throw range_error(at + ": " + std::to_string(s->second.length()) + " cached + " + std::to_string(it.tokens.size()) +
                        " new tokens exceed the sequence's " + std::to_string(s->second.capacity) + " (its maxTokens)");
  }
  for (const StepItem& it : items) sequences_[it.seq].busy = true;
}

void Batch::settle(const std::vector<StepItem>& items, bool ok) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const StepItem& it : items) {
    auto s = sequences_.find(it.seq);
    if (s == sequences_.end() || !s->second.busy) continue;
    if (ok) s->second.tokens.insert(s->second.tokens.end(), it.tokens.begin(), it.tokens.end());
    s->second.busy = false;
    if (s->second.closed) {
      pool_.give_back(s->second.blocks);
      sequences_.erase(s);
    }
  }
}

std::vector<int32_t> Batch::run(const std::vector<StepItem>& items) {
  // The host side of the step: each token's logical position, its cache row (slot), its sequence
  // (the item index), and the block tables; rows that need logits. Sequences are busy, so their
  // lengths and blocks cannot change under us.
  const int bs = block_size();
  std::vector<int32_t> tokens, positions, slots, seq_of, logit_rows;
  size_t width = 1;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const StepItem& it : items) {
      const Sequence& s = sequences_.at(it.seq);
      width = std::max(width, size_t((s.length() + int(it.tokens.size()) + bs - 1) / bs));
    }
  }
  std::vector<int32_t> tables(items.size() * width, -1);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < items.size(); ++i) {
      const StepItem& it = items[i];
      const Sequence& s = sequences_.at(it.seq);
      const size_t used = size_t((s.length() + int(it.tokens.size()) + bs - 1) / bs);
      std::copy_n(s.blocks.begin(), used, tables.begin() + i * width);
      for (size_t j = 0; j < it.tokens.size(); ++j) {
        const int p = s.length() + int(j);
        tokens.push_back(it.tokens[j]);
        positions.push_back(p);
        slots.push_back(s.blocks[size_t(p / bs)] * bs + p % bs);
        seq_of.push_back(int32_t(i));
      }
      if (it.sample) logit_rows.push_back(int32_t(tokens.size()) - 1);
    }
  }

  std::vector<int32_t> out(items.size(), -1);
  {
    std::lock_guard<std::mutex> run_lock(model_->run_mutex());
    model_->check_files();
    Backend& be = model_->backend();
    const int n = int(tokens.size()), rows = int(logit_rows.size());
    act_.resize(be, model_->config(), n, rows, true);
    be.copy_from_host(act_.tokens, tokens.data(), tokens.size() * sizeof(int32_t));
    be.copy_from_host(act_.positions, positions.data(), positions.size() * sizeof(int32_t));
    if (rows) be.copy_from_host(act_.logit_index, logit_rows.data(), logit_rows.size() * sizeof(int32_t));
    Tensor slots_t = be.empty(DType::I32, {n}), seq_t = be.empty(DType::I32, {n});
    Tensor tables_t = be.empty(DType::I32, {int64_t(items.size()), int64_t(width)});
    be.copy_from_host(slots_t, slots.data(), slots.size() * sizeof(int32_t));
    be.copy_from_host(seq_t, seq_of.data(), seq_of.size() * sizeof(int32_t));
    be.copy_from_host(tables_t, tables.data(), tables.size() * sizeof(int32_t));
    KvView kv{&pool_.k(), &pool_.v(), &slots_t, &seq_t, &tables_t, bs};
    model_->forward(act_, kv);
    int r = 0;
    for (size_t i = 0; i < items.size(); ++i)
      if (items[i].sample) {
        out[i] = checks::sampled_token(be.sample(act_.logits.rows(r, 1), items[i].params, items[i].uniform), "batch step");
        ++r;
      }
    be.synchronize();  // the pass is done (and its errors known) before the tokens count as cached
  }
  return out;
}

}  // namespace gptoss
