// A batch: many independent sequences advanced together, one forward pass a step, over a paged KV
// cache (kv_cache.h). Each step runs every item's new tokens (a decode token, or a chunk of a prompt)
// as one token batch through Model::forward: the dense projections are GEMMs over all of them, the
// experts run grouped over the union of the routed experts, and each query attends to its own
// sequence's blocks. Then each item that asks draws its next id from its last row's logits with its
// own sampling parameters and uniform.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "gpt_oss.h"
#include "kv_cache.h"
#include "logprobs.h"

namespace gptoss {

// One sequence's share of a step.
struct StepItem {
  int seq = 0;
  std::vector<int32_t> tokens;  // appended this step (>= 1)
  bool sample = false;          // draw the next id from the last token's logits
  SampleParams params;
  float uniform = 0.f;
  // Pipelined decode (Batch with pipeline on): the caller will feed the id drawn now back at the next
  // step with the same params and this uniform, so that step may be queued before this one's ids are
  // read. Only with sample.
  bool ahead = false;
  float next_uniform = 0.f;
  // Only with sample: the drawn id's log-probability and the `logprobs` most likely ids' (0..20;
  // -1: none), from the row it drew from (run()'s `logprobs`).
  int logprobs = -1;
  // Only with sample: added to the row before the draw (after its logprobs are read). Not with ahead: a
  // step queued ahead draws before its caller could know the bias (claims() never takes an item with one).
  LogitBias bias;
};

// Everything that is one sequence's state, in one place: its tokens (the cache holds exactly
// these, in order), its blocks, its capacity and whether a step is using it.
struct Sequence {
  int capacity = 0;              // tokens its blocks hold (blocks.size() * blockSize >= capacity)
  std::vector<int32_t> blocks;   // its block table
  int shared = 0;                // blocks[0, shared) are prefix-cache blocks (Batch::Cached), the rest its own
  std::vector<int32_t> tokens;   // every token in its cache: length() == tokens.size()
  bool busy = false;             // in a step now
  bool closed = false;           // closed during that step: its blocks go back when it ends
  int length() const { return int(tokens.size()); }
};

class Batch {
 public:
  // pad_decode: run decode steps padded to bucket sizes (1 yes, 0 no, -1 where the backend replays
  // them as graphs: CUDA and HIP). The padding is invisible in the results; on the CPU it only costs time,
  // so tests turn it on there to check the padded step against the plain one.
  // pipeline: pipelined decode (run() below); it needs padded decode steps (pad_decode then defaults to
  // yes; pad_decode 0 with pipeline is a RangeError).
  Batch(std::shared_ptr<Model> model, int max_sequences, int kv_blocks, int block_size, int pad_decode = -1,
        bool pipeline = false);
  ~Batch();
  bool pads_decode_steps() const { return pad_decode_; }
  bool pipelines_decode() const { return pipeline_; }
  // Rows of the decode step queued ahead now (0: none): for the scheduler, after a step settles.
  int queued_ahead() const { return ahead_rows_.load(); }
  // Pipelined decode so far: steps queued ahead, claimed by the next run(), dropped (not claimed).
  struct PipelineStats {
    int64_t queued = 0, claimed = 0, dropped = 0;
  };
  PipelineStats pipeline_stats() const { return {stat_queued_.load(), stat_claimed_.load(), stat_dropped_.load()}; }

  int block_size() const { return pool_.block_size(); }
  int total_blocks() const { return pool_.total_blocks(); }
  // Blocks open() can take now: free ones and cached ones no sequence holds.
  int free_blocks() const;
  int open_sequences() const;
  const Model& model() const { return *model_; }

  // A new sequence with room for max_tokens tokens, its blocks taken now; -1 (nothing taken) when
  // the pool or max_sequences cannot take it at the moment. RangeError when it could never fit.
  // prompt (optional): the tokens it will be fed first. Its leading whole blocks that the prefix cache
  // holds (the same tokens from position 0, cached when another sequence computed them) are shared
  // instead of taken, and the sequence starts holding those tokens (length(); at most all but the
  // prompt's last token, so a step still draws from its logits).
  int open(int max_tokens, const std::vector<int32_t>& prompt = {});
  // Ends a sequence; its blocks return to the pool (at the end of the step using it, if any). A
  // sequence that is not open is ignored.
  void close(int seq);
  // Tokens a sequence holds (RangeError when it is not open).
  int length(int seq) const;
  // Blocks in the prefix cache now (held by sequences or kept for later ones).
  int cached_blocks() const;

  // A step in three calls. reserve() checks the items (open sequences, each at most once, tokens in
  // the vocabulary and within the sequence's capacity; errors name the item) and marks their
  // sequences busy. run() is the forward pass (any thread): the drawn id per item, -1 where it does
  // not sample. settle() ends the step where its caller wants its effects seen (N-API: on the main
  // thread, as the promise settles): when ok, each sequence holds its new tokens (otherwise none
  // does); the sequences are no longer busy, and those closed meanwhile give their blocks back.
  // With `logits`, run() also copies back the logits each sampling item draws from (row j = its j-th
  // draw, [draws, vocab] f32, before the draw): for checks of the step against other paths. With
  // `logprobs` (resized to the items), item i's entry holds its TokenLogprobs where it sets
  // `logprobs` >= 0 (its row copied back while the step's logits hold it, then read on the host).
  //
  // Pipelined decode (pipeline on): when a padded decode step's sampling items set `ahead`, run()
  // queues the next decode step of those sequences behind it (each fed its id drawn now, at the next
  // position, drawing with its next_uniform) before it reads this step's ids, so the device works while
  // the caller handles them. The next run() claims it when its items are exactly some of those
  // sequences, each fed the id drawn for it with the same params and uniform: their tokens were
  // computed already, those left out are dropped (nothing appended: the rows it wrote at their next
  // position are rewritten by their next step, and are never part of a shared prefix block). Any
  // other step drops the queued one first and runs as usual. Results are those of the plain steps.
  void reserve(const std::vector<StepItem>& items);
  std::vector<int32_t> run(const std::vector<StepItem>& items, std::vector<float>* logits = nullptr,
                           std::vector<TokenLogprobs>* logprobs = nullptr);
  void settle(const std::vector<StepItem>& items, bool ok);

 private:
  std::shared_ptr<Model> model_;
  KvPool pool_;
  int max_sequences_;
  bool pad_decode_;
  bool pipeline_;
  mutable std::mutex mutex_;     // sequences_ (the run mutex of the model orders the forward passes)
  std::map<int, Sequence> sequences_;
  int next_id_ = 1;

  // The prefix cache (under mutex_): whole blocks whose tokens are known from position 0, found by
  // (the block before it, its tokens), so a match is exact and a chain is matched block by block.
  // A block no sequence holds stays cached (its rows are not reused) until the pool needs it: free
  // blocks are taken first, then unheld cached blocks without cached children, least recently used
  // first (a parent outlives its children, so a key's parent id is never reused under it).
  struct Cached {
    int parent = -1;
    std::vector<int32_t> tokens;
    int holders = 0, children = 0;
    uint64_t last_use = 0;
  };
  std::map<int32_t, Cached> cached_;
  std::map<std::pair<int32_t, std::vector<int32_t>>, int32_t> prefix_index_;
  uint64_t clock_ = 0;
  int unheld_cached_ = 0;
  bool take_blocks(int count, std::vector<int32_t>& out);  // free blocks, else evicts unheld cached ones
  void release(Sequence& s);                               // its own blocks back, its cached ones unheld
  void cache_full_blocks(Sequence& s);                     // registers its whole blocks past `shared`
  Activations act_;              // used by run() under the model's run mutex

  // A decode step (every item one token) on a backend with step graphs runs padded to a bucket size
  // (decode_bucket), replayed as that bucket's graph: its inputs live here, at fixed addresses.
  struct DecodeStep {
    Activations act;
    Tensor slots, seq_of_token, block_tables;  // i32 [bucket], [bucket], [bucket, width]
    int width = 0;                             // table columns: fixes the attention splits
  };
  std::map<int, DecodeStep> decode_steps_;     // by bucket size (map nodes do not move: graph owners)
  // The decode step queued ahead (pipeline): under the model's run mutex (run() holds it throughout).
  struct Ahead {
    bool active = false;
    int bucket = 0, width = 0;
    // per row of the padded step: its sequence (-1: padding), the position its token goes to, that
    // token (the id drawn for the row the step before), and the draw's params and uniform
    std::vector<int> seq;
    std::vector<int32_t> position, token;
    std::vector<SampleParams> params;
    std::vector<float> uniform;
    std::vector<int32_t> draw_rows;        // the rows it draws from, in draw order
    Backend::RowsTicket draws;             // its draws (the tokens of the step after it, on the device)
  };
  Ahead ahead_;
  std::atomic<int> ahead_rows_{0};
  std::atomic<int64_t> stat_queued_{0}, stat_claimed_{0}, stat_dropped_{0};
  // A row of the padded step just queued or run: the position its token went to, and whether its
  // table row holds a sequence's blocks (false: padding, the spare block).
  struct RowState {
    int32_t position = 0;
    bool table_live = false;
  };
  // What a step copies back beside its ids (run()'s optional outputs), taken where its logits are live:
  // every draw's row (logits); for the items that ask for logprobs, either their TokenLogprobs (done: a plain
  // draw, from the device's RowTop and the drawn id's logit) or their whole rows (a pipelined draw, whose logits
  // the step queued next overwrites before its ids are known), by item.
  struct Copies {
    std::vector<float>* logits = nullptr;
    bool logprobs = false;
    std::vector<std::vector<float>> rows;
    std::vector<TokenLogprobs> done;
    std::vector<char> has_done;
  };
  // row_of_item[i]: the logits row item i draws from (-1: it does not sample). logprob_rows: also the rows of the
  // items that ask for logprobs.
  void copy_rows(const std::vector<StepItem>& items, const Tensor& logits, const std::vector<int32_t>& row_of_item,
                 Copies& c, bool logprob_rows);
  // Adds each sampling item's bias to its row (row_of_item as copy_rows'), in place; raw[i]: item i's row as it
  // was, where it has a bias (null: not kept).
  void bias_rows(const std::vector<StepItem>& items, const Tensor& logits, const std::vector<int32_t>& row_of_item,
                 std::vector<std::vector<float>>* raw = nullptr);
  bool claims(const std::vector<StepItem>& items, std::vector<int>& row_of) const;
  std::vector<int32_t> run_claimed(const std::vector<StepItem>& items, const std::vector<int>& row_of, Copies& c);
  // Queues the decode step after `rows` (the padded step of `bucket` just queued), fed `draws`' ids,
  // for the items that set ahead and have room; false (nothing queued) when none continues.
  bool queue_ahead(const std::vector<StepItem>& items, const std::vector<int>& row_of, const std::vector<RowState>& rows,
                   int bucket, int width);
  void drop_ahead();
  std::vector<int32_t> run_eager(const std::vector<StepItem>& items, Copies& c);
  std::vector<int32_t> run_decode(const std::vector<StepItem>& items, int bucket, Copies& c);
  std::vector<int32_t> draw(const std::vector<StepItem>& items, const Tensor& logits, const std::vector<int32_t>& rows,
                            Copies& c);
};

}  // namespace gptoss
