#include "batch.h"

#include <algorithm>
#include <set>
#include <string>

#include "core/error.h"

namespace gptoss {

namespace {
// The model's backend, when it can run a batch (never a silent fallback): the CPU, CUDA and HIP. HIP
// runs the CUDA backend's own paged kernels (the split-KV decode kernel in 32-lane groups, the MFMA
// flash kernel over block tables, the plan, slot stores, gather and row sampling), compiled, not yet
// run on an AMD GPU; like CUDA it is opt-in there (createEngine({ backend: 'native' })).
Backend& batch_backend(const Model& m) {
  if (!m.backend().paged_kv())
    throw runtime_error("createBatchBackend: the batched step and its paged KV cache are not implemented on " +
                        m.backend().describe() + " yet; load the model on the cpu to batch sequences");
  return m.backend();
}
}  // namespace

Batch::Batch(std::shared_ptr<Model> model, int max_sequences, int kv_blocks, int block_size, int pad_decode, bool pipeline)
    : model_(std::move(model)),
      pool_(batch_backend(*model_), model_->config(), model_->kv_cache(), kv_blocks, block_size),
      max_sequences_(max_sequences),
      pad_decode_(pad_decode < 0 ? (pipeline || model_->backend().device().kind != DeviceKind::CPU) : pad_decode > 0),
      pipeline_(pipeline) {
  if (max_sequences < 1) throw range_error("createBatchBackend: maxSequences must be at least 1, got " + std::to_string(max_sequences));
  if (pipeline && !pad_decode_)
    throw range_error("createBatchBackend: pipelineDecode needs padded decode steps (the queued step replays the last one's rows); "
                      "padDecodeSteps: false was given");
}

int Batch::open_sequences() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return int(sequences_.size());
}

bool Batch::take_blocks(int count, std::vector<int32_t>& out) {
  if (pool_.free_blocks() + unheld_cached_ < count) return false;
  while (pool_.free_blocks() < count) {
    // the least recently used unheld leaf of the cache
    auto victim = cached_.end();
    for (auto it = cached_.begin(); it != cached_.end(); ++it)
      if (it->second.holders == 0 && it->second.children == 0 &&
          (victim == cached_.end() || it->second.last_use < victim->second.last_use))
        victim = it;
    if (victim == cached_.end()) return false;  // unreachable: an unheld block's children are unheld
    const Cached& c = victim->second;
    if (c.parent >= 0) cached_.at(c.parent).children--;
    prefix_index_.erase({c.parent, c.tokens});
    pool_.give_back({victim->first});
    cached_.erase(victim);
    unheld_cached_--;
  }
  return pool_.take(count, out);
}

void Batch::release(Sequence& s) {
  for (int b = 0; b < s.shared; ++b) {
    Cached& c = cached_.at(s.blocks[size_t(b)]);
    c.last_use = ++clock_;
    if (--c.holders == 0) unheld_cached_++;
  }
  pool_.give_back(std::vector<int32_t>(s.blocks.begin() + s.shared, s.blocks.end()));
}

void Batch::cache_full_blocks(Sequence& s) {
  const int bs = block_size(), full = std::min(s.length() / bs, int(s.blocks.size()));
  while (s.shared < full) {
    const int b = s.shared;
    const int32_t parent = b == 0 ? -1 : s.blocks[size_t(b - 1)];
    std::vector<int32_t> tokens(s.tokens.begin() + int64_t(b) * bs, s.tokens.begin() + int64_t(b + 1) * bs);
    if (prefix_index_.count({parent, tokens})) return;  // another block holds these: this one stays its own
    const int32_t id = s.blocks[size_t(b)];
    Cached& c = cached_[id];
    c.parent = parent;
    c.tokens = tokens;
    c.holders = 1;
    c.last_use = ++clock_;
    if (parent >= 0) cached_.at(parent).children++;
    prefix_index_.emplace(std::make_pair(parent, std::move(tokens)), id);
    s.shared++;
  }
}

int Batch::free_blocks() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pool_.free_blocks() + unheld_cached_;
}

int Batch::cached_blocks() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return int(cached_.size());
}

int Batch::open(int max_tokens, const std::vector<int32_t>& prompt) {
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
  // The prompt's leading whole blocks the cache holds (leaving at least its last token to run)
  const int bs = block_size();
  const int matchable = std::min(int(prompt.size()) - 1, max_tokens - 1) / bs;
  for (int b = 0; b < matchable; ++b) {
    const int32_t parent = b == 0 ? -1 : s.blocks.back();
    auto it = prefix_index_.find({parent, std::vector<int32_t>(prompt.begin() + int64_t(b) * bs, prompt.begin() + int64_t(b + 1) * bs)});
    if (it == prefix_index_.end()) break;
    s.blocks.push_back(it->second);
  }
  // hold them (so that taking the rest cannot evict them), then take the rest or undo
  for (int32_t id : s.blocks) {
    Cached& c = cached_.at(id);
    if (c.holders++ == 0) unheld_cached_--;
  }
  s.shared = int(s.blocks.size());
  std::vector<int32_t> own;
  if (!take_blocks(blocks - s.shared, own)) {
    for (int32_t id : s.blocks)
      if (--cached_.at(id).holders == 0) unheld_cached_++;
    return -1;
  }
  s.blocks.insert(s.blocks.end(), own.begin(), own.end());
  s.tokens.assign(prompt.begin(), prompt.begin() + int64_t(s.shared) * bs);
  for (int b = 0; b < s.shared; ++b) cached_.at(s.blocks[size_t(b)]).last_use = ++clock_;
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
  release(it->second);
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
    if (ok) {
      s->second.tokens.insert(s->second.tokens.end(), it.tokens.begin(), it.tokens.end());
      cache_full_blocks(s->second);  // whole blocks now final: later prompts with this prefix share them
    }
    s->second.busy = false;
    if (s->second.closed) {
      release(s->second);
      sequences_.erase(s);
    }
  }
}

namespace {
// Sizes a padded decode step takes: few enough graphs, at most a quarter of a step padding past 8.
int decode_bucket(int n) {
  static const int kBuckets[] = {1, 2, 4, 8, 12, 16, 24, 32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256};
  for (int b : kBuckets)
    if (n <= b) return b;
  return 0;  // larger: eager
}
int pow2_at_least(int x) {
  int p = 1;
  while (p < x) p <<= 1;
  return p;
}
// The step-graph key of a padded decode step (the bit the CUDA backend's StepGraphs knows as
// kBatchBucket: capture at any size), its size and table width.
constexpr uint64_t kStepBucketKey = 1ull << 63;
}  // namespace

Batch::~Batch() {
  if (ahead_.active) {
    try {
      model_->backend().synchronize();  // a step still queued writes this pool
    } catch (const std::exception&) {
    }
  }
  for (auto& d : decode_steps_) model_->backend().forget_steps(&d.second);
}

std::vector<int32_t> Batch::run(const std::vector<StepItem>& items, std::vector<float>* logits,
                                std::vector<TokenLogprobs>* logprobs) {
  std::lock_guard<std::mutex> run_lock(model_->run_mutex());
  Copies c;
  c.logits = logits;
  c.logprobs = logprobs != nullptr;
  std::vector<int32_t> ids;
  try {
    bool claimed = false;
    if (ahead_.active) {
      std::vector<int> row_of;
      if (claims(items, row_of)) {
        ids = run_claimed(items, row_of, c);
        claimed = true;
      } else {
        drop_ahead();
      }
    }
    if (!claimed) {
      // A decode step runs padded to its bucket (replayed as that bucket's graph where the backend captures them).
      bool decode = pad_decode_;
      for (const StepItem& it : items) decode = decode && it.tokens.size() == 1;
      const int bucket = decode ? decode_bucket(int(items.size())) : 0;
      ids = bucket ? run_decode(items, bucket, c) : run_eager(items, c);
    }
  } catch (...) {
    // a step queued ahead by this call (or before it) counts for nothing now
    if (ahead_.active) stat_dropped_++;
    ahead_ = Ahead();
    ahead_rows_ = 0;
    throw;
  }
  if (logprobs) {
    logprobs->assign(items.size(), TokenLogprobs());
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].sample || items[i].logprobs < 0) continue;
      if (i < c.has_done.size() && c.has_done[i]) (*logprobs)[i] = std::move(c.done[i]);
      else (*logprobs)[i] = row_logprobs(c.rows[i].data(), int64_t(c.rows[i].size()), ids[i], items[i].logprobs);
    }
  }
  return ids;
}

void Batch::drop_ahead() {
  // Nothing it computed counts (no sequence holds its tokens). Wait for it, so that its work and its
  // errors stay apart from the step that replaces it.
  if (ahead_.active) stat_dropped_++;
  ahead_ = Ahead();
  ahead_rows_ = 0;
  model_->backend().synchronize();
}

namespace {
bool same_params(const SampleParams& a, const SampleParams& b) {
  return a.temperature == b.temperature && a.top_k == b.top_k && a.top_p == b.top_p && a.min_p == b.min_p;
}
}  // namespace

bool Batch::claims(const std::vector<StepItem>& items, std::vector<int>& row_of) const {
  const Ahead& a = ahead_;
  row_of.assign(items.size(), -1);
  std::vector<char> taken(a.seq.size(), 0);
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < items.size(); ++i) {
    const StepItem& it = items[i];
    if (it.tokens.size() != 1 || !it.sample || !it.bias.empty()) return false;
    const auto at = std::find(a.seq.begin(), a.seq.end(), it.seq);
    if (at == a.seq.end()) return false;
    const size_t r = size_t(at - a.seq.begin());
    if (taken[r] || it.tokens[0] != a.token[r] || it.uniform != a.uniform[r] || !same_params(it.params, a.params[r])) return false;
    auto s = sequences_.find(it.seq);
    if (s == sequences_.end() || s->second.length() != a.position[r]) return false;
    taken[r] = 1;
    row_of[i] = int(r);
  }
  return true;
}

void Batch::copy_rows(const std::vector<StepItem>& items, const Tensor& logits, const std::vector<int32_t>& row_of_item,
                      Copies& c, bool logprob_rows) {
  Backend& be = model_->backend();
  const int64_t vocab = logits.dim(1);
  if (c.logits) {  // row j: the j-th draw's
    c.logits->clear();
    for (size_t i = 0; i < items.size(); ++i) {
      if (row_of_item[i] < 0) continue;
      const size_t at = c.logits->size();
      c.logits->resize(at + size_t(vocab));
      be.copy_to_host(logits.rows(row_of_item[i], 1), c.logits->data() + at, size_t(vocab) * sizeof(float));
    }
  }
  if (c.logprobs && logprob_rows) {
    c.rows.assign(items.size(), {});
    for (size_t i = 0; i < items.size(); ++i)
      if (row_of_item[i] >= 0 && items[i].logprobs >= 0) copy_logit_row(be, logits, row_of_item[i], c.rows[i]);
  }
}

void Batch::bias_rows(const std::vector<StepItem>& items, const Tensor& logits, const std::vector<int32_t>& row_of_item,
                      std::vector<std::vector<float>>* raw) {
  std::vector<float> row;
  for (size_t i = 0; i < items.size(); ++i)
    if (row_of_item[i] >= 0 && !items[i].bias.empty()) {
      apply_logit_bias(model_->backend(), logits, row_of_item[i], items[i].bias, row);
      if (raw) (*raw)[i] = std::move(row);
    }
}

bool Batch::queue_ahead(const std::vector<StepItem>& items, const std::vector<int>& row_of, const std::vector<RowState>& rows,
                        int bucket, int width) {
  if (!pipeline_) return false;
  const int bs = block_size(), spare = pool_.spare_block();
  Ahead a;
  a.bucket = bucket;
  a.width = width;
  a.seq.assign(size_t(bucket), -1);
  a.position.assign(size_t(bucket), 0);
  a.token.assign(size_t(bucket), 0);
  a.params.assign(size_t(bucket), SampleParams());
  a.uniform.assign(size_t(bucket), 0.f);
  std::vector<int32_t> positions(size_t(bucket), 0), slots(size_t(bucket), spare * bs);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < items.size(); ++i) {
      const StepItem& it = items[i];
      if (!it.ahead || !it.sample) continue;
      const size_t r = size_t(row_of[i]);
      const Sequence& s = sequences_.at(it.seq);
      const int p = rows[r].position + 1;  // after the token this step feeds
      if (p >= s.capacity) continue;       // no room for it
      a.seq[r] = it.seq;
      a.position[r] = p;
      a.params[r] = it.params;
      a.uniform[r] = it.next_uniform;
      positions[r] = p;
      slots[r] = s.blocks[size_t(p / bs)] * bs + p % bs;
      a.draw_rows.push_back(int32_t(r));
    }
  }
  if (a.draw_rows.empty()) return false;
  Backend& be = model_->backend();
  DecodeStep& d = decode_steps_.at(bucket);
  // Its tokens are in d.act.tokens already (this step's draws went there); the rest of its input is
  // the step's own but the positions and slots, and the rows that stop become padding as in
  // run_decode (position 0 of the spare block, their table row the spare block).
  be.copy_from_host(d.act.positions, positions.data(), positions.size() * sizeof(int32_t));
  be.copy_from_host(d.slots, slots.data(), slots.size() * sizeof(int32_t));
  const std::vector<int32_t> spare_row(size_t(width), spare);
  for (int r = 0; r < bucket; ++r)
    if (rows[size_t(r)].table_live && a.seq[size_t(r)] < 0) {
      Tensor row = d.block_tables.rows(r, 1);
      be.copy_from_host(row, spare_row.data(), spare_row.size() * sizeof(int32_t));
    }
  KvView kv{&pool_.k(), &pool_.v(), &d.slots, &d.seq_of_token, &d.block_tables, bs};
  const uint64_t key = kStepBucketKey | (uint64_t(bucket) << 32) | uint64_t(width);
  be.run_step(key, &d, [&] { model_->forward(d.act, kv); });
  std::vector<SampleParams> params;
  std::vector<float> uniforms;
  for (int32_t r : a.draw_rows) {
    params.push_back(a.params[size_t(r)]);
    uniforms.push_back(a.uniform[size_t(r)]);
  }
  a.draws = be.queue_sample_rows(d.act.logits, a.draw_rows, params, uniforms, d.act.tokens);
  a.active = true;
  stat_queued_++;
  ahead_rows_ = int(a.draw_rows.size());
  ahead_ = std::move(a);
  return true;
}

std::vector<int32_t> Batch::run_claimed(const std::vector<StepItem>& items, const std::vector<int>& row_of, Copies& c) {
  model_->check_files();
  Backend& be = model_->backend();
  Ahead cur = std::move(ahead_);
  ahead_ = Ahead();
  ahead_rows_ = 0;
  stat_claimed_++;
  DecodeStep& d = decode_steps_.at(cur.bucket);
  // every item samples, from its row (these copies wait for the step; the step queued next overwrites the logits)
  if (c.logits || c.logprobs) copy_rows(items, d.act.logits, std::vector<int32_t>(row_of.begin(), row_of.end()), c, true);
  // The step after it, for the items that ask (fed its draws, on the device already), before its ids are read.
  std::vector<RowState> rows(size_t(cur.bucket));
  for (size_t r = 0; r < rows.size(); ++r) rows[r] = {cur.position[r], cur.seq[r] >= 0};
  queue_ahead(items, row_of, rows, cur.bucket, cur.width);
  const std::vector<int32_t> ids = be.read_rows(cur.draws);
  std::vector<int32_t> by_row(size_t(cur.bucket), -1);
  for (size_t j = 0; j < cur.draw_rows.size() && j < ids.size(); ++j) by_row[size_t(cur.draw_rows[j])] = ids[j];
  std::vector<int32_t> out(items.size(), -1);
  for (size_t i = 0; i < items.size(); ++i) out[i] = by_row[size_t(row_of[i])];
  for (int32_t id : out)
    if (id < 0) {
      drop_ahead();  // it was fed 0 for this row
      checks::sampled_token(id, "batch step");
    }
  for (int32_t r : ahead_.draw_rows) ahead_.token[size_t(r)] = by_row[size_t(r)];
  return out;
}

// Each sampling item's draw from its row of `logits`, with its own parameters and uniform.
std::vector<int32_t> Batch::draw(const std::vector<StepItem>& items, const Tensor& logits, const std::vector<int32_t>& rows,
                                 Copies& c) {
  std::vector<int32_t> out(items.size(), -1), pick, row_of_item(items.size(), -1);
  std::vector<SampleParams> params;
  std::vector<float> uniforms;
  std::vector<size_t> at;
  for (size_t i = 0, r = 0; i < items.size(); ++i)
    if (items[i].sample) {
      row_of_item[i] = rows[r];
      pick.push_back(rows[r++]);
      params.push_back(items[i].params);
      uniforms.push_back(items[i].uniform);
      at.push_back(i);
    }
  Backend& be = model_->backend();
  if (c.logits) copy_rows(items, logits, row_of_item, c, false);
  // logprobs: the rows' statistics on the device before any bias; the drawn id's logit after the draw
  std::vector<int32_t> lp_rows;
  std::vector<int> lp_tops;
  std::vector<size_t> lp_items;
  for (size_t i = 0; c.logprobs && i < items.size(); ++i)
    if (row_of_item[i] >= 0 && items[i].logprobs >= 0) {
      lp_rows.push_back(row_of_item[i]);
      lp_tops.push_back(items[i].logprobs);
      lp_items.push_back(i);
    }
  const std::vector<RowTop> tops = lp_rows.empty() ? std::vector<RowTop>() : be.logprob_top(logits, lp_rows, lp_tops);
  std::vector<std::vector<float>> raw(items.size());
  bias_rows(items, logits, row_of_item, &raw);
  const std::vector<int32_t> ids = be.sample_rows(logits, pick, params, uniforms);
  for (size_t j = 0; j < ids.size(); ++j) out[at[j]] = checks::sampled_token(ids[j], "batch step");
  if (!lp_items.empty()) {
    c.done.assign(items.size(), TokenLogprobs());
    c.has_done.assign(items.size(), 0);
    for (size_t j = 0; j < lp_items.size(); ++j) {
      const size_t i = lp_items[j];
      const int32_t id = out[i];
      // a biased row's raw copy is on the host already; otherwise one float from the (unbiased) row
      const float logit = raw[i].empty() ? be.logit_at(logits, row_of_item[i], id) : raw[i][size_t(id)];
      c.done[i] = with_id(tops[j], logit);
      c.has_done[i] = 1;
    }
  }
  return out;
}

std::vector<int32_t> Batch::run_decode(const std::vector<StepItem>& items, int bucket, Copies& c) {
  // Item i is row i; rows past the items are padding: token 0 at position 0 of the pool's spare block
  // (a table row of its own), their logits never drawn from.
  const int bs = block_size(), n = int(items.size());
  const int spare = pool_.spare_block();
  std::vector<int32_t> tokens(bucket, 0), positions(bucket, 0), slots(bucket, spare * bs), seq_of(bucket, 0);
  std::vector<int32_t> logit_rows(bucket, 0), draw_rows;
  for (int i = 0; i < bucket; ++i) seq_of[size_t(i)] = logit_rows[size_t(i)] = i;
  int width = 1;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const StepItem& it : items) width = std::max(width, int(sequences_.at(it.seq).blocks.size()));
  }
  width = pow2_at_least(width);  // the splits follow the width: a power of two keeps the graphs few
  std::vector<int32_t> tables(size_t(bucket) * size_t(width), spare);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (int i = 0; i < n; ++i) {
      const StepItem& it = items[size_t(i)];
      const Sequence& s = sequences_.at(it.seq);
      const int p = s.length();
      std::copy(s.blocks.begin(), s.blocks.end(), tables.begin() + size_t(i) * size_t(width));
      tokens[size_t(i)] = it.tokens[0];
      positions[size_t(i)] = p;
      slots[size_t(i)] = s.blocks[size_t(p / bs)] * bs + p % bs;
      if (it.sample) draw_rows.push_back(i);
    }
  }
  model_->check_files();
  Backend& be = model_->backend();
  DecodeStep& d = decode_steps_[bucket];
  if (d.width != width) {
    be.forget_steps(&d);  // captured with the old buffers
    d.act.resize(be, model_->config(), bucket, bucket, true);
    d.slots = be.empty(DType::I32, {bucket});
    d.seq_of_token = be.empty(DType::I32, {bucket});
    d.block_tables = be.empty(DType::I32, {bucket, width});
    d.width = width;
  }
  be.copy_from_host(d.act.tokens, tokens.data(), tokens.size() * sizeof(int32_t));
  be.copy_from_host(d.act.positions, positions.data(), positions.size() * sizeof(int32_t));
  be.copy_from_host(d.act.logit_index, logit_rows.data(), logit_rows.size() * sizeof(int32_t));
  be.copy_from_host(d.slots, slots.data(), slots.size() * sizeof(int32_t));
  be.copy_from_host(d.seq_of_token, seq_of.data(), seq_of.size() * sizeof(int32_t));
  be.copy_from_host(d.block_tables, tables.data(), tables.size() * sizeof(int32_t));
  KvView kv{&pool_.k(), &pool_.v(), &d.slots, &d.seq_of_token, &d.block_tables, bs};
  const uint64_t key = kStepBucketKey | (uint64_t(bucket) << 32) | uint64_t(width);
  be.run_step(key, &d, [&] { model_->forward(d.act, kv); });
  bool pipelined = false;
  for (const StepItem& it : items) pipelined = pipelined || (pipeline_ && it.sample && it.ahead);
  if (!pipelined) {
    std::vector<int32_t> out = draw(items, d.act.logits, draw_rows, c);
    be.synchronize();  // the pass is done (and its errors known) before the tokens count as cached
    return out;
  }
  // Pipelined: the draws go to the step's token rows, where the step queued next reads them, and
  // that step is queued before they are read back.
  std::vector<SampleParams> params;
  std::vector<float> uniforms;
  for (int32_t r : draw_rows) {
    params.push_back(items[size_t(r)].params);
    uniforms.push_back(items[size_t(r)].uniform);
  }
  {  // item i is row i (copies before the step queued next overwrites the logits, biases before the draws)
    std::vector<int32_t> row_of_item(items.size(), -1);
    for (int32_t r : draw_rows) row_of_item[size_t(r)] = r;
    if (c.logits || c.logprobs) copy_rows(items, d.act.logits, row_of_item, c, true);
    bias_rows(items, d.act.logits, row_of_item);
  }
  Backend::RowsTicket drawn = be.queue_sample_rows(d.act.logits, draw_rows, params, uniforms, d.act.tokens);
  std::vector<RowState> rows(static_cast<size_t>(bucket));
  std::vector<int> row_of(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    rows[size_t(i)] = {positions[size_t(i)], true};
    row_of[size_t(i)] = i;
  }
  queue_ahead(items, row_of, rows, bucket, width);
  const std::vector<int32_t> ids = be.read_rows(drawn);  // the pass is done (and its errors known)
  std::vector<int32_t> out(items.size(), -1);
  for (size_t j = 0; j < draw_rows.size() && j < ids.size(); ++j) out[size_t(draw_rows[j])] = ids[j];
  for (int32_t r : draw_rows)
    if (out[size_t(r)] < 0) {
      drop_ahead();  // it was fed 0 for this row
      checks::sampled_token(out[size_t(r)], "batch step");
    }
  for (int32_t r : ahead_.draw_rows) ahead_.token[size_t(r)] = out[size_t(r)];
  return out;
}

std::vector<int32_t> Batch::run_eager(const std::vector<StepItem>& items, Copies& c) {
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
    model_->check_files();  // run() holds the model's run mutex
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
    std::vector<int32_t> rows_drawn(rows, 0);
    for (int r = 0; r < rows; ++r) rows_drawn[size_t(r)] = r;
    out = draw(items, act_.logits, rows_drawn, c);
    be.synchronize();  // the pass is done (and its errors known) before the tokens count as cached
  }
  return out;
}

}  // namespace gptoss
